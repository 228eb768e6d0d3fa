"""Every registry parameter carries a bilingual label, unique in each language.

``greenpath sensitivity``, ``greenpath show``, ``greenpath vars``, the app's model page
and the charts name parameters by these labels; a row without one shows its raw
identifier to the user.
"""

from __future__ import annotations

import re
from collections import Counter

import pytest

from greenpath.model import registry as reg
from greenpath.runners import sensitivity

CJK = re.compile(r"[\u4e00-\u9fff]")
REGISTRY = reg.load_registry()


@pytest.mark.parametrize("name", sorted(REGISTRY))
def test_every_parameter_has_an_english_and_a_chinese_label(name):
    p = REGISTRY[name]
    assert p.label_en.strip(), f"{name} has no label_en"
    assert p.label_zh.strip(), f"{name} has no label_zh"
    assert p.label_en != name, f"{name}: label_en is the identifier"
    assert "_" not in p.label_en, f"{name}: label_en is an identifier"
    assert p.label_en[0].isupper() or p.label_en[0].isdigit() or p.label_en.startswith("CO2"), \
        f"{name}: label_en {p.label_en!r} does not start a phrase"
    assert CJK.search(p.label_zh), f"{name}: label_zh {p.label_zh!r} has no Chinese"
    assert p.label_en == p.label_en.strip()
    assert p.label_zh == p.label_zh.strip()
    assert len(p.label_en) <= 90
    assert len(p.label_zh) <= 40


@pytest.mark.parametrize("lang", ["en", "zh"])
def test_labels_are_unique_in_each_language(lang):
    labels = Counter(getattr(p, f"label_{lang}").casefold() for p in REGISTRY.values())
    twice = sorted(label for label, n in labels.items() if n > 1)
    assert not twice, f"label_{lang} used by more than one parameter: {twice}"


def test_sensitivity_names_uncertainties_by_their_labels():
    for name in ("wind_full_load_hours", "gdp_growth_2023_to_2030", "grid_loss_rate"):
        p = REGISTRY[name]
        assert p.kind == "uncertainty"
        assert sensitivity.factor_label(name, "en") == p.label_en != name
        assert sensitivity.factor_label(name, "zh") == p.label_zh != name
    assert sensitivity.factor_label("wind_full_load_hours", "zh") == "风电年利用小时数"
