"""Exponential(rate)."""

import sympy as sp

from symkl.constraints import positive
from symkl.family import Family, Interval, Parameter, SpecialCase

FAMILY = Family(
    name="exponential",
    title="Exponential",
    params=(Parameter("rate", positive, description="rate lambda (mean 1/rate)", latex=r"\lambda"),),
    support=Interval(lambda p: sp.S.Zero, lambda p: sp.oo, text="[0, inf)"),
    log_density=lambda x, p: sp.log(p["rate"]) - p["rate"] * x,
    torch_class="Exponential",
    moments=SpecialCase("gamma", {"concentration": sp.S.One}),
    kl_partners=("gamma", "normal"),
    aliases=("exp",),
    description="Exponential with rate lambda; Gamma(1, rate).",
)
