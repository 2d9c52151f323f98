"""What ``pip install .`` gives a user: every third-party module ``sink/`` imports comes
with the package. The shared development venv holds every extra, so a dependency missing
from pyproject.toml goes unnoticed there and only breaks the installed ``warp-sink`` (the
wheel, the Docker image) with a ModuleNotFoundError on every command."""

from __future__ import annotations

import ast
import re
import sys
import tomllib
from importlib.metadata import packages_distributions

from tests import paths

SINK = paths.ROOT / "sink"


def _requirement_names(specs: list[str]) -> set[str]:
    return {_normal(re.split(r"[\s<>=!~;\[]", spec, maxsplit=1)[0]) for spec in specs}


def _normal(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _imports() -> dict[str, bool]:
    """Top-level module name -> imported at module level (else only inside a function)."""
    found: dict[str, bool] = {}
    for path in SINK.rglob("*.py"):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        top = {id(node) for node in tree.body}
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            else:
                continue
            for name in names:
                root = name.split(".")[0]
                found[root] = found.get(root, False) or id(node) in top
    return found


def test_every_third_party_import_is_a_declared_dependency() -> None:
    project = tomllib.loads((paths.ROOT / "pyproject.toml").read_text())["project"]
    required = _requirement_names(project["dependencies"])
    optional = set().union(*(_requirement_names(v)
                             for v in project["optional-dependencies"].values()))
    dists = packages_distributions()
    missing = []
    for module, at_import in sorted(_imports().items()):
        if module == "sink" or module in sys.stdlib_module_names:
            continue
        provided = {_normal(d) for d in dists.get(module, [module])}
        # A module-level import must be installed by `pip install .`; one inside a function
        # (uvloop behind --event-loop) may come from an extra.
        allowed = required if at_import else required | optional
        # pydantic_core comes with pydantic (its own pinned dependency).
        if not provided & allowed and not (module == "pydantic_core" and "pydantic" in required):
            missing.append(f"{module} ({', '.join(sorted(provided))})")
    assert not missing, f"imported by sink/ but not in pyproject dependencies: {missing}"
