"""Benchmark of the meeting pack: prints figures, asserts nothing.

    python benchmarks/bench_report.py [--scenarios baseline plan_2021] [--lang both]
                                      [--presentation] [--repeat 3]

Prints the wall time of the full report (runs, charts as PNG + SVG, XLSX, PPTX) with
the model already loaded, split by step, and the median render time of each chart
(figure built and saved as PNG and SVG in memory) for one and for two scenarios.
"""

from __future__ import annotations

import argparse
import io
import statistics
import sys
import tempfile
import time
from pathlib import Path


def _render(fn, *args, **kwargs) -> None:
    fig = fn(*args, **kwargs)
    for fmt in ("png", "svg"):
        fig.savefig(io.BytesIO(), format=fmt, dpi=fig.dpi)


def _median_ms(fn, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times) * 1000


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark and print the figures."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--scenarios", nargs="+", default=["baseline", "plan_2021"])
    parser.add_argument("--lang", choices=("en", "zh", "both"), default="both")
    parser.add_argument("--presentation", action="store_true")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args(argv)

    start = time.perf_counter()
    from greenpath.cli.commands.report import build_report
    from greenpath.engines.pysd_engine import JiaozuoModel
    from greenpath.outputs import charts
    from greenpath.runners.report import run_scenarios
    from greenpath.scenarios import scenario as scenarios
    import_s = time.perf_counter() - start
    start = time.perf_counter()
    model = JiaozuoModel()
    load_s = time.perf_counter() - start

    with tempfile.TemporaryDirectory() as tmp:
        start = time.perf_counter()
        result = build_report(args.scenarios, Path(tmp) / "pack", lang=args.lang,
                                     presentation=args.presentation, model=model)
        total_s = time.perf_counter() - start
        size_mb = sum(p.stat().st_size for p in result.paths) / 1e6

    print(f"import greenpath.outputs.charts/deck (font registration): {import_s:.2f} s")
    print(f"model load: {load_s:.2f} s")
    print(f"full report, {len(args.scenarios)} scenarios ({', '.join(args.scenarios)}), "
          f"lang={args.lang}, presentation={args.presentation}: {total_s:.2f} s, "
          f"{len(result.paths)} files, {size_mb:.1f} MB")
    for step, seconds in result.timings.items():
        print(f"  {step:<28} {seconds * 1000:8.0f} ms")
    for lang, notes in result.notes.items():
        for note in notes:
            print(f"  note [{lang}]: {note}")

    runs, _, _ = run_scenarios([scenarios.load(n) for n in args.scenarios[:2]], model)
    both = {r.scenario.name: r.result for r in runs}
    one = dict(list(both.items())[:1])
    print(f"per-chart render, PNG + SVG in memory, median of {args.repeat} (ms):")
    print(f"  {'chart':<22}{'1 scen. en':>12}{'2 scen. zh':>12}{'2 scen. zh pres.':>18}")
    for key, (fn, _) in charts.CHARTS.items():
        a = _median_ms(lambda fn=fn: _render(fn, one, "en"), args.repeat)
        b = _median_ms(lambda fn=fn: _render(fn, both, "zh"), args.repeat)
        c = _median_ms(lambda fn=fn: _render(fn, both, "zh", presentation=True), args.repeat)
        print(f"  {key:<22}{a:12.0f}{b:12.0f}{c:18.0f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
