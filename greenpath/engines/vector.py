"""Vectorised ensemble engine generated from a Vensim model through PySD.

The model is parsed by PySD's own Vensim translator
(``VensimFile(path).parse(); .get_abstract_model()``) and its abstract syntax
tree is compiled into one straight-line Python function in which every model
variable is a NumPy value over the scenario axis: N scenarios -- each with its
own constants and, optionally, its own lookup tables -- are integrated in one
pass.  There is no hand-written second copy of the equations, and the
arithmetic of every construct copies PySD 3.14's operation for operation
(Euler step ``state + ddt*dt``, stateful initialisation in dependency order,
the SMOOTH/DELAY update formulas and DELAY order reduction, ``np.interp``
lookups, IF THEN ELSE, STEP, RAMP, PULSE, ...), so results equal
``pysd.read_vensim(...).run()`` to rounding: bit for bit for most values, but
not all -- NumPy evaluates ``array ** 0.5`` (``x ^ TIME STEP``) as ``sqrt``
and Python's float power as ``pow``, which differ by one ulp for a small
fraction of arguments, and that ulp propagates (relative differences of
order 1e-14; larger relative, tiny absolute, where ``(1 + x) ^ TIME STEP -
1`` cancels for ``x`` near zero).  ``tests/runners/test_ensemble.py`` requires
1e-9 relative agreement on every saved variable and year of the real model.
Python names come from PySD's NamespaceManager.

Public API
----------
``generate(mdl_path) -> str``
    Source of a self-contained module (needs only NumPy) defining
    ``simulate(params=None, n=1, lookups=None, initial_time=None,
    final_time=None, time_step=None, saveper=None, return_columns=None)
    -> dict[str, ndarray of shape (n, n_saved)]``, ``saved_times(...)``,
    ``VARIABLES`` (py_name, name, units, documentation, kind =
    constant/auxiliary/stock/lookup/control/time, default, dynamic),
    ``CONSTANTS``, ``LOOKUPS``, ``CONTROL`` and ``NAMES`` (Vensim -> Python).
``simulate_one(params=None, lookups=None, ...)`` in the same module is the
    scalar backend: one scenario, the same inputs and outputs.
``VectorModel(mdl_path, cache_dir=None)``
    Generates once and caches the module in ``cache_dir`` (default
    ``<mdl folder>/.cache/vector``) under a hash of the .mdl text, the PySD
    version and this generator's source; ``.simulate()`` returns the raw
    dict, ``.run()`` an ``xarray.Dataset`` (dims scenario x time);
    ``workers=2`` forks a second process (Linux) for large ensembles.
``UnsupportedConstructError``
    Raised by ``generate`` naming the variable and the construct.

Inputs: ``params`` maps constants (Python or Vensim name) to a scalar or an
(n,) array; unknown names raise KeyError.  ``lookups`` maps a lookup (or a
WITH LOOKUP variable) to ``(x (k,), y (k,) or (n, k))``; ends are clamped.
Output columns are keyed as requested (default: every non-lookup variable by
Python name) at PySD's saved times (every SAVEPER from INITIAL TIME, and
values at a time come from the state at that time, before its update).

Supported: INTEG, SMOOTH, SMOOTHI, SMOOTH3, SMOOTH3I, SMOOTH N, DELAY1,
DELAY1I, DELAY3, DELAY3I, DELAY N, DELAY FIXED (PySD's pipe: the slot count
fixed at initialisation, the same in every scenario of a call), TREND,
FORECAST, SAMPLE IF TRUE, INITIAL, ACTIVE INITIAL, GET TIME VALUE(0, offset,
0) (the time plus the offset; its calendar and clock readings are refused),
named lookups called as ``name(x)``, WITH LOOKUP, IF THEN ELSE, MIN, MAX, ABS, EXP, LN, LOG, SQRT,
POWER, SIN/COS/TAN/ARCSIN/ARCCOS/ARCTAN/SINH/COSH/TANH, PI, INTEGER, MODULO,
QUANTUM, STEP, RAMP, PULSE, PULSE TRAIN, XIDZ, ZIDZ, GAME, the arithmetic,
comparison and :AND: / :OR: / :NOT: operators, Time and the control variables
INITIAL TIME, FINAL TIME, TIME STEP, SAVEPER; GET XLS/DIRECT CONSTANTS, LOOKUPS
and DATA (DATA variables read by GET, with the keywords INTERPOLATE, RAW, HOLD
BACKWARD, LOOK FORWARD): read once at generation by PySD's own ``External``
classes into constants, lookup tables and time series written into the module
(the data files' contents are part of the cache key).
Stateful functions may be nested in each other's arguments at any depth
(each gets its own state, named after the ones nested in it).

Subscripts are unrolled at generation: a subscripted variable becomes one
variable per element (Python name ``<py_name>__<k>``, Vensim name
``name[e1,e2]`` as PySD names its output columns), each with the equation of
the definition covering it, so element-wise and multi-equation definitions,
:EXCEPT:, subranges, mappings between ranges (position by position), array
constants and ELMCOUNT resolve to plain references, and SUM/PROD/VMIN/VMAX
over ``range!`` to one term per element.  Every element is still an array
over the scenario axis (vectorised over scenarios, not over subscripts).

Macros are inlined at each call (every call with its own nodes and states,
the parameters bound to the caller's expressions); inside a macro only INTEG
and INITIAL are allowed among the stateful functions.

Refused at generation (naming the variable and the construct): macros that
call themselves, have several outputs, subscripts or other stateful functions
inside, DATA variables not read by GET XLS/DIRECT DATA, GET XLS/DIRECT SUBSCRIPT, GET TIME VALUE
other than (0, offset, 0), ALLOCATE *, RANDOM *, INVERT
MATRIX, VECTOR SELECT and any other function, control variables depending on
model variables, subscript ranges not given as element lists (read from a
file), mappings with element lists, a range on the right-hand side that is
neither on the left nor mapped nor reduced, algebraic loops, and the cases
below where PySD's result hinges on something the engine does not reproduce.

Known differences from PySD: in the vector backend both branches of IF THEN
ELSE / XIDZ / ZIDZ are evaluated (NumPy runs under ``errstate(all="ignore")``),
so a division by zero gives inf/nan where PySD would raise ZeroDivisionError
(the scalar backend evaluates lazily and raises as PySD does; ``math``
functions raise ValueError/OverflowError outside their domain where NumPy
gives nan/inf); no lookup extrapolation warnings.  DELAY FIXED and SAMPLE IF
TRUE take their input (and condition) at the current time, before any state
moves, as Vensim does (the corpus's canonical outputs agree); PySD reads them
while it updates its objects one by one, which gives the same result unless
the input depends, through a variable PySD has not cached in that step, on a
state updated before it.  PySD's int64 quirk (a SMOOTH whose initial value, or
a DELAY N whose delay time, is a Python int at initialisation truncates its
input / delay times) is reproduced when the int-ness follows from literals,
constants and parameter types; where it hinges on the IF THEN ELSE branch
taken at initialisation, or on a true/false value, the model is refused.
Also refused: a DELAY N whose delay time varies read (directly or through
variables) by a stateful function's update -- PySD's DelayN replaces its
delay-times array during the update, so its result there depends on the
order it updates its objects and on SAVEPER.
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
import re
import sys
import warnings
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NoReturn

import numpy as np

from greenpath.engines import _scalar_passes
from greenpath.engines import cache as _gp_cache

__all__ = [
    "AUTO_SCALAR_MAX_RUNS",
    "UnsupportedConstructError",
    "VectorModel",
    "cache_key",
    "external_files",
    "generate",
]

_RUNTIME_PATH = Path(__file__).with_name("_vector_runtime.py")
#: ``backend="auto"`` runs up to this many scenarios one by one on the scalar
#: backend (about 1-2 ms each for the city model), more in one NumPy pass (about
#: 10-25 ms whatever the number up to a few hundred); see benchmarks/bench_vector.py.
AUTO_SCALAR_MAX_RUNS = 8
_CONTROL_NAMES = ("initial_time", "final_time", "time_step", "saveper")


class UnsupportedConstructError(ValueError):
    """A model construct the vector engine does not implement."""

    def __init__(self, variable: str, construct: str, detail: str = "") -> None:
        self.variable = variable
        self.construct = construct
        message = f"variable {variable!r} uses {construct}, which the vector engine does not support"
        if detail:
            message += f" ({detail})"
        super().__init__(message)


# ---------------------------------------------------------------------------
# Code generation
# ---------------------------------------------------------------------------

# PySD's OperationBuilder templates and arithmetic orders (numpy as _np).
_OPERATORS = {
    "^": ("%(left)s**%(right)s", 1),
    "*": ("%(left)s*%(right)s", 2),
    "/": ("%(left)s/%(right)s", 2),
    "+": ("%(left)s + %(right)s", 3),
    "-": ("%(left)s - %(right)s", 3),
    "=": ("%(left)s == %(right)s", 4),
    "<>": ("%(left)s != %(right)s", 4),
    ">=": ("%(left)s >= %(right)s", 4),
    ">": ("%(left)s > %(right)s", 4),
    "<=": ("%(left)s <= %(right)s", 4),
    "<": ("%(left)s < %(right)s", 4),
    ":NOT:": ("_np.logical_not(%s)", 0),
    ":AND:": ("_np.logical_and(%(left)s, %(right)s)", 0),
    ":OR:": ("_np.logical_or(%(left)s, %(right)s)", 0),
    "negative": ("-%s", 3),
}

# Vensim function (as named in PySD's AST) -> (template, number of arguments,
# extra variables the template reads).  Mirrors pysd's python_functions.py.
_FUNCTIONS: dict[str, tuple[str, tuple[int, ...], tuple[str, ...]]] = {
    "abs": ("_np.abs(%s)", (1,), ()),
    "min": ("_np.minimum(%s, %s)", (2,), ()),
    "max": ("_np.maximum(%s, %s)", (2,), ()),
    "exp": ("_np.exp(%s)", (1,), ()),
    "ln": ("_np.log(%s)", (1,), ()),
    "log": ("(_np.log(%s)/_np.log(%s))", (2,), ()),
    "sqrt": ("_np.sqrt(%s)", (1,), ()),
    "power": ("_np.power(%s,%s)", (2,), ()),
    "sin": ("_np.sin(%s)", (1,), ()),
    "cos": ("_np.cos(%s)", (1,), ()),
    "tan": ("_np.tan(%s)", (1,), ()),
    "arcsin": ("_np.arcsin(%s)", (1,), ()),
    "arccos": ("_np.arccos(%s)", (1,), ()),
    "arctan": ("_np.arctan(%s)", (1,), ()),
    "sinh": ("_np.sinh(%s)", (1,), ()),
    "cosh": ("_np.cosh(%s)", (1,), ()),
    "tanh": ("_np.tanh(%s)", (1,), ()),
    "pi": ("_np.pi", (0,), ()),
    "if_then_else": ("_np.where(%s, %s, %s)", (3,), ()),
    "integer": ("_np.trunc(%s)", (1,), ()),
    "modulo": ("_modulo(%s, %s)", (2,), ()),
    "quantum": ("_quantum(%s, %s)", (2,), ()),
    "xidz": ("_xidz(%s, %s, %s)", (3,), ()),
    "zidz": ("_zidz(%s, %s)", (2,), ()),
    "step": ("_step(time, time_step, %s, %s)", (2,), ("time", "time_step")),
    "ramp": ("_ramp(time, %s)", (2, 3), ("time",)),
    "pulse": ("_pulse(time, %s, %s)", (2,), ("time",)),
    "pulse_train": ("_pulse_train(time, %s, %s, %s, %s)", (4,), ("time",)),
}

# The scalar backend's templates: Python floats, the math module and the
# scalar helpers of _vector_runtime.py (PySD's own scalar arithmetic).
_SCALAR_OPERATORS = {
    **_OPERATORS,
    ":NOT:": ("(not %s)", 0),
    ":AND:": ("(bool(%(left)s) and bool(%(right)s))", 0),
    ":OR:": ("(bool(%(left)s) or bool(%(right)s))", 0),
}
_SCALAR_FUNCTIONS: dict[str, str] = {
    "abs": "abs(%s)",
    "min": "_sc_min(%s, %s)",
    "max": "_sc_max(%s, %s)",
    "exp": "_math.exp(%s)",
    "ln": "_math.log(%s)",
    "log": "(_math.log(%s)/_math.log(%s))",
    "sqrt": "_math.sqrt(%s)",
    "power": "_math.pow(%s,%s)",
    "sin": "_math.sin(%s)",
    "cos": "_math.cos(%s)",
    "tan": "_math.tan(%s)",
    "arcsin": "_math.asin(%s)",
    "arccos": "_math.acos(%s)",
    "arctan": "_math.atan(%s)",
    "sinh": "_math.sinh(%s)",
    "cosh": "_math.cosh(%s)",
    "tanh": "_math.tanh(%s)",
    "pi": "_math.pi",
    "if_then_else": "(%(1)s if %(0)s else %(2)s)",
    "integer": "int(%s)",
    "modulo": "_sc_modulo(%s, %s)",
    "quantum": "_sc_quantum(%s, %s)",
    "xidz": "_sc_xidz(%s, %s, %s)",
    "zidz": "_sc_zidz(%s, %s)",
    "step": "_sc_step(time, time_step, %s, %s)",
    "ramp": "_sc_ramp(time, %s)",
    "pulse": "_sc_pulse(time, %s, %s)",
    "pulse_train": "_sc_pulse_train(time, %s, %s, %s, %s)",
}
assert set(_SCALAR_FUNCTIONS) == set(_FUNCTIONS)

_STRUCTURE_NAMES = {
    "DelayFixedStructure": "DELAY FIXED",
    "TrendStructure": "TREND",
    "ForecastStructure": "FORECAST",
    "SampleIfTrueStructure": "SAMPLE IF TRUE",
    "AllocateAvailableStructure": "ALLOCATE AVAILABLE",
    "AllocateByPriorityStructure": "ALLOCATE BY PRIORITY",
    "GetConstantsStructure": "GET XLS/DIRECT CONSTANTS",
    "GetDataStructure": "GET XLS/DIRECT DATA",
    "GetLookupsStructure": "GET XLS/DIRECT LOOKUPS",
    "DataStructure": "a DATA variable",
    "SubscriptsReferenceStructure": "subscripts",
    "ndarray": "a subscripted (array) constant",
}

_IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_NUMBER = re.compile(r"^-?[0-9.]+(e[-+]?[0-9]+)?$")


@dataclass
class _Expr:
    code: str
    order: int
    refs: set[str] = field(default_factory=set)
    lookups: bool = False


@dataclass
class _Node:
    name: str
    code: str
    refs: set[str]
    kind: str  # "element", "hidden", "const", "control", "time"
    element: str  # original Vensim name (for messages)
    dynamic: bool = False
    # ACTIVE INITIAL: the code and references in force during initialisation
    init_code: str | None = None
    init_refs: set[str] = field(default_factory=set)


@dataclass
class _State:
    name: str
    kind: str  # "integ", "integ_nn", "smooth", "delay", "delayn", "initial"
    element: str
    args: dict[str, _Expr]
    # SMOOTH whose initial value is a Python int in PySD: names whose
    # int-typedness that relies on (see _Generator._int_typed)
    int_init: frozenset[str] | None = None

    @property
    def dynamic(self) -> bool:
        return self.kind != "initial"


@dataclass
class _Unit:
    """One equation to compile: a variable, or one element of a subscripted one.

    Subscripts are unrolled: ``x[d1, d2]`` becomes one node per element tuple,
    each with the equation of the component defining it, visited with
    ``binding`` (range name, lower case -> element) so that references over
    those ranges pick the matching elements.
    """

    node: str
    display: str  # Vensim name, with [elements] for an element
    element: Any  # PySD's AbstractElement
    component: Any  # the AbstractComponent defining it
    binding: dict[str, str]
    index: tuple[int, ...] | None = None  # position in an array constant
    index_ranges: tuple[tuple[str, ...], ...] = ()


_REDUCERS = {"sum": ("+", None), "prod": ("*", None), "vmin": (None, "min"), "vmax": (None, "max")}


def _lower(expr: _Expr, new_order: int) -> None:
    """PySD's BuildAST.lower_order: parenthesise when precedence requires."""
    if expr.order >= new_order and expr.order != 0 and new_order != 0:
        expr.code = f"({expr.code})"
        expr.order = 0


