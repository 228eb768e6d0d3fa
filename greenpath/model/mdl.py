"""Reading the model file: where it is, its time settings, its variables as written.

The equations live only in ``model/jiaozuo.mdl`` (in a wheel: ``greenpath/_shipped/model``).
:func:`parse_mdl` reads names, units, comments and equations straight from its text (PySD's
``doc`` keeps units and comments but not the equation text, which the model page and
``greenpath vars`` show); :func:`model_hash` is the model's version in every result.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from pathlib import Path

from greenpath import shipped_dir

MDL_PATH = shipped_dir("model") / "jiaozuo.mdl"
# The model's time settings (the .mdl's INITIAL TIME, FINAL TIME, TIME STEP, SAVEPER).
INITIAL_TIME = 2005
FINAL_TIME = 2035
TIME_STEP = 0.5
SAVEPER = 1.0


def model_hash(mdl_path: Path = MDL_PATH) -> str:
    """SHA-256 of the model file, the model's version in every result's metadata."""
    return hashlib.sha256(Path(mdl_path).read_bytes()).hexdigest()


@dataclass(frozen=True)
class Variable:
    """A model variable as written in the .mdl."""

    name: str
    vensim_name: str
    unit: str
    comment: str
    equation: str
    kind: str
    group: str


def parse_mdl(mdl_path: Path = MDL_PATH) -> list[Variable]:
    """Read equations, units and comments straight from the .mdl text.

    PySD's ``doc`` keeps units and comments but not the equation text, which the model
    page and ``greenpath vars`` show.
    """
    text = Path(mdl_path).read_text(encoding="utf-8")
    text = text.split("\\\\\\---///", 1)[0]
    if text.startswith("{UTF-8}"):
        text = text[len("{UTF-8}"):]
    out: list[Variable] = []
    group = ""
    for chunk in text.split("|"):
        chunk = chunk.strip()
        if not chunk:
            continue
        parts = chunk.split("~")
        head = parts[0].strip()
        if head.startswith("*"):  # a ".Group" marker between rows of asterisks
            group = head.strip("*\n\t ").split("\n")[0].strip().lstrip(".")
            continue
        if len(parts) < 3:
            continue
        unit, comment = parts[1].strip(), " ".join(parts[2].split())
        is_equation = "=" in head and ("(" not in head or head.index("=") < head.index("("))
        if is_equation:
            lhs, rhs = head.split("=", 1)
            kind = "stock" if re.match(r"INTEG\s*\(", rhs.strip(), re.IGNORECASE) else "auxiliary"
            try:
                float(rhs.strip())
                kind = "constant"
            except ValueError:
                pass
        else:
            lhs, rhs = head.split("(", 1)
            rhs = "(" + rhs
            kind = "lookup"
        vname = " ".join(lhs.split())
        unit = unit.split("[")[0].strip()
        out.append(Variable(
            name=re.sub(r"\W+", "_", vname.lower()).strip("_"), vensim_name=vname,
            unit=unit, comment=comment, equation=" ".join(rhs.split()), kind=kind, group=group,
        ))
    return out
