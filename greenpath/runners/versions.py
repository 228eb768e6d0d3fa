"""One version of the model: a ``.mdl``, its parameter registry and its calibration.

``greenpath check`` and ``greenpath compare`` run a model version that need not be
the one installed: a temporary copy with a planted change, an older git revision, or
another checkout.  A :class:`ModelVersion` holds the three files that define one
(``model/jiaozuo.mdl``, ``model/parameters.csv``, ``calibration/calibrated.toml``),
compiles the ``.mdl`` with the vector engine (:class:`greenpath.engines.vector.VectorModel`,
its public API; generated code is cached under
:func:`greenpath.engines.pysd_engine.cache_root`) and runs many settings in one call.

Settings are ``name -> value`` or ``name -> (years, values)`` (a year table, as in a
scenario file).  Runs with year tables use a derived ``.mdl`` in which each tabled
lever ``X = <number>`` reads ``X year table(data year)``, the same construction
:mod:`greenpath.runners.ensemble` uses for the installed model; because ``data year`` is a
whole year, the table is resampled on every year 2005-2035 (linear in between, flat
outside the given years), which gives the values of the scenario's own table.

Public API
----------
``ModelVersion(root, label=None)``
    A folder holding ``model/jiaozuo.mdl``, ``model/parameters.csv`` and optionally
    ``calibration/calibrated.toml``.
``ModelVersion.current()``
    The installed model, registry and calibration in force.
``ModelVersion.from_git(rev, repo=None)``
    The three files at a git revision (``git show REV:path``), written once to the cache.
``ModelVersion.run(settings, columns) -> Runs``
    Every setting in one vector-engine pass per set of tabled levers.
``dependency_order(mdl_path) -> list[str]``
    Variables of a ``.mdl`` in evaluation order (stocks first, then auxiliaries).
"""

from __future__ import annotations

import hashlib
import re
import subprocess
import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from greenpath.engines.base import cache_root
from greenpath.model import registry as reg
from greenpath.model.mdl import MDL_PATH, parse_mdl
from greenpath.scenarios.settings import Setting

__all__ = ["ModelVersion", "Runs", "Settings", "VersionError", "dependency_order"]

#: Paths of the files defining a version, relative to its root.
MDL_FILE = "model/jiaozuo.mdl"
REGISTRY_FILE = "model/parameters.csv"
CALIBRATION_FILE = "calibration/calibrated.toml"
#: Years a year table is resampled on (the model's run).
TABLE_YEARS = np.arange(2005, 2036, dtype=float)
_TABLE_SUFFIX = " year table"



class VersionError(ValueError):
    """A model version that cannot be read or run as asked."""


@dataclass
class Runs:
    """Results of many runs of one model version.

    Attributes
    ----------
    values
        ``variable -> array (n_runs, n_years)``.
    years
        The saved years.
    params
        ``parameter -> array (n_runs,)``: every registry constant as run (tabled
        levers hold the value of their table in the policy start year).
    dropped
        Settings not applied because this version's registry lacks them.
    """

    values: dict[str, np.ndarray]
    years: np.ndarray
    params: dict[str, np.ndarray]
    dropped: list[str] = field(default_factory=list)

    @property
    def n(self) -> int:
        """Number of runs."""
        return len(next(iter(self.params.values()))) if self.params else 0

    def year_index(self, year: int) -> int:
        """Column of ``year`` in :attr:`values` (raises VersionError when not saved)."""
        hits = np.nonzero(self.years == year)[0]
        if not hits.size:
            raise VersionError(f"year {year} is not among the saved years {self.years[0]}-{self.years[-1]}")
        return int(hits[0])


