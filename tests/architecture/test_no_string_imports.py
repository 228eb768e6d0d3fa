"""No dependency of ``greenpath`` on itself is written as a string.

An import written as a string (``importlib.import_module("greenpath.runners.wedges")``,
a hook ``"greenpath.runners.ensemble:bands"``, a table of function names looked up with
``getattr``) hides the dependency from the reader, from the arrows test
(``test_layout.py``), from mypy and from the linters, and invites a "module missing"
branch that can never run.  Every part imports what it uses; where an arrow forbids the
import, the caller hands the function in.

Read with :mod:`ast` (nothing is executed): the test fails on

* a call of an import function (``import_module``, ``__import__``, ``find_spec``, ...)
  in the package whose argument names a ``greenpath`` module or is not a plain string
  (an f-string or a variable: a name the reader cannot see);
* any other string in the package's code (docstrings aside) that is a dotted
  ``greenpath.`` module name or a ``module:function`` hook.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

import greenpath

PACKAGE = Path(greenpath.__file__).resolve().parent
#: Functions that import a module named by a string.
IMPORT_FUNCTIONS = {"import_module", "__import__", "find_spec", "find_loader",
                    "load_module", "run_module"}
#: A dotted greenpath module name, optionally with ``:attribute`` (a hook).
MODULE_NAME = re.compile(r"^greenpath(\.[A-Za-z_]\w*)+(:[A-Za-z_]\w*)?$")


def _docstrings(tree: ast.AST) -> set[int]:
    out = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef):
            body = node.body
            if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant):
                out.add(id(body[0].value))
    return out


def _called_name(func: ast.expr) -> str | None:
    if isinstance(func, ast.Name):
        return func.id
    if isinstance(func, ast.Attribute):
        return func.attr
    return None


def string_imports(source: str) -> list[str]:
    """Return each string-written dependency in ``source`` as ``line: what``."""
    tree = ast.parse(source)
    found = []
    in_calls: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and _called_name(node.func) in IMPORT_FUNCTIONS:
            for arg in [*node.args[:1], *[k.value for k in node.keywords if k.arg == "name"]]:
                in_calls.add(id(arg))
                if isinstance(arg, ast.Constant) and isinstance(arg.value, str):
                    if arg.value.split(".")[0] == "greenpath":
                        found.append(f"{node.lineno}: {_called_name(node.func)}({arg.value!r})")
                else:
                    found.append(f"{node.lineno}: {_called_name(node.func)}(<{type(arg).__name__}>)"
                                 ": a module name the reader cannot see")
    docs = _docstrings(tree)
    for node in ast.walk(tree):
        if (isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in docs
                and id(node) not in in_calls and MODULE_NAME.match(node.value)):
            found.append(f"{node.lineno}: {node.value!r} (a module written as a string)")
    return found


def test_no_greenpath_module_is_named_in_a_string():
    bad = []
    for path in sorted(PACKAGE.rglob("*.py")):
        bad += [f"{path.relative_to(PACKAGE.parent)}:{hit}"
                for hit in string_imports(path.read_text(encoding="utf-8"))]
    assert bad == [], ("dependencies written as strings; import the module (or hand the "
                       "function in from the caller when an arrow forbids it):\n  "
                       + "\n  ".join(bad))


@pytest.mark.parametrize("source", [
    'import importlib\nm = importlib.import_module("greenpath.runners.wedges")\n',
    'from importlib import import_module\nm = import_module("greenpath.outputs.deck")\n',
    'import importlib.util\nimportlib.util.find_spec("greenpath.scenarios.targets")\n',
    'def f():\n    return optional_module("greenpath.runners.wedges")\n'
    'def optional_module(name):\n    return __import__(name)\n',
    'HOOK = "greenpath.runners.ensemble:bands"\n',
    'import importlib\nfrom greenpath.cli import commands\n'
    'm = importlib.import_module(f"{commands.__name__}.run")\n',
    'm = __import__("greenpath")\n',
])
def test_the_check_finds_a_string_dependency(source):
    assert string_imports(source) != []


@pytest.mark.parametrize("source", [
    'from greenpath.runners import wedges\n',
    'def f():\n    from greenpath.outputs import charts\n    return charts\n',
    '"""Uses :mod:`greenpath.runners.wedges` (a docstring names it)."""\n',
    'import importlib\nm = importlib.import_module("pptx")\n',
    'PROG = "greenpath"\n',
])
def test_the_check_passes_plain_imports(source):
    assert string_imports(source) == []
