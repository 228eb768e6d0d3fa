"""The parts of ``greenpath`` import one another only along the arrows of the README.

README, *How the code is laid out*: the faces (app, cli) -> runners, engines, outputs,
scenarios, calibration; runners -> engines, scenarios; calibration -> engines; everything
-> model.  Engines never import outputs, a face, runners or the calibration; outputs never
run a model (of the engines they see only the contract, ``greenpath.engines.base``).
Every import counts, also one inside a function: parsed with :mod:`ast`, not executed.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import greenpath

PACKAGE = Path(greenpath.__file__).resolve().parent
#: Shared by every part: ``greenpath`` itself (``shipped_dir``), TOML reading, atomic file
#: writing (``files``), the bilingual strings.
SHARED = {"greenpath", "greenpath.tomlfile", "greenpath.files", "greenpath.i18n"}
PARTS = ("model", "engines", "scenarios", "runners", "calibration", "outputs", "app", "cli")
#: part -> the parts it may import (besides itself, model and the shared modules).
ALLOWED = {
    "model": set(),
    "engines": set(),
    "scenarios": set(),
    "runners": {"engines", "scenarios"},
    "calibration": {"engines"},
    "outputs": {"scenarios"},
    "app": {"runners", "engines", "outputs", "scenarios", "calibration"},
    "cli": {"runners", "engines", "outputs", "scenarios", "calibration"},
}
#: Modules of another part that a part may import although the part is not allowed:
#: outputs take results, so they may see the engine contract (RunResult), never an engine.
ALLOWED_MODULES = {"outputs": {"greenpath.engines.base"}}
#: Imports against the arrows that exist today, each with the reason it is still there.
#: The test fails on any other one, and on an entry here that is no longer needed.
KNOWN = {
    ("greenpath.outputs.charts", "greenpath.calibration.history"):
        "the charts read the observed history themselves; it should be handed in",
    ("greenpath.runners.checks", "greenpath.calibration.history"):
        "the model checks read the recorded history from the calibration's reader",
    ("greenpath.runners.batch", "greenpath.outputs.iamc"):
        "the batch writes its IAMC table itself",
    ("greenpath.runners.sensitivity", "greenpath.outputs.charts"):
        "the sensitivity run draws its charts itself",
    # Calibration v2 and costs, merged beside the restructure: what is left to move.
    ("greenpath.runners.batch", "greenpath.calibration.posterior"):
        "the Monte Carlo reads the posterior sample through the calibration's module; the reader belongs in model",
    ("greenpath.runners.ensemble", "greenpath.calibration.posterior"):
        "the bands read the posterior sample through the calibration's module; the reader belongs in model",
    ("greenpath.calibration.report_v2", "greenpath.runners.chance"):
        "the calibration report computes the target chances itself; they should be handed in",
    ("greenpath.calibration.report_v2", "greenpath.scenarios.scenario"):
        "the calibration report loads the plan scenarios for its chance table",
    ("greenpath.calibration.report_v2", "greenpath.scenarios.targets"):
        "the calibration report loads the targets for its chance table",
    ("greenpath.outputs.cost_charts", "greenpath.runners.costs"):
        "the MAC chart takes a CostReport, whose type lives with the cost analysis in runners",
    ("greenpath.outputs.cost_deck", "greenpath.runners.costs"):
        "the cost slides take a CostReport, whose type lives with the cost analysis in runners",
}


def _modules() -> dict[str, Path]:
    out = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        rel = path.relative_to(PACKAGE.parent).with_suffix("")
        parts = list(rel.parts)
        if parts[-1] == "__init__":
            parts.pop()
        out[".".join(parts)] = path
    return out


def _imports(name: str, path: Path) -> set[str]:
    """Every greenpath module ``name`` imports (``from X import y`` counts X.y when it is a module)."""
    modules = _modules()
    found: set[str] = set()
    tree = ast.parse(path.read_text(encoding="utf-8"))
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name.startswith("greenpath"))
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            if not base.startswith("greenpath"):
                continue
            for alias in node.names:
                full = f"{base}.{alias.name}"
                found.add(full if full in modules else base)
    return found


def part_of(module: str) -> str | None:
    """Return the part a module belongs to (None: the shared modules)."""
    bits = module.split(".")
    if module in SHARED or (len(bits) > 1 and ".".join(bits[:2]) in SHARED):
        return None
    return bits[1] if len(bits) > 1 and bits[1] in PARTS else None


def violations() -> set[tuple[str, str]]:
    """Return the ``(importer, imported)`` pairs against the arrows."""
    out = set()
    for name, path in _modules().items():
        mine = part_of(name)
        if mine is None:
            continue
        for target in _imports(name, path):
            theirs = part_of(target)
            if theirs in (None, mine, "model"):
                continue
            if theirs in ALLOWED[mine] or target in ALLOWED_MODULES.get(mine, set()):
                continue
            out.add((name, target))
    return out


def test_every_module_belongs_to_a_part_or_is_shared():
    stray = [m for m in _modules() if m not in SHARED and part_of(m) is None
             and m.split(".")[1] != "_shipped"]
    assert stray == [], f"modules outside the parts {PARTS}: {stray}"


def test_imports_follow_the_arrows():
    found = violations()
    new = sorted(found - set(KNOWN))
    assert new == [], "imports against the arrows (README: How the code is laid out):\n" + "\n".join(
        f"  {a} imports {b}" for a, b in new)
    gone = sorted(set(KNOWN) - found)
    assert gone == [], f"KNOWN lists imports that are gone; remove them: {gone}"


@pytest.mark.parametrize(("source", "expected"), [
    ("from greenpath.outputs import charts\n", {"greenpath.outputs.charts"}),
    ("def f():\n    from greenpath.runners.batch import run_batch\n", {"greenpath.runners.batch"}),
    ("import greenpath.engines.vector as v\n", {"greenpath.engines.vector"}),
    ("from . import registry\n", {"greenpath.model.registry"}),
])
def test_the_import_reader_sees_every_form(tmp_path, source, expected):
    path = tmp_path / "mod.py"
    path.write_text(source, encoding="utf-8")
    assert _imports("greenpath.model.mod", path) == expected


def test_a_planted_import_against_the_arrows_is_caught(tmp_path, monkeypatch):
    """An engine importing a chart module is reported."""
    planted = tmp_path / "greenpath" / "engines" / "planted.py"
    planted.parent.mkdir(parents=True)
    planted.write_text("def f():\n    from greenpath.outputs import charts\n", encoding="utf-8")
    real = _modules()
    monkeypatch.setitem(globals(), "_modules", lambda: {**real, "greenpath.engines.planted": planted})
    assert ("greenpath.engines.planted", "greenpath.outputs.charts") in violations()
