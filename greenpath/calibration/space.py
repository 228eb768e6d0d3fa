"""The parameter space: the registry uncertainties a calibration moves, in unit coordinates.

Parameters are moved within their registry ``[min, max]`` and scaled to the unit
interval, ``u = (x - min) / (max - min)``, so one unit of ``u`` is the whole prior range
of every parameter and the optimisers see comparable scales (:class:`ParameterSpace`).
:data:`DEFAULT_PARAMETERS` is the default fitted set with the data expected to inform
each. When an industrial branch share is fitted, other manufacturing takes the remainder.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from greenpath.calibration.errors import CalibrationError
from greenpath.model import registry as reg

__all__ = [
    "BRANCH_SHARES",
    "DEFAULT_PARAMETERS",
    "REMAINDER_SHARE",
    "FitParameter",
    "ParameterSpace",
]

# Industrial branch shares of 2005 value added must sum to one: when any of them is fitted,
# other manufacturing takes the remainder (it is written to the calibration as well).
BRANCH_SHARES: tuple[str, ...] = (
    "initial_share_nonferrous",
    "initial_share_chemicals",
    "initial_share_building_materials",
    "initial_share_steel",
    "initial_share_green_industry",
)
REMAINDER_SHARE = "initial_share_other_manufacturing"


@dataclass(frozen=True)
class FitParameter:
    """One registry uncertainty the calibration moves.

    Attributes
    ----------
    name : str
        Registry (Python) name.
    lower, upper : float
        Bounds, the registry ``min`` and ``max``.
    prior : float
        The registry default (the value before calibration).
    unit : str
        Registry unit.
    informed_by : str
        Which data are expected to inform it (shown in the report).
    """

    name: str
    lower: float
    upper: float
    prior: float
    unit: str
    informed_by: str = ""

    @property
    def span(self) -> float:
        """Width of the allowed range."""
        return self.upper - self.lower


#: The default fitted set: name -> which data inform it.
DEFAULT_PARAMETERS: dict[str, str] = {
    # growth drivers
    "initial_gdp": "real GDP level from 2020 (through the recorded growth chain)",
    "gdp_growth_2017": "real GDP level from 2020 only (product with 2020 growth); prior",
    "gdp_growth_2020": "real GDP level from 2020 only (product with 2017 growth); prior",
    "initial_primary_share": "sector shares",
    "initial_tertiary_share": "sector shares",
    "primary_growth_differential": "share trends, GDP growth, recorded sector growth",
    "tertiary_growth_differential": "share trends, GDP growth, recorded sector growth",
    "industry_growth_differential": "share trends, GDP growth, recorded sector growth",
    # industry structure and intensity trends
    "initial_share_nonferrous": "electricity level (aluminium smelting); other manufacturing is the remainder",
    "electricity_share_nonferrous": "electricity level",
    "initial_intensity_nonferrous": "electricity level, CO2 level",
    "initial_intensity_chemicals": "CO2 level",
    "initial_intensity_building_materials": "CO2 level",
    "initial_intensity_steel": "CO2 level",
    "initial_intensity_services": "non-industrial electricity (total minus industrial, 2017-19)",
    "services_electricity_share": "non-industrial electricity (total minus industrial, 2017-19)",
    "initial_residential_energy_per_capita": "CO2 level (household heating and cooking fuels)",
    "initial_residential_electricity_per_capita": "non-industrial electricity (total minus industrial, 2017-19)",
    "electricity_share_other_manufacturing": "industrial electricity level (whole city 2017-19)",
    "industrial_electrification_rate": "electricity trend (urban districts 2005-14, whole city 2017-19)",
    "industrial_autonomous_intensity_decline": "CO2 and electricity trends",
    # fuel switch, power plant dispatch (emission factors are not fitted: NDRC 2007 per fuel, registry)
    "autonomous_coal_switching": "CO2 trend",
    "public_coal_hours": "CO2 after the 2013-15 coal additions (public units on provincial dispatch)",
    "coal_maximum_hours": "CO2 around the 2010-11 captive retirements (captive units at their cap)",
    "policy_effort_gain": "CO2 and electricity trends (the 11th-13th FYP intensity targets in the dual-control loop)",
}


class ParameterSpace:
    """Map between unit-interval vectors ``u`` and model parameter dictionaries.

    Parameters
    ----------
    names : sequence of str
        Registry uncertainties to fit (default :data:`DEFAULT_PARAMETERS`).
    registry : mapping, optional
        A loaded registry (default :func:`greenpath.model.registry.load_registry`).

    Raises
    ------
    CalibrationError
        If a name is unknown, not an uncertainty, listed twice, or is the derived
        remainder share.
    """

    def __init__(self, names: Sequence[str] | None = None, registry: Mapping[str, Any] | None = None):
        registry = registry if registry is not None else reg.load_registry()
        names = list(names) if names is not None else list(DEFAULT_PARAMETERS)
        if not names:
            raise CalibrationError("no parameters to fit; allowed: registry uncertainties")
        seen: set[str] = set()
        params: list[FitParameter] = []
        for name in names:
            p = registry.get(name)
            if p is None:
                raise CalibrationError(
                    f"parameter {name!r} is not in the registry{reg.suggest(name, registry)}; "
                    "allowed: registry uncertainties"
                )
            if p.kind != "uncertainty":
                raise CalibrationError(
                    f"parameter {name!r} is a {p.kind}; allowed: registry uncertainties only"
                )
            if name == REMAINDER_SHARE:
                raise CalibrationError(
                    f"parameter {name!r} is derived (1 - the other branch shares); fit a branch share instead"
                )
            if name in seen:
                raise CalibrationError(f"parameter {name!r} is listed twice")
            seen.add(name)
            params.append(
                FitParameter(name, p.min, p.max, p.default, p.unit, DEFAULT_PARAMETERS.get(name, ""))
            )
        self.parameters = tuple(params)
        self.names = tuple(p.name for p in params)
        self.lower = np.array([p.lower for p in params])
        self.upper = np.array([p.upper for p in params])
        self.span = self.upper - self.lower
        self.prior_x = np.array([p.prior for p in params])
        self.prior_u = self.to_u(self.prior_x)
        self._registry = registry
        self.derives_remainder = any(n in BRANCH_SHARES for n in self.names)

    def __len__(self) -> int:
        """Return the number of parameters."""
        return len(self.parameters)

    def to_x(self, u: np.ndarray) -> np.ndarray:
        """Unit-interval coordinates -> parameter values (any leading shape), within the bounds."""
        # clip: lower + 1.0 * span can exceed upper by one ulp, which the registry would refuse
        return np.clip(self.lower + np.asarray(u, dtype=float) * self.span, self.lower, self.upper)

    def to_u(self, x: np.ndarray) -> np.ndarray:
        """Parameter values -> unit-interval coordinates."""
        return (np.asarray(x, dtype=float) - self.lower) / self.span

    def params_batch(self, u: np.ndarray) -> dict[str, np.ndarray]:
        """Model parameters for a batch ``u`` of shape (S, D): ``{name: array (S,)}``.

        Includes the derived remainder share when a branch share is fitted.
        """
        x = self.to_x(np.atleast_2d(u))
        out = {name: x[:, j] for j, name in enumerate(self.names)}
        if self.derives_remainder:
            out[REMAINDER_SHARE] = self.remainder(out)
        return out

    def remainder(self, values: Mapping[str, Any]) -> Any:
        """Other-manufacturing share implied by the branch shares in ``values``."""
        total = 0.0
        for name in BRANCH_SHARES:
            total = total + (values[name] if name in values else self._registry[name].default)
        return 1.0 - total

    def named(self, x: np.ndarray) -> dict[str, float]:
        """One parameter vector as ``{name: value}`` incl. any derived share."""
        values = {name: float(v) for name, v in zip(self.names, np.asarray(x, dtype=float), strict=True)}
        if self.derives_remainder:
            values[REMAINDER_SHARE] = float(self.remainder(values))
        return values

    def check_derived(self, values: Mapping[str, float]) -> None:
        """Raise if a derived share falls outside its registry range."""
        if REMAINDER_SHARE in values:
            self._registry[REMAINDER_SHARE].check(values[REMAINDER_SHARE], "derived remainder share")
