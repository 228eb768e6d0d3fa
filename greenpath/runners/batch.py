"""Batches of runs: scenario lists, lever grids and Monte Carlo ensembles, resumable, at scale.

A batch is defined by a :class:`BatchSpec` (what to run) and written into one output
folder::

    OUT/manifest.json                 the spec, its hash, progress, software versions
    OUT/results/c000000.parquet ...   one file per chunk: one row per run and variable
                                      (run_id, scenario, variable, unit) and one column
                                      per year ("2005" ... "2035"); rows variable-major,
                                      one row group per variable
    OUT/runs/c000000.parquet ...      run_id, scenario, status, error, parameters (JSON of
                                      the run's settings; "" for grid and Monte Carlo
                                      runs, whose varied values are the columns named
                                      after them, on the base scenario of the spec),
                                      run_seconds, engine, model_sha256; the file's
                                      metadata records what the chunk holds
    OUT/targets/c000000.parquet ...   run_id, scenario, target id, value, met, margin, ...
    OUT/scenarios.parquet, .csv       one row per scenario: titles (en, zh), extends chain,
                                      source file and SHA-256 (of it and of each parent),
                                      mode, base scenario, seed and sampled names (Monte
                                      Carlo), run-id range, model SHA-256, calibration id
    OUT/summary.csv, summary_targets.csv, summary.xlsx
                                      mean and percentiles per scenario, variable and
                                      year; share of runs meeting each target
    OUT/iamc.csv                      the results in the IAMC template (greenpath.outputs.iamc):
                                      a Monte Carlo's summary (co2_emissions|P50, ...)
                                      per scenario, or every run of other batches
    OUT/results.csv, runs.csv, targets.csv
                                      only with ``csv=True`` (results in the long layout)

Why one column per year: a million runs of 25 variables by 31 years are 775 million
values; the long layout repeats scenario, run, variable and unit on every one of them.
Wide, they are 25 million rows of 31 numbers (about 3.6 KB per run on disk), and reading
one year reads one column.

How it loses nothing
--------------------
* Runs are cut into chunks (``chunk_size`` runs each, in run_id order).  A worker
  writes each of a chunk's three files into a temporary file, fsyncs it and renames it
  (results and targets first, runs last), so a chunk is finished when its runs file is
  there.  Files follow the umask.
* A restarted batch with the same spec (same command) checks every finished chunk
  (Parquet footers, row counts, the counts recorded in the runs file), runs a damaged
  one again, skips the others, and ends with exactly the files an uninterrupted batch
  writes: run ids and samples are a pure function of the spec (the Monte Carlo sample is
  seeded), whatever the chunk size and the number of workers.
* SIGINT and SIGTERM (inside :func:`handle_signals`, as ``greenpath batch`` runs it) stop
  the workers and raise :class:`BatchInterrupted` with one line saying how to resume.
* A folder holding a different spec (its hash is in the manifest) is refused, and so
  is a non-empty folder without a manifest, unless ``force`` is given; ``force`` then
  deletes only the batch's own files (manifest, datasets, summary, the result files).
* A run that raises or returns non-finite values is recorded in ``runs`` with
  ``status = "failed"`` and its error; the other runs carry on.

Where runs go
-------------
Every chunk is a small task (its runs as arrays, or run specs for scenario lists and
explicit runs) run by :func:`_work` in this process (``workers=1``, the default unless
more processes pay for their start-up: :func:`default_workers`; a thread writes chunk k
while chunk k+1 computes), in a pool of processes (each loading its model once; on the
vector engine this process runs chunks beside ``workers - 1`` helpers), or on a Dask
distributed cluster (``scheduler=
"tcp://host:port"``, or ``"local:N"`` for a local one), all through the one parallel
layer :mod:`greenpath.engines.parallel`; the worker writes the chunk's
files itself and returns only counts, and at most two tasks per worker are in flight,
so memory does not grow with the number of runs.  A grid or Monte Carlo chunk runs on
the NumPy vector engine in one :func:`greenpath.runners.ensemble.run_many` call (arrays in,
arrays out); other chunks, and any chunk the vector engine refuses, go through
:func:`run_chunk`'s path: the vector engine per year-table structure through
:func:`greenpath.runners.ensemble.run_specs` (``engine="auto"``, the default; if it refuses the
model or fails, a warning says why and the chunk runs on PySD), only the vector engine
(``engine="vector"``: its failure fails the chunk's runs) or PySD (``engine="pysd"``,
the reference, one run after the other).  The runs table records the engine of each
run and the SHA-256 of the model that engine was built from.

Monte Carlo
-----------
A Latin hypercube (:func:`greenpath.runners.ensemble.latin_hypercube`, the algorithm of
``scipy.stats.qmc.LatinHypercube``, seeded; written to ``OUT/sample.bin`` while the batch
runs and read back by row range for each chunk), uniform in each registry ``[min,
max]`` (an assumption: the registry gives ranges, not distributions), on top of a base
scenario's settings; a sampled uncertainty overrides the base scenario's value.  By
default it samples the *projection uncertainties*
(:func:`greenpath.runners.ensemble.projection_uncertainties`: those whose whole range leaves
the calibrated history 2005-2020 unchanged), so every run starts from the same
recorded 2020 (CO2, coal, GDP, ...) and differs only from the policy start on.  The
uncertainties the calibration pins to the history (initial GDP, 2017 growth, initial
shares, ...) are sampled only when asked for (``uncertainties="all"`` or a list of
names; ``--uncertainty all`` on the command line): sampling them across their prior
ranges moves 2020 CO2 far from the calibrated 39 Mt. Instead, the calibrated parameters
that are neither sampled nor set by the base scenario take the calibration's posterior
draws (run ``i`` takes row ``i`` of :func:`greenpath.calibration.posterior.draw_rows`
``(n, seed)``; ``definition["posterior"]`` records the names and the posterior file's
SHA-256, and a chunk refuses a different file), so the history spreads only as far as
the recorded data allow; without a usable posterior a warning says why.

Public API (stable)
-------------------
``BatchSpec``, ``RunSpec``, ``BatchError``
``scenario_batch(names, ...)``, ``grid_batch(grid, base="baseline", ...)``,
``monte_carlo_batch(n, seed, base="baseline", uncertainties="projection", ...)``,
``runs_batch(specs, ...)``
    Build a spec.
``run_chunk(specs, columns=None, engine="auto", targets=None) -> ChunkResult``
    Run one chunk (the single place where runs happen).
``run_batch(spec, out_dir, workers=None, scheduler=None, force=False, progress=True,
csv=False, percentiles=(10, 50, 90))``
    Run or resume a batch; returns a :class:`BatchSummary`.
``handle_signals()``, ``BatchInterrupted``
    Stop cleanly on SIGINT and SIGTERM.
``read(out_dir) -> dict[str, DataFrame]``
    The ``results`` (long), ``runs``, ``targets`` and ``scenarios`` tables of a finished
    batch, in memory.
``read_results(out_dir, variables=, years=, runs=, scenarios=, long=False)``,
``dataset(out_dir, name)``, ``to_dask(out_dir, name)``
    Lazy reading with filters (pyarrow dataset, Dask DataFrame).
``summarise(out_dir, percentiles)``, ``write_summary(out_dir, percentiles)``
    The Monte Carlo summary.
``write_batch_iamc(out_dir, percentiles)``, ``summary_to_iamc(pct)``
    The IAMC file of a batch; a summary in the IAMC template.
``default_workers(engine, runs, chunks, chunk_size=None)``
    The worker count used when none is given.
``scenarios_table(spec) -> DataFrame``, ``scenario_provenance(scenario) -> dict``
    The scenario-metadata table of a batch; one scenario's titles, chain and files.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import shutil
import time
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from greenpath.engines.base import ENGINES
from greenpath.model import indicators
from greenpath.model import registry as reg
from greenpath.runners import batch_summary
from greenpath.scenarios import scenario as scenarios
from greenpath.scenarios import targets as tg
from greenpath.scenarios.settings import Table

# 2: the scenarios table; engine and model_sha256 columns in runs
# 3: results, runs and targets as Parquet datasets (one file per chunk), results wide
#    (one column per year); the Monte Carlo summary; CSV of the full tables on request
FORMAT_VERSION = 3
MANIFEST = "manifest.json"
# Tables every chunk writes, each a folder of Parquet files (one per chunk) ...
DATASETS = ("results", "runs", "targets")
OUTPUTS = DATASETS
# ... and tables of the whole batch, written once from the spec.
BATCH_OUTPUTS = ("scenarios",)
TABLES = OUTPUTS + BATCH_OUTPUTS
# A chunk is finished when its runs file exists (written after its results and targets):
# the files in this folder are the finished chunks.
CHUNK_DIR = "runs"
SAMPLE = "sample.bin"
SUMMARY_FILES = ("summary.csv", "summary_targets.csv", "summary.xlsx")
# The results in the IAMC template (greenpath.outputs.iamc), written with every batch.
IAMC_FILE = "iamc.csv"
DEFAULT_PERCENTILES = (10.0, 50.0, 90.0)
BOM = "\ufeff".encode()
DEFAULT_CHUNK_SIZE = 25
# The vector engine runs a whole chunk in one call: larger chunks amortise that call and
# the writing of each file, smaller ones hold less: a worker holds about 25 KB per run of
# its chunk (engine, the 6 KB of values per run, the tables), so 5,000 runs keep a
# worker near 300 MB and a 2-worker batch under 1 GB, whatever the number of runs.
DEFAULT_VECTOR_CHUNK_SIZE = 5000
MODES = ("scenarios", "grid", "monte_carlo", "runs")
RESULT_COLUMNS = ["scenario", "run_id", "variable", "year", "value", "unit"]
TARGET_COLUMNS = ["run_id", "scenario", "id", "label_en", "year", "comparison", "target",
                  "value", "met", "margin", "unit", "set"]
RUN_COLUMNS = ["run_id", "scenario", "status", "error", "parameters", "run_seconds", "engine",
               "model_sha256"]
SCENARIO_COLUMNS = ["scenario", "title_en", "title_zh", "extends", "extends_chain", "source_file",
                    "source_sha256", "chain_sha256", "mode", "base_scenario", "seed", "sampled",
                    "uncertainty_set", "n_runs", "first_run_id", "last_run_id", "model_sha256",
                    "calibration_sha256_12", "spec_sha256"]



class BatchError(ValueError):
    """A batch that cannot be defined, started or resumed, with the reason."""


@dataclass
class RunSpec:
    """One run of a batch.

    Attributes
    ----------
    run_id
        Position in the batch (0, 1, ...).
    scenario
        Name written in the results' ``scenario`` column.
    params, tables
        Registry settings for :meth:`JiaozuoModel.run` (``params``, ``time_varying``).
    varied
        The grid or Monte Carlo values of this run (also inside ``params``), for the
        runs table.
    """

    run_id: int
    scenario: str
    params: dict[str, float] = field(default_factory=dict)
    tables: dict[str, Table] = field(default_factory=dict)
    varied: dict[str, float] = field(default_factory=dict)

    def to_dict(self) -> dict:
        """JSON-able form."""
        return {"run_id": self.run_id, "scenario": self.scenario, "params": self.params,
                "tables": {k: [list(v[0]), list(v[1])] for k, v in self.tables.items()},
                "varied": self.varied}

    @classmethod
    def from_dict(cls, d: Mapping) -> RunSpec:
        """Inverse of :meth:`to_dict`."""
        return cls(run_id=int(d["run_id"]), scenario=str(d["scenario"]),
                   params={k: float(v) for k, v in d.get("params", {}).items()},
                   tables={k: (list(map(float, v[0])), list(map(float, v[1])))
                           for k, v in d.get("tables", {}).items()},
                   varied={k: float(v) for k, v in d.get("varied", {}).items()})


@dataclass
class ChunkResult:
    """What :func:`run_chunk` returns: three tables for the chunk's runs."""

    runs: pd.DataFrame
    results: pd.DataFrame
    targets: pd.DataFrame


@dataclass
class BatchSpec:
    """What a batch runs; its JSON form (:meth:`to_dict`) is hashed into the manifest.

    Build with :func:`scenario_batch`, :func:`grid_batch`, :func:`monte_carlo_batch` or
    :func:`runs_batch` rather than directly.
    """

    mode: str
    definition: dict
    variables: list[str]
    chunk_size: int = DEFAULT_CHUNK_SIZE
    engine: str = "auto"
    targets: list[tg.Target] = field(default_factory=list)
    targets_source: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        """Return the spec as JSON-able data (model version and calibration included)."""
        from greenpath.model.mdl import FINAL_TIME, SAVEPER, TIME_STEP, model_hash

        return {
            "format": FORMAT_VERSION, "mode": self.mode, "definition": self.definition,
            "variables": list(self.variables), "chunk_size": self.chunk_size,
            "engine": self.engine, "targets": self.targets_source,
            "model_sha256": model_hash(), "calibration_sha256_12": reg.calibration_id(),
            "time": {"final_time": FINAL_TIME, "time_step": TIME_STEP, "saveper": SAVEPER},
        }

    def hash(self) -> str:
        """SHA-256 of :meth:`to_dict` (canonical JSON)."""
        text = json.dumps(self.to_dict(), sort_keys=True, ensure_ascii=True)
        return hashlib.sha256(text.encode()).hexdigest()

    def runs(self) -> list[RunSpec]:
        """Every run of the batch, in run_id order (a pure function of the spec).

        Builds one object per run: for looking at a batch.  :func:`run_batch` never
        calls it; it hands each chunk its runs as arrays.
        """
        return _build_runs(self.mode, self.definition)

    @property
    def n_runs(self) -> int:
        """Number of runs (without building them)."""
        return _n_runs(self.mode, self.definition)


