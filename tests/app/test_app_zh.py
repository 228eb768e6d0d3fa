"""中文 mode of the Model and Calibration pages: no English left where a reader reads.

What is checked, and what is exempt (and why):

* checked: titles, headers, captions, notes, widget labels and options, table headers,
  the name / sector / kind / unit / role / grade columns of the tables, every label and
  tooltip of every sector's stock-and-flow diagram, the recorded-vs-simulated chart;
* exempt: the model's own text shown as a reference beside the Chinese (the ``.mdl``
  names, Python names and equations, the ``.mdl`` comments, the registry's source
  quotes, the calibration file's keys and ``[meta]``, the generated fit report): the
  page says in Chinese that these are the original English text.

A word is English when it has two or more Latin letters and is not one of
:data:`ALLOWED` (abbreviations a Chinese planning document writes in Latin letters too).
"""

from __future__ import annotations

import json
import re
import tomllib
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from greenpath.app import calibration_view, model_view, ui
from greenpath.i18n import has, unit_key, unit_text
from greenpath.model import registry as reg

ROOT = Path(__file__).resolve().parents[2]
APP = str(ROOT / "app.py")
#: Latin-letter words a Chinese reader sees in Chinese planning texts too: CO₂ and its
#: units, GDP, the inventory and database names (CEADs, GEM), CCUS, LNG/CNG, an author cited by
#: name (Chen et al. 2020; Lewis's grades of MAPE), Python (the "Python name" column), and
#: "Language" of the language switch (it names itself in both languages so a reader of
#: either finds it).  File names the pages cite (``model/jiaozuo.mdl``) are not words.
ALLOWED = {"CO", "CO2", "PM2", "GB", "GDP", "CEADs", "GEM", "CCUS", "LNG", "CNG", "Chen", "Lewis", "Python",
           "Language"}
_WORD = re.compile(r"[A-Za-z][A-Za-z0-9]+")
_FILE = re.compile(r"[\w/.\\-]+\.(?:mdl|toml|csv|md)\b")
#: Table columns of the model's and the registry's own (English) reference text.
EXEMPT_COLUMNS = {"vensim_name", "name", "variable", "equation", "comment", "source"}


def english(text: str) -> list[str]:
    """Return the English words in ``text`` (see :data:`ALLOWED`)."""
    return [w for w in _WORD.findall(_FILE.sub(" ", str(text))) if w not in ALLOWED]


def _page(page: str) -> AppTest:
    at = AppTest.from_file(APP, default_timeout=180)
    at.query_params["lang"] = "zh"
    at.query_params["page"] = page
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def _texts(at: AppTest, skip: set[str] = frozenset()) -> list[tuple[str, str]]:
    """(where, text) of everything the page shows that must be Chinese."""
    out: list[tuple[str, str]] = []
    for kind in ("title", "subheader", "caption", "info", "warning", "error", "markdown"):
        out += [(kind, el.value) for el in at.get(kind) if el.value.strip() not in skip]
    for kind in ("selectbox", "toggle", "text_input", "radio"):
        for el in at.get(kind):
            out.append((f"{kind} label", el.label))
            if kind in ("selectbox", "radio"):
                out += [(f"{kind} option", o) for o in el.options
                        if o not in ("English",)]  # the language switch names itself
    out += [("expander", el.label) for el in at.expander]
    for el in at.dataframe:
        config = json.loads(el.proto.columns or "{}")
        out += [("table header", c.get("label", name) if isinstance(c, dict) else c)
                for name, c in config.items() if name != "_index"]
        frame = el.value
        for col in frame.columns:
            if col in EXEMPT_COLUMNS or frame[col].dtype.kind in "fiub":
                continue
            out += [(f"table column {col}", v) for v in frame[col].dropna().unique()]
    for el in at.get("vega_lite_chart"):
        spec = json.loads(el.proto.spec)
        enc = spec.get("encoding", {})
        out += [("chart title", enc[a]["title"]) for a in ("x", "y")
                if isinstance(enc.get(a, {}).get("title"), str)]
        out += [("chart series", r["series"]) for r in spec.get("data", {}).get("values", [])
                if "series" in r]
    return out


