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
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx

PLANS = {
    "anonymous": {"per_minute": 3, "per_day": 100},
    "free": {"per_minute": 60, "per_day": 1000},
}
CLI = [sys.executable, "-c", "from coinlens.cli.main import app; app()"]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_serve_ignores_forwarded_for_from_an_unlisted_loopback_peer(tmp_path: Path) -> None:
    port = _free_port()
    env = {
        **os.environ,
        "COINLENS_ENV": "test",
        "COINLENS_PLANS": json.dumps(PLANS),
        "COINLENS_LOG_LEVEL": "WARNING",
    }
    env.pop("COINLENS_REDIS_URL", None)  # the in-process limiter: one process, exact
    env.pop("COINLENS_TRUSTED_PROXIES", None)
    command = [*CLI, "serve", "--data-dir", str(tmp_path / "data"), "--port", str(port)]
    proc = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL)
    try:
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 60
        while True:
            assert proc.poll() is None, f"coinlens serve exited with {proc.returncode}"
            try:
                if httpx.get(f"{base}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline, "coinlens serve did not start"
            time.sleep(0.2)
        with httpx.Client(base_url=base) as client:
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
