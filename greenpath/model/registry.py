"""The parameter registry: one table for every constant of the model.

``model/parameters.csv`` lists every constant of ``model/jiaozuo.mdl`` with its unit,
default, allowed range, description and source (or the word "assumption").  The model
defaults, scenario validation, the batch samplers and the app's sliders all read it; a
test checks that it agrees with the constants written in the ``.mdl``.

Kinds
-----
lever
    A policy setting the user moves (EMA Workbench's "lever").
uncertainty
    A quantity we do not know well (fitted, or an assumption with a range); sampled
    in Monte Carlo runs.
constant
    A recorded value or a convention (e.g. an emission factor derived from NDRC data).
"""

from __future__ import annotations

import csv
import difflib
import hashlib
import io
import math
import os
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from greenpath import shipped_dir

REGISTRY_PATH = shipped_dir("model") / "parameters.csv"
# The calibrated parameter set written by `greenpath calibrate`; when present its values
# replace the registry defaults of the fitted uncertainties.  GREENPATH_CALIBRATION
# points elsewhere, or "none" to run on the registry's prior defaults.
CALIBRATED_PATH = shipped_dir("calibration") / "calibrated.toml"
KINDS = ("lever", "uncertainty", "constant")
# Layouts of the calibration file this reader knows (its ``format_version`` key); 1 is a
# file written before the key existed.  ``greenpath calibrate`` writes the last one.
CALIBRATION_FORMAT_VERSIONS = (1, 2)
COLUMNS = (
    "name", "vensim_name", "kind", "group", "unit", "default", "min", "max",
    "description", "source", "clause", "label_en", "label_zh",
)


class RegistryError(ValueError):
    """A malformed registry file or an unknown / out-of-range parameter."""


@dataclass(frozen=True)
class Parameter:
    """One constant of the model, as listed in the registry."""

    name: str
    vensim_name: str
    kind: str
    group: str
    unit: str
    default: float
    min: float
    max: float
    description: str
    source: str
    clause: str = ""
    label_en: str = ""
    label_zh: str = ""

    @property
    def is_assumption(self) -> bool:
        """True when the value is an assumption rather than read from a source."""
        return self.source.lower().startswith("assumption")

    def check(self, value: float, where: str = "") -> float:
        """Return ``value`` as float, or raise naming the parameter and its range."""
        prefix = f"{where}: " if where else ""
        try:
            number = float(value)
        except (TypeError, ValueError):
            raise RegistryError(
                f"{prefix}{self.name} = {value!r} is not a number; allowed {self.min} to "
                f"{self.max} {self.unit}"
            ) from None
        if not math.isfinite(number) or not self.min <= number <= self.max:
            raise RegistryError(
                f"{prefix}{self.name} = {value!r} is outside the allowed range {self.min} "
                f"to {self.max} {self.unit}"
            )
        return number


#: Encodings the registry CSV is read in, in this order: UTF-8 (with or without the
#: byte-order mark of Excel's "CSV UTF-8"), then GB18030 (Excel's plain "CSV" on a
#: Chinese Windows).
ENCODINGS = ("utf-8-sig", "gb18030")


def _read_text(path: Path) -> str:
    """Return the text of the registry CSV, or a :class:`RegistryError` naming line and byte."""
    data = path.read_bytes()
    try:
        return data.decode(ENCODINGS[0])
    except UnicodeDecodeError as exc:
        where = exc.start
    try:
        return data.decode(ENCODINGS[1])
    except UnicodeDecodeError:
        pass
    line = data[:where].count(b"\n") + 1
    raise RegistryError(
        f"{path.name} line {line}: byte {where} is not text in UTF-8 or GB18030; "
        "save the file as CSV UTF-8"
    )


def _parse(path: Path) -> dict[str, Parameter]:
    try:
        return _parse_rows(path)
    except csv.Error as exc:  # a field over the csv module's size limit, a stray quote
        raise RegistryError(f"{path.name}: not readable as CSV ({exc})") from None


def _parse_rows(path: Path) -> dict[str, Parameter]:
    with io.StringIO(_read_text(path), newline="") as fh:
        reader = csv.DictReader(fh)
        missing = [c for c in COLUMNS if c not in (reader.fieldnames or [])]
        if missing:
            raise RegistryError(f"{path.name}: missing columns {missing}")
        params: dict[str, Parameter] = {}
        for line, row in enumerate(reader, start=2):
            where = f"{path.name} line {line}"
            # Too few fields, or more than the header's (empty extra ones are tolerated).
            if any(v is None for v in row.values()) or any(str(x).strip() for x in row.get(None) or []):
                fields = reader.fieldnames or []
                raise RegistryError(f"{where}: allowed {len(fields)} comma-separated fields "
                                    f"({','.join(fields)}), got another number")
            name = row["name"]
            if name in params:
                raise RegistryError(f"{where}: duplicate parameter {name!r}")
            if row["kind"] not in KINDS:
                raise RegistryError(
                    f"{where}: kind {row['kind']!r} of {name!r} is not one of {KINDS}"
                )
            if not row["source"].strip():
                raise RegistryError(f"{where}: {name!r} has no source (write 'assumption')")
            try:
                lo, default, hi = float(row["min"]), float(row["default"]), float(row["max"])
            except ValueError:
                raise RegistryError(f"{where}: non-numeric default/min/max for {name!r}") from None
            if not lo <= default <= hi:
                raise RegistryError(
                    f"{where}: default {default} of {name!r} is outside [{lo}, {hi}]"
                )
            params[name] = Parameter(
                name=name, vensim_name=row["vensim_name"], kind=row["kind"],
                group=row["group"], unit=row["unit"], default=default, min=lo, max=hi,
                description=row["description"], source=row["source"], clause=row["clause"],
                label_en=row["label_en"], label_zh=row["label_zh"],
            )
    return params


