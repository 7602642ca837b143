"""Beta(concentration1, concentration0)."""

import sympy as sp

from symkl.constraints import positive
from symkl.family import ExponentialFamily, Family, Interval, Parameter


def _log_density(x, p):
    a, b = p["concentration1"], p["concentration0"]
    log_beta = sp.loggamma(a) + sp.loggamma(b) - sp.loggamma(a + b)
    return (a - 1) * sp.log(x) + (b - 1) * sp.log(1 - x) - log_beta


FAMILY = Family(
    name="beta",
    title="Beta",
    params=(
        Parameter("concentration1", positive, description="alpha (exponent of x)", latex=r"\alpha"),
        Parameter("concentration0", positive, description="beta (exponent of 1 - x)", latex=r"\beta"),
    ),
    support=Interval(lambda p: sp.S.Zero, lambda p: sp.S.One, text="[0, 1]"),
    log_density=_log_density,
    torch_class="Beta",
    moments=ExponentialFamily(statistics={"E_log": sp.log, "E_log1m": lambda x: sp.log(1 - x)}),
    kl_partners=("normal", "uniform"),
    description="Beta with concentration1 = alpha, concentration0 = beta.",
)
