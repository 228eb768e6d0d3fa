"""Settings values: the one definition of a setting, its normal form, equality, difference and run key.

A *setting* is the value a scenario gives a lever or an uncertainty of the registry:

* a number (the constant the model uses every year), or
* a year table ``(years, values)`` (linear in between, the model's ``... year table``);
  a step change of a scenario file is already a year table once the file is read.

Everything that asks "are these settings equal?" asks :func:`same`: the app (unsaved
changes, the run cache), the TOML writer (:func:`greenpath.scenarios.scenario.differences`),
the wedges and the cost analysis.  So a value the app shows as unchanged is never written
to a file as a change, and a value the app counts as moved is never dropped from it.

Equality
    Two numbers are the same when they agree to 1e-12 relative (1e-15 absolute near
    zero): a slider or a text field that round-trips a value through decimal text must
    not turn into a change.  Two year tables are the same when they have as many points
    and every year and every value is the same number.  A number is never the same as a
    year table (a constant replaces a table and vice versa).
Normal form
    A float, or a ``(years, values)`` tuple of float tuples: hashable, so settings can
    key a cache.
Run key
    The hashable identity of a run: the settings that differ from the model defaults
    (calibration in force), in normal form, sorted by name.  The baseline is the empty key.
Run arguments
    ``{"params": {name: float}, "time_varying": {name: ([years], [values])}}`` -- with
    ``"scenario"`` when a name is given -- the keyword arguments of an engine's ``run``.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from functools import lru_cache
from typing import cast

from greenpath.model import registry as reg

__all__ = [
    "REL_TOL", "ABS_TOL", "NormalSetting", "NormalTable", "RunKey", "Setting", "Table",
    "defaults", "diff", "full", "is_table", "key_settings", "normal_key", "normalise",
    "run_key", "run_kwargs", "same", "settable", "split",
]

#: A year table as given: ``(years, values)``.
Table = tuple[Sequence[float], Sequence[float]]
#: A setting as given: a number or a year table.
Setting = float | Table
#: A year table in normal form (hashable).
NormalTable = tuple[tuple[float, ...], tuple[float, ...]]
#: A setting in normal form.
NormalSetting = float | NormalTable
#: The identity of a run: ``((name, normal setting), ...)`` sorted by name.
RunKey = tuple[tuple[str, NormalSetting], ...]

#: Relative and absolute tolerance of :func:`same` for numbers.
REL_TOL = 1e-12
ABS_TOL = 1e-15


def is_table(value: object) -> bool:
    """Whether ``value`` is a year table ``(years, values)`` rather than a number."""
    return (isinstance(value, tuple | list) and len(value) == 2
            and not isinstance(value[0], int | float))


def normalise(value: object) -> NormalSetting:
    """Return a setting in normal form: a float or a ``(years, values)`` tuple of float tuples."""
    if is_table(value):
        years, values = cast(Table, value)
        return (tuple(float(y) for y in years), tuple(float(v) for v in values))
    return float(cast(float, value))


_NUMBERS = (float, int)


def _same_number(a: float, b: float) -> bool:
    return math.isclose(float(a), float(b), rel_tol=REL_TOL, abs_tol=ABS_TOL)


def same(a: object, b: object) -> bool:
    """Whether two settings are equal (see the module docstring: numbers to 1e-12 relative)."""
    if isinstance(a, _NUMBERS) and isinstance(b, _NUMBERS):  # the common case, kept fast
        return a == b or math.isclose(a, b, rel_tol=REL_TOL, abs_tol=ABS_TOL)
    a_table, b_table = is_table(a), is_table(b)
    if a_table or b_table:
        if not (a_table and b_table):
            return False
        (ay, av), (by, bv) = cast(Table, a), cast(Table, b)
        return (len(ay) == len(by) and len(av) == len(bv)
                and all(map(_same_number, ay, by)) and all(map(_same_number, av, bv)))
    return _same_number(cast(float, a), cast(float, b))


@lru_cache(maxsize=1)
def settable() -> dict[str, reg.Parameter]:
    """Registry parameters a scenario may set: levers and uncertainties."""
    return {n: p for n, p in reg.load_registry().items() if p.kind in ("lever", "uncertainty")}


@lru_cache(maxsize=1)
def defaults() -> dict[str, float]:
    """Value of every settable parameter when no scenario sets it (calibration in force)."""
    eff = reg.effective_defaults()
    return {n: float(eff[n]) for n in settable()}


def full(settings: Mapping[str, object]) -> dict[str, NormalSetting]:
    """Every settable parameter: ``settings`` (normalised) over the defaults."""
    out: dict[str, NormalSetting] = dict(defaults())
    out.update({k: normalise(v) for k, v in settings.items()})
    return out


def diff(settings: Mapping[str, object], base: Mapping[str, object]) -> dict[str, NormalSetting]:
    """Return the settings whose resolved value differs from what ``base`` gives."""
    a, b = full(settings), full(base)
    return {k: v for k, v in a.items() if not same(v, b[k])}


def run_key(settings: Mapping[str, object]) -> RunKey:
    """Return the hashable identity of a run (differences from the defaults, sorted)."""
    return normal_key(full(settings))


def normal_key(settings: Mapping[str, NormalSetting]) -> RunKey:
    """Return the run key of settable parameters already in normal form (nothing normalised again).

    The same key as :func:`run_key` gives for these settings; a caller that holds its
    settings in normal form (the app's levers) saves a copy of every setting.
    """
    start = defaults()
    return tuple(sorted((k, v) for k, v in settings.items() if not same(v, start[k])))


def key_settings(key: RunKey) -> dict[str, NormalSetting]:
    """Return the settings a run key stands for."""
    return dict(key)


def split(settings: Mapping[str, object] | Iterable[tuple[str, object]]
          ) -> tuple[dict[str, float], dict[str, Table]]:
    """Split settings (a mapping or a run key) into numbers and year tables (as lists)."""
    items = settings.items() if isinstance(settings, Mapping) else settings
    params: dict[str, float] = {}
    tables: dict[str, Table] = {}
    for k, v in items:
        if is_table(v):
            years, values = cast(Table, v)
            tables[k] = (list(years), list(values))
        else:
            params[k] = float(cast(float, v))
    return params, tables


def run_kwargs(settings: Mapping[str, object] | Iterable[tuple[str, object]],
               scenario: str | None = None) -> dict:
    """Return the keyword arguments of an engine's ``run`` for ``settings`` (or a run key).

    ``{"params": ..., "time_varying": ...}``, plus ``"scenario"`` when a name is given.
    """
    params, tables = split(settings)
    out: dict = {"params": params, "time_varying": tables}
    if scenario is not None:
        out["scenario"] = scenario
    return out
