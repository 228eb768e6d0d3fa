"""SD validation, structure: no year written into an equation, dimensionless exponents.

Regression tests for the smaller findings of the model review (issue 13): recorded years
written as literals in equations (``real gdp growth``, ``population``, ``urbanisation
rate``, ``grid emission factor``, ``Cumulative CO2``), ``maximum coal switching fraction``
declared 1/Year but used as a fraction, and ``(1 + growth) ^ TIME STEP``, which mixes a
rate (1/Year) into a dimensionless base and raises it to a time (Year).  Every year an
equation needs is a named constant of the registry (so a user sees and can change it),
and every base and exponent of a power is dimensionless.
"""

from __future__ import annotations

import re
from collections import Counter

import pytest

from greenpath.model import registry
from greenpath.model.mdl import parse_mdl

VARIABLES = parse_mdl()
BY_NAME = {" ".join(v.vensim_name.lower().split()): v for v in VARIABLES}
BUILTINS = {"time step": "Year", "time": "Year", "initial time": "Year", "final time": "Year",
            "saveper": "Year"}
#: Whole numbers an equation may not contain: calendar years of the model's era.
YEAR_RANGE = range(1990, 2101)
_NAMES = sorted([*BY_NAME, *BUILTINS], key=len, reverse=True)
_NAME_RE = re.compile("|".join(r"(?<![\w])" + re.escape(n).replace(r"\ ", r"\s+") + r"(?![\w])"
                               for n in _NAMES), re.IGNORECASE)


def _without_names(equation: str) -> str:
    """Replace every variable name of ``equation`` by ``§`` (names may hold years)."""
    return _NAME_RE.sub("§", equation)


def _years_in(equation: str) -> list[int]:
    numbers = re.findall(r"(?<![\w.])\d+(?:\.\d+)?(?![\w.])", _without_names(equation))
    return [int(float(n)) for n in numbers if float(n).is_integer() and int(float(n)) in YEAR_RANGE]


def test_no_equation_writes_a_year_as_a_number():
    """Years are named constants (``last recorded growth year = 2022``), never literals.

    Lookups (recorded data by year) and the constants themselves hold years by design.
    """
    checked = 0
    for v in VARIABLES:
        if v.kind not in ("auxiliary", "stock"):
            continue
        checked += 1
        assert not _years_in(v.equation), f"{v.vensim_name} writes year(s) {_years_in(v.equation)} " \
            f"into its equation; make each a named constant with a registry row: {v.equation[:160]}"
    assert checked > 400


@pytest.mark.parametrize("equation", [
    "IF THEN ELSE(data year > 2022, gdp growth 2023 to 2030, 0.05)",
    "grid emission factor 2021 * EXP(grid emission factor change * MAX(0, Time - 2021))",
])
def test_the_year_check_sees_a_literal_but_not_a_name(equation):
    assert _years_in(equation) == [2022] or _years_in(equation) == [2021]
    assert _years_in("gdp growth 2023 to 2030 * wind capital cost 2021 / 10000") == []


def _dims(unit: str) -> Counter:
    """Exponents of the base units of a Vensim unit string ('Dmnl' and numbers are empty)."""
    tokens = re.findall(r"[A-Za-z_][A-Za-z0-9_]*|\d+(?:\.\d+)?|[*/()^]", unit)
    out: Counter = Counter()
    sign, depth_signs = 1, [1]
    for tok in tokens:
        if tok == "/":
            sign = -depth_signs[-1]
        elif tok == "*":
            sign = depth_signs[-1]
        elif tok == "(":
            depth_signs.append(sign)
        elif tok == ")":
            depth_signs.pop()
            sign = depth_signs[-1]
        elif tok[0].isalpha() and tok != "Dmnl":
            out[tok] += sign
    return Counter({k: n for k, n in out.items() if n})


