"""Runtime helpers of the vector engine's generated modules.

The source of this file is copied verbatim into every module that
:func:`greenpath.engines.vector.generate` writes, so a generated module needs nothing
but NumPy.  Every helper accepts Python/NumPy scalars or arrays whose leading
(or only) axis is the scenario axis, and reproduces the arithmetic of the
matching PySD 3.14 function (``pysd.py_backend.functions`` /
``pysd.py_backend.statefuls`` / ``pysd.py_backend.components.Time``)
operation for operation, so that results agree with PySD to rounding.

The ``_sc_*`` helpers at the end serve the scalar backend (one scenario,
Python floats): they are PySD's scalar code paths, copied.

Differences that only show outside PySD's own domain: PySD evaluates the
branches of IF THEN ELSE lazily while ``np.where`` evaluates both (the engine
runs under ``np.errstate(all="ignore")``, so a division by zero in the branch
not taken is harmless instead of raising), and a division by zero in a taken
branch gives inf/nan here where PySD raises ZeroDivisionError.
"""

import math as _math
import warnings as _warnings
from bisect import bisect_right as _bisect_right

import numpy as _np

_SMALL_VENSIM = 1e-6  # pysd.py_backend.functions.SMALL_VENSIM
_RPREC = 1e-5  # pysd.py_backend.components.Time.rprec
_nan = float("nan")
_inf = float("inf")


def _schedule(initial_time, final_time, time_step, saveper):
    """Integration times and the 'save this time' flags, as PySD's Time does.

    Time advances by repeated addition (``t = t + dt``) while
    ``t + dt*rprec < final_time``; a time is saved when
    ``(t - t0) % saveper`` or ``-(t - t0) % saveper`` is below
    ``dt*rprec``; the state at the last time is saved after the loop.
    """
    t0 = float(initial_time)
    tf = float(final_time)
    dt = float(time_step)
    sp = float(saveper)
    if not dt > 0:
        raise ValueError(f"TIME STEP must be positive, got {time_step!r}")
    if not sp > 0:
        raise ValueError(f"SAVEPER must be positive, got {saveper!r}")
    prec = dt * _RPREC
    times = []
    save = []
    t = t0
    while True:
        delay = t - t0
        times.append(t)
        save.append(delay % sp < prec or -delay % sp < prec)
        if not t + dt * _RPREC < tf:
            break
        t = t + dt
    return times, save


def _round_times(times, time_step):
    """Return the time index PySD gives its output (``Time.round``)."""
    return _np.round(_np.asarray(times, dtype=float), -int(_np.log10(time_step * _RPREC)))


def _full(value, n):
    """Return a fresh float array of shape (n,) holding ``value`` (scalar or (n,))."""
    out = _np.empty(n)
    out[...] = value
    return out


def _xidz(a, b, x):
    return _np.where(_np.abs(b) < _SMALL_VENSIM, x, _np.true_divide(a, b))


def _zidz(a, b):
    return _np.where(_np.abs(b) < _SMALL_VENSIM, 0.0, _np.true_divide(a, b))


def _quantum(a, b):
    return _np.where(b < _SMALL_VENSIM, a, b * _np.trunc(_np.true_divide(a, b)))


def _modulo(x, m):
    return x - _quantum(x, m)


def _step(time, time_step, value, tstep):
    return value * (time + time_step / 2 > tstep)


def _ramp(time, slope, start, finish=None):
    final = time if finish is None else _np.minimum(finish, time)
    return (time + _SMALL_VENSIM > start) * slope * (final - start)


def _pulse(time, start, width):
    on = _np.logical_and(start - _SMALL_VENSIM <= time, time < start + width)
    return _np.where(on, 1.0, 0.0)


def _pulse_train(time, start, repeat_time, width, end):
    single = _np.logical_and(start - _SMALL_VENSIM <= time, time < start + width)
    window = _np.logical_and(start <= time, time < end)
    train = _np.logical_and(window, _np.remainder(time - start + _SMALL_VENSIM, repeat_time) < width)
    return _np.where(repeat_time == 0, single, train) * 1.0


