"""Benchmark of the vector ensemble engine and its scalar backend against PySD.

Prints scenarios/second of the vector engine (``backend="vector"``) for N = 1,
100 and 10,000 scenarios (each with its own constants), the time of one PySD
run for comparison, and peak memory.

Single runs (one scenario, every variable returned, the .mdl's own TIME STEP
and SAVEPER), all in this one process, each after one untimed warm-up run:
the median wall time of (a) the scalar backend (``VectorModel.simulate(n=1,
backend="scalar")``, the dict of one array per column) over ``--single-runs``
runs, (b) the same through ``JiaozuoModel(engine="scalar").run`` (registry
defaults, result frame and metadata included) over ``--single-runs`` runs,
(c) the PySD path (``JiaozuoModel(engine="pysd").run``, PySD with fast
lookups) over a tenth of them (at least 5), (d) stock PySD (``pysd.load`` of
the translation, ``run(params=<every registry parameter>)``) over a fiftieth
(at least 3); next to each, the median CPU time of this process per run
(``time.process_time``, less sensitive to other processes' load than wall
time) and the 1-minute load average; then the ratios (d)/(a) and (d)/(b), in
wall and in CPU time.  (b)-(d) need model/jiaozuo.mdl.  ``--single-only``
prints only these.

Corpus (``--no-corpus`` skips it): every Vensim model vendored from the SDXorg
test-models corpus (tests/fixtures/test_models) is loaded and, unless the
engine refuses it, run and compared with its canonical output at 1e-5
relative and absolute; printed: models that match, that differ (as PySD does,
listed in the fixtures' MANIFEST.json), that the engine refuses, and the
refused constructs with their counts.

Uses model/jiaozuo.mdl when it exists, else a generated model of about 200
variables (``--synthetic`` forces the generated one).  The run is 2005-2035
with TIME STEP 0.25 (120 Euler steps) unless ``--time-step`` says otherwise.

    python benchmarks/bench_vector.py [--synthetic] [--time-step 0.25] [--repeat 3]

Outputs are kept small by default (the model's headline indicators, or 20
stocks): returning every variable for 10,000 scenarios is ~1 GB of results,
whose first touch costs more than the integration itself; ``--all-columns``
measures that case too.
"""

from __future__ import annotations

import argparse
import gc
import os
import resource
import shutil
import sys
import tempfile
import time
import tracemalloc
import warnings
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
REAL_MODEL = ROOT / "model" / "jiaozuo.mdl"
HEADLINE = [
    "gdp",
    "industrial_va",
    "total_energy_consumption",
    "energy_intensity",
    "total_coal_consumption",
    "non_fossil_share",
    "renewable_capacity",
    "co2_emissions",
    "co2_intensity",
    "electricity_consumption",
]


# -- a synthetic model of realistic size ----------------------------------------------

_CONTROL = """
********************************************************
	.Control
********************************************************~
		Simulation Control Parameters
	|

FINAL TIME  = 2035
	~	Year
	~	The final time for the simulation.
	|

INITIAL TIME  = 2005
	~	Year
	~	The initial time for the simulation.
	|

SAVEPER  = 1
	~	Year [0,?]
	~	The frequency with which output is stored.
	|

TIME STEP  = 0.25
	~	Year [0,?]
	~	The time step for the simulation.
	|
"""