def _assert_chinese(texts: list[tuple[str, str]]) -> None:
    left = sorted({f"{where}: {text!r} ({', '.join(english(text))})"
                   for where, text in texts if english(text)})
    assert not left, "English left in 中文 mode:\n" + "\n".join(left)


def test_detector_finds_english() -> None:
    """The check itself: an English label is found, Chinese with CO₂ and GDP passes."""
    assert english("wind pipeline") == ["wind", "pipeline"]
    assert english("二氧化碳排放(CO2),单位GDP能耗") == []
    assert english("当前使用的校准:calibrated\\.toml; model/jiaozuo.mdl") == []
    with pytest.raises(AssertionError, match="Wind Capacity"):
        _assert_chinese([("diagram", "Wind Capacity")])


def test_every_model_variable_has_a_chinese_name() -> None:
    """Registry label, an output name of the tables, or ``i18n/model_names.toml``."""
    names = ui.variable_names("zh")
    variables = ui.cached_variables()
    missing = [n for n, g in zip(variables["name"], variables["group"], strict=True)
               if g != "Control" and not names.get(n)]
    assert not missing, f"no Chinese name (add model_var_<name> to i18n/model_names.toml): {missing}"
    assert not [n for n in missing if english(names.get(n, ""))]


def test_every_unit_has_chinese_words() -> None:
    """Every unit of the model and the registry is said in words in Chinese."""
    units = set(ui.cached_variables()["unit"].astype(str))
    units |= {p.unit for p in reg.load_registry().values()}
    bare = sorted(u for u in units if u and not has(unit_key(u)))
    assert not bare, f"units without an entry chart_unit_<unit>: {bare}"
    assert unit_text("%/Year", "zh") == "%/年"  # not the key of "Year"


def test_every_fit_series_has_a_chinese_name() -> None:
    """Each series of ``calibrated.toml`` [fit] has ``app_cal_series_<key>``."""
    path = reg.calibration_path()
    if path is None:
        pytest.skip("no calibrated.toml in force")
    fit = tomllib.loads(Path(path).read_text(encoding="utf-8")).get("fit", {})
    missing = [k for k in fit if not has(f"app_cal_series_{k}")]
    assert fit, "calibrated.toml has no [fit] table"
    assert not missing, f"fit series without app_cal_series_<key>: {missing}"


def test_calibration_page_is_chinese() -> None:
    at = _page("calibration")
    # The generated report, shown as written (the page says so in Chinese).
    report = {text.strip() for kind, text, _ in calibration_view.load().blocks if kind == "md"}
    texts = _texts(at, skip=report)
    assert any(where.startswith("table column label") for where, _ in texts)
    _assert_chinese(texts)
    for variable in calibration_view.COMPARABLE:
        at.selectbox(key="w_cal_var").set_value(variable).run()
        _assert_chinese(_texts(at, skip=report))


_DOT_TEXT = re.compile(r'(label|tooltip)="((?:[^"\\]|\\.)*)"')


def test_model_page_and_every_diagram_are_chinese() -> None:
    at = _page("model")
    _assert_chinese(_texts(at))
    assert "label" in at.dataframe[0].value.columns
    # Every sector's whole diagram (the page shows a large one part by part).
    variables = ui.cached_variables()
    names = ui.variable_names("zh")
    groups = {g: ui.sector_label(g, "zh") for g in set(variables["group"])}
    with ui.model_pool().model() as m:
        deps = m._model._dependencies
    texts = []
    for group in dict.fromkeys(variables["group"]):
        if group == "Control":
            continue
        dot = model_view.sector_dot(group, variables, deps, net_change_label="净变化",
                                    names=names, group_names=groups)
        texts += [(f"diagram {group} {kind}", text.replace("\\n", " "))
                  for kind, text in _DOT_TEXT.findall(dot)]
    assert len(texts) > 300
    _assert_chinese(texts)