def _pysd_float_list(values) -> list[float]:
    """Table values exactly as PySD's translation writes them.

    PySD prints lookup tables with ``np.array2string`` (default precision 8)
    into the translated model, so its runs use those rounded values.
    """
    arr = np.array(values)
    text = np.array2string(arr, separator=",", threshold=max(len(arr), 1))
    return [float(v) for v in text.strip("[]").replace("\n", " ").split(",") if v.strip()]


def _table(element: str, x_values, y_values) -> tuple[tuple[float, ...], tuple[float, ...]]:
    x = _pysd_float_list(x_values)
    y = _pysd_float_list(y_values)
    if len(x) != len(y) or not x:
        raise UnsupportedConstructError(element, "a lookup whose x and y differ in length")
    if len(set(x)) != len(x):
        raise UnsupportedConstructError(element, "a lookup with repeated x values")
    order = sorted(range(len(x)), key=lambda i: x[i])  # PySD sorts by x
    return tuple(x[i] for i in order), tuple(y[i] for i in order)


def _number(value) -> str:
    value = float(value)
    if np.isnan(value):
        return "_nan"
    if np.isinf(value):
        return "_inf" if value > 0 else "-_inf"
    return repr(value)


class _Generator:
    def __init__(self, mdl_path: str | os.PathLike, scalar: bool = False) -> None:
        from pysd.builders.python.namespace import NamespaceManager
        from pysd.translators.vensim.vensim_file import VensimFile

        self.mdl_path = Path(mdl_path)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            vf = VensimFile(str(self.mdl_path))
            vf.parse()
            am = vf.get_abstract_model()
        self.section = am.sections[0]
        # macros (inlined at each call): clean name -> (section, params' and elements' clean names)
        self.macros: dict[str, tuple[Any, list[str], dict[str, str]]] = {}
        for section in am.sections[1:]:
            names = NamespaceManager(section.params)
            for element in section.elements:
                names.add_to_namespace(element.name)
            clean = {v: k for k, v in names.cleanspace.items()}
            params = [clean.get(names.namespace.get(p, p), p) for p in section.params]
            elements = {el.name: clean[names.namespace[el.name]] for el in section.elements}
            self.macros[section.name] = (section, params, elements)
        # Python names exactly as PySD's SectionBuilder assigns them.
        namespace = NamespaceManager(self.section.params)
        for element in self.section.elements:
            namespace.add_to_namespace(element.name)
        self.cleanspace = dict(namespace.cleanspace)
        self.py_names = {el.name: namespace.namespace[el.name] for el in self.section.elements}
        self.py_name_set = set(self.cleanspace.values())
        self._base_py_names = frozenset(self.py_name_set)
        self._ext: dict[str, Any] | None = None
        self._reset(scalar)

    def _reset(self, scalar: bool) -> None:
        """Empty tables for a build; ``scalar`` selects the scalar backend's code."""
        self.scalar = scalar
        self.operators = _SCALAR_OPERATORS if scalar else _OPERATORS
        self.nodes: dict[str, _Node] = {"time": _Node("time", "", set(), "time", "Time", dynamic=True)}
        self.states: list[_State] = []
        self.hidden_by_code: dict[str, str] = {}
        self.lookups: dict[str, tuple[tuple[float, ...], tuple[float, ...]]] = {}
        self.lookup_elements: set[str] = set()
        self.data_tables: dict[str, tuple[tuple[float, ...], tuple[float, ...], str]] = {}
        self.control: dict[str, _Expr] = {}
        self.constants: dict[str, float] = {}
        self.meta: list[dict[str, Any]] = []
        self._element = ""
        self._element_kinds: dict[str, str] = {}
        self.units: list[_Unit] = []
        self._unit_by_node: dict[str, _Unit] = {}
        self.subscripted: dict[str, dict[tuple[str, ...], str]] = {}
        self._binding: dict[str, str] = {}
        self._node = ""
        self._scope: dict[str, str] | None = None  # inside a macro: its names -> nodes
        self._macro_stack: tuple[str, ...] = ()
        self._macro_calls = 0

    # -- subscripts (unrolled into one node per element) -------------------

    def _read_ranges(self) -> None:
        """Subscript ranges (lower-case name -> elements as written) and mappings.

        A range listed among another's elements is replaced by its elements, and
        a copy (``B <-> A``, given as A's name) has A's elements.
        """
        raw = {}
        for rng in self.section.subscripts:
            self._element = rng.name
            subs = [rng.subscripts] if isinstance(rng.subscripts, str) else rng.subscripts
            if not isinstance(subs, (list, tuple)) or not all(isinstance(e, str) for e in subs):
                self._refuse("a subscript range not given as a list of elements (e.g. read from a file)")
            raw[rng.name.lower()] = (rng.name, list(subs))

        def expand(key: str, stack: tuple[str, ...]) -> list[str]:
            out: list[str] = []
            for item in raw[key][1]:
                sub = item.lower()
                if sub in raw and sub != key:
                    if sub in stack:
                        raise UnsupportedConstructError(raw[key][0], "a circular subscript range definition")
                    out.extend(expand(sub, (*stack, key)))
                else:
                    out.append(item)
            return out

        self.ranges: dict[str, tuple[str, ...]] = {}
        self.mappings: dict[str, set[str]] = {}
        for rng in self.section.subscripts:
            self._element = rng.name
            elements = expand(rng.name.lower(), ())
            if len({e.lower() for e in elements}) != len(elements):
                self._refuse("a subscript range with a repeated element")
            self.ranges[rng.name.lower()] = tuple(elements)
            mapped = set()
            for target in rng.mapping or ():
                if not isinstance(target, str):
                    self._refuse("a subscript mapping with an element list")
                mapped.add(target.lower())
            self.mappings[rng.name.lower()] = mapped
        self.element_names = {e.lower(): e for elements in self.ranges.values() for e in elements}

    def _subscript_name(self, reference: str) -> tuple[str, str] | None:
        """("range" or "element", lower-case name) of a plain reference naming a subscript."""
        key = reference.lower()
        for kind, names in (("range", getattr(self, "ranges", {})), ("element", getattr(self, "element_names", {}))):
            for name in names:
                if key in (name, name.replace(" ", "_")):
                    return kind, name
        return None

    def _lhs_options(self, sub: str) -> list[tuple[str | None, str]]:
        """(range or None, element) choices of one left-hand-side subscript."""
        key = sub.lower()
        if key in self.ranges:
            return [(key, e) for e in self.ranges[key]]
        if key in self.element_names:
            return [(None, self.element_names[key])]
        self._refuse("an unknown subscript", repr(sub))
        raise AssertionError  # pragma: no cover

    def _expand_units(self) -> None:
        """One unit per variable, or per element of a subscripted variable."""
        from itertools import product

        self._read_ranges()
        self.units = []
        self.subscripted = {}
        taken = set(self._base_py_names)
        for element in self.section.elements:
            py = self.py_names[element.name]
            self._element = element.name
            if not any(c.subscripts[0] for c in element.components):
                if len(element.components) != 1:
                    self._refuse("a multi-equation definition without subscripts")
                self.units.append(_Unit(py, element.name, element, element.components[0], {}))
                continue
            table: dict[tuple[str, ...], str] = {}
            arity = None
            for component in element.components:
                lhs, excepts = component.subscripts
                if not lhs:
                    self._refuse("a variable defined both with and without subscripts")
                if arity is None:
                    arity = len(lhs)
                elif len(lhs) != arity:
                    self._refuse("definitions with different numbers of subscripts")
                options = [self._lhs_options(sub) for sub in lhs]
                excluded: set[tuple[str, ...]] = set()
                for exception in excepts or ():
                    if len(exception) != len(lhs):
                        self._refuse("an :EXCEPT: with another number of subscripts")
                    ex_options = [self._lhs_options(sub) for sub in exception]
                    excluded.update(tuple(e.lower() for _, e in combo) for combo in product(*ex_options))
                index_ranges = tuple(self.ranges[sub.lower()] for sub in lhs if sub.lower() in self.ranges)
                for combo in product(*options):
                    key = tuple(e.lower() for _, e in combo)
                    if key in excluded:
                        continue
                    if key in table:
                        self._refuse("an element defined twice", ", ".join(e for _, e in combo))
                    node = f"{py}__{len(table)}"
                    if node in taken:
                        self._refuse("an element whose Python name is taken", node)
                    taken.add(node)
                    table[key] = node
                    binding = {rng: e for rng, e in combo if rng is not None}
                    index = tuple(self.ranges[rng].index(e) for rng, e in combo if rng is not None)
                    display = f"{element.name}[{','.join(e for _, e in combo)}]"
                    self.units.append(_Unit(node, display, element, component, binding, index, index_ranges))
            self.subscripted[py] = table
        self.py_name_set = taken
        self._unit_by_node = {unit.node: unit for unit in self.units}

    def _enter(self, unit: _Unit) -> None:
        self._element = unit.display
        self._node = unit.node
        self._binding = unit.binding

    def _subscript_element(self, sub: str) -> str:
        """Element (lower case) a reference subscript stands for under the current binding."""
        key = sub.lower()
        if key.endswith("!"):
            key = key[:-1].rstrip()
            if key not in self._binding:
                self._refuse("a reducer subscript (name!) outside SUM/PROD/VMIN/VMAX", repr(sub))
        if key in self._binding:
            return self._binding[key].lower()
        if key in self.ranges:
            # a range mapped to or from a bound range: the element at the same position
            for bound, element in self._binding.items():
                if bound in self.mappings.get(key, ()) or key in self.mappings.get(bound, ()):
                    if len(self.ranges[bound]) != len(self.ranges[key]):
                        self._refuse("a subscript mapping between ranges of different lengths", repr(sub))
                    position = [e.lower() for e in self.ranges[bound]].index(element.lower())
                    return self.ranges[key][position].lower()
            # a range holding the element bound to another one (a subrange and its parent)
            found = {
                element.lower()
                for element in self._binding.values()
                if element.lower() in {e.lower() for e in self.ranges[key]}
            }
            if len(found) == 1:
                return found.pop()
            self._refuse("a reference over a subscript range that is not on the left-hand side", repr(sub))
        if key in self.element_names:
            return key
        self._refuse("an unknown subscript", repr(sub))
        raise AssertionError  # pragma: no cover

    def _resolve_element(self, ast) -> str:
        """Node of the element a (subscripted) reference picks."""
        py = self._resolve(ast.reference)
        table = self.subscripted.get(py) if py is not None else None
        if table is None:
            self._refuse("subscripts on a variable defined without them", repr(ast.reference))
        if ast.subscripts is None:  # a subscripted variable named alone: its own subscripts
            unit = next(u for u in self.units if u.node == next(iter(table.values())))
            subs = list(unit.component.subscripts[0])
        else:
            subs = list(ast.subscripts.subscripts)
        key = tuple(self._subscript_element(sub) for sub in subs)
        node = table.get(key)
        if node is None:
            self._refuse("a reference to an element that is not defined", f"{ast.reference}{list(key)}")
        return node

    def _bang_ranges(self, ast, found: list[str]) -> list[str]:
        from pysd.translators.structures import abstract_expressions as ae

        if isinstance(ast, ae.ReferenceStructure) and ast.subscripts is not None:
            for sub in ast.subscripts.subscripts:
                key = sub.lower()
                if key.endswith("!") and key[:-1].rstrip() not in found:
                    found.append(key[:-1].rstrip())
        if isinstance(ast, ae.AbstractSyntax):
            for child in vars(ast).values():
                self._bang_ranges(child, found)
        elif isinstance(ast, (list, tuple)):
            for child in ast:
                self._bang_ranges(child, found)
        return found

    def _visit_reducer(self, function: str, ast) -> _Expr:
        """SUM/PROD/VMIN/VMAX over the ranges marked ``name!``: one term per element."""
        from itertools import product

        if len(ast.arguments) != 1:
            self._refuse(f"{function.upper()} with {len(ast.arguments)} arguments")
        ranges = self._bang_ranges(ast.arguments[0], [])
        if not ranges:
            self._refuse(f"{function.upper()} without a subscript marked with !")
        for rng in ranges:
            if rng not in self.ranges:
                self._refuse("an unknown subscript range", repr(rng))
        outer = self._binding
        terms = []
        try:
            for combo in product(*(self.ranges[rng] for rng in ranges)):
                self._binding = {**outer, **dict(zip(ranges, combo, strict=True))}
                terms.append(self.visit(ast.arguments[0]))
        finally:
            self._binding = outer
        refs = set().union(*(t.refs for t in terms))
        lookups = any(t.lookups for t in terms)
        operator, extreme = _REDUCERS[function]
        if operator is not None:
            for term in terms:
                _lower(term, 2 if operator == "*" else 3)
            code = "(" + f" {operator} ".join(t.code for t in terms) + ")"
        else:
            pair = (
                ("_sc_min(%s, %s)" if self.scalar else "_np.minimum(%s, %s)")
                if extreme == "min"
                else ("_sc_max(%s, %s)" if self.scalar else "_np.maximum(%s, %s)")
            )
            code = terms[0].code
            for term in terms[1:]:
                code = pair % (code, term.code)
        return _Expr(code, 0, refs, lookups)

    def _visit_active_initial(self, ast) -> _Expr:
        """ACTIVE INITIAL(active, initial): ``initial`` while initialising, then ``active``.

        A hidden node with two codes; it counts as time-dependent (PySD's
        ``active_initial`` switches on the time object's stage), so it is
        recomputed in the run even when ``active`` is a constant.
        """
        if len(ast.arguments) != 2:
            self._refuse(f"ACTIVE INITIAL with {len(ast.arguments)} arguments")
        active, initial = (self.visit(arg) for arg in ast.arguments)
        name = f"_ai{sum(1 for n in self.nodes if n.startswith('_ai'))}"
        self.nodes[name] = _Node(
            name,
            active.code,
            set(active.refs) | {"time"},
            "hidden",
            self._element,
            init_code=initial.code,
            init_refs=set(initial.refs),
        )
        return _Expr(name, 0, {name}, active.lookups or initial.lookups)

    def _visit_get_time_value(self, ast) -> _Expr:
        """GET TIME VALUE(0, offset, 0): the current time plus the offset, as PySD computes it.

        PySD 3.14 implements only that reading reproducibly (relative to the
        current time, in the model's units of time); the others need the
        computer's clock, or PySD raises or returns nothing: refused.
        """
        if len(ast.arguments) != 3:
            self._refuse(f"GET TIME VALUE with {len(ast.arguments)} arguments")
        relativeto, offset, measure = ast.arguments
        literal = (int, float, np.integer, np.floating)
        if not (isinstance(relativeto, literal) and isinstance(measure, literal)) or (
            float(relativeto),
            float(measure),
        ) != (0.0, 0.0):
            self._refuse("GET TIME VALUE other than (0, offset, 0) (calendar or clock readings)")
        arg = self.visit(offset)
        _lower(arg, self.operators["+"][1])
        return _Expr(f"(time + {arg.code})", 0, {"time", *arg.refs}, arg.lookups)

    def _visit_elmcount(self, ast) -> _Expr:
        from pysd.translators.structures import abstract_expressions as ae

        arg = ast.arguments[0] if len(ast.arguments) == 1 else None
        named = self._subscript_name(arg.reference) if isinstance(arg, ae.ReferenceStructure) else None
        if named is None or named[0] != "range":
            self._refuse("ELMCOUNT of something other than a subscript range")
        return _Expr(_number(len(self.ranges[named[1]])), 0)

    # -- external data (GET XLS/DIRECT *), read once at generation ------------

    def _externals(self) -> dict[str, Any]:
        """PySD's External objects of the model, initialised (their files read).

        The model is translated by PySD into a temporary folder (so nothing is
        written beside the .mdl), its External objects are pointed at the
        .mdl's folder and initialised: the values are PySD's own, read by its
        own code, with its handling of missing values.
        """
        if self._ext is None:
            import shutil
            import tempfile

            import pysd
            from pysd.py_backend.external import Excels, External

            with tempfile.TemporaryDirectory() as tmp, warnings.catch_warnings():
                warnings.simplefilter("ignore")
                copy = Path(tmp) / self.mdl_path.name
                shutil.copy(self.mdl_path, copy)
                model = pysd.read_vensim(str(copy), initialize=False)
                externals = {}
                Excels.clean()  # PySD caches the files it read by path: read them afresh
                try:
                    for name in dir(model.components):
                        obj = getattr(model.components, name)
                        if isinstance(obj, External):
                            obj.root = self.mdl_path.resolve().parent
                            obj.initialize()
                            externals[obj.py_name] = obj
                finally:
                    Excels.clean()
            self._ext = externals
        return self._ext

    def _external(self, prefix: str, unit: _Unit, extra_dim: str | None):
        """Return the External object ``prefix``_<py name> (e.g. ``_ext_data``) and the unit's values.

        The values are a float (``extra_dim`` None) or a 1-D array along
        ``extra_dim`` ("time" for data, "lookup_dim" for lookups).
        """
        py = self.py_names[unit.element.name]
        ext = self._externals().get(f"{prefix}_{py}")
        if ext is None:
            self._refuse("an external read PySD does not name as expected", f"{prefix}_{py}")
        data = ext.data
        table = self.subscripted.get(py)
        key = () if table is None else next(k for k, node in table.items() if node == unit.node)
        if not hasattr(data, "dims"):
            if key or extra_dim is not None:
                self._refuse("an external read whose shape does not match its subscripts")
            return ext, float(data)
        dims = [d for d in data.dims if d != extra_dim]
        if len(dims) != len(key):
            self._refuse("an external read whose shape does not match its subscripts")
        selection = {}
        for dim, element in zip(dims, key, strict=True):
            coords = [str(c).lower() for c in data.coords[dim].values]
            if element not in coords:
                self._refuse("an external read without the element", element)
            selection[dim] = coords.index(element)
        values = data.isel(selection)
        if extra_dim is None:
            return ext, float(values)
        return ext, values.transpose(extra_dim).values

    # -- AST visiting -----------------------------------------------------

    def _refuse(self, construct: str, detail: str = "") -> NoReturn:
        raise UnsupportedConstructError(self._element, construct, detail)

    def visit(self, ast) -> _Expr:
        from pysd.translators.structures import abstract_expressions as ae

        if isinstance(ast, bool):
            return _Expr(repr(float(ast)), 0)
        if isinstance(ast, (int, float, np.integer, np.floating)):
            return _Expr(_number(ast), 0)
        if isinstance(ast, (ae.ArithmeticStructure, ae.LogicStructure)):
            return self._visit_operation(ast)
        if isinstance(ast, ae.ReferenceStructure):
            return self._visit_reference(ast)
        if isinstance(ast, ae.CallStructure):
            return self._visit_call(ast)
        if isinstance(ast, ae.GameStructure):
            return self.visit(ast.expression)
        if isinstance(ast, ae.IntegStructure):
            kind = "integ_nn" if ast.non_negative else "integ"
            return self._stateful(kind, flow=ast.flow, initial=ast.initial)
        if isinstance(ast, (ae.SmoothStructure, ae.SmoothNStructure)):
            return self._stateful(
                "smooth",
                input=ast.input,
                smooth_time=ast.smooth_time,
                initial=ast.initial,
                order=ast.order,
            )
        if isinstance(ast, ae.DelayNStructure):
            return self._stateful(
                "delayn",
                input=ast.input,
                delay_time=ast.delay_time,
                initial=ast.initial,
                order=ast.order,
            )
        if isinstance(ast, ae.DelayStructure):
            return self._stateful(
                "delay",
                input=ast.input,
                delay_time=ast.delay_time,
                initial=ast.initial,
                order=ast.order,
            )
        if isinstance(ast, ae.InitialStructure):
            return self._stateful("initial", initial=ast.initial)
        if isinstance(ast, ae.DelayFixedStructure):
            return self._stateful("delayfixed", input=ast.input, delay_time=ast.delay_time, initial=ast.initial)
        if isinstance(ast, ae.TrendStructure):
            return self._stateful(
                "trend", input=ast.input, average_time=ast.average_time, initial_trend=ast.initial_trend
            )
        if isinstance(ast, ae.ForecastStructure):
            return self._stateful(
                "forecast",
                input=ast.input,
                average_time=ast.average_time,
                horizon=ast.horizon,
                initial_trend=ast.initial_trend,
            )
        if isinstance(ast, ae.SampleIfTrueStructure):
            return self._stateful("sample", condition=ast.condition, input=ast.input, initial=ast.initial)
        if isinstance(ast, ae.InlineLookupsStructure):
            return self._visit_inline_lookup(ast)
        name = type(ast).__name__
        self._refuse(_STRUCTURE_NAMES.get(name, name))
        raise AssertionError  # pragma: no cover

    def _visit_operation(self, ast) -> _Expr:
        args = [self.visit(arg) for arg in ast.arguments]
        refs = set().union(*(a.refs for a in args))
        lookups = any(a.lookups for a in args)
        operators = list(ast.operators)
        for op in operators:
            if op not in self.operators:
                self._refuse(f"the operator {op!r}")
        order = self.operators[operators[-1]][1]
        _lower(args[-1], 2 if operators[-1] == "^" else order)
        if len(args) == 1:
            if operators[0] == "negative":
                order = 1
            return _Expr(self.operators[operators[0]][0] % args[0].code, order, refs, lookups)
        right = args.pop().code
        while args or operators:
            template = self.operators[operators.pop()][0]
            left = args.pop()
            _lower(left, order)
            right = template % {"left": left.code, "right": right}
        return _Expr(right, order, refs, lookups)

    def _resolve(self, reference: str) -> str | None:
        if self._scope is not None:
            if reference in self._scope:
                return self._scope[reference]
            if reference != "time" and reference not in _CONTROL_NAMES:
                self._refuse("a macro referring to a name that is not its own", repr(reference))
        return self.cleanspace.get(reference)

    def _visit_macro(self, ast) -> _Expr:
        """Inline one call of a macro: its variables become nodes of their own for this call.

        PySD runs each call as a separate submodel (its own states, its
        parameters bound to the caller's expressions); inlining gives each call
        its own nodes and states, which is the same computation.
        """
        function = ast.function.reference
        section, params, elements = self.macros[function]
        name = function.upper().replace("_", " ")
        if function in self._macro_stack:
            self._refuse(f"the macro {name} calling itself")
        if section.returns:
            self._refuse(f"the macro {name} with more than one output (:)")
        if len(ast.arguments) != len(params):
            self._refuse(f"the macro {name} called with {len(ast.arguments)} arguments, not {len(params)}")
        if ast.function.subscripts is not None:
            self._refuse(f"the macro {name} called with subscripts")
        call = self._macro_calls
        self._macro_calls += 1
        scope: dict[str, str] = {}
        for param, arg_ast in zip(params, ast.arguments, strict=True):
            arg = self.visit(arg_ast)  # in the caller's scope
            node = f"_m{call}_{param}"
            self.nodes[node] = _Node(node, arg.code, set(arg.refs), "hidden", self._element)
            scope[param] = node
        for element in section.elements:
            scope[elements[element.name]] = f"_m{call}_{elements[element.name]}"
        if function not in scope:
            self._refuse(f"the macro {name} without a variable named as the macro")
        outer = self._scope, self._macro_stack
        self._scope, self._macro_stack = scope, (*self._macro_stack, function)
        try:
            for element in section.elements:
                if len(element.components) != 1 or element.components[0].subscripts[0]:
                    self._refuse(f"the macro {name} with subscripted or multi-equation variables")
                node = scope[elements[element.name]]
                expr = self.visit(element.components[0].ast)
                self.nodes[node] = _Node(node, expr.code, set(expr.refs), "hidden", self._element)
        finally:
            self._scope, self._macro_stack = outer
        out = scope[function]
        return _Expr(out, 0, {out})

    def _visit_reference(self, ast) -> _Expr:
        py = self._resolve(ast.reference)
        named = self._subscript_name(ast.reference) if py is None and ast.subscripts is None else None
        if named is not None:
            # a subscript range (its element here) or an element used as a value: the
            # position (from 1) of the element in the largest range holding it (the
            # first declared of equal size), as Vensim compares elements by identity
            element = self._subscript_element(named[1]) if named[0] == "range" else named[1]
            holders = [elements for elements in self.ranges.values() if element in {e.lower() for e in elements}]
            family = max(holders, key=len)
            position = [e.lower() for e in family].index(element) + 1
            return _Expr(_number(position), 0)
        if py is None:
            self._refuse("a reference to an undefined name or subscript", repr(ast.reference))
        if py in self.subscripted or ast.subscripts is not None:
            py = self._resolve_element(ast)
        if py in self.lookup_elements:
            self._refuse("a lookup used without an argument", repr(ast.reference))
        return _Expr(py, 0, {py})

    def _visit_call(self, ast) -> _Expr:
        function = ast.function.reference
        if function in self.macros and (
            self._scope is None or function not in self._scope or function in self._macro_stack
        ):
            return self._visit_macro(ast)
        py = self._resolve(function)
        if py is not None and (py in self.subscripted or ast.function.subscripts is not None):
            py = self._resolve_element(ast.function)
        if py is None and function in _REDUCERS:
            return self._visit_reducer(function, ast)
        if py is None and function == "elmcount":
            return self._visit_elmcount(ast)
        if py is None and function == "active_initial":
            return self._visit_active_initial(ast)
        if py is None and function == "get_time_value":
            return self._visit_get_time_value(ast)
        if py is not None and py != "time":
            if py not in self.lookup_elements:
                self._refuse("calling a variable that is not a lookup", repr(function))
            if len(ast.arguments) != 1:
                self._refuse("a lookup call without exactly one argument", repr(function))
            arg = self.visit(ast.arguments[0])
            return _Expr(f"_lk_{py}({arg.code})", 0, set(arg.refs), True)
        if function not in _FUNCTIONS:
            self._refuse(f"the function {function.upper().replace('_', ' ')}")
        template, arities, extra = _FUNCTIONS[function]
        if len(ast.arguments) not in arities:
            self._refuse(f"{function.upper().replace('_', ' ')} with {len(ast.arguments)} arguments")
        args = [self.visit(arg) for arg in ast.arguments]
        refs = set(extra).union(*(a.refs for a in args))
        lookups = any(a.lookups for a in args)
        if self.scalar:
            template = _SCALAR_FUNCTIONS[function]
        if function == "ramp":
            code = template % ", ".join(a.code for a in args)
        elif self.scalar and function == "if_then_else":
            code = template % {str(i): a.code for i, a in enumerate(args)}
        else:
            code = template % tuple(a.code for a in args)
        return _Expr(code, 0, refs, lookups)

    def _visit_inline_lookup(self, ast) -> _Expr:
        from pysd.translators.structures import abstract_expressions as ae

        if not isinstance(ast.lookups, ae.LookupsStructure):
            self._refuse("WITH LOOKUP with an external table")
        if ast.lookups.type != "interpolate":
            self._refuse(f"a lookup of type {ast.lookups.type!r}")
        py = self._node
        if py in self.lookups:
            self._refuse("more than one WITH LOOKUP in one equation")
        self.lookups[py] = _table(self._element, ast.lookups.x, ast.lookups.y)
        arg = self.visit(ast.argument)
        return _Expr(f"_lk_{py}({arg.code})", 0, set(arg.refs), True)

    def _argument(self, ast) -> _Expr:
        """Stateful argument: a name, a literal, or a hidden node."""
        expr = self.visit(ast)
        if _NUMBER.match(expr.code) or (_IDENTIFIER.match(expr.code) and expr.code in self.py_name_set):
            return expr
        name = self.hidden_by_code.get(expr.code)
        if name is None:
            name = f"_h{len(self.hidden_by_code)}"
            self.hidden_by_code[expr.code] = name
            self.nodes[name] = _Node(name, expr.code, set(expr.refs), "hidden", self._element)
        return _Expr(name, 0, {name}, expr.lookups)

    def _stateful(self, kind: str, **asts) -> _Expr:
        # The arguments first: a stateful function nested in them appends its
        # own state, and this one must be named after all of those.
        args = {key: self._argument(value) for key, value in asts.items()}
        name = f"_s{len(self.states)}"
        int_init = None
        if self._scope is not None and kind not in ("integ", "integ_nn", "initial"):
            # PySD 3.14 cannot run a DELAY inside a macro (its submodel has no
            # TIME STEP), and its SMOOTH int quirk would hinge on the arguments'
            # types: only INTEG and INITIAL, which are checked against PySD
            self._refuse("a stateful function other than INTEG or INITIAL inside a macro")
        if kind in ("smooth", "delayn"):
            # PySD's state (SMOOTH) / delay-times (DELAY N) array takes the
            # dtype of its initial value: int64 when that is a Python int.
            is_int, relies_on = self._int_typed(asts["initial" if kind == "smooth" else "delay_time"])
            if is_int:
                int_init = frozenset(relies_on)
        self.states.append(_State(name, kind, self._element, args, int_init))
        if kind in ("integ", "integ_nn", "initial", "delayfixed"):
            return _Expr(name, 0, {name})
        if kind == "forecast":  # Forecast.__call__: input * (1 + zidz(input - state, avg * state) * horizon)
            inp, avg, hor = args["input"], args["average_time"], args["horizon"]
            zidz = "_sc_zidz" if self.scalar else "_zidz"
            code = f"({inp.code} * (1 + {zidz}({inp.code} - {name}, {avg.code} * {name}) * {hor.code}))"
            return _Expr(code, 0, {name} | inp.refs | avg.refs | hor.refs)
        if kind == "sample":  # SampleIfTrue.__call__: the input while the condition holds, else the state
            cond, inp = args["condition"], args["input"]
            if self.scalar:
                code = f"({inp.code} if {cond.code} else {name})"
            else:
                code = f"_np.where({cond.code}, {inp.code}, {name})"
            return _Expr(code, 0, {name} | cond.refs | inp.refs)
        if kind == "trend":  # Trend.__call__: zidz(input - state, average_time * abs(state))
            inp, avg = args["input"], args["average_time"]
            template = "_sc_zidz(%s - %s, %s * abs(%s))" if self.scalar else "_zidz(%s - %s, %s * _np.abs(%s))"
            return _Expr(template % (inp.code, name, avg.code, name), 0, {name} | inp.refs | avg.refs)
        if self.scalar:  # a list of stages: the last is the output
            if kind == "smooth":
                return _Expr(f"{name}[-1]", 0, {name})
            if kind == "delay":
                delay_time = args["delay_time"]
                return _Expr(f"({name}[-1] / {delay_time.code})", 0, {name} | delay_time.refs)
            return _Expr(f"({name}[-1] / {name}_times[0])", 0, {name})
        if kind == "smooth":
            return _Expr(f"{name}[{name}_ix]", 0, {name})
        if kind == "delay":
            delay_time = args["delay_time"]
            return _Expr(f"({name}[{name}_ix] / {delay_time.code})", 0, {name} | delay_time.refs)
        return _Expr(f"({name}[{name}_ix] / {name}_times[0])", 0, {name})

    # -- PySD's integer quirk ------------------------------------------------

    def _int_typed(self, ast, _seen: frozenset[str] = frozenset()) -> tuple[bool, set[str]]:
        """Whether PySD evaluates ``ast`` at initialisation to a Python int.

        PySD keeps Vensim integer literals as Python ints; a SMOOTH whose
        initial value is an int gets an int64 state array, so the first
        ``targets[0] = input`` of Smooth.ddt truncates the input to an
        integer.  This follows Python's typing of the translated expression;
        the returned set names the constants/control variables whose
        (default, integer) literal the answer relies on, so the engine can
        drop the quirk when they are overridden with floats at run time.
        """
        from pysd.translators.structures import abstract_expressions as ae

        if isinstance(ast, bool):
            return False, set()
        if isinstance(ast, (int, np.integer)):
            return True, set()
        if isinstance(ast, (float, np.floating)):
            return False, set()
        if isinstance(ast, ae.GameStructure):
            return self._int_typed(ast.expression, _seen)
        if isinstance(ast, ae.LogicStructure):
            # PySD would start the array as bool and truncate the input to
            # True/False; not reproduced, so not run.
            self._refuse(
                "a true/false (logical) value as a SMOOTH initial value or DELAY N delay time",
                "PySD's state array would be boolean",
            )
        if isinstance(ast, ae.ArithmeticStructure):
            if "/" in ast.operators:
                return False, set()
            if "^" in ast.operators and not all(
                isinstance(arg, (int, np.integer)) and arg >= 0 for arg in ast.arguments[1:]
            ):
                return False, set()
            return self._all_int(ast.arguments, _seen)
        if isinstance(
            ast,
            (ae.IntegStructure, ae.SmoothStructure, ae.SmoothNStructure, ae.InitialStructure, ae.DelayFixedStructure),
        ):
            return self._int_typed(ast.initial, _seen)
        if isinstance(ast, ae.ReferenceStructure):
            py = self._resolve(ast.reference)
            if py is not None and (py in self.subscripted or ast.subscripts is not None):
                py = self._resolve_element(ast)
            if py is None or py in _seen:
                return False, set()
            if py == "time":
                is_int, relies = self._element_int_typed("initial_time", _seen)
                return is_int, relies | {"initial_time"}
            is_int, relies = self._element_int_typed(py, _seen)
            kind = self._element_kinds.get(py)
            if is_int and kind in ("constant", "control"):
                relies = relies | {py}
            return is_int, relies
        if isinstance(ast, ae.CallStructure):
            function = ast.function.reference
            if self._resolve(function) is not None:
                return False, set()  # lookups return floats
            if function == "integer":
                return True, set()
            if function in ("pulse", "pulse_train"):
                return True, set()
            if function == "step":
                return self._int_typed(ast.arguments[0], _seen)
            if function == "if_then_else":
                branches = [self._int_typed(arg, _seen) for arg in ast.arguments[1:]]
                if branches[0][0] != branches[1][0]:
                    # PySD's type (and so whether it truncates) follows the
                    # branch taken at initialisation, scenario by scenario.
                    self._refuse(
                        "an IF THEN ELSE choosing between an integer and a non-integer "
                        "SMOOTH initial value or DELAY N delay time",
                        "PySD truncates the input only when the integer branch is taken",
                    )
                return self._all_int(ast.arguments[1:], _seen)
            if function in ("modulo", "quantum"):
                return self._all_int(ast.arguments, _seen)
            if function == "ramp":
                time = ae.ReferenceStructure("time")
                return self._all_int((*ast.arguments, time), _seen)
        return False, set()

    def _all_int(self, asts, _seen) -> tuple[bool, set[str]]:
        relies: set[str] = set()
        for arg in asts:
            is_int, more = self._int_typed(arg, _seen)
            if not is_int:
                return False, set()
            relies |= more
        return True, relies

    def _element_int_typed(self, py: str, _seen: frozenset[str]) -> tuple[bool, set[str]]:
        unit = self._unit_by_node.get(py)
        if unit is None or self._element_kinds.get(py) == "lookup":
            return False, set()
        ast = unit.component.ast
        if isinstance(ast, np.ndarray):
            if unit.index is None or ast.size != int(np.prod([len(r) for r in unit.index_ranges])):
                return False, set()
            values = ast.reshape(tuple(len(r) for r in unit.index_ranges))
            return self._int_typed(values[unit.index].item(), _seen | {py})
        outer = self._binding
        self._binding = unit.binding  # the element's own subscripts
        try:
            return self._int_typed(ast, _seen | {py})
        finally:
            self._binding = outer

    # -- elements -----------------------------------------------------------

    def build(self) -> None:
        from pysd.translators.structures import abstract_expressions as ae
        from pysd.translators.structures.abstract_model import (
            AbstractControlElement,
            AbstractData,
        )

        self._expand_units()
        self._element_kinds = {}
        for unit in self.units:
            py, el, ast = unit.node, unit.element, unit.component.ast
            if isinstance(el, AbstractControlElement) or py in _CONTROL_NAMES:
                self._element_kinds[py] = "control"
            elif isinstance(ast, (int, float, np.integer, np.floating, np.ndarray)):
                self._element_kinds[py] = "constant"
            elif isinstance(ast, ae.LookupsStructure):
                self._element_kinds[py] = "lookup"
        # lookups first: calls need to know which names are tables
        for unit in self.units:
            self._enter(unit)
            component = unit.component
            if isinstance(component.ast, ae.DataStructure):
                self._refuse("a DATA variable without GET XLS/DIRECT DATA (read from a run's data files)")
            if isinstance(component, AbstractData) and not isinstance(component.ast, ae.GetDataStructure):
                self._refuse("a DATA variable (:=) not defined by GET XLS/DIRECT DATA")
            if isinstance(component.ast, ae.GetLookupsStructure):
                ext, y = self._external("_ext_lookup", unit, "lookup_dim")
                x = np.asarray(ext.data.coords["lookup_dim"].values, dtype=float)
                order = np.argsort(x, kind="stable")
                if len(set(x.tolist())) != len(x):
                    self._refuse("a lookup with repeated x values")
                self.lookup_elements.add(unit.node)
                self.lookups[unit.node] = (
                    tuple(float(v) for v in x[order]),
                    tuple(float(v) for v in np.asarray(y, dtype=float)[order]),
                )
                continue
            if isinstance(component.ast, ae.LookupsStructure):
                if component.ast.type != "interpolate":
                    self._refuse(f"a lookup of type {component.ast.type!r}")
                self.lookup_elements.add(unit.node)
                self.lookups[unit.node] = _table(unit.display, component.ast.x, component.ast.y)

        runtime_ns = _runtime_namespace()
        for unit in self.units:
            self._enter(unit)
            element, py, component = unit.element, unit.node, unit.component
            meta = {
                "py_name": py,
                "name": unit.display,
                "units": element.units or "",
                "documentation": (element.documentation or "").strip(),
                "kind": "auxiliary",
                "default": None,
                "dynamic": False,
            }
            self.meta.append(meta)
            if py in self.lookup_elements:
                meta["kind"] = "lookup"
                continue
            n_states = len(self.states)
            if isinstance(component.ast, ae.GetConstantsStructure):
                _, value = self._external("_ext_constant", unit, None)
                meta["kind"] = "constant"
                meta["default"] = value
                self.constants[py] = value
                self.nodes[py] = _Node(py, "", set(), "const", unit.display)
                continue
            if isinstance(component.ast, ae.GetDataStructure):
                ext, y = self._external("_ext_data", unit, "time")
                x = np.asarray(ext.data.coords["time"].values, dtype=float)
                if len(x) == 0 or np.any(np.diff(x) <= 0):
                    self._refuse("GET XLS/DIRECT DATA whose times are not increasing")
                self.data_tables[py] = (
                    tuple(float(v) for v in x),
                    tuple(float(v) for v in np.asarray(y, dtype=float)),
                    ext.interp,
                )
                meta["kind"] = "data"
                self.nodes[py] = _Node(py, f"_dt_{py}(time)", {"time"}, "element", unit.display)
                continue
            if isinstance(component.ast, np.ndarray):  # one value of an array constant
                shape = tuple(len(r) for r in unit.index_ranges)
                values = component.ast
                if values.shape != shape and values.size == int(np.prod(shape)):
                    values = values.reshape(shape)  # a tabbed array comes flat, row by row
                if unit.index is None or values.shape != shape:
                    self._refuse("an array constant whose shape does not match its subscripts")
                expr = self.visit(values[unit.index].item())
            else:
                expr = self.visit(component.ast)
            if isinstance(element, AbstractControlElement) or py in _CONTROL_NAMES:
                if py not in _CONTROL_NAMES or len(self.states) != n_states or expr.lookups:
                    self._refuse("a control variable that is not a plain expression")
                meta["kind"] = "control"
                if _NUMBER.match(expr.code):
                    meta["default"] = float(expr.code)
                self.control[py] = expr
                self.nodes[py] = _Node(py, expr.code, set(expr.refs), "control", unit.display)
                continue
            new_states = self.states[n_states:]
            if not expr.refs and not new_states and not expr.lookups:
                try:
                    value = float(eval(expr.code, dict(runtime_ns)))  # noqa: S307
                except (ArithmeticError, TypeError, ValueError):
                    value = None
                if value is not None:
                    meta["kind"] = "constant"
                    meta["default"] = value
                    self.constants[py] = value
                    self.nodes[py] = _Node(py, "", set(), "const", unit.display)
                    continue
            if any(s.kind != "initial" for s in new_states):
                meta["kind"] = "stock"
            self.nodes[py] = _Node(py, expr.code, set(expr.refs), "element", unit.display)
        self._binding = {}

        for py in _CONTROL_NAMES:
            if py not in self.control:
                self.py_names.setdefault(py.upper().replace("_", " "), py)
                default = _Expr("time_step", 0, {"time_step"}) if py == "saveper" else None
                if default is not None:
                    self.control[py] = default
                self.nodes[py] = _Node(py, "", set(), "control", py)
        for node in self.nodes.values():
            for ref in node.refs:
                if ref not in self.nodes and not any(s.name == ref for s in self.states):
                    raise UnsupportedConstructError(node.element, "a reference to an unknown variable", ref)
        self._classify()

    # -- dependency analysis ----------------------------------------------

    def _classify(self) -> None:
        states = {s.name: s for s in self.states}
        for control in _CONTROL_NAMES:
            for ref in self.nodes[control].refs:
                if self.nodes.get(ref) is None or self.nodes[ref].kind not in ("const", "control"):
                    raise UnsupportedConstructError(
                        self.nodes[control].element,
                        "a control variable depending on model variables",
                        ref,
                    )
        memo: dict[str, bool] = {}

        def dynamic(name: str, stack: tuple[str, ...] = ()) -> bool:
            if name in memo:
                return memo[name]
            if name in states:
                return states[name].dynamic
            node = self.nodes[name]
            if node.kind == "time":
                return True
            if name in stack:
                return False  # cycles are reported by the schedulers
            result = any(dynamic(ref, (*stack, name)) for ref in node.refs)
            memo[name] = result
            return result

        for name, node in self.nodes.items():
            node.dynamic = dynamic(name)
        for meta in self.meta:
            if meta["py_name"] in self.nodes:
                meta["dynamic"] = self.nodes[meta["py_name"]].dynamic
        self._refuse_order_dependent_delayn(states)

    def _refuse_order_dependent_delayn(self, states: dict[str, _State]) -> None:
        """Refuse a time-varying DELAY N read by a stateful function's update.

        PySD's DelayN.ddt replaces its ``times`` array during the update, so a
        DELAY N whose delay time varies is read (as ``state / times[0]``) with
        the old delay time by the stateful functions PySD updates before it
        and with the new one by those it updates after it -- in the order of
        its object names, and, through a model variable, depending on whether
        that step is saved (saved values are cached before the update).  Such
        a read is not reproduced, so such a model is not run.
        """
        varying = {s.name for s in states.values() if s.kind == "delayn" and self._is_dynamic(s.args["delay_time"])}
        if not varying:
            return

        def reads(ref: str, seen: set[str]) -> set[str]:
            if ref in varying:
                return {ref}
            node = self.nodes.get(ref)
            if node is None or ref in seen:
                return set()
            seen.add(ref)
            return set().union(*(reads(r, seen) for r in node.refs))

        for state in self.states:
            if not state.dynamic:
                continue
            for key, arg in state.args.items():
                if key in ("initial", "order"):
                    continue
                seen: set[str] = set()
                if any(reads(ref, seen) for ref in arg.refs):
                    raise UnsupportedConstructError(
                        state.element,
                        "a DELAY N with a time-varying delay time read by a stateful function",
                        "PySD's result then depends on the order it updates them and on SAVEPER",
                    )

    def _is_dynamic(self, expr: _Expr) -> bool:
        states = {s.name: s for s in self.states}
        return any(self.nodes[ref].dynamic if ref in self.nodes else states[ref].dynamic for ref in expr.refs)

    @staticmethod
    def _toposort(targets, deps, what: str, names: dict[str, str]) -> list[str]:
        order: list[str] = []
        state: dict[str, int] = {}
        for target in targets:
            if state.get(target) == 2:
                continue
            stack = [(target, iter(sorted(deps(target), key=_natural)))]
            state[target] = 1
            path = [target]
            while stack:
                node, children = stack[-1]
                for child in children:
                    mark = state.get(child)
                    if mark == 2:
                        continue
                    if mark == 1:
                        cycle = path[path.index(child) :]
                        readable = " -> ".join(names.get(c, c) for c in (*cycle, child))
                        raise UnsupportedConstructError(names.get(child, child), what, readable)
                    state[child] = 1
                    path.append(child)
                    stack.append((child, iter(sorted(deps(child), key=_natural))))
                    break
                else:
                    stack.pop()
                    path.pop()
                    state[node] = 2
                    order.append(node)
        return order

    def schedules(self):
        states = {s.name: s for s in self.states}
        readable = {name: node.element for name, node in self.nodes.items()}
        readable.update({name: s.element for name, s in states.items()})

        def init_deps(name: str) -> set[str]:
            if name in states:
                args = states[name].args
                keys: tuple[str, ...] = ("initial", "order", "delay_time", "initial_trend", "average_time")
                if states[name].kind in ("trend", "forecast"):
                    keys = (*keys, "input")
                return set().union(*(args[key].refs for key in keys if key in args))
            node = self.nodes[name]
            if node.kind in ("const", "control", "time"):
                return set()
            if node.init_code is not None:
                return set(node.init_refs)
            return set(node.refs)

        static = [name for name, node in self.nodes.items() if node.kind in ("element", "hidden") and not node.dynamic]
        init_order = self._toposort(
            [s.name for s in self.states] + static,
            init_deps,
            "a circular initialisation",
            readable,
        )
        init_order = [name for name in init_order if name in states or self.nodes[name].kind in ("element", "hidden")]

        def step_deps(name: str) -> set[str]:
            return {
                ref
                for ref in self.nodes[name].refs
                if ref in self.nodes and self.nodes[ref].dynamic and self.nodes[ref].kind in ("element", "hidden")
            }

        dynamic = [name for name, node in self.nodes.items() if node.dynamic and node.kind == "element"]
        core_targets = sorted(
            {
                ref
                for s in self.states
                if s.dynamic
                for key, arg in s.args.items()
                if key not in ("initial", "order", "initial_trend")
                for ref in arg.refs
                if ref in self.nodes and self.nodes[ref].dynamic and self.nodes[ref].kind in ("element", "hidden")
            },
            key=_natural,
        )
        core = self._toposort(core_targets, step_deps, "an algebraic loop", readable)
        core_set = set(core)
        rest = [
            name for name in self._toposort(dynamic, step_deps, "an algebraic loop", readable) if name not in core_set
        ]
        return init_order, core, rest

    def cone(self, outputs) -> set[str]:
        """Names (nodes and states) the outputs ``outputs`` (Python names) depend on, themselves included.

        The closure over every reference: a node's equation (and its ACTIVE INITIAL
        initial equation), a stateful object's arguments (input, initial value,
        delay or smoothing time, order, ...).  A stock is therefore kept with its
        flows and everything upstream of them, at every step.  Raises KeyError for
        a name that is not an output (a lookup, or not a variable of the model).
        """
        states = {s.name: s for s in self.states}
        known = {m["py_name"] for m in self.meta if m["kind"] != "lookup"} | {"time"}
        unknown = sorted(set(outputs) - known)
        if unknown:
            raise KeyError("not outputs of the model: " + ", ".join(repr(u) for u in unknown))
        keep: set[str] = set()
        stack = list(outputs)
        while stack:
            name = stack.pop()
            if name in keep:
                continue
            keep.add(name)
            if name in states:
                for arg in states[name].args.values():
                    stack.extend(arg.refs)
            elif name in self.nodes:
                node = self.nodes[name]
                stack.extend(node.refs)
                stack.extend(node.init_refs)
        return keep

    # -- emitting ---------------------------------------------------------------

    def emit(self, outputs=None, inplace: bool = True) -> str:
        """Source of the vector backend; ``outputs`` (Python names): compute only their cone.

        ``inplace``: update the stateful objects in their own arrays where that is safe
        (:meth:`_inplace_states`; the same bits, fewer new arrays per step); False
        writes every update as a new array (kept for the tests that compare the two).

        With ``outputs``, the integration (``_block``) evaluates only the equations
        and stateful objects :meth:`cone` keeps, in the same order as the full model
        (the same operations on the same values: the kept outputs are bit for bit
        those of the full model); the other outputs cannot be requested from the
        vector backend (``_plan`` raises KeyError).  Parameters, lookups and the
        metadata are the full model's, and the scalar backend is not affected.
        """
        init_order, core, rest = self.schedules()
        states = {s.name: s for s in self.states}
        block_states = list(self.states)
        keep = None
        if outputs is not None:
            keep = self.cone(outputs)
            init_order = [name for name in init_order if name in keep]
            core = [name for name in core if name in keep]
            rest = [name for name in rest if name in keep]
            block_states = [s for s in self.states if s.name in keep]
        out: list[str] = []
        w = out.append
        w(f'"""Vector engine for {self.mdl_path.name} -- generated by greenpath.engines.vector; do not edit.')
        w("")
        w("Every variable is a NumPy scalar or an array over the scenario axis;")
        w("see greenpath.engines.vector for the semantics (they are PySD 3.14's).")
        w('"""')
        w("# ruff: noqa")
        w("")
        w(_RUNTIME_PATH.read_text(encoding="utf-8").split('"""', 2)[2].strip("\n"))
        w("")
        w("")
        variables = [
            *self.meta,
            {
                "py_name": "time",
                "name": "Time",
                "units": "",
                "documentation": "Current time of the model.",
                "kind": "time",
                "default": None,
                "dynamic": True,
            },
        ]
        w(f"VARIABLES = {_pretty(tuple(variables))}")
        w(f"CONSTANTS = {_pretty(self.constants)}")
        w(f"LOOKUPS = {_pretty(self.lookups)}")
        w(f"DATA = {_pretty(self.data_tables)}")
        for name in self.data_tables:
            w(f"_dt_{name} = _make_data(*DATA[{name!r}])")
        control_defaults = {}
        for name in _CONTROL_NAMES:
            expr = self.control.get(name)
            control_defaults[name] = expr.code if expr is not None else None
        w(f"CONTROL = {control_defaults!r}")
        names = {}
        for meta in variables:
            names[meta["name"]] = meta["py_name"]
        w(f"NAMES = {_pretty(names)}")
        dyn_outputs = [m["py_name"] for m in variables if m["kind"] != "lookup" and m["dynamic"]]
        static_outputs = [m["py_name"] for m in variables if m["kind"] != "lookup" and not m["dynamic"]]
        w(f"_DYNAMIC_OUTPUTS = {tuple(dyn_outputs)!r}")
        w(f"_STATIC_OUTPUTS = {tuple(static_outputs)!r}")
        computed = None
        if keep is not None:
            # what _block defines: the cone, the constants, the control variables, time
            computed = {
                name
                for name in (*dyn_outputs, *static_outputs)
                if name in keep or name == "time" or self.nodes[name].kind in ("const", "control", "time")
            }
        w("# The outputs the vector backend computes (None: all of them); see emit(outputs=...).")
        w(f"OUTPUTS = {None if computed is None else tuple(sorted(computed))!r}")
        w("")
        w(_SUPPORT_CODE)
        w("")
        has_int = any(state.int_init is not None for state in self.states)
        w("def _plan(params=None, n=1, lookups=None, initial_time=None, final_time=None,")
        w("          time_step=None, saveper=None, return_columns=None):")
        w('    """Validate and resolve the inputs of a run (everything but the integration)."""')
        w("    _n = int(n)")
        w("    if _n < 1:")
        w("        raise ValueError(f'n must be at least 1, got {n!r}')")
        w("    _p = _resolve_params(params, _n)")
        if has_int:
            w("    _fg = _float_typed(params, initial_time, final_time, time_step, saveper)")
        else:
            w("    _fg = None")
        w("    _ctl = _resolve_control(_p, initial_time, final_time, time_step, saveper)")
        w("    _tables = _resolve_lookups(lookups, _n)")
        w("    _times, _save = _schedule(*_ctl)")
        w("    _cols, _req_dyn, _req_static = _resolve_columns(return_columns)")
        if computed is not None:
            w("    _missing = [c for c in _cols if _py_name(c) not in OUTPUTS]")
            w("    if _missing:")
            w("        raise KeyError('not computed by this model, generated for a set of outputs '")
            w("                       '(ask the full model): ' + ', '.join(repr(c) for c in _missing))")
        w("    return {'n': _n, 'params': _p, 'float_given': _fg, 'control': _ctl,")
        w("            'tables': _tables, 'times': _times, 'save': _save, 'n_saved': sum(_save),")
        w("            'columns': _cols, 'req_dyn': _req_dyn, 'req_static': _req_static}")
        w("")
        w("")
        w("def _run_range(plan, bufs, lo, hi):")
        w('    """Integrate scenarios lo..hi-1 of a plan into bufs[i][:, lo:hi]."""')
        w("    _err = _np.seterr(all='ignore')")
        w("    try:")
        w("        for _lo, _hi in _chunks(lo, hi):")
        w("            _block(_slice_params(plan['params'], _lo, _hi), _hi - _lo,")
        w("                   _slice_tables(plan['tables'], _lo, _hi), plan['control'],")
        w("                   plan['times'], plan['save'], [_b[:, _lo:_hi] for _b in bufs],")
        w("                   plan['req_dyn'], plan['req_static'], plan['float_given'])")
        w("    finally:")
        w("        _np.seterr(**_err)")
        w("")
        w("")
        w("def simulate(params=None, n=1, lookups=None, initial_time=None, final_time=None,")
        w("             time_step=None, saveper=None, return_columns=None):")
        w('    """Integrate n scenarios at once; returns {column: array (n, n_saved)}.')
        w("")
        w("    The arrays are transposed views of (n_saved, n) buffers.  Scenarios run in")
        w("    chunks of at most _CHUNK through the straight-line _block() below.")
        w('    """')
        w("    plan = _plan(params, n, lookups, initial_time, final_time, time_step, saveper,")
        w("                 return_columns)")
        w("    bufs = [_np.empty((plan['n_saved'], plan['n'])) for _ in plan['columns']]")
        w("    _run_range(plan, bufs, 0, plan['n'])")
        w("    return {c: b.T for c, b in zip(plan['columns'], bufs)}")
        w("")
        w("")
        w("def _block(_p, _n, _tables, _ctl, _times, _save, _bufs, _req_dyn, _req_static,")
        w("           _float_given):")
        w('    """The model, straight-line: _n scenarios from initialisation to the end."""')
        for name in self.constants:
            w(f"    {name} = _p[{name!r}]")
        w("    initial_time, final_time, time_step, saveper = _ctl")
        for name in self.lookups:
            w(f"    _lk_{name} = _make_lookup(*_tables[{name!r}], _n)")
        in_place = self._inplace_states(block_states) if inplace else set()
        body: list[str] = []
        b = body.append
        b("time = _np.float64(_times[0])")
        b("_work = _np.empty(_n)  # scratch of the in-place INTEG updates")
        b("# -- initialisation: static values and stateful objects, in dependency order")
        for name in init_order:
            if name in states:
                body.extend(self._emit_state_init(states[name]))
                if name in in_place:
                    body.extend(self._emit_state_scratch(states[name]))
            else:
                node = self.nodes[name]
                code = node.code if node.init_code is None else node.init_code
                b(f"{name} = {code}  # {node.element}" if node.kind == "element" else f"{name} = {code}")
        b("_j = 0")
        b("_last = len(_times) - 1")
        b("for _k in range(len(_times)):")
        b("    time = _np.float64(_times[_k])")
        for name in core:
            node = self.nodes[name]
            b(f"    {name} = {node.code}")
        b("    if _save[_k]:")
        for name in rest:
            node = self.nodes[name]
            b(f"        {name} = {node.code}")
        def held(names: list[str]) -> list[str]:
            return [name if computed is None or name in computed else "None" for name in names]

        b(f"        _vals = {_tuple_code(held(dyn_outputs))}")
        b("        for _b, _i in _req_dyn:")
        b("            _bufs[_b][_j] = _vals[_i]")
        b("        _j += 1")
        b("    if _k == _last:")
        b("        break")
        for state in block_states:
            body.extend("    " + line for line in self._emit_state_update(state, state.name in in_place))
        b(f"_vals = {_tuple_code(held(static_outputs))}")
        b("for _b, _i in _req_static:")
        b("    _bufs[_b][...] = _vals[_i]")
        for line in body:
            w("    " + line)
        w("")
        return "\n".join(out) + "\n"

    def emit_scalar(self) -> str:
        """Source of the scalar backend: ``_one()`` and ``simulate_one()``.

        Built from the same abstract model as the vector code (after a
        ``_reset(scalar=True)`` and a second ``build()``): one scenario, every
        variable a Python float and a local, SMOOTH/DELAY chains as lists.
        """
        init_order, core, rest = self.schedules()
        states = {s.name: s for s in self.states}
        variables = [*self.meta, {"py_name": "time", "kind": "time", "dynamic": True}]
        dyn_outputs = [m["py_name"] for m in variables if m["kind"] != "lookup" and m["dynamic"]]
        static_outputs = [m["py_name"] for m in variables if m["kind"] != "lookup" and not m["dynamic"]]
        has_int = any(state.int_init is not None for state in self.states)
        out: list[str] = []
        w = out.append
        w("")
        w("")
        w("import struct as _struct")
        w("")
        w(f"_ROW = _struct.Struct({str(len(dyn_outputs)) + 'd'!r})")  # a saved row of _DYNAMIC_OUTPUTS
        w("")
        w("")
        w("def _one(_p, _tables, _ctl, _times, _save, _float_given):")
        w('    """The model for one scenario, straight-line on Python floats.')
        w("")
        w("    Returns the rows of the dynamic outputs at the saved times and the static")
        w("    outputs (both in the order of _DYNAMIC_OUTPUTS / _STATIC_OUTPUTS).")
        w('    """')
        for name in self.constants:
            w(f"    {name} = _p[{name!r}]")
        w("    initial_time, final_time, time_step, saveper = _ctl")
        for name in self.lookups:
            w(f"    _lk_{name} = _sc_lookup(*_tables[{name!r}])")
        body: list[str] = []
        b = body.append
        b("time = _times[0]")
        for name in init_order:
            if name in states:
                body.extend(self._emit_scalar_state_init(states[name]))
            else:
                node = self.nodes[name]
                b(f"{name} = {node.code if node.init_code is None else node.init_code}")
        # the saved rows, written as C doubles into one buffer (no tuple, no bytes object per row)
        b("_rows = bytearray(_ROW.size * sum(_save))")
        b("_pack = _ROW.pack_into")
        b("_at = 0")
        b("_last = len(_times) - 1")
        b("for _k in range(len(_times)):")
        b("    time = _times[_k]")
        for name in core:
            b(f"    {name} = {self.nodes[name].code}")
        b("    if _save[_k]:")
        for name in rest:
            b(f"        {name} = {self.nodes[name].code}")
        # one saved row: the dynamic outputs packed as C doubles (no tuple, no float objects kept)
        b(f"        _pack(_rows, _at, {', '.join(dyn_outputs)})")
        b(f"        _at += {8 * len(dyn_outputs)}")
        b("    if _k == _last:")
        b("        break")
        for state in self.states:
            body.extend("    " + line for line in self._emit_scalar_state_update(state))
        b(f"return _rows, {_tuple_code(static_outputs)}")
        out.extend("    " + line for line in body)
        w("")
        w("")
        w("def simulate_one(params=None, lookups=None, initial_time=None, final_time=None,")
        w("                 time_step=None, saveper=None, return_columns=None, as_block=False):")
        w('    """Integrate one scenario with the scalar backend; {column: array (1, n_saved)}.')
        w("")
        w("    The same inputs and outputs as simulate(..., n=1) (parameters and lookup")
        w("    rows of one scenario), computed on Python floats: much faster for one run.")
        w("    ``as_block=True`` returns (columns, array (len(columns), n_saved), saved times)")
        w("    instead, the times as saved_times() gives them.")
        w('    """')
        w("    _p = _resolve_params_one(params)")
        if has_int:
            w("    _fg = _float_typed(params, initial_time, final_time, time_step, saveper)")
        else:
            w("    _fg = None")
        w("    _ctl = _resolve_control(_p, initial_time, final_time, time_step, saveper)")
        w("    _tables = _resolve_lookups_one(lookups)")
        w("    _times, _save = _schedule(*_ctl)")
        w("    _plan = _columns_one(return_columns)")
        w("    _rows, _statics = _one(_p, _tables, _ctl, _times, _save, _fg)")
        w("    _cols, _block = _collect_one(_plan, _rows, _statics)")
        w("    if as_block:")
        w("        return _cols, _block, _round_times([t for t, s in zip(_times, _save) if s], _ctl[2])")
        w("    return dict(zip(_cols, _block[:, None, :]))")
        return _scalar_passes.optimise("\n".join(out) + "\n")

    def _emit_scalar_state_init(self, state: _State) -> list[str]:
        a = {key: arg.code for key, arg in state.args.items()}
        s = state.name
        if state.kind == "delayfixed":
            return [
                f"{s}_n = _sc_fixed_order({state.element!r}, {a['delay_time']}, time_step)",
                f"{s} = {a['initial']}",
                f"{s}_pipe = [{s}] * {s}_n",
                f"{s}_ptr = 0",
            ]
        if state.kind in ("trend", "forecast"):
            return [f"{s} = {a['input']} / (1 + {a['initial_trend']} * {a['average_time']})"]
        if state.kind == "sample":
            return [f"{s} = {a['initial']}"]
        if state.kind in ("integ", "integ_nn", "initial"):
            return [f"{s} = {a['initial']}"]
        if state.kind == "smooth":
            lines = [
                f"{s}_n, {s}_ord = _sc_order_setup({state.element!r}, {a['order']})",
                f"{s} = [{a['initial']}] * {s}_n",
            ]
            if state.int_init is not None:
                lines.append(f"{s}_int = _int_typed({tuple(sorted(state.int_init))!r}, _float_given)")
            return lines
        lines = [
            f"{s}_n, {s}_ord = _sc_order_setup({state.element!r}, {a['order']}, time_step, {a['delay_time']})",
            f"{s} = [{a['initial']} * {a['delay_time']}] * {s}_n",
        ]
        if state.kind == "delayn":
            lines.append(f"{s}_times = [{a['delay_time']}] * {s}_n")
            if self._delayn_time_fixed(state):  # every stage time stays the initial delay time
                lines.append(f"{s}_update = _sc_delayn_fixed_time({s}_n)")
            else:
                lines.append(f"{s}_update = _sc_delayn_unrolled({s}_n)")
            if state.int_init is not None:
                lines.append(f"{s}_int = _int_typed({tuple(sorted(state.int_init))!r}, _float_given)")
        return lines

    def _delayn_time_fixed(self, state: _State) -> bool:
        """Whether a DELAY N's delay time is the same at every step (static, no integer cast)."""
        return state.int_init is None and not self._is_dynamic(state.args["delay_time"])

    def _emit_scalar_state_update(self, state: _State) -> list[str]:
        a = {key: arg.code for key, arg in state.args.items()}
        s = state.name
        if state.kind in ("delayfixed", "trend", "forecast", "sample"):
            return self._emit_state_update(state)
        if state.kind == "integ":
            return [f"{s} = {s} + {a['flow']} * time_step"]
        if state.kind == "integ_nn":
            return [f"{s} = _sc_max({s} + {a['flow']} * time_step, 0)"]
        if state.kind == "smooth":
            if state.int_init is not None:
                return [
                    f"{s} = _sc_smooth_update({s}, _math.trunc({a['input']}) if {s}_int "
                    f"else {a['input']}, {a['smooth_time']}, {s}_ord, time_step)",
                    f"{s}_int = False",
                ]
            return [f"{s} = _sc_smooth_update({s}, {a['input']}, {a['smooth_time']}, {s}_ord, time_step)"]
        if state.kind == "delay":
            return [f"{s} = _sc_delay_update({s}, {a['input']}, {a['delay_time']}, {s}_ord, time_step)"]
        if state.kind == "delayn":
            delay_time = a["delay_time"]
            if state.int_init is not None:
                delay_time = f"(_math.trunc({delay_time}) if {s}_int else {delay_time})"
            if self._delayn_time_fixed(state):
                return [f"{s} = {s}_update({s}, {a['input']}, {delay_time}, {s}_ord, time_step)"]
            return [
                f"{s}, {s}_times = {s}_update({s}, {s}_times, {a['input']}, {delay_time}, {s}_ord, time_step)"
            ]
        return []

    def _emit_state_init(self, state: _State) -> list[str]:
        a = {key: arg.code for key, arg in state.args.items()}
        s = state.name
        label = f"  # {state.element}"
        if state.kind == "delayfixed":
            return [
                f"{s}_n = _fixed_order({state.element!r}, {a['delay_time']}, time_step)",
                f"{s} = _full({a['initial']}, _n){label}",
                f"{s}_pipe = [{s}] * {s}_n",
                f"{s}_ptr = 0",
            ]
        if state.kind in ("trend", "forecast"):
            return [f"{s} = _full({a['input']} / (1 + {a['initial_trend']} * {a['average_time']}), _n){label}"]
        if state.kind == "sample":
            return [f"{s} = _full({a['initial']}, _n){label}"]
        if state.kind in ("integ", "integ_nn"):
            return [f"{s} = _full({a['initial']}, _n){label}"]
        if state.kind == "initial":
            return [f"{s} = {a['initial']}{label}"]
        if state.kind == "smooth":
            lines = [
                f"{s}_n, {s}_ord, {s}_ix = _order_setup({state.element!r}, {a['order']}, _n)",
                f"{s} = _stages({a['initial']}, {s}_n, _n){label}",
            ]
            if state.int_init is not None:
                lines.append(
                    f"{s}_int = _int_typed({tuple(sorted(state.int_init))!r}, _float_given)"
                    "  # PySD: int initial value -> int64 state"
                )
            return lines
        lines = [
            f"{s}_n, {s}_ord, {s}_ix = _order_setup({state.element!r}, {a['order']}, _n, time_step, {a['delay_time']})",
            f"{s} = _stages({a['initial']} * {a['delay_time']}, {s}_n, _n){label}",
        ]
        if state.kind == "delayn":
            lines.append(f"{s}_times = _stages({a['delay_time']}, {s}_n, _n)")
            if state.int_init is not None:
                lines.append(
                    f"{s}_int = _int_typed({tuple(sorted(state.int_init))!r}, _float_given)"
                    "  # PySD: int delay time -> int64 times array"
                )
        return lines

    def _inplace_states(self, block_states: list[_State]) -> set[str]:
        """Stateful objects whose update may overwrite their arrays instead of binding new ones.

        The vector loop evaluates every equation, saves, then updates the states one
        after the other; an in-place update changes the arrays a variable still holds
        when that variable is the state itself or a view of it (``stock = _s3``,
        ``_h7 = _s5[_s5_ix]``, through any chain of such plain references).  A state is
        updated in place only when no update from its own onwards reads such a
        variable (in its arguments): then every read of the old values happens before
        they are overwritten, and the results are the same bits.  DELAY FIXED, SAMPLE IF
        TRUE, TREND and FORECAST keep their updates.
        """
        plain = re.compile(r"^\(*\s*([A-Za-z_]\w*)\s*(\[[^\[\]]*\])?\s*\)*$")
        points: dict[str, str] = {}  # variable -> the name whose arrays it may be
        for name, node in self.nodes.items():
            for code in (node.code, node.init_code):
                match = plain.match(code or "")
                if match and match.group(1) != name:
                    points[name] = match.group(1)
        word = re.compile(r"[A-Za-z_]\w*")
        reads = [
            set().union(*(set(arg.refs) | set(word.findall(arg.code)) for arg in state.args.values()))
            for state in block_states
        ]
        safe: set[str] = set()
        for i, state in enumerate(block_states):
            if state.kind not in ("integ", "integ_nn", "smooth", "delay", "delayn"):
                continue
            holders = {state.name, f"{state.name}_times", f"{state.name}_times_next"}
            grown = True
            while grown:
                grown = False
                for name, target in points.items():
                    if target in holders and name not in holders:
                        holders.add(name)
                        grown = True
            if not any(holders & later for later in reads[i:]):
                safe.add(state.name)
        return safe

    def _emit_state_scratch(self, state: _State) -> list[str]:
        """Scratch arrays of an in-place update (see :meth:`_emit_state_update`)."""
        s = state.name
        if state.kind in ("integ", "integ_nn"):
            return []  # the block's one scratch vector, _work
        if state.kind == "smooth":
            return [f"{s}_work = _np.empty_like({s})"]
        lines = [f"{s}_work = _np.empty_like({s})", f"{s}_flows = _np.empty_like({s})"]
        if state.kind == "delayn":
            lines.append(f"{s}_times_next = _np.empty_like({s}_times)")
        return lines

    def _emit_state_update(self, state: _State, inplace: bool = False) -> list[str]:
        a = {key: arg.code for key, arg in state.args.items()}
        s = state.name
        if inplace:
            # the same operations as below, written into the state's own arrays
            if state.kind == "integ":
                return [f"_np.multiply({a['flow']}, time_step, out=_work)", f"_np.add({s}, _work, out={s})"]
            if state.kind == "integ_nn":
                return [
                    f"_np.multiply({a['flow']}, time_step, out=_work)",
                    f"_np.add({s}, _work, out={s})",
                    f"_np.maximum({s}, 0, out={s})",
                ]
            if state.kind == "smooth":
                inp = a["input"]
                if state.int_init is not None:
                    inp = f"_np.trunc({inp}) if {s}_int else {inp}"
                lines = [f"_smooth_update_into({s}, {inp}, {a['smooth_time']}, {s}_ord, time_step, {s}_work)"]
                return lines if state.int_init is None else [*lines, f"{s}_int = False"]
            if state.kind == "delay":
                return [
                    f"_delay_update_into({s}, {a['input']}, {a['delay_time']}, {s}_ord, time_step, "
                    f"{s}_work, {s}_flows)"
                ]
            if state.kind == "delayn":
                delay_time = a["delay_time"]
                if state.int_init is not None:
                    delay_time = f"(_np.trunc({delay_time}) if {s}_int else {delay_time})"
                return [
                    f"_delayn_update_into({s}, {s}_times_next, {s}_times, {a['input']}, {delay_time}, {s}_ord, "
                    f"time_step, {s}_work, {s}_flows)",
                    f"{s}_times, {s}_times_next = {s}_times_next, {s}_times",
                ]
        if state.kind == "delayfixed":  # DelayFixed.update: the input into the pipe, the oldest out
            return [
                f"{s}_pipe[{s}_ptr] = {a['input']}",
                f"{s}_ptr = ({s}_ptr + 1) % {s}_n",
                f"{s} = {s}_pipe[{s}_ptr]",
            ]
        if state.kind in ("trend", "forecast"):
            return [f"{s} = {s} + ({a['input']} - {s}) / {a['average_time']} * time_step"]
        if state.kind == "sample":  # SampleIfTrue.update: state * 0 + (input if condition else state)
            if self.scalar:
                return [f"{s} = {s} * 0 + ({a['input']} if {a['condition']} else {s})"]
            return [f"{s} = {s} * 0 + _np.where({a['condition']}, {a['input']}, {s})"]
        if state.kind == "integ":
            return [f"{s} = {s} + {a['flow']} * time_step"]
        if state.kind == "integ_nn":
            return [f"{s} = _np.maximum({s} + {a['flow']} * time_step, 0)"]
        if state.kind == "smooth":
            if state.int_init is not None:
                return [
                    f"{s} = _smooth_update({s}, _np.trunc({a['input']}) if {s}_int "
                    f"else {a['input']}, {a['smooth_time']}, {s}_ord, time_step)",
                    f"{s}_int = False",
                ]
            return [f"{s} = _smooth_update({s}, {a['input']}, {a['smooth_time']}, {s}_ord, time_step)"]
        if state.kind == "delay":
            return [f"{s} = _delay_update({s}, {a['input']}, {a['delay_time']}, {s}_ord, time_step)"]
        if state.kind == "delayn":
            delay_time = a["delay_time"]
            if state.int_init is not None:
                delay_time = f"(_np.trunc({delay_time}) if {s}_int else {delay_time})"
            return [f"{s}, {s}_times = _delayn_update({s}, {s}_times, {a['input']}, {delay_time}, {s}_ord, time_step)"]
        return []


