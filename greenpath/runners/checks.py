"""Model checks: rules written as data, run over the shipped scenarios and a large sample.

The rules live in ``model/checks.toml`` (see the comments there for the format); each
says, for a variable or a group of variables, what must hold for any correct version
of the model: bounds, monotonicity, conservation identities, closeness to recorded
history, and relations between two runs (a run that only adds renewables never emits
more; levers change nothing before the policy start year).  Rules refer to model
variables through one mapping (``[variables]``), so a renamed variable is fixed in one
place.

:func:`run_check` runs a :class:`~greenpath.runners.versions.ModelVersion` on the shipped
scenarios plus a seeded Latin-hypercube sample of every lever and uncertainty across
its registry range (vector engine, one pass), evaluates every rule and returns every
violation with the setting that produced it, the year and the value.  Violations are
ordered smallest counterexample first: fewest parameters away from the defaults, then
nearest in range units; for the smallest sampled counterexample of a failing rule the
check also *shrinks* the setting (resets its parameters to the defaults one group at a
time while the rule still fails), so the report leads with the few settings that
matter.

A rule with ``known_issue = "reason"`` is still evaluated and reported, but does not
fail the check.

Public API
----------
``load_rules(path=RULES_PATH, version=None) -> RuleSet``
``run_check(version=None, rules=None, samples=None, seed=None, shrink=True) -> CheckReport``
``CheckReport.text()``, ``.markdown()``, ``.html()``, ``.write(folder)``, ``.failed``
"""

from __future__ import annotations

import ast
import html
import operator
import time
import tomllib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from greenpath.model.mdl import MDL_PATH
from greenpath.runners.versions import ModelVersion, Runs, Setting, Settings

__all__ = ["CheckError", "CheckReport", "Rule", "RuleResult", "RuleSet", "Violation", "load_rules", "run_check"]

RULES_PATH = MDL_PATH.with_name("checks.toml")
KINDS = ("bounds", "expression", "monotonic", "history", "relation", "scenarios")
OVER = ("shipped", "sample")
_COMMON_KEYS = {"id", "kind", "why", "known_issue", "over", "years", "start_offsets"}
_KIND_KEYS = {
    "bounds": {"vars", "min", "max", "atol"},
    "expression": {"lhs", "op", "rhs", "rtol", "atol"},
    "monotonic": {"vars", "direction", "rtol", "atol"},
    "history": {"var", "series", "factor", "tolerance", "side"},
    "relation": {"vars", "change", "reset", "keep", "op", "rtol", "atol"},
    "scenarios": {"a", "b", "vars", "op", "rtol", "atol"},
}
_REQUIRED = {
    "bounds": {"vars"},
    "expression": {"lhs", "op", "rhs"},
    "monotonic": {"vars", "direction"},
    "history": {"var", "series", "tolerance"},
    "relation": {"vars", "op"},
    "scenarios": {"a", "b", "vars", "op"},
}
_OPS = ("==", "<=", ">=", "!=")
#: Violations listed per rule in the text and Markdown reports (the CSV has all).
SHOWN = 5


class CheckError(ValueError):
    """A malformed rule file or a rule that cannot be evaluated on this model."""


# ---------------------------------------------------------------------------
# Rules
# ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Rule:
    """One rule of ``checks.toml`` (``spec`` holds its kind-specific keys)."""

    id: str
    kind: str
    why: str
    spec: Mapping[str, Any]
    over: tuple[str, ...]
    years: tuple[int, int] | None = None
    start_offsets: tuple[int, int] | None = None
    known_issue: str = ""

    def names(self) -> set[str]:
        """Names (variable aliases and parameters) the rule reads."""
        s = self.spec
        out: set[str] = set(s.get("vars", []))
        if "var" in s:
            out.add(s["var"])
        for key in ("lhs", "rhs"):
            if key in s:
                out.update(_expression_names(str(s[key])))
        return out


@dataclass
class RuleSet:
    """The parsed rule file: settings, the variable mapping and the rules."""

    path: Path
    variables: dict[str, str]
    rules: list[Rule]
    samples: int
    test_samples: int
    seed: int
    integer_parameters: list[str]

    def model_name(self, alias: str) -> str:
        """Model variable of ``alias`` (through ``[variables]``)."""
        return self.variables[alias]


def _where(path: Path, rule_id: str) -> str:
    return f"{path.name} rule {rule_id!r}"


