"""Gamma(concentration, rate)."""

import sympy as sp

from symkl.constraints import positive
from symkl.family import ExponentialFamily, Family, Interval, Parameter


def _log_density(x, p):
    a, b = p["concentration"], p["rate"]
    return a * sp.log(b) - sp.loggamma(a) + (a - 1) * sp.log(x) - b * x


FAMILY = Family(
    name="gamma",
    title="Gamma",
    params=(
        Parameter("concentration", positive, description="shape alpha", latex=r"\alpha"),
        Parameter("rate", positive, description="rate beta (mean alpha/beta)", latex=r"\beta"),
    ),
    support=Interval(lambda p: sp.S.Zero, lambda p: sp.oo, text="[0, inf)"),
    log_density=_log_density,
    torch_class="Gamma",
    moments=ExponentialFamily(statistics={"mean": lambda x: x, "E_log": sp.log}),
    kl_partners=("exponential", "normal"),
    description="Gamma with shape concentration and rate.",
)