def _make_lookup(x, y, n):
    """Callable interpolating table (x, y) with end clamping.

    ``y`` of shape (k,) is one table shared by all scenarios (``np.interp``,
    as PySD's lookups); ``y`` of shape (n, k) is one table per scenario,
    evaluated with np.interp's own formula ``slope*(x - x[j]) + y[j]``.
    """
    if y.ndim == 1:

        def lookup(v):
            return _np.interp(v, x, y)

        return lookup

    k = x.shape[0]
    rows = _np.arange(n)
    x_lo, x_hi = x[0], x[-1]
    y_lo, y_hi = y[:, 0], y[:, -1]
    if k == 1:

        def lookup_one(v):
            return _np.broadcast_to(y_lo, _np.broadcast_shapes(_np.shape(v), (n,))).copy()

        return lookup_one
    slopes = (y[:, 1:] - y[:, :-1]) / (x[1:] - x[:-1])

    def lookup_per_scenario(v):
        v = _np.asarray(v, dtype=float)
        j = _np.clip(_np.searchsorted(x, v, side="right") - 1, 0, k - 2)
        y_j = y[rows, j]
        out = slopes[rows, j] * (v - x[j]) + y_j
        out = _np.where(v == x[j], y_j, out)
        out = _np.where(v < x_lo, y_lo, out)
        return _np.where(v >= x_hi, y_hi, out)

    return lookup_per_scenario


def _order_setup(name, order, n, time_step=None, delay_time=None):
    """Order of a SMOOTH/DELAY chain, per scenario, as PySD initialises it.

    DELAY orders are cast to int and, where ``order*TIME STEP`` exceeds the
    delay time, lowered one by one (PySD's 'Delay time very small' case),
    scenario by scenario.  Returns ``(max_order, order, index)``: ``order``
    is a float scalar when all scenarios agree, else an (n,) array, and
    ``state[index]`` picks each scenario's last stage.
    """
    order = _np.broadcast_to(_np.asarray(order, dtype=float), (n,))
    cast = _np.trunc(order)
    if _np.any(cast != order):
        _warnings.warn(f"{name}\nCasting delay order from {order} to {cast}", stacklevel=3)
    if delay_time is not None:
        delay_time = _np.broadcast_to(delay_time, (n,))
        original = cast
        while True:
            small = cast * time_step > delay_time
            if not _np.any(small):
                break
            cast = _np.where(small, cast - 1, cast)
            if _np.any(cast < 1):
                raise ValueError(
                    f"{name}: delay time below TIME STEP ({time_step}) in "
                    f"{int(_np.sum(cast < 1))} scenario(s); the delay order would reach 0"
                )
        if _np.any(cast != original):
            _warnings.warn(
                f"{name}\nDelay time very small, casting delay order in "
                f"{int(_np.sum(cast != original))} scenario(s) "
                f"from {original.max():g} down to {cast.min():g}",
                stacklevel=3,
            )
    if _np.any(cast < 1):
        raise ValueError(f"{name}: order must be at least 1, got {cast.min():g}")
    top = int(cast.max())
    if _np.all(cast == top):
        return top, float(top), top - 1
    return top, cast, (cast.astype(_np.intp) - 1, _np.arange(n))


def _fixed_order(name, delay_time, time_step):
    """Slots of a DELAY FIXED pipe, as DelayFixed.initialize sets them (the same in every scenario)."""
    order = _np.maximum(_np.asarray(delay_time, dtype=float) / time_step, 1)
    cast = _np.floor(order + _SMALL_VENSIM + 0.5)
    if _np.any(cast != order):
        _warnings.warn(f"{name}\nCasting delay order from {order.flat[0]:f} to {int(cast.flat[0])}", stacklevel=3)
    if _np.any(cast != cast.flat[0]):
        raise ValueError(
            f"{name}: DELAY FIXED with a delay time that differs between scenarios ({cast.min():g} to "
            f"{cast.max():g} steps); run those scenarios separately"
        )
    return int(cast.flat[0])


def _stages(value, stages, n):
    """Return a (stages, n) float array with every stage equal to ``value``."""
    out = _np.empty((stages, n))
    out[...] = value
    return out


def _smooth_update(state, inp, smooth_time, order, dt):
    # Smooth.ddt: targets = roll(state); targets[0] = input;
    # (targets - state) * order / smooth_time; Euler: state + ddt*dt
    targets = _np.empty_like(state)
    targets[0] = inp
    targets[1:] = state[:-1]
    return state + (targets - state) * order / smooth_time * dt


def _delay_update(state, inp, delay_time, order, dt):
    # Delay.ddt: outflows = state / delay_time; inflows = roll(outflows);
    # inflows[0] = input; (inflows - outflows) * order
    outflows = state / delay_time
    inflows = _np.empty_like(outflows)
    inflows[0] = inp
    inflows[1:] = outflows[:-1]
    return state + (inflows - outflows) * order * dt


def _delayn_update(state, times, inp, delay_time, order, dt):
    # DelayN.ddt: times = roll(times); times[0] = delay_time;
    # outflows = state / times; inflows = roll(outflows); inflows[0] = input
    new_times = _np.empty_like(times)
    new_times[0] = delay_time
    new_times[1:] = times[:-1]
    outflows = state / new_times
    inflows = _np.empty_like(outflows)
    inflows[0] = inp
    inflows[1:] = outflows[:-1]
    return state + (inflows - outflows) * order * dt, new_times


