"""The dependency direction of ARCHITECTURE.md: cli -> planner/bench/report -> estimate/catalog/devices
-> schema -> errors. Read from the source (every import, also those inside functions)."""

import ast
from pathlib import Path

PKG = Path(__file__).resolve().parent.parent / "slmplan"

UPPER = ("slmplan.cli", "slmplan.planner", "slmplan.resolve", "slmplan.inspect", "slmplan.bench", "slmplan.report",
         "slmplan.convert")
LOWER = ("slmplan.errors", "slmplan.ggufconst", "slmplan.schema", "slmplan.yamlio", "slmplan.fileio", "slmplan.gguf",
         "slmplan.model", "slmplan.catalog", "slmplan.devices", "slmplan.localdevice", "slmplan.calibration_store",
         "slmplan.estimate", "slmplan.hub")
# (module, import): known upward imports, each inside the one function that needs it
ALLOWED: set[tuple[str, str]] = set()


def _imports() -> dict[str, set[str]]:
    out = {}
    for f in PKG.rglob("*.py"):
        name = ".".join(("slmplan", *f.relative_to(PKG).with_suffix("").parts)).removesuffix(".__init__")
        deps = set()
        for node in ast.walk(ast.parse(f.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                deps.add(node.module)
            elif isinstance(node, ast.Import):
                deps.update(a.name for a in node.names)
        out[name] = {d for d in deps if d.startswith("slmplan")}
    return out


def _under(name: str, prefixes: tuple[str, ...]) -> bool:
    return any(name == p or name.startswith(p + ".") for p in prefixes)


def test_lower_layers_never_import_upper_ones():
    bad = [(m, d) for m, deps in _imports().items() if _under(m, LOWER)
           for d in deps if _under(d, UPPER) and (m, d) not in ALLOWED]
    assert bad == []


def test_errors_and_schema_stay_at_the_bottom():
    imports = _imports()
    assert imports["slmplan.errors"] == set() and imports["slmplan.ggufconst"] == set()
    for m, deps in imports.items():
        if _under(m, ("slmplan.schema",)):
            assert all(_under(d, ("slmplan.schema", "slmplan.errors")) for d in deps), (m, deps)


def test_only_the_entry_points_import_the_cli():
    users = {m for m, deps in _imports().items() if any(_under(d, ("slmplan.cli",)) for d in deps)}
    assert {u for u in users if not _under(u, ("slmplan.cli",))} == {"slmplan.__main__"}
