"""DE-MCz sampler, the error scale of the predictive band and the backtest's second process: closed forms."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import integrate, stats

from greenpath.calibration import discrepancy as disc
from greenpath.calibration import parallel
from greenpath.calibration.demcz import run_demcz

# --------------------------------------------------------------------------- DE-MCz


def _gaussian(mu: np.ndarray, cov: np.ndarray):
    icov = np.linalg.inv(cov)

    def log_prob(x: np.ndarray) -> np.ndarray:
        r = np.atleast_2d(x) - mu
        return -0.5 * np.einsum("ij,jk,ik->i", r, icov, r)

    return log_prob


def test_demcz_samples_a_correlated_gaussian_with_its_mean_and_covariance():
    mu = np.array([1.0, -2.0, 0.5])
    cov = np.array([[1.0, 0.8, 0.0], [0.8, 1.0, 0.2], [0.0, 0.2, 0.25]])  # positive definite
    rng = np.random.default_rng(0)
    start = mu + 3.0 * rng.standard_normal((24, 3))  # overdispersed
    res = run_demcz(_gaussian(mu, cov), start, start, 3000, np.random.default_rng(1))
    flat = res.chain[1000:].reshape(-1, 3)
    sd = np.sqrt(np.diag(cov))
    assert np.all(np.abs(flat.mean(axis=0) - mu) < 0.1 * sd)
    assert np.allclose(np.cov(flat, rowvar=False), cov, atol=0.08)
    assert 0.1 < res.acceptance_fraction.mean() < 0.6
    assert res.calls == 3000 + 1  # one call a step for all chains, plus the start


def test_demcz_respects_a_hard_bound_and_is_deterministic_for_a_seed():
    """Uniform on [0, 1]: the chains stay inside and the sample is uniform (mean 1/2, variance 1/12)."""

    def log_prob(x: np.ndarray) -> np.ndarray:
        inside = np.all((x >= 0.0) & (x <= 1.0), axis=1)
        return np.where(inside, 0.0, -np.inf)

    start = np.random.default_rng(3).random((16, 2))
    a = run_demcz(log_prob, start, start, 2000, np.random.default_rng(4))
    b = run_demcz(log_prob, start, start, 2000, np.random.default_rng(4))
    assert np.array_equal(a.chain, b.chain)
    flat = a.chain[500:].reshape(-1, 2)
    assert flat.min() >= 0.0
    assert flat.max() <= 1.0
    assert np.allclose(flat.mean(axis=0), 0.5, atol=0.03)
    assert np.allclose(flat.var(axis=0), 1 / 12, atol=0.01)


def test_demcz_refuses_bad_inputs():
    lp = _gaussian(np.zeros(2), np.eye(2))
    with pytest.raises(ValueError, match="z0 must be"):
        run_demcz(lp, np.zeros((4, 2)), np.zeros((2, 2)), 5, np.random.default_rng(0))
    with pytest.raises(ValueError, match="no finite log density"):
        run_demcz(lambda x: np.full(len(x), -np.inf), np.zeros((4, 2)), np.zeros((5, 2)), 5,
                  np.random.default_rng(0))


# --------------------------------------------------------------------------- error scale


@pytest.mark.parametrize("m", [1, 3, 8])
@pytest.mark.parametrize("ss", [1e-6, 0.3, 4.0, 60.0])
def test_log_marginal_equals_the_integral_over_the_scale(m, ss):
    value, _ = integrate.quad(lambda lam: lam ** (-m - 1) * math.exp(-ss / (2 * lam * lam)), 1.0, np.inf,
                              epsabs=0, epsrel=1e-11, limit=400)
    assert float(disc.log_marginal(np.array([ss]), m)[0]) == pytest.approx(math.log(2 * value), abs=1e-6)


def test_log_marginal_is_the_gaussian_for_a_good_fit_and_falls_like_a_power_for_a_bad_one():
    m = 10
    small = disc.log_marginal(np.array([0.0, 0.02]), m)
    # slope -E[t]/2 with t = 1/lambda^2 ~ t^(m/2 - 1) on (0, 1]: E[t] = (m/2) / (m/2 + 1); near 1 for many points
    assert small[0] - small[1] == pytest.approx(0.01 * (m / 2) / (m / 2 + 1), rel=1e-3)
    big = disc.log_marginal(np.array([1e4, 4e4]), m)
    assert big[0] - big[1] == pytest.approx(m / 2 * math.log(4.0), rel=1e-6)  # ss^(-m/2)


def test_draw_scale_follows_its_conditional_law_and_never_goes_below_one():
    """The draws of t = 1/lambda^2 follow Gamma(m/2, rate ss/2) cut to t <= 1 (Kolmogorov-Smirnov)."""
    m, ss = 6, 20.0
    lam = disc.draw_scale(np.full(20000, ss), m, np.random.default_rng(5))
    assert lam.min() >= 1.0
    t = 1.0 / lam**2
    law = stats.gamma(a=m / 2, scale=2 / ss)
    cut = law.cdf(1.0)
    result = stats.kstest(t, lambda x: law.cdf(np.minimum(x, 1.0)) / cut)
    assert result.pvalue > 0.01


def test_predictive_adds_the_scaled_error_in_the_series_form():
    class S:
        sigma = 0.1
        error = "relative"

    sim = np.full((40000, 1), 50.0)
    lam = np.full(40000, 2.0)
    out = disc.predictive(S, sim, lam, np.random.default_rng(0))
    assert out.mean() == pytest.approx(50.0, rel=0.01)
    assert out.std() == pytest.approx(50.0 * 0.1 * 2.0, rel=0.02)
    S.error = "absolute"
    assert disc.predictive(S, sim, lam, np.random.default_rng(0)).std() == pytest.approx(0.2, rel=0.02)


# --------------------------------------------------------------------------- second process


def test_backtest_job_returns_the_same_in_a_child_and_here_and_raises_its_error():
    def work():
        return {"value": float(np.random.default_rng(3).random())}

    here = parallel.start_backtest(work, parallel=False).result()
    if parallel.can_fork():
        there = parallel.start_backtest(work, parallel=True)
        assert there.result() == here

        def fails():
            raise ValueError("bad history row 7")

        with pytest.raises(ValueError, match="bad history row 7"):
            parallel.start_backtest(fails, parallel=True).result()


def test_independence_steps_mixed_with_demcz_keep_the_target_and_cut_the_autocorrelation():
    """A t proposal fitted to a pilot: the mixed chain has the target's moments and a shorter tau."""
    import emcee

    from greenpath.calibration.demcz import TProposal

    d = 6
    rng = np.random.default_rng(2)
    a = rng.standard_normal((d, d))
    cov = a @ a.T / d + 0.1 * np.eye(d)
    mu = rng.standard_normal(d)
    lp = _gaussian(mu, cov)
    start = mu + rng.standard_normal((32, d))
    pilot = run_demcz(lp, start, start, 400, np.random.default_rng(3))
    q = TProposal.fit(pilot.chain[200:].reshape(-1, d))
    mixed = run_demcz(lp, pilot.chain[-1], pilot.chain[::10].reshape(-1, d), 2000, np.random.default_rng(4),
                      proposal=q, lp0=pilot.log_prob[-1])
    plain = run_demcz(lp, pilot.chain[-1], pilot.chain[::10].reshape(-1, d), 2000, np.random.default_rng(4))
    flat = mixed.chain.reshape(-1, d)
    sd = np.sqrt(np.diag(cov))
    assert np.all(np.abs(flat.mean(axis=0) - mu) < 0.05 * sd)
    assert np.allclose(np.cov(flat, rowvar=False), cov, atol=0.05 * np.max(np.diag(cov)))
    tau_mixed = emcee.autocorr.integrated_time(mixed.chain, tol=0).max()
    tau_plain = emcee.autocorr.integrated_time(plain.chain, tol=0).max()
    assert tau_mixed < 0.5 * tau_plain
    assert mixed.calls == 2000  # lp0 given: no call for the start


