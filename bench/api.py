"""API benchmark: our hot endpoints next to a bare Starlette "hello" app, same server, one run.

Both apps run under the same uvicorn settings (`--workers N --no-access-log --log-level
warning`, httptools, asyncio loop) on loopback, one app at a time. A load generator in a
separate process drives C keep-alive connections with raw HTTP/1.1 (one request in flight
per connection) and records every latency. Data: the real embedded dataset, loaded once
into a throwaway SQLite file, grades computed; our requests carry an API key and pass the
rate limiter (Redis at 127.0.0.1:6379 when reachable, else the in-process limiter).

Targets: GET /v1/tokens/ETH ≥ 0.5× bare req/s and p99 ≤ 10 ms at 64 connections;
GET /v1/grades?limit=100 ≥ 0.25× bare req/s and p99 ≤ 20 ms.

Run: .venv/bin/python bench/api.py [--seconds 5 --connections 64 --workers 1 2]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing as mp
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
import redis

from coinlens.services.context import build_context
from coinlens.services.grades import run_grades
from coinlens.services.keys import KeySpec, create_key
from coinlens.services.loading import load_embedded
from coinlens.settings import get_settings

REDIS_URL = "redis://127.0.0.1:6379/14"
PLANS = {
    "anonymous": {"per_minute": 10, "per_day": 100},
    "free": {"per_minute": 60, "per_day": 1000},
    "bench": {"per_minute": 1_000_000_000, "per_day": 1_000_000_000},
}
BARE = "bare_app:app"
OURS = "coinlens.api.app:create_app"

BARE_SOURCE = """
from starlette.applications import Starlette
from starlette.responses import PlainTextResponse
from starlette.routing import Route


async def hello(request):
    return PlainTextResponse("hello")


