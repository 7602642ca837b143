"""Dirichlet(concentration) on the (k-1)-simplex."""

import sympy as sp

from symkl.constraints import positive
from symkl.family import (
    DIM, INDEX, INDEX2, Fact, Family, Parameter, Shape, Structure, Tabulated, VectorSupport,
)


def _total(a):
    return sp.Sum(a[INDEX2], (INDEX2, 0, DIM - 1))


def _log_density(x, p):
    a = p["concentration"]
    log_norm = sp.loggamma(_total(a)) - sp.Sum(sp.loggamma(a[INDEX]), (INDEX, 0, DIM - 1))
    return log_norm + sp.Sum((a[INDEX] - 1) * sp.log(x[INDEX]), (INDEX, 0, DIM - 1))


def _mean_log(p):
    # d/d alpha_i of the log-partition A = sum_j lnGamma(alpha_j) - lnGamma(sum_j alpha_j).
    alpha_i = p["concentration"]  # the coordinate's parameter, concentration[i]
    return sp.digamma(alpha_i) - sp.digamma(_total(alpha_i.base))


FAMILY = Family(
    name="dirichlet",
    title="Dirichlet",
    params=(Parameter("concentration", positive, Shape.VECTOR, description="alpha_1..alpha_k", latex=r"\alpha"),),
    support=VectorSupport("simplex", text="the probability simplex in R^k"),
    log_density=_log_density,
    torch_class="Dirichlet",
    moments=Tabulated({"E_log": Fact(_mean_log, "exponential-family identity E[log x_i] = dA/d alpha_i")}),
    structure=Structure.INDEXED,
    marginal=lambda v, i: (
        "beta", {"concentration1": v["concentration"][i],
                 "concentration0": sum(v["concentration"]) - v["concentration"][i]},
    ),
    description="Dirichlet with concentration vector alpha.",
)
