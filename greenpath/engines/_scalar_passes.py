"""Exact rewrites of the scalar backend's generated code (``_one`` of a generated module).

:func:`optimise` takes the source that ``_Generator.emit_scalar`` writes and returns
source that computes the same floats with fewer Python operations per time step:

* **loop invariants**: a subexpression of the time loop that reads only names the
  loop never assigns (constants, values fixed at initialisation, the control
  values) and calls nothing but ``_sc_min``, ``_sc_max`` and ``abs`` is computed
  once before the loop, as a local ``_cN`` (equal subexpressions share one).  The
  same operations on the same operands give the same float, so results are bit
  for bit those of the unrewritten code.  Only expressions that the loop
  evaluates on its first step are moved (the step's equations and the outputs
  recorded at the saved times: the first time is always saved), except that
  branches of ``a if c else b``, ``and``/``or`` and the state updates stay as
  they are unless the moved part cannot raise (``+``, ``-``, ``*``,
  comparisons, ``_sc_min``/``_sc_max``/``abs``): a ``1 / x`` in a branch not
  taken must not raise before the loop.
* **once per year**: equations that depend on time only through ``int(time ...)``
  (the model's data year) are computed when that value changes, not on every
  step (see :func:`_reuse_while_the_year_holds`).
* **MIN / MAX inline**: ``_sc_min(a, b)`` becomes ``(a if a <= b or a != a else
  b)`` (``_sc_max`` with ``>=``), the body of those helpers (NumPy's ``minimum`` /
  ``maximum``: NaN wins), with ``a`` and ``b`` evaluated once, in the same order,
  through ``:=`` temporaries ``_mN`` when they are not plain names or numbers;
  the ``a != a`` test is dropped when ``a`` is a number that is not NaN.

Each rewrite is undone by nothing at run time; ``tests/engines`` compare the
scalar backend with PySD on the real model.
"""

from __future__ import annotations

import ast
import itertools

#: calls a loop invariant may contain: pure, and unable to raise on floats
_PURE_CALLS = frozenset({"_sc_min", "_sc_max", "abs"})
#: operators that cannot raise on Python floats, ints and bools
_SAFE_BINOPS = (ast.Add, ast.Sub, ast.Mult)


def optimise(source: str) -> str:
    """Return ``source`` with the ``_one`` function rewritten as the module docstring says."""
    tree = ast.parse(source)
    for node in tree.body:
        if isinstance(node, ast.FunctionDef) and node.name == "_one":
            _hoist_invariants(node)
            _reuse_while_the_year_holds(node)
            _InlineMinMax().visit(node)
    ast.fix_missing_locations(tree)
    return ast.unparse(tree) + "\n"


# -- loop invariants -----------------------------------------------------------------


def _time_loop(fn: ast.FunctionDef) -> tuple[int, ast.For]:
    for i, node in enumerate(fn.body):
        if isinstance(node, ast.For) and isinstance(node.target, ast.Name) and node.target.id == "_k":
            return i, node
    raise ValueError("generated _one has no time loop 'for _k in ...'")


def _first_step_statements(loop: ast.For) -> list[ast.stmt]:
    """Return the statements every first step runs: the equations and the saved-time block."""
    out: list[ast.stmt] = []
    for stmt in loop.body:
        if isinstance(stmt, ast.If):
            test = ast.unparse(stmt.test)
            if test == "_save[_k]":  # the first time is always saved (_schedule)
                out.extend(stmt.body)
                continue
            break  # 'if _k == _last: break': the state updates after it may not run
        out.append(stmt)
    return out


