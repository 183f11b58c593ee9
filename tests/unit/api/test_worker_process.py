"""Per-process state of an API worker: request ids across a fork, the garbage collector's
young-generation threshold during the app's lifespan."""

from __future__ import annotations

import gc
import os
import re

from fastapi.testclient import TestClient

from coinlens.api.app import GC_YOUNG_THRESHOLD, create_app
from coinlens.api.logging import request_id_from
from coinlens.settings import Settings


def test_fresh_request_ids_are_random_hex_and_never_repeat() -> None:
    ids = [request_id_from(None) for _ in range(2_000)]  # several reads of randomness
    assert all(re.fullmatch("[0-9a-f]{32}", i) for i in ids)
    assert len(set(ids)) == len(ids)
    assert request_id_from(b"client-chosen.id_1") == "client-chosen.id_1"
    assert request_id_from(b"bad id\r\n") != "bad id\r\n"


def test_a_forked_worker_does_not_repeat_its_parents_request_ids() -> None:
    request_id_from(None)  # the parent holds unused ids read ahead
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: its next id, then leave without running pytest's teardown
        try:
            os.write(write, request_id_from(None).encode())
        finally:
            os._exit(0)
    os.close(write)
    child = os.read(read, 64).decode()
    os.close(read)
    os.waitpid(pid, 0)
    assert re.fullmatch("[0-9a-f]{32}", child)
    assert child != request_id_from(None)


def test_the_app_raises_the_young_gc_threshold_while_it_runs(sqlite_settings: Settings) -> None:
    before = gc.get_threshold()
    with TestClient(create_app(sqlite_settings)) as client:
        assert client.get("/healthz").status_code == 200
        assert gc.get_threshold() == (GC_YOUNG_THRESHOLD, *before[1:])
    assert gc.get_threshold() == before
