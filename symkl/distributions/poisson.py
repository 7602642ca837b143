"""Poisson(rate)."""

import sympy as sp

from symkl.constraints import positive
from symkl.family import ExponentialFamily, Fact, Family, Interval, Parameter

_n = sp.Symbol("n", integer=True, nonnegative=True)


def _lgamma_series(p):
    # E[ln x!] has no closed form: a convergent series whose tail after n terms is bounded
    # by the Poisson tail probability times ln n!, which decays faster than geometrically.
    rate = p["rate"]
    return sp.Sum(sp.exp(-rate) * rate**_n / sp.factorial(_n) * sp.log(sp.factorial(_n)), (_n, 0, sp.oo))


FAMILY = Family(
    name="poisson",
    title="Poisson",
    params=(Parameter("rate", positive, description="mean lambda", latex=r"\lambda"),),
    support=Interval(lambda p: sp.S.Zero, lambda p: sp.oo, discrete=True, text="{0, 1, 2, ...}"),
    log_density=lambda x, p: x * sp.log(p["rate"]) - p["rate"] - sp.loggamma(x + 1),
    torch_class="Poisson",
    moments=ExponentialFamily(
        statistics={"mean": lambda x: x},
        extra={"E_lgamma1p": Fact(_lgamma_series, "definition of the expectation (series, no closed form)")},
    ),
    description="Poisson with mean rate.",
)