class _Hoister:
    def __init__(self, assigned: set[str]) -> None:
        self.assigned = assigned
        self.names: dict[str, str] = {}  # ast.dump of an invariant -> its local
        self.assigns: list[ast.stmt] = []
        self.counter = itertools.count()

    def invariant(self, node: ast.expr) -> bool:
        for sub in ast.walk(node):
            if isinstance(sub, ast.Name) and sub.id in self.assigned:
                return False
            if isinstance(sub, ast.Call):
                if not (isinstance(sub.func, ast.Name) and sub.func.id in _PURE_CALLS and not sub.keywords):
                    return False
            elif isinstance(sub, (ast.NamedExpr, ast.Subscript, ast.Lambda, ast.comprehension, ast.Starred,
                                  ast.Attribute, ast.Await, ast.Yield, ast.YieldFrom)):
                return False
        return True

    @staticmethod
    def cannot_raise(node: ast.expr) -> bool:
        return not any(isinstance(sub, ast.BinOp) and not isinstance(sub.op, _SAFE_BINOPS) for sub in ast.walk(node))

    @staticmethod
    def worth_it(node: ast.expr) -> bool:
        if isinstance(node, (ast.Name, ast.Constant)):
            return False
        # a signed number is folded by the compiler already
        return not (isinstance(node, ast.UnaryOp) and isinstance(node.operand, ast.Constant))

    def local_for(self, node: ast.expr) -> ast.Name:
        key = ast.dump(node)
        name = self.names.get(key)
        if name is None:
            name = self.names[key] = f"_c{next(self.counter)}"
            self.assigns.append(ast.Assign(targets=[ast.Name(name, ast.Store())], value=node))
        return ast.Name(name, ast.Load())

    def rewrite(self, node: ast.expr, conditional: bool) -> ast.expr:
        if (self.worth_it(node) and self.invariant(node)
                and (not conditional or self.cannot_raise(node))):
            return self.local_for(node)
        if isinstance(node, ast.IfExp):
            node.test = self.rewrite(node.test, conditional)
            node.body = self.rewrite(node.body, True)
            node.orelse = self.rewrite(node.orelse, True)
            return node
        if isinstance(node, ast.BoolOp):
            node.values = [self.rewrite(v, conditional or i > 0) for i, v in enumerate(node.values)]
            return node
        if isinstance(node, (ast.Lambda, ast.ListComp, ast.SetComp, ast.DictComp, ast.GeneratorExp)):
            return node
        if isinstance(node, ast.Compare):  # a < b < c stops after a false link
            node.left = self.rewrite(node.left, conditional)
            node.comparators = [self.rewrite(v, conditional or i > 0) for i, v in enumerate(node.comparators)]
            return node
        for field, value in ast.iter_fields(node):
            if isinstance(value, ast.expr) and not isinstance(value, ast.expr_context):
                setattr(node, field, self.rewrite(value, conditional))
            elif isinstance(value, list):
                setattr(node, field, [self.rewrite(v, conditional) if isinstance(v, ast.expr) else v
                                      for v in value])
        return node


def _hoist_invariants(fn: ast.FunctionDef) -> None:
    at, loop = _time_loop(fn)
    assigned = {sub.id for sub in ast.walk(loop) if isinstance(sub, ast.Name) and isinstance(sub.ctx, ast.Store)}
    hoister = _Hoister(assigned)
    for stmt in _first_step_statements(loop):
        if isinstance(stmt, (ast.Assign, ast.Expr)):
            stmt.value = hoister.rewrite(stmt.value, False)
    fn.body[at:at] = hoister.assigns


# -- values that change only with int(time) ---------------------------------------------

#: calls a reused statement may contain (pure functions of their arguments)
_PURE_FUNCTIONS = frozenset({
    "int", "abs", "_sc_min", "_sc_max", "_sc_zidz", "_sc_xidz", "_sc_quantum", "_sc_modulo",
})


def _pure_call(node: ast.Call) -> bool:
    func = node.func
    if node.keywords:
        return False
    if isinstance(func, ast.Name):
        return func.id in _PURE_FUNCTIONS or func.id.startswith("_lk_")  # lookups: tables fixed per run
    return isinstance(func, ast.Attribute) and isinstance(func.value, ast.Name) and func.value.id == "_math"


def _single_assign(stmt: ast.stmt) -> str | None:
    if isinstance(stmt, ast.Assign) and len(stmt.targets) == 1 and isinstance(stmt.targets[0], ast.Name):
        return stmt.targets[0].id
    return None


def _reads(node: ast.AST) -> set[str]:
    return {sub.id for sub in ast.walk(node) if isinstance(sub, ast.Name) and isinstance(sub.ctx, ast.Load)}


def _time_only_inside_int(node: ast.expr) -> bool:
    """Whether every ``time`` in ``node`` is inside ``int(...)`` and ``int`` is the only call."""
    inside: set[int] = set()
    for sub in ast.walk(node):
        if isinstance(sub, ast.Call):
            if not (isinstance(sub.func, ast.Name) and sub.func.id == "int"):
                return False
            inside.update(id(n) for n in ast.walk(sub))
    return all(id(sub) in inside for sub in ast.walk(node) if isinstance(sub, ast.Name) and sub.id == "time")


