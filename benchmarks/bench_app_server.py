"""Server-side time of a lever move, in process: prints figures, asserts nothing.

    python benchmarks/bench_app_server.py [--moves 20]

Runs the app with Streamlit's ``AppTest`` (no browser, no websocket) at the default
meeting layout (charts in view: CO2, coal, renewables) and moves three levers in turn
(industrial coal switching, wind and rooftop PV build rates), one step up each time:
``--moves`` new settings, so nothing is cached.  Figures, each defined exactly:

* **script run per move**: wall time of ``AppTest.run()`` after the move: the whole
  script in this process, building and serialising every element (Streamlit's protocol
  messages), without the websocket and the browser.  ``AppTest`` always reruns the whole
  script; the app's server reruns only the simulator fragment, so this is an upper bound
  of the server's work by the page shell (title, language, page, preset: a few ms).
* **model run / bands / targets / chart specs / wedges per move**: wall time spent in
  ``ModelPool.run`` (the scalar single-run backend), ``uncertainty.compute`` (one
  ensemble of 500 samples on the vector engine giving the P10-P90 bands and the chance
  of each target), ``runner.evaluate_targets`` (the verdicts), ``greenpath.app.charts.build``
  (the Vega-Lite specs of the charts in view) and ``runner.compute_wedges`` during the
  move's script run, summed per move (the baseline's runs are cached from the first load);
* **rest of the page**: script run minus those (widgets, KPIs, badges, the scenario
  panel, Streamlit's element building);
* **CPU per move**: user + system CPU seconds of this process (every thread) over the
  move's script run: less disturbed than wall times by other work on a shared machine.

Median, 90th percentile and maximum over the moves.  The machine's load average is
printed with the figures: these are wall times and the machine may be shared.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
LEVERS = ("industrial_coal_substitution_rate", "wind_build_rate", "distributed_pv_build_rate")
PARTS = ("model run", "bands and chances", "targets", "chart specs", "wedges")


def _timed(spent: dict[str, float], part: str, func):
    """Wrap ``func`` so its wall time is added to ``spent[part]``."""
    def wrapper(*args, **kwargs):
        t0 = time.perf_counter()
        try:
            return func(*args, **kwargs)
        finally:
            spent[part] += time.perf_counter() - t0
    return wrapper


def main() -> None:
    """Run the benchmark and print its figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--moves", type=int, default=20)
    args = parser.parse_args()
    from streamlit.testing.v1 import AppTest

    from greenpath.app import charts as live
    from greenpath.app import runner, uncertainty

    spent: dict[str, float] = defaultdict(float)
    runner.ModelPool.run = _timed(spent, "model run", runner.ModelPool.run)
    uncertainty.compute = _timed(spent, "bands and chances", uncertainty.compute)
    runner.evaluate_targets = _timed(spent, "targets", runner.evaluate_targets)
    runner.compute_wedges = _timed(spent, "wedges", runner.compute_wedges)
    live.build = _timed(spent, "chart specs", live.build)

    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=300)
    t0 = time.perf_counter()
    at.run()
    first = time.perf_counter() - t0
    if at.exception:
        raise SystemExit(f"the app failed: {[e.value for e in at.exception]}")
    figures: dict[str, list[float]] = defaultdict(list)
    for i in range(args.moves):
        slider = at.slider(key=f"w_lever_{LEVERS[i % len(LEVERS)]}")
        slider.set_value(min(slider.max, slider.value + slider.step))
        spent.clear()
        t0, c0 = time.perf_counter(), time.process_time()
        at.run()
        total = time.perf_counter() - t0
        figures["CPU"].append((time.process_time() - c0) * 1000)
        if at.exception:
            raise SystemExit(f"move {i + 1} failed: {[e.value for e in at.exception]}")
        figures["script run"].append(total * 1000)
        for part in PARTS:
            figures[part].append(spent.get(part, 0.0) * 1000)
        figures["rest of the page"].append((total - sum(spent.values())) * 1000)
    print(f"first script run (cold process: model load, first runs, bands engine): {first:.2f} s")
    for name in ("script run", *PARTS, "rest of the page", "CPU"):
        ms = figures[name]
        p90 = statistics.quantiles(ms, n=10)[-1] if len(ms) > 1 else ms[0]
        print(f"{name} per move: median {statistics.median(ms):.1f} ms, p90 {p90:.1f} ms, "
              f"max {max(ms):.1f} ms (n={len(ms)})")
    print(f"({os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f}; levers "
          f"{', '.join(LEVERS)} in turn, one step up each)")


if __name__ == "__main__":
    main()
