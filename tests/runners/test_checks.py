"""Model checks (`greenpath check`): the rule file, the evaluation, the counterexamples, the CLI."""

from __future__ import annotations

import os
import shutil
import textwrap
from pathlib import Path

import numpy as np
import pytest

from greenpath.cli import main
from greenpath.runners import checks
from greenpath.runners.checks import CheckError, load_rules, run_check
from greenpath.runners.versions import ModelVersion, Settings, dependency_order


@pytest.fixture(scope="module")
def version() -> ModelVersion:
    return ModelVersion.current()


@pytest.fixture(scope="module")
def report(version):
    """Check the current model: the rule file's test_samples, or its full sample in CI.

    CI (the environment variable ``CI`` set, as ``.ci/run`` has it) runs the full check of
    ``greenpath check`` (the rule file's ``samples``, 5,000 settings) inside the test suite,
    so the README's test command is all CI needs.
    """
    rules = load_rules(checks.RULES_PATH, version)
    samples = rules.samples if os.environ.get("CI") else rules.test_samples
    return run_check(version, rules, samples=samples)


ALIASES = 'co2 = "co2_emissions"\nrenewable_capacity = "renewable_capacity"\n'


def _rules(tmp_path: Path, body: str, variables: str = ALIASES) -> Path:
    path = tmp_path / "rules.toml"
    path.write_text(f"[settings]\nsamples = 50\nseed = 7\n[variables]\n{variables}\n" + textwrap.dedent(body),
                    encoding="utf-8")
    return path


def test_rule_file_has_at_least_40_rules_each_with_a_reason(version):
    rules = load_rules(checks.RULES_PATH, version)
    assert len(rules.rules) >= 40
    assert all(len(r.why) > 20 for r in rules.rules)
    kinds = {r.kind for r in rules.rules}
    assert kinds == set(checks.KINDS)
    assert rules.samples >= 5000
    # every model variable a rule reads goes through the one mapping
    for rule in rules.rules:
        for name in rule.names():
            assert name in rules.variables or name in version.registry or name in {"year", "start"}, (rule.id, name)


def test_current_model_passes_every_rule_or_it_is_a_known_issue(report):
    assert report.failed == [], report.text()
    assert report.n_samples >= 300
    assert report.n_shipped == 11  # the shipped scenarios, past_effort included
    known = [r for r in report.results if r.rule.known_issue]
    assert all(len(r.rule.known_issue) > 40 for r in known)


def test_known_issues_are_still_seen(report):
    # a known issue that no longer shows should be turned back into a rule (status known-pass)
    stale = [r.rule.id for r in report.results if r.status == "known-pass"]
    assert stale == []


def test_failing_rule_reports_setting_year_value_smallest_first_and_shrinks(tmp_path, version):
    path = _rules(tmp_path, """
        [[rule]]
        id = "renewables-below-2500"
        kind = "bounds"
        why = "A deliberately wrong rule: renewable capacity can exceed 2.5 GW with high build rates."
        vars = ["renewable_capacity"]
        max = 2500
        over = ["sample"]
    """)
    rep = run_check(version, path, samples=200, seed=3)
    [result] = rep.results
    assert result.status == "fail"
    assert rep.failed
    assert result.n_runs_violating > 0
    first = result.violations[0]
    assert first.shrunk
    assert first.case == "smallest counterexample"
    assert first.value > 2500
    assert first.limit == 2500
    assert 2005 <= first.year <= 2035
    # the shrunk setting is small and still violates when run again
    assert 1 <= first.size <= 6
    runs = version.run([first.setting], ["renewable_capacity"])
    assert runs.values["renewable_capacity"][0, runs.year_index(first.year)] > 2500
    assert all(k.endswith(("build_rate", "lifetime", "start_year", "construction_time")) for k in first.setting)
    # the unshrunk violations follow, fewest changed settings first
    rest = [v for v in result.violations if not v.shrunk]
    sizes = [v.size for v in rest]
    assert sizes == sorted(sizes)
    for v in rest[:20]:
        run = version.run([v.setting], ["renewable_capacity"])
        assert run.values["renewable_capacity"][0, run.year_index(v.year)] == pytest.approx(v.value)


