"""The calibration page's data: the fit report, its charts and statistics, the history.

Reads what the calibration step wrote (``calibration/report/README.md`` and its PNGs,
``calibration/calibrated.toml`` with ``[meta]``, ``[parameters]`` and ``[fit]``); any
piece still missing is reported as missing, never replaced by something else.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from greenpath import tomlfile
from greenpath.model import registry as reg

REPORT_DIR = reg.CALIBRATED_PATH.parent / "report"
_IMAGE = re.compile(r"!\[([^\]]*)\]\(([^)\s]+)(?:\s+\"[^\"]*\")?\)")

#: Model variable -> (history variable, factor to the model's unit), for the page's
#: "recorded vs simulated" chart.
COMPARABLE = {
    "co2_emissions": ("co2_emissions_mt", 1.0),
    "gdp": ("gdp_real_2020prices_100m_yuan", 1.0),
    "electricity_consumption": ("electricity_consumption_100m_kwh", 1.0),
    "population": ("population_10k", 1.0),
    "renewable_capacity": ("renewable_capacity_10k_kw_implied_base", 10.0),
}


@dataclass
class Calibration:
    """What the calibration step left on disk (fields are empty when absent).

    ``blocks`` is the report in reading order: ``("md", text, None)`` and
    ``("img", caption, path)``, each picture where the report places it; ``images``
    lists every picture (also those the report does not reference).
    """

    readme: str | None = None
    images: list[tuple[str, Path]] = field(default_factory=list)
    blocks: list[tuple[str, str, Path | None]] = field(default_factory=list)
    path: Path | None = None
    meta: dict = field(default_factory=dict)
    parameters: pd.DataFrame | None = None
    fit: pd.DataFrame | None = None
    error: str | None = None


def _table(value: object) -> pd.DataFrame | None:
    """Turn a TOML table into a DataFrame: one row per sub-table, or name/value rows."""
    if not isinstance(value, dict) or not value:
        return None
    if all(isinstance(v, dict) for v in value.values()):
        frame = pd.DataFrame.from_dict(value, orient="index")
        frame.index.name = "variable"
        return frame.reset_index()
    return pd.DataFrame({"name": list(value), "value": [str(v) for v in value.values()]})


def load(report_dir: Path = REPORT_DIR, calibrated: Path | None = None) -> Calibration:
    """Read the calibration report and the calibrated parameter file.

    Parameters
    ----------
    report_dir
        Folder of ``README.md`` and the fit charts (PNG).
    calibrated
        The calibrated parameter file (default: the one in force,
        :func:`greenpath.model.registry.calibration_path`).
    """
    out = Calibration()
    readme = report_dir / "README.md"
    if readme.is_file():
        text = readme.read_text(encoding="utf-8")
        position = 0
        for match in _IMAGE.finditer(text):
            caption, target = match.group(1), match.group(2)
            out.blocks.append(("md", text[position:match.start()], None))
            position = match.end()
            p = (report_dir / target).resolve()
            if p.is_file() and p.suffix.lower() == ".png" and report_dir.resolve() in p.parents:
                out.images.append((caption, p))
                out.blocks.append(("img", caption, p))
        out.blocks.append(("md", text[position:], None))
        out.blocks = [b for b in out.blocks if b[0] == "img" or b[1].strip()]
        out.readme = _IMAGE.sub("", text)
    listed = {p for _, p in out.images}
    for p in sorted(report_dir.glob("*.png")) if report_dir.is_dir() else []:
        if p.resolve() not in listed:
            out.images.append((p.stem.replace("_", " "), p.resolve()))
            out.blocks.append(("img", p.stem.replace("_", " "), p.resolve()))
    path = calibrated or reg.calibration_path()
    if path is not None and Path(path).is_file():
        out.path = Path(path)
        try:
            data = tomlfile.read(out.path, what="a calibration file")
        except ValueError as exc:
            out.error = str(exc)
            return out
        out.meta = data.get("meta", {}) if isinstance(data.get("meta"), dict) else {}
        params = data.get("parameters")
        if isinstance(params, dict) and params:
            registry = reg.load_registry()
            prior = _mapping(data.get("prior"))
            sd = _mapping(_mapping(data.get("uncertainty")).get("sd"))
            rows = []
            for name, value in params.items():
                par = registry.get(name)
                rows.append({"name": name, "value": value, "sd": sd.get(name),
                             "prior": prior.get(name, par.default if par else None),
                             "min": par.min if par else None, "max": par.max if par else None,
                             "unit": par.unit if par else "", "source": par.source if par else ""})
            out.parameters = pd.DataFrame(rows)
        out.fit = _table(data.get("fit"))
    return out


def recorded_vs_simulated(frame: pd.DataFrame, variable: str) -> pd.DataFrame | None:
    """Long table (year, value, series) of the recorded and simulated ``variable``."""
    if variable not in COMPARABLE or variable not in frame:
        return None
    from greenpath.calibration.history import load_history, series

    name, factor = COMPARABLE[variable]
    rec = series(load_history(), name) * factor
    sim = frame[variable]
    return pd.concat([
        pd.DataFrame({"year": rec.index.astype(int), "value": rec.to_numpy(float),
                      "series": "recorded"}),
        pd.DataFrame({"year": sim.index.astype(int), "value": sim.to_numpy(float),
                      "series": "simulated"}),
    ], ignore_index=True)


def _mapping(value: object) -> dict:
    """``value`` when it is a table (a dict), else an empty one."""
    return value if isinstance(value, dict) else {}
