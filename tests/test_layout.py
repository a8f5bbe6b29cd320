"""The architecture, checked: core/ is NumPy and the standard library with no import cycle, torch
is imported only by the PyTorch package, Textual only by the screens, and tui/'s top level holds
only its entry points."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

from helpers import ROOT

STDLIB = set(sys.stdlib_module_names)


def modules(package: str) -> dict[str, Path]:
    """Every module of `package` (a folder under the source root) by its dotted name."""
    out = {}
    for path in sorted((ROOT / package).rglob("*.py")):
        parts = path.relative_to(ROOT).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        out[name] = path
    return out


def imports(name: str, path: Path) -> set[str]:
    """The absolute names of every module `path` imports, anywhere in it (functions included)."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parent = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(parent + ([base] if base else []))
            found.add(base)
            found.update(f"{base}.{a.name}" for a in node.names)  # `from . import x` imports module x
    return found


def test_core_imports_only_numpy_the_standard_library_and_itself():
    for name, path in modules("core").items():
        for imported in imports(name, path):
            top = imported.split(".")[0]
            assert top in STDLIB or top in ("core", "numpy"), f"{name} imports {imported}"


def test_core_has_no_import_cycle():
    mods = modules("core")
    graph = {name: {m for m in imports(name, path) if m in mods and m != name} for name, path in mods.items()}
    # a package's __init__ importing its own modules is how a package is made, not a cycle
    for name in graph:
        graph[name] = {m for m in graph[name] if not (name + ".").startswith(m + ".")}
    state: dict[str, int] = {}  # 1: on the current path, 2: done

    def visit(node: str, path: list[str]) -> None:
        state[node] = 1
        for nxt in graph[node]:
            assert state.get(nxt) != 1, "import cycle: " + " -> ".join([*path, node, nxt])
            if nxt not in state:
                visit(nxt, [*path, node])
        state[node] = 2

    for node in graph:
        if node not in state:
            visit(node, [])


def test_torch_is_imported_only_by_the_pytorch_package():
    for package in ("core", "tui"):
        for name, path in modules(package).items():
            if name.startswith("tui.pytorch"):
                continue
            uses = {m for m in imports(name, path) if m.split(".")[0] == "torch"}
            assert not uses, f"{name} imports {sorted(uses)}"


def test_textual_is_imported_only_by_the_screens_and_widgets():
    for name, path in modules("tui").items():
        if name.startswith(("tui.apps", "tui.widgets")):
            continue
        uses = {m for m in imports(name, path) if m.split(".")[0] in ("textual", "rich")}
        assert not uses, f"{name} imports {sorted(uses)}"


def test_tuis_top_level_holds_only_its_entry_points():
    top = sorted(p.name for p in (ROOT / "tui").glob("*.py"))
    assert len(top) <= 8, top
    assert {"cli.py", "__main__.py"} <= set(top)


def test_importing_core_loads_neither_textual_nor_rich():
    code = (
        "import sys, core, core.trainer, core.checkpoint, core.sampling;"
        "bad = [m for m in sys.modules if m.split('.')[0] in ('textual', 'rich', 'torch')];"
        "print(bad); sys.exit(1 if bad else 0)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0, out.stdout + out.stderr
