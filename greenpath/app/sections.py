"""The plan's sections, and which lever the sidebar shows under which.

The registry groups levers by model sector (``industry``, ``energy supply``...); policy
staff think in the plan's own sections (二 production, 三 circulation, 四 consumption,
五 infrastructure, 七 policy instruments).  This one table maps each lever to the
section whose clause it comes from, so the sidebar reads like the plan.  A lever added
to the registry but missing here still appears, under "other levers", and a test names
it so the table gets updated.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from greenpath.model import registry as reg


@dataclass(frozen=True)
class Section:
    """A group of levers in the sidebar.

    Attributes
    ----------
    id
        Short identifier, also the suffix of its strings ``app_section_<id>``.
    plan_ref
        The plan's section number (Chinese), e.g. ``"二"``; empty for the timing and
        "other" groups, which are not sections of the plan.
    """

    id: str
    plan_ref: str


SECTIONS: tuple[Section, ...] = (
    Section("timing", ""),
    Section("production", "二"),
    Section("circulation", "三"),
    Section("consumption", "四"),
    Section("energy", "五(一)"),
    Section("buildings", "五(四)"),
    Section("instruments", "七"),
    Section("other", ""),
)

#: lever -> section id.  Where a lever cites two clauses, the first one decides.
LEVER_SECTION: Mapping[str, str] = {
    "policy_start_year": "timing",
    # 二 健全绿色低碳循环发展的生产体系
    "backward_capacity_exit_rate": "production",
    "energy_intensive_growth_cap": "production",
    "new_capacity_intensity_ratio": "production",
    "industrial_saving_action_rate": "production",
    "industrial_saving_action_duration": "production",
    "green_industry_growth_boost": "production",
    "solid_waste_utilisation_target": "production",
    # 三 健全绿色低碳循环发展的流通体系 (green logistics)
    "rail_freight_share_target": "circulation",
    "nev_share_target_delivery": "circulation",
    # 四 健全绿色低碳循环发展的消费体系 (green travel)
    "public_transport_share_target": "consumption",
    # 五(一) 推动能源体系绿色低碳转型
    "industrial_coal_substitution_rate": "energy",
    "wind_build_rate": "energy",
    "utility_pv_build_rate": "energy",
    "distributed_pv_build_rate": "energy",
    "biomass_build_rate": "energy",
    "hydro_build_rate": "energy",
    "new_coal_chp_additions": "energy",
    "small_coal_retirement_rate": "energy",
    "large_coal_retirement_rate": "energy",
    "renewable_heat_share_target": "energy",
    "dual_control_mode": "energy",
    "five_year_energy_intensity_target": "energy",
    "ccus_capacity": "energy",
    "ccus_start_year": "energy",
    # 五(四) 改善城乡人居环境 (buildings, heating, household gas)
    "building_coal_substitution_rate": "buildings",
    "green_building_share_target": "buildings",
    "prefab_share_target": "buildings",
    "urban_gas_penetration_target": "buildings",
    "rural_gas_penetration_target": "buildings",
    # 七 完善法规政策体系 (market instruments)
    "carbon_price": "instruments",
    "differentiated_electricity_price": "instruments",
    "green_finance_rate_reduction": "instruments",
}


def grouped_levers(levers: Mapping[str, reg.Parameter] | None = None,
                   ) -> list[tuple[Section, list[reg.Parameter]]]:
    """Levers grouped by section, in the plan's order; empty sections are dropped.

    Parameters
    ----------
    levers
        The levers to group (default: every lever of the registry).

    Returns
    -------
    list of (Section, list of Parameter)
        Within a section, levers keep registry order.
    """
    levers = reg.levers() if levers is None else levers
    by_id: dict[str, list[reg.Parameter]] = {s.id: [] for s in SECTIONS}
    for name, p in levers.items():
        by_id[LEVER_SECTION.get(name, "other")].append(p)
    return [(s, by_id[s.id]) for s in SECTIONS if by_id[s.id]]


def unmapped(levers: Mapping[str, reg.Parameter] | None = None) -> list[str]:
    """Registry levers missing from :data:`LEVER_SECTION` (shown under "other")."""
    levers = reg.levers() if levers is None else levers
    return [n for n in levers if n not in LEVER_SECTION]
