"""Scenario files: sparse, inheriting, strictly validated lever settings.

A scenario is a TOML file in ``scenarios/`` that names only what differs from its
parent (LEAP's scenario tree, Calliope's overrides)::

    [scenario]
    name = "plan_2021"
    extends = "baseline"          # optional parent scenario (a name in the same folder)
    title_en = "Seed plan package (Dec 2021)"
    title_zh = "2021年实施方案政策组合"
    description = "..."
    policy_start_year = 2021      # optional convenience, see below

    [levers]                      # registry parameters of kind "lever"
    industrial_saving_action_rate = 0.07
    distributed_pv_build_rate = { 2021 = 60, 2025 = 150 }   # year -> value table
    wind_build_rate = { from = 2022, value = 300 }          # step change from 2022 on

    [uncertainties]               # registry parameters of kind "uncertainty"
    gdp_growth_2023_to_2030 = 0.045

Rules (each broken rule is a :class:`ScenarioError` naming the file, the key, the value
and what is allowed, with the nearest valid name for a misspelling; nothing falls back
to a default silently):

* sections are only ``[scenario]``, ``[levers]`` and ``[uncertainties]``;
* ``[scenario]`` keys are ``name, extends, title_en, title_zh, description,
  policy_start_year``; ``name`` is usable as a file stem (letters, digits, ``_ - .``);
* a lever or uncertainty must exist in ``model/parameters.csv`` with that kind
  (constants cannot be set) and its value must lie in the registry's ``[min, max]``;
* a year table (``{ 2021 = 60, 2025 = 150 }``) has years 2005-2035 and values in range;
  the model interpolates linearly between the given years and holds the first / last
  value outside them.  Levers measured in years (start years, durations) take a single
  number, never a table;
* a step change (``{ from = 2022, value = 300 }``) keeps the parent's setting (or the
  model default) for every year before ``from`` and the new value from ``from`` on;
  ``from`` is a whole year 2006-2035, the value in range.  The model reads year tables
  at whole calendar years (``data year``), so the step becomes the table
  ``{ 2021 = <parent's 2021 value>, 2022 = 300 }`` (plus the parent's earlier points
  when the parent sets a table) and nothing leaks into 2021;
* ``extends`` names an existing scenario with the rule of ``name`` (a name, never a
  path: no ``/``, ``..`` or absolute path), looked up in the folder of the file, then
  in the shipped ``scenarios/``; the chain of parents has no cycle and at most
  :data:`MAX_EXTENDS_DEPTH` parents;
* a file is UTF-8 text of at most :data:`MAX_FILE_BYTES` bytes, nested at most
  :data:`MAX_NESTING` brackets deep.

Warnings (:class:`ScenarioWarning`, naming the file; the scenario still loads): an empty
file (it runs on the model defaults) and a year table whose last year is before the
policy start year (only its last value acts).

``policy_start_year`` is a lever of the registry (group ``timing``: the first year the
levers act, default 2021).  It may be written under ``[levers]`` (the canonical place,
used by :func:`to_toml`) or, as a convenience, as ``[scenario] policy_start_year = 2024``;
writing it in both places in one file is an error.

Public API (used by the CLI, the batch runner, the wedges and the app; stable)
-------------------------------------------------------------------------------
``available(directory=SCENARIO_DIR) -> list[str]``
    Names of the scenario files in a folder.
``find(name_or_path, directory=SCENARIO_DIR) -> Path``
    A scenario's file.
``load(name_or_path, directory=SCENARIO_DIR) -> Scenario``
    Read, validate and resolve the ``extends`` chain.
``from_text(text, source="uploaded scenario", directory=SCENARIO_DIR) -> Scenario``
    The same for text (an upload); parents are looked up in ``directory``.
``validate(data, source, allow_steps=False) -> (meta, params, tables)``
    Check one parsed document (no inheritance); a step change needs a parent, so
    without ``allow_steps`` it is an error naming the equivalent year table.
``to_toml(scenario, parent=None, directory=SCENARIO_DIR) -> str``
    TOML text holding only what differs from the parent (the app's "save").
``save(scenario, path, overwrite=False, parent=None, directory=SCENARIO_DIR) -> Path``
    Write :func:`to_toml` text; never replaces an existing file unless asked.
``Scenario.run_kwargs()``
    Keyword arguments for :meth:`greenpath.engines.pysd_engine.JiaozuoModel.run`.
``Scenario.derive(name, params=None, tables=None, **meta) -> Scenario``
    A child scenario with some settings changed (validated).
``Scenario.settings() -> dict``
    Every setting of the resolved chain: ``name -> float | (years, values)``.
"""

