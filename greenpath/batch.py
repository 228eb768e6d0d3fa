"""Batches of runs: scenario lists, lever grids and Monte Carlo ensembles, resumable.

A batch is defined by a :class:`BatchSpec` (what to run) and written into one output
folder::

    OUT/manifest.json                 the spec, its hash, progress, software versions
    OUT/chunks/c000000/ ...           one folder per finished chunk of runs
    OUT/results.parquet, results.csv  scenario, run_id, variable, year, value, unit
    OUT/runs.parquet, runs.csv        run_id, scenario, status, error, parameters (JSON),
                                      run_seconds, engine, model_sha256, one column per
                                      varied parameter
    OUT/targets.parquet, targets.csv  run_id, scenario, target id, value, met, margin, ...
    OUT/scenarios.parquet, .csv       one row per scenario: titles (en, zh), extends chain,
                                      source file and SHA-256 (of it and of each parent),
                                      mode, base scenario, seed and sampled names (Monte
                                      Carlo), run-id range, model SHA-256, calibration id

How it loses nothing
--------------------
* Runs are cut into chunks (``chunk_size`` runs each, in run_id order).  Each chunk is
  written into a temporary folder and renamed into ``chunks/`` in one step, so a chunk
  folder either exists complete or not at all.
* A restarted batch with the same spec (same command) skips the chunks that exist and
  ends with exactly the files an uninterrupted batch writes: run ids and samples are a
  pure function of the spec (the Monte Carlo sample is seeded).
* A folder holding a different spec (its hash is in the manifest) is refused, and so
  is a non-empty folder without a manifest, unless ``force`` is given; ``force`` then
  deletes only the batch's own files (manifest, chunks, the result files).
* A run that raises or returns non-finite values is recorded in ``runs`` with
  ``status = "failed"`` and its error; the other runs carry on.

Where runs go
-------------
Every chunk goes through :func:`run_chunk`, in this process (``workers=1``), in a pool
of processes (``concurrent.futures.ProcessPoolExecutor``, each worker loading its own
model once), or on a Dask distributed cluster (``scheduler="tcp://host:port"``).
:func:`run_chunk` runs on the NumPy vector engine generated from the same ``.mdl``
(``engine="auto"``, the default: the chunk's runs, year tables included, in one call
per year-table structure through :func:`greenpath.ensemble.run_specs`; if the vector
engine refuses the model or fails, a warning says why and the chunk runs on PySD),
only on it (``engine="vector"``: its failure fails the chunk's runs) or on PySD
(``engine="pysd"``, the reference, one run after the other).  The runs table records
the engine of each run and the SHA-256 of the model that engine was built from.

Monte Carlo
-----------
A Latin hypercube (``scipy.stats.qmc.LatinHypercube``, seeded), uniform in each
registry ``[min, max]`` (an assumption: the registry gives ranges, not distributions),
on top of a base scenario's settings; a sampled uncertainty overrides the base
scenario's value.  By default it samples the *projection uncertainties*
(:func:`greenpath.ensemble.projection_uncertainties`: those whose whole range leaves
the calibrated history 2005-2020 unchanged), so every run starts from the same
recorded 2020 (CO2, coal, GDP, ...) and differs only from the policy start on.  The
uncertainties the calibration pins to the history (initial GDP, 2017 growth, initial
shares, ...) are sampled only when asked for (``uncertainties="all"`` or a list of
names; ``--uncertainty all`` on the command line): sampling them across their prior
ranges moves 2020 CO2 far from the calibrated 39 Mt.

Public API (stable)
-------------------
``BatchSpec``, ``RunSpec``, ``BatchError``
``scenario_batch(names, ...)``, ``grid_batch(grid, base="baseline", ...)``,
``monte_carlo_batch(n, seed, base="baseline", uncertainties="projection", ...)``,
``runs_batch(specs, ...)``
    Build a spec.
``run_chunk(specs, columns=None, engine="auto", targets=None) -> ChunkResult``
    Run one chunk (the single place where runs happen).
``run_batch(spec, out_dir, workers=None, scheduler=None, force=False, progress=True)``
    Run or resume a batch; returns a :class:`BatchSummary`.
``read(out_dir) -> dict[str, DataFrame]``
    The ``results``, ``runs``, ``targets`` and ``scenarios`` tables of a finished batch.
``scenarios_table(spec) -> DataFrame``, ``scenario_provenance(scenario) -> dict``
    The scenario-metadata table of a batch; one scenario's titles, chain and files.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import math
import os
import shutil
import tempfile
import time
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from greenpath import scenarios
from greenpath import targets as tg
from greenpath.model import indicators
from greenpath.model import registry as reg

# 2: the scenarios table; engine and model_sha256 columns in runs
FORMAT_VERSION = 2
MANIFEST = "manifest.json"
CHUNK_DIR = "chunks"
# Tables every chunk writes (combined at the end) ...
OUTPUTS = ("results", "runs", "targets")
# ... and tables of the whole batch, written once from the spec.
BATCH_OUTPUTS = ("scenarios",)
TABLES = OUTPUTS + BATCH_OUTPUTS
DEFAULT_CHUNK_SIZE = 25
# The vector engine runs a whole chunk in one call: larger chunks amortise that call.
DEFAULT_VECTOR_CHUNK_SIZE = 250
ENGINES = ("auto", "vector", "pysd")
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

Table = tuple[list[float], list[float]]


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
        from greenpath.model.engine import FINAL_TIME, SAVEPER, TIME_STEP, model_hash

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
        """Every run of the batch, in run_id order (a pure function of the spec)."""
        return _build_runs(self.mode, self.definition)


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
    """Headline indicators plus what the targets need, in a stable order."""
    out = list(indicators.HEADLINE)
    out += [v for v in tg.required_variables(list(targets)) if v not in out]
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
    if not spec.runs():
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
        :func:`greenpath.ensemble.projection_uncertainties`: the uncertainties
        whose whole range leaves the calibrated history 2005-2020 unchanged, so
        every run reproduces the same 2020 base), ``"all"`` (every uncertainty
        with a range, including those the calibration pins to the recorded
        history: initial GDP, 2017 growth, initial shares, ...), or a list of
        names (``["all"]`` and ``["projection"]`` as the CLI passes them).
    variables, chunk_size, engine, targets, sets, use_targets
        As :func:`scenario_batch`.
    """
    import scipy

    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise BatchError(f"--monte-carlo {n!r}: the number of runs must be a whole number >= 1")
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise BatchError(f"--seed {seed!r}: must be a whole number >= 0")
    pool = reg.uncertainties()
    chosen, which = _uncertainty_selection(uncertainties, pool)
    definition = {
        "base": _settings(scenarios.load(base)), "n": n, "seed": seed,
        "sampler": "scipy.stats.qmc.LatinHypercube (uniform in each registry range)",
        "scipy": scipy.__version__,
        "uncertainty_set": which,
        "uncertainties": [[k, pool[k].min, pool[k].max] for k in chosen],
    }
    return _finish("monte_carlo", definition, variables, chunk_size, engine, targets, sets,
                   use_targets)