@dataclass
class BatchSummary:
    """Outcome of :func:`run_batch`."""

    out_dir: Path
    n_runs: int
    n_ok: int
    n_failed: int
    n_chunks: int
    chunks_skipped: int
    runs_executed: int
    seconds: float
    paths: list[Path]

    @property
    def runs_per_second(self) -> float:
        """Runs executed by this call per second of wall time."""
        return self.runs_executed / self.seconds if self.seconds > 0 else math.inf


# ---------------------------------------------------------------------- building specs
def default_variables(targets: Sequence[tg.Target] = ()) -> list[str]:
    """Headline indicators, what the targets need, then costs and pollutants, in a stable order."""
    from greenpath.runners.costs import BATCH_VARIABLES

    out = list(indicators.HEADLINE)
    out += [v for v in tg.required_variables(list(targets)) if v not in out]
    out += [v for v in BATCH_VARIABLES if v not in out]
    return out


def _check_variables(names: Iterable[str]) -> list[str]:
    known = tg.model_units()
    out: list[str] = []
    for n in names:
        if n not in known:
            raise BatchError(f"unknown variable {n!r}{reg.suggest(n, known)}; "
                             "`greenpath vars` lists them")
        if n not in out:
            out.append(n)
    return out


def _targets(targets: Sequence[tg.Target] | str | Path | None, sets: list[str] | None,
             use_targets: bool) -> tuple[list[tg.Target], dict]:
    if not use_targets:
        return [], {}
    path = None
    if targets is None or isinstance(targets, str | Path):
        path = Path(targets or tg.DEFAULT_TARGETS)
        try:
            loaded = tg.load(path)
        except tg.TargetError as exc:
            raise BatchError(str(exc)) from None
    else:
        loaded = list(targets)
    try:
        chosen = tg.select(loaded, sets)
    except tg.TargetError as exc:
        raise BatchError(str(exc)) from None
    source = {
        "file": path.name if path else "(given)",
        "ids": [t.id for t in chosen],
        "sha256": hashlib.sha256(repr(chosen).encode()).hexdigest(),
        "sets": sets,
    }
    return chosen, source


def _finish(mode: str, definition: dict, variables, chunk_size: int | None, engine: str,
            targets, sets, use_targets: bool) -> BatchSpec:
    if engine not in ENGINES:
        raise BatchError(f"engine {engine!r} not one of {', '.join(ENGINES)}"
                         f"{reg.suggest(engine, ENGINES)}")
    if chunk_size is None:
        chunk_size = DEFAULT_CHUNK_SIZE if engine == "pysd" else DEFAULT_VECTOR_CHUNK_SIZE
    if isinstance(chunk_size, bool) or not isinstance(chunk_size, int) or chunk_size < 1:
        raise BatchError(f"chunk size {chunk_size!r}: must be a whole number >= 1")
    chosen, source = _targets(targets, sets, use_targets)
    names = list(variables) if variables is not None else default_variables(chosen)
    names = _check_variables([*names, *tg.required_variables(chosen)])
    spec = BatchSpec(mode=mode, definition=definition, variables=names,
                     chunk_size=chunk_size, engine=engine, targets=chosen,
                     targets_source=source)
    if spec.n_runs < 1:
        raise BatchError("the batch has no runs")
    return spec


def _settings(s: scenarios.Scenario) -> dict:
    return {"name": s.name, "params": dict(s.params),
            "tables": {k: [list(v[0]), list(v[1])] for k, v in s.tables.items()},
            "meta": scenario_provenance(s)}


def _display_path(path: Path) -> str:
    """``scenarios/NAME.toml`` for a shipped scenario, the resolved path otherwise."""
    path = Path(path).resolve()
    root = scenarios.SCENARIO_DIR.resolve().parent
    try:
        return path.relative_to(root).as_posix()
    except ValueError:
        return str(path)


