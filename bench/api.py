"""API benchmark: our hot endpoints next to a bare Starlette "hello" app, same server, one run.

Both apps run under the same server settings (`--workers N --no-access-log --log-level
warning`, uvicorn's proxy headers off, `--loop auto` — uvloop when installed, as `coinlens
serve` runs — or the loop given with `--loop`; uvicorn with httptools, or `--server granian`
for the comparison) on loopback, both started, measured in alternation: `--rounds` rounds
of bare, then each endpoint, one at a time; figures are medians over the rounds and each
ratio compares a round with the bare run just before it. A load generator in a separate
process (on uvloop when installed) drives C keep-alive connections with raw HTTP/1.1 (one
request in flight per connection), parses each answer from one read buffer, and records
every latency.
Data: the real embedded dataset, loaded once into a throwaway SQLite file, grades
computed; our requests carry an API key and pass the rate limiter (Redis at
127.0.0.1:6379 when reachable, else the in-process limiter).

Targets: GET /v1/tokens/ETH ≥ 0.5× bare req/s and p99 ≤ 10 ms at 64 connections;
GET /v1/grades?limit=100 ≥ 0.25× bare req/s and p99 ≤ 20 ms.

Run: .venv/bin/python bench/api.py [--seconds 5 --rounds 3 --connections 64 --workers 1 2
     --loop auto --server uvicorn|granian]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing as mp
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

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
    """One keep-alive connection: send, read the whole answer, repeat.

    The answer is parsed from one buffer (header end, then Content-Length) rather than a
    `readline` per header: the generator shares the machine's cores with the servers, and
    its cost per response would otherwise grow with the number of headers an app sends.
    """
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    clock = time.perf_counter
    buf = b""
    while True:
        t0 = clock()
        if t0 >= until:
            break
        writer.write(request)
        while (end := buf.find(b"\r\n\r\n")) < 0:
            buf += await _read(reader)
        head = buf[:end].lower()
        if not head.startswith(b"http/1.1 200"):
            raise RuntimeError(f"unexpected answer {buf[:end]!r}")
        at = head.find(b"\r\ncontent-length:") + 17
        if at < 17:
            raise RuntimeError("an answer without Content-Length")
        stop = head.find(b"\r\n", at)
        total = end + 4 + int(head[at : stop if stop >= 0 else None])
        while len(buf) < total:
            buf += await _read(reader)
        buf = buf[total:]
        t1 = clock()
        if t0 >= warm:
            out.append(t1 - t0)
    writer.close()


async def _read(reader: asyncio.StreamReader) -> bytes:
    chunk = await reader.read(1 << 16)
    if not chunk:
        raise RuntimeError("the server closed the connection")
    return chunk


def _drive(
    port: int, request: bytes, conns: int, seconds: float, queue: mp.Queue[list[float]]
) -> None:
    async def main() -> list[float]:
        out: list[float] = []
        start = time.perf_counter()
        warm, until = start + 1.0, start + 1.0 + seconds
        await asyncio.gather(*(_worker(port, request, until, warm, out) for _ in range(conns)))
        return out

    try:  # the generator's own loop: uvloop when installed (less CPU taken from the servers)
        import uvloop

        queue.put(uvloop.run(main()))
    except ImportError:
        queue.put(asyncio.run(main()))


def measure(
    port: int, path: str, headers: dict[str, str], conns: int, seconds: float
) -> dict[str, float]:
    """req/s, p50 and p99 (ms) of GET `path` with `conns` keep-alive connections."""
    head = "".join(f"{k}: {v}\r\n" for k, v in headers.items())
    request = f"GET {path} HTTP/1.1\r\nHost: bench\r\n{head}\r\n".encode()
    queue: mp.Queue[list[float]] = mp.get_context("spawn").Queue()
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


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def serve(
    target: str,
    workers: int,
    env: dict[str, str],
    app_dir: Path,
    loop: str = "auto",
    server: str = "uvicorn",
) -> tuple[subprocess.Popen[bytes], int]:
    """Start the server with the shared settings; wait until it answers."""
    port = free_port()
    common = ["--port", str(port), "--workers", str(workers), "--no-access-log"]
    common += ["--log-level", "warning", "--loop", loop]
    if server == "granian":  # its Rust HTTP/1.1 stack, ASGI interface, asyncio tasks
        cmd = [sys.executable, "-m", "granian", "--interface", "asgi", "--host", "127.0.0.1"]
        cmd += [*common, "--http", "1", "--working-dir", str(app_dir), target]
    else:
        cmd = [sys.executable, "-m", "uvicorn", target, *common, "--http", "httptools"]
        cmd += ["--no-proxy-headers", "--app-dir", str(app_dir)]  # as `coinlens serve`
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


def _load() -> str:
    """The 1/5/15-minute load averages (other work on the machine skews every figure)."""
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


ENDPOINTS = (  # name, path, target (ratio to bare, p99 ms)
    ("GET /v1/tokens/ETH", "/v1/tokens/ETH", (0.5, 10.0)),
    ("GET /v1/grades?limit=100", "/v1/grades?limit=100", (0.25, 20.0)),
)
Row = tuple[int, str, dict[str, float], list[float], tuple[float, float] | None]


def compare(workers: int, env: dict[str, str], work: Path, key: str, args: Any) -> list[Row]:
    """Bare and ours both up; `rounds` rounds of bare, then each endpoint, back to back.

    Other work on the machine comes and goes; alternating short runs and taking each
    figure's median (and each round's ratio to the bare run just before it) keeps the
    comparison between the two apps fair when the load shifts during the benchmark.
    """
    bare_proc, bare_port = serve(BARE, workers, env, work, args.loop, args.server)
    ours_proc, ours_port = serve(OURS, workers, env, work, args.loop, args.server)
    runs: dict[str, list[dict[str, float]]] = {"bare": [], **{n: [] for n, _, _ in ENDPOINTS}}
    try:
        for _ in range(args.rounds):
            runs["bare"].append(measure(bare_port, "/", {}, args.connections, args.seconds))
            for name, path, _ in ENDPOINTS:
                auth = {"X-API-Key": key}
                runs[name].append(measure(ours_port, path, auth, args.connections, args.seconds))
    finally:
        stop(ours_proc)
        stop(bare_proc)
    bare = runs["bare"]
    rows: list[Row] = [(workers, "bare Starlette hello", _median(bare), [], None)]
    for name, _, target in ENDPOINTS:
        ratios = [r["rps"] / b["rps"] for r, b in zip(runs[name], bare, strict=True)]
        rows.append((workers, name, _median(runs[name]), ratios, target))
    return rows


def _median(runs: list[dict[str, float]]) -> dict[str, float]:
    return {k: statistics.median(r[k] for r in runs) for k in runs[0]}


def report(rows: list[Row]) -> None:
    """One line per workers × endpoint: medians over the rounds, and the verdict."""
    head = ("workers", "endpoint", "req/s", "p50 ms", "p99 ms", "ratio", "ratio range")
    print("\n{:>7}  {:<26} {:>9} {:>7} {:>7} {:>6} {:>11}  target".format(*head))
    for workers, name, r, ratios, target in rows:
        verdict, ratio_s, spread = "", "", ""
        if target is not None:
            ratio = statistics.median(ratios)
            ok = ratio >= target[0] and r["p99"] <= target[1]
            verdict = f"≥{target[0]}× & p99≤{target[1]:.0f} ms: {'MET' if ok else 'NOT MET'}"
            ratio_s, spread = f"{ratio:.2f}", f"{min(ratios):.2f}–{max(ratios):.2f}"
        cells = f"{r['rps']:>9,.0f} {r['p50']:>7.2f} {r['p99']:>7.2f} {ratio_s:>6} {spread:>11}"
        print(f"{workers:>7}  {name:<26} {cells}  {verdict}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--loop", choices=["auto", "asyncio", "uvloop"], default="auto")
    parser.add_argument(
        "--server",
        choices=["uvicorn", "granian"],
        default="uvicorn",
        help="uvicorn (httptools; what `coinlens serve` runs) or granian (pip install granian)",
    )
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
        f"{args.connections} connections, {args.rounds} rounds of {args.seconds:.0f} s, "
        f"{os.cpu_count()} CPUs, {args.server}, loop {args.loop}; load average {_load()}"
    )
    rows = [row for workers in args.workers for row in compare(workers, env, work, key, args)]
    report(rows)
    print(f"load average after: {_load()}")


if __name__ == "__main__":
    main()