UNCERTAINTY_SETS = ("projection", "all")


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
        from greenpath import ensemble

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


def _latin_hypercube(n: int, seed: int, bounds: list) -> np.ndarray:
    from scipy.stats import qmc

    lows = np.array([b[1] for b in bounds], dtype=float)
    highs = np.array([b[2] for b in bounds], dtype=float)
    sample = qmc.LatinHypercube(d=len(bounds), rng=np.random.default_rng(seed)).random(n)
    return qmc.scale(sample, lows, highs)


def _build_runs(mode: str, d: dict) -> list[RunSpec]:
    def tables(base: dict) -> dict[str, Table]:
        return {k: (list(v[0]), list(v[1])) for k, v in base["tables"].items()}

    if mode == "scenarios":
        return [RunSpec(i, s["name"], dict(s["params"]), tables(s))
                for i, s in enumerate(d["scenarios"])]
    if mode == "runs":
        return [RunSpec.from_dict(r) for r in d["runs"]]
    base = d["base"]
    out: list[RunSpec] = []
    if mode == "grid":
        names = [n for n, _ in d["grid"]]
        for i, combo in enumerate(itertools.product(*[vals for _, vals in d["grid"]])):
            varied = dict(zip(names, map(float, combo), strict=True))
            base_tables = {k: v for k, v in tables(base).items() if k not in varied}
            out.append(RunSpec(i, base["name"], {**base["params"], **varied}, base_tables,
                               varied))
        return out
    if mode == "monte_carlo":
        bounds = d["uncertainties"]
        values = _latin_hypercube(d["n"], d["seed"], bounds)
        names = [b[0] for b in bounds]
        for i, row in enumerate(values):
            varied = dict(zip(names, map(float, row), strict=True))
            base_tables = {k: v for k, v in tables(base).items() if k not in varied}
            out.append(RunSpec(i, base["name"], {**base["params"], **varied}, base_tables,
                               varied))
        return out
    raise BatchError(f"unknown batch mode {mode!r}; allowed {', '.join(MODES)}")