def test_posterior_with_its_independence_phase_is_deterministic_for_a_seed_and_stays_in_range():
    """A burn-in long enough for the t proposal (both phases run), twice with one seed: the same draws."""
    from greenpath.calibration import history as hist
    from greenpath.calibration import posterior as P
    from greenpath.calibration.objective import Objective
    from greenpath.calibration.series import apply_cutoff, build_series, fit_final_time
    from greenpath.calibration.simulators import make_simulator
    from greenpath.calibration.space import ParameterSpace

    series = apply_cutoff(build_series(hist.load_history(hist.DEFAULT_HISTORY_PATH)), None)
    sim = make_simulator("vector", 1, fit_final_time(series))
    space = ParameterSpace(["initial_gdp", "tertiary_growth_differential"])
    objective = Objective(sim, series, space, 0.0)
    kw = dict(walkers=8, steps=P.PILOT_MIN_STEPS + 20, burn=P.PILOT_MIN_STEPS, thin=5, groups=2)
    a = P.sample_posterior(objective, space.prior_u, 9, **kw)
    b = P.sample_posterior(objective, space.prior_u, 9, **kw)
    assert np.array_equal(a.draws, b.draws)
    assert np.all(a.draws >= space.lower)
    assert np.all(a.draws <= space.upper)
    # one engine call a step (+ the start): all walkers on a DE-MCz step, each walker's
    # candidates on an independence step (every second step after the first burn-in stage)
    first = kw["burn"] // P.BURN_STAGES
    independence = (kw["steps"] - first) // 2
    assert a.n_runs == 8 * (kw["steps"] + 1 + (P.DEFAULT_TRIES - 1) * independence)


