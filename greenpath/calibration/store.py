"""The calibrated-parameter file: what a calibration writes (``calibration/calibrated.toml``) and reads back.

:class:`CalibrationResult` is everything ``greenpath calibrate`` writes;
:func:`write_calibration` writes it atomically (and the posterior sample next to it),
:func:`load_calibration` reads and checks a file, :func:`stats_from_table` turns its
``[fit]`` table back into a statistics frame.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from greenpath.calibration.errors import CalibrationError
from greenpath.calibration.objective import FitOutcome
from greenpath.calibration.series import FitSeries
from greenpath.calibration.space import ParameterSpace
from greenpath.calibration.uncertainty import Uncertainty
from greenpath.model import registry as reg

__all__ = [
    "CALIBRATION_FORMAT_VERSION",
    "CalibrationResult",
    "RefitResult",
    "calibration_document",
    "load_calibration",
    "sha256_file",
    "stats_from_table",
    "write_calibration",
]

#: Version of the calibration-file layout written by :func:`write_calibration` (the
#: top-level ``format_version`` key). 1 = files written before the key existed;
#: 2 adds the data-only uncertainty (``[uncertainty.data_only]``) and ``meta.final_time``.
#: ``greenpath.model.registry`` refuses versions it does not know.
CALIBRATION_FORMAT_VERSION = reg.CALIBRATION_FORMAT_VERSIONS[-1]


def sha256_file(path: Path) -> str:
    """Hex SHA-256 of a file's bytes."""
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


@dataclass
class RefitResult:
    """A secondary fit: out-of-sample (data up to a cut-off) or a weighting sensitivity."""

    name: str
    description: str
    values: dict[str, float]
    cost: float
    n_points: int
    statistics: pd.DataFrame


@dataclass
class CalibrationResult:
    """Everything ``greenpath calibrate`` writes to the calibration file."""

    space: ParameterSpace
    values: dict[str, float]
    outcome: FitOutcome
    statistics: pd.DataFrame
    uncertainty: Uncertainty
    meta: dict[str, Any]
    out_of_sample: RefitResult | None = None
    sensitivity: RefitResult | None = None
    series: list[FitSeries] = field(default_factory=list)
    posterior: Any = None  # calibration/posterior.py PosteriorResult
    backtest: Any = None  # calibration/backtest.py BacktestResult

_STAT_FIELDS = ("n", "first_year", "last_year", "mape_pct", "lewis_grade", "r_squared", "rmse", "mae",
                "u_m", "u_s", "u_c", "factor")


def _stats_table(stats: pd.DataFrame) -> dict[str, dict[str, Any]]:
    table: dict[str, dict[str, Any]] = {}
    for key, row in stats.iterrows():
        entry: dict[str, Any] = {"role": str(row["role"])}
        for f in _STAT_FIELDS:
            v = row[f]
            if f in ("n", "first_year", "last_year"):
                entry[f] = int(v)
            elif isinstance(v, str):
                entry[f] = v
            else:
                fv = float(v)
                if math.isfinite(fv):  # undefined statistics (e.g. R² of one point) are left out
                    entry[f] = fv
        table[str(key)] = entry
    return table


def stats_from_table(table: Mapping[str, Mapping[str, Any]]) -> pd.DataFrame:
    """Inverse of the ``[fit]`` table: a frame like ``scoring.fit_statistics`` (missing = NaN).

    See :func:`greenpath.calibration.scoring.fit_statistics`.
    """
    rows = []
    for key, entry in table.items():
        row = {"key": key, "role": entry.get("role", "")}
        for f in _STAT_FIELDS:
            row[f] = entry.get(f, "" if f == "lewis_grade" else math.nan)
        rows.append(row)
    return pd.DataFrame(rows).set_index("key")


def _refit_table(r: RefitResult) -> dict[str, Any]:
    return {"description": r.description, "cost": r.cost, "n_points": r.n_points,
            "parameters": {k: float(v) for k, v in r.values.items()}, "fit": _stats_table(r.statistics)}