def _tuple_code(names: list[str]) -> str:
    return "(" + "".join(f"{name}, " for name in names) + ")"


def _pretty(value) -> str:
    import pprint

    return pprint.pformat(value, width=99, sort_dicts=False)


def _natural(name: str):
    match = re.match(r"^(_[a-z]+)(\d+)$", name)
    if match:
        return (match.group(1), int(match.group(2)))
    return (name, 0)


def _runtime_namespace() -> dict[str, Any]:
    namespace: dict[str, Any] = {}
    exec(compile(_RUNTIME_PATH.read_text(encoding="utf-8"), str(_RUNTIME_PATH), "exec"), namespace)
    return namespace


# Support code placed in every generated module, after the metadata.
_SUPPORT_CODE = '''
_CONTROL_NAMES = ("initial_time", "final_time", "time_step", "saveper")
_PY_NAMES = frozenset(m["py_name"] for m in VARIABLES)
_LOWER_NAMES = {original.lower(): py for original, py in NAMES.items()}


def _py_name(key):
    """Python name of a variable given by Python name or (any-case) Vensim name."""
    if key in _PY_NAMES:
        return key
    name = NAMES.get(key)
    if name is None:
        name = _LOWER_NAMES.get(str(key).lower())
    return name


def _resolve_params(params, n):
    values = {name: _np.float64(value) for name, value in CONSTANTS.items()}
    unknown = []
    for key, value in (params or {}).items():
        name, checked = _param_entry(key, value, n)
        if name is None:
            unknown.append(key)
        else:
            values[name] = checked
    if unknown:
        raise KeyError(
            "not constants of the model: " + ", ".join(repr(k) for k in unknown))
    return values


def _param_entry(key, value, n):
    """Check one parameter given: (its Python name, a float64 or a shape-(n,) array).

    (None, None) when ``key`` is not a constant of the model; a control variable or
    a value of another shape raises.
    """
    name = _py_name(key)
    if name in _CONTROL_NAMES:
        raise KeyError(
            f"{key!r} is a control variable: pass it as the {name} argument")
    if name not in CONSTANTS:
        return None, None
    arr = _np.asarray(value, dtype=float)
    if arr.ndim == 0:
        return name, _np.float64(arr)
    if arr.shape == (n,):
        return name, arr
    raise ValueError(
        f"parameter {key!r}: expected a scalar or shape ({n},), got {arr.shape}")


def _float_typed(params, initial_time, final_time, time_step, saveper):
    """Names given a value that PySD would hold as a float (not a Python int)."""
    given = {(k if k in _PY_NAMES else _py_name(k)): v for k, v in (params or {}).items()}
    given.update({k: v for k, v in zip(
        _CONTROL_NAMES, (initial_time, final_time, time_step, saveper)) if v is not None})
    return {k for k, v in given.items()
            if type(v) is float or not isinstance(v, (int, _np.integer)) or isinstance(v, bool)}


def _int_typed(relies_on, float_given):
    return not float_given.intersection(relies_on)


def _resolve_control(p, initial_time, final_time, time_step, saveper):
    given = {"initial_time": initial_time, "final_time": final_time,
             "time_step": time_step, "saveper": saveper}
    env = dict(p)
    env["_np"] = _np
    pending = [k for k in _CONTROL_NAMES if given[k] is None]
    for key in _CONTROL_NAMES:
        if given[key] is not None:
            env[key] = float(given[key])
    for _ in range(len(_CONTROL_NAMES)):
        for key in list(pending):
            code = CONTROL[key]
            if code is None:
                raise ValueError(f"the model does not define {key}; pass it explicitly")
            try:
                value = eval(code, env)
            except NameError:
                continue
            value = _np.asarray(value, dtype=float)
            if value.ndim != 0:
                raise ValueError(f"{key} must not vary across scenarios")
            env[key] = float(value)
            pending.remove(key)
    if pending:
        raise ValueError("circular control variables: " + ", ".join(pending))
    return tuple(env[k] for k in _CONTROL_NAMES)


def _resolve_lookups(lookups, n):
    given = {}
    unknown = []
    for key, value in (lookups or {}).items():
        name = _py_name(key)
        if name not in LOOKUPS:
            unknown.append(key)
        else:
            given[name] = value
    if unknown:
        raise KeyError("not lookups of the model: " + ", ".join(repr(k) for k in unknown))
    tables = {}
    for name, (x, y) in LOOKUPS.items():
        if name in given:
            x, y = given[name]
            x = _np.asarray(x, dtype=float)
            y = _np.asarray(y, dtype=float)
            if x.ndim != 1 or x.size == 0:
                raise ValueError(f"lookup {name!r}: x must have shape (k,), got {x.shape}")
            k = x.shape[0]
            if y.shape not in ((k,), (n, k)):
                raise ValueError(
                    f"lookup {name!r}: y must have shape ({k},) or ({n}, {k}), got {y.shape}")
            order = _np.argsort(x, kind="stable")
            x = x[order]
            y = _np.ascontiguousarray(y[..., order])
            if _np.any(_np.diff(x) == 0):
                raise ValueError(f"lookup {name!r}: repeated x values")
        else:
            x = _np.array(x, dtype=float)
            y = _np.array(y, dtype=float)
        tables[name] = (x, y)
    return tables


_CHUNK = 8000  # NumPy's masked/where loops slow down ~3x past 8192 elements


def _chunks(lo, hi):
    count = max(1, -(-(hi - lo) // _CHUNK))
    bounds = [lo + round(i * (hi - lo) / count) for i in range(count + 1)]
    return list(zip(bounds[:-1], bounds[1:]))


def _slice_params(p, lo, hi):
    return {k: (v[lo:hi] if _np.ndim(v) else v) for k, v in p.items()}


def _slice_tables(tables, lo, hi):
    return {k: (x, y[lo:hi] if y.ndim == 2 else y) for k, (x, y) in tables.items()}


def _resolve_columns(return_columns):
    if return_columns is None:
        return_columns = list(_DYNAMIC_OUTPUTS + _STATIC_OUTPUTS)
    elif isinstance(return_columns, str):
        raise TypeError("return_columns must be a list of names, not a string")
    dyn_index = {name: i for i, name in enumerate(_DYNAMIC_OUTPUTS)}
    static_index = {name: i for i, name in enumerate(_STATIC_OUTPUTS)}
    cols, req_dyn, req_static, unknown = [], [], [], []
    for col in return_columns:
        name = _py_name(col)
        if name in dyn_index:
            req_dyn.append((len(cols), dyn_index[name]))
        elif name in static_index:
            req_static.append((len(cols), static_index[name]))
        else:
            unknown.append(col)
            continue
        cols.append(col)
    if unknown:
        raise KeyError(
            "cannot return (unknown variables or lookups): "
            + ", ".join(repr(c) for c in unknown))
    return cols, req_dyn, req_static


def _resolve_params_one(params):
    """Constants of one scenario as Python floats (scalars or shape-(1,) arrays given)."""
    values = dict(_CONSTANTS_ONE)
    unknown = []
    for key, value in (params or {}).items():
        if type(value) is float and key in _CONSTANT_NAMES_ONE:  # a constant by Python name, a float
            values[key] = value
            continue
        name, checked = _param_entry(key, value, 1)
        if name is None:
            unknown.append(key)
        else:
            values[name] = float(checked) if checked.ndim == 0 else float(checked[0])
    if unknown:
        raise KeyError(
            "not constants of the model: " + ", ".join(repr(k) for k in unknown))
    return values


_CONSTANTS_ONE = {name: float(_np.float64(value)) for name, value in CONSTANTS.items()}
_CONSTANT_NAMES_ONE = frozenset(_CONSTANTS_ONE).difference(_CONTROL_NAMES)


def _resolve_lookups_one(lookups):
    """Tables of one scenario as (x list, y list); a (1, k) y gives its row."""
    if not lookups:
        return _DEFAULT_TABLES_ONE
    tables = _resolve_lookups(lookups, 1)
    return {k: (x.tolist(), y.reshape(-1).tolist()) for k, (x, y) in tables.items()}


_DEFAULT_TABLES_ONE = {k: (list(x), list(y)) for k, (x, y) in LOOKUPS.items()}
_COLUMN_PLANS = {}  # requested columns -> where each comes from (a few sets per process)


def _columns_one(return_columns):
    """Columns as _resolve_columns gives them, with index arrays for _collect_one; memoized."""
    if isinstance(return_columns, str):
        raise TypeError("return_columns must be a list of names, not a string")
    try:
        key = None if return_columns is None else tuple(return_columns)
        plan = _COLUMN_PLANS.get(key)
    except TypeError:  # an unhashable name: _resolve_columns says what is wrong
        return _column_plan(return_columns)
    if plan is None:
        plan = _column_plan(key)
        if len(_COLUMN_PLANS) >= 64:
            _COLUMN_PLANS.clear()
        _COLUMN_PLANS[key] = plan
    return plan


def _column_plan(return_columns):
    cols, req_dyn, req_static = _resolve_columns(return_columns)
    def index(pairs):
        return tuple(_np.array([pair[j] for pair in pairs], dtype=_np.intp) for j in (0, 1))
    return (cols, *index(req_dyn), *index(req_static))


def _collect_one(plan, rows, statics):
    """(columns, array (columns, n_saved)) from the packed rows and the static values."""
    cols, dyn_at, dyn_from, static_at, static_from = plan
    n_saved = len(rows) // (8 * len(_DYNAMIC_OUTPUTS))
    out = _np.empty((len(cols), n_saved))
    if len(dyn_at) and n_saved:
        block = _np.frombuffer(rows).reshape(n_saved, len(_DYNAMIC_OUTPUTS))
        out[dyn_at] = block.T[dyn_from]
    if len(static_at):
        out[static_at] = _np.array(statics, dtype=float)[static_from, None]
    return cols, out


def saved_times(initial_time=None, final_time=None, time_step=None, saveper=None, params=None):
    """The times simulate() saves, rounded as PySD rounds its output index."""
    p = _resolve_params(params, 1)
    controls = _resolve_control(p, initial_time, final_time, time_step, saveper)
    times, save = _schedule(*controls)
    return _round_times([t for t, s in zip(times, save) if s], controls[2])
'''