def load_rules(path: str | Path = RULES_PATH, version: ModelVersion | None = None) -> RuleSet:
    """Read and validate the rule file.

    Parameters
    ----------
    path
        The TOML file (default ``model/checks.toml``).
    version
        When given, every mapped variable must exist in this version and every
        parameter a rule names must be in its registry.

    Raises
    ------
    CheckError
        Naming the file, the rule, the key, the value and what is allowed.
    """
    path = Path(path)
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise CheckError(f"rule file {path} not found") from None
    except tomllib.TOMLDecodeError as exc:
        raise CheckError(f"{path.name}: not valid TOML: {exc}") from None
    unknown = set(data) - {"settings", "variables", "rule"}
    if unknown:
        raise CheckError(f"{path.name}: unknown section(s) {sorted(unknown)}; allowed: settings, variables, rule")
    settings = data.get("settings", {})
    known_settings = {"samples", "test_samples", "seed", "integer_parameters"}
    if set(settings) - known_settings:
        raise CheckError(f"{path.name} [settings]: unknown key(s) {sorted(set(settings) - known_settings)}; "
                         f"allowed: {', '.join(sorted(known_settings))}")
    variables = data.get("variables", {})
    if not isinstance(variables, dict) or not all(isinstance(v, str) for v in variables.values()):
        raise CheckError(f"{path.name} [variables]: expected alias = \"model_variable\" lines")
    rules: list[Rule] = []
    seen: set[str] = set()
    for i, raw in enumerate(data.get("rule", [])):
        rid = raw.get("id")
        if not isinstance(rid, str) or not rid:
            raise CheckError(f"{path.name}: rule number {i + 1} has no id")
        where = _where(path, rid)
        if rid in seen:
            raise CheckError(f"{where}: duplicate id")
        seen.add(rid)
        kind = raw.get("kind")
        if kind not in KINDS:
            raise CheckError(f"{where}: kind {kind!r} is not one of {', '.join(KINDS)}")
        allowed = _COMMON_KEYS | _KIND_KEYS[kind]
        extra = set(raw) - allowed
        if extra:
            raise CheckError(f"{where}: unknown key(s) {sorted(extra)}; "
                             f"allowed for {kind}: {', '.join(sorted(allowed))}")
        missing = _REQUIRED[kind] - set(raw)
        if missing:
            raise CheckError(f"{where}: missing key(s) {sorted(missing)}")
        why = raw.get("why", "")
        if not isinstance(why, str) or not why.strip():
            raise CheckError(f"{where}: every rule says why it must hold (key 'why')")
        over_default = ("shipped",) if kind in ("history", "scenarios") else OVER
        over = tuple(raw.get("over", over_default))
        if not over or any(o not in OVER for o in over):
            raise CheckError(f"{where}: over = {list(over)!r}; allowed: a list of {', '.join(OVER)}")
        years = _pair(raw.get("years"), where, "years")
        offsets = _pair(raw.get("start_offsets"), where, "start_offsets")
        spec = {k: v for k, v in raw.items() if k in _KIND_KEYS[kind]}
        if "op" in spec and spec["op"] not in _OPS:
            raise CheckError(f"{where}: op {spec['op']!r} is not one of {', '.join(_OPS)}")
        if kind == "monotonic" and spec["direction"] not in ("increasing", "decreasing"):
            raise CheckError(f"{where}: direction {spec['direction']!r}; allowed: increasing, decreasing")
        if kind == "history" and spec.get("side", "both") not in ("both", "at_least", "at_most"):
            raise CheckError(f"{where}: side {spec['side']!r}; allowed: both, at_least, at_most")
        if kind == "bounds" and "min" not in spec and "max" not in spec:
            raise CheckError(f"{where}: a bounds rule needs min or max")
        for key in ("lhs", "rhs"):
            if key in spec:
                try:
                    _compile_expression(str(spec[key]))
                except CheckError as exc:
                    raise CheckError(f"{where}: {key} {spec[key]!r}: {exc}") from None
        if "vars" in spec and (not isinstance(spec["vars"], list) or not spec["vars"]):
            raise CheckError(f"{where}: vars must be a non-empty list of names")
        rule = Rule(id=rid, kind=kind, why=" ".join(why.split()), spec=spec, over=over, years=years,
                    start_offsets=offsets, known_issue=" ".join(str(raw.get("known_issue", "")).split()))
        rules.append(rule)
    rs = RuleSet(path=path, variables=dict(variables), rules=rules,
                 samples=int(settings.get("samples", 5000)), test_samples=int(settings.get("test_samples", 200)),
                 seed=int(settings.get("seed", 20211202)),
                 integer_parameters=list(settings.get("integer_parameters", [])))
    if version is not None:
        _validate_names(rs, version)
    return rs


def _pair(value: Any, where: str, key: str) -> tuple[int, int] | None:
    if value is None:
        return None
    if (not isinstance(value, list) or len(value) != 2
            or not all(isinstance(v, int) and not isinstance(v, bool) for v in value) or value[0] > value[1]):
        raise CheckError(f"{where}: {key} = {value!r}; allowed: [first, last], two whole numbers, first <= last")
    return (value[0], value[1])


def _validate_names(rs: RuleSet, version: ModelVersion) -> None:
    outputs = version.outputs()
    for alias, name in rs.variables.items():
        if name not in outputs:
            raise CheckError(
                f"{rs.path.name} [variables] {alias} = {name!r}: no such variable in {version.mdl_path.name} "
                f"({version.label}); fix the mapping when a variable is renamed"
            )
    for rule in rs.rules:
        for name in rule.names():
            if name not in rs.variables and name not in version.registry and name not in _BUILTINS:
                raise CheckError(
                    f"{_where(rs.path, rule.id)}: {name!r} is neither an alias in [variables] nor a parameter "
                    f"of {version.registry_path.name}"
                )
        if rule.kind == "relation":
            for name in list(rule.spec.get("change", {})) + list(rule.spec.get("keep", [])):
                if name not in version.registry:
                    raise CheckError(f"{_where(rs.path, rule.id)}: change/keep names {name!r}, not a parameter "
                                     f"of {version.registry_path.name}")
        if rule.kind == "history":
            from greenpath.calibration.history import VARIABLES

            if rule.spec["series"] not in VARIABLES:
                raise CheckError(f"{_where(rs.path, rule.id)}: series {rule.spec['series']!r} is not a variable "
                                 "of calibration/data/history.csv")