def test_multiple_try_independence_steps_keep_a_target_a_poor_proposal_misses():
    """Independence steps alone (no DE moves) keep the target's mean and covariance.

    The t proposal is off-centre and too narrow in one direction: with 1 and with 4 tries the
    chain has the target's mean and covariance, and the 4 tries accept more often (the
    candidates of a step go to one call).
    """
    from greenpath.calibration.demcz import TProposal, independence_step

    mu = np.array([0.5, -1.0])
    cov = np.array([[1.0, 0.6], [0.6, 2.0]])
    lp_fn = _gaussian(mu, cov)
    q = TProposal(mean=np.array([0.0, 0.0]), chol=np.linalg.cholesky(np.array([[0.5, 0.0], [0.0, 3.0]])), df=5.0)
    calls = []

    def counted(x):
        calls.append(len(x))
        return lp_fn(x)

    sd = np.sqrt(np.diag(cov))
    rates = {}
    for tries in (1, 4):
        rng = np.random.default_rng(11)
        x = mu + rng.standard_normal((200, 2))
        lp, lq = lp_fn(x), q.log_density(x)
        chain, accepted = [], 0
        calls.clear()
        for _ in range(400):
            accepted += int(independence_step(counted, x, lp, lq, q, rng, tries).sum())
            chain.append(x.copy())
        flat = np.concatenate(chain[50:])
        assert np.all(np.abs(flat.mean(axis=0) - mu) < 0.05 * sd), tries
        assert np.allclose(np.cov(flat, rowvar=False), cov, atol=0.08), tries
        assert calls == [200 * tries] * 400  # one call a step, all candidates of all chains
        rates[tries] = accepted / (200 * 400)
    assert rates[4] > rates[1] + 0.1
    with pytest.raises(ValueError, match="tries 0 not allowed"):
        independence_step(lp_fn, x, lp, lq, q, np.random.default_rng(0), 0)
