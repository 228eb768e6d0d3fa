"""DE-MCz: differential-evolution Markov chains sampling from a past archive (one engine call a step).

Method (ter Braak and Vrugt 2008, "Differential Evolution Markov Chain with snooker
updater and fewer chains", Statistics and Computing 18: 435-446, algorithms DE-MCz and
DE-MCzs):

* ``N`` chains move together. Every step, each chain ``i`` proposes from its state
  ``x_i`` and points drawn from an **archive** ``Z`` of past states (never the current
  ones), so the ``N`` proposals are independent of each other given the past and all of
  them are evaluated in ONE vectorised call (one vector-engine run of ``N`` scenarios),
  where emcee's red-blue ensemble needs two calls a step (each half waits for the other).
* **Parallel-direction move** (probability ``1 - p_snooker``):
  ``x* = x + gamma (z1 - z2) + e`` with ``z1 != z2`` drawn uniformly from ``Z``,
  ``gamma = 2.38 / sqrt(2 d)`` (``gamma = 1`` on a tenth of the steps, to jump between
  modes) and ``e ~ N(0, b^2)``, ``b`` tiny. The move is symmetric.
* **Snooker move** (probability ``p_snooker`` = 0.1): ``z`` from ``Z`` fixes the line
  through ``x`` and ``z``; ``z1``, ``z2`` from ``Z`` are projected onto it and
  ``x* = x + gamma_s (P z1 - P z2)`` with ``gamma_s ~ U(1.2, 2.2)``; the acceptance ratio
  carries the Jacobian ``(|x* - z| / |x - z|)^(d - 1)``.
* Metropolis acceptance per chain; every ``archive_every`` steps the chains' states are
  appended to ``Z``. The archive starts from ``z0`` (the caller's spread of plausible
  points); the chain is adaptive through ``Z`` and converges as ``Z`` grows (ter Braak
  and Vrugt 2008, section 3), so the first part is discarded as burn-in.

Deterministic for a seed (one :class:`numpy.random.Generator`). A closed-form test
(``tests/calibration/test_demcz.py``) samples known Gaussians and checks the moments.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

__all__ = ["DemczResult", "TProposal", "independence_step", "run_demcz"]

#: Share of snooker moves (ter Braak and Vrugt 2008 use 0.1).
P_SNOOKER = 0.1
#: Share of steps with gamma = 1 (mode jumping; ter Braak 2006).
P_GAMMA_ONE = 0.1
#: Sd of the small random addition ``e`` of the parallel-direction move (unit coordinates).
JITTER_SD = 1e-6
#: Steps between archive updates (ter Braak and Vrugt's K).
ARCHIVE_EVERY = 10


@dataclass
class DemczResult:
    """Chains, log probabilities and acceptance of a DE-MCz run."""

    chain: np.ndarray  # (steps, chains, d)
    log_prob: np.ndarray  # (steps, chains)
    accepted: np.ndarray  # (chains,) number of accepted proposals
    steps: int
    calls: int
    accepted_independence: np.ndarray | None = None  # (chains,) of those, by independence steps
    independence_steps: int = 0

    @property
    def acceptance_fraction(self) -> np.ndarray:
        """Accepted share of each chain's proposals."""
        return self.accepted / max(self.steps, 1)