def generate(mdl_path: str | os.PathLike, outputs: Iterable[str] | None = None) -> str:
    """Python source of the vector engine module for the Vensim model ``mdl_path``.

    ``outputs`` (Python names of variables): the vector backend then computes only
    what they depend on (see :meth:`_Generator.emit`; the scalar backend stays whole).
    Raises :class:`UnsupportedConstructError` (naming the variable and the
    construct) for anything the engine does not implement, KeyError for an output
    that is not a variable of the model.
    """
    generator = _Generator(mdl_path)
    generator.build()
    source = generator.emit(None if outputs is None else sorted(set(outputs)))
    generator._reset(scalar=True)  # the same abstract model, scalar code
    generator.build()
    return source + generator.emit_scalar()


# ---------------------------------------------------------------------------
# Cached loader
# ---------------------------------------------------------------------------


def _generator_hash() -> str:
    digest = hashlib.sha256()
    for path in (Path(__file__), _RUNTIME_PATH, Path(_scalar_passes.__file__)):
        digest.update(path.read_bytes())
    return digest.hexdigest()


_GET_FILE = re.compile(
    rb"GET[\s_]+(?:XLS|DIRECT|123)[\s_]+(?:DATA|LOOKUPS|CONSTANTS|SUBSCRIPT)\s*\(\s*'([^']*)'", re.IGNORECASE
)