from __future__ import annotations

import re
import warnings
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import cast

from greenpath import shipped_dir, tomlfile
from greenpath.model import registry as reg
from greenpath.scenarios import settings as st
from greenpath.scenarios.settings import Setting, Table

SCENARIO_DIR = shipped_dir("scenarios")
TOP_KEYS = ("scenario", "levers", "uncertainties")
META_KEYS = ("name", "extends", "title_en", "title_zh", "description", "policy_start_year")
YEAR_MIN, YEAR_MAX = 2005, 2035
MAX_FILE_BYTES = 200_000
#: Longest chain of parents (``extends``) a scenario may have.
MAX_EXTENDS_DEPTH = 20
#: Deepest nesting of ``[`` / ``{`` a scenario file may have (a valid one needs 2).
MAX_NESTING = tomlfile.MAX_NESTING
NAME_PATTERN = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.\-]*$")
START_YEAR_LEVER = "policy_start_year"
STEP_KEYS = frozenset({"from", "value"})


class ScenarioError(ValueError):
    """A scenario file that cannot be used, with the reason."""


class ScenarioWarning(UserWarning):
    """A scenario that loads but probably does not say what its author meant."""


@dataclass
class Scenario:
    """A resolved scenario: its own metadata plus the merged settings of its chain.

    Attributes
    ----------
    name, path, title_en, title_zh, description
        Metadata of the scenario itself (not inherited).
    params
        Constant settings of the whole chain, ``name -> value`` (child overrides parent).
    tables
        Year-table settings of the whole chain, ``name -> (years, values)``.
    chain
        Names from the root parent down to this scenario.
    chain_paths
        The file of each name of ``chain`` (None for one that has no file).
    extends
        Name of the direct parent, or None.
    own_params, own_tables
        What this scenario's own file sets (the sparse overrides).
    warnings
        What :class:`ScenarioWarning` said about this scenario's own file (an empty
        file, a year table ending before the policy start).
    """

    name: str
    path: Path | None
    title_en: str = ""
    title_zh: str = ""
    description: str = ""
    params: dict[str, float] = field(default_factory=dict)
    tables: dict[str, Table] = field(default_factory=dict)
    chain: list[str] = field(default_factory=list)
    chain_paths: list[Path | None] = field(default_factory=list)
    extends: str | None = None
    own_params: dict[str, float] = field(default_factory=dict)
    own_tables: dict[str, Table] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)

    def run_kwargs(self) -> dict:
        """Keyword arguments for :meth:`JiaozuoModel.run`."""
        return st.run_kwargs(self.settings(), scenario=self.name)

    def settings(self) -> dict[str, Setting]:
        """Every setting of the resolved chain: ``name -> float | (years, values)``."""
        out: dict[str, Setting] = dict(self.params)
        out.update(self.tables)
        return out

    def derive(self, name: str, params: Mapping[str, float] | None = None,
               tables: Mapping[str, Table] | None = None, *, checked: bool = False,
               **meta: str) -> Scenario:
        """Return a child of this scenario with some settings changed.

        Parameters
        ----------
        name
            Name of the new scenario.
        params, tables
            Settings to change (validated against the registry); a constant replaces an
            inherited table of the same name and vice versa.
        checked
            The settings were validated with these rules where they entered (the app
            validates a lever value at its widget) and are not validated again: numbers
            are taken as floats, tables as ``(years, values)`` sorted by year.
        **meta
            ``title_en``, ``title_zh``, ``description``.

        Returns
        -------
        Scenario
            The new scenario; ``extends`` is this scenario's name.
        """
        unknown = set(meta) - {"title_en", "title_zh", "description"}
        if unknown:
            raise ScenarioError(f"derive: unknown metadata {sorted(unknown)}")
        _check_name(name, f"derive {name!r}")
        if checked:
            own_p = {k: float(v) for k, v in (params or {}).items()}
            own_t: dict = {}
            for key, (years, values) in (tables or {}).items():
                points = sorted(zip(map(float, years), map(float, values), strict=True))
                own_t[key] = ([y for y, _ in points], [v for _, v in points])
        else:
            doc: dict = {"levers": {}, "uncertainties": {}}
            registry = reg.load_registry()
            for key, value in {**(params or {}), **{k: _table_dict(v)
                                                     for k, v in (tables or {}).items()}}.items():
                kind = registry[key].kind if key in registry else "lever"
                doc["uncertainties" if kind == "uncertainty" else "levers"][key] = value
            _, own_p, own_t = validate(doc, f"scenario {name!r}")
        merged_p, merged_t = _overlay(self.params, self.tables, own_p, own_t)
        return Scenario(
            name=name, path=None, title_en=meta.get("title_en", ""),
            title_zh=meta.get("title_zh", ""), description=meta.get("description", ""),
            params=merged_p, tables=merged_t, chain=[*self.chain, name],
            chain_paths=[*self.chain_paths, None], extends=self.name,
            own_params=own_p, own_tables={k: merged_t[k] for k in own_t},
        )


