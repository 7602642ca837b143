"""Uniform(low, high): the continuous uniform distribution."""

import sympy as sp

from symkl.constraints import greater_than, real
from symkl.family import Fact, Family, Interval, Parameter, Tabulated

TABLE = "moments of the uniform distribution"

FAMILY = Family(
    name="uniform",
    title="Uniform",
    params=(
        Parameter("low", real, description="lower end", latex=r"a"),
        Parameter("high", greater_than("low"), description="upper end", latex=r"b"),
    ),
    support=Interval(lambda p: p["low"], lambda p: p["high"], text="[low, high]"),
    log_density=lambda x, p: -sp.log(p["high"] - p["low"]),
    torch_class="Uniform",
    moments=Tabulated({
        "mean": Fact(lambda p: (p["low"] + p["high"]) / 2, TABLE),
        "variance": Fact(lambda p: (p["high"] - p["low"]) ** 2 / 12, TABLE),
    }),
    kl_partners=("normal",),
    description="Uniform on the interval [low, high].",
)
