"""The secured stack (:class:`sink.stack.secure.SecureStack`) for the tests in this folder:
one per pytest session, started by the first test that asks for ``secure_stack`` (the rest
of the suite never pays for it), stopped at session end.

``WARP_TEST_SECURE_STACK_DIR`` reuses a secured stack already up in that directory (it is
left running), which makes iterating on these tests quick."""

from __future__ import annotations

import atexit
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from sink.stack.secure import SecureStack, SecureStackInfo


@pytest.fixture(scope="session")
def secure_stack() -> Iterator[SecureStackInfo]:
    if reuse := os.environ.get("WARP_TEST_SECURE_STACK_DIR"):
        yield SecureStack(Path(reuse)).up()
        return
    # Outside pytest's temporary root, for the reason given in tests/harness.py.
    root = Path(tempfile.mkdtemp(prefix="warp-test-secure-"))
    stack = SecureStack(root)
    atexit.register(stack.down)
    try:
        yield stack.up()
    finally:
        stack.down()
        atexit.unregister(stack.down)
        shutil.rmtree(root, ignore_errors=True)