# In-place forms of the three updates above, for the vector backend's integration loop
# (the generator uses them where nothing read after the update can hold the state's
# arrays).  The same operations in the same order on the same values, so the same bits;
# ``work`` and ``flows`` are scratch arrays shaped like the state, reused every step
# instead of allocating the temporaries anew.


def _smooth_update_into(state, inp, smooth_time, order, dt, work):
    work[0] = inp
    work[1:] = state[:-1]
    _np.subtract(work, state, out=work)
    _np.multiply(work, order, out=work)
    _np.divide(work, smooth_time, out=work)
    _np.multiply(work, dt, out=work)
    _np.add(state, work, out=state)


def _delay_update_into(state, inp, delay_time, order, dt, work, flows):
    _np.divide(state, delay_time, out=flows)  # outflows
    work[0] = inp  # inflows: the input, then the stage before's outflow
    work[1:] = flows[:-1]
    _np.subtract(work, flows, out=work)
    _np.multiply(work, order, out=work)
    _np.multiply(work, dt, out=work)
    _np.add(state, work, out=state)


def _delayn_update_into(state, new_times, times, inp, delay_time, order, dt, work, flows):
    # the delay times shifted by one stage into the other of two arrays (the caller
    # swaps them): no overlapping copy
    new_times[0] = delay_time
    new_times[1:] = times[:-1]
    _delay_update_into(state, inp, new_times, order, dt, work, flows)


# ---------------------------------------------------------------------------
# Scalar backend: one scenario, Python floats (PySD's scalar code paths)
# ---------------------------------------------------------------------------


def _sc_min(a, b):
    # numpy.minimum: NaN wins
    return a if (a <= b or a != a) else b


def _sc_max(a, b):
    # numpy.maximum: NaN wins
    return a if (a >= b or a != a) else b


def _sc_xidz(a, b, x):
    return x if abs(b) < _SMALL_VENSIM else a / b


def _sc_zidz(a, b):
    return 0 if abs(b) < _SMALL_VENSIM else a / b


def _sc_quantum(a, b):
    return a if b < _SMALL_VENSIM else b * int(a / b)


def _sc_modulo(x, m):
    return x - _sc_quantum(x, m)


def _sc_step(time, time_step, value, tstep):
    return value * (time + time_step / 2 > tstep)


def _sc_ramp(time, slope, start, finish=None):
    final = time if finish is None else _sc_min(finish, time)
    return (time + _SMALL_VENSIM > start) * slope * (final - start)


def _sc_pulse(time, start, width):
    return 1 if start - _SMALL_VENSIM <= time < start + width else 0


def _sc_pulse_train(time, start, repeat_time, width, end):
    if repeat_time == 0:
        return 1 if start - _SMALL_VENSIM <= time < start + width else 0
    if start <= time < end:
        return 1 if (time - start + _SMALL_VENSIM) % repeat_time < width else 0
    return 0


def _sc_lookup(xs, ys):
    """Return ``numpy.interp(v, xs, ys)`` for one float, in plain Python.

    NumPy's arithmetic: clamped at both ends, a grid point returned as is,
    ``slope * (v - x_j) + y_j`` in between, the right-hand form when that is NaN.
    """
    xs = [float(x) for x in xs]
    ys = [float(y) for y in ys]
    x_lo, x_hi, y_lo, y_hi = xs[0], xs[-1], ys[0], ys[-1]

    def lookup(v):
        if not v > x_lo:  # at or left of the first point, or NaN
            return v if v != v else y_lo
        if v >= x_hi:
            return y_hi
        j = _bisect_right(xs, v) - 1
        if v == xs[j]:
            return ys[j]
        slope = (ys[j + 1] - ys[j]) / (xs[j + 1] - xs[j])
        value = slope * (v - xs[j]) + ys[j]
        if value != value:
            value = slope * (v - xs[j + 1]) + ys[j + 1]
            if value != value and ys[j] == ys[j + 1]:
                value = ys[j]
        return value

    return lookup


def _sc_order_setup(name, order, time_step=None, delay_time=None):
    """Order of a SMOOTH/DELAY chain for one scenario, as _order_setup does."""
    cast = float(_math.trunc(order))
    if cast != order:
        _warnings.warn(f"{name}\nCasting delay order from {order} to {cast}", stacklevel=3)
    if delay_time is not None:
        original = cast
        while cast * time_step > delay_time:
            cast -= 1
            if cast < 1:
                raise ValueError(f"{name}: delay time below TIME STEP ({time_step}); the delay order would reach 0")
        if cast != original:
            _warnings.warn(
                f"{name}\nDelay time very small, casting delay order from {original:g} down to {cast:g}",
                stacklevel=3,
            )
    if cast < 1:
        raise ValueError(f"{name}: order must be at least 1, got {cast:g}")
    return int(cast), cast


