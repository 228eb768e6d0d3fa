"""Benchmark of `greenpath check` and `greenpath compare`.

Prints, each as the median wall-clock time of ``--repeat`` runs in this process after
one warm-up (compiled engines cached on disk and in memory, as in CI after the first
step):

* full check: every rule of model/checks.toml over the shipped scenarios and the rule
  file's sample (5,000 settings by default), counterexample shrinking on, the vector
  engine on 2 worker processes;
* compare of the presets: two model versions (the installed model and a copy of it in
  a temporary folder, so both sides are compiled, run and traced) over the shipped
  scenarios, no sample, with the trace;
* compare --against reference: the installed model against model/reference/.

Next to each warm figure: the median CPU seconds of the same runs (this process and the
engine's forked workers, ``os.times``; less sensitive to other processes' load than wall
time) and the 1-minute load average.

And once each, cold: the full check and the compare of the presets in a fresh
process with an empty cache folder (the .mdl and its year-table variants generated).

    python benchmarks/bench_checks.py [--samples 5000] [--repeat 3] [--no-cold]
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _cpu_seconds() -> float:
    """CPU time of this process and its reaped children (the engine's forked workers)."""
    t = os.times()
    return t.user + t.system + t.children_user + t.children_system


def _median(fn, repeat: int) -> float:
    fn()  # warm-up
    times, cpu = [], []
    for _ in range(repeat):
        start, cpu0 = time.perf_counter(), _cpu_seconds()
        fn()
        times.append(time.perf_counter() - start)
        cpu.append(_cpu_seconds() - cpu0)
    _LAST_CPU[0] = statistics.median(cpu)
    return statistics.median(times)


#: median CPU seconds (process + forked workers) of the last :func:`_median` call
_LAST_CPU = [float("nan")]


def _load() -> str:
    return f"CPU {_LAST_CPU[0]:.2f} s, load average {os.getloadavg()[0]:.1f}"


def main() -> None:
    """Print the figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=None, help="sampled settings (default: the rule file's)")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--no-cold", action="store_true", help="skip the cold-cache check")
    args = parser.parse_args()

    from greenpath.runners import checks
    from greenpath.runners import compare as cmp
    from greenpath.runners.versions import ModelVersion

    current = ModelVersion.current()
    rules = checks.load_rules(checks.RULES_PATH, current)
    n = rules.samples if args.samples is None else args.samples
    last = {}

    def full_check():
        last["check"] = checks.run_check(current, rules, samples=n)

    t_check = _median(full_check, args.repeat)
    report = last["check"]
    print(f"full check: {len(report.results)} rules, {report.n_shipped} shipped + {n} sampled settings: "
          f"{t_check:.2f} s (median of {args.repeat}, warm; {_load()}); {report.headline()}")

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        for rel, src in (("model/jiaozuo.mdl", current.mdl_path), ("model/parameters.csv", current.registry_path),
                         ("calibration/calibrated.toml", current.calibration_path)):
            if src is not None:
                (root / rel).parent.mkdir(parents=True, exist_ok=True)
                shutil.copy(src, root / rel)
        copy = ModelVersion(root, "copy")
        t_cmp = _median(lambda: cmp.compare(current, copy, sample=0), args.repeat)
        print(f"compare of the presets (2 versions x {report.n_shipped} scenarios, all outputs, trace): "
              f"{t_cmp:.2f} s (median of {args.repeat}, warm; {_load()})")
    t_ref = _median(lambda: cmp.compare_reference(current), args.repeat)
    print(f"compare --against reference ({report.n_shipped} scenarios): {t_ref:.2f} s "
          f"(median of {args.repeat}, warm; {_load()})")

    if not args.no_cold:
        with tempfile.TemporaryDirectory() as cache:
            env = dict(os.environ, GREENPATH_CACHE_DIR=cache)
            start = time.perf_counter()
            subprocess.run([sys.executable, "-m", "greenpath.cli", "check", "--samples", str(n)], env=env,
                           check=False, capture_output=True, cwd=ROOT)
            print(f"full check in a fresh process and an empty cache (engines generated): "
                  f"{time.perf_counter() - start:.2f} s (load average {os.getloadavg()[0]:.1f})")
        with tempfile.TemporaryDirectory() as cache, tempfile.TemporaryDirectory() as tmp:
            root = Path(tmp)
            for rel in ("model/jiaozuo.mdl", "model/parameters.csv", "calibration/calibrated.toml"):
                (root / rel).parent.mkdir(parents=True, exist_ok=True)
                shutil.copy(ROOT / rel, root / rel)
            env = dict(os.environ, GREENPATH_CACHE_DIR=cache)
            start = time.perf_counter()
            subprocess.run([sys.executable, "-m", "greenpath.cli", "compare", str(root), "--sample", "0"], env=env,
                           check=False, capture_output=True, cwd=ROOT)
            print(f"compare of the presets in a fresh process and an empty cache (both versions generated): "
                  f"{time.perf_counter() - start:.2f} s (load average {os.getloadavg()[0]:.1f})")
    print(f"({os.cpu_count()} CPUs visible; other processes' load is not controlled)")


if __name__ == "__main__":
    main()