def external_files(mdl_path: str | os.PathLike, mdl_bytes: bytes | None = None) -> list[Path]:
    """Return the data files a model reads with GET XLS/DIRECT * (in its folder), sorted."""
    mdl_path = Path(mdl_path)
    raw = mdl_path.read_bytes() if mdl_bytes is None else mdl_bytes
    names = {m.group(1).decode("utf-8", "replace").strip() for m in _GET_FILE.finditer(raw)}
    return sorted(mdl_path.parent / name for name in names if name)


def cache_key(mdl_path: str | os.PathLike, outputs: Iterable[str] | None = None) -> str:
    """Hash the .mdl text, its data files, the PySD version and the generator's own source.

    For a module computing only some outputs, their names are hashed too.
    """
    return _cache_key(Path(mdl_path).read_bytes(), Path(mdl_path), outputs)


def _cache_key(mdl_bytes: bytes, mdl_path: Path | None = None, outputs: Iterable[str] | None = None) -> str:
    import pysd

    digest = hashlib.sha256()
    if outputs is not None:
        digest.update(b"outputs=" + "\0".join(sorted(set(outputs))).encode() + b"\0\0")
    digest.update(mdl_bytes)
    if mdl_path is not None:
        # GET XLS/DIRECT data are read at generation: a changed file is a new module
        for path in external_files(mdl_path, mdl_bytes):
            digest.update(b"\0file=" + path.name.encode())
            digest.update(path.read_bytes() if path.is_file() else b"\0missing")
    digest.update(b"\0pysd=" + pysd.__version__.encode())
    digest.update(b"\0generator=" + _generator_hash().encode())
    return digest.hexdigest()


