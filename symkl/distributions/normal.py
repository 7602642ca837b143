"""Normal(loc, scale): the univariate Gaussian."""

import sympy as sp

from symkl.constraints import positive, real
from symkl.family import ExponentialFamily, Fact, Family, Interval, Parameter


def _log_density(x, p):
    loc, scale = p["loc"], p["scale"]
    return -sp.log(scale) - sp.log(2 * sp.pi) / 2 - (x - loc) ** 2 / (2 * scale**2)


def _folded_mean(p, c):
    # E|x - c| for x ~ N(loc, scale^2): mean of a folded normal (Leone, Nelson & Nottingham 1961).
    d, s = p["loc"] - c, p["scale"]
    return s * sp.sqrt(2 / sp.pi) * sp.exp(-(d**2) / (2 * s**2)) + d * sp.erf(d / (sp.sqrt(2) * s))


FAMILY = Family(
    name="normal",
    title="Normal",
    params=(
        Parameter("loc", real, description="mean", latex=r"\mu"),
        Parameter("scale", positive, description="standard deviation", latex=r"\sigma"),
    ),
    support=Interval(lambda p: -sp.oo, lambda p: sp.oo, text="the real line"),
    log_density=_log_density,
    torch_class="Normal",
    moments=ExponentialFamily(
        statistics={"mean": lambda x: x, "second": lambda x: x**2},
        extra={"E_abs": Fact(_folded_mean, "folded-normal mean (Leone, Nelson & Nottingham 1961)")},
    ),
    kl_partners=("laplace", "exponential", "uniform"),
    aliases=("gaussian", "norm"),
    description="Gaussian with mean loc and standard deviation scale.",
)
