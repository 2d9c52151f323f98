"""The system's libpq (``libpq.so.5``) through ctypes: ``PQconninfoParse``, the parser
every PostgreSQL client built on libpq uses, as the reference for :mod:`sink.config.dsn`."""

from __future__ import annotations

import ctypes
import ctypes.util
from functools import cache


class _Option(ctypes.Structure):
    _fields_ = [("keyword", ctypes.c_char_p), ("envvar", ctypes.c_char_p),
                ("compiled", ctypes.c_char_p), ("val", ctypes.c_char_p),
                ("label", ctypes.c_char_p), ("dispchar", ctypes.c_char_p),
                ("dispsize", ctypes.c_int)]


@cache
def _lib() -> ctypes.CDLL | None:
    for name in ("libpq.so.5", ctypes.util.find_library("pq")):
        if not name:
            continue
        try:
            lib = ctypes.CDLL(name)
        except OSError:
            continue
        lib.PQconninfoParse.restype = ctypes.POINTER(_Option)
        lib.PQconninfoParse.argtypes = [ctypes.c_char_p, ctypes.POINTER(ctypes.c_char_p)]
        lib.PQconninfoFree.argtypes = [ctypes.POINTER(_Option)]
        lib.PQfreemem.argtypes = [ctypes.c_void_p]
        return lib
    return None


def available() -> bool:
    return _lib() is not None


def conninfo_parse(text: str) -> dict[str, str] | None:
    """The keywords libpq reads from ``text`` (None: libpq refuses it)."""
    lib = _lib()
    assert lib is not None
    err = ctypes.c_char_p()
    opts = lib.PQconninfoParse(text.encode(), ctypes.byref(err))
    if not opts:
        if err.value is not None:
            lib.PQfreemem(err)
        return None
    out: dict[str, str] = {}
    try:
        i = 0
        while opts[i].keyword is not None:
            if opts[i].val is not None:
                out[opts[i].keyword.decode()] = opts[i].val.decode()
            i += 1
    finally:
        lib.PQconninfoFree(opts)
    return out
