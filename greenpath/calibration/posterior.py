"""Posterior sample of the calibrated parameters: an ensemble MCMC on the vector engine.

Method
------
* **Parameters** are the fitted set of :class:`greenpath.calibration.space.ParameterSpace`,
  in unit-interval coordinates ``u = (x - min) / (max - min)``.
* **Prior**: uniform on each parameter's registry range ``[min, max]``
  (``model/parameters.csv``); the registry gives ranges, not distributions, and the
  range's source is in the registry row. The report lists each parameter's range.
* **Likelihood**: ``log L = -1/2 sum r^2`` over every recorded point of the fitted
  series (:class:`greenpath.calibration.objective.Objective` with ``prior_weight = 0``, its
  ``1/sqrt(n)`` series weighting undone by :func:`point_weights`): each residual is
  ``(simulated - observed) / (sigma * scale)`` with the series' stated error ``sigma``
  (its rationale, with the source of the error, is in
  :func:`greenpath.calibration.series.build_series` and the report's targets table), the
  points of a series taken as independent. Shape-only series have their level factor
  profiled out. (Weighting each series as one observation, as the point fit does, left
  the posterior so loose that its 2012-15 CO2 band missed every CEADs point: the uniform
  prior's volume outweighed four points at 10 %.) The model's own misfit (an error scale
  per series, :mod:`greenpath.calibration.discrepancy`) is NOT in this likelihood: tried
  there (each scale integrated out), it let the short series go (four CEADs points at a
  scale of 2-3 cost almost nothing) and the 2012-15 CO2 band widened to 48 % of the record
  with every point outside. It enters only the predictive band of the backtest, drawn
  given each parameter draw (a cut model: the misfit informs the error, not the parameters).
* **Sampler**: DE-MCz with snooker updates (:mod:`greenpath.calibration.demcz`; ter Braak
  and Vrugt 2008): the differential-evolution moves that emcee's ``DEMove`` and
  ``DESnookerMove`` make, but drawn from an archive of past states, so all walkers move
  at once and a step is ONE vector-engine call (emcee's red-blue ensemble needs two calls
  a step, each half waiting for the other). The chains
  and the archive start from the point fit's last differential-evolution population
  (no extra runs; taken in turn, a repeat moved by :data:`START_SD`, when there are more
  walkers than members), or a small ball (sd :data:`START_SD` of the range) around the point
  fit; the burn-in lets them spread. The chains move in logit coordinates
  ``y = log(u / (1 - u))`` (the registry bounds at infinity, the uniform prior's density
  ``u (1 - u)`` in ``y``), so no proposal is wasted outside the ranges. The burn-in runs in
  :data:`BURN_STAGES` stages: the first DE-MCz alone; at the end of each a multivariate t
  proposal (5 degrees of freedom, covariance 1.2^2 times the stage's second half) is
  fitted, and the next stage alternates independence Metropolis-Hastings steps from it
  (Tierney 1994) with DE-MCz steps; the proposal fitted to the last burn-in stage is fixed
  for the sampling phase. Each kernel leaves the posterior invariant, so their composition
  does too; the independence steps jump across the posterior where DE moves diffuse (a
  DE chain's autocorrelation time grows with the dimension: about 55 steps here in 25
  dimensions). An independence step is a multiple-try Metropolis step
  (:data:`DEFAULT_TRIES` candidates per walker, Liu, Liang and Wong 2000): the candidates
  of all walkers go to the same engine call, whose cost hardly grows with its runs (to
  2025: about 34 ms CPU for 128 runs, 40 ms for 512, 53 ms for 1,024), so a step accepts
  more often at almost no cost; for the same reason there are :data:`DEFAULT_WALKERS`
  walkers and the chains are short.
* **Diagnostics**: mean and lowest acceptance fraction, the integrated autocorrelation
  time per parameter (:func:`emcee.autocorr.integrated_time`), and the Gelman-Rubin
  R-hat across :data:`DEFAULT_GROUPS` walker groups (the walkers split in groups by
  index; each group's pooled post-burn-in draws act as a chain).
* **Stored sample**: thinned post-burn-in draws, in parameter units, written to
  ``calibration/posterior.csv`` with a header that records the seed, the sampler
  settings and the SHA-256 of the model, registry and history it was made from;
  ``calibrated.toml`` records the CSV's own SHA-256. :func:`in_force` uses the file only
  while all of them match; otherwise every band falls back, with the reason, to the
  projection uncertainties around the point calibration.

Everything is deterministic for a seed (a seeded NumPy generator drives the sampler).
"""