@lru_cache(maxsize=4)
def load_registry(path: Path = REGISTRY_PATH) -> dict[str, Parameter]:
    """Read the registry (cached; the returned mapping must not be mutated)."""
    return _parse(Path(path))


def defaults(path: Path = REGISTRY_PATH) -> dict[str, float]:
    """Default value of every registry parameter."""
    return {name: p.default for name, p in load_registry(path).items()}


def levers(path: Path = REGISTRY_PATH) -> dict[str, Parameter]:
    """Return the policy levers, in registry order."""
    return {n: p for n, p in load_registry(path).items() if p.kind == "lever"}


def uncertainties(path: Path = REGISTRY_PATH) -> dict[str, Parameter]:
    """Return the uncertain parameters, in registry order."""
    return {n: p for n, p in load_registry(path).items() if p.kind == "uncertainty"}


def suggest(name: str, candidates) -> str:
    """Return a ' (did you mean ...?)' hint for a misspelt name, or ''."""
    close = difflib.get_close_matches(name, list(candidates), n=1, cutoff=0.6)
    return f" (did you mean {close[0]!r}?)" if close else ""


def lookup(name: str, where: str = "") -> Parameter:
    """Return the registry entry ``name``; an unknown name raises with the nearest valid one."""
    registry = load_registry()
    if name not in registry:
        prefix = f"{where}: " if where else ""
        raise RegistryError(
            f"{prefix}unknown parameter {name!r}{suggest(name, registry)}; "
            f"see `greenpath vars --kind lever` for the allowed names"
        )
    return registry[name]


def validate(params: dict[str, float], where: str = "") -> dict[str, float]:
    """Check names and ranges of a parameter mapping; return it as floats."""
    return {name: lookup(name, where).check(value, where) for name, value in params.items()}


def calibration_path() -> Path | None:
    """Return the calibrated parameter file in force, or None."""
    env = os.environ.get("GREENPATH_CALIBRATION")
    if env is not None:
        return None if env.lower() in ("", "none") else Path(env)
    return CALIBRATED_PATH if CALIBRATED_PATH.is_file() else None


_CALIBRATED_CACHE: dict[Path, tuple[tuple[int, int], dict[str, float]]] = {}


def calibrated(path: Path | None = None) -> dict[str, float]:
    """Fitted values from a calibration file's ``[parameters]`` table (validated).

    The file is parsed again only when its size or modification time changes (the
    app and the ensemble ask for the defaults on every lever change).
    """
    path = path or calibration_path()
    if path is None:
        return {}
    path = Path(path)
    if not path.is_file():
        raise RegistryError(f"calibration file {path} not found")
    stat = path.stat()
    stamp = (stat.st_mtime_ns, stat.st_size)
    cached = _CALIBRATED_CACHE.get(path)
    if cached is not None and cached[0] == stamp:
        return dict(cached[1])
    values = _read_calibrated(path)
    _CALIBRATED_CACHE[path] = (stamp, values)
    return dict(values)


def _read_calibrated(path: Path) -> dict[str, float]:
    from greenpath import tomlfile

    data = tomlfile.read(path, RegistryError, what="a calibration file")
    version = data.get("format_version", 1)
    if type(version) is not int or version not in CALIBRATION_FORMAT_VERSIONS:
        allowed = " or ".join(["1 (no key)", *(str(v) for v in CALIBRATION_FORMAT_VERSIONS[1:])])
        raise RegistryError(
            f"{path.name}: format_version {version!r} is not supported; allowed: {allowed}, "
            "written by `greenpath calibrate` (a newer greenpath wrote this file: update, or recalibrate)"
        )
    table = data.get("parameters")
    if not isinstance(table, dict):
        raise RegistryError(f"{path.name}: missing [parameters] table")
    out = {}
    for name, value in table.items():
        p = lookup(name, f"{path.name} [parameters]")
        if p.kind != "uncertainty":
            raise RegistryError(
                f"{path.name} [parameters] {name}: only uncertainties can be calibrated, "
                f"{name!r} is a {p.kind}"
            )
        out[name] = p.check(value, f"{path.name} [parameters]")
    return out


def calibration_id(path: Path | None = None) -> str:
    """Short hash of the calibration file in force ('' when none)."""
    path = path or calibration_path()
    if path is None or not Path(path).is_file():
        return ""
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()[:12]


def effective_defaults() -> dict[str, float]:
    """Registry defaults overlaid with the calibrated values in force."""
    values = defaults()
    values.update(calibrated())
    return values