# ---------------------------------------------------------------------------
# Expressions: + - * / ** with numbers, aliases, parameters, min, max, abs
# ---------------------------------------------------------------------------

_BIN = {ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul, ast.Div: operator.truediv,
        ast.Pow: operator.pow}
_FUNCS: dict[str, Callable[..., Any]] = {"min": np.minimum, "max": np.maximum, "abs": np.abs}
#: Names every expression knows: ``year`` (saved year), ``start`` (the run's first policy year).
_BUILTINS = {"year", "start"}


def _compile_expression(text: str) -> ast.expr:
    try:
        tree = ast.parse(text, mode="eval")
    except SyntaxError:
        raise CheckError("not an arithmetic expression") from None
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            if not isinstance(node.func, ast.Name) or node.func.id not in _FUNCS or node.keywords:
                raise CheckError(f"only the functions {', '.join(_FUNCS)} may be called")
        elif not isinstance(node, ast.Expression | ast.BinOp | ast.UnaryOp | ast.Name | ast.Constant | ast.Load
                            | ast.USub | ast.UAdd | ast.operator):
            raise CheckError(f"{type(node).__name__} is not allowed (numbers, names, + - * / **, min, max, abs)")
        if isinstance(node, ast.BinOp) and type(node.op) not in _BIN:
            raise CheckError("only + - * / ** are allowed")
        if isinstance(node, ast.Constant) and not isinstance(node.value, int | float):
            raise CheckError(f"constant {node.value!r} is not a number")
    return tree.body


def _expression_names(text: str) -> set[str]:
    try:
        tree = ast.parse(text, mode="eval")
    except SyntaxError:
        return set()
    return {n.id for n in ast.walk(tree) if isinstance(n, ast.Name) and n.id not in _FUNCS}


def _evaluate(node: ast.expr, env: Callable[[str], Any]) -> Any:
    if isinstance(node, ast.Constant) and isinstance(node.value, (int, float)):
        return float(node.value)
    if isinstance(node, ast.Name):
        return env(node.id)
    if isinstance(node, ast.UnaryOp):
        value = _evaluate(node.operand, env)
        return -value if isinstance(node.op, ast.USub) else value
    if isinstance(node, ast.BinOp):
        return _BIN[type(node.op)](_evaluate(node.left, env), _evaluate(node.right, env))
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Name):
        args = [_evaluate(a, env) for a in node.args]
        func = _FUNCS[node.func.id]
        if func is np.abs:
            return np.abs(args[0])
        out = args[0]
        for a in args[1:]:
            out = func(out, a)
        return out
    raise CheckError(f"cannot evaluate {ast.dump(node)}")  # pragma: no cover - refused at load


# ---------------------------------------------------------------------------
# Runs and violations
# ---------------------------------------------------------------------------


@dataclass
class Case:
    """A setting the check runs: a shipped scenario or a sampled point."""

    label: str
    source: str  # "shipped" or "sample"


@dataclass
class Violation:
    """One (run, year) where a rule does not hold."""

    rule: str
    case: str
    setting: dict[str, Setting]
    size: int
    distance: float
    year: int
    variable: str
    value: float
    limit: float
    detail: str
    shrunk: bool = False

    def setting_text(self, limit: int = 12) -> str:
        """Return the setting as ``name=value`` pairs (at most ``limit``, then a count)."""
        items = sorted(self.setting.items())
        parts = [f"{k}={_fmt_setting(v)}" for k, v in items[:limit]]
        if len(items) > limit:
            parts.append(f"... {len(items) - limit} more")
        return ", ".join(parts) if parts else "(all defaults)"


def _fmt_setting(value: Setting) -> str:
    if isinstance(value, tuple):
        return "{" + ", ".join(f"{int(y)}: {v:.4g}" for y, v in zip(*value, strict=True)) + "}"
    return f"{value:.6g}"


@dataclass
class RuleResult:
    """What one rule found."""

    rule: Rule
    status: str  # pass, fail, known, known-pass
    runs_checked: int
    points_checked: int
    violations: list[Violation] = field(default_factory=list)
    n_violations: int = 0
    n_runs_violating: int = 0


