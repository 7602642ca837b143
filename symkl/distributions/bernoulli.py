"""Bernoulli(probs)."""

import sympy as sp

from symkl.constraints import unit_interval
from symkl.family import ExponentialFamily, Family, Interval, Parameter

FAMILY = Family(
    name="bernoulli",
    title="Bernoulli",
    params=(Parameter("probs", unit_interval, description="P(x = 1)", latex=r"p"),),
    support=Interval(
        lambda p: sp.S.Zero,
        lambda p: sp.S.One,
        discrete=True,
        text="{0, 1}",
        # x = 1 needs probs_q > 0 unless probs_p = 0; x = 0 needs probs_q < 1 unless probs_p = 1.
        contained_in=lambda p, q: sp.And(
            sp.Or(sp.Eq(p["probs"], 0), q["probs"] > 0),
            sp.Or(sp.Eq(p["probs"], 1), q["probs"] < 1),
        ),
    ),
    log_density=lambda x, p: x * sp.log(p["probs"]) + (1 - x) * sp.log(1 - p["probs"]),
    torch_class="Bernoulli",
    moments=ExponentialFamily(statistics={"mean": lambda x: x}),
    description="Bernoulli with success probability probs.",
    conventions=("0 log 0 = 0: a term whose probability under P is 0 contributes 0",),
)
