from __future__ import annotations

import os
import sys

import pytest

from adk.state.run_settings import new_run_id


def test_run_ids_are_unique_random_hex() -> None:
    ids = [new_run_id() for _ in range(1000)]
    assert len(set(ids)) == len(ids)
    assert all(len(i) == 32 and int(i, 16) >= 0 for i in ids)


@pytest.mark.skipif(not hasattr(os, "fork") or sys.platform == "win32", reason="needs fork")
def test_a_forked_child_never_repeats_its_parents_run_ids() -> None:
    new_run_id()  # the parent now holds unused ids
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child
        try:
            os.write(write, ",".join(new_run_id() for _ in range(100)).encode())
        finally:
            os._exit(0)
    os.close(write)
    with os.fdopen(read) as pipe:
        child = set(pipe.read().split(","))
    os.waitpid(pid, 0)
    parent = {new_run_id() for _ in range(100)}
    assert len(child) == 100 and not child & parent