@dataclass
class CheckReport:
    """Results of a check of one model version."""

    version: str
    rules_path: str
    results: list[RuleResult]
    n_shipped: int
    n_samples: int
    seed: int
    seconds: float
    model_sha256: str = ""

    @property
    def failed(self) -> list[RuleResult]:
        """Rules that failed (known issues excluded)."""
        return [r for r in self.results if r.status == "fail"]

    def counts(self) -> dict[str, int]:
        """Return the number of rules per status."""
        out: dict[str, int] = {}
        for r in self.results:
            out[r.status] = out.get(r.status, 0) + 1
        return out

    def headline(self) -> str:
        """One line: rules passed / failed / known issues, runs and time."""
        c = self.counts()
        return (f"{len(self.results)} rules: {c.get('pass', 0)} passed, {c.get('fail', 0)} failed, "
                f"{c.get('known', 0) + c.get('known-pass', 0)} known issues; {self.n_shipped} shipped scenarios + "
                f"{self.n_samples} sampled settings (seed {self.seed}) of {self.version}; {self.seconds:.1f} s")

    def text(self, shown: int = SHOWN) -> str:
        """Plain-text report for the terminal."""
        lines = [f"greenpath check: {self.headline()}"]
        for r in self.results:
            if r.status == "pass":
                continue
            tag = {"fail": "FAIL", "known": "KNOWN", "known-pass": "KNOWN (not seen now)"}[r.status]
            lines.append(f"{tag} {r.rule.id}: {r.n_violations} violations in {r.n_runs_violating} of "
                         f"{r.runs_checked} runs -- {r.rule.why}")
            if r.rule.known_issue:
                lines.append(f"    known issue: {r.rule.known_issue}")
            for v in r.violations[:shown]:
                lines.append(f"    {v.case}{' (shrunk)' if v.shrunk else ''}: {v.year} {v.variable} = "
                             f"{v.value:.6g} ({v.detail}); {v.size} settings: {v.setting_text()}")
        if not self.failed:
            lines.append("all rules hold" + (" (known issues listed above)" if len(lines) > 1 else ""))
        return "\n".join(lines)

    def markdown(self, shown: int = SHOWN) -> str:
        """Markdown summary: one table row per rule, then the violations of each failing rule."""
        out = [f"# Model check of {self.version}", "", self.headline(), "",
               f"Rules: `{self.rules_path}`; model SHA-256 `{self.model_sha256[:12]}`.", "",
               "| rule | kind | status | runs | violations | why |", "| --- | --- | --- | --- | --- | --- |"]
        for r in self.results:
            out.append(f"| {r.rule.id} | {r.rule.kind} | {r.status} | {r.runs_checked} | {r.n_violations} | "
                       f"{r.rule.why.replace('|', '/')} |")
        for r in self.results:
            if not r.violations:
                continue
            out += ["", f"## {r.rule.id} ({r.status})", "", r.rule.why, ""]
            if r.rule.known_issue:
                out += [f"Known issue: {r.rule.known_issue}", ""]
            out += ["| run | year | variable | value | detail | settings |", "| --- | --- | --- | --- | --- | --- |"]
            for v in r.violations[:shown]:
                out.append(f"| {v.case}{' (shrunk)' if v.shrunk else ''} | {v.year} | {v.variable} | {v.value:.6g} | "
                           f"{v.detail} | {v.setting_text(40)} |")
        return "\n".join(out) + "\n"

    def html(self, shown: int = SHOWN) -> str:
        """Self-contained HTML version of :meth:`markdown`."""
        colour = {"pass": "#d9f2d9", "fail": "#f8d0d0", "known": "#fbecc5", "known-pass": "#e8e8e8"}
        esc = html.escape
        rows = "".join(
            f"<tr style='background:{colour[r.status]}'><td>{esc(r.rule.id)}</td><td>{r.rule.kind}</td>"
            f"<td>{r.status}</td><td>{r.runs_checked}</td><td>{r.n_violations}</td><td>{esc(r.rule.why)}</td></tr>"
            for r in self.results
        )
        details = []
        for r in self.results:
            if not r.violations:
                continue
            items = "".join(
                f"<tr><td>{esc(v.case)}{' (shrunk)' if v.shrunk else ''}</td><td>{v.year}</td><td>{esc(v.variable)}"
                f"</td><td>{v.value:.6g}</td><td>{esc(v.detail)}</td><td>{esc(v.setting_text(40))}</td></tr>"
                for v in r.violations[:shown]
            )
            known = f"<p>Known issue: {esc(r.rule.known_issue)}</p>" if r.rule.known_issue else ""
            details.append(f"<h2>{esc(r.rule.id)} ({r.status})</h2><p>{esc(r.rule.why)}</p>{known}"
                           f"<table><tr><th>run</th><th>year</th><th>variable</th><th>value</th><th>detail</th>"
                           f"<th>settings</th></tr>{items}</table>")
        return (
            "<!DOCTYPE html><html><head><meta charset='utf-8'><title>greenpath check</title><style>"
            "body{font-family:sans-serif;margin:2em}table{border-collapse:collapse;margin:1em 0}"
            "td,th{border:1px solid #bbb;padding:3px 6px;font-size:13px;vertical-align:top}</style></head><body>"
            f"<h1>Model check of {esc(self.version)}</h1><p>{esc(self.headline())}</p>"
            "<table><tr><th>rule</th><th>kind</th><th>status</th><th>runs</th><th>violations</th><th>why</th></tr>"
            f"{rows}</table>{''.join(details)}</body></html>"
        )

    def write(self, folder: str | Path, overwrite: bool = False) -> list[Path]:
        """Write ``check.md``, ``check.html`` and ``violations.csv`` (every listed violation) to ``folder``.

        Existing files are replaced only with ``overwrite`` (else FileExistsError naming them).
        """
        import csv

        folder = Path(folder)
        paths = [folder / "check.md", folder / "check.html", folder / "violations.csv"]
        existing = [p.name for p in paths if p.exists()]
        if existing and not overwrite:
            raise FileExistsError(f"{folder}: {', '.join(existing)} exist; use --force to replace them")
        folder.mkdir(parents=True, exist_ok=True)
        paths[0].write_text(self.markdown(), encoding="utf-8")
        paths[1].write_text(self.html(), encoding="utf-8")
        with paths[2].open("w", newline="", encoding="utf-8") as fh:
            writer = csv.writer(fh)
            writer.writerow(["rule", "status", "run", "shrunk", "year", "variable", "value", "detail", "n_settings",
                             "settings"])
            for r in self.results:
                for v in r.violations:
                    writer.writerow([r.rule.id, r.status, v.case, int(v.shrunk), v.year, v.variable, repr(v.value),
                                     v.detail, v.size, v.setting_text(10_000)])
        return paths