def test_each_rule_kind_detects_a_violation(tmp_path, version):
    path = _rules(tmp_path, """
        [[rule]]
        id = "expr"
        kind = "expression"
        why = "Wrong on purpose: CO2 is not half of itself."
        lhs = "co2"
        op = "=="
        rhs = "co2 / 2"
        [[rule]]
        id = "mono"
        kind = "monotonic"
        why = "Wrong on purpose: CO2 does not fall every year."
        vars = ["co2"]
        direction = "decreasing"
        [[rule]]
        id = "hist"
        kind = "history"
        why = "Wrong on purpose: CO2 is not ten times the CEADs record."
        var = "co2"
        series = "co2_emissions_mt"
        factor = 10
        tolerance = 0.1
        [[rule]]
        id = "rel"
        kind = "relation"
        why = "Wrong on purpose: more wind does not leave renewable capacity unchanged."
        change = { wind_build_rate = "max" }
        vars = ["renewable_capacity"]
        op = "=="
        [[rule]]
        id = "scen"
        kind = "scenarios"
        why = "Wrong on purpose: the 14th FYP scenario has more renewables than the baseline."
        a = "plan_14th_fyp"
        b = "baseline"
        vars = ["renewable_capacity"]
        op = "<="
        [[rule]]
        id = "holds"
        kind = "bounds"
        why = "True: CO2 is never negative."
        vars = ["co2"]
        min = 0
    """)
    rep = run_check(version, path, samples=30, seed=1, shrink=False)
    status = {r.rule.id: r.status for r in rep.results}
    assert status == {"expr": "fail", "mono": "fail", "hist": "fail", "rel": "fail", "scen": "fail", "holds": "pass"}


def test_policy_start_offsets_select_years_relative_to_each_runs_start(tmp_path, version):
    path = _rules(tmp_path, """
        [[rule]]
        id = "start-window"
        kind = "expression"
        why = "The expression sees the run's own start: year - start is 0 exactly in the selected year."
        lhs = "year - start"
        op = "=="
        rhs = "0"
        start_offsets = [0, 0]
    """)
    rep = run_check(version, path, samples=40, seed=2)
    assert rep.failed == []
    assert rep.results[0].points_checked > 0


@pytest.mark.parametrize(("body", "message"), [
    ('[[rule]]\nid = "a"\nkind = "bounds"\nwhy = "reason enough"\nvars = ["co2"]\nmax = 1\nmaxx = 2\n', "unknown key"),
    ('[[rule]]\nid = "a"\nkind = "bound"\nwhy = "x"\n', "kind 'bound'"),
    ('[[rule]]\nid = "a"\nkind = "bounds"\nvars = ["co2"]\nmax = 1\n', "why"),
    ('[[rule]]\nid = "a"\nkind = "expression"\nwhy = "w"\nlhs = "co2"\nop = "<"\nrhs = "1"\n', "op '<'"),
    ('[[rule]]\nid = "a"\nkind = "expression"\nwhy = "w"\nlhs = "__import__(1)"\nop = "=="\nrhs = "1"\n', "functions"),
    ('[[rule]]\nid = "a"\nkind = "bounds"\nwhy = "w"\nvars = ["co2_typo"]\nmax = 1\n', "co2_typo"),
    ('[[rule]]\nid = "a"\nkind = "bounds"\nwhy = "w"\nvars = ["co2"]\nmax = 1\nyears = [2030, 2020]\n', "years"),
])
def test_bad_rule_files_name_the_rule_and_the_problem(tmp_path, version, body, message):
    path = _rules(tmp_path, body)
    with pytest.raises(CheckError, match="rules.toml") as err:
        load_rules(path, version)
    assert message in str(err.value)


def test_renamed_variable_is_reported_at_the_mapping(tmp_path, version):
    path = _rules(tmp_path, '[[rule]]\nid = "a"\nkind = "bounds"\nwhy = "w"\nvars = ["co2"]\nmin = 0\n',
                  variables='co2 = "co2_emissions_renamed"\n')
    with pytest.raises(CheckError, match=r"\[variables\] co2 = 'co2_emissions_renamed'"):
        load_rules(path, version)