def synthetic_mdl(sectors: int = 12) -> str:
    """Return the text of a Vensim model of ``16 * sectors + 10`` variables.

    Per sector a capacity stock with investment/retirement, an intensity stock, a
    lookup, a SMOOTH, a DELAY3, IF THEN ELSE / MIN / MAX logic and emissions; plus
    economy-wide aggregates.
    """
    eq = []

    def add(name, expr, units="Dmnl", doc=""):
        eq.append(f"{name}=\n\t{expr}\n\t~\t{units}\n\t~\t{doc}\n\t|\n")

    add("gdp growth", "0.06 - 0.001 * (Time - 2005)", "1/Year", "Economic growth rate.")
    add("policy year", "2020", "Year", "Start of the policy package.")
    add("policy on", "IF THEN ELSE(Time >= policy year, 1, 0)", "Dmnl", "Policy switch.")
    add("carbon price", "RAMP(5, policy year, 2035)", "Yuan/t", "Carbon price path.")
    add("price response", "0.002", "1/(Yuan/t)", "Intensity response to the carbon price.")
    add("coal factor", "2.66", "tCO2/tce", "Emission factor of coal.")
    for i in range(sectors):
        s = f"sector {i}"
        eq.append(
            f"{s} capacity= INTEG (\n\t{s} investment - {s} retirement,\n\t\t{s} initial capacity)\n"
            "\t~\tMt\n\t~\tInstalled capacity.\n\t|\n"
        )
        eq.append(
            f"{s} intensity= INTEG (\n\t- {s} intensity decline,\n\t\t{s} initial intensity)\n"
            "\t~\ttce/t\n\t~\tEnergy intensity.\n\t|\n"
        )
        add(f"{s} initial capacity", f"{50 + 10 * i}", "Mt", "Capacity in 2005.")
        add(f"{s} initial intensity", f"{1 + 0.1 * i}", "tce/t", "Intensity in 2005.")
        add(f"{s} lifetime", f"{20 + i}", "Year", "Average plant life.")
        add(f"{s} utilisation effect", "(0,1.2),(0.5,1.1),(1,1),(1.5,0.7),(2,0.4)", "Dmnl")
        eq[-1] = (
            eq[-1].replace(f"{s} utilisation effect=\n\t", f"{s} utilisation effect(\n\t").replace("0.4)\n", "0.4))\n")
        )
        add(
            f"{s} investment",
            f"MAX(0, {s} capacity * (gdp growth + 1 / {s} lifetime) * "
            f"{s} utilisation effect({s} capacity / {s} target capacity))",
            "Mt/Year",
        )
        add(f"{s} retirement", f"{s} capacity / {s} lifetime", "Mt/Year")
        add(f"{s} target capacity", f"{s} initial capacity * EXP(0.04 * (Time - 2005))", "Mt")
        add(
            f"{s} intensity decline",
            f"({s} intensity - {s} intensity floor) * MIN(0.2, {s} base decline "
            f"+ carbon price * price response * policy on)",
            "tce/t/Year",
        )
        add(f"{s} intensity floor", f"{0.3 + 0.02 * i}", "tce/t")
        add(f"{s} base decline", "0.01", "1/Year")
        add(f"{s} energy", f"{s} capacity * {s} intensity", "Mtce/Year")
        add(f"{s} smoothed energy", f"SMOOTH({s} energy, 2)", "Mtce/Year")
        add(f"{s} delivered capacity", f"DELAY3({s} investment, 3)", "Mt/Year")
        add(f"{s} emissions", f"{s} smoothed energy * coal factor", "MtCO2/Year")
    total = " + ".join(f"sector {i} emissions" for i in range(sectors))
    add("total emissions", total, "MtCO2/Year", "Sum of sector emissions.")
    energy = " + ".join(f"sector {i} energy" for i in range(sectors))
    add("total energy", energy, "Mtce/Year", "Sum of sector energy.")
    add("emission intensity", "ZIDZ(total emissions, total energy)", "tCO2/tce")
    add("peak flag", "IF THEN ELSE(total emissions > 2000, 1, 0)", "Dmnl")
    return "{UTF-8}\n" + "\n".join(eq) + _CONTROL


# -- measurement ---------------------------------------------------------------------