# ---------------------------------------------------------------------------
# Evaluation
# ---------------------------------------------------------------------------


class _Context:
    """Everything the rules need: the version, the rule set, the cases and their runs."""

    def __init__(self, version: ModelVersion, rs: RuleSet, cases: list[Case], block: Settings, workers: int) -> None:
        self.version = version
        self.rs = rs
        self.cases = cases
        self.block = block
        self.workers = workers
        self.columns = sorted({rs.variables[a] for a in rs.variables})
        self.runs = self.run(block)
        self._history: Any = None
        self._labels = {c.label: i for i, c in enumerate(cases)}
        self._rows: dict[int, tuple[dict[str, Setting], int, float]] = {}

    def run(self, settings: Sequence[Mapping[str, Setting]] | Settings) -> Runs:
        n = settings.n if isinstance(settings, Settings) else len(settings)
        return self.version.run(settings, self.columns, workers=self.workers if n > 500 else 1)

    def setting(self, i: int) -> tuple[dict[str, Setting], int, float]:
        """Case ``i``'s settings, their number away from the defaults and distance (cached)."""
        if i not in self._rows:
            setting = self.block.row(i)
            self._rows[i] = (setting, *_size(self, setting))
        return self._rows[i]

    def history(self, series: str) -> Any:
        if self._history is None:
            from greenpath.calibration.history import load_history

            self._history = load_history()
        from greenpath.calibration.history import series as get

        return get(self._history, series)


def _env(ctx: _Context, runs: Runs, rows: np.ndarray) -> Callable[[str], Any]:
    def env(name: str) -> Any:
        if name == "year":
            return runs.years[None, :].astype(float)
        if name == "start":
            return _starts(ctx, runs, rows)[:, None]
        if name in ctx.rs.variables:
            return runs.values[ctx.rs.variables[name]][rows]
        if name in runs.params:
            return runs.params[name][rows][:, None]
        raise CheckError(f"unknown name {name!r}")
    return env


def _starts(ctx: _Context, runs: Runs, rows: np.ndarray) -> np.ndarray:
    """First calendar year the levers act in (the policy start year, rounded up as ``data year >=`` does)."""
    return np.ceil(runs.params["policy_start_year"][rows] - 1e-9)


def _year_mask(ctx: _Context, rule: Rule, runs: Runs, rows: np.ndarray) -> np.ndarray:
    years = runs.years[None, :]
    mask = np.ones((len(rows), len(runs.years)), dtype=bool)
    if rule.years:
        mask &= (years >= rule.years[0]) & (years <= rule.years[1])
    if rule.start_offsets:
        offset = years - _starts(ctx, runs, rows)[:, None]
        mask &= (offset >= rule.start_offsets[0]) & (offset <= rule.start_offsets[1])
    return mask


def _tolerance(spec: Mapping[str, Any], scale: np.ndarray) -> np.ndarray:
    return float(spec.get("atol", 1e-9)) + float(spec.get("rtol", 1e-9)) * np.abs(scale)


def _compare(op: str, left: np.ndarray, right: np.ndarray, spec: Mapping[str, Any]) -> tuple[np.ndarray, str]:
    """Mask where ``left op right`` fails (with tolerance), and the limit's description."""
    scale = np.maximum(np.abs(left), np.abs(right))
    tol = _tolerance(spec, scale)
    with np.errstate(invalid="ignore"):
        if op == "==":
            bad = ~(np.abs(left - right) <= tol)
        elif op == "<=":
            bad = ~(left <= right + tol)
        elif op == ">=":
            bad = ~(left >= right - tol)
        else:
            bad = ~(np.abs(left - right) > tol)
    return bad, op


@dataclass
class _Found:
    """Raw violations of one rule on one block of runs: masks and values (runs x years)."""

    bad: np.ndarray
    value: np.ndarray
    limit: np.ndarray
    variable: str
    detail: str