# ---------------------------------------------------------------------- running chunks
def _non_finite(values: np.ndarray, columns: list[str], years: np.ndarray) -> str:
    bad = ~np.isfinite(values)
    if not bad.any():
        return ""
    cols = [c for j, c in enumerate(columns) if bad[:, j].any()]
    first = int(years[np.argmax(bad.any(axis=1))])
    shown = ", ".join(cols[:5]) + (f" and {len(cols) - 5} more" if len(cols) > 5 else "")
    return f"non-finite values (NaN or inf) from {first} in {shown}"


def model_for(tables: Iterable[str], columns: Sequence[str]):
    """Return the model this thread runs PySD runs on (one per thread, loaded once).

    ``tables`` and ``columns`` describe the run's structure; the engine keeps the right
    cache types for every structure it has seen, so one model serves them all
    (``tests/test_batch.py`` checks interleaved structures against fresh models).
    """
    from greenpath.model.engine import thread_local_model

    del tables, columns
    return thread_local_model()


def _run_pysd(spec: RunSpec, columns: list[str]):
    """One run on PySD: ``(values, years, error, seconds, engine, model_sha256)``."""
    started = time.perf_counter()
    model = None
    try:
        model = model_for(spec.tables, columns)
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
    from greenpath import ensemble

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
        runs through :func:`greenpath.ensemble.run_specs`: one vectorised call per
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
    targets = list(targets or [])
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
                              f"{len(specs)} runs on PySD instead", RuntimeWarning, stacklevel=2)
    for spec in specs:
        if spec.run_id not in outcomes:
            outcomes[spec.run_id] = _run_pysd(spec, columns)
    run_rows, good = [], []
    for spec in specs:
        values, years, error, seconds, used, model_sha = outcomes[spec.run_id]
        if not error:
            error = _non_finite(values, columns, years)
        if not error:
            good.append((spec, values, years))
        run_rows.append({
            "run_id": spec.run_id, "scenario": spec.scenario,
            "status": "failed" if error else "ok", "error": error,
            "parameters": json.dumps({"params": spec.params, "tables": {
                k: [list(v[0]), list(v[1])] for k, v in spec.tables.items()}}
                if not spec.varied else spec.varied, sort_keys=True),
            "run_seconds": float(seconds), "engine": used, "model_sha256": model_sha,
            **spec.varied,
        })
    runs = pd.DataFrame(run_rows)
    target_table = _targets_table(good, columns, targets, runs)
    good = [g for g in good if runs.loc[runs["run_id"] == g[0].run_id, "status"].iat[0] == "ok"]
    return ChunkResult(runs=runs, results=_long(good, columns), targets=target_table)