from __future__ import annotations

import hashlib
import io
import math
import time
import warnings
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

__all__ = [
    "DEFAULT_BURN",
    "DEFAULT_GROUPS",
    "DEFAULT_STEPS",
    "DEFAULT_THIN",
    "DEFAULT_WALKERS",
    "POSTERIOR_FILE",
    "PosteriorError",
    "PosteriorResult",
    "draw_rows",
    "gelman_rubin",
    "in_force",
    "log_probability",
    "read_posterior",
    "sample_posterior",
    "write_posterior",
]

#: File name of the stored sample, next to the calibration file.
POSTERIOR_FILE = "posterior.csv"
#: Walkers of the ensemble (a multiple of :data:`DEFAULT_GROUPS`, at least twice the parameters).
DEFAULT_WALKERS = 256
#: Steps per walker.
DEFAULT_STEPS = 600
#: Steps discarded as burn-in.
DEFAULT_BURN = 200
#: Keep every ``thin``-th post-burn-in step of every walker.
DEFAULT_THIN = 100
#: Walker groups whose pooled chains R-hat compares.
DEFAULT_GROUPS = 4
#: Sd of the starting ball around the point fit, in units of each registry range.
START_SD = 0.01
#: R-hat above this is reported as not converged.
RHAT_LIMIT = 1.1
#: A chain shorter than this many autocorrelation times gives a rough tau (emcee's rule).
TAU_FACTOR = 50


def _nanmax(x: np.ndarray) -> float:
    """Largest finite value, NaN when there is none (a chain too short for tau), without a warning."""
    finite = np.asarray(x, dtype=float)
    finite = finite[np.isfinite(finite)]
    return float(finite.max()) if finite.size else float("nan")


class PosteriorError(ValueError):
    """A posterior file or request is invalid (one line, names the file and the cause)."""


@dataclass
class PosteriorResult:
    """A posterior sample and its diagnostics."""

    names: list[str]
    draws: np.ndarray  # (n_draws, D) parameter units
    log_prob: np.ndarray  # (n_draws,)
    acceptance: np.ndarray  # (walkers,)
    tau: np.ndarray  # (D,) integrated autocorrelation time, steps
    rhat: np.ndarray  # (D,)
    seed: int
    walkers: int
    steps: int
    burn: int
    thin: int
    groups: int
    n_runs: int
    seconds: float
    map_u: np.ndarray = field(default_factory=lambda: np.array([]))
    acceptance_independence: np.ndarray = field(default_factory=lambda: np.array([]))  # (walkers,) or empty
    tries: int = 1

    @property
    def converged(self) -> bool:
        """True when every R-hat is below :data:`RHAT_LIMIT` and the chain is 50 tau long."""
        return bool(np.all(self.rhat < RHAT_LIMIT) and self.steps - self.burn >= TAU_FACTOR * _nanmax(self.tau))

    def frame(self) -> pd.DataFrame:
        """Return the draws as a DataFrame (columns: parameter names)."""
        return pd.DataFrame(self.draws, columns=self.names)

    def diagnostics(self) -> dict[str, Any]:
        """Return the diagnostics as plain numbers (the ``[posterior]`` table of the calibration file)."""
        return {
            "method": "DE-MCz with snooker updates (ter Braak and Vrugt 2008) in logit coordinates, after the "
            "first burn-in stage alternating with multiple-try independence Metropolis-Hastings steps (Liu, Liang "
            f"and Wong 2000; {self.tries} candidates a walker) from a t proposal refitted at the end of each "
            "burn-in stage and fixed for the sampling phase; all walkers (and all their candidates) in one "
            "engine call a step; uniform prior on the registry ranges; likelihood "
            "exp(-1/2 sum r^2) over every recorded point with its series' stated error",
            "seed": self.seed, "walkers": self.walkers, "steps": self.steps, "burn": self.burn,
            "thin": self.thin, "groups": self.groups, "n_draws": int(self.draws.shape[0]),
            "n_model_runs": self.n_runs, "wall_time_s": round(self.seconds, 2),
            "acceptance_mean": float(np.mean(self.acceptance)),
            "acceptance_min": float(np.min(self.acceptance)),
            "tries": self.tries,
            **({"acceptance_independence_mean": float(np.mean(self.acceptance_independence))}
               if self.acceptance_independence.size else {}),
            "tau_max": _nanmax(self.tau), "rhat_max": _nanmax(self.rhat),
            "converged": self.converged,
            "tau": {n: float(v) for n, v in zip(self.names, self.tau, strict=True)},
            "rhat": {n: float(v) for n, v in zip(self.names, self.rhat, strict=True)},
        }


