"""Poisson(rate)."""

import sympy as sp

from symkl.constraints import positive
from symkl.family import ExponentialFamily, Fact, Family, Interval, Parameter
from symkl.nodes import log_factorial_series


def _lgamma_series(p):
    # E[ln x!] has no closed form: a convergent series whose tail after n terms is bounded
    # by the Poisson tail probability times ln n!, which decays faster than geometrically.
    # (One definition of the series, shared with the code generator's Poisson-entropy node.)
    return log_factorial_series(p["rate"])


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
