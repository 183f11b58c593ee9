"""Bench: server render time of the dashboard pages on the embedded (real) dataset.

Serves the app with uvicorn on 127.0.0.1 (one worker, as `coinlens up`) and requests each
page sequentially from one client, so the figure is the server's render time plus loopback,
not queueing. Next to it, in the same run and under the same server settings, a bare
Starlette app returning a fixed HTML page of the token page's size (the anchor: what the
server and the client cost with no work at all).

    .venv/bin/python bench/web.py [--data-dir DIR] [--rounds 20]

Without --data-dir the embedded dataset is loaded into a fresh directory and the pipeline
(analytics, grades, forecasts) run there first (about two minutes); pass the data dir of
`make run` (var/) to reuse it. Target (issue 6): token page p95 ≤ 150 ms.
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
from api import free_port  # bench/api.py, beside this script

from coinlens.settings import get_settings

TOKENS = ["BTC", "ETH", "SOL", "PEPE", "DOGE", "LINK", "ARB", "OP", "UNI", "AAVE"]
TARGET_MS = 150.0


def _serve(app: Any) -> tuple[str, Callable[[], None]]:
    import uvicorn

    port = free_port()
    config = uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", access_log=False)
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 60
    while not server.started:
        if time.monotonic() > deadline:
            raise RuntimeError("uvicorn did not start")
        time.sleep(0.05)

    def stop() -> None:
        server.should_exit = True
        thread.join(timeout=10)

    return f"http://127.0.0.1:{port}", stop


def _prepare(data_dir: Path) -> None:
    from coinlens.services.analytics import run_analytics
    from coinlens.services.context import build_context
    from coinlens.services.forecasts import run_forecasts
    from coinlens.services.grades import run_grades
    from coinlens.services.loading import load_embedded

    ctx = build_context(get_settings(env="test", data_dir=data_dir))
    try:
        load_embedded(ctx)
        run_analytics(ctx)
        run_grades(ctx)
        run_forecasts(ctx)
    finally:
        ctx.engine.dispose()


def _timings(client: httpx.Client, paths: list[str], rounds: int) -> list[float]:
    for path in paths:  # warm caches (numba, SQLite pages, templates)
        client.get(path).raise_for_status()
    out = []
    for _ in range(rounds):
        for path in paths:
            t0 = time.perf_counter()
            response = client.get(path)
            out.append((time.perf_counter() - t0) * 1000)
            response.raise_for_status()
    return out


def _row(name: str, ms: list[float]) -> str:
    p95 = statistics.quantiles(ms, n=20)[-1]
    return f"{name:<34}{statistics.median(ms):>9.1f}{p95:>9.1f}{max(ms):>9.1f}{len(ms):>6}"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data-dir", type=Path)
    ap.add_argument("--rounds", type=int, default=20)
    args = ap.parse_args()
    from starlette.applications import Starlette
    from starlette.responses import HTMLResponse
    from starlette.routing import Route

    from coinlens.api.app import create_app

    tmp = None
    data_dir = args.data_dir
    if data_dir is None:
        tmp = tempfile.TemporaryDirectory(prefix="coinlens-bench-web-")
        data_dir = Path(tmp.name)
        print("loading the embedded dataset and running the pipeline ...", flush=True)
        _prepare(data_dir)
    app = create_app(get_settings(env="test", data_dir=data_dir, log_level="WARNING"))
    url, stop = _serve(app)
    try:
        with httpx.Client(base_url=url, timeout=30) as client:
            token_pages = [f"/t/{s}" for s in TOKENS]
            size = len(client.get("/t/ETH").content)
            results = {
                f"token page /t/SYMBOL ({len(TOKENS)} tokens)": _timings(
                    client, token_pages, args.rounds
                ),
                "overview /": _timings(client, ["/"], args.rounds * 2),
                "ecosystem /ecosystem": _timings(client, ["/ecosystem"], args.rounds * 2),
            }
    finally:
        stop()
    body = "x" * size

    async def page(_: Any) -> HTMLResponse:
        return HTMLResponse(body)

    bare_url, bare_stop = _serve(Starlette(routes=[Route("/t/{symbol}", page)]))
    try:
        with httpx.Client(base_url=bare_url, timeout=30) as client:
            bare = _timings(client, [f"/t/{s}" for s in TOKENS], args.rounds)
    finally:
        bare_stop()
    if tmp is not None:
        tmp.cleanup()
    print(f"embedded dataset in {data_dir}; sequential requests, one client, uvicorn 1 worker")
    print(f"{'page':<34}{'p50 ms':>9}{'p95 ms':>9}{'max ms':>9}{'n':>6}")
    for name, ms in results.items():
        print(_row(name, ms))
    print(_row(f"anchor: bare Starlette, {size:,} B", bare))
    token = results[f"token page /t/SYMBOL ({len(TOKENS)} tokens)"]
    p95 = statistics.quantiles(token, n=20)[-1]
    bare95 = statistics.quantiles(bare, n=20)[-1]
    verdict = "PASS" if p95 <= TARGET_MS else "FAIL"
    print(f"token page p95 {p95:.1f} ms vs bare {bare95:.1f} ms (ratio {p95 / bare95:.1f}x); "
          f"target p95 <= {TARGET_MS:.0f} ms: {verdict}")  # fmt: skip
    print(f"(cores: {os.cpu_count()}, load average {os.getloadavg()[0]:.2f})")


if __name__ == "__main__":
    main()
