"""Where the browser's time of a lever move goes: prints figures, asserts nothing.

    python benchmarks/profile_app_browser.py [--moves 9] [--top 15]

Starts ``streamlit run app.py`` and headless Chromium as ``bench_app.py`` does (1366x768,
the same three levers in turn, each move to new settings, waiting until every chart in
view has settled), with Chromium's sampling profiler (DevTools ``Profiler``, one sample
every 0.5 ms) running in the page over the moves.  Figures, per move (the profile's
milliseconds divided by the number of moves):

* **by script**: time of the samples whose innermost function belongs to each
  JavaScript file of the page (Streamlit's bundles are named by part: ``react-dom``
  React's rendering, ``embed`` and ``vega-*`` Vega drawing the charts,
  ``StreamlitMarkdown``, ``Slider``, ``protobuf`` decoding the messages...),
  ``(program)`` the browser's own work outside JavaScript (style, layout, paint),
  ``(garbage collector)``, and ``(idle)`` waiting;
* **by function, inclusive**: the functions most often on the stack.

Sampling slows the page a little; compare runs of this script with each other, not with
``bench_app.py``.  The machine's load average is printed with the figures.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from collections import Counter

from bench_app import CHROMIUM, CHROMIUM_ARGS, ROOT, free_port, moves, open_page, wait_healthy


def _name(frame: dict) -> str:
    return (f"{frame['functionName'] or '(anonymous)'} "
            f"{frame['url'].rsplit('/', 1)[-1]}:{frame['lineNumber']}")


def summarise(profile: dict, n: int, top: int) -> None:
    """Print the profile's time per move by script and by function (inclusive)."""
    nodes = {node["id"]: node for node in profile["nodes"]}
    parent = {child: node["id"] for node in profile["nodes"] for child in node.get("children", [])}
    by_script: Counter[str] = Counter()
    inclusive: Counter[str] = Counter()
    for sample, delta in zip(profile["samples"], profile["timeDeltas"], strict=True):
        frame = nodes[sample]["callFrame"]
        by_script[frame["url"].rsplit("/", 1)[-1] or frame["functionName"]] += delta
        seen, node = set(), sample
        while node in nodes:
            name = _name(nodes[node]["callFrame"])
            if name not in seen:
                inclusive[name] += delta
                seen.add(name)
            node = parent.get(node)
    total = sum(profile["timeDeltas"])
    print(f"profiled: {total / 1000 / n:.0f} ms per move (idle included)")
    print("by script (ms per move):")
    for name, us in by_script.most_common(top):
        print(f"  {us / 1000 / n:7.1f}  {name}")
    print("by function, inclusive (ms per move):")
    for name, us in inclusive.most_common(top + 5)[1:]:  # the first is the root
        print(f"  {us / 1000 / n:7.1f}  {name}")


def main() -> None:
    """Run the profile and print its figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--moves", type=int, default=9)
    parser.add_argument("--top", type=int, default=15)
    args = parser.parse_args()
    if not CHROMIUM.is_file():
        raise SystemExit(f"{CHROMIUM} not found: apt-get install chromium")
    from playwright.sync_api import sync_playwright

    port = free_port()
    url = f"http://127.0.0.1:{port}"
    cmd = [sys.executable, "-m", "streamlit", "run", str(ROOT / "app.py"), "--server.port",
           str(port), "--server.address", "127.0.0.1", "--server.headless", "true",
           "--browser.gatherUsageStats", "false"]
    proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_healthy(url, proc)
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=str(CHROMIUM), headless=True,
                                         args=CHROMIUM_ARGS)
            try:
                page, *_ = open_page(browser, url, (1366, 768))
                time.sleep(1.0)
                cdp = page.context.new_cdp_session(page)
                cdp.send("Profiler.enable")
                cdp.send("Profiler.setSamplingInterval", {"interval": 500})
                cdp.send("Profiler.start")
                moves(page, "ArrowRight", args.moves)
                profile = cdp.send("Profiler.stop")["profile"]
            finally:
                browser.close()
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    summarise(profile, args.moves, args.top)
    print(f"({os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f}; {args.moves} moves "
          "to new settings, 1366x768)")


if __name__ == "__main__":
    main()