def _evaluate_rule(ctx: _Context, rule: Rule, runs: Runs, rows: np.ndarray,
                   variant: Runs | None = None) -> list[_Found]:
    """Violations of ``rule`` on the runs ``rows`` of ``runs`` (``variant``: the changed runs of a relation)."""
    s = rule.spec
    mask = _year_mask(ctx, rule, runs, rows)
    env = _env(ctx, runs, rows)
    found: list[_Found] = []
    if rule.kind == "bounds":
        for alias in s["vars"]:
            value = env(alias)
            value = np.broadcast_to(value, mask.shape)
            for key, op in (("min", ">="), ("max", "<=")):
                if key not in s:
                    continue
                limit = np.full(mask.shape, float(s[key]))
                bad, _ = _compare(op, value, limit, {"atol": s.get("atol", 1e-9), "rtol": 0})
                bad |= ~np.isfinite(value)
                found.append(_Found(bad & mask, value, limit, alias, f"{key} {s[key]}"))
    elif rule.kind == "expression":
        left = np.broadcast_to(_evaluate(_compile_expression(str(s["lhs"])), env), mask.shape)
        right = np.broadcast_to(_evaluate(_compile_expression(str(s["rhs"])), env), mask.shape)
        bad, op = _compare(s["op"], left, right, s)
        bad |= ~np.isfinite(left) | ~np.isfinite(right)
        found.append(_Found(bad & mask, left, right, str(s["lhs"]), f"{s['lhs']} {op} {s['rhs']}"))
    elif rule.kind == "monotonic":
        for alias in s["vars"]:
            value = env(alias)
            step = np.diff(value, axis=1)
            pair = mask[:, 1:] & mask[:, :-1]
            tol = _tolerance(s, value[:, :-1])
            bad = (step < -tol) if s["direction"] == "increasing" else (step > tol)
            bad = np.concatenate([np.zeros((len(rows), 1), dtype=bool), bad & pair], axis=1)
            prev = np.concatenate([value[:, :1], value[:, :-1]], axis=1)
            found.append(_Found(bad, value, prev, alias, f"{s['direction']} (limit: previous year's value)"))
    elif rule.kind == "history":
        recorded = ctx.history(s["series"])
        factor = float(s.get("factor", 1.0))
        value = env(s["var"])
        limit = np.full(mask.shape, np.nan)
        for year, rec in recorded.items():
            if year in runs.years:
                limit[:, runs.year_index(int(year))] = rec * factor
        has = np.isfinite(limit)
        with np.errstate(invalid="ignore", divide="ignore"):
            rel = np.abs(value - limit) / np.abs(limit)
        side = s.get("side", "both")
        if side == "at_least":
            bad = has & mask & ~(value >= limit * (1 - float(s["tolerance"])))
        elif side == "at_most":
            bad = has & mask & ~(value <= limit * (1 + float(s["tolerance"])))
        else:
            bad = has & mask & ~(rel <= float(s["tolerance"]))
        found.append(_Found(bad, value, limit, s["var"],
                            f"recorded {s['series']} x {factor:g}, {side} within {float(s['tolerance']):.0%}"))
    elif rule.kind == "relation":
        assert variant is not None
        venv = _env(ctx, variant, np.arange(variant.n))
        for alias in s["vars"]:
            base = np.broadcast_to(env(alias), mask.shape)
            changed = np.broadcast_to(venv(alias), mask.shape)
            bad, op = _compare(s["op"], changed, base, s)
            found.append(_Found(bad & mask, changed, base, alias, f"changed run {op} base run"))
    elif rule.kind == "scenarios":
        other = np.array([_case_index(ctx, f"scenario {s['b']}")])
        oenv = _env(ctx, runs, other)
        for alias in s["vars"]:
            a = np.broadcast_to(env(alias), mask.shape)
            b = np.broadcast_to(oenv(alias), mask.shape)
            bad, op = _compare(s["op"], a, b, s)
            found.append(_Found(bad & mask, a, b, alias, f"{s['a']} {op} {s['b']}"))
    return found


def _variant_settings(ctx: _Context, rule: Rule, block: Settings, params: Mapping[str, np.ndarray],
                      rows: np.ndarray) -> Settings:
    """Return the settings of the changed runs of a relation rule (``block``: the base runs ``rows``)."""
    s = rule.spec
    reg = ctx.version.registry
    out = Settings(list(block.names), block.values.copy(), {i: dict(t) for i, t in block.tables.items()})
    keep = set(s.get("keep", []))
    if s.get("reset") == "levers":
        for name in list(out.names):
            if name in reg and reg[name].kind == "lever" and name not in keep:
                out.set(name, np.nan)
        for row in out.tables.values():
            for name in [k for k in row if k in reg and reg[k].kind == "lever" and k not in keep]:
                del row[name]
    for name, how in s.get("change", {}).items():
        p = reg[name]
        current = params[name][rows]
        if how == "max":
            value: Any = p.max
        elif how == "min":
            value = p.min
        elif how == "default":
            value = ctx.version.defaults[name]
        elif how == "far":
            value = np.where(np.abs(p.max - current) >= np.abs(current - p.min), p.max, p.min)
        elif isinstance(how, int | float) and not isinstance(how, bool):
            value = float(how)
        else:
            raise CheckError(f"{_where(ctx.rs.path, rule.id)}: change {name} = {how!r}; "
                             "allowed: a number, 'min', 'max', 'default', 'far'")
        out.set(name, np.broadcast_to(np.asarray(value, dtype=float), (out.n,)))
    return out


