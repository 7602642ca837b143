"""What the generated code claims, in ULPs: the one place the verifier's tolerances live.

The generated functions evaluate every formula in float64 and round the result once to the
input dtype, so a float32 result is within 0.5 ULP of the value on its exact inputs unless
the float64 evaluation itself is off by ~2^28 float64 ULPs: the float32 tolerance is 1 ULP.

float64 KL: 4 ULP where the stable rewrites leave only elementary kernels (Normal, diagonal
MVN, Exponential, Poisson, Bernoulli, Categorical, Laplace, Uniform, and the cross-family
pairs); 32 ULP wherever lnGamma is involved (Gamma, Beta, Dirichlet: their KL is measured
up to 19 ULP near P == Q, see docs/accuracy.md). The full MVN and every entropy and
cross-entropy (base 8 ULP, 32 with lnGamma) are judged against their conditioning: a 1-ulp
change of the inputs moves
the true value of H(N(mu, sigma)) = log(sigma sqrt(2 pi e)) by many ULPs where it is close
to 0, and no implementation can do better on rounded inputs. There the tolerance is the
base tolerance times max(1, sensitivity), the sensitivity being the largest change of the
true value, in ULPs, over random 1-ulp moves of all inputs in the checked dtype.
"""

from __future__ import annotations

from symkl.verify.points import Unit

FLOAT32_ULP = 1.0
ELEMENTARY_ULP = 4.0
LGAMMA_ULP = 32.0
CONDITIONED_ULP = 8.0
LGAMMA_FAMILIES = frozenset({"gamma", "beta", "dirichlet"})
#: Significant digits the symbolic result (in mpmath) must share with reference A.
SYMBOLIC_DIGITS = 25.0


def conditioned(unit: Unit) -> bool:
    """Tolerance scaled by the sensitivity to 1-ulp input changes (see the module docstring)."""
    return unit.quantity != "kl" or "mvn" in (unit.p, unit.q)


def ulp_tolerance(unit: Unit, dtype: str) -> float:
    """Base tolerance in ULPs of the reference, before any sensitivity scaling."""
    if dtype != "float64":
        return FLOAT32_ULP
    if {unit.p, unit.q} & LGAMMA_FAMILIES:
        return LGAMMA_ULP
    return CONDITIONED_ULP if conditioned(unit) else ELEMENTARY_ULP


def gradient_tolerance(unit: Unit) -> float:
    """Relative gradient error allowed at typical points. The values and the evidence for
    them sit with the error measure they apply to, in symkl.verify.gradients: 2^-36, and
    2^-20 for code that calls torch.special.digamma, whose backward (torch's trigamma) is
    only accurate to ~5e-10 relative on CPU. No generated function does since symkl's own
    digamma kernel replaced it (measured gradient errors <= 8e-15 there, from 4e-7)."""
    from symkl.verify import gradients

    return gradients._tolerance(unit.quantity, unit.p, unit.q)
