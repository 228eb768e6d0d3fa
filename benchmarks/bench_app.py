"""Benchmark of the app in headless Chromium: prints figures, asserts nothing.

    python benchmarks/bench_app.py [--changes 20] [--port 0]

Starts ``streamlit run app.py`` on 127.0.0.1 and drives Debian's Chromium
(``/usr/bin/chromium``) with Playwright:

* cold start: from launching the server to its health check answering, and to the
  first page's CO2 chart drawn (first session: model load, first runs, the ensemble
  engine's compilation); then a second, fresh browser session (warm server);
* lever -> chart: the time from a key press on a lever (the browser's own clock, at
  ``keydown``) to the last change of the CO2 chart's SVG (a MutationObserver in the
  page; the chart counts as drawn once it has not changed for 300 ms).  N presses of
  ArrowRight on the industrial coal-switching lever give N new settings (nothing cached:
  run, targets, bands and wedges are all computed); N presses of ArrowLeft then
  revisit them (cached results).  Median, minimum and maximum of each.

Goal: median lever -> chart below 1 s.
"""

from __future__ import annotations

import argparse
import os
import socket
import statistics
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]
LEVER = "industrial_coal_substitution_rate"  # in the expanded energy section
CHART = "chart_co2"
QUIET_MS = 300

WATCH = """([chart, lever]) => {
  const box = document.querySelector(`.st-key-${chart}`);
  window.__bench = {last: 0, key: 0};
  new MutationObserver(() => { window.__bench.last = performance.now(); })
    .observe(box, {subtree: true, childList: true, attributes: true, characterData: true});
  document.querySelector(`.st-key-w_lever_${lever} input[type=range]`)
    .addEventListener('keydown', () => { window.__bench.key = performance.now(); }, true);
}"""
SETTLED = """([chart, old, quiet]) => {
  const svg = document.querySelector(`.st-key-${chart} svg.marks`);
  const b = window.__bench;
  return svg !== null && svg.innerHTML !== old && b.last > b.key
         && performance.now() - b.last > quiet;
}"""


def free_port() -> int:
    """Return a TCP port nobody listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_healthy(url: str, proc: subprocess.Popen, timeout: float = 120.0) -> None:
    """Wait until the server's health check answers."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"streamlit exited with {proc.returncode}")
        try:
            with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as r:
                if r.status == 200:
                    return
        except OSError:
            time.sleep(0.05)
    raise SystemExit(f"streamlit did not answer on {url}")


def first_chart(browser, url: str) -> tuple[object, float]:
    """Return a new page at ``url`` and the seconds until its CO2 chart is drawn."""
    page = browser.new_page(viewport={"width": 1600, "height": 1100})
    t0 = time.perf_counter()
    page.goto(url, wait_until="domcontentloaded")
    page.wait_for_selector(f".st-key-{CHART} svg.marks", timeout=180_000)
    return page, time.perf_counter() - t0


def lever_changes(page, key: str, n: int) -> list[float]:
    """Milliseconds from each key press to the CO2 chart settled after it."""
    slider = page.locator(f".st-key-w_lever_{LEVER} input[type=range]")
    out = []
    for _ in range(n):
        old = page.locator(f".st-key-{CHART} svg.marks").first.inner_html()
        page.evaluate(WATCH, [CHART, LEVER])
        slider.focus()
        slider.press(key)
        page.wait_for_function(SETTLED, arg=[CHART, old, QUIET_MS], timeout=60_000,
                               polling=50)
        out.append(page.evaluate("() => window.__bench.last - window.__bench.key"))
    return out


def describe(name: str, ms: list[float]) -> None:
    """Print median, minimum and maximum of ``ms``."""
    print(f"{name}: median {statistics.median(ms):.0f} ms, min {min(ms):.0f} ms, "
          f"max {max(ms):.0f} ms (n={len(ms)})")


def main() -> None:
    """Run the benchmark and print its figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--changes", type=int, default=20)
    parser.add_argument("--port", type=int, default=0, help="0: any free port")
    args = parser.parse_args()
    if not CHROMIUM.is_file():
        raise SystemExit(f"{CHROMIUM} not found: apt-get install chromium")
    from playwright.sync_api import sync_playwright

    port = args.port or free_port()
    url = f"http://127.0.0.1:{port}"
    cmd = [sys.executable, "-m", "streamlit", "run", str(ROOT / "app.py"), "--server.port",
           str(port), "--server.address", "127.0.0.1", "--server.headless", "true",
           "--browser.gatherUsageStats", "false"]
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), headless=True,
                                     args=CHROMIUM_ARGS)
        t0 = time.perf_counter()
        proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL, env={**os.environ})
        try:
            wait_healthy(url, proc)
            healthy = time.perf_counter() - t0
            page, first = first_chart(browser, url)
            print(f"cold start: server answering {healthy:.2f} s after launch; first page's "
                  f"CO2 chart drawn {first:.2f} s later ({healthy + first:.2f} s in all)")
            second_page, second = first_chart(browser, url)
            second_page.close()
            print(f"second session on the warm server: CO2 chart drawn in {second:.2f} s")
            describe("lever -> CO2 chart drawn, new settings (nothing cached)",
                     lever_changes(page, "ArrowRight", args.changes))
            describe("lever -> CO2 chart drawn, settings seen before (cached)",
                     lever_changes(page, "ArrowLeft", args.changes))
        finally:
            browser.close()
            proc.terminate()
            proc.wait(timeout=30)
    print(f"({os.cpu_count()} CPUs; Chromium {CHROMIUM}; the chart counts as drawn when its "
          f"SVG has not changed for {QUIET_MS} ms)")


if __name__ == "__main__":
    main()