def _sc_fixed_order(name, delay_time, time_step):
    order = max(delay_time / time_step, 1)
    cast = round(order + _SMALL_VENSIM)
    if order != int(order):
        _warnings.warn(f"{name}\nCasting delay order from {order:f} to {cast}", stacklevel=3)
    return cast


def _sc_smooth_update(state, inp, smooth_time, order, dt):
    # Smooth.ddt stage by stage: target = input, then the stage before
    out = []
    target = inp
    for value in state:
        out.append(value + (target - value) * order / smooth_time * dt)
        target = value
    return out


def _sc_delay_update(state, inp, delay_time, order, dt):
    # Delay.ddt stage by stage: inflow = input, then the stage before's outflow
    out = []
    inflow = inp
    for value in state:
        outflow = value / delay_time
        out.append(value + (inflow - outflow) * order * dt)
        inflow = outflow
    return out


def _sc_delayn_unrolled(n):
    """Return the DELAY N update for a chain of ``n`` stages, one statement per stage (cached per n).

    ``update(state, times, inp, delay_time, order, dt) -> (state, times)``: DelayN.ddt
    with the stage times shifted by one stage, the new delay time first; the same
    operations in the same order as PySD's stage loop, on locals instead of list items
    (about half the time of the loop for 8 stages).
    """
    return _sc_delayn_built(n, fixed_time=False)


def _sc_delayn_fixed_time(n):
    """Return the unrolled DELAY N update for ``n`` stages whose times all equal the delay time.

    With a delay time that never changes, the stage times PySD shifts are all that
    one value: ``update(state, inp, delay_time, order, dt) -> state``, each stage
    divided by ``delay_time``, the same floats as :func:`_sc_delayn_unrolled`.
    """
    return _sc_delayn_built(n, fixed_time=True)


def _sc_delayn_built(n, fixed_time):
    """Compile (once per stage count and kind) the unrolled DELAY N update."""
    update = _SC_DELAYN_BUILT.get((n, fixed_time))
    if update is None:
        stages = range(n)
        state = ", ".join(f"s{i}" for i in stages)
        if fixed_time:
            lines = ["def update(state, inp, delay_time, order, dt):", f"    {state}, = state"]
            divisors = ["delay_time"] * n
            result = f"[{state}]"
        else:
            lines = ["def update(state, times, inp, delay_time, order, dt):", f"    {state}, = state",
                     "    t0 = delay_time"]
            if n > 1:
                lines.append(f"    {', '.join(f't{i}' for i in range(1, n))}, = times[:{n - 1}]")
            divisors = [f"t{i}" for i in stages]
            result = f"[{state}], [{', '.join(divisors)}]"
        inflow = "inp"
        for i in stages:
            lines += [f"    o{i} = s{i} / {divisors[i]}", f"    s{i} = s{i} + ({inflow} - o{i}) * order * dt"]
            inflow = f"o{i}"
        lines.append(f"    return {result}")
        namespace = {}
        kind = ", fixed time" if fixed_time else ""
        exec(compile("\n".join(lines) + "\n", f"<DELAY N update, {n} stages{kind}>", "exec"), namespace)
        update = _SC_DELAYN_BUILT[(n, fixed_time)] = namespace["update"]
    return update


_SC_DELAYN_BUILT: dict = {}  # (stage count, fixed time?) -> generated update function


def _make_data(xs, ys, mode):
    """Return a DATA variable's series as a function of time, read as PySD's ``Data.__call__`` does.

    ``xs`` are the (increasing) times, ``ys`` the values, ``mode`` PySD's
    ``interp``: a time on the series gives its value; otherwise ``raw`` gives
    NaN, times past either end the end value, ``interpolate`` the linear
    interpolation (``numpy.interp``, as xarray's ``interp`` does in 1-D),
    ``look_forward`` the next value and ``hold_backward`` the previous one.
    Returns a function of the time giving a float.
    """
    xs = tuple(float(x) for x in xs)
    ys = tuple(float(y) for y in ys)
    at = {x: i for i, x in enumerate(xs)}
    first, last = xs[0], xs[-1]
    interp = _np.interp

    def data(time):
        i = at.get(time)
        if i is not None:
            return ys[i]
        if mode == "raw":
            return _nan
        if time > last:
            return ys[-1]
        if time < first:
            return ys[0]
        if mode == "interpolate":
            return float(interp(time, xs, ys))
        j = _bisect_right(xs, time)  # xs[j - 1] < time < xs[j]
        return ys[j] if mode == "look_forward" else ys[j - 1]

    return data
