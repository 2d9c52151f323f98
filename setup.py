"""Compiles the hot path (decoder, writer) with mypyc when it can; pure Python when it cannot.

Everything else about the package is in pyproject.toml. The compiled modules are an
optimisation only (same code, type-checked by mypy --strict): the install never fails
because of them. They are skipped when WARP_NO_MYPYC is set to a non-empty value other
than 0, when mypyc is not importable, when there is no C compiler, or when the build
fails for any reason (a warning says why and the package stays pure Python).

Editable installs (scripts/bootstrap.sh) build them in place, next to their sources;
sink/_compiled.py falls back to the .py of a module edited after its build (README,
"Compiled decoder").
"""

from __future__ import annotations

import os
import shutil
import sys
import sysconfig
from pathlib import Path
from typing import Any

from setuptools import setup
from setuptools.command.build_ext import build_ext

HERE = Path(__file__).resolve().parent
# The decoder's hot path: Kafka bytes -> Record (bench/bench_decode.py). registry.py (HTTP,
# threads) stays pure: it is I/O, not CPU. framing.py is compiled for its per-message
# Confluent header and cache lookups (+5 % on Avro events, bench/README.md); its only
# await (a schema fetch) is rare.
# sink/errors.py stays pure: mypyc's native exception classes lose their class-level
# defaults (DecodeError().code raised AttributeError) and other modules subclass them.
# Then the writer's pure modules, the ones with a loop per record or per value (rows, plan's
# columns, reduce's positions, types/jsonb/dates/schema_types' column adaptation): about
# 14% less writer CPU (README, "Compiled decoder"). Everything with asyncpg I/O stays pure,
# and so do names.py (cached per field: nothing to gain) and the rest of the writer.
COMPILED = [
    "sink/records.py",
    "sink/decode/common.py",
    "sink/decode/column_types.py",
    "sink/decode/connect.py",
    "sink/decode/docjson.py",
    "sink/decode/envelope.py",
    "sink/decode/extjson.py",
    "sink/decode/extjson_key.py",
    "sink/decode/flat.py",
    "sink/decode/framing.py",
    "sink/decode/jsontext.py",
    "sink/decode/keyless.py",
    "sink/decode/mongo.py",
    "sink/decode/schema.py",
    "sink/postgres/dates.py",
    "sink/postgres/jsonb.py",
    "sink/postgres/plan.py",
    "sink/postgres/reduce.py",
    "sink/postgres/rows.py",
    "sink/postgres/schema_types.py",
    "sink/postgres/types.py",
]
# One shared library for the group, inside the package (a top-level module would not be
# importable through an editable install's finder, which maps only `sink`).
GROUP = "sink._hot"


def _say(message: str) -> None:
    print(f"warp-sink build: {message}", file=sys.stderr)


def _skip_reason() -> str | None:
    if os.environ.get("WARP_NO_MYPYC", "") not in ("", "0"):
        return "WARP_NO_MYPYC is set"
    cc = (sysconfig.get_config_var("CC") or "cc").split()[0]
    if shutil.which(os.environ.get("CC", cc).split()[0]) is None:
        return f"no C compiler ({cc}) on PATH"
    include = sysconfig.get_paths()["include"]
    if not (Path(include) / "Python.h").exists():
        return f"no Python headers ({include}/Python.h)"
    return None


class OptionalBuildExt(build_ext):
    """build_ext that leaves the package pure Python instead of failing the install.

    All or nothing: a shim module without its shared library would not import, so on any
    failure every extension already built is removed.
    """

    def run(self) -> None:
        try:
            super().run()
            if self.extensions:
                _say(f"compiled {len(self.extensions) - 1} modules with mypyc")
        except (Exception, SystemExit) as exc:  # any failure means pure Python
            for out in self.get_outputs():
                Path(out).unlink(missing_ok=True)
            _remove_inplace_builds()
            _say(f"mypyc build failed ({exc}); installing pure Python")
            self.extensions = []


# pip runs this file for metadata too (egg_info, dist_info): mypyc only runs for a build.
BUILDS = {"build", "build_ext", "bdist_wheel", "editable_wheel", "develop", "install"}
ARGS = set(sys.argv[1:])
INPLACE = bool(ARGS & {"editable_wheel", "develop", "--inplace", "-i"})


def _remove_inplace_builds() -> None:
    """An in-place build (editable install) starts from no extension modules in the tree: a
    pure build's .py files must not be shadowed by an earlier build's, nor a module that left
    COMPILED keep an old one that imports from a group library it is no longer in."""
    if INPLACE:
        for lib in (HERE / "sink").rglob("*.so"):
            lib.unlink()


def _extensions() -> list[Any]:
    if not ARGS & BUILDS:
        return []
    _remove_inplace_builds()
    reason = _skip_reason()
    if reason is None:
        try:
            from mypyc.build import mypycify
        except ImportError as exc:
            reason = f"mypyc not importable ({exc})"
    if reason is not None:
        _say(f"not compiling the decoder: {reason}; installing pure Python")
        return []
    try:
        # Only the compiled modules are type-checked here: the rest of the package (pydantic,
        # structlog...) is followed silently, its dependencies are not in the build env.
        args = ["--follow-imports=silent", *COMPILED]
        return list(mypycify(args, group_name=GROUP, opt_level="3", debug_level="0"))
    except (Exception, SystemExit) as exc:  # a type error: pure Python
        _say(f"mypyc could not compile the decoder ({exc}); installing pure Python")
        return []


os.chdir(HERE)  # mypycify takes paths relative to the project and reads its [tool.mypy]
setup(ext_modules=_extensions(), cmdclass={"build_ext": OptionalBuildExt})
