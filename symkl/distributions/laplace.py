"""Laplace(loc, scale): the double-exponential distribution."""

import sympy as sp

from symkl.constraints import positive, real
from symkl.family import Fact, Family, Interval, Parameter, Tabulated


def _log_density(x, p):
    return -sp.log(2 * p["scale"]) - sp.Abs(x - p["loc"]) / p["scale"]


def _abs_moment(p, c):
    # E|x - c| = |m - c| + b exp(-|m - c| / b)  (integrate the two exponential tails).
    d = sp.Abs(p["loc"] - c)
    return d + p["scale"] * sp.exp(-d / p["scale"])


TABLE = "Laplace moments (Kotz, Kozubowski & Podgorski 2001, ch. 2)"

FAMILY = Family(
    name="laplace",
    title="Laplace",
    params=(
        Parameter("loc", real, description="location (median)", latex=r"\mu"),
        Parameter("scale", positive, description="diversity b", latex=r"b"),
    ),
    support=Interval(lambda p: -sp.oo, lambda p: sp.oo, text="the real line"),
    log_density=_log_density,
    torch_class="Laplace",
    moments=Tabulated({
        "mean": Fact(lambda p: p["loc"], TABLE),
        "variance": Fact(lambda p: 2 * p["scale"] ** 2, TABLE),
        "E_abs": Fact(_abs_moment, TABLE),
    }),
    kl_partners=("normal",),
    aliases=("double_exponential",),
    description="Laplace (double exponential) with location loc and scale b.",
)