def _simple_dims(expr: str) -> Counter | None:
    """Dimensions of ``[-]a [*/] b ...`` (names and numbers, optionally parenthesised), else None."""
    expr = expr.strip()
    while expr.startswith("(") and expr.endswith(")") and expr.count("(") == 1:
        expr = expr[1:-1].strip()
    expr = expr.lstrip("-").strip()
    if re.search(r"[()+,]|\s-\s", expr):
        return None
    out: Counter = Counter()
    op = "*"
    for part in re.split(r"\s*([*/])\s*", expr):
        if part in ("*", "/"):
            op = part
            continue
        name = " ".join(part.lower().split())
        if re.fullmatch(r"\d+(?:\.\d+)?", name):
            continue
        unit = BUILTINS.get(name) or (BY_NAME[name].unit if name in BY_NAME else None)
        if unit is None:
            return None
        for k, n in _dims(unit).items():
            out[k] += n if op == "*" else -n
    return Counter({k: n for k, n in out.items() if n})


def _powers(equation: str) -> list[tuple[str, str]]:
    """Return (base, exponent) of every ``^`` whose base is a parenthesised group or a name."""
    found = []
    for m in re.finditer(r"\^", equation):
        left, right = equation[:m.start()].rstrip(), equation[m.end():].lstrip()
        if left.endswith(")"):
            depth, i = 0, len(left) - 1
            for i in range(len(left) - 1, -1, -1):
                depth += left[i] == ")"
                depth -= left[i] == "("
                if depth == 0:
                    break
            base = left[i:]
        else:
            base = re.search(r"[A-Za-z][A-Za-z0-9 ]*$", left).group(0)
        if right.startswith("("):
            depth, end = 0, len(right)
            for j, ch in enumerate(right):
                depth += ch == "("
                depth -= ch == ")"
                if depth == 0:
                    end = j + 1
                    break
            exponent = right[:end]
        else:
            exponent = re.match(r"-?[A-Za-z0-9. ]+?(?=\s*(?:[-+*/),]|$))", right).group(0)
        found.append((base, exponent))
    return found


def _base_term(base: str) -> str | None:
    """``X`` of a base ``(1 + X)`` or ``(1 - X)`` (the growth and decay factors), else None."""
    m = re.fullmatch(r"\(\s*1\s*[-+]\s*(.+)\)", base.strip())
    return m.group(1) if m else None


def test_every_power_has_a_dimensionless_base_and_exponent():
    """``(1 + rate * one year) ^ (TIME STEP / one year)``, never ``(1 + rate) ^ TIME STEP``."""
    exponents = bases = 0
    for v in VARIABLES:
        for base, exponent in _powers(v.equation):
            dims = _simple_dims(exponent)
            if dims is not None:
                exponents += 1
                assert not dims, f"{v.vensim_name}: exponent {exponent!r} has units {dict(dims)}"
            term = _base_term(base)
            dims = _simple_dims(term) if term is not None else None
            if dims is not None:
                bases += 1
                assert not dims, f"{v.vensim_name}: base {base!r} adds {term!r} with units {dict(dims)} to 1"
    assert exponents >= 20
    assert bases >= 12


@pytest.mark.parametrize(("equation", "bad"), [
    ("x = (1 + real gdp growth) ^ (TIME STEP / one year)", "base"),
    ("x = (1 + real gdp growth * one year) ^ TIME STEP", "exponent"),
])
def test_the_power_check_catches_the_review_slip(equation, bad):
    ((base, exponent),) = _powers(equation)
    if bad == "exponent":
        assert _simple_dims(exponent) == Counter({"Year": 1})
    else:
        assert _simple_dims(_base_term(base)) == Counter({"Year": -1})


def test_maximum_coal_switching_fraction_is_a_fraction_turned_into_a_rate_where_compared():
    reg = registry.load_registry()
    assert reg["maximum_coal_switching_fraction"].unit == "Dmnl"
    assert 0 < reg["maximum_coal_switching_fraction"].max <= 1
    uses = [v for v in VARIABLES if v.kind != "constant"
            and "maximum coal switching fraction" in " ".join(v.equation.lower().split())]
    assert len(uses) == 2
    for v in uses:
        assert "maximum coal switching fraction / one year" in " ".join(v.equation.lower().split()), v.vensim_name
