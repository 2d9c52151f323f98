"""cartridge-warp sink.

The decoder's hot path may be compiled with mypyc (setup.py): each compiled module is a
``.so`` next to its ``.py``, and Python's import system prefers the ``.so``. In a source
tree (an editable install, ``make``) a ``.py`` edited after the build would then be
silently ignored, so the finder below loads the whole compiled group as pure Python when
any of its sources is newer than its build (compiled modules call each other natively:
one stale module means the group is stale), or when ``WARP_NO_MYPYC`` is set. Rebuilding
(``make build``) brings the compiled modules back. Installed wheels are not checked: their
file times say when pip unpacked them, not when they were built.
"""

from __future__ import annotations

import importlib.machinery
import importlib.util
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from types import ModuleType

_HERE = Path(__file__).resolve().parent
# The shared library of the compiled group (setup.py's GROUP).
_GROUP_LIB = "_hot__mypyc"


def _compiled_sources() -> dict[str, Path]:
    """Module name -> .py of every module of the package that has a compiled build."""
    found: dict[str, Path] = {}
    for lib in _HERE.rglob("*.so"):
        py = lib.with_name(lib.name.split(".", 1)[0] + ".py")
        if py.exists():
            found[".".join(py.relative_to(_HERE.parent).with_suffix("").parts)] = py
    return found


def _pure_reason(sources: dict[str, Path]) -> str | None:
    if os.environ.get("WARP_NO_MYPYC", "") not in ("", "0"):
        return "WARP_NO_MYPYC is set"
    libs = list(_HERE.glob(f"{_GROUP_LIB}.*so"))
    if not libs:
        return "the compiled group's shared library is missing"
    if not (_HERE.parent / "pyproject.toml").exists():
        return None  # an installed wheel: its sources cannot be newer than its build
    built = min(p.stat().st_mtime for p in libs)
    stale = sorted(m for m, py in sources.items() if py.stat().st_mtime > built)
    return f"{', '.join(stale)} changed since the build (make build)" if stale else None


class _PureFinder:
    """Finds the ``.py`` of a compiled module instead of its ``.so``."""

    def __init__(self, sources: dict[str, Path]) -> None:
        self.sources = sources

    def find_spec(
        self, name: str, path: Sequence[str] | None, target: ModuleType | None = None
    ) -> importlib.machinery.ModuleSpec | None:
        py = self.sources.get(name)
        return None if py is None else importlib.util.spec_from_file_location(name, py)


def _install() -> None:
    sources = _compiled_sources()
    if not sources:
        return
    global pure_reason
    pure_reason = _pure_reason(sources)
    if pure_reason is not None:
        sys.meta_path.insert(0, _PureFinder(sources))


# Why the compiled modules are not in use (None: they are, or there are none).
pure_reason: str | None = None
_install()
