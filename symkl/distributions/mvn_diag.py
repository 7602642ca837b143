"""Multivariate Normal with diagonal covariance: k independent Normals."""

import sympy as sp

from symkl.constraints import positive, real
from symkl.family import (
    DIM, INDEX, Family, IndependentOf, Parameter, Shape, Structure, VectorSupport,
)
from symkl.distributions.normal import FAMILY as NORMAL


def _log_density(x, p):
    coordinate = {"loc": p["loc"][INDEX], "scale": p["scale"][INDEX]}
    return sp.Sum(NORMAL.log_density(x[INDEX], coordinate), (INDEX, 0, DIM - 1))


FAMILY = Family(
    name="mvn_diag",
    title="Diagonal multivariate Normal",
    params=(
        Parameter("loc", real, Shape.VECTOR, description="mean vector", latex=r"\mu"),
        Parameter("scale", positive, Shape.VECTOR, description="per-coordinate standard deviations", latex=r"\sigma"),
    ),
    support=VectorSupport("R^k", text="R^k"),
    log_density=_log_density,
    torch_class="Independent(Normal, 1)",
    moments=IndependentOf("normal"),
    structure=Structure.INDEXED,
    marginal=lambda v, i: ("normal", {"loc": v["loc"][i], "scale": v["scale"][i]}),
    aliases=("diag_normal", "independent_normal", "diagonal_normal"),
    description="k independent Normals: N(loc, diag(scale^2)).",
)