def _sha256(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def scenario_provenance(s: scenarios.Scenario) -> dict:
    """Titles, ``extends`` chain, source file and SHA-256 of every file of a scenario.

    Returns
    -------
    dict
        ``title_en``, ``title_zh``, ``extends`` (the direct parent or ""),
        ``chain`` (names from the root parent down to ``s``), ``source_file``
        (``scenarios/NAME.toml`` for a shipped scenario, else the resolved
        path; "" for a scenario that has no file), ``source_sha256`` and
        ``chain_sha256`` (``name -> SHA-256`` of each file of the chain, the
        files the settings come from).
    """
    path = s.path
    chain_sha = {} if path is None else {
        name: _sha256(file) for name, file in zip(s.chain, s.chain_paths, strict=True)
        if file is not None}
    return {
        "title_en": s.title_en, "title_zh": s.title_zh, "extends": s.extends or "",
        "chain": list(s.chain), "source_file": _display_path(path) if path is not None else "",
        "source_sha256": _sha256(path) if path is not None else "",
        "chain_sha256": chain_sha,
    }


def scenario_batch(names: Sequence[str | Path], *, variables: Sequence[str] | None = None,
                   chunk_size: int | None = None, engine: str = "auto",
                   targets: Sequence[tg.Target] | str | Path | None = None,
                   sets: list[str] | None = None, use_targets: bool = True) -> BatchSpec:
    """Build a batch running each scenario (a name in ``scenarios/`` or a file) once."""
    if not names:
        raise BatchError("no scenarios given")
    loaded = [scenarios.load(n) for n in names]
    seen: dict[str, str] = {}
    for s, n in zip(loaded, names, strict=True):
        if s.name in seen:
            raise BatchError(f"two scenarios are named {s.name!r} ({seen[s.name]} and {n}); "
                             "results could not tell them apart")
        seen[s.name] = str(n)
    definition = {"scenarios": [_settings(s) for s in loaded]}
    return _finish("scenarios", definition, variables, chunk_size, engine, targets, sets,
                   use_targets)


def _check_setting(name: str, value, where: str) -> float:
    registry = reg.load_registry()
    allowed = [n for n, p in registry.items() if p.kind in ("lever", "uncertainty")]
    if name not in registry or registry[name].kind == "constant":
        why = " is a constant and cannot be varied" if name in registry else ""
        raise BatchError(f"{where}: {name!r}{why or ' is not a lever or uncertainty'}"
                         f"{reg.suggest(name, allowed)}; `greenpath vars --kind lever` "
                         "lists the levers")
    p = registry[name]
    try:
        return p.check(value)
    except reg.RegistryError:
        raise BatchError(f"{where}: {name} = {value!r} is outside the allowed range "
                         f"{p.min:g} to {p.max:g} {p.unit}") from None


def parse_grid(items: Sequence[str]) -> list[tuple[str, list[float]]]:
    """``["lever=v1,v2", ...]`` -> ``[(lever, [v1, v2]), ...]`` (validated)."""
    out: list[tuple[str, list[float]]] = []
    for item in items:
        name, sep, values = item.partition("=")
        name = name.strip()
        if not sep or not values.strip():
            raise BatchError(f"--grid {item!r}: write NAME=V1,V2,... "
                             "(e.g. wind_build_rate=100,200,300)")
        numbers = []
        for v in values.split(","):
            try:
                numbers.append(float(v))
            except ValueError:
                raise BatchError(f"--grid {item!r}: {v.strip()!r} is not a number") from None
        if name in [n for n, _ in out]:
            raise BatchError(f"--grid {name} is given twice")
        out.append((name, [_check_setting(name, x, f"--grid {item!r}") for x in numbers]))
    return out


def grid_batch(grid: Mapping[str, Sequence[float]] | Sequence[tuple[str, Sequence[float]]],
               base: str | Path = "baseline", *, variables: Sequence[str] | None = None,
               chunk_size: int | None = None, engine: str = "auto",
               targets: Sequence[tg.Target] | str | Path | None = None,
               sets: list[str] | None = None, use_targets: bool = True) -> BatchSpec:
    """Every combination of the given values (first name varies slowest) on ``base``."""
    pairs = list(grid.items()) if isinstance(grid, Mapping) else list(grid)
    if not pairs:
        raise BatchError("empty grid")
    checked = [(n, [_check_setting(n, v, f"grid {n}") for v in vals]) for n, vals in pairs]
    for n, vals in checked:
        if not vals:
            raise BatchError(f"grid {n}: no values")
    definition = {"base": _settings(scenarios.load(base)),
                  "grid": [[n, vals] for n, vals in checked]}
    return _finish("grid", definition, variables, chunk_size, engine, targets, sets,
                   use_targets)


def monte_carlo_batch(n: int, seed: int, base: str | Path = "baseline", *,
                      uncertainties: Sequence[str] | str | None = None,
                      variables: Sequence[str] | None = None,
                      chunk_size: int | None = None, engine: str = "auto",
                      targets: Sequence[tg.Target] | str | Path | None = None,
                      sets: list[str] | None = None, use_targets: bool = True) -> BatchSpec:
    """``n`` Latin-hypercube samples of the uncertainties (seeded) on ``base``.

    Parameters
    ----------
    n, seed
        Number of runs and the seed of the sample.
    base
        Scenario the sample starts from (its levers and year tables hold).
    uncertainties
        What to sample: ``None`` or ``"projection"`` (default,
        :func:`greenpath.runners.ensemble.projection_uncertainties`: the uncertainties
        whose whole range leaves the calibrated history 2005-2020 unchanged, so
        every run reproduces the same 2020 base), ``"all"`` (every uncertainty
        with a range, including those the calibration pins to the recorded
        history: initial GDP, 2017 growth, initial shares, ...), or a list of
        names (``["all"]`` and ``["projection"]`` as the CLI passes them).
    variables, chunk_size, engine, targets, sets, use_targets
        As :func:`scenario_batch`.
    """
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise BatchError(f"--monte-carlo {n!r}: the number of runs must be a whole number >= 1")
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise BatchError(f"--seed {seed!r}: must be a whole number >= 0")
    pool = reg.uncertainties()
    chosen, which = _uncertainty_selection(uncertainties, pool)
    definition: dict[str, Any] = {
        "base": _settings(scenarios.load(base)), "n": n, "seed": seed,
        # the sampler's old module path, kept: the text is part of the spec hash (resume)
        "sampler": "greenpath.ensemble.latin_hypercube (the algorithm of SciPy 1.17's "
                   "scipy.stats.qmc.LatinHypercube, draw for draw; uniform in each registry "
                   "range)",
        "uncertainty_set": which,
        "uncertainties": [[k, pool[k].min, pool[k].max] for k in chosen],
    }
    definition["posterior"] = _posterior_definition(chosen, definition["base"], seed)
    return _finish("monte_carlo", definition, variables, chunk_size, engine, targets, sets,
                   use_targets)


UNCERTAINTY_SETS = ("projection", "all")


def _posterior_definition(chosen: Sequence[str], base: dict, seed: int) -> dict:
    """Which calibrated parameters take posterior draws (calibration/posterior.py), and from which file.

    The calibrated parameters neither sampled nor set by the base scenario take row ``i``
    of :func:`greenpath.calibration.posterior.draw_rows` ``(n, seed)`` in run ``i``;
    without a usable posterior the batch records why (and a warning says so).
    """
    from greenpath.calibration import posterior

    draws, why = posterior.draw_rows(1, seed, exclude=[*chosen, *base.get("params", {})])
    names = list(draws.columns) if draws is not None else []
    return {"names": names, "sha256": posterior.file_sha256() if names else "", "source": why}


def _with_posterior(d: dict, names: list[str], values: np.ndarray, start: int,
                    stop: int) -> tuple[list[str], np.ndarray]:
    """Append the posterior draws of runs ``start:stop`` to a Monte Carlo chunk's sample."""
    post = d.get("posterior") or {}
    if not post.get("names"):
        return names, values
    from greenpath.calibration import posterior

    try:
        extra = posterior.rows_for_range(int(d["n"]), int(d["seed"]), start, stop, post["names"], post["sha256"])
    except posterior.PosteriorError as exc:
        raise BatchError(str(exc)) from None
    return [*names, *post["names"]], np.hstack([values, extra])


def _uncertainty_selection(uncertainties: Sequence[str] | str | None,
                           pool: Mapping[str, reg.Parameter]) -> tuple[list[str], str]:
    """Return the sampled names and how they were chosen (``projection``, ``all`` or ``given``)."""
    if uncertainties is None:
        uncertainties = "projection"
    if isinstance(uncertainties, str):
        uncertainties = [uncertainties]
    names = list(uncertainties)
    if not names:
        raise BatchError("--uncertainty: no names given")
    keywords = [k for k in names if k in UNCERTAINTY_SETS]
    if keywords:
        if len(names) > 1:
            raise BatchError(f"--uncertainty {keywords[0]} stands alone; give it without other "
                             "names (or list the names instead)")
        if keywords[0] == "all":
            return [k for k, p in pool.items() if p.max > p.min], "all"
        from greenpath.runners import ensemble

        chosen = ensemble.projection_uncertainties()
        if not chosen:
            raise BatchError("no uncertainty of the registry leaves the calibrated history "
                             "unchanged; give --uncertainty all or a list of names")
        return chosen, "projection"
    for name in names:
        if name not in pool:
            raise BatchError(f"--uncertainty {name!r} is not an uncertainty of the registry"
                             f"{reg.suggest(name, [*pool, *UNCERTAINTY_SETS])}; "
                             "`greenpath vars --kind uncertainty` lists them (or give 'all' "
                             "or 'projection')")
        if pool[name].max <= pool[name].min:
            raise BatchError(f"--uncertainty {name}: its range {pool[name].min:g} to "
                             f"{pool[name].max:g} is a single value; nothing to sample")
    if len(set(names)) != len(names):
        raise BatchError("an uncertainty is given twice")
    return names, "given"


def runs_batch(specs: Sequence[RunSpec], *, variables: Sequence[str] | None = None,
               chunk_size: int | None = None, engine: str = "auto",
               targets: Sequence[tg.Target] | str | Path | None = None,
               sets: list[str] | None = None, use_targets: bool = True) -> BatchSpec:
    """Build a batch of explicitly given runs (run ids must be 0, 1, 2, ...).

    The values are not checked here: a run the model refuses is recorded as failed.
    """
    ids = [s.run_id for s in specs]
    if ids != list(range(len(ids))):
        raise BatchError("run ids must be 0, 1, 2, ... in order")
    definition = {"runs": [s.to_dict() for s in specs]}
    return _finish("runs", definition, variables, chunk_size, engine, targets, sets,
                   use_targets)


def _bounds(d: dict) -> tuple[list[str], np.ndarray, np.ndarray]:
    names = [b[0] for b in d["uncertainties"]]
    lows = np.array([b[1] for b in d["uncertainties"]], dtype=float)
    highs = np.array([b[2] for b in d["uncertainties"]], dtype=float)
    return names, lows, highs


def _scale(unit: np.ndarray, lows: np.ndarray, highs: np.ndarray) -> np.ndarray:
    """Unit-cube points -> registry ranges (``qmc.scale``'s formula, kept inside the range)."""
    return np.minimum(unit * (highs - lows) + lows, highs)


def _n_runs(mode: str, d: dict) -> int:
    if mode == "scenarios":
        return len(d["scenarios"])
    if mode == "runs":
        return len(d["runs"])
    if mode == "grid":
        return int(np.prod([len(vals) for _, vals in d["grid"]]))
    if mode == "monte_carlo":
        return int(d["n"])
    raise BatchError(f"unknown batch mode {mode!r}; allowed {', '.join(MODES)}")


def _grid_values(d: dict, start: int, stop: int) -> np.ndarray:
    """Rows ``start:stop`` of the full product of the grid (first name slowest), vectorised."""
    values = [np.asarray(vals, dtype=float) for _, vals in d["grid"]]
    index = np.unravel_index(np.arange(start, stop), [len(v) for v in values])
    return np.stack([v[i] for v, i in zip(values, index, strict=True)], axis=1)


def _base_tables(base: dict, varied: Iterable[str]) -> dict[str, Table]:
    skip = set(varied)
    return {k: (list(v[0]), list(v[1])) for k, v in base["tables"].items() if k not in skip}


def _specs_from_values(task: dict) -> list[RunSpec]:
    """Build the run specs of a grid or Monte Carlo task (for PySD, one run after the other)."""
    names, base = task["names"], task["base"]
    tables = _base_tables(base, names)
    out = []
    for i, row in enumerate(task["values"]):
        varied = dict(zip(names, map(float, row), strict=True))
        out.append(RunSpec(task["start"] + i, base["name"], {**base["params"], **varied},
                           {k: (list(v[0]), list(v[1])) for k, v in tables.items()}, varied))
    return out


def _build_runs(mode: str, d: dict) -> list[RunSpec]:
    if mode == "scenarios":
        return [RunSpec(i, s["name"], dict(s["params"]), _base_tables(s, ()))
                for i, s in enumerate(d["scenarios"])]
    if mode == "runs":
        return [RunSpec.from_dict(r) for r in d["runs"]]
    if mode not in ("grid", "monte_carlo"):
        raise BatchError(f"unknown batch mode {mode!r}; allowed {', '.join(MODES)}")
    n = _n_runs(mode, d)
    if mode == "grid":
        names, values = [g[0] for g in d["grid"]], _grid_values(d, 0, n)
    else:
        from greenpath.runners import ensemble

        names, lows, highs = _bounds(d)
        values = _scale(ensemble.latin_hypercube(n, len(names), np.random.default_rng(d["seed"])), lows, highs)
        names, values = _with_posterior(d, names, values, 0, n)
    return _specs_from_values({"start": 0, "names": names, "base": d["base"], "values": values})


def _tasks(spec: BatchSpec, chunks: list[tuple[int, int]], todo: Iterable[int],
           sample: Path | None):
    """One task (a small dict: the chunk's runs as arrays or specs) per chunk to run, lazily."""
    d = spec.definition
    for k in todo:
        start, stop = chunks[k]
        task: dict = {"k": k, "start": start, "stop": stop}
        if spec.mode == "scenarios":
            task["specs"] = [RunSpec(i, s["name"], dict(s["params"]), _base_tables(s, ()))
                             for i, s in enumerate(d["scenarios"][start:stop], start)]
        elif spec.mode == "runs":
            task["specs"] = [RunSpec.from_dict(r) for r in d["runs"][start:stop]]
        elif spec.mode == "grid":
            task.update(names=[g[0] for g in d["grid"]], base=d["base"],
                        values=_grid_values(d, start, stop))
        else:
            from greenpath.runners import ensemble

            if sample is None:  # pragma: no cover - run_batch writes it before the tasks
                raise BatchError("a Monte Carlo batch's chunks need its sample file")
            names, lows, highs = _bounds(d)
            unit = ensemble.read_latin_hypercube(sample, d["n"], len(names), start, stop)
            names, values = _with_posterior(d, names, _scale(unit, lows, highs), start, stop)
            task.update(names=names, base=d["base"], values=values)
        yield task


# ---------------------------------------------------------------------- running chunks
def _non_finite(values: np.ndarray, columns: list[str], years: np.ndarray) -> str:
    bad = ~np.isfinite(values)
    if not bad.any():
        return ""
    cols = [c for j, c in enumerate(columns) if bad[:, j].any()]
    first = int(years[np.argmax(bad.any(axis=1))])
    shown = ", ".join(cols[:5]) + (f" and {len(cols) - 5} more" if len(cols) > 5 else "")
    return f"non-finite values (NaN or inf) from {first} in {shown}"


def _run_pysd(spec: RunSpec, columns: list[str]):
    """One run on PySD: ``(values, years, error, seconds, engine, model_sha256)``."""
    from greenpath.engines import pysd_engine

    started = time.perf_counter()
    model = None
    try:
        # One model per thread, loaded once: the engine keeps the right cache types for
        # every run structure it has seen (tests/runners/test_batch.py checks interleaved
        # structures against fresh models).
        model = pysd_engine.thread_local_model()
        frame = model.run(spec.params, time_varying=spec.tables, return_columns=columns,
                          scenario=spec.scenario).frame
    except Exception as exc:  # a run's failure is data, not a batch failure
        return (None, None, f"{type(exc).__name__}: {exc}", time.perf_counter() - started,
                "pysd", getattr(model, "hash", ""))
    years = frame.index.to_numpy()
    return (frame[columns].to_numpy(dtype=float), years, "", time.perf_counter() - started,
            "pysd", getattr(model, "hash", ""))


def _run_vector(specs: list[RunSpec], columns: list[str]) -> dict[int, tuple]:
    """Run ``specs`` (year tables included) through the vector engine.

    One call per table structure; a run with a bad setting is recorded as failed, not raised.
    """
    from greenpath.runners import ensemble

    out: dict[int, tuple] = {}
    ok: list[RunSpec] = []
    for spec in specs:
        where = f"scenario {spec.scenario!r}"
        try:
            reg.validate(spec.params, where)
            ensemble.validate_tables(spec.tables, f"{where} tables")
            ok.append(spec)
        except (reg.RegistryError, ensemble.EnsembleError) as exc:
            out[spec.run_id] = (None, None, f"{type(exc).__name__}: {exc}", 0.0, "vector", "")
    if not ok:
        return out
    started = time.perf_counter()
    info: dict = {}
    with np.errstate(all="ignore"):
        cube, years, _ = ensemble.run_specs(ok, columns, info=info)  # (runs, years, columns)
    years = np.round(np.asarray(years)).astype(int)
    each = (time.perf_counter() - started) / len(ok)
    for i, spec in enumerate(ok):
        out[spec.run_id] = (cube[i], years, "", each, "vector", info.get("model_sha256", ""))
    return out


@dataclass
class _Chunk:
    """A chunk's runs as arrays over the run axis (what every table is built from)."""

    run_id: np.ndarray            # (m,) int64
    scenario_names: list[str]     # distinct scenario names ...
    scenario: np.ndarray          # (m,) int32 codes into scenario_names
    error: np.ndarray             # (m,) object: "" for a successful run
    seconds: np.ndarray           # (m,) float
    engine: np.ndarray            # (m,) object
    model_sha256: np.ndarray      # (m,) object
    parameters: np.ndarray        # (m,) object: JSON
    varied_names: list[str]
    varied: np.ndarray            # (m, d) float
    values: np.ndarray            # (columns, m, years) float (rows of failed runs: anything)
    years: np.ndarray             # (years,) int

    @property
    def ok(self) -> np.ndarray:
        return self.error == ""


def _chunk_from_outcomes(specs: Sequence[RunSpec], outcomes: dict[int, tuple],
                         columns: list[str]) -> _Chunk:
    """Per-run outcomes (PySD, or the vector engine through run specs) -> :class:`_Chunk`."""
    m = len(specs)
    names = list(dict.fromkeys(s.scenario for s in specs))
    code = {n: i for i, n in enumerate(names)}
    years = next((np.asarray(o[1]).astype(int) for o in outcomes.values() if o[1] is not None),
                 None)
    n_years = len(years) if years is not None else 0
    values = np.full((len(columns), m, n_years), np.nan)
    error = np.empty(m, dtype=object)
    varied_names = list(dict.fromkeys(k for s in specs for k in s.varied))
    varied = np.full((m, len(varied_names)), np.nan)
    rows = []
    for i, spec in enumerate(specs):
        cube, run_years, err, seconds, used, sha = outcomes[spec.run_id]
        if not err and years is not None and (len(run_years) != n_years
                                              or (np.asarray(run_years) != years).any()):
            raise BatchError("runs of one chunk returned different years")
        if not err and years is not None:  # a run without an error returned years
            err = _non_finite(cube, columns, years)
        if cube is not None:
            values[:, i, :] = np.asarray(cube, dtype=float).T
        error[i] = err
        for j, name in enumerate(varied_names):
            varied[i, j] = spec.varied.get(name, np.nan)
        # grid and Monte Carlo runs: the varied values are the runs table's columns and
        # the base scenario's settings are in the spec; other runs: their settings
        rows.append((seconds, used, sha, "" if spec.varied else json.dumps(
            {"params": spec.params, "tables": {k: [list(v[0]), list(v[1])]
                                               for k, v in spec.tables.items()}},
            sort_keys=True)))
    return _Chunk(
        run_id=np.array([s.run_id for s in specs], dtype=np.int64), scenario_names=names,
        scenario=np.array([code[s.scenario] for s in specs], dtype=np.int32), error=error,
        seconds=np.array([r[0] for r in rows], dtype=float),
        engine=np.array([r[1] for r in rows], dtype=object),
        model_sha256=np.array([r[2] for r in rows], dtype=object),
        parameters=np.array([r[3] for r in rows], dtype=object), varied_names=varied_names,
        varied=varied, values=values,
        years=years if years is not None else np.empty(0, dtype=int))


def _run_specs_chunk(specs: Sequence[RunSpec], columns: list[str], engine: str) -> _Chunk:
    """Run specs the general way: one structure (vector) or one run (PySD) at a time."""
    outcomes: dict[int, tuple] = {}
    if engine in ("vector", "auto"):
        try:
            outcomes.update(_run_vector(list(specs), columns))
        except Exception as exc:
            reason = f"{type(exc).__name__}: {exc}"
            if engine == "vector":
                for s in specs:
                    outcomes[s.run_id] = (None, None, f"vector engine: {reason}", 0.0, "vector", "")
            else:
                import warnings

                warnings.warn(f"vector engine unavailable ({reason}); running the chunk's "
                              f"{len(specs)} runs on PySD instead", RuntimeWarning, stacklevel=3)
    for spec in specs:
        if spec.run_id not in outcomes:
            outcomes[spec.run_id] = _run_pysd(spec, columns)
    return _chunk_from_outcomes(specs, outcomes, columns)


def _run_values_chunk(task: dict, columns: list[str], engine: str) -> _Chunk | None:
    """Run a grid or Monte Carlo chunk in one vector-engine call, arrays in and out.

    Returns None when the engine cannot take it this way (the caller then runs the
    general path, which reports or falls back per run exactly as before).
    """
    from greenpath.runners import batch_stream

    if engine == "pysd":
        return None
    names, base, values = task["names"], task["base"], np.asarray(task["values"], dtype=float)
    m = len(values)
    tables = _base_tables(base, names)
    frame = {k: np.full(m, float(v)) for k, v in base["params"].items() if k not in names}
    frame.update({name: values[:, j] for j, name in enumerate(names)})
    started = time.perf_counter()
    try:
        with np.errstate(all="ignore"):
            # year-major (years, columns, m): each Parquet year column is one slice of it
            year_major, years, sha = batch_stream.run_year_major(pd.DataFrame(frame), columns,
                                                                 tables or None)
    except Exception:  # noqa: BLE001 - the general path says what went wrong, run by run
        return None
    seconds = (time.perf_counter() - started) / m
    cube = year_major.transpose(1, 2, 0)  # (columns, m, years), a view
    error = np.full(m, "", dtype=object)
    bad = ~np.isfinite(year_major).all(axis=(0, 1))
    for i in np.flatnonzero(bad):  # rare: one message per failed run
        error[i] = _non_finite(cube[:, i, :].T, columns, years)
    return _Chunk(
        run_id=np.arange(task["start"], task["start"] + m, dtype=np.int64),
        scenario_names=[base["name"]], scenario=np.zeros(m, dtype=np.int32), error=error,
        seconds=np.full(m, seconds), engine=np.full(m, "vector", dtype=object),
        model_sha256=np.full(m, sha, dtype=object),
        parameters=np.full(m, "", dtype=object), varied_names=list(names), varied=values,
        values=cube, years=np.asarray(years).astype(int))


def _compute(task: dict, columns: list[str], engine: str) -> _Chunk:
    if "specs" not in task:
        chunk = _run_values_chunk(task, columns, engine)
        if chunk is not None:
            return chunk
        task = {**task, "specs": _specs_from_values(task)}
    return _run_specs_chunk(task["specs"], columns, engine)


def _evaluate_targets(chunk: _Chunk, columns: list[str], targets: list[tg.Target]) -> dict | None:
    """Targets of the chunk's successful runs (arrays (ok runs, targets)); None if none.

    A target that cannot be evaluated fails every successful run with its reason.
    """
    ok = chunk.ok
    if not targets or not ok.any():
        return None
    kept = chunk.values if ok.all() else chunk.values[:, ok, :]
    cube = kept.transpose(1, 2, 0)  # (runs, years, columns), a view
    try:
        return tg.evaluate_arrays(cube, chunk.years, columns, targets)
    except tg.TargetError as exc:
        chunk.error[ok] = f"targets: {exc}"
        return None


def _strings(labels: Sequence[str], codes: np.ndarray):
    """``labels[codes]`` as an Arrow dictionary array (codes and labels: no string per row).

    Parquet stores it dictionary-encoded as it is; :func:`_to_pandas` decodes it.
    """
    import pyarrow as pa

    return pa.DictionaryArray.from_arrays(pa.array(codes, type=pa.int32()),
                                          pa.array(list(labels), type=pa.string()))


def _tables(chunk: _Chunk, columns: list[str], targets: list[tg.Target], units: dict):
    """Build the chunk's ``runs``, ``results`` (wide) and ``targets`` Arrow tables."""
    import pyarrow as pa

    evaluated = _evaluate_targets(chunk, columns, targets)
    ok = chunk.ok
    m = len(chunk.run_id)
    status = np.where(ok, 0, 1).astype(np.int32)
    runs = {
        "run_id": pa.array(chunk.run_id, type=pa.int64()),
        "scenario": _strings(chunk.scenario_names, chunk.scenario),
        "status": _strings(["ok", "failed"], status),
        "error": pa.array(chunk.error, type=pa.string()),
        "parameters": pa.array(chunk.parameters, type=pa.string()),
        "run_seconds": pa.array(chunk.seconds, type=pa.float64()),
        "engine": pa.array(chunk.engine, type=pa.string()),
        "model_sha256": pa.array(chunk.model_sha256, type=pa.string()),
    }
    for j, name in enumerate(chunk.varied_names):
        runs[name] = pa.array(chunk.varied[:, j], type=pa.float64())
    # results: one row per (variable, successful run), variable-major, one column per year
    idx = np.flatnonzero(ok)
    n_ok, n_c = len(idx), len(columns)
    var_codes = np.repeat(np.arange(n_c, dtype=np.int32), n_ok)
    results = {
        "run_id": pa.array(np.tile(chunk.run_id[idx], n_c), type=pa.int64()),
        "scenario": _strings(chunk.scenario_names, np.tile(chunk.scenario[idx], n_c)),
        "variable": _strings(columns, var_codes),
        "unit": _strings([units.get(c, "") for c in columns], var_codes),
    }
    block = chunk.values[:, idx, :] if n_ok < m else chunk.values
    for t, year in enumerate(chunk.years):
        results[str(int(year))] = pa.array(np.ascontiguousarray(block[:, :, t]).reshape(-1),
                                           type=pa.float64())
    target_table = _target_table(chunk, idx, targets, evaluated)
    return pa.table(runs), pa.table(results), target_table


def _target_table(chunk: _Chunk, idx: np.ndarray, targets: list[tg.Target], evaluated):
    import pyarrow as pa

    n, k = (len(idx), len(targets)) if evaluated is not None else (0, len(targets))
    codes = np.tile(np.arange(k, dtype=np.int32), n)

    def col(values):
        return _strings([str(v) for v in values], codes)

    return pa.table({
        "run_id": pa.array(np.repeat(chunk.run_id[idx][:n], k), type=pa.int64()),
        "scenario": _strings(chunk.scenario_names, np.repeat(chunk.scenario[idx][:n], k)),
        "id": col([t.id for t in targets]),
        "label_en": col([t.label_en for t in targets]),
        "year": pa.array(np.tile(np.array([t.year for t in targets], dtype=np.int64), n)),
        "comparison": col([t.comparison for t in targets]),
        "target": pa.array(np.tile(np.array([t.value for t in targets], dtype=float), n)),
        "value": pa.array(evaluated["value"].ravel() if n else np.empty(0)),
        "met": pa.array(evaluated["met"].ravel() if n else np.empty(0, dtype=bool)),
        "margin": pa.array(evaluated["margin"].ravel() if n else np.empty(0)),
        "unit": col([t.unit for t in targets]),
        "set": col([t.set or "" for t in targets]),
    })


def run_chunk(specs: Sequence[RunSpec], columns: Sequence[str] | None = None,
              engine: str = "auto", targets: Sequence[tg.Target] | None = None) -> ChunkResult:
    """Run one chunk of a batch: the single place where batch runs happen.

    Parameters
    ----------
    specs
        The runs.
    columns
        Variables to keep (default :func:`default_variables`).
    engine
        ``"auto"`` (default: the vector engine; if it refuses the model or fails, a
        ``RuntimeWarning`` says why and the chunk runs on PySD), ``"vector"`` (all
        runs through :func:`greenpath.runners.ensemble.run_specs`: one vectorised call per
        year-table structure; if the engine fails every run is recorded as failed
        with its error) or ``"pysd"`` (the reference, one run after the other).
    targets
        Targets evaluated for every successful run (their variables must be in
        ``columns``).

    Returns
    -------
    ChunkResult
        ``runs`` (run_id, scenario, status, error, parameters, run_seconds, engine,
        model_sha256 of the engine's model, and the varied values), ``results``
        (long: scenario, run_id, variable, year, value) and ``targets`` (one row per
        run and target).  A failing run is a row with status ``"failed"`` and its
        error; it never stops the chunk.
    """
    if engine not in ENGINES:
        raise BatchError(f"engine {engine!r} not one of {', '.join(ENGINES)}")
    columns = list(columns) if columns is not None else default_variables(targets or ())
    chunk = _run_specs_chunk(list(specs), columns, engine)
    runs, wide, target_table = _tables(chunk, columns, list(targets or []), {})
    return ChunkResult(runs=_to_pandas(runs), results=_long(_to_pandas(wide), columns, False),
                       targets=_to_pandas(target_table))


def _to_pandas(table) -> pd.DataFrame:
    """Arrow -> pandas with plain string columns (dictionary columns decoded)."""
    import pyarrow as pa

    for i, f in enumerate(table.schema):
        if pa.types.is_dictionary(f.type):
            table = table.set_column(i, f.name, table.column(i).cast(f.type.value_type))
    return table.to_pandas()


def _year_columns(names: Iterable[str]) -> list[str]:
    return [c for c in names if c.isdigit()]


def _long(wide: pd.DataFrame, columns: Sequence[str], unit: bool = True) -> pd.DataFrame:
    """Wide rows (one per run and variable, one column per year) -> the long table.

    Ordered by run, then variable (in ``columns`` order), then year: the order of
    ``RunResult.long()`` for each run.
    """
    years = _year_columns(wide.columns)
    order = {c: i for i, c in enumerate(columns)}
    rank = wide["variable"].map(order).fillna(len(order)).to_numpy()
    wide = wide.iloc[np.lexsort((rank, wide["run_id"].to_numpy()))]
    n_y = len(years)
    out = {
        "scenario": np.repeat(wide["scenario"].to_numpy(dtype=object), n_y),
        "run_id": np.repeat(wide["run_id"].to_numpy(dtype=np.int64), n_y),
        "variable": np.repeat(wide["variable"].to_numpy(dtype=object), n_y),
        "year": np.tile(np.array(years, dtype=np.int64), len(wide)),
        "value": wide[years].to_numpy(dtype=float).reshape(-1),
    }
    if unit:
        out["unit"] = np.repeat(wide["unit"].to_numpy(dtype=object), n_y)
    return pd.DataFrame(out)


# ---------------------------------------------------------------------- the output folder
def _fsync_dir(path: Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:  # pragma: no cover - platforms without directory fds
        return
    try:
        os.fsync(fd)
    except OSError:  # pragma: no cover
        pass
    finally:
        os.close(fd)


def _atomic_write(path: Path, write) -> None:
    """``write(binary file)`` into a temporary file beside ``path``, fsync, rename, fsync the folder.

    The file is created by ``open`` (permissions from the umask, as ``run`` and ``report``
    outputs), never left half-written under its final name.
    """
    tmp = path.parent / f".tmp-{path.name}-{uuid.uuid4().hex[:8]}"
    try:
        with open(tmp, "xb") as fh:
            write(fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()
    _fsync_dir(path.parent)


def _atomic_json(path: Path, data: dict) -> None:
    text = json.dumps(data, indent=2, ensure_ascii=False, default=str).encode("utf-8")
    _atomic_write(path, lambda fh: fh.write(text))


def _output_paths(out: Path) -> list[Path]:
    """List the batch's own files and folders (what ``force`` may delete)."""
    names = [*DATASETS, SAMPLE, *[f"{n}.{e}" for n in TABLES for e in ("parquet", "csv")],
             *SUMMARY_FILES, IAMC_FILE, "chunks", batch_summary.PART_DIR]
    return [out / n for n in names]


def _chunk_path(out: Path, k: int, name: str = "runs") -> Path:
    return out / name / f"c{k:06d}.parquet"


def _differences(old: dict, new: dict) -> list[str]:
    keys = sorted(set(old) | set(new))
    return [k for k in keys if old.get(k) != new.get(k)]


def _remove(path: Path) -> None:
    if path.is_dir():
        shutil.rmtree(path, ignore_errors=True)
    else:
        path.unlink(missing_ok=True)


def _json_object(data: str | bytes) -> dict:
    """Parse JSON that must be an object; a damaged text raises ``ValueError``.

    Deep nesting (``RecursionError`` in the parser) and another JSON type (a list, a
    number) count as damage, like a truncated or non-UTF-8 text.
    """
    try:
        value = json.loads(data)
    except RecursionError:
        raise ValueError("nested too deep") from None
    if not isinstance(value, dict):
        raise ValueError(f"a JSON {type(value).__name__}, not an object")
    return value


def _prepare(out: Path, spec: BatchSpec, spec_hash: str, force: bool) -> None:
    """Check the folder; clean it when ``force``; leave finished chunks when resuming."""
    manifest = out / MANIFEST
    if out.exists() and not out.is_dir():
        raise BatchError(f"{out} is a file, not a folder")
    if manifest.is_file():
        try:
            old = _json_object(manifest.read_text(encoding="utf-8"))
            same = old.get("spec_hash") == spec_hash
        except ValueError:  # not JSON, not UTF-8, nested too deep or not an object
            old, same = {}, False
            if not force:
                raise BatchError(f"{manifest} is unreadable; use a new folder, or --force to "
                                 "discard this one") from None
        if same:
            return
        if not force:
            was = old.get("spec")
            diff = _differences(was if isinstance(was, dict) else {}, spec.to_dict()) if old else []
            raise BatchError(
                f"{out} holds a different batch (spec differs in: {', '.join(diff) or '?'}); "
                "write to a new --out folder, or pass --force to discard the old batch"
            )
        for p in [*_output_paths(out), manifest]:
            _remove(p)
    elif out.is_dir() and any(out.iterdir()) and not force:
        raise BatchError(f"{out} exists and is not a batch folder (no {MANIFEST}); choose a "
                         "new or empty folder, or pass --force to write into it")
    out.mkdir(parents=True, exist_ok=True)


def _write_parquet(path: Path, table, metadata: dict | None = None) -> None:
    import pyarrow.parquet as pq

    if metadata is not None:
        table = table.replace_schema_metadata({**(table.schema.metadata or {}),
                                               b"greenpath": json.dumps(metadata).encode()})
    rows = max(1, table.num_rows)
    if "variable" in table.column_names and table.num_rows:
        # one row group per variable (rows are variable-major): a filter on the variable
        # reads only that variable's row group of each file
        rows = max(1, table.num_rows // len(table.column("variable").unique()))
    # Dictionary encoding for the text columns only.  Not for numbers: the recorded history
    # (equal in every run of a projection Monte Carlo) compresses to as little with lz4 as
    # with a dictionary, and hashing every value cost more CPU than the engine's run
    # (benchmarks/bench_batch_profile.py); not for run_id (all distinct).
    dictionary = [f.name for f in table.schema if not _is_float(f.type)
                  and not _is_integer(f.type)]
    # lz4 everywhere: as fast as no compression; zstd made runs and targets about 10 %
    # smaller at twice the CPU per chunk.
    compression = "lz4"
    # Statistics (min/max per row group) for the numbers, which filters and the summary
    # use, and for the variable (one per row group); not for the other text columns,
    # whose min/max of a whole chunk serve no filter and cost a third of the targets
    # file's CPU time (benchmarks/bench_batch_profile.py).
    statistics = [f.name for f in table.schema if f.name == "variable" or _is_float(f.type)
                  or _is_integer(f.type) or _is_bool(f.type)]
    _atomic_write(path, lambda fh: pq.write_table(table, fh, compression=compression,
                                                  use_dictionary=dictionary,
                                                  write_statistics=statistics,
                                                  row_group_size=rows))


def _is_float(t) -> bool:
    import pyarrow as pa

    return pa.types.is_floating(t)


def _is_integer(t) -> bool:
    import pyarrow as pa

    return pa.types.is_integer(t)


def _is_bool(t) -> bool:
    import pyarrow as pa

    return pa.types.is_boolean(t)


def _write_chunk(out: Path, k: int, chunk: _Chunk, columns: list[str],
                 targets: list[tg.Target], units: dict, spec_hash: str,
                 summary_plan: dict | None = None) -> dict:
    """Write one chunk's three files (results and targets first, runs last) and say what is in them.

    With a ``summary_plan`` (:mod:`greenpath.runners.batch_summary`), also the chunk's part
    of the Monte Carlo summary, before the runs file.
    """
    runs, results, target_table = _tables(chunk, columns, targets, units)
    ok = chunk.ok
    stats = {"spec_hash": spec_hash, "chunk": k, "runs": len(chunk.run_id),
             "ok": int(ok.sum()), "results_rows": results.num_rows,
             "targets_rows": target_table.num_rows,
             "models": sorted({str(s) for s in set(chunk.model_sha256[ok].tolist()) if s}),
             "targets_met": _met_counts(chunk, target_table, len(targets))}
    for name in DATASETS:
        (out / name).mkdir(exist_ok=True)
    _write_parquet(_chunk_path(out, k, "results"), results)
    _write_parquet(_chunk_path(out, k, "targets"), target_table)
    if summary_plan is not None and len(chunk.years):
        batch_summary.write_part(out, k, batch_summary.year_major_rows(chunk.values, ok),
                                 chunk.run_id[ok], int(chunk.run_id[0]),
                                 int(chunk.run_id[-1]) + 1, summary_plan, _atomic_write)
        stats["summary_part"] = summary_plan["id"]
    _write_parquet(_chunk_path(out, k, "runs"), runs, stats)  # the chunk is done once this exists
    return stats


def _met_counts(chunk: _Chunk, target_table, k: int) -> dict[str, list[int]]:
    """Per scenario: [runs evaluated, runs meeting target 1, target 2, ...] (for the summary)."""
    if not k or not target_table.num_rows:
        return {}
    met = target_table.column("met").to_numpy(zero_copy_only=False).reshape(-1, k)
    codes = chunk.scenario[chunk.ok][: len(met)]
    n = len(chunk.scenario_names)
    counts = np.column_stack([np.bincount(codes, minlength=n)] +
                             [np.bincount(codes, weights=met[:, j], minlength=n) for j in range(k)])
    return {name: [int(x) for x in counts[g]] for g, name in enumerate(chunk.scenario_names)
            if counts[g, 0]}


def _chunk_stats(out: Path, k: int, n_runs: int, spec_hash: str) -> tuple[dict | None, str]:
    """Return a finished chunk's stats, or ``(None, why)`` if it is missing, damaged or foreign."""
    import pyarrow.parquet as pq

    runs = _chunk_path(out, k, "runs")
    if not runs.is_file():
        return None, ""
    try:
        meta = pq.read_metadata(runs)
        stats = _json_object((meta.metadata or {}).get(b"greenpath", b"{}"))
        rows = {name: pq.read_metadata(_chunk_path(out, k, name)).num_rows
                for name in ("results", "targets")}
    except (OSError, ValueError) as exc:  # ArrowInvalid is a ValueError
        return None, f"{type(exc).__name__}: {str(exc).splitlines()[0][:120]}"
    expected = {"runs": n_runs, "results_rows": rows["results"], "targets_rows": rows["targets"],
                "spec_hash": spec_hash}
    wrong = [key for key, value in expected.items() if stats.get(key) != value]
    if meta.num_rows != n_runs:
        wrong.append("rows")
    if wrong:
        return None, f"its files disagree ({', '.join(wrong)})"
    return stats, ""


def _write_manifest(out: Path, spec_dict: dict, spec_hash: str, n_runs: int, n_chunks: int,
                    done: int, status: str, n_failed: int | None = None,
                    software: dict | None = None) -> None:
    data = {
        "format": FORMAT_VERSION, "spec_hash": spec_hash, "status": status,
        "n_runs": n_runs, "n_chunks": n_chunks, "chunks_done": done,
        "n_failed": n_failed, "outputs": sorted(p.name for p in _output_paths(out) if p.exists()),
        "software": software or {}, "updated": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "spec": spec_dict,
    }
    _atomic_json(out / MANIFEST, data)


def _write_csv(table, path: Path) -> None:
    """CSV (UTF-8 with BOM, so Excel shows Chinese) through pyarrow."""
    import pyarrow as pa
    from pyarrow import csv

    if isinstance(table, pd.DataFrame):
        table = pa.Table.from_pandas(table, preserve_index=False)

    def write(fh) -> None:
        fh.write(BOM)
        csv.write_csv(table, fh)

    _atomic_write(path, write)


def _write_full_csv(out: Path, n_chunks: int, columns: list[str]) -> list[Path]:
    """``results.csv`` (long, as :func:`read` returns it), ``runs.csv``, ``targets.csv``, chunk by chunk."""
    import pyarrow as pa
    import pyarrow.parquet as pq
    from pyarrow import csv

    units = tg.model_units()
    paths = []
    for name in DATASETS:
        path = out / f"{name}.csv"

        def write(fh, name=name) -> None:
            fh.write(BOM)
            writer, schema, first = None, None, None
            for k in range(n_chunks):
                part = _to_pandas(pq.read_table(_chunk_path(out, k, name)))
                if name == "results":
                    part = _long(part, columns)
                    part["unit"] = part["variable"].map(units).fillna("")
                    part = part[RESULT_COLUMNS]
                table = pa.Table.from_pandas(part, preserve_index=False)
                first = table if first is None else first
                if not table.num_rows:
                    continue
                if writer is None:
                    schema = table.schema
                    writer = csv.CSVWriter(fh, schema)
                writer.write_table(table.cast(schema))
            if writer is None and first is not None:  # no rows at all: the header
                writer = csv.CSVWriter(fh, first.schema)
            if writer is not None:
                writer.close()

        _atomic_write(path, write)
        paths.append(path)
    return paths


def scenarios_table(spec: BatchSpec, runs: pd.DataFrame | None = None,
                    spec_hash: str | None = None) -> pd.DataFrame:
    """One row per scenario of the batch: what it is, where it comes from, how it ran.

    Parameters
    ----------
    spec
        The batch.
    runs
        The batch's runs table (for ``n_runs`` and the run-id range; default: taken
        from the spec without building its runs).
    spec_hash
        :meth:`BatchSpec.hash` (computed if not given).

    Returns
    -------
    pandas.DataFrame
        Columns :data:`SCENARIO_COLUMNS`: the scenario name (as in the results),
        ``title_en``/``title_zh``, ``extends`` (direct parent), ``extends_chain``
        (root parent first, joined by `` > ``), ``source_file`` and
        ``source_sha256`` of its TOML, ``chain_sha256`` (JSON: SHA-256 of each file
        of the chain), ``mode``, ``base_scenario`` (grid and Monte Carlo), ``seed``
        (Monte Carlo), ``sampled`` (JSON list of the sampled or grid names),
        ``uncertainty_set`` (``projection``, ``all`` or ``given``), ``n_runs``,
        ``first_run_id``, ``last_run_id``, ``model_sha256``,
        ``calibration_sha256_12`` and ``spec_sha256``.  Scenarios of a ``runs``
        batch (explicit run specs) have no file: their provenance fields are empty.
    """
    d = spec.definition
    spec_dict = spec.to_dict()
    spec_hash = spec_hash or spec.hash()
    if runs is not None:
        ids = {n: g.to_numpy() for n, g in runs.groupby("scenario", sort=False)["run_id"]}
    elif spec.mode == "scenarios":
        ids = {}
        for i, s_ in enumerate(d["scenarios"]):
            ids.setdefault(s_["name"], []).append(i)
    elif spec.mode == "runs":
        ids = {}
        for r in d["runs"]:
            ids.setdefault(r["scenario"], []).append(int(r["run_id"]))
    else:
        ids = {d["base"]["name"]: [0, _n_runs(spec.mode, d) - 1]}
        count = {d["base"]["name"]: _n_runs(spec.mode, d)}
    if spec.mode not in ("grid", "monte_carlo") or runs is not None:
        count = {n: len(v) for n, v in ids.items()}
    rows = []
    entries: list[tuple[str, dict, str, int | None, list[str], str]]
    if spec.mode == "scenarios":
        entries = [(s_["name"], s_.get("meta", {}), "", None, [], "") for s_ in d["scenarios"]]
    elif spec.mode in ("grid", "monte_carlo"):
        base = d["base"]
        if spec.mode == "grid":
            sampled, seed, which = [n for n, _ in d["grid"]], None, ""
        else:
            sampled = [u[0] for u in d["uncertainties"]]
            seed, which = d["seed"], d.get("uncertainty_set", "given")
        entries = [(base["name"], base.get("meta", {}), base["name"], seed, sampled, which)]
    else:
        names = list(dict.fromkeys(r["scenario"] for r in d["runs"]))
        entries = [(n, {}, "", None, [], "") for n in names]
    for name, meta, base_name, seed, sampled, which in entries:
        mine = ids.get(name, [])
        rows.append({
            "scenario": name, "title_en": meta.get("title_en", ""),
            "title_zh": meta.get("title_zh", ""), "extends": meta.get("extends", ""),
            "extends_chain": " > ".join(meta.get("chain", [])),
            "source_file": meta.get("source_file", ""),
            "source_sha256": meta.get("source_sha256", ""),
            "chain_sha256": json.dumps(meta.get("chain_sha256", {}), ensure_ascii=False),
            "mode": spec.mode, "base_scenario": base_name,
            "seed": pd.NA if seed is None else int(seed),
            "sampled": json.dumps(sampled), "uncertainty_set": which,
            "n_runs": int(count.get(name, 0)),
            "first_run_id": int(min(mine)) if len(mine) else pd.NA,
            "last_run_id": int(max(mine)) if len(mine) else pd.NA,
            "model_sha256": spec_dict["model_sha256"],
            "calibration_sha256_12": spec_dict["calibration_sha256_12"],
            "spec_sha256": spec_hash,
        })
    table = pd.DataFrame(rows, columns=SCENARIO_COLUMNS)
    for column in ("seed", "first_run_id", "last_run_id"):
        table[column] = table[column].astype("Int64")
    table["n_runs"] = table["n_runs"].astype("int64")
    return table


# ---------------------------------------------------------------------- running a batch
class BatchInterrupted(BatchError):
    """SIGINT or SIGTERM stopped the batch; the finished chunks are kept."""

    def __init__(self, message: str, signum: int) -> None:
        super().__init__(message)
        self.signum = signum


class _Signal(BaseException):
    """Raised by the batch's signal handler (a BaseException, so no ``except Exception`` eats it)."""

    def __init__(self, signum: int) -> None:
        super().__init__(signum)
        self.signum = signum


def _work(task: dict, out: str, columns: list[str], engine: str, targets: list[tg.Target],
          spec_hash: str) -> dict:
    """Run one chunk and write its files into ``out`` (in this process, a pool worker or a Dask worker)."""
    chunk = _compute(task, columns, engine)
    return _write_chunk(Path(out), task["k"], chunk, columns, targets, tg.model_units(), spec_hash,
                        task.get("summary"))


def _run_serial(tasks, args, finished) -> None:
    """Run the chunks in this process, writing chunk k in a thread while chunk k+1 computes."""
    from greenpath.runners import batch_stream

    out, columns, engine, targets, spec_hash = args
    units = tg.model_units()
    pipeline = batch_stream.WritePipeline(finished)
    try:
        for task in tasks:
            chunk = _compute(task, columns, engine)
            pipeline.submit(task["k"], _write_chunk, Path(out), task["k"], chunk, columns,
                            targets, units, spec_hash, task.get("summary"))
            del chunk
    except BaseException:
        pipeline.close(wait_only=True)
        raise
    pipeline.close()


def default_workers(engine: str, runs: int, chunks: int, chunk_size: int | None = None) -> int:
    """Return the processes a batch uses when ``workers`` is not given (never slower than one).

    :func:`greenpath.runners.batch_stream.choose_workers`: more processes only when their
    start-up is repaid (measured break-even; capped at the cores and the chunks left).
    """
    from greenpath.runners import batch_stream

    return batch_stream.choose_workers(engine, runs, chunks, chunk_size)


def _parse_scheduler(scheduler: str) -> int | None:
    """``local:N`` -> N (a local cluster to start); an address -> None.

    :func:`greenpath.engines.parallel.parse_scheduler`, its error as a :class:`BatchError`.
    """
    from greenpath.engines import parallel

    try:
        return parallel.parse_scheduler(scheduler)
    except parallel.ParallelError as exc:
        raise BatchError(str(exc)) from None


def run_batch(spec: BatchSpec, out_dir: str | Path, *, workers: int | None = None,
              scheduler: str | None = None, force: bool = False,
              progress: bool = True, connect_timeout: float = 20.0, csv: bool = False,
              percentiles: Sequence[float] = DEFAULT_PERCENTILES) -> BatchSummary:
    """Run (or resume) a batch into ``out_dir``.

    Parameters
    ----------
    spec
        What to run.
    out_dir
        The output folder (created if missing).
    workers
        Processes to use (default: :func:`default_workers`, never slower than one);
        1 runs in this process.  Ignored with ``scheduler``.
    scheduler
        A Dask distributed scheduler (``tcp://host:port``: chunks run on its workers,
        which write their results into ``out_dir``, so it must be the same path on
        every worker), or ``local:N`` to start a local cluster of N worker processes
        for this batch.
    force
        Replace a different batch in ``out_dir`` (deleting only its own files), or write
        into a non-empty folder that is not a batch folder.
    progress
        Show a progress bar (tqdm, on stderr).
    connect_timeout
        Seconds to wait for the Dask scheduler.
    csv
        Also write the full ``results.csv`` (long), ``runs.csv`` and ``targets.csv``.
    percentiles
        Percentiles of the Monte Carlo summary.

    Returns
    -------
    BatchSummary

    Raises
    ------
    BatchInterrupted
        On SIGINT or SIGTERM (while :func:`handle_signals` is active): the workers are
        stopped, the finished chunks kept; the message says how to resume.
    """
    out = Path(out_dir)
    try:
        return _run_batch(spec, out, workers, scheduler, force, progress, connect_timeout, csv,
                          percentiles)
    except _Signal as sig:
        import signal

        n_chunks = -(-spec.n_runs // spec.chunk_size)
        saved = len(list((out / CHUNK_DIR).glob("c*.parquet"))) if (out / CHUNK_DIR).is_dir() else 0
        name = signal.Signals(sig.signum).name
        raise BatchInterrupted(
            f"interrupted by {name}: {saved} of {n_chunks} chunks are saved in {out}; "
            "run the same command again to resume", sig.signum) from None


def _run_batch(spec: BatchSpec, out: Path, workers, scheduler, force, progress,
               connect_timeout, csv, percentiles) -> BatchSummary:
    from tqdm import tqdm

    from greenpath.engines.pysd_engine import software_versions

    qs = _check_percentiles(percentiles)
    spec_dict = spec.to_dict()
    spec_hash = spec.hash()
    software = software_versions()
    n_runs = _n_runs(spec.mode, spec.definition)
    chunks = [(i, min(i + spec.chunk_size, n_runs)) for i in range(0, n_runs, spec.chunk_size)]
    _prepare(out, spec, spec_hash, force)
    for name in (*DATASETS, batch_summary.PART_DIR):
        for stale in (out / name).glob(".tmp-*"):
            stale.unlink(missing_ok=True)
    for stale in out.glob(".tmp-*"):
        _remove(stale)
    stats: dict[int, dict] = {}
    for k, (a, b) in enumerate(chunks):
        got, why = _chunk_stats(out, k, b - a, spec_hash)
        if got is not None:
            stats[k] = got
        elif why:
            import warnings

            warnings.warn(f"chunk {k} in {out} is damaged ({why}); running it again",
                          RuntimeWarning, stacklevel=2)
            for name in DATASETS:
                _chunk_path(out, k, name).unlink(missing_ok=True)
    todo = [k for k in range(len(chunks)) if k not in stats]
    skipped = len(stats)
    _write_manifest(out, spec_dict, spec_hash, n_runs, len(chunks), len(stats), "running",
                    software=software)
    sample = None
    if todo and spec.mode == "monte_carlo":
        from greenpath.runners import ensemble

        d = spec.definition
        sample = out / SAMPLE
        tmp = out / f".tmp-{SAMPLE}-{uuid.uuid4().hex[:8]}"
        try:
            # no fsync: the sample is written again by every run that still has chunks to do
            ensemble.latin_hypercube(d["n"], len(d["uncertainties"]),
                                     np.random.default_rng(d["seed"]), store=tmp, fsync=False)
            os.replace(tmp, sample)
        finally:
            tmp.unlink(missing_ok=True)
    started = time.perf_counter()
    bar = tqdm(total=n_runs, initial=sum(chunks[k][1] - chunks[k][0] for k in stats),
               unit="run", desc="batch", disable=not progress, smoothing=0.1)
    errors: list[str] = []
    args = (str(out.resolve()), spec.variables, spec.engine, spec.targets, spec_hash)
    tasks = _tasks(spec, chunks, todo, sample)
    plan = _summary_plan(spec, n_runs, sample, qs) if todo else None
    if plan is not None:  # every chunk also writes its part of the summary
        tasks = ({**task, "summary": plan} for task in tasks)

    def finished(k: int, result: dict) -> None:
        stats[k] = result
        bar.update(chunks[k][1] - chunks[k][0])
        _write_manifest(out, spec_dict, spec_hash, n_runs, len(chunks), len(stats),
                        "running", software=software)

    n_todo = sum(chunks[k][1] - chunks[k][0] for k in todo)
    try:
        n_workers = workers or default_workers(spec.engine, n_todo, len(todo), spec.chunk_size)
        if todo and (scheduler or (n_workers > 1 and len(todo) > 1)):
            _run_parallel(tasks, len(todo), args, n_workers, scheduler, connect_timeout,
                          finished, errors)
        else:
            _run_serial(tasks, args, finished)
    finally:
        bar.close()
    if errors:
        raise BatchError(
            f"{len(errors)} chunk(s) did not finish ({errors[0]}); the {len(stats)} finished "
            f"chunks are saved in {out}: run the same command again to resume"
        )
    sample_path = out / SAMPLE
    sample_path.unlink(missing_ok=True)  # a pure function of the spec; not needed any more
    scen = scenarios_table(spec, spec_hash=spec_hash)
    paths = [out / name for name in DATASETS]
    for ext in ("parquet", "csv"):
        path = out / f"scenarios.{ext}"
        if ext == "parquet":
            _atomic_write(path, lambda fh: scen.to_parquet(fh, index=False))
        else:
            _write_csv(scen, path)
        paths.append(path)
    summary_paths, pct = _write_summary(out, qs, spec=spec)
    batch_summary.remove_parts(out)  # a scratch of the run, like the sample
    paths += summary_paths
    paths.append(write_batch_iamc(out, qs, summary=pct, mode=spec.mode))
    if csv:
        paths += _write_full_csv(out, len(chunks), spec.variables)
    n_ok = sum(s["ok"] for s in stats.values())
    n_failed = n_runs - n_ok
    _warn_model_mismatch(stats, spec_dict["model_sha256"])
    _write_manifest(out, spec_dict, spec_hash, n_runs, len(chunks), len(stats), "complete",
                    n_failed, software=software)
    return BatchSummary(out_dir=out, n_runs=n_runs, n_ok=n_ok, n_failed=n_failed,
                        n_chunks=len(chunks), chunks_skipped=skipped, runs_executed=n_todo,
                        seconds=time.perf_counter() - started, paths=paths)


def _summary_plan(spec: BatchSpec, n_runs: int, sample: Path | None,
                  qs: list[float]) -> dict | None:
    """Return the bands of the summary the chunks compute, from a pilot of the first runs.

    A Monte Carlo batch on the vector engine of at least
    :data:`greenpath.runners.batch_summary.MIN_RUNS` runs; else None (the summary re-reads
    the results at the end).  The pilot's runs are the batch's first runs, run once more
    here: the plan is a pure function of the spec.
    """
    pilot = batch_summary.pilot_runs(n_runs)
    if spec.mode != "monte_carlo" or spec.engine == "pysd" or not pilot or sample is None:
        return None
    pieces = []
    # in pieces of a chunk, kept as float32 (the bands need not be exact): the pilot holds
    # no more memory than a chunk does
    for a in range(0, pilot, spec.chunk_size):
        try:
            task = next(_tasks(spec, [(a, min(pilot, a + spec.chunk_size))], [0], sample))
        except BatchError:  # the chunks will say so, as before
            return None
        chunk = _run_values_chunk(task, spec.variables, spec.engine)
        if chunk is None or not len(chunk.years):
            return None
        pieces.append(batch_summary.year_major_rows(chunk.values, chunk.ok).astype(np.float32))
        del chunk
    return batch_summary.make_plan(np.concatenate(pieces, axis=1), qs)


def _warn_model_mismatch(stats: dict[int, dict], expected: str) -> None:
    """Warn when runs ran on a model other than the one the batch was defined for.

    For example a long-lived Dask worker still holding a PySD translation of an older .mdl.
    """
    other = sorted({m for s in stats.values() for m in s.get("models", []) if m != expected})
    if other:
        import warnings

        warnings.warn(f"runs ran on model {other[0][:12]}, not on the batch's model "
                      f"{expected[:12]} (the .mdl changed while workers kept an older model); "
                      "see the runs table's model_sha256", RuntimeWarning, stacklevel=3)


def _run_parallel(tasks, n_tasks: int, args, workers: int, scheduler: str | None,
                  connect_timeout: float, finished, errors: list[str]) -> None:
    """Run the chunks on local processes or a Dask scheduler (:func:`greenpath.engines.parallel.run_chunks`).

    Local processes start with "spawn" (a clean interpreter: no inherited threads or
    model) and load the engine's compiled model once.  The vector engine: this process,
    warm already, runs chunks too, beside ``workers - 1`` helper processes; PySD: every
    chunk to the workers.
    """
    from greenpath.engines import parallel

    engine, spec_hash = args[2], args[-1]
    try:
        parallel.run_chunks(_work, tasks, n_tasks, args=args, finished=finished, errors=errors,
                            workers=workers, scheduler=scheduler, run_here=engine != "pysd",
                            start="spawn", engine=engine, connect_timeout=connect_timeout,
                            label=spec_hash[:12])
    except parallel.ParallelError as exc:
        raise BatchError(str(exc)) from None


def handle_signals():
    """Context manager: SIGINT and SIGTERM stop :func:`run_batch` cleanly (main thread only).

    Inside it, either signal makes :func:`run_batch` stop its workers, keep the finished
    chunks and raise :class:`BatchInterrupted`.
    """
    import contextlib
    import signal
    import threading

    @contextlib.contextmanager
    def manager():
        if threading.current_thread() is not threading.main_thread():
            yield
            return

        def handler(signum, frame):
            raise _Signal(signum)

        old = {s: signal.signal(s, handler) for s in (signal.SIGINT, signal.SIGTERM)}
        try:
            yield
        finally:
            for s, h in old.items():
                signal.signal(s, h)

    return manager()


# ---------------------------------------------------------------------- the summary
def _check_percentiles(percentiles: Sequence[float]) -> list[float]:
    qs = []
    for q in percentiles:
        try:
            value = float(q)
        except (TypeError, ValueError):
            raise BatchError(f"percentile {q!r} is not a number; give numbers from 0 to 100 "
                             "(e.g. 10 50 90)") from None
        if not 0 <= value <= 100:
            raise BatchError(f"percentile {q!r} is outside 0 to 100")
        qs.append(value)
    if not qs:
        raise BatchError("no percentiles given; e.g. 10 50 90")
    return sorted(set(qs))


def _pct_name(q: float) -> str:
    return f"p{int(q)}" if float(q).is_integer() else f"p{q:g}"


def _percentiles_inplace(values: np.ndarray, qs: list[float]) -> np.ndarray:
    """``np.percentile(values, qs, axis=1)`` (linear), partitioning ``values`` in place (no copy)."""
    n = values.shape[1]
    pos = np.array(qs) / 100 * (n - 1)
    lo = np.floor(pos).astype(np.int64)
    hi = np.minimum(lo + 1, n - 1)
    values.partition(np.unique(np.concatenate([lo, hi])), axis=1)
    a, b = values[:, lo].T, values[:, hi].T  # (qs, rows)
    t = (pos - lo)[:, None]
    diff = b - a
    # numpy's _lerp: from below for t < 0.5, from above otherwise (exact at both ends)
    return np.where(t >= 0.5, b - diff * (1 - t), a + diff * t)


def _grouped_percentiles(codes: np.ndarray | None, values: np.ndarray, n_groups: int,
                         qs: list[float], run_ids: np.ndarray | None = None
                         ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Percentiles (numpy's default, linear) and means of ``values`` (columns, runs) per group.

    ``codes`` gives each run's group (None: one group).  Returns arrays (groups,
    len(qs), columns), (groups, columns) and (groups,) counts.  One NumPy call per group
    and block of columns; a column whose values are all equal (the recorded history in
    a projection Monte Carlo) is answered without sorting.  ``values`` is reordered.
    With ``run_ids`` (ascending) the means are the batch's
    (:func:`greenpath.runners.batch_summary.block_mean`), else numpy's.
    """
    from greenpath.runners import batch_stream

    n_cols, n = values.shape
    if codes is None:
        counts = np.array([n])
    else:
        counts = np.bincount(codes, minlength=n_groups)
        if n_groups > 1:
            order = np.argsort(codes, kind="stable")
            values = values[:, order]
            run_ids = run_ids[order] if run_ids is not None else None
    out = np.full((n_groups, len(qs), n_cols), np.nan)
    means = np.full((n_groups, n_cols), np.nan)
    start = 0
    for g, count in enumerate(counts):
        if not count:
            continue
        sub = values[:, start:start + count]
        ids = run_ids[start:start + count] if run_ids is not None else None
        start += count
        low, high = sub.min(axis=1), sub.max(axis=1)
        same = low == high
        out[g][:, same] = low[same]
        means[g][same] = low[same]
        rows = np.flatnonzero(~same)
        if len(rows):
            whole = len(rows) == n_cols and sub.flags.c_contiguous
            varied = sub if whole else np.ascontiguousarray(sub[rows])
            means[g][rows] = (varied.mean(axis=1) if ids is None
                              else batch_summary.block_mean(varied, ids))
            out[g][:, rows] = batch_stream.percentiles_of_rows(varied, qs)  # = _percentiles_inplace
    return out + 0.0, means + 0.0, counts  # + 0.0: no "-0" in the summary


# Memory the summary may hold for one block of year columns (the percentile of a column
# needs all its values).
SUMMARY_BLOCK_BYTES = 64 * 2**20


def _row_groups(out: Path) -> list[tuple[Path, dict]]:
    """Per results file: ``variable -> (row group, rows, {year: (min, max)})`` from its footer."""
    import pyarrow.parquet as pq

    index = []
    for path in sorted((out / "results").glob("c*.parquet")):
        meta = pq.read_metadata(path)
        names = meta.schema.names
        var_col = names.index("variable")
        years = [(i, c) for i, c in enumerate(names) if c.isdigit()]
        groups = {}
        for g in range(meta.num_row_groups):
            rg = meta.row_group(g)
            if rg.num_rows == 0:  # a chunk whose runs all failed
                continue
            stats = rg.column(var_col).statistics
            if stats is None or not stats.has_min_max or stats.min != stats.max:
                raise BatchError(f"{path}: row group {g} does not hold one variable; "
                                 "the file was not written by this version")
            ranges = {}
            for i, c in years:
                st = rg.column(i).statistics
                ranges[c] = (st.min, st.max) if st is not None and st.has_min_max else None
            groups[stats.min] = (g, rg.num_rows, ranges)
        index.append((path, groups))
    return index


def summarise(out_dir: str | Path, percentiles: Sequence[float] = DEFAULT_PERCENTILES
              ) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Compute the Monte Carlo summary of a batch folder from its datasets.

    Reads one variable and block of years at a time (at most
    :data:`SUMMARY_BLOCK_BYTES` of values, or one year column if that is larger: the
    exact percentile of a column needs all of its values), straight from the variable's
    row group of each file; a year whose values are equal in every run (the file
    statistics say so: the recorded history in a projection Monte Carlo) is not read.

    Returns
    -------
    percentiles, targets
        ``percentiles``: one row per scenario, variable and year: ``n_runs`` (successful
        runs), ``mean`` and one column per percentile (``p10``, ``p50``, ``p90`` by
        default; numpy's linear interpolation).  ``targets``: one row per scenario and
        target: ``n_runs`` evaluated, ``n_met`` and ``share_met`` (0 to 1).
    """
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    qs = _check_percentiles(percentiles)
    out = Path(out_dir)
    fast = _summarise_from_parts(out, qs)
    if fast is not None:
        return fast, _target_shares(out)
    index = _row_groups(out)
    variables = json.loads((out / MANIFEST).read_text(encoding="utf-8"))["spec"]["variables"]
    units = tg.model_units()
    scen_names = list(pd.read_parquet(out / "scenarios.parquet", columns=["scenario"])["scenario"])

    def read_group(path: Path, group: int, columns: list[str]):
        with pq.ParquetFile(path) as fh:  # opened per read: any number of files
            return fh.read_row_group(group, columns=columns)

    def one(variable: str) -> list[pd.DataFrame]:
        parts: list[pd.DataFrame] = []
        where = [(path, groups[variable]) for path, groups in index if variable in groups]
        n = sum(rows for _, (_, rows, _) in where)
        if not n:
            return parts
        years = list(where[0][1][2])
        codes = None
        if len(scen_names) > 1:
            scen = _pa_concat([read_group(p, g, ["scenario"]).column(0)
                              for p, (g, _, _) in where])
            codes = pc.index_in(scen, value_set=_pa_strings(scen_names)).to_numpy(
                zero_copy_only=False).astype(np.int64)
        run_ids = np.concatenate([read_group(p, g, ["run_id"]).column(0).to_numpy()
                                  for p, (g, _, _) in where])
        # equal in every run: min == max in every file, and the same in all files
        constant = {}
        if codes is None:
            for y in years:
                ranges = [r[2][y] for _, r in where]
                if all(x is not None and x[0] == x[1] for x in ranges) and \
                        len({x[0] for x in ranges}) == 1:
                    constant[y] = ranges[0][0]
        read = [y for y in years if y not in constant]
        counts = np.bincount(codes, minlength=len(scen_names)) if codes is not None else \
            np.array([n])
        pct = np.full((len(scen_names), len(qs), len(years)), np.nan)
        means = np.full((len(scen_names), len(years)), np.nan)
        for y, v in constant.items():
            pct[0, :, years.index(y)] = means[0, years.index(y)] = v + 0.0  # no "-0"
        per_block = max(1, SUMMARY_BLOCK_BYTES // (8 * n))
        for b in range(0, len(read), per_block):
            block = read[b:b + per_block]
            values = np.empty((len(block), n))
            start = 0
            for p, (g, rows, _) in where:
                table = read_group(p, g, block)
                for i, y in enumerate(block):
                    values[i, start:start + rows] = table.column(y).to_numpy()
                start += rows
                del table
            got, got_means, _ = _grouped_percentiles(codes, values, len(scen_names), qs, run_ids)
            at = [years.index(y) for y in block]
            pct[:, :, at] = got
            means[:, at] = got_means
            del values
        for g, name in enumerate(scen_names):
            if not counts[g]:
                continue
            part = {"scenario": name, "variable": variable, "unit": units.get(variable, ""),
                    "year": np.array(years, dtype=np.int64), "n_runs": int(counts[g]),
                    "mean": means[g]}
            part.update({_pct_name(q): pct[g, i] for i, q in enumerate(qs)})
            parts.append(pd.DataFrame(part))
        return parts

    # One variable per thread: reading Parquet and partitioning release the GIL, and each
    # thread holds at most one block of SUMMARY_BLOCK_BYTES.
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(max_workers=max(1, min(os.cpu_count() or 1, 4))) as pool:
        parts = [part for got in pool.map(one, variables) for part in got]
    pct_cols = ["scenario", "variable", "unit", "year", "n_runs", "mean", *map(_pct_name, qs)]
    table = pd.concat(parts, ignore_index=True) if parts else pd.DataFrame(columns=pct_cols)
    if len(scen_names) > 1 and len(table):
        rank = {v: i for i, v in enumerate(scen_names)}
        table = table.iloc[np.argsort(table["scenario"].map(rank).to_numpy(), kind="stable")]
        table = table.reset_index(drop=True)
    return table[pct_cols], _target_shares(out)


def _summarise_from_parts(out: Path, qs: list[float]) -> pd.DataFrame | None:
    """Return the percentile table from the chunks' summary parts, or None (then re-read).

    :mod:`greenpath.runners.batch_summary`: the same numbers as re-reading the results.
    """
    import pyarrow.parquet as pq

    if not (out / batch_summary.PART_DIR).is_dir():
        return None
    manifest = json.loads((out / MANIFEST).read_text(encoding="utf-8"))
    variables = manifest["spec"]["variables"]
    scen_names = list(pd.read_parquet(out / "scenarios.parquet", columns=["scenario"])["scenario"])
    first = _chunk_path(out, 0, "results")
    if len(scen_names) != 1 or not first.is_file():
        return None
    years = [int(c) for c in _year_columns(pq.read_schema(first).names)]
    index: list = []

    def read_row(j: int, t: int) -> np.ndarray:
        if not index:
            index.extend(_row_groups(out))
        parts = []
        for path, groups in index:
            if variables[j] in groups:
                with pq.ParquetFile(path) as fh:
                    parts.append(fh.read_row_group(groups[variables[j]][0],
                                                   columns=[str(years[t])]).column(0).to_numpy())
        return np.concatenate(parts)

    got = batch_summary.summarise_parts(out, int(manifest["n_chunks"]), qs, variables, years,
                                        read_row)
    if got is None:
        return None
    units = tg.model_units()
    n_c = len(variables)
    parts = []
    for j, variable in enumerate(variables):
        at = np.arange(len(years)) * n_c + j
        part = {"scenario": scen_names[0], "variable": variable, "unit": units.get(variable, ""),
                "year": np.array(years, dtype=np.int64), "n_runs": int(got["n"]),
                "mean": got["mean"][at]}
        part.update({_pct_name(q): got["pct"][i, at] for i, q in enumerate(qs)})
        parts.append(pd.DataFrame(part))
    return pd.concat(parts, ignore_index=True)


def _pa_concat(arrays):
    """Concatenate Arrow (chunked) arrays."""
    import pyarrow as pa

    return pa.chunked_array([c for a in arrays for c in a.chunks]).combine_chunks()


def _pa_strings(values: Sequence[str]):
    """Return ``values`` as an Arrow string array."""
    import pyarrow as pa

    return pa.array(list(values), type=pa.string())


def _target_shares(out: Path) -> pd.DataFrame:
    """Share of runs meeting each target, per scenario, from the counts each chunk recorded."""
    import pyarrow.parquet as pq

    cols = ["id", "label_en", "year", "comparison", "target", "unit", "set"]
    counts: dict[str, np.ndarray] = {}
    described = None
    for path in sorted((out / "runs").glob("c*.parquet")):
        stats = json.loads((pq.read_metadata(path).metadata or {}).get(b"greenpath", b"{}"))
        for name, row in stats.get("targets_met", {}).items():
            counts[name] = counts.get(name, 0) + np.asarray(row, dtype=np.int64)
        if described is None and stats.get("targets_met"):
            k = len(next(iter(stats["targets_met"].values()))) - 1
            with pq.ParquetFile(out / "targets" / path.name) as fh:
                first = next(fh.iter_batches(batch_size=k, columns=cols))
            described = first.to_pandas().to_dict("records")
    rows = []
    for name, row in counts.items():
        for j, target in enumerate(described or []):
            n, met = int(row[0]), int(row[j + 1])
            rows.append({"scenario": name, **target, "n_runs": n, "n_met": met,
                         "share_met": met / n if n else np.nan})
    return pd.DataFrame(rows, columns=["scenario", *cols, "n_runs", "n_met", "share_met"])


def write_summary(out_dir: str | Path, percentiles: Sequence[float] = DEFAULT_PERCENTILES,
                  spec: BatchSpec | None = None) -> list[Path]:
    """Write the Monte Carlo summary: ``summary.csv``, ``summary_targets.csv`` (UTF-8 with BOM) and ``summary.xlsx``."""
    return _write_summary(out_dir, percentiles, spec)[0]


def _write_summary(out_dir: str | Path, percentiles: Sequence[float],
                   spec: BatchSpec | None) -> tuple[list[Path], pd.DataFrame]:
    """:func:`write_summary`, also returning the percentile table it wrote."""
    out = Path(out_dir)
    pct, shares = summarise(out, percentiles)
    labels_zh = {t.id: t.label_zh for t in (spec.targets if spec else [])}
    if len(shares):
        shares.insert(3, "label_zh", shares["id"].map(labels_zh).fillna(""))
    about = [("what", "Monte Carlo summary of a greenpath batch"),
             ("percentiles", ", ".join(_pct_name(q) for q in _check_percentiles(percentiles))),
             ("method", "numpy percentile, linear interpolation, over the successful runs"),
             ("mean", "sum over blocks of 1,000 run ids, the block sums added exactly "
                      "(math.fsum), divided by the successful runs"),
             ("share_met", "runs meeting the target / runs evaluated")]
    if spec is not None:
        d = spec.to_dict()
        about += [("mode", spec.mode), ("spec_sha256", spec.hash()),
                  ("model_sha256", d["model_sha256"]),
                  ("calibration_sha256_12", d["calibration_sha256_12"])]
        if spec.mode == "monte_carlo":
            about += [("seed", str(spec.definition["seed"])),
                      ("runs", str(spec.definition["n"])),
                      ("sampled", ", ".join(u[0] for u in spec.definition["uncertainties"]))]
    paths = [out / SUMMARY_FILES[0], out / SUMMARY_FILES[1], out / SUMMARY_FILES[2]]
    _write_csv(pct, paths[0])
    _write_csv(shares, paths[1])

    def xlsx(fh) -> None:
        with pd.ExcelWriter(fh, engine="openpyxl") as xw:
            pct.to_excel(xw, sheet_name="percentiles", index=False)
            shares.to_excel(xw, sheet_name="targets", index=False)
            pd.DataFrame(about, columns=["key", "value"]).to_excel(xw, sheet_name="about",
                                                                   index=False)

    _atomic_write(paths[2], xlsx)
    return paths, pct


def _iamc_stat(stat: str) -> str:
    """``p50`` -> ``P50``, ``mean`` -> ``Mean``: the last part of a summary's IAMC variable."""
    return stat.upper() if stat.startswith("p") else stat.capitalize()


def summary_to_iamc(pct: pd.DataFrame, model: str | None = None) -> pd.DataFrame:
    """Put a Monte Carlo summary (from :func:`summarise`) in the IAMC template.

    Each statistic becomes a variable of its own, named after the model variable and the
    statistic (``co2_emissions|P50``, ``co2_emissions|Mean``), one row per scenario;
    the unit is the variable's.

    Parameters
    ----------
    pct
        The ``percentiles`` table: ``scenario, variable, unit, year, n_runs, mean, p..``.
    model
        The ``Model`` column (default :func:`greenpath.outputs.iamc.model_name`).

    Returns
    -------
    DataFrame
        The IAMC table (``Model, Scenario, Region, Variable, Unit`` and one column per year).
    """
    from greenpath.outputs import iamc

    stats = ["mean", *[c for c in pct.columns if c.startswith("p") and c[1:2].isdigit()]]
    long = pct.melt(id_vars=["scenario", "variable", "unit", "year"], value_vars=stats,
                    var_name="stat", value_name="value")
    long["variable"] = long["variable"].astype(str) + "|" + long["stat"].map(_iamc_stat)
    order = {s: i for i, s in enumerate(stats)}
    # rows: scenario, variable, statistic (mean, then the percentiles in order)
    long["_v"] = long["variable"].str.rsplit("|", n=1).str[0]
    long["_s"] = long["stat"].map(order)
    long = long.sort_values(["_v", "_s", "year"], kind="stable")
    rank = {s: i for i, s in enumerate(dict.fromkeys(pct["scenario"]))}
    long = long.iloc[np.argsort(long["scenario"].map(rank).to_numpy(), kind="stable")]
    return iamc.long_to_iamc(long[["scenario", "variable", "year", "value", "unit"]], model=model)


def write_batch_iamc(out_dir: str | Path, percentiles: Sequence[float] = DEFAULT_PERCENTILES,
                     *, summary: pd.DataFrame | None = None, mode: str | None = None) -> Path:
    """Write a batch's results in the IAMC template: ``OUT/iamc.csv``.

    A Monte Carlo batch writes its summary (:func:`summary_to_iamc`: the mean and each
    percentile as a variable, ``co2_emissions|P50``, per scenario); other batches
    (scenario lists, grids, explicit runs) write every run, chunk by chunk (memory
    holds one chunk), named ``scenario|run N`` when its scenario has more than one run
    in the batch and by the scenario's name otherwise.  UTF-8 without BOM (IAMC readers
    take the first header as ``Model``).

    Parameters
    ----------
    out_dir
        A batch folder whose chunks are all finished.
    percentiles
        The percentiles of a Monte Carlo summary (when ``summary`` is not given).
    summary
        The percentile table already computed by :func:`summarise` (saves reading again).
    mode
        The batch's mode (default: the manifest's).

    Returns
    -------
    Path
        The file written.
    """
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.parquet as pq
    from pyarrow import csv as pacsv

    from greenpath.outputs import iamc

    out = Path(out_dir)
    path = out / IAMC_FILE
    if mode is None:
        mode = json.loads((out / MANIFEST).read_text(encoding="utf-8"))["spec"]["mode"]
    model = iamc.model_name()
    if mode == "monte_carlo":
        if summary is None:
            summary, _ = summarise(out, percentiles)
        table = summary_to_iamc(summary, model=model)
        _atomic_write(path, lambda fh: fh.write(
            table.to_csv(index=False, float_format="%.12g").encode("utf-8")))
        return path
    files = sorted((out / "results").glob("c*.parquet"))
    # runs per scenario, from the one-row-per-run tables (a count per scenario in memory)
    counts: dict[str, int] = {}
    for f in sorted((out / "runs").glob("c*.parquet")):
        col = pq.read_table(f, columns=["scenario"]).column(0).cast(pa.string())
        for item in pc.value_counts(col).to_pylist():
            counts[str(item["values"])] = counts.get(str(item["values"]), 0) + item["counts"]
    several = pa.array([k for k, n in counts.items() if n > 1], type=pa.string())
    units = tg.model_units()

    def write(fh) -> None:
        # pyarrow writes CSV without a Python object per value (pandas' to_csv costs about
        # as much as the runs themselves); one chunk in memory at a time
        writer = None
        for f in files:
            part = pq.read_table(f)
            if not part.num_rows:
                continue
            part = part.take(pc.sort_indices(part, [("run_id", "ascending")]))  # stable
            years = _year_columns(part.schema.names)
            scen = part.column("scenario").cast(pa.string())
            numbered = pc.binary_join_element_wise(
                scen, pc.cast(part.column("run_id"), pa.string()), "|run ")
            names = pc.if_else(pc.is_in(scen, value_set=several), numbered, scen)
            variable = part.column("variable").cast(pa.string())
            if "unit" in part.schema.names:
                unit = part.column("unit").cast(pa.string())
            else:  # pragma: no cover - every chunk written by this version has units
                unit = pa.array([units.get(v, "") for v in variable.to_pylist()], pa.string())
            empty = pc.or_(pc.is_null(unit), pc.equal(unit, ""))
            if pc.any(empty).as_py():
                first = variable.filter(empty)[0].as_py()
                raise iamc.IamcError(f"{first} has no unit: a variable without a unit cannot "
                                     "be exchanged in the IAMC template")
            n = part.num_rows
            table = pa.table({"Model": pa.array([model] * n, pa.string()), "Scenario": names,
                              "Region": pa.array([iamc.REGION] * n, pa.string()),
                              "Variable": variable, "Unit": unit,
                              **{y: part.column(y).cast(pa.float64()) for y in years}})
            if writer is None:
                writer = pacsv.CSVWriter(fh, table.schema,
                                         write_options=pacsv.WriteOptions(quoting_style="needed"))
            writer.write_table(table)
        if writer is None:  # no chunk with rows: the header alone
            fh.write((",".join(iamc.INDEX) + "\n").encode("utf-8"))
        else:
            writer.close()

    _atomic_write(path, write)
    return path


# ---------------------------------------------------------------------- reading back
def _check_complete(out: Path) -> dict:
    manifest = out / MANIFEST
    if not manifest.is_file():
        raise BatchError(f"{out} is not a batch folder (no {MANIFEST})")
    try:
        data = _json_object(manifest.read_text(encoding="utf-8"))
    except ValueError as exc:
        raise BatchError(f"{manifest} is unreadable ({str(exc).splitlines()[0][:120]}); run the "
                         "batch again into a new folder") from None
    status = data.get("status")
    if status != "complete":
        raise BatchError(f"the batch in {out} is not complete (status {status!r}); run it "
                         "again to finish")
    if data.get("format") != FORMAT_VERSION:
        raise BatchError(f"the batch in {out} was written in format {data.get('format')!r}; "
                         f"this version reads format {FORMAT_VERSION}: run it again into a new "
                         "folder")
    return data


def dataset(out_dir: str | Path, name: str = "results"):
    """Open one table of a finished batch as a lazy ``pyarrow.dataset.Dataset``.

    ``name`` is ``results`` (one row per run and variable, one column per year),
    ``runs`` or ``targets``.  Nothing is read until asked; filters and column choices
    are pushed down to the Parquet files (``ds.to_table(columns=[...], filter=...)``).
    """
    _check_complete(Path(out_dir))
    return _dataset(Path(out_dir), name)


def _dataset(out: Path, name: str):
    import pyarrow.dataset as pads

    if name not in DATASETS:
        raise BatchError(f"table {name!r} is not one of {', '.join(DATASETS)}")
    files = sorted((out / name).glob("c*.parquet"))
    return pads.dataset([str(f) for f in files], format="parquet")


def read_results(out_dir: str | Path, *, variables: Sequence[str] | None = None,
                 years: Sequence[int] | None = None, runs: Sequence[int] | None = None,
                 scenarios: Sequence[str] | None = None, long: bool = False) -> pd.DataFrame:
    """Read a filtered part of a batch's results, reading only what the filters need.

    Parameters
    ----------
    out_dir
        A finished batch folder.
    variables, years, runs, scenarios
        Keep only these (``None``: all).  Variables and runs are filtered in the Parquet
        files (row groups of other variables are skipped), years by reading only
        their columns.
    long
        ``False``: one row per run and variable, one column per year (as stored);
        ``True``: the long table ``scenario, run_id, variable, year, value, unit``.
    """
    import pyarrow.compute as pc

    ds = dataset(out_dir, "results")
    all_years = _year_columns(ds.schema.names)
    if years is not None:
        wanted = [str(int(y)) for y in years]
        missing = [y for y in wanted if y not in all_years]
        if missing:
            raise BatchError(f"years {', '.join(missing)} are not in the batch (it has "
                             f"{all_years[0]}-{all_years[-1]})")
    else:
        wanted = all_years
    filt = None
    for column, chosen in (("variable", variables), ("run_id", runs), ("scenario", scenarios)):
        if chosen is not None:
            term = pc.field(column).isin(list(chosen))
            filt = term if filt is None else filt & term
    table = ds.to_table(columns=["run_id", "scenario", "variable", "unit", *wanted], filter=filt)
    frame = _to_pandas(table)
    order = list(variables) if variables is not None else list(dict.fromkeys(frame["variable"]))
    if long:
        return _long(frame, order)[RESULT_COLUMNS]
    rank = frame["variable"].map({v: i for i, v in enumerate(order)}).to_numpy()
    return frame.iloc[np.lexsort((rank, frame["run_id"].to_numpy()))].reset_index(drop=True)


def to_dask(out_dir: str | Path, name: str = "results"):
    """One table of a finished batch as a lazy Dask DataFrame (one partition per chunk)."""
    import dask.dataframe as dd

    ds = dataset(out_dir, name)
    return dd.read_parquet(list(ds.files))


def read(out_dir: str | Path) -> dict[str, pd.DataFrame]:
    """Read the ``results`` (long), ``runs``, ``targets`` and ``scenarios`` tables of a finished batch.

    Everything in memory: for small batches.  Large ones are read with
    :func:`read_results`, :func:`dataset` or :func:`to_dask`.
    """
    import pyarrow.parquet as pq

    out = Path(out_dir)
    _check_complete(out)
    tables: dict[str, pd.DataFrame] = {}
    units = tg.model_units()
    columns = json.loads((out / MANIFEST).read_text(encoding="utf-8"))["spec"]["variables"]
    for name in DATASETS:
        files = sorted((out / name).glob("c*.parquet"))
        parts = [_to_pandas(pq.read_table(f)) for f in files]
        parts = [p for p in parts if len(p)] or parts[:1]
        table = pd.concat(parts, ignore_index=True)
        if name == "results":
            table = _long(table, columns)
            table["unit"] = table["variable"].map(units).fillna("")
            table = table[RESULT_COLUMNS]
        elif name == "runs":
            table = table[RUN_COLUMNS + [c for c in table.columns if c not in RUN_COLUMNS]]
        tables[name] = table
    tables["scenarios"] = pd.read_parquet(out / "scenarios.parquet")
    return {name: tables[name] for name in TABLES}