def _targets_table(good: list, columns: list[str], targets: list[tg.Target],
                   runs: pd.DataFrame) -> pd.DataFrame:
    """Targets of every successful run (one vectorised evaluation per chunk)."""
    if not good or not targets:
        return pd.DataFrame({c: [] for c in TARGET_COLUMNS})
    years = good[0][2]
    if any(len(g[2]) != len(years) or (g[2] != years).any() for g in good):
        raise BatchError("runs of one chunk returned different years")
    cube = np.stack([g[1] for g in good])
    try:
        arrays = tg.evaluate_arrays(cube, years, columns, targets)
    except tg.TargetError as exc:
        runs.loc[runs["status"] == "ok", "error"] = f"targets: {exc}"
        runs.loc[runs["status"] == "ok", "status"] = "failed"
        return pd.DataFrame({c: [] for c in TARGET_COLUMNS})
    n, k = len(good), len(targets)
    return pd.DataFrame({
        "run_id": np.repeat([g[0].run_id for g in good], k).astype(np.int64),
        "scenario": np.repeat(np.asarray([g[0].scenario for g in good], dtype=object), k),
        "id": np.tile(np.asarray([t.id for t in targets], dtype=object), n),
        "label_en": np.tile(np.asarray([t.label_en for t in targets], dtype=object), n),
        "year": np.tile([t.year for t in targets], n).astype(np.int64),
        "comparison": np.tile(np.asarray([t.comparison for t in targets], dtype=object), n),
        "target": np.tile([t.value for t in targets], n).astype(float),
        "value": arrays["value"].ravel(), "met": arrays["met"].ravel(),
        "margin": arrays["margin"].ravel(),
        "unit": np.tile(np.asarray([t.unit for t in targets], dtype=object), n),
        "set": np.tile(np.asarray([t.set or "" for t in targets], dtype=object), n),
    }, columns=TARGET_COLUMNS)


def _long(blocks: list, columns: list[str]) -> pd.DataFrame:
    """Long table (scenario, run_id, variable, year, value) of the successful runs."""
    if not blocks:
        return pd.DataFrame({"scenario": pd.Series(dtype=str), "run_id": pd.Series(dtype=int),
                             "variable": pd.Series(dtype=str), "year": pd.Series(dtype=int),
                             "value": pd.Series(dtype=float)})
    n_y, n_c = blocks[0][1].shape
    per_run = n_y * n_c
    cube = np.stack([b[1].T for b in blocks])  # runs, columns, years
    years = np.concatenate([np.tile(np.asarray(b[2], dtype=np.int64), n_c) for b in blocks])
    return pd.DataFrame({
        "scenario": np.repeat(np.asarray([b[0].scenario for b in blocks], dtype=object),
                              per_run),
        "run_id": np.repeat(np.asarray([b[0].run_id for b in blocks], dtype=np.int64), per_run),
        "variable": np.tile(np.repeat(np.asarray(columns, dtype=object), n_y), len(blocks)),
        "year": years,
        "value": cube.ravel(),
    })


# ---------------------------------------------------------------------- the output folder
def _atomic_json(path: Path, data: dict) -> None:
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            json.dump(data, fh, indent=2, ensure_ascii=False, default=str)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def _output_paths(out: Path) -> list[Path]:
    return [out / f"{name}.{ext}" for name in TABLES for ext in ("parquet", "csv")]


def _chunk_path(out: Path, k: int) -> Path:
    return out / CHUNK_DIR / f"c{k:06d}"


def _differences(old: dict, new: dict) -> list[str]:
    keys = sorted(set(old) | set(new))
    return [k for k in keys if old.get(k) != new.get(k)]


