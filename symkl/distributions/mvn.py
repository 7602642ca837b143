"""Multivariate Normal with full covariance, symbolic dimension k."""

import sympy as sp

from symkl.constraints import positive_definite, real
from symkl.family import DIM, Fact, Family, Parameter, Shape, Structure, Tabulated, VectorSupport
from symkl.nodes import QuadForm


def _log_density(x, p):
    cov = p["covariance_matrix"]
    return (
        -DIM * sp.log(2 * sp.pi) / 2
        - sp.log(sp.Determinant(cov)) / 2
        - QuadForm(x - p["loc"], sp.Inverse(cov)) / 2
    )


def _quadform(p, c, a):
    # E[(x - c)^T A (x - c)] = tr(A Sigma) + (mu - c)^T A (mu - c)   (Petersen & Pedersen, eq. 318)
    return sp.Trace(a * p["covariance_matrix"]).doit() + QuadForm(p["loc"] - c, a)


FAMILY = Family(
    name="mvn",
    title="Multivariate Normal",
    params=(
        Parameter("loc", real, Shape.VECTOR, description="mean vector", latex=r"\mu"),
        Parameter("covariance_matrix", positive_definite, Shape.MATRIX, description="covariance", latex=r"\Sigma"),
    ),
    support=VectorSupport("R^k", text="R^k"),
    log_density=_log_density,
    torch_class="MultivariateNormal",
    moments=Tabulated({"E_quadform": Fact(_quadform, "Gaussian quadratic-form expectation (Matrix Cookbook eq. 318)")}),
    structure=Structure.MATRIX,
    aliases=("multivariate_normal", "mvnormal", "gaussian_full"),
    description="k-dimensional Gaussian N(loc, covariance_matrix).",
)
