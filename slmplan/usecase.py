"""Use-case presets: what one query of a product looks like (prompt length, answer length, context).

The lengths are assumptions about a typical query of each kind, stated as such in the report; a team
that knows its own lengths passes --prompt-tokens/--gen-tokens/--ctx, which override the preset.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

from slmplan.errors import BadInputError

if TYPE_CHECKING:  # the CLI imports HELP at start-up: keep this module light
    from slmplan.planner import Query

# English text: about 0.75 words per token (OpenAI, "What are tokens and how to count them?").
WORDS_PER_TOKEN = 0.75
WORDS_PER_TOKEN_SOURCE = "about 0.75 English words per token (OpenAI help center, 'What are tokens and how to count them?')"


@dataclass(frozen=True)
class UseCasePreset:
    id: str
    label: str
    prompt_tokens: int
    gen_tokens: int
    ctx: int
    expected_bound: str  # what dominates the wait, before the device is known
    assumption: str


PRESETS: dict[str, UseCasePreset] = {p.id: p for p in (
    UseCasePreset("chat", "a chat turn", 300, 200, 4096, "decode",
                  "~300 prompt tokens (system prompt, a short question and recent history) and a "
                  "~200-token answer (~150 words); 4096 tokens of context keep a few turns of history"),
    UseCasePreset("summarize", "summarizing a document", 2000, 250, 4096, "prefill",
                  "a ~1,500-word note or transcript (~2,000 tokens) summarized in ~250 tokens (~190 words); "
                  "4096 tokens of context hold both"),
    UseCasePreset("translate", "a translation", 400, 450, 2048, "decode",
                  "a ~300-word passage (~400 tokens); the translation is as long as the input or longer "
                  "(~450 tokens: many languages take more tokens than English); 2048 tokens of context"),
    UseCasePreset("rewrite", "rewriting a paragraph", 350, 300, 2048, "decode",
                  "a ~250-word paragraph with an instruction (~350 tokens) rewritten in ~300 tokens; "
                  "2048 tokens of context"),
)}

DEFAULT = UseCasePreset("default", "a generic query", 300, 200, 4096, "decode",
                        "300 prompt + 200 generated tokens, 4096 tokens of context")

HELP = ("What one query looks like: " + "; ".join(
    f"{p.id} = {p.prompt_tokens} prompt + {p.gen_tokens} answer tokens, ctx {p.ctx}" for p in PRESETS.values())
    + ". --prompt-tokens/--gen-tokens/--ctx override it.")


def preset(use_case: str | None) -> UseCasePreset:
    if use_case is None:
        return DEFAULT
    key = use_case.strip().lower()
    if key not in PRESETS:
        raise BadInputError(f"unknown use case '{use_case}'", f"Use one of: {', '.join(PRESETS)}")
    return PRESETS[key]


def _ctx_for(tokens: int) -> int:
    """The smallest power of two (at least 2048) that holds the query: what a runtime would be configured with."""
    ctx = 2048
    while ctx < tokens:
        ctx *= 2
    return ctx


def build_query(use_case: str | None = None, ctx: int | None = None, prompt_tokens: int | None = None,
                gen_tokens: int | None = None, base: Query | None = None) -> tuple[Query, UseCasePreset, list[str]]:
    """The planner's Query for a use case, with the user's overrides. Returns (query, preset, overridden names).

    Without a use case and without overrides this is exactly the planner's default Query."""
    from slmplan.planner import Query

    base = base or Query()
    p = preset(use_case)
    overridden = [name for name, v in (("prompt tokens", prompt_tokens), ("answer tokens", gen_tokens),
                                        ("context", ctx)) if v is not None]
    n_prompt = p.prompt_tokens if prompt_tokens is None else prompt_tokens
    n_gen = p.gen_tokens if gen_tokens is None else gen_tokens
    q = replace(base, n_prompt=n_prompt, n_gen=n_gen, ctx=ctx if ctx is not None else p.ctx)
    q.validate()
    if ctx is None and n_prompt + n_gen > q.ctx:
        q = replace(q, ctx=_ctx_for(n_prompt + n_gen))  # the preset's context must hold the overridden lengths
    if n_prompt + n_gen > q.ctx:
        raise BadInputError(f"ctx={q.ctx} is smaller than one query ({n_prompt} prompt + {n_gen} answer tokens)",
                            f"Use ctx={_ctx_for(n_prompt + n_gen)}, or a shorter prompt_tokens or gen_tokens",
                            params=("ctx", "prompt_tokens", "gen_tokens"))
    return q, p, overridden


def words(tokens: float) -> int:
    return int(round(tokens * WORDS_PER_TOKEN, -1 if tokens * WORDS_PER_TOKEN >= 100 else 0))