def _prepare(out: Path, spec: BatchSpec, spec_hash: str, force: bool) -> None:
    """Check the folder; clean it when ``force``; leave finished chunks when resuming."""
    manifest = out / MANIFEST
    if out.exists() and not out.is_dir():
        raise BatchError(f"{out} is a file, not a folder")
    if manifest.is_file():
        try:
            old = json.loads(manifest.read_text(encoding="utf-8"))
            same = old.get("spec_hash") == spec_hash
        except (json.JSONDecodeError, UnicodeDecodeError):
            old, same = {}, False
            if not force:
                raise BatchError(f"{manifest} is unreadable; use a new folder, or --force to "
                                 "discard this one") from None
        if same:
            return
        if not force:
            diff = _differences(old.get("spec", {}), spec.to_dict()) if old else []
            raise BatchError(
                f"{out} holds a different batch (spec differs in: {', '.join(diff) or '?'}); "
                "write to a new --out folder, or pass --force to discard the old batch"
            )
        shutil.rmtree(out / CHUNK_DIR, ignore_errors=True)
        for p in [*_output_paths(out), manifest]:
            p.unlink(missing_ok=True)
    elif out.is_dir() and any(out.iterdir()) and not force:
        raise BatchError(f"{out} exists and is not a batch folder (no {MANIFEST}); choose a "
                         "new or empty folder, or pass --force to write into it")
    (out / CHUNK_DIR).mkdir(parents=True, exist_ok=True)


def _write_chunk(out: Path, k: int, result: ChunkResult) -> None:
    final = _chunk_path(out, k)
    (out / CHUNK_DIR).mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".tmp-c{k:06d}-", dir=out / CHUNK_DIR))
    try:
        for name in OUTPUTS:
            getattr(result, name).to_parquet(tmp / f"{name}.parquet", index=False)
        try:
            os.replace(tmp, final)
        except OSError:
            # Only possible if another process finished the same chunk first: its copy
            # holds the same runs (a chunk is a pure function of the spec), keep it.
            if not final.is_dir():
                raise
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)


def _write_manifest(out: Path, spec_dict: dict, spec_hash: str, n_runs: int, n_chunks: int,
                    done: int, status: str, n_failed: int | None = None,
                    software: dict | None = None) -> None:
    data = {
        "format": FORMAT_VERSION, "spec_hash": spec_hash, "status": status,
        "n_runs": n_runs, "n_chunks": n_chunks, "chunks_done": done,
        "n_failed": n_failed, "outputs": [p.name for p in _output_paths(out)],
        "software": software or {}, "updated": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "spec": spec_dict,
    }
    _atomic_json(out / MANIFEST, data)


def _combine(out: Path, n_chunks: int, spec: BatchSpec,
             spec_hash: str) -> tuple[dict[str, pd.DataFrame], list[Path]]:
    tables: dict[str, pd.DataFrame] = {}
    for name in OUTPUTS:
        parts = [pd.read_parquet(_chunk_path(out, k) / f"{name}.parquet")
                 for k in range(n_chunks)]
        parts = [p for p in parts if len(p)] or parts[:1]
        tables[name] = pd.concat(parts, ignore_index=True)
    units = tg.model_units()
    res = tables["results"]
    res["unit"] = res["variable"].map(units).fillna("")
    tables["results"] = res[RESULT_COLUMNS]
    runs = tables["runs"]
    tables["runs"] = runs[RUN_COLUMNS + [c for c in runs.columns if c not in RUN_COLUMNS]]
    tables["scenarios"] = scenarios_table(spec, tables["runs"], spec_hash)
    paths = []
    for name, table in tables.items():
        for ext in ("parquet", "csv"):
            path = out / f"{name}.{ext}"
            fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=out)
            os.close(fd)
            try:
                if ext == "parquet":
                    table.to_parquet(tmp, index=False)
                else:
                    _write_csv(table, Path(tmp))
                os.replace(tmp, path)
            finally:
                if os.path.exists(tmp):
                    os.unlink(tmp)
            paths.append(path)
    return tables, paths


def _write_csv(table: pd.DataFrame, path: Path) -> None:
    """CSV through pyarrow (several times faster than pandas for long tables)."""
    import pyarrow as pa
    from pyarrow import csv

    csv.write_csv(pa.Table.from_pandas(table, preserve_index=False), path)


def _init_worker(columns: list[str], engine: str = "pysd") -> None:
    """Load the engine's model before the first chunk arrives."""
    if engine != "pysd":
        try:
            from greenpath import ensemble

            ensemble.vector_model()
            return
        except Exception:  # noqa: BLE001 - run_chunk reports it (or falls back) per chunk
            if engine == "vector":
                return
    model_for((), columns)