def available(directory: Path = SCENARIO_DIR) -> list[str]:
    """Names of the scenarios shipped in ``directory``."""
    return sorted(p.stem for p in Path(directory).glob("*.toml"))


def find(name_or_path: str | Path, directory: Path = SCENARIO_DIR) -> Path:
    """Path of a scenario given as a file path or as a name in ``directory``."""
    p = Path(name_or_path)
    if p.suffix == ".toml" and p.is_file():
        return p
    # A name is looked up in ``directory`` only: never a path through it (``../x``).
    candidate = Path(directory) / f"{name_or_path}.toml"
    if NAME_PATTERN.fullmatch(str(name_or_path)) and candidate.is_file():
        return candidate
    names = available(directory)
    raise ScenarioError(
        f"scenario {str(name_or_path)!r} not found (no such file, and not one of "
        f"{', '.join(names) or 'no scenarios'} in {Path(directory).name}/)"
        f"{reg.suggest(p.stem if p.suffix == '.toml' else str(name_or_path), names)}"
    )


def parse_text(text: str, source: str) -> dict:
    """Parse TOML text, turning syntax errors into a :class:`ScenarioError`."""
    if len(text.encode("utf-8", "surrogatepass")) > MAX_FILE_BYTES:
        raise ScenarioError(f"{source}: file larger than {MAX_FILE_BYTES} bytes")
    return tomlfile.loads(text, source, ScenarioError)


def decode(data: bytes, source: str) -> str:
    """Return the text of a scenario file's bytes, or a :class:`ScenarioError` naming the problem.

    At most :data:`MAX_FILE_BYTES` bytes of UTF-8 text (a UTF-8 byte-order mark is allowed).
    """
    return tomlfile.decode(data, source, ScenarioError, MAX_FILE_BYTES, "a scenario file")


def _read(path: Path) -> str:
    """Read a scenario file (at most one byte more than allowed, so a huge file is not read whole)."""
    with path.open("rb") as handle:
        data = handle.read(MAX_FILE_BYTES + 1)
    return decode(data, path.name)


def _check_name(name: str, where: str) -> None:
    if not NAME_PATTERN.fullmatch(name):
        raise ScenarioError(
            f"{where}: name = {name!r} cannot be used as a file name; allowed letters, "
            "digits, '_', '-' and '.', not starting with '-' or '.'"
        )


def _table_dict(table: Table) -> dict[str, float]:
    years, values = table
    return {str(int(y)): float(v) for y, v in zip(years, values, strict=True)}


def _is_year_unit(p: reg.Parameter) -> bool:
    return p.unit.strip().lower() == "year"