def log_probability(objective: Any) -> Callable[[np.ndarray], np.ndarray]:
    """Vectorised log posterior ``(W, D) -> (W,)`` in unit coordinates (one engine call).

    ``objective`` must have no prior rows (``prior_weight = 0``): the prior is the uniform
    one on ``[0, 1]^D`` (the registry ranges), ``-inf`` outside.
    """
    if getattr(objective, "n_prior", 0):
        raise PosteriorError("the posterior's objective must have prior_weight = 0 (the prior is uniform)")

    weight = point_weights(objective.series)

    def log_prob(u: np.ndarray) -> np.ndarray:
        u = np.atleast_2d(np.asarray(u, dtype=float))
        inside = np.all((u >= 0.0) & (u <= 1.0), axis=1)
        out = np.full(u.shape[0], -np.inf)
        if inside.any():
            r = objective.residuals_batch(u[inside]) * weight
            out[inside] = -0.5 * np.sum(r * r, axis=1)
        return out

    return log_prob


def point_weights(series: Sequence[Any]) -> np.ndarray:
    """Per-residual factors that undo the fit's ``1/sqrt(n)`` series weighting.

    The point fit divides each series' residuals by ``sqrt(n)`` (a series counts once);
    the likelihood takes every recorded point with its stated error: ``sqrt(n)`` for the
    point residuals of a series, 1 for the factor-bound row of a profiled series.
    """
    parts = []
    for s in series:
        parts.append(np.full(s.n, math.sqrt(s.n)))
        if s.n_residuals > s.n:
            parts.append(np.ones(s.n_residuals - s.n))
    return np.concatenate(parts)


#: A burn-in at least this long fits the independence proposal of the sampling phase.
PILOT_MIN_STEPS = 50
#: Candidates per walker of an independence step (multiple-try Metropolis, demcz.independence_step).
DEFAULT_TRIES = 4
#: Stages of such a burn-in: a t proposal is fitted at the end of each (see sample_posterior).
BURN_STAGES = 2
#: Unit coordinates are kept this far inside [0, 1] before the logit (a DE member on a bound).
LOGIT_EDGE = 1e-6


def _reflect(u: np.ndarray) -> np.ndarray:
    """Reflect points into the unit cube (a point fit may sit on a bound), kept just inside it."""
    u = np.where(u < 0.0, -u, u)
    u = np.where(u > 1.0, 2.0 - u, u)
    return np.clip(u, 1e-9, 1.0 - 1e-9)