class VectorModel:
    """A Vensim model compiled into the vector engine, with an on-disk cache.

    Parameters
    ----------
    mdl_path:
        The Vensim .mdl file.
    cache_dir:
        Where the generated module is kept, as ``<stem>_<hash>.py``; default
        ``<mdl folder>/.cache/vector``.  The hash covers the .mdl text, the
        PySD version and this generator's source, so editing any of them
        regenerates on the next load (or :meth:`refresh`).
    outputs:
        Python names of variables: the vector backend then integrates only the
        equations and stateful objects these depend on (:func:`generate`), the
        same operations in the same order, so their values are bit for bit the
        full model's; asking its vector backend for another variable raises
        KeyError.  The names are part of the cache key (one module per set).

    Attributes
    ----------
    module:
        The loaded generated module (``simulate``, ``VARIABLES``, ...).
    generated_path:
        Path of the generated .py file.
    regenerated:
        True when this load had to generate the module (cache miss).
    mdl_sha256:
        SHA-256 of the .mdl bytes the loaded module was generated from.
    source_sha256:
        SHA-256 of the model the results belong to: ``mdl_sha256`` unless the
        owner compiled a derived .mdl and says otherwise
        (:func:`greenpath.engines.vector_loader.vector_model` sets the hash of
        ``model/jiaozuo.mdl`` on its year-table variants).
    """

    def __init__(self, mdl_path: str | os.PathLike, cache_dir: str | os.PathLike | None = None,
                 outputs: Iterable[str] | None = None):
        self.mdl_path = Path(mdl_path)
        self.outputs = None if outputs is None else tuple(sorted(set(outputs)))
        if cache_dir is None:
            cache_dir = self.mdl_path.parent / ".cache" / "vector"
        self.cache_dir = Path(cache_dir)
        self.module: Any = None
        self.key = ""
        self.generated_path = Path()
        self.regenerated = False
        self.mdl_sha256 = ""
        self.source_sha256 = ""
        self.refresh()

    def refresh(self) -> bool:
        """Reload if the .mdl (or PySD, or the generator) changed; True if it did.

        The .mdl is read once for the key; if it changes while it is being
        translated, the generation starts again, so the cached module always
        belongs to the key (and ``mdl_sha256``) it is stored under.
        """
        for _ in range(5):
            raw = self.mdl_path.read_bytes()
            key = _cache_key(raw, self.mdl_path, self.outputs)
            if key == self.key and self.module is not None:
                return False
            stem = re.sub(r"[^0-9A-Za-z_]", "_", self.mdl_path.stem)
            path = self.cache_dir / f"{stem}_{key[:24]}.py"
            # Only bytes matching the hash recorded when they were written are executed
            # (greenpath.engines.cache); a changed or damaged module is generated again.
            code = _gp_cache.read_verified(path, path.with_suffix(".sha256"))
            self.regenerated = code is None
            if self.regenerated:
                source = generate(self.mdl_path) if self.outputs is None else generate(self.mdl_path, self.outputs)
                if self.mdl_path.read_bytes() != raw:
                    continue  # edited while it was translated: translate the new text
                code = source.encode("utf-8")
                _gp_cache.atomic_write_verified(path, code, path.with_suffix(".sha256"))
            break
        else:
            raise RuntimeError(f"{self.mdl_path.name} kept changing while it was translated; try again")
        if code is None:  # pragma: no cover - the loop leaves with code or raises
            raise RuntimeError(f"no generated module for {self.mdl_path.name}")
        module_name = f"_greenpath_vector_{stem}_{key[:24]}"
        spec = importlib.util.spec_from_loader(module_name, loader=None, origin=str(path))
        if spec is None:  # pragma: no cover
            raise ImportError(f"cannot load generated module {path.name}")
        module = importlib.util.module_from_spec(spec)
        module.__file__ = str(path)
        sys.modules[module_name] = module
        exec(compile(code, str(path), "exec"), module.__dict__)  # the checked bytes, not the file again
        previous = self.mdl_sha256
        self.module = module
        self.key = key
        self.generated_path = path
        self.mdl_sha256 = hashlib.sha256(raw).hexdigest()
        if not self.source_sha256 or self.source_sha256 == previous:
            self.source_sha256 = self.mdl_sha256
        return True

    # -- metadata -------------------------------------------------------------

    @property
    def variables(self) -> tuple[dict[str, Any], ...]:
        """Metadata of every variable.

        Each entry: py_name, name, units, documentation, kind
        (constant/auxiliary/stock/lookup/control/time), default, dynamic.
        """
        return self.module.VARIABLES

    @property
    def constants(self) -> dict[str, float]:
        """Default values of the constants (the names ``params`` accepts)."""
        return dict(self.module.CONSTANTS)

    @property
    def lookups(self) -> dict[str, tuple[tuple[float, ...], tuple[float, ...]]]:
        """Default tables (x, y) of the lookups (the names ``lookups`` accepts)."""
        return dict(self.module.LOOKUPS)

    def times(self, **control: float | None) -> np.ndarray:
        """Return the saved times for the given control values (defaults: the .mdl's)."""
        return self.module.saved_times(**control)

    # -- running -----------------------------------------------------------------

    def simulate(
        self,
        params: dict[str, Any] | None = None,
        n: int | None = None,
        lookups: dict[str, tuple[Any, Any]] | None = None,
        *,
        initial_time: float | None = None,
        final_time: float | None = None,
        time_step: float | None = None,
        saveper: float | None = None,
        return_columns: list[str] | None = None,
        workers: int = 1,
        backend: str = "auto",
    ) -> dict[str, np.ndarray]:
        """Run ``n`` scenarios; ``{column: array (n, n_saved_times)}``.

        ``params`` maps constants (Python or Vensim names) to a scalar (all
        scenarios) or an array of shape (n,); ``lookups`` maps lookups to
        ``(x (k,), y (k,) or (n, k))``.  ``n`` defaults to the length of the
        per-scenario inputs (or 1).  Columns are keyed as given in
        ``return_columns`` (default: every non-lookup variable, by Python
        name).  ``workers > 1`` splits the scenarios over that many processes
        (Linux only, forked; outputs are written to shared memory); elsewhere
        it runs in-process.  ``backend``: ``"vector"`` (NumPy over the
        scenario axis), ``"scalar"`` (Python floats, one scenario after the
        other) or ``"auto"`` (scalar up to :data:`AUTO_SCALAR_MAX_RUNS`
        scenarios, where one NumPy pass costs more than the scalar runs; else
        vector).
        """
        if n is None:
            n = _infer_n(params, lookups)
        if backend not in ("auto", "vector", "scalar"):
            raise ValueError(f"backend must be 'auto', 'vector' or 'scalar', got {backend!r}")
        module = self.module
        if backend == "scalar" or (backend == "auto" and n <= AUTO_SCALAR_MAX_RUNS):
            control = (initial_time, final_time, time_step, saveper)
            if n == 1:
                return module.simulate_one(params, lookups, *control, return_columns)
            runs = [
                module.simulate_one(*_one_scenario(params, lookups, i, n), *control, return_columns)
                for i in range(int(n))
            ]
            return {column: np.concatenate([run[column] for run in runs]) for column in runs[0]}
        plan = module._plan(params, n, lookups, initial_time, final_time, time_step, saveper, return_columns)
        n = plan["n"]
        shape = (len(plan["columns"]), plan["n_saved"], n)
        workers = max(1, min(int(workers), n))
        if workers > 1 and shape[0] and _can_fork():
            bufs = _run_forked(module, plan, shape, workers)
        else:
            bufs = [np.empty(shape[1:]) for _ in range(shape[0])]
            module._run_range(plan, bufs, 0, n)
        return {column: buf.T for column, buf in zip(plan["columns"], bufs, strict=True)}

    def simulate_block(
        self,
        params: dict[str, Any] | None = None,
        lookups: dict[str, tuple[Any, Any]] | None = None,
        *,
        initial_time: float | None = None,
        final_time: float | None = None,
        time_step: float | None = None,
        saveper: float | None = None,
        return_columns: list[str] | None = None,
    ) -> tuple[list[str], np.ndarray, np.ndarray]:
        """One scenario on the scalar backend as ``(columns, array (len(columns), n_saved), times)``.

        The same inputs and values as ``simulate(params, 1, lookups, backend="scalar")``
        without a dict of one array per column: for callers that want one block
        (a result frame).  ``times`` are the run's saved times as :meth:`times` gives
        them.
        """
        control = (initial_time, final_time, time_step, saveper)
        return self.module.simulate_one(params, lookups, *control, return_columns, as_block=True)

    def run(
        self,
        params: dict[str, Any] | None = None,
        n: int | None = None,
        lookups: dict[str, tuple[Any, Any]] | None = None,
        *,
        initial_time: float | None = None,
        final_time: float | None = None,
        time_step: float | None = None,
        saveper: float | None = None,
        return_columns: list[str] | None = None,
        workers: int = 1,
        backend: str = "auto",
    ):
        """Run ``n`` scenarios and return an ``xarray.Dataset``.

        Same arguments as :meth:`simulate`.  One data variable per returned
        column (named as requested) with dims ``("scenario", "time")``;
        ``time`` holds the saved times as PySD's ``run()`` index does,
        ``scenario`` is ``0..n-1``; the Vensim name, units and documentation
        are in each variable's attrs.
        """
        import xarray as xr

        if n is None:
            n = _infer_n(params, lookups)
        control = {
            "initial_time": initial_time,
            "final_time": final_time,
            "time_step": time_step,
            "saveper": saveper,
        }
        data = self.simulate(
            params, n, lookups, **control, return_columns=return_columns, workers=workers, backend=backend
        )
        times = self.module.saved_times(**control, params=_scalar_params(params))
        meta = {m["py_name"]: m for m in self.module.VARIABLES}
        dataset = xr.Dataset(coords={"scenario": np.arange(n), "time": times})
        for column, values in data.items():
            info = meta.get(self.module._py_name(column), {})
            dataset[column] = xr.DataArray(
                values,
                dims=("scenario", "time"),
                attrs={
                    "name": info.get("name", column),
                    "units": info.get("units", ""),
                    "documentation": info.get("documentation", ""),
                },
            )
        return dataset