def _best(fn, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        gc.collect()
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def _random_params(constants: dict[str, float], n: int, rng) -> dict[str, np.ndarray]:
    """+-5% on every constant that is not a calendar year or a 0/1 switch."""
    params = {}
    for name, value in constants.items():
        if value in (0.0, 1.0) or 1900.0 <= value <= 2100.0:
            continue
        params[name] = value * rng.uniform(0.95, 1.05, n)
    return params


def _median_ms(fn, runs: int) -> float:
    """Median wall time of ``runs`` calls in ms; the median CPU time (this process) goes to ``_CPU_MS``."""
    fn()  # warm-up: first-call costs (column plans, imports) are not a run's
    times, cpu = [], []
    for _ in range(runs):
        start, cpu0 = time.perf_counter(), time.process_time()
        fn()
        times.append(time.perf_counter() - start)
        cpu.append(time.process_time() - cpu0)
    _CPU_MS[0] = float(np.median(cpu)) * 1e3
    return float(np.median(times)) * 1e3


#: the CPU-time median of the last :func:`_median_ms` call, ms (less load-sensitive than wall time)
_CPU_MS = [float("nan")]


def _cpu() -> str:
    return f"(CPU {_CPU_MS[0]:.2f} ms, load average {os.getloadavg()[0]:.1f})"


def _single_runs(model, mdl: Path, label: str, every: list[str], runs: int) -> None:
    """Print the single-run figures defined in the module docstring."""
    module = model.module
    control = module._resolve_control(module._resolve_params_one(None), None, None, None, None)
    times, save = module._schedule(*control)
    print(
        f"single run, every variable ({len(every)} columns), the .mdl's TIME STEP {control[2]:g} "
        f"({len(times) - 1} steps, {sum(save)} saved times), median of {runs}:"
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        params: dict = {}
        if label == "model/jiaozuo.mdl":
            from greenpath.model import registry as reg

            params = reg.effective_defaults()
        scalar_ms = _median_ms(lambda: model.simulate(params, 1, return_columns=every, backend="scalar"), runs)
        scalar_cpu = _CPU_MS[0]
        print(f"  (a) scalar backend:                 {scalar_ms:8.2f} ms {_cpu()}")
        if label != "model/jiaozuo.mdl":
            return
        from greenpath.engines.pysd_engine import JiaozuoModel

        scalar_model = JiaozuoModel(engine="scalar")
        pysd_path = JiaozuoModel(engine="pysd")
        outputs = scalar_model.outputs
        end_ms = _median_ms(lambda: scalar_model.run(return_columns=outputs), runs)
        end_cpu = _CPU_MS[0]
        print(f"  (b) JiaozuoModel(engine='scalar'):  {end_ms:8.2f} ms {_cpu()} ({len(outputs)} outputs)")
        path_ms = _median_ms(lambda: pysd_path.run(return_columns=outputs), max(5, runs // 10))
        print(f"  (c) PySD path (fast lookups):       {path_ms:8.2f} ms {_cpu()}")
        import pysd

        stock = pysd.load(str(pysd_path.py_path))
        stock_ms = _median_ms(lambda: stock.run(params=dict(params), progress=False), max(3, runs // 50))
        stock_cpu = _CPU_MS[0]
        print(f"  (d) stock PySD:                     {stock_ms:8.2f} ms {_cpu()}")
        print(
            f"  stock PySD / scalar backend: {stock_ms / scalar_ms:,.0f}x wall, {stock_cpu / scalar_cpu:,.0f}x CPU; "
            f"stock PySD / JiaozuoModel(engine='scalar'): {stock_ms / end_ms:,.0f}x wall, "
            f"{stock_cpu / end_cpu:,.0f}x CPU; PySD path / scalar backend: {path_ms / scalar_ms:,.0f}x wall"
        )


def _corpus_counts(cache: Path) -> None:
    """Print the corpus figures defined in the module docstring."""
    from collections import Counter

    sys.path.insert(0, str(ROOT / "scripts"))
    from vendor_test_models import canonical_file, compare

    from greenpath.engines.vector import UnsupportedConstructError

    corpus = ROOT / "tests" / "fixtures" / "test_models"
    status: Counter = Counter()
    refused: Counter = Counter()
    start = time.perf_counter()
    for mdl in sorted(corpus.glob("**/*.mdl")):
        try:
            canon = canonical_file(mdl)
            if canon is None:  # only refused models are vendored without an output
                from greenpath.engines.vector import generate

                generate(mdl)
                status["runs, no canonical output vendored"] += 1
                continue
            status["match" if not compare(mdl, canon, cache) else "differ (as PySD)"] += 1
        except UnsupportedConstructError as error:
            status["refused"] += 1
            refused[error.construct] += 1
    seconds = time.perf_counter() - start
    total = sum(status.values())
    print(
        f"test-models corpus ({total} Vensim models, {seconds:.1f} s): "
        + ", ".join(f"{k} {v}" for k, v in status.most_common())
    )
    print("  refused: " + "; ".join(f"{k} {v}" for k, v in refused.most_common()))


def main(argv: list[str] | None = None) -> None:
    """Run the benchmark described above and print its figures.

    Parameters
    ----------
    argv : list of str, optional
        Command-line arguments (default: ``sys.argv[1:]``).
    """
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--synthetic", action="store_true", help="use the generated model")
    parser.add_argument("--time-step", type=float, default=0.25)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--pysd-runs", type=int, default=3)
    parser.add_argument("--all-columns", action="store_true", help="also return every variable")
    parser.add_argument("--single-runs", type=int, default=200, help="runs behind each single-run median")
    parser.add_argument("--no-corpus", action="store_true", help="skip the test-models corpus counts")
    parser.add_argument(
        "--single-only", action="store_true", help="only the single-run figures (a)-(d) (implies --no-corpus)"
    )
    args = parser.parse_args(argv)

    from greenpath.engines.vector import VectorModel

    work = Path(tempfile.mkdtemp(prefix="bench_vector_"))
    try:
        if REAL_MODEL.exists() and not args.synthetic:
            mdl = work / REAL_MODEL.name
            shutil.copy(REAL_MODEL, mdl)
            label = "model/jiaozuo.mdl"
        else:
            mdl = work / "synthetic.mdl"
            mdl.write_text(synthetic_mdl(), encoding="utf-8")
            label = "synthetic model"

        start = time.perf_counter()
        model = VectorModel(mdl, work / "cache")
        generate_s = time.perf_counter() - start
        start = time.perf_counter()
        VectorModel(mdl, work / "cache")
        cached_s = time.perf_counter() - start
        meta = model.variables
        kinds = {k: sum(1 for m in meta if m["kind"] == k) for k in ("constant", "stock", "auxiliary", "lookup")}
        steps = len(model.module._schedule(2005, 2035, args.time_step, 1)[0]) - 1
        print(f"model: {label}, {len(meta)} variables {kinds}")
        print(f"generate + compile: {generate_s * 1e3:.0f} ms; cached load: {cached_s * 1e3:.0f} ms")

        every = [m["py_name"] for m in meta if m["kind"] != "lookup"]
        if args.single_only:
            _single_runs(model, mdl, label, every, args.single_runs)
            return
        print(f"ensembles: 2005-2035, TIME STEP {args.time_step} ({steps} Euler steps), SAVEPER 1")
        names = {m["py_name"] for m in meta}
        columns = [c for c in HEADLINE if c in names]
        if len(columns) < 5:
            columns = [m["py_name"] for m in meta if m["kind"] == "stock"][:20]
        print(f"returned columns: {len(columns)} ({', '.join(columns[:4])}, ...)")

        rng = np.random.default_rng(0)
        control = {"time_step": args.time_step}
        rows = []
        cases = [(n, columns, "subset") for n in (1, 100, 10_000)]
        if args.all_columns:
            cases += [(n, every, "all") for n in (1, 100, 10_000)]
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            for n, cols, what in cases:
                params = _random_params(model.constants, n, rng)
                for workers in (1, 2) if n >= 1000 else (1,):
                    seconds = _best(
                        lambda p=params, n=n, c=cols, w=workers: model.simulate(
                            p, n, return_columns=c, workers=w, backend="vector", **control
                        ),
                        args.repeat,
                    )
                    rows.append((n, what, len(cols), workers, seconds))
                    print(
                        f"  N={n:>6} cols={len(cols):>3} ({what:>6}) workers={workers}: "
                        f"{seconds:8.4f} s  {n / seconds:>12,.0f} scenarios/s"
                    )

        # peak memory of one 10,000-scenario run (NumPy reports to tracemalloc)
        params = _random_params(model.constants, 10_000, rng)
        gc.collect()
        tracemalloc.start()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            out = model.simulate(params, 10_000, return_columns=columns, **control)
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        result_mb = sum(v.nbytes for v in out.values()) / 2**20
        del out
        print(
            f"peak traced memory, N=10,000 ({len(columns)} columns): {peak / 2**20:.1f} MiB "
            f"(of which results {result_mb:.1f} MiB)"
        )

        # PySD, one run at a time
        pysd_s = float("nan")
        try:
            import pysd

            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                pysd_model = pysd.read_vensim(str(mdl))
                pysd_model.run(time_step=args.time_step, return_columns=columns)
                pysd_s = _best(
                    lambda: pysd_model.run(time_step=args.time_step, return_columns=columns, reload=True),
                    args.pysd_runs,
                )
        except Exception as error:  # noqa: BLE001 - the benchmark reports and goes on
            print(f"PySD run failed: {error!r}")
        print(f"PySD: {pysd_s:.3f} s per run ({1 / pysd_s:,.1f} scenarios/s)")
        best = {n: min(s for m, what, _, _, s in rows if m == n and what == "subset") for n in (1, 100, 10_000)}
        for n, seconds in best.items():
            print(f"  speed-up vs PySD at N={n:>6}: {pysd_s * n / seconds:>10,.0f}x")

        _single_runs(model, mdl, label, every, args.single_runs)
        if not args.no_corpus:
            _corpus_counts(work / "corpus_cache")

        usage = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        children = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
        scale = 1 if sys.platform == "darwin" else 1024  # bytes on macOS, KiB on Linux
        print(
            f"peak RSS: this process {usage * scale / 2**20:.0f} MiB, largest worker {children * scale / 2**20:.0f} MiB"
        )
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