def _logit(u: np.ndarray) -> np.ndarray:
    u = np.clip(np.asarray(u, dtype=float), LOGIT_EDGE, 1.0 - LOGIT_EDGE)
    return np.log(u) - np.log1p(-u)


def _sigmoid(y: np.ndarray) -> np.ndarray:
    return 0.5 * (1.0 + np.tanh(0.5 * np.asarray(y, dtype=float)))


def _log_jacobian(y: np.ndarray) -> np.ndarray:
    """``sum log(u (1 - u))`` over the last axis, ``u = sigmoid(y)``: du/dy, computed without overflow."""
    y = np.asarray(y, dtype=float)
    return np.sum(-np.logaddexp(0.0, y) - np.logaddexp(0.0, -y), axis=-1)


def gelman_rubin(chain: np.ndarray, groups: int) -> np.ndarray:
    """R-hat per parameter across walker groups.

    Parameters
    ----------
    chain : numpy.ndarray
        Post-burn-in samples, shape (steps, walkers, D).
    groups : int
        Number of groups; walker ``w`` belongs to group ``w % groups``. Each group's
        draws, pooled over its walkers, act as one chain of length ``n``.

    Returns
    -------
    numpy.ndarray
        ``sqrt(((n - 1)/n W + B/n) / W)`` with ``W`` the mean within-group variance and
        ``B/n`` the variance of the group means (Gelman and Rubin 1992).
    """
    steps, walkers, d = chain.shape
    if groups < 2 or walkers < 2 * groups:
        raise PosteriorError(f"R-hat needs at least 2 groups of 2 walkers; got {groups} groups of {walkers} walkers")
    pooled = np.stack([chain[:, g::groups, :].reshape(-1, d) for g in range(groups)])  # (G, n, D)
    n = pooled.shape[1]
    means = pooled.mean(axis=1)
    within = pooled.var(axis=1, ddof=1).mean(axis=0)
    between_n = means.var(axis=0, ddof=1)  # B / n
    var_hat = (n - 1) / n * within + between_n
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.sqrt(var_hat / within)


