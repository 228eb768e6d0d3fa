"""Hostile and careless inputs: no path escapes, no tracebacks, no silent acceptance."""

from __future__ import annotations

import re
import warnings
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from greenpath.scenarios import scenario as S


def write(directory: Path, name: str, text: str | bytes) -> Path:
    path = directory / f"{name}.toml"
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text, encoding="utf-8")
    return path


# ---------------------------------------------------------------- extends is a name
@pytest.mark.parametrize("parent", [
    "../outside", "../../../outside", "sub/outside", "/abs/outside", "./outside",
    "..", ".hidden", "-dash", "out side", "c:\\\\outside",
])
def test_extends_must_be_a_name_not_a_path(tmp_path, parent):
    (tmp_path / "inner").mkdir()
    # A readable TOML outside the scenario's folder, with a lever and a foreign section.
    write(tmp_path, "outside", "[levers]\nwind_build_rate = 123\n[build-system]\nsecret = 1\n")
    (tmp_path / "inner" / "sub").mkdir()
    write(tmp_path / "inner" / "sub", "outside", "[levers]\nwind_build_rate = 123\n")
    kid = write(tmp_path / "inner", "kid", f'[scenario]\nextends = "{parent}"\n')
    with pytest.raises(S.ScenarioError) as info:
        S.load(kid)
    msg = str(info.value)
    assert "not a scenario name" in msg
    assert "build-system" not in msg
    assert "secret" not in msg
    assert "123" not in msg


def test_extends_absolute_path_is_refused_even_if_it_exists(tmp_path):
    target = write(tmp_path, "elsewhere", "[levers]\nwind_build_rate = 123\n")
    (tmp_path / "inner").mkdir()
    kid = write(tmp_path / "inner", "kid",
                f'[scenario]\nextends = "{target.with_suffix("")}"\n')
    with pytest.raises(S.ScenarioError, match="not a scenario name"):
        S.load(kid)


def test_uploaded_text_cannot_extend_a_path():
    with pytest.raises(S.ScenarioError, match="not a scenario name") as info:
        S.from_text('[scenario]\nextends = "../pyproject"\n', "up.toml")
    assert "build-system" not in str(info.value)


def test_extends_in_own_folder_and_shipped_still_work(tmp_path):
    write(tmp_path, "parent", '[scenario]\nextends = "plan_2021"\n[levers]\nwind_build_rate = 123\n')
    kid = write(tmp_path, "kid", '[scenario]\nextends = "parent"\n')
    s = S.load(kid)
    assert s.chain[-3:] == ["plan_2021", "parent", "kid"]
    assert s.params["wind_build_rate"] == 123


def test_long_extends_chain_is_a_named_error(tmp_path):
    n = 1500
    for i in range(n):
        write(tmp_path, f"s{i}", f'[scenario]\nextends = "s{i + 1}"\n' if i < n - 1 else "[scenario]\n")
    with pytest.raises(S.ScenarioError, match=f"more than {S.MAX_EXTENDS_DEPTH} parents"):
        S.load(tmp_path / "s0.toml")


def test_chain_at_the_depth_limit_loads(tmp_path):
    n = S.MAX_EXTENDS_DEPTH + 1  # the file plus MAX parents
    for i in range(n):
        write(tmp_path, f"s{i}", f'[scenario]\nextends = "s{i + 1}"\n' if i < n - 1 else "[scenario]\n")
    assert len(S.load(tmp_path / "s0.toml").chain) == n


# ---------------------------------------------------------------- malformed files
def test_deeply_nested_toml_is_a_named_error(tmp_path):
    path = write(tmp_path, "deep", "[levers]\nwind_build_rate = " + "[" * 500 + "\n")
    with pytest.raises(S.ScenarioError, match="deep.toml: brackets nested more than"):
        S.load(path)
    with pytest.raises(S.ScenarioError, match="nested more than"):
        S.from_text("x = " + "{a = " * 500, "up.toml")


@pytest.mark.parametrize("data", [
    bytes(range(256)),
    "[scenario]\ntitle_zh = \"基准\"\n".encode("gb18030"),
    b"\xff\xfe[\x00s\x00",  # UTF-16
])
def test_binary_or_non_utf8_file_is_a_named_error(tmp_path, data):
    path = write(tmp_path, "bin", data)
    unreadable = r"bin.toml: not UTF-8 text \(the first character that cannot be read is at position \d+\)"
    with pytest.raises(S.ScenarioError, match=unreadable):
        S.load(path)


def test_utf8_bom_is_read(tmp_path):
    path = write(tmp_path, "bom", "\ufeff[levers]\nwind_build_rate = 100\n")
    assert S.load(path).params["wind_build_rate"] == 100