class ModelVersion:
    """A model version: ``.mdl`` + registry + calibration under one folder.

    Parameters
    ----------
    root
        Folder with ``model/jiaozuo.mdl`` and ``model/parameters.csv``;
        ``calibration/calibrated.toml`` is used when present.
    label
        Name shown in reports (default: the folder name).
    mdl, registry, calibration
        Explicit file paths overriding the layout under ``root``
        (``calibration=False`` runs on the registry's prior defaults).
    """

    def __init__(self, root: str | Path, label: str | None = None, *, mdl: Path | None = None,
                 registry: Path | None = None, calibration: Path | None | bool = None) -> None:
        self.root = Path(root)
        self.label = label or self.root.name
        self.mdl_path = Path(mdl) if mdl else self.root / MDL_FILE
        self.registry_path = Path(registry) if registry else self.root / REGISTRY_FILE
        if calibration is False:
            self.calibration_path: Path | None = None
        elif calibration:
            self.calibration_path = Path(calibration)  # type: ignore[arg-type]
        else:
            candidate = self.root / CALIBRATION_FILE
            self.calibration_path = candidate if candidate.is_file() else None
        for what, path in (("model", self.mdl_path), ("parameter registry", self.registry_path)):
            if not path.is_file():
                raise VersionError(f"{self.label}: {what} file {path} not found")
        self.registry = reg.load_registry(self.registry_path.resolve())
        self.defaults = {name: p.default for name, p in self.registry.items()}
        self.defaults.update(self._calibrated())
        self._models: dict[frozenset[str], Any] = {}

    # -- construction ---------------------------------------------------------------

    @classmethod
    def current(cls, label: str = "current") -> ModelVersion:
        """Return the installed model with the registry and the calibration in force."""
        calibration = reg.calibration_path()
        return cls(MDL_PATH.parents[1], label, mdl=MDL_PATH, registry=reg.REGISTRY_PATH,
                   calibration=calibration if calibration is not None else False)

    @classmethod
    def from_git(cls, rev: str, repo: str | Path | None = None, label: str | None = None) -> ModelVersion:
        """Return the model files at git revision ``rev`` of the repository ``repo``.

        The files are read with ``git show REV:path`` (no checkout) and written once
        under the cache folder, keyed on the commit.
        """
        repo = Path(repo) if repo else MDL_PATH.parents[1]
        sha = _git(repo, "rev-parse", "--verify", f"{rev}^{{commit}}").strip()
        folder = cache_root() / "versions" / sha
        if not (folder / REGISTRY_FILE).is_file():
            for rel in (MDL_FILE, CALIBRATION_FILE, REGISTRY_FILE):  # registry last: it marks completion
                try:
                    data = _git_bytes(repo, "show", f"{sha}:{rel}")
                except VersionError:
                    if rel == CALIBRATION_FILE:
                        continue
                    raise
                target = folder / rel
                target.parent.mkdir(parents=True, exist_ok=True)
                tmp = target.with_suffix(target.suffix + ".tmp")
                tmp.write_bytes(data)
                tmp.replace(target)
        return cls(folder, label or f"{rev} ({sha[:9]})")

    # -- parameters -----------------------------------------------------------------

    def _calibrated(self) -> dict[str, float]:
        path = self.calibration_path
        if path is None:
            return {}
        try:
            data = tomllib.loads(path.read_text(encoding="utf-8"))
        except tomllib.TOMLDecodeError as exc:
            raise VersionError(f"{self.label}: {path.name} is not valid TOML: {exc}") from None
        table = data.get("parameters")
        if not isinstance(table, dict):
            raise VersionError(f"{self.label}: {path.name} has no [parameters] table")
        out = {}
        for name, value in table.items():
            if name not in self.registry:
                raise VersionError(
                    f"{self.label}: {path.name} [parameters] {name!r} is not in {self.registry_path.name}"
                )
            out[name] = self.registry[name].check(value, f"{self.label}: {path.name} [parameters]")
        return out

    def levers(self) -> list[str]:
        """Names of the policy levers of this version's registry."""
        return [n for n, p in self.registry.items() if p.kind == "lever"]

    def uncertainties(self) -> list[str]:
        """Names of the uncertain parameters of this version's registry."""
        return [n for n, p in self.registry.items() if p.kind == "uncertainty"]

    @property
    def mdl_sha256(self) -> str:
        """SHA-256 of the ``.mdl``."""
        return hashlib.sha256(self.mdl_path.read_bytes()).hexdigest()

    # -- engines --------------------------------------------------------------------

    def vector(self, table_names: frozenset[str] = frozenset()) -> Any:
        """Return the compiled vector model (a year-table variant for ``table_names``)."""
        from greenpath.engines.vector import VectorModel

        model = self._models.get(table_names)
        if model is None:
            path = self.mdl_path if not table_names else self._table_variant(table_names)
            model = VectorModel(path, cache_root() / "vector")
            self._models[table_names] = model
        return model

    def _table_variant(self, names: frozenset[str]) -> Path:
        from greenpath.engines.vector_loader import YearTableError, cached_text_file, with_year_tables

        try:
            text = with_year_tables(self.mdl_path.read_text(encoding="utf-8"),
                                    [(n, self.registry[n].vensim_name, self.registry[n].unit) for n in names],
                                    self.mdl_path.name)
        except YearTableError as exc:
            raise VersionError(f"{self.label}: {exc}") from None
        return cached_text_file(text, cache_root() / "version_tables", f"{self.mdl_path.stem}_tables")

    def outputs(self, constants: bool = True) -> set[str]:
        """Python names of the variables a run can return (``constants=False``: computed ones only)."""
        skip = ("lookup", "control", "time") if constants else ("lookup", "control", "time", "constant")
        return {m["py_name"] for m in self.vector().variables if m["kind"] not in skip}

    def units(self) -> dict[str, str]:
        """Return the unit of every variable as written in the ``.mdl``."""
        return {m["py_name"]: m["units"] or "" for m in self.vector().variables}

    # -- running --------------------------------------------------------------------

    def run(self, settings: Sequence[Mapping[str, Setting]] | Settings, columns: Sequence[str],
            *, strict: bool = True, workers: int = 1) -> Runs:
        """Run every setting; unset parameters take this version's defaults.

        Parameters
        ----------
        settings
            One mapping per run (registry name -> number, or -> (years, values)), or a
            :class:`Settings` block.
        columns
            Variables to return; names this version lacks are left out of the result.
        strict
            Raise on a setting this version's registry lacks (else drop it and list it
            in :attr:`Runs.dropped`).
        workers
            Processes of the vector engine.

        Returns
        -------
        Runs
        """
        block = settings if isinstance(settings, Settings) else Settings.from_mappings(settings)
        n = block.n
        if n == 0:
            raise VersionError("no runs to do")
        dropped = sorted({name for name in block.names if name not in self.registry}
                         | {name for row in block.tables.values() for name in row if name not in self.registry})
        if dropped and strict:
            name = dropped[0]
            raise VersionError(f"{self.label}: a run sets {name!r}, which is not in {self.registry_path.name}"
                               f"{reg.suggest(name, self.registry)}")
        known = self.outputs()
        wanted = [c for c in columns if c in known]
        params = {name: np.full(n, self.defaults[name], dtype=float) for name in self.registry}
        for j, name in enumerate(block.names):
            if name in params:
                column = block.values[:, j]
                given = ~np.isnan(column)
                params[name][given] = column[given]
        groups: dict[frozenset[str], list[int]] = {}
        tabled_rows = {i: {k: v for k, v in row.items() if k in self.registry} for i, row in block.tables.items()}
        plain = np.ones(n, dtype=bool)
        for i, row in tabled_rows.items():
            if row:
                plain[i] = False
                groups.setdefault(frozenset(row), []).append(i)
                start = params["policy_start_year"][i] if "policy_start_year" in params else 2021.0
                for name, (xs, ys) in row.items():
                    params[name][i] = float(np.interp(start, xs, ys))
        if plain.any():
            groups[frozenset()] = list(np.nonzero(plain)[0])
        values: dict[str, np.ndarray] = {}
        years = None
        for tabled, idx in groups.items():
            model = self.vector(tabled)
            whole = len(idx) == n
            sub = {k: (v if whole else v[idx]) for k, v in params.items() if k not in tabled}
            lookups = {}
            for name in tabled:
                ys = np.vstack([np.interp(TABLE_YEARS, *_xy(tabled_rows[i][name])) for i in idx])
                lookups[name + _TABLE_SUFFIX.replace(" ", "_")] = (TABLE_YEARS, ys)
            raw = model.simulate(sub, len(idx), lookups or None, return_columns=wanted, workers=workers)
            times = np.round(np.asarray(model.times(), dtype=float)).astype(int)
            if years is None:
                years = times
                values = {c: np.empty((n, len(times))) for c in wanted}
            for c in wanted:
                if whole:
                    values[c] = raw[c]
                else:
                    values[c][idx] = raw[c]
        assert years is not None
        return Runs(values=values, years=years, params=params, dropped=dropped)


