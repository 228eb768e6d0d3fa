"""Load test of the app with real browsers: prints figures, asserts nothing.

    python benchmarks/load_app_browser.py [--sessions 3] [--moves 10] [--interval 2]
                                          [--processes 1]

Starts ``--processes`` app processes on 127.0.0.1 (the deployment's command line,
``greenpath.app.deploy``), then ``--sessions`` headless Chromium browsers (Debian's
``/usr/bin/chromium`` through Playwright, one process each, 1366x768, spread over the app
processes round-robin as sticky sessions would pin them).  Each opens the app and then,
every ``--interval`` seconds (the first move at a random offset), presses ArrowRight on
one of three levers in turn (industrial coal switching, wind, rooftop PV), all sessions
at the same time.  Figures, defined as in ``bench_app.py`` (whose page probes are used):

* **lever -> KPIs** and **lever -> every chart in view incl. bands redrawn**: from the
  key press to the last KPI re-delivered and to the last change of a chart in view once
  the rerun finished; over every move of every session: median, 95th percentile, max;
* **unsettled moves**: moves whose page did not settle within 60 s;
* **server CPU per move**: user + system CPU seconds of the app processes while the
  sessions ran (their first page loads included), divided by the moves made; the
  machine's load average at the end.

A move takes as long as it takes: the next one of a session starts at its next tick or
when the page settled, whichever is later (a person waits for the charts too).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import subprocess
import sys
import time
from pathlib import Path

from bench_app import CHROMIUM, CHROMIUM_ARGS, LEVERS, QUIET_MS, SETTLED, VIEW, WATCH, cpu_seconds, open_page, rss_mb

ROOT = Path(__file__).resolve().parents[1]


def client(url: str, moves: int, interval: float, seed: int) -> None:
    """One browser session: print one JSON line per move (ms to KPIs and charts, or None)."""
    from playwright.sync_api import sync_playwright

    rng = random.Random(seed)
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), headless=True,
                                     args=CHROMIUM_ARGS)
        try:
            page, _, first, _ = open_page(browser, url, (1366, 768))
            print(json.dumps({"first_chart_ms": first * 1000}), flush=True)
            start = time.perf_counter() + rng.uniform(0, interval)
            for i in range(moves):
                delay = start + i * interval - time.perf_counter()
                if delay > 0:
                    time.sleep(delay)
                lever = LEVERS[(i + seed) % len(LEVERS)]
                page.evaluate(WATCH, [list(VIEW), lever])
                slider = page.locator(f".st-key-w_lever_{lever} input[type=range]")
                slider.focus()
                slider.press("ArrowRight")
                try:
                    page.wait_for_function(SETTLED, arg=QUIET_MS, timeout=60_000, polling=50)
                except Exception:  # noqa: BLE001 - counted as unsettled by the parent
                    print(json.dumps({"kpi": None, "chart": None}), flush=True)
                    continue
                b = page.evaluate("() => window.__bench")
                print(json.dumps({"kpi": b["kpi"] - b["key"], "chart": b["chart"] - b["key"]}),
                      flush=True)
        finally:
            browser.close()


def _describe(name: str, ms: list[float]) -> None:
    if not ms:
        print(f"{name}: no settled move")
        return
    ms = sorted(ms)
    p95 = ms[min(len(ms) - 1, int(round(0.95 * (len(ms) - 1))))]
    print(f"{name}: median {statistics.median(ms):.0f} ms, p95 {p95:.0f} ms, "
          f"max {ms[-1]:.0f} ms (n={len(ms)})")


def main() -> None:
    """Run the load test and print its figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sessions", type=int, default=3)
    parser.add_argument("--moves", type=int, default=10)
    parser.add_argument("--interval", type=float, default=2.0)
    parser.add_argument("--processes", type=int, default=1)
    parser.add_argument("--client", help=argparse.SUPPRESS)
    parser.add_argument("--seed", type=int, default=0, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.client:
        client(args.client, args.moves, args.interval, args.seed)
        return
    if not CHROMIUM.is_file():
        raise SystemExit(f"{CHROMIUM} not found: apt-get install chromium")
    from load_app import start_servers  # this folder: the deployment's processes

    servers = start_servers(args.processes, 0)
    urls = [f"http://127.0.0.1:{p}" for _, p in servers]
    try:
        # One page load per process first: the model load and first runs are not measured.
        for url in urls:
            subprocess.run([sys.executable, __file__, "--client", url, "--moves", "0"],
                           cwd=ROOT / "benchmarks", check=True, capture_output=True,
                           timeout=600)
        cpu0 = sum(cpu_seconds(proc.pid) for proc, _ in servers)
        clients = [subprocess.Popen([sys.executable, __file__, "--client", urls[i % len(urls)],
                                     "--moves", str(args.moves), "--interval",
                                     str(args.interval), "--seed", str(i)],
                                    cwd=ROOT / "benchmarks", stdout=subprocess.PIPE, text=True)
                   for i in range(args.sessions)]
        lines = []
        for c in clients:
            out, _ = c.communicate(timeout=args.moves * (args.interval + 60) + 600)
            lines += [json.loads(x) for x in out.splitlines() if x.startswith("{")]
        cpu = sum(cpu_seconds(proc.pid) for proc, _ in servers) - cpu0
        memory = [rss_mb(proc.pid) for proc, _ in servers]
    finally:
        for proc, _ in servers:
            proc.terminate()
        for proc, _ in servers:
            proc.wait(timeout=30)
    moves = [x for x in lines if "kpi" in x]
    settled = [x for x in moves if x["kpi"] is not None]
    print(f"{args.sessions} Chromium sessions, {args.moves} moves each every "
          f"{args.interval:g} s, {args.processes} app process(es)")
    _describe("first load to first chart (warm server)", [x["first_chart_ms"] for x in lines
                                                          if "first_chart_ms" in x])
    _describe("lever -> KPIs", [x["kpi"] for x in settled])
    _describe("lever -> every chart in view incl. bands redrawn", [x["chart"] for x in settled])
    print(f"unsettled moves: {len(moves) - len(settled)} of {len(moves)}; server CPU "
          f"{1000 * cpu / max(1, len(moves)):.0f} ms per move (page loads included); memory "
          f"{', '.join(f'{m:.0f}' for m in memory)} MB resident")
    print(f"({os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f} at the end)")


if __name__ == "__main__":
    main()
