"""The engine contract: what every engine returns and raises, and where generated code is kept.

Engines run the model's equations: :mod:`greenpath.engines.pysd_engine` (PySD, one run at a
time, the reference) and :mod:`greenpath.engines.vector` (the NumPy vector engine compiled
from the same ``.mdl``, many runs in one pass; :mod:`greenpath.engines.vector_loader` gives
the process's compiled model).  What they share is defined here:

* :class:`RunResult` -- the yearly results of one run (a years x variables table, units,
  metadata);
* :class:`Simulator` -- runs a batch of parameter sets and returns ``{output: (n, T)}``
  arrays (the calibration's fit calls nothing else);
* :class:`ModelError` -- the model could not be translated, loaded or run as asked;
* :data:`ENGINES` -- the names a user may choose (``auto`` = the vector engine, falling
  back to PySD when it refuses the model);
* :func:`cache_root` -- the folder of generated files (translation, vector engine).
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

import numpy as np
import pandas as pd

#: Engine names a user may choose: ``auto`` (the vector engine, falling back to PySD
#: when it refuses the model), ``vector`` (its failure fails the runs), ``pysd``.
ENGINES = ("auto", "vector", "pysd")


class ModelError(RuntimeError):
    """The model could not be translated, loaded or run as asked."""


def cache_root() -> Path:
    """Folder for generated files (translation, vector engine): never committed."""
    env = os.environ.get("GREENPATH_CACHE_DIR")
    if env:
        return Path(env)
    return Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "greenpath"


@dataclass
class RunResult:
    """Yearly results of one run: a years x variables table plus units and metadata."""

    frame: pd.DataFrame
    units: dict[str, str]
    metadata: dict = field(default_factory=dict)

    def __getitem__(self, name: str) -> pd.Series:
        """Return the yearly series of variable ``name``."""
        return self.frame[name]

    def long(self, scenario: str | None = None) -> pd.DataFrame:
        """Tidy long format: scenario, variable, year, value, unit."""
        out = self.frame.reset_index().melt(id_vars="year", var_name="variable")
        out["unit"] = out["variable"].map(self.units)
        out.insert(0, "scenario", scenario or self.metadata.get("scenario", ""))
        return out[["scenario", "variable", "year", "value", "unit"]]


class Simulator(Protocol):
    """Runs a batch of parameter sets; the only thing the calibration's objective needs."""

    name: str
    n_runs: int
    years: np.ndarray

    def simulate(self, params: Mapping[str, np.ndarray], n: int,
                 columns: Sequence[str] = ...) -> dict[str, np.ndarray]:
        """Return ``{output: array (n, T)}`` for ``n`` parameter sets."""
        ...