@dataclass
class Settings:
    """Many runs' settings as one block: constants in a matrix, year tables per row.

    Attributes
    ----------
    names
        The parameters with a column in :attr:`values`.
    values
        ``(n_runs, len(names))``; NaN = this run leaves the parameter at its default.
    tables
        ``row -> {name: (years, values)}`` for the runs with year tables.
    """

    names: list[str]
    values: np.ndarray
    tables: dict[int, dict[str, tuple[Any, Any]]] = field(default_factory=dict)

    @property
    def n(self) -> int:
        """Number of runs."""
        return int(self.values.shape[0])

    @classmethod
    def from_mappings(cls, settings: Sequence[Mapping[str, Setting]]) -> Settings:
        """Build a block from one mapping per run."""
        names: list[str] = []
        index: dict[str, int] = {}
        for row in settings:
            for name, value in row.items():
                if not isinstance(value, tuple) and name not in index:
                    index[name] = len(names)
                    names.append(name)
        values = np.full((len(settings), len(names)), np.nan)
        tables: dict[int, dict[str, tuple[Any, Any]]] = {}
        for i, row in enumerate(settings):
            for name, value in row.items():
                if isinstance(value, tuple):
                    tables.setdefault(i, {})[name] = value
                else:
                    values[i, index[name]] = float(value)
        return cls(names, values, tables)

    def row(self, i: int) -> dict[str, Setting]:
        """Return the settings of run ``i`` as a mapping (defaults left out)."""
        out: dict[str, Setting] = {name: float(v) for name, v in zip(self.names, self.values[i], strict=True)
                                   if not np.isnan(v)}
        out.update(self.tables.get(i, {}))
        return out

    def take(self, rows: Sequence[int] | np.ndarray) -> Settings:
        """Return the block of the runs ``rows`` (in that order)."""
        rows = [int(r) for r in rows]
        tables = {j: dict(self.tables[i]) for j, i in enumerate(rows) if i in self.tables}
        return Settings(list(self.names), self.values[rows].copy(), tables)

    def set(self, name: str, column: np.ndarray | float) -> None:
        """Give every run ``name`` = ``column`` (NaN: default), replacing any year table of it."""
        if name not in self.names:
            self.names.append(name)
            self.values = np.concatenate([self.values, np.full((self.n, 1), np.nan)], axis=1)
        self.values[:, self.names.index(name)] = column
        for row in self.tables.values():
            row.pop(name, None)


