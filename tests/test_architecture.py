"""The package's layout rules, read from the source (docs/architecture.md says why):

* ``sink/`` holds the role subpackages and the few modules every layer shares;
* another layer imports a subpackage through its ``__init__`` (its public surface), never a
  module inside it;
* imports go one way: tools → service → decode / postgres → config → records / errors;
* a module past ~400 lines says at its top why it is one piece.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from tests import paths

SINK = paths.ROOT / "sink"

# Lower layers never import higher ones; units of one layer never import each other.
LAYERS: dict[str, int] = {
    "records": 0, "errors": 0, "logs": 0, "metrics": 0,
    "config": 1,
    "decode": 2, "postgres": 2, "stack": 2,
    "service": 3,
    "tools": 4,
    "cli": 5,
    "__main__": 6,
}
SUBPACKAGES = {"config", "decode", "postgres", "service", "stack", "tools"}
LONG_MODULE_LINES = 420
LONG_MODULE_MARK = "Length:"  # in the module docstring: why this module stays one piece


def _modules() -> list[Path]:
    return sorted(p for p in SINK.rglob("*.py") if "__pycache__" not in p.parts)


def _dotted(path: Path) -> str:
    rel = path.relative_to(paths.ROOT).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _unit(dotted: str) -> str:
    """The layout unit of a module: its subpackage, or the top-level module's name."""
    parts = dotted.split(".")
    return parts[1] if len(parts) > 1 else "sink"


def _sink_imports(path: Path) -> list[tuple[int, str, list[str]]]:
    """(line, imported module, names) for every ``from sink... import`` / ``import sink...``."""
    found: list[tuple[int, str, list[str]]] = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.ImportFrom):
            assert node.level == 0, f"{path}:{node.lineno}: relative import (use sink.…)"
            mod = node.module or ""
            if mod == "sink" or mod.startswith("sink."):
                found.append((node.lineno, mod, [a.name for a in node.names]))
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name == "sink" or alias.name.startswith("sink."):
                    found.append((node.lineno, alias.name, []))
    return found


def test_top_level_holds_only_shared_modules_and_role_subpackages() -> None:
    # Extension modules are build outputs of the compiled decoder (setup.py), not sources.
    entries = sorted(p.name for p in SINK.iterdir()
                     if p.name != "__pycache__" and not p.name.endswith(".so"))
    assert len(entries) <= 13, entries
    for entry in entries:
        name = entry.removesuffix(".py")
        assert name in LAYERS or name == "__init__", f"sink/{entry} has no layer: add it to " \
                                                     f"LAYERS and docs/architecture.md"


@pytest.mark.parametrize("path", _modules(), ids=lambda p: str(p.relative_to(SINK)))
def test_imports_across_subpackages_go_through_their_public_surface(path: Path) -> None:
    me = _unit(_dotted(path))
    for line, mod, names in _sink_imports(path):
        target = _unit(mod) if mod != "sink" else None
        if mod == "sink":  # from sink import x: x is a top-level module or subpackage
            for name in names:
                assert name not in SUBPACKAGES or name == me, \
                    f"{path}:{line}: import names from sink.{name}, not the package object"
            continue
        if target in SUBPACKAGES and target != me:
            assert mod == f"sink.{target}", (
                f"{path}:{line}: imports {mod}, a private module of sink.{target}; "
                f"import from sink.{target} (export it there if it is public)")
            public = _public_names(target)
            for name in names:
                assert name in public, f"{path}:{line}: sink.{target} does not export {name}"


def _public_names(subpackage: str) -> set[str]:
    tree = ast.parse((SINK / subpackage / "__init__.py").read_text())
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(
                isinstance(t, ast.Name) and t.id == "__all__" for t in node.targets):
            value = ast.literal_eval(node.value)
            return set(value)
    raise AssertionError(f"sink/{subpackage}/__init__.py has no __all__")


def test_imports_go_one_way_down_the_layers() -> None:
    edges: set[tuple[str, str, str]] = set()
    for path in _modules():
        me = _unit(_dotted(path))
        me = me if me != "sink" else path.stem  # a top-level module is its own unit
        for line, mod, names in _sink_imports(path):
            # "from sink import x" names units; "from sink.x… import" names unit x
            targets = names if mod == "sink" else [mod.split(".")[1]]
            for target in targets:
                if target != me:
                    edges.add((me, target, f"{path.relative_to(paths.ROOT)}:{line}"))
    bad = [f"{where}: {a} (layer {LAYERS[a]}) imports {b} (layer {LAYERS[b]})"
           for a, b, where in sorted(edges) if LAYERS[b] >= LAYERS[a]]
    assert not bad, "\n".join(bad)
    # the check above is what makes the graph acyclic; say so with a graph walk too
    graph: dict[str, set[str]] = {}
    for a, b, _ in edges:
        graph.setdefault(a, set()).add(b)

    def reaches(start: str, goal: str, seen: set[str]) -> bool:
        for nxt in graph.get(start, ()):
            if nxt == goal or (nxt not in seen and reaches(nxt, goal, seen | {nxt})):
                return True
        return False

    assert not [u for u in graph if reaches(u, u, {u})]


@pytest.mark.parametrize("path", _modules(), ids=lambda p: str(p.relative_to(SINK)))
def test_long_modules_say_why_they_are_one_piece(path: Path) -> None:
    text = path.read_text()
    lines = text.count("\n")
    if lines <= LONG_MODULE_LINES:
        return
    doc = ast.get_docstring(ast.parse(text)) or ""
    assert LONG_MODULE_MARK in doc, (
        f"{path.relative_to(paths.ROOT)} has {lines} lines: split it by concept, or say at its "
        f"top ('{LONG_MODULE_MARK} …') why it is one piece")


def test_every_subpackage_documents_itself() -> None:
    for sub in sorted(SUBPACKAGES):
        doc = ast.get_docstring(ast.parse((SINK / sub / "__init__.py").read_text()))
        assert doc and "Inside:" in doc, f"sink/{sub}/__init__.py: say what each module holds"
