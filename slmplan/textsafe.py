"""Text from outside (a GGUF's metadata, a device profile, a Hub file name, a path) made safe to show.

Such text can carry terminal escape sequences (an OSC that retitles the window, a screen clear),
bidi overrides that make a line read differently than it is, and, for rich, markup such as
``[/]`` (a MarkupError) or ``[beta]`` (silently dropped as an unknown style). ``clean`` removes the
control and bidi characters; ``for_rich`` also escapes rich markup, for text placed into a markup
string or a table cell. Imports nothing heavy (rich only when ``for_rich`` is called).
"""

from __future__ import annotations

import re

# C0 controls (tab, newline and carriage return too: a shown value is one line), DEL, C1 controls,
# and the Unicode bidi embedding/override/isolate characters.
_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f\u200e\u200f\u202a-\u202e\u2066-\u2069]")


def clean(text: object) -> str:
    """``text`` as a string without control characters (each replaced by a space, runs collapsed)."""
    s = str(text)
    if not _CONTROL.search(s):
        return s
    return re.sub(" {2,}", " ", _CONTROL.sub(" ", s)).strip()


def has_controls(text: str) -> bool:
    return bool(_CONTROL.search(text))


def for_rich(text: object) -> str:
    """``clean(text)`` with rich markup escaped, for a markup string or a rich table cell."""
    from rich.markup import escape

    return escape(clean(text))


_CONTROL_KEEP_NL = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u200e\u200f\u202a-\u202e\u2066-\u2069]")


def strip_controls(text: str) -> str:
    """``text`` (a whole document) with control characters removed, newlines and tabs kept."""
    return _CONTROL_KEEP_NL.sub("", text)
