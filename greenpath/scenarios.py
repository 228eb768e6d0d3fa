"""Scenario files: sparse, inheriting, strictly validated lever settings.

A scenario is a TOML file in ``scenarios/`` that names only what differs from its
parent::

    [scenario]
    name = "plan_2021"
    extends = "baseline"          # optional parent scenario
    title_en = "Seed plan package (Dec 2021)"
    title_zh = "2021年实施方案政策组合"
    description = "..."

    [levers]                      # registry parameters of kind "lever"
    industrial_saving_action_rate = 0.07
    distributed_pv_build_rate = { 2021 = 60, 2025 = 150 }   # year -> value table

    [uncertainties]               # registry parameters of kind "uncertainty"
    gdp_growth_2023_to_2030 = 0.045

Every error names the file, the key, the value and what is allowed; nothing falls
back to a default silently.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from pathlib import Path

from greenpath.model import registry as reg

SCENARIO_DIR = Path(__file__).resolve().parents[1] / "scenarios"
TOP_KEYS = {"scenario", "levers", "uncertainties"}
META_KEYS = {"name", "extends", "title_en", "title_zh", "description"}
YEAR_MIN, YEAR_MAX = 2005, 2035
MAX_FILE_BYTES = 200_000


class ScenarioError(ValueError):
    """A scenario file that cannot be used, with the reason."""


@dataclass
class Scenario:
    """A resolved scenario: its own metadata plus the merged settings of its chain."""

    name: str
    path: Path | None
    title_en: str = ""
    title_zh: str = ""
    description: str = ""
    params: dict[str, float] = field(default_factory=dict)
    tables: dict[str, tuple[list[float], list[float]]] = field(default_factory=dict)
    chain: list[str] = field(default_factory=list)

    def run_kwargs(self) -> dict:
        """Keyword arguments for :meth:`JiaozuoModel.run`."""
        return {"params": dict(self.params), "time_varying": dict(self.tables),
                "scenario": self.name}


def available(directory: Path = SCENARIO_DIR) -> list[str]:
    """Names of the scenarios shipped in ``directory``."""
    return sorted(p.stem for p in Path(directory).glob("*.toml"))


def find(name_or_path: str | Path, directory: Path = SCENARIO_DIR) -> Path:
    """Path of a scenario given as a file path or as a name in ``directory``."""
    p = Path(name_or_path)
    if p.suffix == ".toml" and p.is_file():
        return p
    candidate = Path(directory) / f"{name_or_path}.toml"
    if candidate.is_file():
        return candidate
    names = available(directory)
    raise ScenarioError(
        f"scenario {str(name_or_path)!r} not found (no such file, and not one of "
        f"{', '.join(names) or 'no scenarios'} in {Path(directory).name}/)"
        f"{reg.suggest(str(name_or_path), names)}"
    )


def parse_text(text: str, source: str) -> dict:
    """Parse TOML text, turning syntax errors into a :class:`ScenarioError`."""
    if len(text.encode("utf-8")) > MAX_FILE_BYTES:
        raise ScenarioError(f"{source}: file larger than {MAX_FILE_BYTES} bytes")
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ScenarioError(f"{source}: not valid TOML: {exc}") from None


def _check_section(data: dict, section: str, kind: str, source: str):
    params: dict[str, float] = {}
    tables: dict[str, tuple[list[float], list[float]]] = {}
    body = data.get(section, {})
    if not isinstance(body, dict):
        raise ScenarioError(f"{source}: [{section}] must be a table of name = value")
    registry = reg.load_registry()
    allowed = [n for n, p in registry.items() if p.kind == kind]
    for key, value in body.items():
        where = f"{source}: [{section}] {key}"
        if key not in registry or registry[key].kind != kind:
            other = registry[key].kind if key in registry else None
            hint = (f" ({key!r} is a {other}, put it under "
                    f"[{'levers' if other == 'lever' else 'uncertainties'}])"
                    if other in ("lever", "uncertainty") else reg.suggest(key, allowed))
            raise ScenarioError(f"{where}: unknown {kind} {key!r}{hint}")
        p = registry[key]
        if isinstance(value, dict):
            if not value:
                raise ScenarioError(f"{where}: empty year table; give year = value pairs")
            years, values = [], []
            for y, v in value.items():
                try:
                    year = int(y)
                except ValueError:
                    raise ScenarioError(
                        f"{where}: table key {y!r} is not a year; allowed {YEAR_MIN}-{YEAR_MAX}"
                    ) from None
                if not YEAR_MIN <= year <= YEAR_MAX:
                    raise ScenarioError(
                        f"{where}: year {year} outside {YEAR_MIN}-{YEAR_MAX}"
                    )
                years.append(float(year))
                values.append(_value(p, v, f"{where}[{year}]"))
            tables[key] = (years, values)
        else:
            params[key] = _value(p, value, where)
    return params, tables


def _value(p: reg.Parameter, value, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ScenarioError(
            f"{where} = {value!r}: must be a number from {p.min:g} to {p.max:g} {p.unit}"
        )
    try:
        return p.check(value)
    except reg.RegistryError:
        raise ScenarioError(
            f"{where} = {value!r}: outside the allowed range {p.min:g} to {p.max:g} {p.unit}"
        ) from None


def validate(data: dict, source: str) -> tuple[dict, dict, dict]:
    """Check one parsed scenario document; return (meta, params, tables)."""
    if not isinstance(data, dict):
        raise ScenarioError(f"{source}: not a TOML table")
    for key in data:
        if key not in TOP_KEYS:
            raise ScenarioError(
                f"{source}: unknown section [{key}]; allowed {sorted(TOP_KEYS)}"
                f"{reg.suggest(key, TOP_KEYS)}"
            )
    meta = data.get("scenario", {})
    if not isinstance(meta, dict):
        raise ScenarioError(f"{source}: [scenario] must be a table")
    for key, value in meta.items():
        if key not in META_KEYS:
            raise ScenarioError(
                f"{source}: [scenario] unknown key {key!r}; allowed {sorted(META_KEYS)}"
                f"{reg.suggest(key, META_KEYS)}"
            )
        if not isinstance(value, str):
            raise ScenarioError(f"{source}: [scenario] {key} = {value!r} must be a string")
    lev_p, lev_t = _check_section(data, "levers", "lever", source)
    unc_p, unc_t = _check_section(data, "uncertainties", "uncertainty", source)
    return meta, {**lev_p, **unc_p}, {**lev_t, **unc_t}


def load(name_or_path: str | Path, directory: Path = SCENARIO_DIR) -> Scenario:
    """Load a scenario and resolve its ``extends`` chain (parents first)."""
    path = find(name_or_path, directory)
    chain: list[Path] = []
    docs: list[tuple[dict, dict, dict]] = []
    current: Path | None = path
    while current is not None:
        if current.resolve() in [c.resolve() for c in chain]:
            names = " -> ".join(c.stem for c in [*chain, current])
            raise ScenarioError(f"{path.name}: cycle of extends: {names}")
        chain.append(current)
        text = current.read_text(encoding="utf-8")
        meta, params, tables = validate(parse_text(text, current.name), current.name)
        docs.append((meta, params, tables))
        parent = meta.get("extends")
        current = find(parent, current.parent) if parent else None
    return _merge(path, chain, docs)


def from_text(text: str, source: str = "uploaded scenario",
              directory: Path = SCENARIO_DIR) -> Scenario:
    """Validate a scenario given as text (an upload); parents come from ``directory``."""
    meta, params, tables = validate(parse_text(text, source), source)
    parent = meta.get("extends")
    base = load(parent, directory) if parent else Scenario(name="", path=None)
    merged_p = {**base.params, **params}
    merged_t = {k: v for k, v in base.tables.items() if k not in params}
    merged_t.update(tables)
    for k in tables:
        merged_p.pop(k, None)
    return Scenario(
        name=meta.get("name") or source, path=None, title_en=meta.get("title_en", ""),
        title_zh=meta.get("title_zh", ""), description=meta.get("description", ""),
        params=merged_p, tables=merged_t, chain=[*base.chain, meta.get("name") or source],
    )


def _merge(path: Path, chain: list[Path], docs) -> Scenario:
    params: dict[str, float] = {}
    tables: dict[str, tuple[list[float], list[float]]] = {}
    for (_, p, t) in reversed(docs):  # root first, child overrides
        for k, v in p.items():
            params[k] = v
            tables.pop(k, None)
        for k, v in t.items():
            tables[k] = v
            params.pop(k, None)
    meta = docs[0][0]
    return Scenario(
        name=meta.get("name", path.stem), path=path, title_en=meta.get("title_en", ""),
        title_zh=meta.get("title_zh", ""), description=meta.get("description", ""),
        params=params, tables=tables, chain=[c.stem for c in reversed(chain)],
    )