def test_huge_file_is_not_read_whole(tmp_path):
    path = write(tmp_path, "big", "#" * (S.MAX_FILE_BYTES + 10))
    with pytest.raises(S.ScenarioError, match="big.toml: larger than"):
        S.load(path)


# ---------------------------------------------------------------- warnings
@pytest.mark.parametrize("text", ["", "\n\n", "# only a comment\n"])
def test_empty_scenario_file_warns_naming_the_file(tmp_path, text):
    path = write(tmp_path, "empty", text)
    with pytest.warns(S.ScenarioWarning, match="empty.toml: the file is empty"):
        s = S.load(path)
    assert s.warnings
    assert "model defaults" in s.warnings[0]


def test_year_table_ending_before_policy_start_warns(tmp_path):
    path = write(tmp_path, "old", "[levers]\npolicy_start_year = 2024\n"
                 "distributed_pv_build_rate = { 2021 = 60, 2023 = 150 }\n")
    with pytest.warns(S.ScenarioWarning, match=r"old.toml: \[levers\] distributed_pv_build_rate: "
                      r"the year table ends in 2023, before the policy start year 2024"):
        S.load(path)


def test_ordinary_scenario_does_not_warn(tmp_path):
    path = write(tmp_path, "fine", "[levers]\ndistributed_pv_build_rate = { 2021 = 60, 2025 = 150 }\n")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert S.load(path).warnings == []
    for name in S.available():
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            S.load(name)


# ---------------------------------------------------------------- CLI: one line, exit 2, nothing written
def _raise_oserror(code: int):
    import errno
    import os

    def fail(*args, **kwargs):
        raise OSError(code, os.strerror(code), "/somewhere/out")
    assert code in (errno.ENOSPC, errno.EROFS)
    return fail


@pytest.mark.parametrize("code", [28, 30])  # ENOSPC, EROFS
def test_full_or_read_only_output_folder_is_one_line_exit_2_nothing_written(tmp_path, capsys, monkeypatch,
                                                                            code):
    import pandas as pd

    from greenpath.cli import main

    out = tmp_path / "new" / "out"
    # The XLSX (second file) fails: the CSV written before it must not stay either.
    monkeypatch.setattr(pd, "ExcelWriter", _raise_oserror(code))
    assert main(["run", "baseline", "--out", str(out), "--columns", "gdp"]) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1
    assert err.startswith("greenpath run: error: /somewhere/out: ")
    assert "Traceback" not in err
    assert not (tmp_path / "new").exists()