def _can_fork() -> bool:
    from greenpath.engines import parallel

    return parallel.can_fork()


def _run_forked(module, plan, shape, workers: int) -> list[np.ndarray]:
    """Integrate ``plan`` over ``workers`` processes sharing the output memory.

    The parent integrates the first range itself; each forked child integrates one
    other range straight into a shared anonymous mapping
    (:func:`greenpath.engines.parallel.fork_ranges`); an exception in a child is raised
    here.
    """
    import mmap

    from greenpath.engines import parallel

    memory = mmap.mmap(-1, max(1, int(np.prod(shape)) * 8), flags=mmap.MAP_SHARED)
    block = np.frombuffer(memory, dtype=float, count=int(np.prod(shape))).reshape(shape)
    bufs = list(block)
    parallel.fork_ranges(lambda lo, hi: module._run_range(plan, bufs, lo, hi), shape[2], workers)
    return bufs


def _one_scenario(params, lookups, i: int, n: int):
    """Parameters and lookups of scenario ``i`` of ``n`` (per-scenario arrays sliced)."""
    one_params = {}
    for key, value in (params or {}).items():
        shape = np.shape(value)
        if shape and shape != (n,):
            raise ValueError(f"parameter {key!r}: expected a scalar or shape ({n},), got {shape}")
        one_params[key] = np.asarray(value, dtype=float)[i] if shape else value
    one_lookups = {}
    for key, (x, y) in (lookups or {}).items():
        y = np.asarray(y, dtype=float)
        if y.ndim == 2 and y.shape[0] != n:
            raise ValueError(f"lookup {key!r}: y must have shape (k,) or ({n}, k), got {y.shape}")
        one_lookups[key] = (x, y[i] if y.ndim == 2 else y)
    return one_params, one_lookups


def _infer_n(params, lookups) -> int:
    sizes = set()
    for value in (params or {}).values():
        shape = np.shape(value)
        if shape:
            sizes.add(shape[0])
    for _x, y in (lookups or {}).values():
        shape = np.shape(y)
        if len(shape) == 2:
            sizes.add(shape[0])
    if len(sizes) > 1:
        raise ValueError(f"per-scenario inputs disagree on the number of scenarios: {sizes}")
    return sizes.pop() if sizes else 1


def _scalar_params(params):
    """Only the scalar params: enough to evaluate control-variable defaults."""
    return {k: v for k, v in (params or {}).items() if np.ndim(v) == 0} or None