def _check_section(data: dict, section: str, kind: str, source: str):
    params: dict[str, float] = {}
    tables: dict[str, Table] = {}
    body = data.get(section, {})
    if not isinstance(body, dict):
        raise ScenarioError(
            f"{source}: [{section}] = {body!r} must be a table of name = value lines"
        )
    registry = reg.load_registry()
    allowed = [n for n, p in registry.items() if p.kind == kind]
    for key, value in body.items():
        where = f"{source}: [{section}] {key}"
        if key not in registry or registry[key].kind != kind:
            other = registry[key].kind if key in registry else None
            if other in ("lever", "uncertainty"):
                hint = (f" ({key!r} is a {other}: put it under "
                        f"[{'levers' if other == 'lever' else 'uncertainties'}])")
            elif other == "constant":
                hint = (f" ({key!r} is a constant of the model (a recorded value or a "
                        "convention) and cannot be set by a scenario)")
            else:
                hint = (f"{reg.suggest(key, allowed)}; allowed: the {kind} names listed "
                        f"by `greenpath vars --kind {kind}`")
            raise ScenarioError(f"{where} = {value!r}: unknown {kind} {key!r}{hint}")
        p = registry[key]
        if isinstance(value, dict) and STEP_KEYS & set(value):
            if _is_year_unit(p):
                raise ScenarioError(
                    f"{where} = {value!r}: {key} is measured in years and takes one number "
                    f"from {p.min:g} to {p.max:g}, not a step change"
                )
            tables[key] = _check_step(p, value, where)
        elif isinstance(value, dict):
            if _is_year_unit(p):
                raise ScenarioError(
                    f"{where} = {value!r}: {key} is measured in years and takes one number "
                    f"from {p.min:g} to {p.max:g}, not a year table"
                )
            if not value:
                raise ScenarioError(
                    f"{where} = {{}}: empty year table; give year = value pairs "
                    f"(years {YEAR_MIN}-{YEAR_MAX})"
                )
            points: list[tuple[float, float]] = []
            for y, v in value.items():
                try:
                    year = int(y)
                except ValueError:
                    raise ScenarioError(
                        f"{where}: table key {y!r} is not a year; allowed {YEAR_MIN}-{YEAR_MAX}"
                    ) from None
                if not YEAR_MIN <= year <= YEAR_MAX:
                    raise ScenarioError(
                        f"{where}: year {year} outside the allowed {YEAR_MIN}-{YEAR_MAX}"
                    )
                points.append((float(year), _value(p, v, f"{where}[{year}]")))
            points.sort()
            years = [y for y, _ in points]
            if len(set(years)) != len(years):
                raise ScenarioError(f"{where}: a year is given twice in {value!r}")
            tables[key] = (years, [v for _, v in points])
        else:
            params[key] = _value(p, value, where)
    return params, tables


class Step(tuple):
    """A step change read from a scenario file: ``(from_year, value)``.

    Before the file's parent is known the step cannot become a year table (the
    years before ``from_year`` keep the parent's setting), so :func:`validate` returns
    it among the tables and :func:`_overlay` resolves it with :func:`step_table`.
    """

    __slots__ = ()

    def __new__(cls, from_year: int, value: float) -> Step:
        return super().__new__(cls, (int(from_year), float(value)))

    @property
    def from_year(self) -> int:
        """First calendar year the new value applies to."""
        return int(self[0])

    @property
    def value(self) -> float:
        """The value from ``from_year`` on."""
        return float(self[1])


def _check_step(p: reg.Parameter, value: dict, where: str) -> Step:
    """Validate ``{ from = YEAR, value = NUMBER }``."""
    extra = set(value) - STEP_KEYS
    missing = STEP_KEYS - set(value)
    if extra or missing:
        problem = (f"unknown key(s) {sorted(extra)}" if extra
                   else f"missing {' and '.join(sorted(missing))}")
        raise ScenarioError(
            f"{where} = {value!r}: a step change is {{ from = YEAR, value = NUMBER }} ({problem}); "
            f"a year table is {{ {YEAR_MIN + 16} = NUMBER, {YEAR_MIN + 20} = NUMBER }}, the two "
            "cannot be mixed"
        )
    year = value["from"]
    if isinstance(year, bool) or not isinstance(year, int | float) or year != int(year):
        raise ScenarioError(f"{where}: from = {year!r} must be a whole year "
                            f"{YEAR_MIN + 1}-{YEAR_MAX}")
    if not YEAR_MIN + 1 <= int(year) <= YEAR_MAX:
        raise ScenarioError(f"{where}: from = {int(year)} outside the allowed "
                            f"{YEAR_MIN + 1}-{YEAR_MAX} (a value for every year is a plain number)")
    return Step(int(year), _value(p, value["value"], f"{where}.value"))