def _reuse_while_the_year_holds(fn: ast.FunctionDef) -> None:
    """Compute the step's equations that depend on time only through ``int(time ...)`` once per value.

    A *key* is an equation of the time loop that reads, of the loop's variables, only
    ``time``, and only inside ``int(...)`` (``data year = INTEGER(Time + ...) + 1``).  An
    equation that reads, of the loop's variables, only keys and such equations, and
    calls only pure functions, gives the same float as long as the keys are the
    same: with TIME STEP 0.5 it is computed on every other step only.  The keys and
    these equations move (in their order) to the top of the step, the latter under
    ``if (keys) != _period:``.  Every loop variable is assigned once per step, so
    the values kept are read as they would have been recomputed.
    """
    _, loop = _time_loop(fn)
    assigned = {sub.id for sub in ast.walk(loop) if isinstance(sub, ast.Name) and isinstance(sub.ctx, ast.Store)}
    body = loop.body
    end = next((i for i, stmt in enumerate(body) if isinstance(stmt, ast.If)), len(body))
    head: list[ast.Assign] = []
    targets: list[str] = []
    for stmt in body[:end]:
        name = _single_assign(stmt)
        if name is None or not isinstance(stmt, ast.Assign):
            return
        head.append(stmt)
        targets.append(name)
    if len(set(targets)) != len(targets) or not targets or targets[0] != "time":
        return
    keys: list[int] = []
    reused: list[int] = []
    known: set[str] = set()
    for i in range(1, end):
        stmt = head[i]
        reads = _reads(stmt.value) & assigned
        if reads == {"time"} and _time_only_inside_int(stmt.value):
            keys.append(i)
            known.add(targets[i])
        elif (reads and reads <= known
              and all(_pure_call(c) for c in ast.walk(stmt.value) if isinstance(c, ast.Call))
              and not any(isinstance(c, (ast.NamedExpr, ast.Lambda)) for c in ast.walk(stmt.value))):
            reused.append(i)
            known.add(targets[i])
    stores = [sub.id for sub in ast.walk(loop) if isinstance(sub, ast.Name) and isinstance(sub.ctx, ast.Store)]
    reused = [j for j in reused if stores.count(targets[j]) == 1]  # kept values nobody else writes
    if not reused:
        return
    used_keys = [targets[i] for i in keys if any(targets[i] in _reads(head[j].value) for j in reused)]
    key: ast.expr = (ast.Name(used_keys[0], ast.Load()) if len(used_keys) == 1
                     else ast.Tuple([ast.Name(k, ast.Load()) for k in used_keys], ast.Load()))
    guard = ast.If(
        test=ast.Compare(left=key, ops=[ast.NotEq()], comparators=[ast.Name("_period", ast.Load())]),
        body=[ast.Assign(targets=[ast.Name("_period", ast.Store())], value=key), *(body[j] for j in reused)],
        orelse=[],
    )
    moved = set(keys) | set(reused)
    rest = [stmt for i, stmt in enumerate(body[:end]) if i and i not in moved]
    loop.body = [body[0], *(body[i] for i in keys), guard, *rest, *body[end:]]
    at, _ = _time_loop(fn)
    fn.body.insert(at, ast.Assign(targets=[ast.Name("_period", ast.Store())], value=ast.Constant(None)))


# -- MIN / MAX inline --------------------------------------------------------------


def _nan_free_number(node: ast.expr) -> bool:
    return (isinstance(node, ast.Constant) and type(node.value) in (int, float)
            and node.value == node.value)


class _InlineMinMax(ast.NodeTransformer):
    def __init__(self) -> None:
        self.counter = itertools.count()

    def _operand(self, node: ast.expr) -> tuple[ast.expr, ast.expr]:
        """(first use, later use): a name or number as is, else a ':=' temporary."""
        if isinstance(node, (ast.Name, ast.Constant)):
            return node, node
        name = f"_m{next(self.counter)}"
        return ast.NamedExpr(target=ast.Name(name, ast.Store()), value=node), ast.Name(name, ast.Load())

    def visit_Call(self, node: ast.Call) -> ast.expr:
        self.generic_visit(node)
        func = node.func
        if not (isinstance(func, ast.Name) and func.id in ("_sc_min", "_sc_max")
                and len(node.args) == 2 and not node.keywords):
            return node
        a, b = node.args
        a_first, a_again = self._operand(a)
        b_first, b_again = self._operand(b)
        op = ast.LtE() if func.id == "_sc_min" else ast.GtE()
        test: ast.expr = ast.Compare(left=a_first, ops=[op], comparators=[b_first])
        if not _nan_free_number(a):
            test = ast.BoolOp(op=ast.Or(), values=[
                test, ast.Compare(left=a_again, ops=[ast.NotEq()], comparators=[a_again])])
        return ast.IfExp(test=test, body=a_again, orelse=b_again)
