"""SD validation, structure: the model as written.

Units and comments on every variable, dimensional consistency of every stock's flows,
the registry against the .mdl constants, the .mdl as the only equation source (Sterman's
structure and dimensional-consistency tests).
"""

from __future__ import annotations

import re
from collections import Counter

import pytest

from greenpath.model import registry
from greenpath.model.mdl import MDL_PATH, parse_mdl

VARIABLES = parse_mdl()


def test_every_variable_has_unit_and_comment():
    assert len(VARIABLES) > 300
    for v in VARIABLES:
        assert v.unit, f"{v.vensim_name} has no unit"
        assert len(v.comment) > 10, f"{v.vensim_name} has no comment"


def _combine(a: Counter, b: Counter, sign: int) -> Counter:
    """Return a * b (sign 1) or a / b (sign -1) on exponent maps (Counter's '-' drops negatives)."""
    out = Counter(a)
    for k, v in b.items():
        out[k] += sign * v
    return Counter({k: v for k, v in out.items() if v})


def _dims(unit: str) -> Counter:
    """Parse a Vensim unit string into exponents of base units ('Dmnl' and 1 are empty)."""
    tokens = re.findall(r"[A-Za-z_][A-Za-z0-9_]*|\d+(?:\.\d+)?|[*/()^]", unit)
    pos = 0

    def expr() -> Counter:
        nonlocal pos
        total = term()
        while pos < len(tokens) and tokens[pos] in "*/":
            op = tokens[pos]
            pos += 1
            rhs = term()
            total = _combine(total, rhs, 1 if op == "*" else -1)
        return total

    def term() -> Counter:
        nonlocal pos
        tok = tokens[pos]
        pos += 1
        if tok == "(":
            inner = expr()
            pos += 1  # ')'
            return inner
        if tok[0].isdigit() or tok == "Dmnl":
            return Counter()
        return Counter({tok: 1})

    result = expr()
    assert pos == len(tokens), unit
    return result


def _term_dims(term: str, by_name: dict) -> Counter | None:
    """Dimensions of a product/quotient of references and numbers, or None if complex."""
    if any(tok in term for tok in ("(", "IF THEN", "MIN", "MAX")):
        return None
    dims = Counter()
    parts = re.split(r"\s*([*/])\s*", term.strip())
    op = "*"
    for part in parts:
        if part in ("*", "/"):
            op = part
            continue
        name = " ".join(part.lower().split())
        if re.fullmatch(r"[\d.]+(e-?\d+)?", name):
            factor = Counter()
        elif name in by_name:
            factor = _dims(by_name[name].unit)
        else:
            return None
        dims = _combine(dims, factor, 1 if op == "*" else -1)
    return dims


def test_units_of_flows_match_their_stocks():
    """Dimensional consistency of every INTEG.

    Each +/- term of the net flow has the stock's unit per Year (terms that are
    products of references are inferred).
    """
    by_name = {v.vensim_name.lower(): v for v in VARIABLES}
    checked = 0
    for v in VARIABLES:
        if v.kind != "stock":
            continue
        body = v.equation[v.equation.index("(") + 1:v.equation.rindex(")")]
        depth, split_at = 0, None
        for i, ch in enumerate(body):
            depth += ch == "("
            depth -= ch == ")"
            if ch == "," and depth == 0:
                split_at = i
        rate = body[:split_at]
        expected = _combine(_dims(v.unit), Counter({"Year": 1}), -1)
        for term in re.split(r"(?<![eE])\s[+-]\s|^-", rate):
            if not term.strip():
                continue
            got = _term_dims(term, by_name)
            if got is None:
                continue
            checked += 1
            assert got == expected, f"{v.vensim_name} [{v.unit}]: term {term.strip()!r} has {dict(got)}"
    assert checked >= 40


def test_unit_parser():
    assert _dims("tce10k/(CNY100m*Year)") == Counter({"tce10k": 1, "CNY100m": -1, "Year": -1})
    assert _dims("Dmnl") == Counter()
    assert _dims("1/Year") == Counter({"Year": -1})


def test_registry_matches_the_model_constants():
    constants = {v.name: v for v in VARIABLES if v.kind == "constant"}
    reg = registry.load_registry()
    control = {"final_time", "initial_time", "saveper", "time_step"}
    assert set(constants) - control == set(reg), "registry and .mdl constants differ"
    for name, p in reg.items():
        assert float(constants[name].equation) == pytest.approx(p.default), name
        assert p.unit == constants[name].unit, name
        assert p.source.strip(), name
        if p.kind == "lever":
            assert p.label_en, name
            assert p.label_zh, name


def test_mdl_is_the_only_equation_source():
    """The registry carries no equations and the .mdl has no unregistered constants."""
    text = MDL_PATH.read_text(encoding="utf-8")
    for banned in ("DELAY MATERIAL", "NPV(", "TIME SHIFT"):
        assert banned not in text


def test_trend_build_rates_equal_the_levers_baseline_values():
    """The trend before a late policy start is the build-rate levers' baseline value."""
    reg = registry.load_registry()
    for tech in ("wind", "utility_pv", "distributed_pv", "biomass", "hydro"):
        assert reg[f"trend_{tech}_build_rate"].default == reg[f"{tech}_build_rate"].default, tech