def sample_posterior(objective: Any, start_u: np.ndarray, seed: int, *, walkers: int = DEFAULT_WALKERS,
                     steps: int = DEFAULT_STEPS, burn: int = DEFAULT_BURN, thin: int = DEFAULT_THIN,
                     groups: int = DEFAULT_GROUPS, start_population: np.ndarray | None = None,
                     tries: int = DEFAULT_TRIES, progress: Callable[[str], None] | None = None) -> PosteriorResult:
    """Run the ensemble MCMC from a ball around ``start_u`` (unit coordinates).

    Parameters
    ----------
    objective : greenpath.calibration.objective.Objective
        Data residuals (``prior_weight = 0``).
    start_u : numpy.ndarray
        The point fit (D,), unit coordinates.
    seed : int
        Seed of the starting ball and the sampler's moves.
    walkers, steps, burn, thin, groups : int
        Sampler settings (see the module constants).
    start_population : numpy.ndarray, optional
        Points (M, D) in unit coordinates that start the chains (the first ``walkers``)
        and DE-MCz's archive (all of them): the point fit's last differential-evolution
        population. Without it (or with fewer than ``walkers`` points) both are a ball of
        sd :data:`START_SD` around ``start_u``.

    Raises
    ------
    PosteriorError
        If a setting is not allowed (names it and what is allowed).
    """
    import emcee

    from greenpath.calibration.demcz import ARCHIVE_EVERY, TProposal, run_demcz

    space = objective.space
    d = len(space)
    if walkers < 2 * d or walkers % 2 or walkers % groups:
        raise PosteriorError(
            f"walkers {walkers} not allowed; allowed: an even multiple of the {groups} groups, at least "
            f"2 x {d} parameters"
        )
    if not 0 <= burn < steps or thin < 1 or (steps - burn) < thin:
        raise PosteriorError(
            f"steps {steps} / burn {burn} / thin {thin} not allowed; allowed: 0 <= burn < steps, "
            "1 <= thin <= steps - burn"
        )
    started = time.perf_counter()
    runs0 = objective.simulator.n_runs
    rng = np.random.default_rng(seed)
    start = np.asarray(start_u, dtype=float)
    ball = _reflect(start + START_SD * rng.standard_normal((walkers, d)))
    if start_population is not None and len(start_population) >= min(walkers, 2 * d):
        # the point fit's last differential-evolution population: the region the search was
        # still exploring, free (no extra runs) and wider than the ball in the directions the
        # data leave open; chains start on its members (DE keeps the best first), taken in
        # turn when there are more walkers than members, a repeat moved by the ball's sd
        pop = np.clip(np.asarray(start_population, dtype=float), 0.0, 1.0)
        p0 = pop[np.arange(walkers) % len(pop)]
        repeat = np.arange(walkers) >= len(pop)
        p0[repeat] = _reflect(p0[repeat] + START_SD * rng.standard_normal((int(repeat.sum()), d)))
        z0 = pop
    else:
        p0, z0 = ball, ball
    # The chains move in logit coordinates y = log(u / (1 - u)), where the registry bounds lie
    # at infinity: no proposal leaves the prior's support (in unit coordinates most DE
    # proposals did, with several parameters piled against a bound: acceptance 0.06), and the
    # uniform prior becomes the density u (1 - u) in y (the Jacobian), so the target is unchanged.
    target = log_probability(objective)

    def log_prob_y(y: np.ndarray) -> np.ndarray:
        u = _sigmoid(y)
        return target(u) + _log_jacobian(y)

    y0, archive0 = _logit(p0), _logit(z0)
    acceptance_ind = np.array([])
    if burn >= PILOT_MIN_STEPS:
        # burn-in in BURN_STAGES stages: the first DE-MCz alone, each later one alternating
        # DE-MCz with independence steps from a t proposal fitted to the previous stage's
        # second half; the sampling phase alternates the two with a t fitted to the last
        # burn-in stage, fixed from there on (both kernels leave the target invariant):
        # independence proposals jump across the posterior in one step where the DE moves
        # diffuse (their autocorrelation time grows with the dimension). Refitting during the
        # burn-in lets the proposal follow the chains as they spread from the point fit.
        bounds = [burn * k // BURN_STAGES for k in range(BURN_STAGES + 1)] + [steps]
        y, lp_y, archive, proposal = y0, None, archive0, None
        chains, lps = [], []
        for k in range(len(bounds) - 1):
            n_k = bounds[k + 1] - bounds[k]
            if n_k < 1:
                continue
            run = run_demcz(log_prob_y, y, archive, n_k, rng, proposal=proposal, lp0=lp_y, tries=tries)
            chains.append(run.chain)
            lps.append(run.log_prob)
            y, lp_y = run.chain[-1], run.log_prob[-1]
            if k < len(bounds) - 2:  # a burn-in stage: the next one draws from it
                archive = np.concatenate([archive, run.chain[ARCHIVE_EVERY - 1 :: ARCHIVE_EVERY].reshape(-1, d)])
                proposal = TProposal.fit(run.chain[n_k // 2 :].reshape(-1, d))
        y_chain, y_lp = np.concatenate(chains), np.concatenate(lps)
        acceptance = run.acceptance_fraction  # the sampling phase
        if run.independence_steps and run.accepted_independence is not None:
            acceptance_ind = run.accepted_independence / run.independence_steps
    else:
        run = run_demcz(log_prob_y, y0, archive0, steps, rng)
        y_chain, y_lp, acceptance = run.chain, run.log_prob, run.acceptance_fraction
    chain = _sigmoid(y_chain)  # (steps, walkers, D), unit coordinates
    lp = y_lp - _log_jacobian(y_chain)  # the log posterior density in unit coordinates
    post = chain[burn:]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        # tol=0: no length check here (emcee would log it); the report applies its rule of 50 tau itself
        tau = np.asarray(emcee.autocorr.integrated_time(post, tol=0), dtype=float)
    rhat = gelman_rubin(post, groups)
    kept = post[thin - 1 :: thin]  # (k, walkers, D)
    draws_u = kept.reshape(-1, d)
    draws_lp = lp[burn:][thin - 1 :: thin].reshape(-1)
    best = np.unravel_index(np.argmax(lp), lp.shape)
    result = PosteriorResult(
        names=list(space.names), draws=space.to_x(draws_u), log_prob=draws_lp,
        acceptance=acceptance, tau=tau, rhat=rhat, seed=seed,
        walkers=walkers, steps=steps, burn=burn, thin=thin, groups=groups,
        n_runs=objective.simulator.n_runs - runs0, seconds=time.perf_counter() - started,
        map_u=chain[best[0], best[1]], acceptance_independence=acceptance_ind, tries=tries,
    )
    if progress:
        ind = (f" ({np.mean(acceptance_ind):.2f} of the independence steps, {tries} tries)"
               if acceptance_ind.size else "")
        progress(f"posterior: {walkers} walkers x {steps} steps, acceptance {np.mean(result.acceptance):.2f}{ind}, "
                 f"max tau {_nanmax(tau):.0f} steps, max R-hat {_nanmax(rhat):.3f}, "
                 f"{result.draws.shape[0]} draws kept ({result.seconds:.1f} s)")
    return result


# --------------------------------------------------------------------------- file


def _sha(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def source_hashes(history_path: Path | None = None) -> dict[str, str]:
    """SHA-256 of the model, registry and history a posterior is made from (as now on disk)."""
    from greenpath.calibration import history as hist
    from greenpath.engines.pysd_engine import MDL_PATH, model_hash
    from greenpath.model import registry as reg

    return {
        "model_sha256": model_hash(MDL_PATH),
        "registry_sha256": _sha(reg.REGISTRY_PATH),
        "history_sha256": _sha(Path(history_path) if history_path is not None else hist.DEFAULT_HISTORY_PATH),
    }


def write_posterior(result: PosteriorResult, path: Path, hashes: Mapping[str, str]) -> str:
    """Write the draws as CSV with a ``# key = value`` header; return the file's SHA-256.

    Values keep 10 significant digits (the runs use exactly the stored values).
    """
    from greenpath.files import atomic_write

    head = {
        "greenpath_posterior": 1, "seed": result.seed, "walkers": result.walkers, "steps": result.steps,
        "burn": result.burn, "thin": result.thin, "n_draws": int(result.draws.shape[0]), **dict(hashes),
    }
    buf = io.StringIO()
    buf.write("# Posterior draws of the calibrated parameters, written by `greenpath calibrate` "
              "(calibration/posterior.py); regenerate, never edit.\n")
    for k, v in head.items():
        buf.write(f"# {k} = {v}\n")
    frame = result.frame()
    frame.to_csv(buf, index=False, float_format="%.10g", lineterminator="\n")
    data = buf.getvalue().encode("utf-8")
    atomic_write(Path(path), lambda tmp: tmp.write_bytes(data), overwrite=True)
    return hashlib.sha256(data).hexdigest()


def read_posterior(path: Path) -> tuple[pd.DataFrame, dict[str, str]]:
    """Read a posterior CSV: ``(draws, header)``; every value checked against the registry.

    Raises
    ------
    PosteriorError
        If the file is missing or malformed, or a name or value is not allowed (names the
        file, the line or column, the value and the allowed range).
    """
    from greenpath.model import registry as reg

    path = Path(path)
    if not path.is_file():
        raise PosteriorError(f"posterior file {path.name} not found; run `greenpath calibrate --force`")
    try:
        text = path.read_bytes().decode("utf-8")
    except UnicodeDecodeError as exc:  # damaged or edited in another encoding
        raise PosteriorError(f"{path.name}: not UTF-8 text (byte {exc.start + 1}); regenerate it with "
                             "`greenpath calibrate --force`, never edit it") from None
    header: dict[str, str] = {}
    lines = text.splitlines()
    body_start = 0
    for i, line in enumerate(lines):
        if not line.startswith("#"):
            body_start = i
            break
        if "=" in line:
            k, _, v = line[1:].partition("=")
            header[k.strip()] = v.strip()
    if header.get("greenpath_posterior") != "1":
        raise PosteriorError(f"{path.name}: line 1: not a greenpath posterior file (no '# greenpath_posterior = 1')")
    try:
        frame = pd.read_csv(io.StringIO("\n".join(lines[body_start:])))
    except Exception as exc:  # pandas raises several types
        raise PosteriorError(f"{path.name}: not readable as CSV ({exc})") from None
    if frame.empty:
        raise PosteriorError(f"{path.name}: no draws")
    registry = reg.load_registry()
    for column in frame.columns:
        p = registry.get(column)
        if p is None or p.kind != "uncertainty":
            raise PosteriorError(f"{path.name}: column {column!r} is not a registry uncertainty; allowed: the "
                                 "calibrated parameters")
        values = pd.to_numeric(frame[column], errors="coerce").to_numpy(dtype=float)
        bad = ~np.isfinite(values) | (values < p.min) | (values > p.max)
        if bad.any():
            i = int(np.argmax(bad))
            raise PosteriorError(
                f"{path.name}: line {body_start + 2 + i}: {column} = {frame[column].iloc[i]!r} is outside "
                f"{p.min} to {p.max} {p.unit} (the registry range)"
            )
        frame[column] = values
    return frame, header


_CACHE: dict[tuple, tuple[pd.DataFrame | None, str]] = {}


def in_force() -> tuple[pd.DataFrame | None, str]:
    """Return the posterior draws every band uses, or ``(None, reason)``.

    Returns
    -------
    (pandas.DataFrame or None, str)
        The draws and a one-line description of where they come from; or ``None`` and
        why there is no usable posterior (no calibration in force, no ``[posterior]``
        table, the file missing or changed since the calibration, or the model, registry
        or history changed since it was drawn). Cached on the files' stat.
    """
    from greenpath.engines.pysd_engine import MDL_PATH
    from greenpath.model import registry as reg

    cal = reg.calibration_path()
    if cal is None:
        return None, "no calibration in force (GREENPATH_CALIBRATION=none): registry priors, no posterior"
    cal = Path(cal)
    post = cal.with_name(POSTERIOR_FILE)
    stamp = tuple((str(p), p.stat().st_mtime_ns, p.stat().st_size) if p.is_file() else (str(p),)
                  for p in (cal, post, MDL_PATH, reg.REGISTRY_PATH))
    if stamp in _CACHE:
        return _CACHE[stamp]
    _CACHE[stamp] = result = _load_in_force(cal, post)
    return result


def _load_in_force(cal: Path, post: Path) -> tuple[pd.DataFrame | None, str]:
    from greenpath import tomlfile

    try:
        doc = tomlfile.read(cal, PosteriorError, what="a calibration file")
    except PosteriorError as exc:
        return None, f"calibration file unreadable ({exc})"
    table = doc.get("posterior")
    if not isinstance(table, dict) or "sha256" not in table:
        return None, f"{cal.name} has no [posterior] table (calibrated without a posterior sample)"
    if not post.is_file():
        return None, f"{post.name} not found next to {cal.name}"
    if _sha(post) != table["sha256"]:
        return None, f"{post.name} differs from the file {cal.name} recorded (SHA-256); recalibrate"
    try:
        frame, header = read_posterior(post)
    except PosteriorError as exc:
        return None, str(exc)
    current = source_hashes()
    for key in ("model_sha256", "registry_sha256"):
        if header.get(key) != current[key]:
            what = key.split("_")[0]
            return None, f"{post.name} was drawn from another {what} ({key} differs); recalibrate"
    return frame, f"{len(frame)} posterior draws of {frame.shape[1]} calibrated parameters ({post.name})"


_WARNED: set[str] = set()


def draw_rows(n: int, seed: int | None, exclude: Collection[str] = ()) -> tuple[pd.DataFrame | None, str]:
    """``n`` rows of posterior draws for an ensemble (seeded), or ``(None, reason)``.

    Rows are drawn with replacement only when ``n`` exceeds the stored draws; the same
    seed gives the same rows. Columns in ``exclude`` (settings the user holds) are left
    out. Without a usable posterior a ``RuntimeWarning`` states the reason once per
    process and reason (never a silent fallback).
    """
    frame, why = in_force()
    if frame is None:
        if why not in _WARNED:
            _WARNED.add(why)
            warnings.warn(f"uncertainty bands sample the projection uncertainties around the point calibration "
                          f"only: {why}", RuntimeWarning, stacklevel=3)
        return None, why
    keep = [c for c in frame.columns if c not in set(exclude)]
    if not keep:
        return None, "every calibrated parameter is held by the settings"
    idx = _draw_index(n, seed, len(frame))
    return frame[keep].iloc[idx].reset_index(drop=True), why


def _draw_index(n: int, seed: int | None, stored: int) -> np.ndarray:
    """Return the stored draws :func:`draw_rows` takes, in order (with replacement when ``n > stored``)."""
    rng = np.random.default_rng([0 if seed is None else int(seed), 15])
    return rng.choice(stored, size=n, replace=n > stored)


def file_sha256() -> str:
    """SHA-256 of the posterior file in force ('' when there is no usable posterior)."""
    from greenpath.model import registry as reg

    frame, _ = in_force()
    cal = reg.calibration_path()
    if frame is None or cal is None:
        return ""
    return _sha(Path(cal).with_name(POSTERIOR_FILE))


def rows_for_range(n_total: int, seed: int, start: int, stop: int, names: Sequence[str],
                   sha256: str) -> np.ndarray:
    """Rows ``start:stop`` of :func:`draw_rows` ``(n_total, seed)``, columns ``names`` (batch chunks).

    Raises
    ------
    PosteriorError
        If the posterior in force is not the file ``sha256`` names (it changed since the
        batch was defined) or lacks a column.
    """
    current = file_sha256()
    if current != sha256:
        raise PosteriorError(
            f"the batch was defined with posterior sample {sha256[:12] or '(none)'}, the one in force is "
            f"{current[:12] or '(none)'}; rerun the batch from scratch (--force) or restore that calibration"
        )
    frame, why = in_force()
    if frame is None:  # pragma: no cover - file_sha256 said there is one
        raise PosteriorError(why)
    missing = [n for n in names if n not in frame.columns]
    if missing:
        raise PosteriorError(f"posterior sample lacks {missing}; rerun the batch from scratch (--force)")
    # draw_rows(n_total, seed)'s rows start:stop, without building all n_total of them (a
    # million-run batch built a million rows for every chunk of 5,000: memory and time
    # grew with the batch)
    idx = _draw_index(n_total, seed, len(frame))[start:stop]
    return frame[list(names)].to_numpy(dtype=float)[idx]


def describe_prior(space: Any) -> list[tuple[str, float, float, str]]:
    """``(name, min, max, unit)`` of each parameter's uniform prior (the registry range)."""
    return [(p.name, p.lower, p.upper, p.unit) for p in space.parameters]


def summary(result: PosteriorResult) -> pd.DataFrame:
    """Per parameter: posterior median, P10, P90, width (P90 - P10) over the range, tau, R-hat."""
    q = np.percentile(result.draws, [10, 50, 90], axis=0)
    return pd.DataFrame({"p10": q[0], "median": q[1], "p90": q[2], "tau": result.tau, "rhat": result.rhat},
                        index=pd.Index(result.names, name="parameter"))
