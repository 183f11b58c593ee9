"""`coinlens serve`, the real command in its own process, on loopback.

The API judges `X-Forwarded-For` itself (`COINLENS_TRUSTED_PROXIES`, empty by default). The
server must not do it first: uvicorn, by default, believes the header from 127.0.0.1 and
rewrites the client address, so any local process (or a proxy the operator did not list)
could pick a fresh rate-limit bucket per request.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
import redis

from e2e.api_process import wait_ready
from unit.alerts.alert_receivers import free_port

PLANS = {
    "anonymous": {"per_minute": 3, "per_day": 100},
    "free": {"per_minute": 60, "per_day": 1000},
}
CLI = [sys.executable, "-c", "from coinlens.cli.main import app; app()"]
SERVE_REDIS_DB = 11  # flushed by the 2-worker case; no other test uses it


@pytest.mark.parametrize("workers", [1, 2])
def test_serve_ignores_forwarded_for_from_an_unlisted_loopback_peer(
    tmp_path: Path, workers: int, request: pytest.FixtureRequest
) -> None:
    port = free_port()
    env = {
        **os.environ,
        "COINLENS_ENV": "test",
        "COINLENS_PLANS": json.dumps(PLANS),
        "COINLENS_LOG_LEVEL": "WARNING",
    }
    env.pop("COINLENS_TRUSTED_PROXIES", None)
    if workers == 1:
        env.pop("COINLENS_REDIS_URL", None)  # the in-process limiter: one process, exact
    else:  # two processes share the loopback peer's bucket in Redis (its own database)
        base = request.getfixturevalue("redis_url").rsplit("/", 1)[0]
        env["COINLENS_REDIS_URL"] = f"{base}/{SERVE_REDIS_DB}"
        with redis.Redis.from_url(env["COINLENS_REDIS_URL"]) as client:
            client.flushdb()
    command = [*CLI, "serve", "--data-dir", str(tmp_path / "data"), "--port", str(port)]
    command += ["--workers", str(workers)]
    proc = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL)
    try:
        wait_ready(port, proc, timeout=60)
        with httpx.Client(base_url=f"http://127.0.0.1:{port}") as client:
            codes = [
                client.post(
                    "/v1/keys",
                    json={"name": f"n{i}"},
                    headers={"X-Forwarded-For": f"198.51.100.{i}"},
                ).status_code
                for i in range(6)
            ]
        # one bucket, the loopback peer's: 3 keys, then refusals (uvicorn's default gave 6 x 201)
        assert codes == [201, 201, 201, 429, 429, 429]
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=30)