app = Starlette(routes=[Route("/", hello)])
"""


# --- load generator (runs in its own process) -----------------------------------------------


async def _worker(port: int, request: bytes, until: float, warm: float, out: list[float]) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    clock = time.perf_counter
    while True:
        t0 = clock()
        if t0 >= until:
            break
        writer.write(request)
        line = await reader.readline()
        if not line.startswith(b"HTTP/1.1 200"):
            raise RuntimeError(f"unexpected answer {line!r}")
        length = 0
        while (h := await reader.readline()) != b"\r\n":
            if h[:15].lower() == b"content-length:":
                length = int(h[15:])
        await reader.readexactly(length)
        t1 = clock()
        if t0 >= warm:
            out.append(t1 - t0)
    writer.close()


def _drive(port: int, request: bytes, conns: int, seconds: float, queue: mp.Queue) -> None:
    async def main() -> list[float]:
        out: list[float] = []
        start = time.perf_counter()
        warm, until = start + 1.0, start + 1.0 + seconds
        await asyncio.gather(*(_worker(port, request, until, warm, out) for _ in range(conns)))
        return out

    queue.put(asyncio.run(main()))


def measure(
    port: int, path: str, headers: dict[str, str], conns: int, seconds: float
) -> dict[str, float]:
    """req/s, p50 and p99 (ms) of GET `path` with `conns` keep-alive connections."""
    head = "".join(f"{k}: {v}\r\n" for k, v in headers.items())
    request = f"GET {path} HTTP/1.1\r\nHost: bench\r\n{head}\r\n".encode()
    queue: mp.Queue = mp.get_context("spawn").Queue()
    proc = mp.get_context("spawn").Process(
        target=_drive, args=(port, request, conns, seconds, queue)
    )
    proc.start()
    lat = sorted(queue.get())
    proc.join()
    n = len(lat)
    return {
        "rps": n / seconds,
        "p50": lat[n // 2] * 1000,
        "p99": lat[min(n - 1, int(n * 0.99))] * 1000,
    }


# --- servers --------------------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def serve(
    target: str, workers: int, env: dict[str, str], app_dir: Path
) -> tuple[subprocess.Popen[bytes], int]:
    """Start uvicorn with the shared settings; wait until it answers."""
    port = _free_port()
    cmd = [
        sys.executable,
        "-m",
        "uvicorn",
        target,
        "--port",
        str(port),
        "--workers",
        str(workers),
        "--no-access-log",
        "--log-level",
        "warning",
        "--loop",
        "asyncio",
        "--http",
        "httptools",
        "--app-dir",
        str(app_dir),
    ]
    if target == OURS:
        cmd.append("--factory")
    proc = subprocess.Popen(cmd, env=env)
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        try:
            httpx.get(
                f"http://127.0.0.1:{port}/healthz"
                if target == OURS
                else f"http://127.0.0.1:{port}/",
                timeout=1,
            )
            return proc, port
        except httpx.HTTPError:
            time.sleep(0.2)
    proc.kill()
    raise TimeoutError(target)


def stop(proc: subprocess.Popen[bytes]) -> None:
    proc.terminate()
    proc.wait(timeout=30)


# --- setup ----------------------------------------------------------------------------------


def prepare(data_dir: Path, redis_url: str | None) -> str:
    """Load the embedded dataset, grade it, and make a key on an unlimited plan."""
    settings = get_settings(env="test", data_dir=data_dir, plans=PLANS, redis_url=redis_url)
    ctx = build_context(settings)
    t0 = time.perf_counter()
    load_embedded(ctx)
    run_grades(ctx)
    print(f"setup: dataset loaded and graded in {time.perf_counter() - t0:.0f} s")
    key = create_key(ctx, KeySpec(name="bench", plan="bench")).plaintext
    ctx.engine.dispose()
    return key


def _redis_url() -> str | None:
    try:
        redis.Redis.from_url(REDIS_URL, socket_connect_timeout=1).ping()
        return REDIS_URL
    except redis.RedisError:
        return None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    args = parser.parse_args()
    redis_url = _redis_url()
    work = Path(tempfile.mkdtemp(prefix="coinlens-bench-api-"))
    (work / "bare_app.py").write_text(BARE_SOURCE)
    key = prepare(work / "data", redis_url)
    env = {
        **os.environ,
        "COINLENS_ENV": "test",
        "COINLENS_DATA_DIR": str(work / "data"),
        "COINLENS_PLANS": json.dumps(PLANS),
        "COINLENS_LOG_LEVEL": "WARNING",
    }
    if redis_url:
        env["COINLENS_REDIS_URL"] = redis_url
    print(
        f"limiter: {'Redis ' + redis_url if redis_url else 'in-process'}; "
        f"{args.connections} connections, {args.seconds:.0f} s per run, {os.cpu_count()} CPUs"
    )
    auth = {"X-API-Key": key}
    rows = []
    for workers in args.workers:
        proc, port = serve(BARE, workers, env, work)
        bare = measure(port, "/", {}, args.connections, args.seconds)
        stop(proc)
        proc, port = serve(OURS, workers, env, work)
        token = measure(port, "/v1/tokens/ETH", auth, args.connections, args.seconds)
        grades = measure(port, "/v1/grades?limit=100", auth, args.connections, args.seconds)
        stop(proc)
        rows += [
            (workers, "bare Starlette hello", bare, None, None),
            (workers, "GET /v1/tokens/ETH", token, token["rps"] / bare["rps"], (0.5, 10.0)),
            (
                workers,
                "GET /v1/grades?limit=100",
                grades,
                grades["rps"] / bare["rps"],
                (0.25, 20.0),
            ),
        ]
    head = ("workers", "endpoint", "req/s", "p50 ms", "p99 ms", "ratio")
    print("\n{:>7}  {:<26} {:>9} {:>7} {:>7} {:>6}  target".format(*head))
    for workers, name, r, ratio, target in rows:
        verdict = ""
        if target is not None and ratio is not None:
            ok = ratio >= target[0] and r["p99"] <= target[1]
            verdict = f"≥{target[0]}× & p99≤{target[1]:.0f} ms: {'MET' if ok else 'NOT MET'}"
        ratio_s = f"{ratio:.2f}" if ratio is not None else ""
        cells = f"{r['rps']:>9,.0f} {r['p50']:>7.2f} {r['p99']:>7.2f} {ratio_s:>6}"
        print(f"{workers:>7}  {name:<26} {cells}  {verdict}")


if __name__ == "__main__":
    main()