def run_demcz(log_prob: Callable[[np.ndarray], np.ndarray], x0: np.ndarray, z0: np.ndarray, steps: int,
              rng: np.random.Generator, *, archive_every: int = ARCHIVE_EVERY,
              p_snooker: float = P_SNOOKER, proposal: TProposal | None = None,
              lp0: np.ndarray | None = None, tries: int = 1) -> DemczResult:
    """Run DE-MCz(s) (see the module docstring).

    Parameters
    ----------
    log_prob : callable
        Vectorised log density ``(N, d) -> (N,)`` (``-inf`` where impossible).
    x0 : numpy.ndarray
        Starting states ``(N, d)``, each with a finite log density.
    z0 : numpy.ndarray
        Initial archive ``(M0, d)``, at least 3 points, spread over the region the
        chains should explore (ter Braak and Vrugt take a prior sample of about ``10 d``).
    steps : int
        Steps of every chain.
    rng : numpy.random.Generator
        The only source of randomness.
    proposal : TProposal, optional
        With a proposal, every second step is an independence Metropolis-Hastings step
        (:func:`independence_step`) instead of a DE-MCz step: a composition of two
        kernels that each leave the target invariant (Tierney 1994). ``proposal`` is
        fitted before the run (from an earlier run's states) and fixed during it.
    lp0 : numpy.ndarray, optional
        Log densities of ``x0`` when already known (saves one call).
    tries : int
        Candidates per chain of each independence step (:func:`independence_step`).

    Raises
    ------
    ValueError
        If a shape or setting is not allowed, or a starting state has no finite density.
    """
    x = np.array(x0, dtype=float)
    if x.ndim != 2 or x.shape[0] < 1:
        raise ValueError(f"x0 must be (chains, d), got shape {np.shape(x0)}")
    n, d = x.shape
    z = np.array(z0, dtype=float)
    if z.ndim != 2 or z.shape[1] != d or z.shape[0] < 3:
        raise ValueError(f"z0 must be (M0 >= 3, {d}), got shape {np.shape(z0)}")
    if steps < 1 or archive_every < 1 or not 0.0 <= p_snooker <= 1.0:
        raise ValueError(f"steps {steps} / archive_every {archive_every} / p_snooker {p_snooker} not allowed; "
                         "allowed: steps >= 1, archive_every >= 1, 0 <= p_snooker <= 1")
    if lp0 is not None:
        lp, calls = np.array(lp0, dtype=float), 0
    else:
        lp, calls = np.asarray(log_prob(x), dtype=float), 1
    if not np.all(np.isfinite(lp)):
        bad = int(np.argmin(np.isfinite(lp)))
        raise ValueError(f"starting state {bad} has no finite log density; allowed: states inside the prior")
    capacity = z.shape[0] + n * (steps // archive_every + 1)
    archive = np.empty((capacity, d))
    archive[: z.shape[0]] = z
    m = z.shape[0]
    chain = np.empty((steps, n, d))
    lps = np.empty((steps, n))
    accepted = np.zeros(n, dtype=np.int64)
    accepted_independence = np.zeros(n, dtype=np.int64)
    gamma_de = 2.38 / math.sqrt(2 * d)
    lq = proposal.log_density(x) if proposal is not None else None
    for t in range(steps):
        if proposal is not None and lq is not None and t % 2 == 1:
            took = independence_step(log_prob, x, lp, lq, proposal, rng, tries)
            accepted += took
            accepted_independence += took
            calls += 1
            chain[t], lps[t] = x, lp
            if (t + 1) % archive_every == 0:
                archive[m : m + n] = x
                m += n
            continue
        snooker = np.asarray(rng.random(n) < p_snooker)
        # three distinct archive points per chain (the parallel move uses the first two)
        idx = np.stack([rng.integers(0, m, n) for _ in range(3)], axis=1)
        for _ in range(100):  # redraw coincident indices (rare once the archive is large)
            clash = (idx[:, 0] == idx[:, 1]) | (idx[:, 0] == idx[:, 2]) | (idx[:, 1] == idx[:, 2])
            if not clash.any():
                break
            idx[clash] = rng.integers(0, m, (int(clash.sum()), 3))
        z1, z2, z3 = archive[idx[:, 0]], archive[idx[:, 1]], archive[idx[:, 2]]
        gamma = 1.0 if rng.random() < P_GAMMA_ONE else gamma_de
        proposal_x = x + gamma * (z1 - z2) + JITTER_SD * rng.standard_normal((n, d))
        log_jac = np.zeros(n)
        if snooker.any():
            s = np.flatnonzero(snooker)
            xs, zc = x[s], z3[s]
            line = xs - zc
            norm2 = np.sum(line * line, axis=1)
            ok = norm2 > 0.0
            unit = np.where(ok[:, None], line / np.sqrt(np.where(ok, norm2, 1.0))[:, None], 0.0)
            proj = np.sum((z1[s] - z2[s]) * unit, axis=1)
            gs = rng.uniform(1.2, 2.2, s.size)
            prop_s = xs + (gs * proj)[:, None] * unit
            new_norm = np.sqrt(np.sum((prop_s - zc) ** 2, axis=1))
            with np.errstate(divide="ignore"):
                log_jac[s] = np.where(ok, (d - 1) * (np.log(new_norm) - 0.5 * np.log(np.where(ok, norm2, 1.0))),
                                      -np.inf)
            proposal_x[s] = np.where(ok[:, None], prop_s, xs)
        lp_new = np.asarray(log_prob(proposal_x), dtype=float)
        calls += 1
        u = np.log(rng.random(n))
        with np.errstate(invalid="ignore"):
            accept = np.isfinite(lp_new) & (u < lp_new - lp + log_jac)
        x[accept] = proposal_x[accept]
        lp[accept] = lp_new[accept]
        if lq is not None and proposal is not None and accept.any():
            lq[accept] = proposal.log_density(proposal_x[accept])
        accepted += accept
        chain[t], lps[t] = x, lp
        if (t + 1) % archive_every == 0:
            archive[m : m + n] = x
            m += n
    return DemczResult(chain=chain, log_prob=lps, accepted=accepted, steps=steps, calls=calls,
                       accepted_independence=accepted_independence,
                       independence_steps=steps // 2 if proposal is not None else 0)


# --------------------------------------------------------------------------- independence moves


@dataclass
class TProposal:
    """Multivariate Student-t proposal ``t_df(mean, scale)`` fitted to a pilot sample.

    Drawing and the density use ``numpy.einsum`` (its own loops), not BLAS: a sampler calls
    them every step, and each BLAS call wakes OpenBLAS's worker threads, which then spin on
    the other core (measured: the main process of a calibration used more CPU seconds than
    wall seconds, taking the core the backtest process runs on).
    """

    mean: np.ndarray  # (d,)
    chol: np.ndarray  # (d, d) lower Cholesky factor of the scale matrix
    df: float

    def __post_init__(self) -> None:
        """Invert the Cholesky factor once."""
        self._inv = np.linalg.inv(self.chol)  # once; lower triangular like chol

    @classmethod
    def fit(cls, sample: np.ndarray, df: float = 5.0, inflate: float = 1.2) -> TProposal:
        """Fit to ``sample`` (n, d): the t's covariance is ``inflate^2`` times the sample's.

        A t with ``df`` degrees of freedom has covariance ``scale df / (df - 2)``. The
        inflation and the heavy tails keep target / proposal bounded where the pilot
        under-states the spread; this sets the sampler's efficiency, never its validity.
        """
        sample = np.asarray(sample, dtype=float)
        mean = sample.mean(axis=0)
        centred = sample - mean
        cov = np.atleast_2d(np.einsum("ni,nj->ij", centred, centred) / max(sample.shape[0] - 1, 1))
        d = mean.size
        cov = cov + np.eye(d) * 1e-10 * max(float(np.trace(cov)) / d, 1e-300)
        scale = cov * inflate**2 * (df - 2.0) / df
        return cls(mean=mean, chol=np.linalg.cholesky(scale), df=float(df))

    def draw(self, n: int, rng: np.random.Generator) -> np.ndarray:
        """Return ``n`` draws (n, d)."""
        g = np.einsum("nj,ij->ni", rng.standard_normal((n, self.mean.size)), self.chol)
        w = np.sqrt(rng.chisquare(self.df, n) / self.df)
        return self.mean + g / w[:, None]

    def log_density(self, x: np.ndarray) -> np.ndarray:
        """Log density up to a constant (the constant cancels in the acceptance ratio)."""
        y = np.einsum("ij,nj->ni", self._inv, np.atleast_2d(x) - self.mean)
        q = np.sum(y * y, axis=1)
        return -0.5 * (self.df + self.mean.size) * np.log1p(q / self.df)


def independence_step(log_prob: Callable[[np.ndarray], np.ndarray], x: np.ndarray, lp: np.ndarray,
                      lq: np.ndarray, proposal: TProposal, rng: np.random.Generator, tries: int = 1) -> np.ndarray:
    """One independence Metropolis-Hastings step of every chain, in place; return the accepted mask.

    With ``tries = 1`` each chain proposes ``x* ~ q`` and accepts with probability
    ``min(1, p(x*) q(x) / (p(x) q(x*)))`` (Tierney 1994). With ``tries = K > 1`` it is the
    multiple-try Metropolis step for independent proposals (Liu, Liang and Wong 2000,
    JASA 95: 121-134, section 3.2): each chain draws ``K`` candidates from ``q``, picks one,
    ``y``, with probability proportional to its importance weight ``w = p / q``, and
    accepts it with probability ``min(1, sum_j w(y_j) / (sum_j w(y_j) - w(y) + w(x)))``;
    the step leaves ``p`` invariant for any ``K``. All ``N K`` candidates go to ONE call,
    whose cost hardly grows with the number of runs, so a step accepts far more often.
    """
    if tries < 1:
        raise ValueError(f"tries {tries} not allowed; allowed: a whole number >= 1")
    n, d = x.shape
    prop = proposal.draw(n * tries, rng)
    lq_new = proposal.log_density(prop)
    lp_new = np.asarray(log_prob(prop), dtype=float)
    u = np.log(rng.random(n))
    if tries == 1:
        with np.errstate(invalid="ignore"):
            accept = np.isfinite(lp_new) & (u < (lp_new - lp) - (lq_new - lq))
        x[accept], lp[accept], lq[accept] = prop[accept], lp_new[accept], lq_new[accept]
        return accept
    lw = np.where(np.isfinite(lp_new), lp_new - lq_new, -np.inf).reshape(n, tries)  # log importance weights
    lw_x = lp - lq
    top = np.maximum(lw.max(axis=1), lw_x)  # finite: the current state has a finite density
    w = np.exp(lw - top[:, None])
    w_x = np.exp(lw_x - top)
    total = w.sum(axis=1)
    pick = np.minimum((w.cumsum(axis=1) < (rng.random(n) * total)[:, None]).sum(axis=1), tries - 1)
    w_pick = w[np.arange(n), pick]
    with np.errstate(divide="ignore", invalid="ignore"):
        accept = (total > 0.0) & (u < np.log(total) - np.log(total - w_pick + w_x))
    chosen = np.arange(n) * tries + pick
    x[accept], lp[accept], lq[accept] = prop[chosen[accept]], lp_new[chosen[accept]], lq_new[chosen[accept]]
    return accept