def calibration_document(result: CalibrationResult) -> dict[str, Any]:
    """Return the TOML document (a dict) for a calibration result."""
    space, unc = result.space, result.uncertainty
    doc: dict[str, Any] = {"format_version": CALIBRATION_FORMAT_VERSION, "meta": dict(result.meta)}
    doc["parameters"] = {k: float(v) for k, v in result.values.items()}
    doc["prior"] = {p.name: p.prior for p in space.parameters}
    names = list(space.names)
    doc["uncertainty"] = {
        "note": "sd from s2 (J^T J)^-1 of the weighted residuals (data and prior rows); parameters at a bound "
        "have none. [uncertainty.data_only]: the data rows alone, over all fitted parameters",
        "s2": unc.s2, "dof": unc.dof,
        "sd": {n: float(v) for n, v in zip(names, unc.sd, strict=True) if math.isfinite(v)},
        "sd_over_prior_sd": {n: float(v) for n, v in zip(names, unc.sd_ratio, strict=True) if math.isfinite(v)},
        "at_bound": {n: int(b) for n, b in zip(names, unc.at_bound, strict=True) if b},
        "data_only": {
            "sd_over_range": {n: float(v) for n, v in zip(names, unc.data_sd_range, strict=True)
                              if math.isfinite(v)},
            "identification": dict(zip(names, unc.identification(names), strict=True)),
            "pairs": [{"a": a, "b": b, "r": r} for a, b, r in unc.pairs(names, data_only=True)],
            "condition": unc.data_condition,
        },
    }
    doc["fit"] = _stats_table(result.statistics)
    if result.out_of_sample is not None:
        doc["out_of_sample"] = _refit_table(result.out_of_sample)
        doc["out_of_sample"]["cutoff"] = result.meta["cutoff"]
    if result.sensitivity is not None:
        doc["sensitivity"] = {result.sensitivity.name: _refit_table(result.sensitivity)}
    if getattr(result, "posterior", None) is not None:
        doc["posterior"] = {"file": "posterior.csv", **result.posterior.diagnostics()}
    if getattr(result, "backtest", None) is not None:
        doc["backtest"] = result.backtest.document()
    return doc


HEADER = """\
# Calibrated parameter set of the Jiaozuo model, written by `greenpath calibrate`.
# [parameters] replaces the registry defaults of these uncertainties (model/parameters.csv)
# whenever this file exists; GREENPATH_CALIBRATION=none runs on the registry priors.
# format_version is the layout of this file (greenpath refuses versions it does not know);
# [meta] says what produced it, [fit] holds the in-sample statistics per series (the
# regression test reruns the model and compares), [out_of_sample] the refit up to the
# cut-off year, [sensitivity] the refit with another CO2 weighting. Regenerate on purpose:
#   greenpath calibrate --force --report calibration/report
"""


def write_calibration(result: CalibrationResult, path: Path, force: bool = False) -> Path:
    """Write the calibration file atomically; refuse to replace one without ``force``.

    Raises
    ------
    FileExistsError
        If ``path`` exists and ``force`` is false.
    """
    import tomli_w

    path = Path(path)
    if path.exists() and not force:
        raise FileExistsError(f"{path} exists; pass --force to replace the calibration")
    reg.validate(result.values, "calibrated parameters")  # never write a file the model would refuse
    doc = calibration_document(result)
    if getattr(result, "posterior", None) is not None:
        from greenpath.calibration import posterior as P

        hashes = P.source_hashes(None)
        hashes["history_sha256"] = result.meta["data_sha256"]
        doc["posterior"]["file"] = P.POSTERIOR_FILE
        doc["posterior"]["sha256"] = P.write_posterior(result.posterior, path.with_name(P.POSTERIOR_FILE), hashes)
    text = HEADER + "\n" + tomli_w.dumps(doc)
    from greenpath.files import atomic_write

    # A temporary name, then a rename: a full or read-only disk leaves neither a
    # truncated file nor a stray temporary behind.
    return atomic_write(path, lambda tmp: tmp.write_text(text, encoding="utf-8"), overwrite=True)


def load_calibration(path: Path) -> dict[str, Any]:
    """Read and check a calibration file written by :func:`write_calibration`.

    Raises
    ------
    CalibrationError
        If the file is missing, not TOML, has a ``format_version`` the registry does not
        know (see :data:`CALIBRATION_FORMAT_VERSION`), lacks the ``[meta]``,
        ``[parameters]`` or ``[fit]`` tables, or a parameter is not a registry
        uncertainty within range.
    """
    path = Path(path)
    if not path.is_file():
        raise CalibrationError(f"calibration file {path} not found; run `greenpath calibrate` first")
    from greenpath import tomlfile

    doc = tomlfile.read(path, CalibrationError, source=str(path), what="a calibration file")
    try:
        reg.calibrated(path)  # the registry's own checks: format version, names, kinds, ranges
    except reg.RegistryError as exc:
        raise CalibrationError(str(exc)) from None
    for table in ("meta", "parameters", "fit"):
        if not isinstance(doc.get(table), dict):
            raise CalibrationError(f"{path}: missing [{table}] table; allowed: a file written by greenpath calibrate")
    return doc
