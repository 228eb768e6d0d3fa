"""The model page: the variable table and a stock-and-flow diagram per sector.

The diagram is DOT text built from the dependencies PySD records for every variable
(``model._dependencies``) and the equations of the ``.mdl``; Streamlit draws DOT in the
browser, so no system Graphviz is needed.  Notation (Forrester, as in Vensim):

* stocks are boxes; their flows are valves (small diamonds) joined to them by thick
  pipes, an inflow pointing into the stock and an outflow out of it;
* auxiliaries are ellipses, constants plain text, graphical lookups italic text;
* thin arrows are information links ("depends on");
* grey dashed nodes belong to another sector (their own sector is in the tooltip).

A stock whose rate is not a plain sum of named flows (e.g. ``(target - level) / time``)
gets one drawn valve, "net change", fed by the variables of the rate.
"""

from __future__ import annotations

import re
import textwrap
from collections.abc import Collection, Mapping

import pandas as pd

CONTROL = {"time", "initial_time", "final_time", "time_step", "saveper"}
_NAME = re.compile(r"^[A-Za-z][\w ]*$")


def py_name(vensim_name: str) -> str:
    """Return the Python name PySD gives a Vensim name."""
    return re.sub(r"\W+", "_", vensim_name.lower()).strip("_")


def _split_top(text: str, seps: str) -> list[tuple[str, str]]:
    """Split ``text`` at top-level characters in ``seps``; returns (separator, part)."""
    parts: list[tuple[str, str]] = []
    current: list[str] = []
    depth, sep = 0, "+"
    for ch in text:
        if ch in "([":
            depth += 1
        elif ch in ")]":
            depth -= 1
        if depth == 0 and ch in seps:
            parts.append((sep, "".join(current).strip()))
            current, sep = [], ch
        else:
            current.append(ch)
    parts.append((sep, "".join(current).strip()))
    return parts


def integ_flows(equation: str) -> list[tuple[str, int]] | None:
    """Named flows of a stock and their signs, from ``INTEG ( rate, initial )``.

    Returns None when the rate is not a plain sum/difference of variable names.
    """
    m = re.match(r"^\s*INTEG\s*\((.*)\)\s*$", equation, re.IGNORECASE | re.DOTALL)
    if not m:
        return None
    rate = _split_top(m.group(1), ",")[0][1]
    terms = _split_top(rate, "+-")
    if terms and terms[0][1] == "":  # leading sign
        terms = terms[1:]
    out = []
    for sign, term in terms:
        if not _NAME.match(term):
            return None
        out.append((py_name(term), -1 if sign == "-" else 1))
    return out or None


def direct_dependencies(name: str, deps: Mapping[str, object]) -> set[str]:
    """Variables ``name`` reads, with PySD's stateful objects (smooth, delay) flattened."""
    out: set[str] = set()
    seen: set[str] = set()
    stack = [name]
    while stack:
        current = stack.pop()
        entry = deps.get(current)
        if not isinstance(entry, dict) or "__lookup__" in entry:
            continue
        items: dict = {}
        if "step" in entry or "initial" in entry:
            for part in ("initial", "step"):
                items.update(entry.get(part) or {})
        else:
            items = entry
        for dep in items:
            if dep.startswith("__") or dep in CONTROL:
                continue
            if dep.startswith("_"):
                if dep not in seen:
                    seen.add(dep)
                    stack.append(dep)
                continue
            if dep != name:
                out.add(dep)
    return out


def _label(text: str, width: int = 18) -> str:
    return "\\n".join(textwrap.wrap(text, width)) or text