@pytest.mark.parametrize("code", [28, 30])
def test_read_only_cache_folder_is_one_line_exit_2(tmp_path, capsys, monkeypatch, code):
    from greenpath.cli import main
    from greenpath.engines import pysd_engine as engine

    monkeypatch.setenv("GREENPATH_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setattr(engine.tempfile, "mkdtemp", _raise_oserror(code))
    assert main(["run", "baseline", "--out", str(tmp_path / "out"), "--columns", "gdp"]) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1
    assert "Traceback" not in err
    assert not (tmp_path / "out").exists()


def test_cli_prints_scenario_warning_as_one_line(tmp_path, capsys):
    from greenpath.cli import main

    path = write(tmp_path, "empty", "")
    assert main(["run", str(path), "--out", str(tmp_path / "out"), "--columns", "gdp"]) == 0
    err = capsys.readouterr().err
    assert "greenpath run: warning: empty.toml: the file is empty" in err
    assert "ScenarioWarning" not in err


def test_cli_bad_scenario_bytes_is_one_line(tmp_path, capsys):
    from greenpath.cli import main

    path = write(tmp_path, "bin", bytes(range(256)))
    assert main(["run", str(path), "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("greenpath run: error: bin.toml: not UTF-8 text")
    assert not (tmp_path / "out").exists()


# ---------------------------------------------------------------- caches are verified, not trusted
def _mode(path: Path) -> int:
    import stat

    return stat.S_IMODE(path.stat().st_mode)


def test_pysd_translation_is_verified_and_rebuilt_once(tmp_path):
    from greenpath.engines import pysd_engine as engine
    from greenpath.engines.cache import MANIFEST, CacheWarning

    cache = tmp_path / "cache"
    py = engine.translate(engine.MDL_PATH, cache)
    assert (py.parent / MANIFEST).is_file()
    for folder in (cache, cache / "pysd", py.parent):
        assert _mode(folder) == 0o700, folder
    good = py.read_bytes()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert engine.translate(engine.MDL_PATH, cache) == py  # intact: used as it is
    # Appended code, a truncated file, stray bytecode: each is rebuilt with one warning.
    for damage in ("append", "truncate", "pyc"):
        if damage == "append":
            py.write_bytes(good + b"\nimport os; os._exit(99)\n")
        elif damage == "truncate":
            py.write_bytes(good[: len(good) // 2])
        else:
            (py.parent / "__pycache__").mkdir()
            (py.parent / "__pycache__" / "jiaozuo.cpython-311.pyc").write_bytes(b"x")
        with pytest.warns(CacheWarning, match="does not match the hash") as record:
            assert engine.translate(engine.MDL_PATH, cache) == py
        assert len([w for w in record if w.category is CacheWarning]) == 1
        assert py.read_bytes() == good
        assert not (py.parent / "__pycache__").exists()
    model = engine.JiaozuoModel(cache=cache)
    assert not (py.parent / "__pycache__").exists()  # loading writes no unchecked bytecode
    assert model.run(return_columns=["gdp"]).frame["gdp"].notna().all()


def test_vector_module_is_verified_and_never_imported_when_changed(tmp_path):
    from greenpath.engines.cache import CacheWarning
    from greenpath.engines.vector import VectorModel
    from greenpath.model.mdl import MDL_PATH

    folder = tmp_path / "vector"
    model = VectorModel(MDL_PATH, folder)
    assert model.regenerated
    assert _mode(folder) == 0o700
    path = model.generated_path
    good = path.read_bytes()
    assert path.with_suffix(".sha256").is_file()
    path.write_bytes(good + b"\nINJECTED = 1\nraise SystemExit('ran code appended to the cache')\n")
    with pytest.warns(CacheWarning, match="does not match the hash"):
        again = VectorModel(MDL_PATH, folder)
    assert again.regenerated
    assert not hasattr(again.module, "INJECTED")
    assert path.read_bytes() == good
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        third = VectorModel(MDL_PATH, folder)
    assert not third.regenerated


def test_private_dir_creates_owner_only_and_leaves_existing_alone(tmp_path):
    import os

    from greenpath.engines.cache import private_dir

    existing = tmp_path / "shared"
    existing.mkdir()
    os.chmod(existing, 0o755)
    old = os.umask(0)
    try:
        private_dir(existing / "a" / "b")
    finally:
        os.umask(old)
    assert _mode(existing) == 0o755
    assert _mode(existing / "a") == 0o700
    assert _mode(existing / "a" / "b") == 0o700


# ---------------------------------------------------------------- history.csv: encodings and jumps
def _history_lines() -> list[str]:
    from greenpath.calibration.history import DEFAULT_HISTORY_PATH

    return DEFAULT_HISTORY_PATH.read_text(encoding="utf-8").splitlines(keepends=True)


def _co2_line(lines: list[str], year: int) -> int:
    return next(i for i, line in enumerate(lines) if line.startswith(f"{year},co2_emissions_mt,"))


@pytest.mark.parametrize("encoding", ["gb18030", "utf-8-sig"])
def test_history_saved_by_excel_is_read(tmp_path, encoding):
    from greenpath.calibration.history import load_history

    path = tmp_path / "history.csv"
    path.write_bytes("".join(_history_lines()).encode(encoding))
    got = load_history(path)
    want = load_history()
    assert got.attrs["encoding"] == encoding.removesuffix("-sig")
    pd_cols = ["year", "variable", "value", "unit", "quote", "note"]
    assert got[pd_cols].equals(want[pd_cols])
    assert "亿元" in got["unit"].iloc[0]


def test_history_in_another_encoding_is_named(tmp_path):
    from greenpath.calibration.history import HistoryError, load_history

    path = tmp_path / "history.csv"
    lines = _history_lines()
    path.write_bytes("".join(lines[:3]).encode("utf-8") + b"\xff\xfe\x00\x81\x30" + b"\n")
    with pytest.raises(HistoryError, match=r"history.csv: line 4: byte \d+ .* not text in UTF-8 or GB18030"):
        load_history(path)


def test_history_value_off_by_1000x_is_refused_unless_confirmed(tmp_path, capsys):
    from greenpath.calibration.history import HistoryError, load_history
    from greenpath.cli import main

    lines = _history_lines()
    i = _co2_line(lines, 2012)
    assert lines[i].startswith("2012,co2_emissions_mt,24.641,")
    lines[i] = lines[i].replace("2012,co2_emissions_mt,24.641,", "2012,co2_emissions_mt,24641,", 1)
    path = tmp_path / "history.csv"
    path.write_text("".join(lines), encoding="utf-8")
    with pytest.raises(HistoryError) as info:
        load_history(path)
    msg = str(info.value)
    assert f"line {i + 1}" in msg
    assert "'co2_emissions_mt', year 2012" in msg
    assert "'24641'" in msg
    assert "within a factor of 3" in msg
    assert "confirmed:" in msg
    assert main(["calibrate", "--history", str(path), "--out", str(tmp_path / "c.toml")]) == 2
    assert "co2_emissions_mt" in capsys.readouterr().err
    assert not (tmp_path / "c.toml").exists()
    # The same value with a reason in its note is the author's call.
    import csv
    import io

    row = next(csv.reader(io.StringIO(lines[i])))
    row[6] = "confirmed: test of the note rule"
    out = io.StringIO()
    csv.writer(out, lineterminator="\n").writerow(row)
    lines[i] = out.getvalue()
    path.write_text("".join(lines), encoding="utf-8")
    df = load_history(path)
    assert df.loc[(df.variable == "co2_emissions_mt") & (df.year == 2012), "value"].item() == 24641


def test_history_real_rows_pass_the_jump_test():
    """The shipped file: the CEADs CO2 fall 2010 -> 2012 and the 2019/2020 GDP level break are real."""
    from greenpath.calibration.history import load_history, series

    df = load_history()
    co2 = series(df, "co2_emissions_mt")
    assert co2[2012] < 0.6 * co2[2010]
    gdp2 = series(df, "secondary_va_100m_yuan")
    assert gdp2[2020] < 0.65 * gdp2[2019]


# ---------------------------------------------------------------- share links agree with scenario files
LANGS, PAGES = ("en", "zh"), ("simulator",)


def test_link_with_a_year_given_twice_is_rejected_like_a_file():
    from greenpath.app import state

    request, errs = state.decode_link({"distributed_pv_build_rate": "2021:60;2021:70"}, LANGS, PAGES)
    assert not request.sets_scenario
    assert len(errs) == 1
    assert "distributed_pv_build_rate" in errs[0]
    assert "year 2021 is given twice" in errs[0]
    with pytest.raises(S.ScenarioError, match="given twice"):
        S.from_text("[levers]\ndistributed_pv_build_rate = { 2021 = 60, 02021 = 70 }\n", "f.toml")
    request, errs = state.decode_link({"distributed_pv_build_rate": "2021:60;2025:70"}, LANGS, PAGES)
    assert not errs
    assert request.settings["distributed_pv_build_rate"] == ((2021.0, 2025.0), (60.0, 70.0))


def test_link_with_nested_colons_is_an_error_not_a_recursion():
    from greenpath.app import state

    request, errs = state.decode_link({"distributed_pv_build_rate": "2021:" * 5000 + "1"}, LANGS, PAGES)
    assert not request.sets_scenario
    assert len(errs) == 1


def test_upload_in_app_resolves_only_shipped_parents_and_names_bad_bytes(tmp_path, monkeypatch):
    from greenpath.app import state

    monkeypatch.chdir(tmp_path)
    write(tmp_path, "mine", "[levers]\nwind_build_rate = 123\n")
    with pytest.raises(S.ScenarioError, match="no such scenario"):
        state.from_upload(b'[scenario]\nextends = "mine"\n', "up.toml")
    with pytest.raises(S.ScenarioError, match="not a scenario name"):
        state.from_upload(b'[scenario]\nextends = "../../pyproject"\n', "up.toml")
    with pytest.raises(S.ScenarioError, match="up.toml: not UTF-8 text"):
        state.from_upload("[scenario]\ntitle_zh = '基准'\n".encode("gb18030"), "up.toml")
    base = state.from_upload(b'\xef\xbb\xbf[scenario]\nextends = "plan_2021"\n', "up.toml")
    assert base.preset == "plan_2021"


# ---------------------------------------------------------------- the app shows user text as plain text
EVIL = "[click](https://evil.example/x) ![i](https://evil.example/i.png) **bold** :red[red] <b>x</b>"


def test_md_escapes_every_markdown_character_and_shown_inverts_it():
    from greenpath.app.plain import md, shown

    text = EVIL + "\n# heading\n- item\n1. one\n> quote\n`code` $x$ ~~s~~ | a | _u_ \\ &amp;"
    escaped = md(text)
    assert shown(escaped) == text
    # No Markdown-active character is left unescaped (CommonMark: a backslash escapes
    # any ASCII punctuation), and no line starts a block.
    assert not re.search(r"(?<!\\)[\[\]()!*`<>#:_~$|&-]", escaped.replace("\\\\", ""))
    assert all(not line.lstrip().startswith(("#", "-", ">", "1.")) for line in escaped.splitlines())


def test_link_values_reach_the_error_box_escaped():
    from test_app import new_app

    from greenpath.app.plain import md

    at = new_app({"wind_build_rate": EVIL})
    body = "\n".join(e.value for e in at.error)
    assert md(repr(EVIL)) in body
    assert "](https://evil.example" not in body.replace("\\]\\(", "")


def test_uploaded_file_name_and_title_reach_the_page_escaped():
    from test_app import _upload, new_app

    from greenpath.app.plain import md

    at = new_app()
    _upload(at, "[f](https://evil.example).toml", b"[levers]\nwind_build_rate = 9999\n")
    body = "\n".join(e.value for e in at.error)
    assert md("[f](https://evil.example).toml") in body
    assert "[f](https" not in body
    title = EVIL.replace('"', "'")
    _upload(at, "good.toml", f'[scenario]\ntitle_en = "{title}"\n[levers]\nwind_build_rate = 200\n'.encode())
    lines = [m.value for m in at.markdown if "evil" in m.value]
    assert lines
    assert all("](https" not in m and "![" not in m for m in lines)
    assert any(md(title) in m for m in lines)


def test_saved_scenario_name_reaches_the_page_escaped():
    from test_app import new_app

    from greenpath.app.plain import md

    at = new_app()
    at.text_input(key="w_save_name").input("[s](https://evil.example)").run()
    at.button(key="w_save").click().run()
    assert not at.exception
    texts = [m.value for m in at.markdown] + [s.value for s in at.success]
    hits = [x for x in texts if "evil" in x]
    assert hits
    assert all("[s](https" not in x for x in hits)
    assert any(md("[s](https://evil.example)") in x for x in hits)


# ---------------------------------------------------------------- fuzz: a scenario or the project's own error


def _registry_names() -> list[str]:
    from greenpath.model import registry as reg

    return sorted(reg.load_registry())


_NAMES = _registry_names()
_keys = st.one_of(st.sampled_from(_NAMES), st.sampled_from(S.TOP_KEYS + S.META_KEYS),
                  st.text(min_size=1, max_size=12))
_scalars = st.one_of(
    st.integers(-10**20, 10**20), st.floats(allow_nan=True, allow_infinity=True), st.booleans(),
    st.text(max_size=20), st.sampled_from(["baseline", "plan_2021", "../x", "/etc/passwd", ".."]),
    st.datetimes(), st.dates(),
)
_values = st.recursive(
    _scalars,
    lambda inner: st.one_of(st.lists(inner, max_size=4),
                            st.dictionaries(st.one_of(_keys, st.integers(1990, 2040).map(str)),
                                            inner, max_size=4)),
    max_leaves=12,
)
_documents = st.dictionaries(
    st.one_of(st.sampled_from(S.TOP_KEYS), _keys),
    st.one_of(st.dictionaries(_keys, _values, max_size=6), _values),
    max_size=4,
)


def _outcome(call):
    """Return what ``call()`` returns, or the ScenarioError it raises (any other exception fails)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", S.ScenarioWarning)
        try:
            return call()
        except S.ScenarioError as exc:
            return exc


def _check_outcome(outcome, kind=S.Scenario) -> None:
    assert isinstance(outcome, kind | S.ScenarioError), outcome
    if isinstance(outcome, S.ScenarioError):
        assert str(outcome).startswith("fuzz.toml: ")


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_documents)
def test_fuzz_generated_toml_documents(doc):
    import tomli_w

    try:
        text = tomli_w.dumps(doc)
    except (TypeError, ValueError):  # not representable in TOML (e.g. NaN keys): skip
        return
    _check_outcome(_outcome(lambda: S.from_text(text, "fuzz.toml")))


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=2000))
def test_fuzz_random_bytes_to_upload_and_file(data):
    import tempfile

    from greenpath.app import state

    _check_outcome(_outcome(lambda: state.from_upload(data, "fuzz.toml")), state.Base)
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "fuzz.toml"
        path.write_bytes(data)
        _check_outcome(_outcome(lambda: S.load(path)))


_deep = st.tuples(st.sampled_from(["x = [", "x = {a = ", "[levers]\nwind_build_rate = [", "[", "{"]),
                  st.integers(0, 1500)).map(lambda t: t[0] * t[1])


@settings(max_examples=200, deadline=None)
@given(st.one_of(
    st.text(alphabet=st.sampled_from(list("[]{}=\"'#.,:;\n 0123456789abextnds_-/\\\u00e9\u7126")),
            max_size=600),
    _deep))
def test_fuzz_toml_like_text(text):
    _check_outcome(_outcome(lambda: S.from_text(text, "fuzz.toml")))


_link_values = st.one_of(
    st.text(max_size=40),
    st.tuples(st.sampled_from(["2021:", "1:", ":", "2021:1;"]), st.integers(0, 3000)).map(lambda t: t[0] * t[1]),
    st.text(alphabet=st.sampled_from(list("0123456789.:;-e+ naif")), max_size=60),
    st.lists(st.text(max_size=10), max_size=3),
)


@settings(max_examples=300, deadline=None)
@given(st.dictionaries(st.one_of(st.sampled_from([*_NAMES, "scenario", "lang", "page"]), st.text(max_size=10)),
                       _link_values, max_size=5))
def test_fuzz_share_links(query):
    from greenpath.app import state

    request, errors = state.decode_link(query, LANGS, PAGES)
    assert isinstance(errors, list)
    assert all(isinstance(e, str) and e for e in errors)
    if request.sets_scenario:
        # What a link applies is valid by the scenario-file rules.
        S.Scenario(name="x", path=None).derive(
            "x", params={k: v for k, v in request.settings.items() if not isinstance(v, tuple)},
            tables={k: (list(v[0]), list(v[1])) for k, v in request.settings.items()
                    if isinstance(v, tuple)})


# ---------------------------------------------------------------- the same defects elsewhere
_BAD_TOML = {
    "deep": (b"x = " + b"[" * 600, "brackets nested more than 50 deep"),
    "binary": (bytes(range(256)), "not UTF-8 text (the first character that cannot be read is at position 129)"),
    "gb18030": ('[[target]]\nid = "a"\nlabel_zh = "能源"\n'.encode("gb18030"), "not UTF-8 text"),
}


@pytest.mark.parametrize("kind", sorted(_BAD_TOML))
def test_bad_targets_file_is_one_line_exit_2(tmp_path, capsys, kind):
    from greenpath.cli import main
    from greenpath.scenarios import targets

    data, message = _BAD_TOML[kind]
    path = tmp_path / f"{kind}.toml"
    path.write_bytes(data)
    with pytest.raises(targets.TargetError, match=re.escape(message)):
        targets.load(path)
    assert main(["targets", "baseline", "--file", str(path)]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"greenpath targets: error: {kind}.toml: ")
    assert message in err
    assert len(err.strip().splitlines()) == 1
    assert main(["report", "baseline", "--out", str(tmp_path / "r"), "--targets", str(path)]) == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "r").exists()


@pytest.mark.parametrize("kind", sorted(_BAD_TOML))
def test_bad_calibration_file_is_a_named_error(tmp_path, capsys, monkeypatch, kind):
    from greenpath.app import calibration_view
    from greenpath.calibration.errors import CalibrationError
    from greenpath.calibration.store import load_calibration
    from greenpath.cli import main
    from greenpath.model import registry as reg

    data, message = _BAD_TOML[kind]
    path = tmp_path / "calibrated.toml"
    path.write_bytes(data)
    with pytest.raises(reg.RegistryError, match=re.escape(message)):
        reg.calibrated(path)
    with pytest.raises(CalibrationError, match=re.escape(message)):
        load_calibration(path)
    assert message in calibration_view.load(calibrated=path).error
    monkeypatch.setenv("GREENPATH_CALIBRATION", str(path))
    assert main(["run", "baseline", "--out", str(tmp_path / "o"), "--columns", "gdp"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("greenpath run: error: calibrated.toml: ")
    assert message in err


@pytest.mark.parametrize(("argv", "message"), [
    (["--columns", "time"], "'time' is the index of every result"),
    (["--final-time", "0"], "bad time settings final_time=0"),
])
def test_run_arguments_are_checked_not_crashing_or_ignored(tmp_path, capsys, argv, message):
    from greenpath.cli import main

    assert main(["run", "baseline", "--out", str(tmp_path / "o"), *argv]) == 2
    err = capsys.readouterr().err
    assert message in err
    assert len(err.strip().splitlines()) == 1
    assert not (tmp_path / "o").exists()


def test_out_that_is_a_file_is_named(tmp_path, capsys):
    from greenpath.cli import main

    (tmp_path / "afile").write_text("mine", encoding="utf-8")
    assert main(["run", "baseline", "--out", str(tmp_path / "afile"), "--columns", "gdp"]) == 2
    assert capsys.readouterr().err.strip() == f"greenpath run: error: {tmp_path / 'afile'} is a file, not a folder"
    assert (tmp_path / "afile").read_text(encoding="utf-8") == "mine"


def test_report_on_a_disk_that_fills_part_way_writes_nothing(tmp_path, capsys, monkeypatch):
    import errno
    import os
    import pathlib

    from greenpath.cli import main

    real = pathlib.Path.write_bytes
    calls = []

    def write_bytes(self, data):
        calls.append(self)
        if len(calls) == 3:  # two chart files written to temporary names, then the disk is full
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(self))
        return real(self, data)

    monkeypatch.setattr(pathlib.Path, "write_bytes", write_bytes)
    out = tmp_path / "pack"
    assert main(["report", "baseline", "--out", str(out), "--lang", "en"]) == 2
    err = capsys.readouterr().err
    assert "No space left on device" in err
    assert len(err.strip().splitlines()) == 1
    assert len(calls) == 3
    assert not out.exists()


@pytest.mark.parametrize(("data", "message"), [
    (b"[levers]\nwind_build_rate = " + b"[" * 500, "nested more than 50 deep"),
    (bytes(range(256)), "not UTF-8 text"),
    (b'[scenario]\nextends = "../../pyproject"\n', "not a scenario name"),
])
def test_app_upload_of_a_hostile_file_is_an_error_message_not_an_error_page(data, message):
    from test_app import _upload, new_app

    from greenpath.app.plain import shown

    at = new_app()
    before = at.slider(key="w_lever_wind_build_rate").value
    _upload(at, "evil.toml", data)
    assert not at.exception
    text = "\n".join(shown(e.value) for e in at.error)
    assert "evil.toml" in text
    assert message in text
    assert "build-system" not in text
    assert at.slider(key="w_lever_wind_build_rate").value == before


def test_app_upload_may_extend_the_users_own_saved_scenario():
    from test_app import _upload, new_app

    from greenpath.app import state

    saved = {"my_base": {"wind_build_rate": 321.0}, "../evil": {"wind_build_rate": 1.0}}
    base = state.from_upload(b'[scenario]\nextends = "my_base"\n[levers]\nccus_capacity = 1\n', "up.toml",
                             saved=saved)
    assert base.scenario.params["wind_build_rate"] == 321.0
    assert base.scenario.chain == ["my_base", "up.toml"]
    assert base.preset is None
    with pytest.raises(S.ScenarioError, match="not a scenario name"):
        state.from_upload(b'[scenario]\nextends = "../evil"\n', "up.toml", saved=saved)
    at = new_app()
    at.slider(key="w_lever_wind_build_rate").set_value(333.0).run()
    at.text_input(key="w_save_name").input("mine").run()
    at.button(key="w_save").click().run()
    at.slider(key="w_lever_wind_build_rate").set_value(100.0).run()
    _upload(at, "kid.toml", b'[scenario]\nextends = "mine"\n')
    assert not at.error
    assert at.slider(key="w_lever_wind_build_rate").value == pytest.approx(333.0)


@pytest.mark.parametrize("encoding", ["utf-8-sig", "gb18030"])
def test_registry_csv_saved_by_excel_is_read(tmp_path, encoding):
    from greenpath.model import registry as reg

    path = tmp_path / "parameters.csv"
    path.write_bytes(reg.REGISTRY_PATH.read_text(encoding="utf-8").encode(encoding))
    assert reg.load_registry(path) == reg.load_registry()


def test_registry_csv_in_another_encoding_is_named(tmp_path):
    from greenpath.model import registry as reg

    data = reg.REGISTRY_PATH.read_bytes()
    path = tmp_path / "parameters.csv"
    path.write_bytes(data[:500] + b"\x80\xff\xfe" + data[500:])
    line = data[:500].count(b"\n") + 1
    with pytest.raises(reg.RegistryError,
                       match=f"parameters.csv line {line}: byte 500 is not text in UTF-8 or GB18030"):
        reg.load_registry(path)


def test_scenario_name_lookup_does_not_walk_out_of_the_folder(tmp_path):
    (tmp_path / "inner").mkdir()
    write(tmp_path, "outside", "[levers]\nwind_build_rate = 123\n")
    with pytest.raises(S.ScenarioError, match="not found"):
        S.load("../outside", tmp_path / "inner")
    # A path to a .toml file is still taken as given (the CLI's own argument).
    assert S.load(tmp_path / "outside.toml").params["wind_build_rate"] == 123


def test_sensitivity_on_a_disk_that_fills_part_way_writes_nothing(tmp_path, capsys, monkeypatch):
    import errno
    import os

    from matplotlib.figure import Figure

    from greenpath.cli import main

    real = Figure.savefig

    def savefig(self, fname, *args, **kwargs):
        if "sobol" in str(fname):  # the last of four files
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(fname))
        return real(self, fname, *args, **kwargs)

    monkeypatch.setattr(Figure, "savefig", savefig)
    out = tmp_path / "sens"
    args = ["sensitivity", "--method", "both", "--n", "16", "--trajectories", "2", "--top", "2",
            "--factors", "carbon_price,policy_start_year", "--out", str(out)]
    assert main(args) == 2
    err = capsys.readouterr().err
    assert "No space left on device" in err
    assert len(err.strip().splitlines()) == 1
    assert not out.exists() or not list(out.iterdir())


def test_calibration_written_on_a_full_disk_leaves_no_file(tmp_path, monkeypatch):
    import errno
    import os
    import pathlib
    import types

    from greenpath.calibration import store

    def full(self, text, *args, **kwargs):  # half the text reaches the disk, then it is full
        with open(self, "w", encoding="utf-8") as handle:
            handle.write(text[: len(text) // 2])
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(self))

    monkeypatch.setattr(store, "calibration_document", lambda result: {"parameters": {}})
    monkeypatch.setattr(pathlib.Path, "write_text", full)
    with pytest.raises(OSError, match="No space left"):
        store.write_calibration(types.SimpleNamespace(values={}), tmp_path / "calibrated.toml")
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("text", ['[scenario]\nextends = "baseline\\n"\n', '[scenario]\nname = "mine\\n"\n'])
def test_a_name_with_a_trailing_newline_is_not_a_name(text):
    with pytest.raises(S.ScenarioError, match="name"):
        S.from_text(text, "f.toml")


def test_history_with_a_field_over_the_csv_limit_is_named(tmp_path):
    from greenpath.calibration.history import HistoryError, load_history

    lines = _history_lines()
    path = tmp_path / "history.csv"
    path.write_text("".join(lines[:5]) + '2010,"' + "x" * 200_000 + '",1\n' + "".join(lines[5:]),
                    encoding="utf-8")
    with pytest.raises(HistoryError, match=r"history.csv: line 6: not readable as CSV \(field larger"):
        load_history(path)


@pytest.mark.parametrize(("tail", "message"), [
    ("x,lever\n", "comma-separated fields"),
    ("x,lever" + ",1" * 13 + "\n", "comma-separated fields"),
    ('x,"' + "y" * 200_000 + '"\n', "not readable as CSV"),
])
def test_registry_csv_with_a_short_or_huge_row_is_named(tmp_path, tail, message):
    from greenpath.model import registry as reg

    path = tmp_path / "parameters.csv"
    path.write_text(reg.REGISTRY_PATH.read_text(encoding="utf-8") + tail, encoding="utf-8")
    with pytest.raises(reg.RegistryError, match=message):
        reg.load_registry(path)


@pytest.mark.parametrize("label", ['=HYPERLINK("http://evil.example","x")', "+1", "-2+3", "@SUM(A1)", "\t=1"])
def test_results_csv_never_holds_a_formula_from_a_user_label(label):
    import csv
    import io

    from greenpath.app import exports
    from greenpath.engines.pysd_engine import JiaozuoModel

    result = JiaozuoModel().run(return_columns=["gdp"])
    base = S.load("baseline")
    text = exports.results_csv([exports.Shown("Current", label, base, result, None)]).decode("utf-8-sig")
    cells = {row["scenario"] for row in csv.DictReader(io.StringIO(text))}
    assert cells == {"'" + label}
    assert exports.spreadsheet_text("Fast wind (+20%)") == "Fast wind (+20%)"


@pytest.mark.parametrize("label", ["$x^$", r"$\undefinedcommand$", "a $ b $ c"])
def test_a_dollar_in_a_scenario_label_is_shown_not_parsed_as_math(label):
    from greenpath.app import exports
    from greenpath.engines.pysd_engine import JiaozuoModel
    from greenpath.outputs import charts

    model = JiaozuoModel()
    base = S.load("baseline")
    current = base.derive("cur", params={"wind_build_rate": 300})
    shown = [exports.Shown("Current", label, current, model.run(**current.run_kwargs()), None),
             exports.Shown("baseline", "Baseline", base, model.run(**base.run_kwargs()), None)]
    assert exports.deck(shown, "en").startswith(b"PK")  # a pptx (zip): every chart drew

    draw = next(iter(charts.CHARTS.values()))[0]
    fig = draw({"Current": shown[0].result, "baseline": shown[1].result}, "en", labels={"Current": label})
    fig.canvas.draw()
    texts = [t for t in fig.findobj(lambda a: hasattr(a, "get_text"))
             if label in t.get_text().replace("\\$", "$")]
    assert texts
    # Matplotlib's own test of whether a string is mathtext: never for a user's label.
    assert all(not t._preprocess_math(t.get_text())[1] for t in texts)
