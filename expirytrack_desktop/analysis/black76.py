"""Black-76: prices, implied volatility and greeks of options on a forward.

Indian index and stock options are European and settle against the underlying at expiry, so
the option chain values them on the *forward* (the same-expiry future, or the forward implied
by put-call parity) with Black's 1976 formula. Plain ``math`` on purpose: a chain of 300 strikes
needs about 600 solves per minute step, a few milliseconds, and no heavy numeric dependency.

Conventions (the same as the widely used ``vollib`` package, which the tests compare with):
``t`` in years, ``r`` a continuously compounded annual rate, ``sigma`` a decimal (0.15 = 15 %);
delta per unit of the forward, gamma per unit², theta per calendar day (``/365``), vega per one
volatility point (``/100``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

SQRT2 = math.sqrt(2.0)
INV_SQRT_2PI = 1.0 / math.sqrt(2.0 * math.pi)
SIGMA_MIN = 1e-6
SIGMA_MAX = 20.0
PRICE_TOLERANCE = 1e-12  # relative to the time value solved for; the contract promises 1e-6


def norm_cdf(x: float) -> float:
    """Standard normal CDF via ``erfc`` (accurate in both tails, unlike ``1 + erf``)."""
    return 0.5 * math.erfc(-x / SQRT2)


def norm_pdf(x: float) -> float:
    return INV_SQRT_2PI * math.exp(-0.5 * x * x)


def _d1_d2(f: float, k: float, t: float, sigma: float) -> tuple[float, float]:
    sd = sigma * math.sqrt(t)
    d1 = (math.log(f / k) + 0.5 * sd * sd) / sd
    return d1, d1 - sd


def _undiscounted(f: float, k: float, t: float, sigma: float, is_call: bool) -> float:
    d1, d2 = _d1_d2(f, k, t, sigma)
    if is_call:
        return f * norm_cdf(d1) - k * norm_cdf(d2)
    return k * norm_cdf(-d2) - f * norm_cdf(-d1)


def price(f: float, k: float, t: float, r: float, sigma: float, is_call: bool) -> float:
    """Discounted Black-76 price of a call (``is_call``) or put."""
    if t <= 0 or sigma <= 0:
        return math.exp(-r * max(t, 0.0)) * max((f - k) if is_call else (k - f), 0.0)
    return math.exp(-r * t) * _undiscounted(f, k, t, sigma, is_call)


def implied_vol(
    option_price: float,
    f: float,
    k: float,
    t: float,
    r: float,
    is_call: bool,
    guess: float | None = None,
) -> float | None:
    """The volatility at which Black-76 gives ``option_price``; ``None`` where none exists.

    None for: no time left, a non-positive forward or strike, a price at or below intrinsic
    value (no time value to explain) or at or above the no-arbitrage bound. The solve runs on
    the out-of-the-money side (put-call parity turns an in-the-money price into its OTM twin),
    where the price is all time value and the problem is well conditioned, with Newton steps
    kept inside a shrinking bisection bracket: Newton's speed near the money, bisection's
    certainty deep in or out of the money and near expiry where vega vanishes. ``guess`` (e.g.
    the same contract's IV a minute earlier) only changes where the iteration starts.
    """
    if not (t > 0 and f > 0 and k > 0 and option_price > 0) or not math.isfinite(option_price):
        return None
    p = option_price * math.exp(r * t)  # undiscounted
    intrinsic = max((f - k) if is_call else (k - f), 0.0)
    time_value = p - intrinsic
    if time_value <= 0:
        return None
    # the OTM twin: call above the forward, put below it (at the money either is fine)
    otm_call = k >= f
    otm_bound = f if otm_call else k
    if time_value >= otm_bound:
        return None
    lo, hi = SIGMA_MIN, SIGMA_MAX
    if _undiscounted(f, k, t, hi, otm_call) < time_value:
        return None
    sqrt_t = math.sqrt(t)
    log_target = math.log(time_value)
    # Brenner-Subrahmanyam start near the money, clipped into the bracket
    sigma = min(max(math.sqrt(2.0 * math.pi / t) * time_value / f, 0.05), 3.0)
    if guess is not None and SIGMA_MIN < guess < SIGMA_MAX:
        sigma = guess
    for _ in range(200):
        value = _undiscounted(f, k, t, sigma, otm_call)
        if value <= 0:  # underflow: far below the target
            lo = sigma
            sigma = 0.5 * (lo + hi)
            continue
        diff = value - time_value
        if abs(diff) <= PRICE_TOLERANCE * time_value:
            return sigma
        if diff > 0:
            hi = sigma
        else:
            lo = sigma
        # Newton on log(price): well conditioned even where the price is 1e-200
        d1, _ = _d1_d2(f, k, t, sigma)
        vega = f * norm_pdf(d1) * sqrt_t
        step = sigma - (math.log(value) - log_target) * value / vega if vega > 0 else math.nan
        sigma = step if lo < step < hi else 0.5 * (lo + hi)
        if hi - lo < 1e-15 * hi:
            return sigma
    return sigma


@dataclass(frozen=True, slots=True)
class Greeks:
    delta: float
    gamma: float
    theta: float
    vega: float


def greeks(f: float, k: float, t: float, r: float, sigma: float, is_call: bool) -> Greeks:
    """Black-76 greeks (conventions in the module docstring); needs ``t > 0``, ``sigma > 0``."""
    d1, d2 = _d1_d2(f, k, t, sigma)
    disc = math.exp(-r * t)
    sqrt_t = math.sqrt(t)
    pdf = norm_pdf(d1)
    gamma = disc * pdf / (f * sigma * sqrt_t)
    vega = disc * f * pdf * sqrt_t
    decay = -f * disc * pdf * sigma / (2.0 * sqrt_t)
    if is_call:
        delta = disc * norm_cdf(d1)
        theta = decay + r * disc * (f * norm_cdf(d1) - k * norm_cdf(d2))
    else:
        delta = -disc * norm_cdf(-d1)
        theta = decay + r * disc * (k * norm_cdf(-d2) - f * norm_cdf(-d1))
    return Greeks(delta=delta, gamma=gamma, theta=theta / 365.0, vega=vega / 100.0)