def _quote(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"').replace("\\\\n", "\\n") + '"'


def _sector(group: str, variables: pd.DataFrame) -> tuple[pd.DataFrame, list[str]]:
    """Return the variable table by name and the members of sector ``group`` (no controls)."""
    table = variables.set_index("name")
    return table, [n for n in table.index[table["group"] == group] if n not in CONTROL]


def sector_dot(group: str, variables: pd.DataFrame, deps: Mapping[str, object],
               net_change_label: str = "net change", include_external: bool = True,
               only: Collection[str] | None = None,
               names: Mapping[str, str] | None = None,
               group_names: Mapping[str, str] | None = None) -> str:
    """DOT text of the stock-and-flow diagram of one sector.

    Parameters
    ----------
    group
        The sector (the ``group`` column of ``JiaozuoModel.variables()``).
    variables
        ``JiaozuoModel.variables()``.
    deps
        PySD's dependency map (``model._dependencies``).
    net_change_label
        Label of the valve drawn for a stock whose rate is an expression.
    include_external
        Draw variables of other sectors that this sector reads.
    only
        Draw only these members of the sector (a part, see :func:`sector_parts`); the
        other members they read are drawn like variables of other sectors.
    names
        Label of a variable in the reader's language (e.g. the registry's Chinese
        labels); a variable missing here is labelled with its model name.
    group_names
        Name of a sector in the reader's language (the tooltip of another sector's variable).
    """
    names = names or {}
    group_names = group_names or {}
    table, members = _sector(group, variables)
    if only is not None:
        keep = set(only)
        members = [n for n in members if n in keep]
    member_set = set(members)
    lines = [
        "digraph sector {",
        '  graph [rankdir=LR, bgcolor="transparent", nodesep=0.25, ranksep=0.5, '
        'fontname="Noto Sans CJK SC,Greenpath Noto Sans SC,Helvetica"];',
        '  node [fontname="Noto Sans CJK SC,Greenpath Noto Sans SC,Helvetica", fontsize=10];',
        '  edge [color="#8a8a8a", arrowsize=0.6];',
    ]
    external: set[str] = set()
    edges: list[str] = []
    flows_of: dict[str, list[tuple[str, int]]] = {}
    for name in members:
        row = table.loc[name]
        kind = row["kind"]
        if kind == "stock":
            flows = integ_flows(str(row["equation"]))
            if flows is None:
                valve = f"{name}__net"
                lines.append(f"  {_quote(valve)} [label={_quote(net_change_label)}, "
                             'shape=diamond, style=filled, fillcolor="#dfe9f5", fontsize=8, '
                             "width=0.3, height=0.3];")
                flows = [(valve, 1)]
                for dep in direct_dependencies(f"_integ_{name}", deps):
                    edges.append(f"  {_quote(dep)} -> {_quote(valve)};")
                    if dep not in member_set:
                        external.add(dep)
            flows_of[name] = flows
            lines.append(f"  {_quote(name)} [label={_quote(_label(names.get(name) or row['vensim_name']))}, "
                         'shape=box, style="filled,bold", fillcolor="#fff4d6", '
                         'color="#8a6d1f"];')
        elif kind in ("constant", "lever", "uncertainty"):
            colour = "#c0392b" if kind == "lever" else "#555555"
            lines.append(f"  {_quote(name)} [label={_quote(_label(names.get(name) or row['vensim_name']))}, "
                         f'shape=plaintext, fontcolor="{colour}"];')
        elif kind == "lookup":
            lines.append(f"  {_quote(name)} [label={_quote(_label(names.get(name) or row['vensim_name']))}, "
                         'shape=plaintext, fontname="Helvetica-Oblique"];')
        else:
            lines.append(f"  {_quote(name)} [label={_quote(_label(names.get(name) or row['vensim_name']))}, "
                         "shape=ellipse];")
    flow_names = {f for fl in flows_of.values() for f, _ in fl}
    for name in members:
        if name in flows_of or table.loc[name, "kind"] in ("constant", "lever", "uncertainty",
                                                           "lookup"):
            continue
        for dep in sorted(direct_dependencies(name, deps)):
            edges.append(f"  {_quote(dep)} -> {_quote(name)};")
            if dep not in member_set:
                external.add(dep)
    for stock, flows in flows_of.items():
        for flow, sign in flows:
            if flow not in member_set and not flow.endswith("__net"):
                external.add(flow)
            if flow in member_set:
                lines.append(f'  {_quote(flow)} [shape=diamond, style=filled, '
                             'fillcolor="#dfe9f5", fontsize=9];')
            pipe = '[color="#2f5d9b", penwidth=3.5, arrowsize=1.0]'
            if sign > 0:
                edges.append(f"  {_quote(flow)} -> {_quote(stock)} {pipe};")
            else:
                edges.append(f"  {_quote(stock)} -> {_quote(flow)} {pipe};")
    del flow_names
    if include_external:
        for name in sorted(external):
            if name in table.index:
                label, where = table.loc[name, "vensim_name"], table.loc[name, "group"]
            else:
                label, where = name, ""
            label = names.get(name) or label
            where = group_names.get(where, where)
            lines.append(f"  {_quote(name)} [label={_quote(_label(str(label)))}, "
                         'shape=box, style="dashed,rounded", color="#b0b0b0", '
                         f'fontcolor="#808080", tooltip={_quote(str(where))}];')
    else:
        edges = [e for e in edges if not any(_quote(x) in e for x in external)]
    lines.extend(dict.fromkeys(edges))
    lines.append("}")
    return "\n".join(lines)


#: A sector whose diagram has more links than this is offered in parts.
SPLIT_LINKS = 60


def sector_parts(group: str, variables: pd.DataFrame, deps: Mapping[str, object],
                 depth: int = 2) -> dict[str, list[str]]:
    """Split a sector into parts small enough to read: one around each stock, and the rest.

    A stock's part holds the stock, its flows, what the flows read within the sector
    up to ``depth`` links back, and the sector's variables that read the stock.  The
    variables in no stock's part form the last part, ``""``.  Parts overlap where
    stocks share inputs.

    Returns
    -------
    dict
        Stock name (``""`` for the rest) -> member names, in the sector's order.
    """
    table, members = _sector(group, variables)
    member_set = set(members)
    reads = {n: direct_dependencies(n, deps) & member_set for n in members}
    parts: dict[str, list[str]] = {}
    covered: set[str] = set()
    for stock in (n for n in members if table.loc[n, "kind"] == "stock"):
        flows = integ_flows(str(table.loc[stock, "equation"]))
        start = ({f for f, _ in flows} & member_set if flows is not None
                 else direct_dependencies(f"_integ_{stock}", deps) & member_set)
        part, frontier = {stock} | start, set(start)
        for _ in range(depth):
            frontier = {d for n in frontier for d in reads.get(n, ())} - part
            part |= frontier
        part |= {n for n in members if stock in reads[n] and table.loc[n, "kind"] != "stock"}
        parts[stock] = [n for n in members if n in part]
        covered |= part
    rest = [n for n in members if n not in covered]
    if rest:
        parts[""] = rest
    return parts


def variable_table(variables: pd.DataFrame) -> pd.DataFrame:
    """Return the model page's table: name, sector, kind, unit, equation, comment, range, source."""
    cols = ["vensim_name", "name", "group", "kind", "unit", "equation", "comment", "min",
            "max", "source"]
    return variables[cols].sort_values(["group", "kind", "name"]).reset_index(drop=True)