def dependency_order(mdl_path: str | Path) -> list[str]:
    """Variables of a ``.mdl`` in the order a time step evaluates them.

    Constants first, then stocks (their value at a time depends only on earlier
    times), then auxiliaries in topological order of the names their equations
    mention.  Used to trace where two versions first diverge.
    """
    variables = parse_mdl(Path(mdl_path))
    by_vensim = {" ".join(v.vensim_name.lower().split()): v for v in variables}
    alternation = "|".join(
        r"\s+".join(re.escape(w) for w in name.split())
        for name in sorted(by_vensim, key=len, reverse=True)
    )
    pattern = re.compile(r"(?<![\w])(" + alternation + r")(?![\w])", re.IGNORECASE)
    deps: dict[str, set[str]] = {}
    for v in variables:
        found = {" ".join(m.group(1).lower().split()) for m in pattern.finditer(v.equation)}
        deps[v.name] = {by_vensim[f].name for f in found if f in by_vensim} - {v.name}
    kinds = {v.name: v.kind for v in variables}
    order = [v.name for v in variables if v.kind in ("constant", "lookup")]
    order += [v.name for v in variables if v.kind == "stock"]
    done = set(order)
    pending = [v.name for v in variables if v.name not in done]
    while pending:
        progressed = []
        for name in pending:
            if all(d in done or kinds.get(d) is None for d in deps[name]):
                progressed.append(name)
        if not progressed:  # a loop through an unsupported construct: keep file order
            progressed = pending[:1]
        for name in progressed:
            order.append(name)
            done.add(name)
        pending = [p for p in pending if p not in done]
    return order


def _git_bytes(repo: Path, *args: str) -> bytes:
    proc = subprocess.run(["git", "-C", str(repo), *args], capture_output=True, check=False)
    if proc.returncode != 0:
        message = proc.stderr.decode("utf-8", "replace").strip().splitlines()
        raise VersionError(f"git {' '.join(args)}: {message[0] if message else 'failed'}")
    return proc.stdout


def _git(repo: Path, *args: str) -> str:
    return _git_bytes(repo, *args).decode("utf-8")


def _xy(table: Sequence[Any]) -> tuple[np.ndarray, np.ndarray]:
    """Return a year table ``(years, values)`` as two arrays."""
    years, values = table
    return np.asarray(years), np.asarray(values)