def step_table(name: str, step: tuple[int, float], before: Setting | None) -> Table:
    """Return the year table of a step change over the setting it replaces.

    The model reads a year table at whole calendar years (``data year``), so the
    table keeps ``before`` for every year up to ``from_year - 1`` and takes the new
    value from ``from_year`` on, with nothing in between.

    Parameters
    ----------
    name
        The lever or uncertainty (for its registry default when ``before`` is None).
    step
        ``(from_year, value)``.
    before
        The inherited setting: a number, a ``(years, values)`` table, or None for
        the model default.

    Returns
    -------
    Table
        ``(years, values)``.
    """
    import numpy as np

    start, value = int(step[0]), float(step[1])
    last = start - 1
    if before is None:
        before = float(reg.effective_defaults()[name])
    if isinstance(before, tuple):
        xs = [float(x) for x in before[0]]
        ys = [float(y) for y in before[1]]
        keep = [(x, y) for x, y in zip(xs, ys, strict=True) if x < last]
        at_last = float(np.interp(last, xs, ys))
        points = [*keep, (float(last), at_last), (float(start), value)]
    else:
        points = [(float(last), float(before)), (float(start), value)]
    return [x for x, _ in points], [y for _, y in points]


def _value(p: reg.Parameter, value, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ScenarioError(
            f"{where} = {value!r}: must be a number from {p.min:g} to {p.max:g} {p.unit}"
        )
    try:
        number = p.check(value)
    except reg.RegistryError:
        raise ScenarioError(
            f"{where} = {value!r}: outside the allowed range {p.min:g} to {p.max:g} {p.unit}"
        ) from None
    if _is_year_unit(p) and number != int(number):
        raise ScenarioError(f"{where} = {value!r}: must be a whole year")
    return number


def validate(data: dict, source: str, allow_steps: bool = False) -> tuple[dict, dict, dict]:
    """Check one parsed scenario document.

    Parameters
    ----------
    data
        The parsed TOML document.
    source
        How to name the document in errors (usually the file name).
    allow_steps
        Return step changes as :class:`Step` among the tables, for a caller that
        resolves them over the parent (:func:`load`, :func:`from_text`).  Otherwise
        (default) a step change is an error saying how to write it as a year table:
        without the parent, what it keeps before its year is unknown, and every table
        returned is ``(years, values)``.

    Returns
    -------
    tuple
        ``(meta, params, tables)``: the ``[scenario]`` strings, constant settings and
        year tables of this document alone (no inheritance).  A ``[scenario]
        policy_start_year`` is moved into ``params``.
    """
    meta, params, tables = _validate(data, source)
    if not allow_steps:
        for key, table in tables.items():
            if isinstance(table, Step):
                raise ScenarioError(
                    f"{source}: {key} = {{ from = {table.from_year}, value = {table.value:g} }}: "
                    "a step change keeps its parent's setting before its year, and here "
                    "there is no parent; write the year table instead, e.g. "
                    f"{{ {table.from_year - 1} = <value before>, {table.from_year} = "
                    f"{table.value:g} }}"
                )
    return meta, params, tables


def _validate(data: dict, source: str) -> tuple[dict, dict, dict]:
    """Check one parsed document; step changes come back as :class:`Step`."""
    if not isinstance(data, dict):
        raise ScenarioError(f"{source}: not a TOML table")
    for key in data:
        if key not in TOP_KEYS:
            raise ScenarioError(
                f"{source}: unknown section [{key}]; allowed [{'], ['.join(TOP_KEYS)}]"
                f"{reg.suggest(key, TOP_KEYS)}"
            )
    meta = dict(data.get("scenario", {})) if isinstance(data.get("scenario", {}), dict) else None
    if meta is None:
        raise ScenarioError(f"{source}: [scenario] must be a table")
    start_year = meta.pop(START_YEAR_LEVER, None)
    for key, value in meta.items():
        if key not in META_KEYS:
            raise ScenarioError(
                f"{source}: [scenario] {key} = {value!r}: unknown key {key!r}; allowed "
                f"{', '.join(META_KEYS)}{reg.suggest(key, META_KEYS)}"
            )
        if not isinstance(value, str):
            raise ScenarioError(f"{source}: [scenario] {key} = {value!r} must be a string")
    if "name" in meta:
        _check_name(meta["name"], f"{source}: [scenario]")
    lev_p, lev_t = _check_section(data, "levers", "lever", source)
    unc_p, unc_t = _check_section(data, "uncertainties", "uncertainty", source)
    if start_year is not None:
        if START_YEAR_LEVER in lev_p:
            raise ScenarioError(
                f"{source}: {START_YEAR_LEVER} is set both in [scenario] ({start_year!r}) and "
                f"in [levers] ({lev_p[START_YEAR_LEVER]:g}); keep one"
            )
        p = reg.load_registry()[START_YEAR_LEVER]
        lev_p[START_YEAR_LEVER] = _value(p, start_year, f"{source}: [scenario] {START_YEAR_LEVER}")
    return meta, {**lev_p, **unc_p}, {**lev_t, **unc_t}


def _overlay(params: dict, tables: dict, own_p: dict, own_t: dict) -> tuple[dict, dict]:
    """Child settings over parent settings (a constant replaces a table and back)."""
    out_p, out_t = dict(params), dict(tables)
    for k, v in own_p.items():
        out_p[k] = v
        out_t.pop(k, None)
    for k, v in own_t.items():
        if isinstance(v, Step):  # a step over what the parent (or the default) sets
            v = step_table(k, v, out_t.get(k, out_p.get(k)))
        out_t[k] = v
        out_p.pop(k, None)
    return out_p, out_t


def _resolve_parent(meta: dict, source: str, directory: Path, seen: list[Path],
                    depth: int = 1) -> Scenario | None:
    """Load the parent ``meta`` names; ``depth`` is its place in the chain (1: the direct parent)."""
    parent = meta.get("extends")
    if not parent:
        return None
    # A name, never a path: checked before the file system is asked anything, so the
    # answer does not tell whether some path exists.
    if not NAME_PATTERN.fullmatch(parent):
        raise ScenarioError(
            f"{source}: [scenario] extends = {parent!r}: not a scenario name; give the name "
            "of a scenario (letters, digits, '_', '-' and '.', not starting with '-' or '.'; "
            "no folder), found in the folder of this file or among the shipped scenarios"
        )
    if depth > MAX_EXTENDS_DEPTH:
        raise ScenarioError(
            f"{source}: [scenario] extends = {parent!r}: more than {MAX_EXTENDS_DEPTH} "
            f"parents in the chain; allowed at most {MAX_EXTENDS_DEPTH}"
        )
    # A user's file elsewhere may extend a shipped scenario: its own folder first.
    folders = list(dict.fromkeys([Path(directory).resolve(), SCENARIO_DIR.resolve()]))
    parent_path = None
    for folder in folders:
        candidate = folder / f"{parent}.toml"
        if candidate.is_file():
            parent_path = candidate
            break
    if parent_path is None:
        names = sorted({n for folder in folders for n in available(folder)})
        raise ScenarioError(
            f"{source}: [scenario] extends = {parent!r}: no such scenario in "
            f"{' or '.join(f.name + '/' for f in folders)}; allowed: "
            f"{', '.join(names) or 'none'}{reg.suggest(parent, names)}"
        )
    if parent_path.resolve() in [s.resolve() for s in seen]:
        loop = " -> ".join([*(s.stem for s in seen), parent_path.stem])
        raise ScenarioError(
            f"{source}: [scenario] extends = {parent!r} makes a cycle ({loop}); "
            "a scenario cannot be its own ancestor"
        )
    return _load(parent_path, [*seen, parent_path], depth + 1)


def _load(path: Path, seen: list[Path], depth: int = 1) -> Scenario:
    text = _read(path)
    meta, own_p, own_t = validate(parse_text(text, path.name), path.name, allow_steps=True)
    base = _resolve_parent(meta, path.name, path.parent, seen, depth)
    return _build(meta, path.stem, path, base, own_p, own_t, text, path.name)


def _warn(text: str, source: str, scenario: Scenario) -> None:
    """Warn about a file that loads but probably does not say what its author meant."""
    messages = []
    if not text.strip() or not re.search(r"^\s*[^#\s]", text, re.MULTILINE):
        messages.append(f"{source}: the file is empty (no settings, no [scenario] table): "
                        "it runs on the model defaults")
    start = scenario.params.get(START_YEAR_LEVER)
    if start is None:
        start = reg.load_registry()[START_YEAR_LEVER].default
    for key, (years, values) in scenario.own_tables.items():
        if years and years[-1] < start:
            messages.append(
                f"{source}: [levers] {key}: the year table ends in {int(years[-1])}, before "
                f"the policy start year {int(start)}: only its last value ({values[-1]:g}) "
                "acts; give years from the policy start on"
            )
    for message in messages:
        warnings.warn(message, ScenarioWarning, stacklevel=4)
    scenario.warnings = messages


def _build(meta: dict, default_name: str, path: Path | None, base: Scenario | None,
           own_p: dict, own_t: dict, text: str | None = None, source: str = "") -> Scenario:
    params, tables = _overlay(base.params if base else {}, base.tables if base else {},
                              own_p, own_t)
    name = meta.get("name") or default_name
    scenario = Scenario(
        name=name, path=path, title_en=meta.get("title_en", ""),
        title_zh=meta.get("title_zh", ""), description=meta.get("description", ""),
        params=params, tables=tables, chain=[*(base.chain if base else []), name],
        chain_paths=[*(base.chain_paths if base else []), path],
        extends=meta.get("extends") or None, own_params=own_p,
        own_tables={k: tables[k] for k in own_t},  # step changes resolved to tables
    )
    if text is not None:
        _warn(text, source, scenario)
    return scenario


def load(name_or_path: str | Path, directory: Path = SCENARIO_DIR) -> Scenario:
    """Load a scenario and resolve its ``extends`` chain (parents first).

    Parameters
    ----------
    name_or_path
        A scenario name in ``directory`` (``"plan_2021"``) or the path of a ``.toml``.
    directory
        Where names are looked up.  Parents are looked up in the folder of the file
        that names them.

    Returns
    -------
    Scenario
        Merged settings (child overrides parent) plus the file's own overrides.
    """
    path = find(name_or_path, directory)
    return _load(path, [path])


def from_text(text: str, source: str = "uploaded scenario",
              directory: Path = SCENARIO_DIR,
              parents: Mapping[str, Scenario] | None = None) -> Scenario:
    """Validate a scenario given as text (an upload); parents come from ``directory``.

    ``parents`` are further scenarios its ``extends`` may name, by name, before
    ``directory`` is looked in (the app passes the user's own saved scenarios).
    """
    meta, own_p, own_t = validate(parse_text(text.removeprefix("\ufeff"), source), source, allow_steps=True)
    extends = meta.get("extends")
    if parents and isinstance(extends, str) and NAME_PATTERN.fullmatch(extends) and extends in parents:
        base: Scenario | None = parents[extends]
    else:
        base = _resolve_parent(meta, source, Path(directory), [])
    default = meta.get("name") or re.sub(r"[^A-Za-z0-9_.\-]+", "_", source).strip("_.-")
    return _build(meta, default or "uploaded", None, base, own_p, own_t, text, source)


# ---------------------------------------------------------------------- writing back
def _scalar_text(value) -> str:
    import tomli_w

    return tomli_w.dumps({"v": value}).split("=", 1)[1].strip()


def _number_text(name: str, value: float) -> str:
    p = reg.load_registry().get(name)
    if p is not None and _is_year_unit(p) and float(value).is_integer():
        return str(int(value))
    return _scalar_text(float(value))


def differences(scenario: Scenario, parent: Scenario | None) -> tuple[dict, dict]:
    """Return the settings of ``scenario`` that differ from ``parent`` (or the defaults).

    A setting ``scenario`` does not mention is inherited and is not a difference;
    equality is :func:`greenpath.scenarios.settings.same` (what the app counts as moved).

    Returns
    -------
    tuple
        ``(params, tables)`` to write in the child file.
    """
    defaults = reg.effective_defaults()
    given = parent.settings() if parent else {}
    out_p: dict[str, float] = {}
    out_t: dict[str, Table] = {}
    for k, v in scenario.settings().items():
        if st.same(v, given.get(k, defaults.get(k, float("nan")))):
            continue
        if st.is_table(v):
            out_t[k] = cast(Table, v)
        else:
            out_p[k] = float(cast(float, v))
    return out_p, out_t


def to_toml(scenario: Scenario, parent: str | Path | Scenario | None = None,
            directory: Path = SCENARIO_DIR) -> str:
    """TOML text of ``scenario`` holding only what differs from its parent.

    Parameters
    ----------
    scenario
        The scenario to write (e.g. built by the app with :meth:`Scenario.derive`).
    parent
        The parent to compare with: a name, a path or a loaded :class:`Scenario`.
        Default: ``scenario.extends``; with neither, the registry defaults (the text
        then has no ``extends``).
    directory
        Where a parent given by name is looked up.

    Returns
    -------
    str
        Text that :func:`from_text` turns back into the same settings.
    """
    if parent is None and scenario.extends:
        parent = scenario.extends
    base = parent if isinstance(parent, Scenario) or parent is None else load(parent, directory)
    params, tables = differences(scenario, base)
    registry = reg.load_registry()
    lines = ["# Scenario written by greenpath: only the settings that differ from "
             + (f"its parent {base.name!r}." if base else "the model defaults."),
             "", "[scenario]"]
    _check_name(scenario.name, f"scenario {scenario.name!r}")
    meta = {"name": scenario.name}
    if base is not None:
        meta["extends"] = base.name
    for key in ("title_en", "title_zh", "description"):
        if getattr(scenario, key):
            meta[key] = getattr(scenario, key)
    lines += [f"{k} = {_scalar_text(v)}" for k, v in meta.items()]
    for section, kind in (("levers", "lever"), ("uncertainties", "uncertainty")):
        names = [n for n, p in registry.items() if p.kind == kind
                 and (n in params or n in tables)]
        if not names:
            continue
        lines += ["", f"[{section}]"]
        for n in names:
            if n in params:
                lines.append(f"{n} = {_number_text(n, params[n])}")
            else:
                years, values = tables[n]
                body = ", ".join(f"{int(y)} = {_number_text(n, v)}"
                                 for y, v in zip(years, values, strict=True))
                lines.append(f"{n} = {{ {body} }}")
    text = "\n".join(lines) + "\n"
    # What is written must read back: fail here, not when the user reopens the file.
    validate(parse_text(text, f"{scenario.name}.toml"), f"{scenario.name}.toml")
    return text


def save(scenario: Scenario, path: str | Path, overwrite: bool = False,
         parent: str | Path | Scenario | None = None,
         directory: Path = SCENARIO_DIR) -> Path:
    """Write :func:`to_toml` text to ``path`` atomically.

    Raises
    ------
    FileExistsError
        ``path`` exists and ``overwrite`` is False (a user's saved file is never
        replaced without asking).
    """
    path = Path(path)
    if path.exists() and not overwrite:
        raise FileExistsError(f"{path} exists; choose another name or allow overwriting")
    from greenpath.files import atomic_write

    text = to_toml(scenario, parent, directory)
    return atomic_write(path, lambda tmp: tmp.write_text(text, encoding="utf-8"), overwrite=True)


__all__ = [
    "MAX_EXTENDS_DEPTH", "SCENARIO_DIR", "Scenario", "ScenarioError", "ScenarioWarning",
    "available", "decode", "differences", "find", "from_text", "load", "parse_text", "save", "to_toml", "validate",
]