def _rows_for(ctx: _Context, rule: Rule) -> np.ndarray:
    if rule.kind == "scenarios":
        return np.array([_case_index(ctx, f"scenario {rule.spec['a']}")], dtype=int)
    return np.array([i for i, c in enumerate(ctx.cases) if c.source in rule.over], dtype=int)


def _violating(ctx: _Context, rule: Rule, settings: list[dict[str, Setting]]) -> np.ndarray:
    """Which of ``settings`` violate ``rule`` (a fresh run of them): bool per setting."""
    block = Settings.from_mappings(settings)
    runs = ctx.run(block)
    rows = np.arange(len(settings))
    variant = None
    if rule.kind == "relation":
        variant = ctx.run(_variant_settings(ctx, rule, block, runs.params, rows))
    out = np.zeros(len(settings), dtype=bool)
    for f in _evaluate_rule(ctx, rule, runs, rows, variant):
        out |= f.bad.any(axis=1)
    return out


def _shrink(ctx: _Context, rule: Rule, setting: dict[str, Setting], budget: int = 40) -> dict[str, Setting]:
    """Reset parameters of a violating ``setting`` to the defaults while the rule still fails.

    Greedy, in batches: each round tries, for every remaining parameter, the setting
    without it (one vector-engine call); then the removals that keep the violation are
    tried together, halving the list until the rest still violates.
    """
    current = dict(setting)
    for _ in range(budget):
        names = sorted(current)
        if not names:
            break
        trials = [{k: v for k, v in current.items() if k != name} for name in names]
        still = _violating(ctx, rule, trials)
        removable = [name for name, ok in zip(names, still, strict=True) if ok]
        if not removable:
            break
        chunk = removable
        while len(chunk) > 1:  # the largest leading chunk of removals that still violates
            together = {k: v for k, v in current.items() if k not in chunk}
            if _violating(ctx, rule, [together])[0]:
                break
            chunk = chunk[: len(chunk) // 2]
        current = {k: v for k, v in current.items() if k not in chunk}
    return current


def _size(ctx: _Context, setting: Mapping[str, Setting]) -> tuple[int, float]:
    """Return the number of settings away from the defaults, and the distance in range units."""
    n, dist = 0, 0.0
    for name, value in setting.items():
        p = ctx.version.registry[name]
        span = (p.max - p.min) or 1.0
        if isinstance(value, tuple):
            n += 1
            dist += float(np.max(np.abs(np.asarray(value[1], dtype=float) - ctx.version.defaults[name]))) / span
        elif abs(float(value) - ctx.version.defaults[name]) > 1e-12 * max(1.0, abs(float(value))):
            n += 1
            dist += abs(float(value) - ctx.version.defaults[name]) / span
    return n, dist


def _collect(ctx: _Context, rule: Rule, founds: list[_Found], rows: np.ndarray) -> tuple[list[Violation], int, int]:
    """Every violating (run, year, variable) as a Violation, smallest counterexample first."""
    per_run: dict[int, list[Violation]] = {}
    total = 0
    for f in founds:
        hit_rows, hit_cols = np.nonzero(f.bad)
        total += len(hit_rows)
        for r, c in zip(hit_rows.tolist(), hit_cols.tolist(), strict=True):
            i = int(rows[r])
            case = ctx.cases[i]
            setting, size, dist = ctx.setting(i)
            per_run.setdefault(i, []).append(Violation(
                rule=rule.id, case=case.label, setting=setting, size=size, distance=dist,
                year=int(ctx.runs.years[c]), variable=f.variable, value=float(f.value[r, c]),
                limit=float(f.limit[r, c]), detail=f"{f.detail}; limit {float(f.limit[r, c]):.6g}",
            ))
    ordered = sorted(per_run.values(), key=lambda vs: (vs[0].size, vs[0].distance, vs[0].case))
    out = [v for vs in ordered for v in sorted(vs, key=lambda v: (v.year, v.variable))]
    return out, total, len(per_run)


def sample_cases(version: ModelVersion, rs: RuleSet, n: int, seed: int) -> tuple[list[Case], Settings]:
    """Draw a seeded Latin-hypercube sample of every lever and uncertainty across its registry range."""
    from greenpath.runners.ensemble import latin_hypercube

    names = version.levers() + version.uncertainties()
    rng = np.random.default_rng(seed)
    unit = latin_hypercube(n, len(names), rng)
    lo = np.array([version.registry[k].min for k in names])
    hi = np.array([version.registry[k].max for k in names])
    values = np.clip(lo + unit * (hi - lo), lo, hi)
    for j, name in enumerate(names):
        if name in rs.integer_parameters:
            values[:, j] = np.clip(np.round(values[:, j]), lo[j], hi[j])
    return [Case(f"sample #{i}", "sample") for i in range(n)], Settings(list(names), values)


def shipped_cases(version: ModelVersion, directory: Path | None = None) -> tuple[list[Case], Settings]:
    """Return the shipped scenarios (each as its resolved settings)."""
    from greenpath.scenarios import scenario as scenarios

    directory = directory or scenarios.SCENARIO_DIR
    names = scenarios.available(directory)
    block = Settings.from_mappings([dict(scenarios.load(name, directory).settings()) for name in names])
    return [Case(f"scenario {name}", "shipped") for name in names], block


def run_check(version: ModelVersion | None = None, rules: RuleSet | str | Path | None = None,
              samples: int | None = None, seed: int | None = None, *, shrink: bool = True,
              workers: int = 2, only: Sequence[str] | None = None) -> CheckReport:
    """Run every rule over the shipped scenarios and a seeded sample.

    Parameters
    ----------
    version
        The model version (default: the installed model, registry and calibration).
    rules
        A :class:`RuleSet` or the path of a rule file (default ``model/checks.toml``).
    samples, seed
        Size and seed of the sample (defaults: the rule file's ``[settings]``).
    shrink
        Shrink the smallest sampled counterexample of each failing rule.
    workers
        Processes of the vector engine for the large runs.
    only
        Ids of the rules to run (default: all).

    Returns
    -------
    CheckReport
    """
    start = time.perf_counter()
    version = version or ModelVersion.current()
    rs = rules if isinstance(rules, RuleSet) else load_rules(rules or RULES_PATH, version)
    if isinstance(rules, RuleSet):
        _validate_names(rs, version)
    selected = [r for r in rs.rules if only is None or r.id in only]
    if only is not None:
        unknown = set(only) - {r.id for r in rs.rules}
        if unknown:
            raise CheckError(f"unknown rule id(s) {sorted(unknown)}; the ids are in {rs.path.name}")
    n = rs.samples if samples is None else int(samples)
    seed = rs.seed if seed is None else int(seed)
    cases, block = shipped_cases(version)
    if n > 0:
        more, sampled = sample_cases(version, rs, n, seed)
        cases += more
        block = _concat(block, sampled)
    ctx = _Context(version, rs, cases, block, workers)
    results = []
    for rule in selected:
        rows = _rows_for(ctx, rule)
        variant = None
        if rule.kind == "relation":
            variant = ctx.run(_variant_settings(ctx, rule, ctx.block.take(rows), ctx.runs.params, rows))
        founds = _evaluate_rule(ctx, rule, ctx.runs, rows, variant)
        violations, total, n_runs = _collect(ctx, rule, founds, rows)
        points = int(sum(f.bad.size for f in founds))
        if violations and shrink:
            first = next((v for v in violations if ctx.cases[ctx._labels[v.case]].source == "sample"), None)
            if first is not None:
                small = _shrink(ctx, rule, first.setting)
                shrunk = _describe_shrunk(ctx, rule, small)
                violations = shrunk + violations
        statuses = ("known", "known-pass") if rule.known_issue else ("fail", "pass")
        status = statuses[0] if violations else statuses[1]
        results.append(RuleResult(rule, status, len(rows), points, violations, total, n_runs))
    return CheckReport(version=version.label, rules_path=str(rs.path.name), results=results,
                       n_shipped=sum(c.source == "shipped" for c in cases), n_samples=n, seed=seed,
                       seconds=time.perf_counter() - start, model_sha256=version.mdl_sha256)


def _case_index(ctx: _Context, label: str) -> int:
    return ctx._labels[label]


def _concat(a: Settings, b: Settings) -> Settings:
    """Join the runs of ``a`` and then of ``b`` in one block."""
    names = list(dict.fromkeys(a.names + b.names))
    values = np.full((a.n + b.n, len(names)), np.nan)
    for block, offset in ((a, 0), (b, a.n)):
        for j, name in enumerate(block.names):
            values[offset:offset + block.n, names.index(name)] = block.values[:, j]
    tables = dict(a.tables)
    tables.update({i + a.n: t for i, t in b.tables.items()})
    return Settings(names, values, tables)


def _describe_shrunk(ctx: _Context, rule: Rule, setting: dict[str, Setting]) -> list[Violation]:
    """Return the violations of the shrunk setting (its first violating year per variable)."""
    runs = ctx.run([setting])
    rows = np.arange(1)
    block = Settings.from_mappings([setting])
    variant = ctx.run(_variant_settings(ctx, rule, block, runs.params, rows)) if rule.kind == "relation" else None
    size, dist = _size(ctx, setting)
    out = []
    for f in _evaluate_rule(ctx, rule, runs, rows, variant):
        cols = np.nonzero(f.bad[0])[0]
        if cols.size:
            c = int(cols[0])
            out.append(Violation(rule=rule.id, case="smallest counterexample", setting=setting, size=size,
                                 distance=dist, year=int(runs.years[c]), variable=f.variable,
                                 value=float(f.value[0, c]), limit=float(f.limit[0, c]),
                                 detail=f"{f.detail}; limit {float(f.limit[0, c]):.6g}", shrunk=True))
    return out[:3]