def scenarios_table(spec: BatchSpec, runs: pd.DataFrame | None = None,
                    spec_hash: str | None = None) -> pd.DataFrame:
    """One row per scenario of the batch: what it is, where it comes from, how it ran.

    Parameters
    ----------
    spec
        The batch.
    runs
        The batch's runs table (for ``n_runs`` and the run-id range; default: the
        runs of the spec).
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
    if runs is None:
        runs = pd.DataFrame([{"run_id": r.run_id, "scenario": r.scenario} for r in spec.runs()])
    rows = []
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
        mine = runs.loc[runs["scenario"] == name, "run_id"]
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
            "n_runs": int(len(mine)),
            "first_run_id": int(mine.min()) if len(mine) else pd.NA,
            "last_run_id": int(mine.max()) if len(mine) else pd.NA,
            "model_sha256": spec_dict["model_sha256"],
            "calibration_sha256_12": spec_dict["calibration_sha256_12"],
            "spec_sha256": spec_hash,
        })
    table = pd.DataFrame(rows, columns=SCENARIO_COLUMNS)
    for column in ("seed", "first_run_id", "last_run_id"):
        table[column] = table[column].astype("Int64")
    table["n_runs"] = table["n_runs"].astype("int64")
    return table


def run_batch(spec: BatchSpec, out_dir: str | Path, *, workers: int | None = None,
              scheduler: str | None = None, force: bool = False,
              progress: bool = True, connect_timeout: float = 20.0) -> BatchSummary:
    """Run (or resume) a batch into ``out_dir``.

    Parameters
    ----------
    spec
        What to run.
    out_dir
        The output folder (created if missing).
    workers
        Processes to use (default: all cores); 1 runs in this process.  Ignored with
        ``scheduler``.
    scheduler
        Address of a Dask distributed scheduler (``tcp://host:port``): chunks run on its
        workers, results are written here.
    force
        Replace a different batch in ``out_dir`` (deleting only its own files), or write
        into a non-empty folder that is not a batch folder.
    progress
        Show a progress bar (tqdm, on stderr).
    connect_timeout
        Seconds to wait for the Dask scheduler.

    Returns
    -------
    BatchSummary
    """
    from tqdm import tqdm

    from greenpath.model.engine import software_versions

    out = Path(out_dir)
    spec_dict = spec.to_dict()
    spec_hash = spec.hash()
    software = software_versions()
    runs = spec.runs()
    chunks = [runs[i:i + spec.chunk_size] for i in range(0, len(runs), spec.chunk_size)]
    _prepare(out, spec, spec_hash, force)
    for stale in (out / CHUNK_DIR).glob(".tmp-*"):
        shutil.rmtree(stale, ignore_errors=True)
    done = {k for k in range(len(chunks)) if _chunk_path(out, k).is_dir()}
    todo = [k for k in range(len(chunks)) if k not in done]
    skipped = len(done)
    _write_manifest(out, spec_dict, spec_hash, len(runs), len(chunks), len(done), "running",
                    software=software)
    started = time.perf_counter()
    bar = tqdm(total=len(runs), initial=sum(len(chunks[k]) for k in done), unit="run",
               desc="batch", disable=not progress, smoothing=0.1)
    errors: list[str] = []
    args = (spec.variables, spec.engine, spec.targets)

    def finished(k: int, result: ChunkResult) -> None:
        _write_chunk(out, k, result)
        done.add(k)
        bar.update(len(chunks[k]))
        _write_manifest(out, spec_dict, spec_hash, len(runs), len(chunks), len(done),
                        "running", software=software)

    try:
        if todo and scheduler:
            _run_dask(scheduler, chunks, todo, args, spec_hash, finished, errors,
                      connect_timeout)
        elif todo and (workers or os.cpu_count() or 1) > 1 and len(todo) > 1:
            _run_pool(min(workers or os.cpu_count() or 1, len(todo)), chunks, todo, args,
                      finished, errors)
        else:
            for k in todo:
                finished(k, run_chunk(chunks[k], *args))
    finally:
        bar.close()
    if errors:
        raise BatchError(
            f"{len(errors)} chunk(s) did not finish ({errors[0]}); the {len(done)} finished "
            f"chunks are saved in {out}: run the same command again to resume"
        )
    tables, paths = _combine(out, len(chunks), spec, spec_hash)
    _warn_model_mismatch(tables["runs"], spec_dict["model_sha256"])
    n_failed = int((tables["runs"]["status"] != "ok").sum())
    _write_manifest(out, spec_dict, spec_hash, len(runs), len(chunks), len(done), "complete",
                    n_failed, software=software)
    return BatchSummary(out_dir=out, n_runs=len(runs), n_ok=len(runs) - n_failed,
                        n_failed=n_failed, n_chunks=len(chunks), chunks_skipped=skipped,
                        runs_executed=sum(len(chunks[k]) for k in todo),
                        seconds=time.perf_counter() - started, paths=paths)


def _warn_model_mismatch(runs: pd.DataFrame, expected: str) -> None:
    """Warn when runs ran on a model other than the one the batch was defined for.

    For example a long-lived Dask worker still holding a PySD translation of an older .mdl.
    """
    ran = runs.loc[(runs["status"] == "ok") & (runs["model_sha256"] != ""), "model_sha256"]
    other = ran[ran != expected]
    if len(other):
        import warnings

        warnings.warn(f"{len(other)} run(s) ran on model {other.iat[0][:12]}, not on the "
                      f"batch's model {expected[:12]} (the .mdl changed while workers kept "
                      "an older model); see the runs table's model_sha256", RuntimeWarning,
                      stacklevel=3)


def _run_pool(workers: int, chunks, todo, args, finished, errors) -> None:
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor, as_completed

    # "spawn": workers start from a clean interpreter (no inherited threads or model).
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=workers, mp_context=context,
                             initializer=_init_worker, initargs=(list(args[0]), args[1])) as pool:
        futures = {pool.submit(run_chunk, chunks[k], *args): k for k in todo}
        try:
            _collect(futures, as_completed, finished, errors)
        except BaseException:
            for f in futures:
                f.cancel()
            raise


def _run_dask(address: str, chunks, todo, args, spec_hash: str, finished, errors,
              connect_timeout: float) -> None:
    from distributed import Client, as_completed

    try:
        client = Client(address, timeout=f"{connect_timeout}s")
    except OSError as exc:
        raise BatchError(f"cannot reach the Dask scheduler at {address!r}: {exc}") from None
    try:
        tag = uuid.uuid4().hex[:8]
        futures = {client.submit(run_chunk, chunks[k], *args,
                                 key=f"greenpath-chunk-{spec_hash[:12]}-{k}-{tag}"): k
                   for k in todo}
        _collect(futures, as_completed, finished, errors)
    finally:
        client.close()


def _collect(futures: dict, as_completed, finished, errors: list[str]) -> None:
    """Hand each chunk result to ``finished`` as it completes (pool or Dask futures).

    A chunk that raised is recorded in ``errors`` and the others go on.
    """
    for future in as_completed(futures):
        k = futures[future]
        try:
            result = future.result()
        except Exception as exc:
            errors.append(f"chunk {k}: {type(exc).__name__}: {exc}")
            continue
        finished(k, result)


def read(out_dir: str | Path) -> dict[str, pd.DataFrame]:
    """Read the ``results``, ``runs``, ``targets`` and ``scenarios`` tables of a finished batch."""
    out = Path(out_dir)
    manifest = out / MANIFEST
    if not manifest.is_file():
        raise BatchError(f"{out} is not a batch folder (no {MANIFEST})")
    status = json.loads(manifest.read_text(encoding="utf-8")).get("status")
    if status != "complete":
        raise BatchError(f"the batch in {out} is not complete (status {status!r}); run it "
                         "again to finish")
    return {name: pd.read_parquet(out / f"{name}.parquet") for name in TABLES}