def test_cli_exit_status_and_report(tmp_path, version, capsys):
    bad = _rules(tmp_path, """
        [[rule]]
        id = "renewables-below-2500"
        kind = "bounds"
        why = "A deliberately wrong rule: renewable capacity can exceed 2.5 GW with high build rates."
        vars = ["renewable_capacity"]
        max = 2500
    """)
    out = tmp_path / "report"
    assert main(["check", "--rules", str(bad), "--samples", "60", "--report", str(out)]) == 1
    text = capsys.readouterr().out
    assert "FAIL renewables-below-2500" in text
    assert "smallest counterexample" in text
    html = (out / "check.html").read_text(encoding="utf-8")
    assert "renewables-below-2500" in html
    assert "http" not in html.split("<body>")[0]
    assert "| renewables-below-2500 | bounds | fail |" in (out / "check.md").read_text(encoding="utf-8")
    assert (out / "violations.csv").read_text(encoding="utf-8").count("\n") > 2
    # the report is never replaced without --force
    assert main(["check", "--rules", str(bad), "--samples", "5", "--report", str(out)]) == 2
    assert "--force" in capsys.readouterr().err
    good = _rules(tmp_path,
                  '[[rule]]\nid = "ok"\nkind = "bounds"\nwhy = "CO2 is never negative"\nvars = ["co2"]\nmin = 0\n')
    assert main(["check", "--rules", str(good), "--samples", "5"]) == 0


def test_check_of_another_model_folder(tmp_path, version):
    """`--model DIR` checks a copy; the copy's compiled engine is its own."""
    root = tmp_path / "copy"
    for rel in ("model/jiaozuo.mdl", "model/parameters.csv", "calibration/calibrated.toml"):
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(version.root / rel if rel != "model/jiaozuo.mdl" else version.mdl_path, root / rel)
    copy = ModelVersion(root)
    assert copy.defaults == version.defaults
    a = version.run([{}], ["co2_emissions"]).values["co2_emissions"]
    b = copy.run([{}], ["co2_emissions"]).values["co2_emissions"]
    np.testing.assert_array_equal(a, b)


def test_settings_block_round_trip():
    rows = [{"wind_build_rate": 100.0}, {"backward_capacity_exit_rate": ([2021, 2025], [0.02, 0.0])}, {}]
    block = Settings.from_mappings(rows)
    assert [block.row(i) for i in range(3)] == rows
    part = block.take([1])
    assert part.row(0) == rows[1]
    part.set("backward_capacity_exit_rate", 0.05)
    assert part.row(0) == {"backward_capacity_exit_rate": 0.05}


def test_year_tables_run_as_the_pysd_engine(model, version):
    from greenpath.scenarios import scenario as scenarios

    plan = scenarios.load("plan_2021")
    assert plan.tables  # the plan has year tables
    runs = version.run([plan.settings()], ["co2_emissions", "industrial_va"])
    result = model.run(**plan.run_kwargs())
    for column in ("co2_emissions", "industrial_va"):
        np.testing.assert_allclose(runs.values[column][0], result.frame[column].to_numpy(), rtol=1e-9)


def test_dependency_order_puts_inputs_first(version):
    order = dependency_order(version.mdl_path)
    pos = {name: i for i, name in enumerate(order)}
    assert pos["total_coal_consumption"] < pos["co2_coal"] < pos["co2_emissions"] < pos["co2_intensity"]
    assert pos["policy_start_year"] < pos["policy_active"]
    assert pos["wind_capacity"] < pos["wind_generation"]  # stocks come before the auxiliaries reading them


@pytest.mark.skipif(not (Path(__file__).resolve().parents[2] / ".git").exists(), reason="not a git checkout")
def test_cli_checks_a_git_revision(capsys):
    assert main(["check", "--model", "HEAD", "--samples", "5", "--rule", "co2-by-fuel-equals-total"]) == 0
    assert "of HEAD (" in capsys.readouterr().out
