"""Black-76 IV and greeks against ``vollib`` (Jaeckel's "Let's be rational"), an independent,
widely used implementation, over a grid of strikes, times and volatilities."""

from __future__ import annotations

import math

import pytest
from vollib.black import black as vollib_price
from vollib.black.greeks import analytical as vollib_greeks
from vollib.black.implied_volatility import implied_volatility as vollib_iv

from expirytrack_desktop.analysis import black76

F = 100.0
R = 0.065
STRIKES = (40, 60, 80, 90, 95, 99, 100, 101, 105, 110, 120, 150, 200)
TIMES = (1 / 365 / 24 / 60, 1 / 365 / 24, 1 / 365, 7 / 365, 30 / 365, 0.5, 2.0)
VOLS = (0.02, 0.1, 0.2, 0.5, 1.0, 2.0)
GRID = [(k, t, s, c) for k in STRIKES for t in TIMES for s in VOLS for c in (True, False)]


def flag(is_call: bool) -> str:
    return "c" if is_call else "p"


def test_price_matches_vollib():
    for k, t, sigma, is_call in GRID:
        ours = black76.price(F, k, t, R, sigma, is_call)
        theirs = vollib_price(flag(is_call), F, k, t, R, sigma)
        assert ours == pytest.approx(theirs, rel=1e-12, abs=1e-12), (k, t, sigma, is_call)


def test_implied_vol_over_the_grid():
    """Repriced within 1e-6 everywhere; equal to the true and to vollib's IV where the price
    carries the information (time value well above float noise)."""
    solved = compared = 0
    for k, t, sigma, is_call in GRID:
        p = black76.price(F, k, t, R, sigma, is_call)
        iv = black76.implied_vol(p, F, k, t, R, is_call)
        intrinsic = math.exp(-R * t) * max((F - k) if is_call else (k - F), 0.0)
        time_value = p - intrinsic
        if iv is None:
            # only where the time value is lost in the float noise of the price
            assert time_value < 1e-10 * max(p, 1.0), (k, t, sigma, is_call, p)
            continue
        solved += 1
        assert abs(black76.price(F, k, t, R, iv, is_call) - p) < 1e-6
        if time_value > 1e-8 * max(p, 1.0):
            compared += 1
            assert iv == pytest.approx(sigma, abs=1e-6), (k, t, sigma, is_call)
            assert iv == pytest.approx(vollib_iv(p, F, k, R, t, flag(is_call)), abs=1e-6)
    assert solved > 700 and compared > 600  # the grid really exercises the solver


@pytest.mark.parametrize("is_call", [True, False])
@pytest.mark.parametrize(
    ("k", "t", "sigma"), [(95, 7 / 365, 0.15), (120, 0.5, 0.4), (60, 1 / 365, 1.2)]
)
def test_greeks_match_vollib(k, t, sigma, is_call):
    g = black76.greeks(F, k, t, R, sigma, is_call)
    f = flag(is_call)
    assert g.delta == pytest.approx(vollib_greeks.delta(f, F, k, t, R, sigma), rel=1e-9, abs=1e-12)
    assert g.gamma == pytest.approx(vollib_greeks.gamma(f, F, k, t, R, sigma), rel=1e-9, abs=1e-12)
    assert g.theta == pytest.approx(vollib_greeks.theta(f, F, k, t, R, sigma), rel=1e-9, abs=1e-12)
    assert g.vega == pytest.approx(vollib_greeks.vega(f, F, k, t, R, sigma), rel=1e-9, abs=1e-12)


@pytest.mark.parametrize(
    ("price", "k", "t", "is_call", "why"),
    [
        (5.0, 100, 0.0, True, "no time left"),
        (5.0, 100, -0.01, True, "after expiry"),
        (9.0, 90, 0.1, True, "below intrinsic (10)"),
        (10.0 * math.exp(-R * 0.1), 90, 0.1, True, "exactly intrinsic"),
        (100.0, 90, 0.1, True, "at the no-arbitrage bound"),
        (0.0, 100, 0.1, False, "zero price"),
        (math.nan, 100, 0.1, False, "not a number"),
    ],
)
def test_no_iv_where_none_exists(price, k, t, is_call, why):
    assert black76.implied_vol(price, F, k, t, R, is_call) is None, why


def test_robust_near_expiry_and_deep_in_or_out_of_the_money():
    """One minute to expiry, and strikes 40 % away: the solver still recovers the volatility."""
    minute = 1 / 365 / 24 / 60
    for k, t, sigma, is_call in [(100.5, minute, 0.3, True), (99.5, minute, 0.3, False),
                                 (60, 0.25, 0.5, False), (140, 0.25, 0.5, True),
                                 (60, 0.25, 0.5, True), (140, 0.25, 0.5, False)]:  # fmt: skip
        p = black76.price(F, k, t, R, sigma, is_call)
        assert black76.implied_vol(p, F, k, t, R, is_call) == pytest.approx(sigma, abs=1e-6)
