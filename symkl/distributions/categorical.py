"""Categorical(probs) over k classes, x one-hot coded."""

import sympy as sp

from symkl.constraints import simplex
from symkl.family import (
    DIM, INDEX, Fact, Family, Parameter, Shape, Structure, Tabulated, VectorSupport,
)

FAMILY = Family(
    name="categorical",
    title="Categorical",
    params=(Parameter("probs", simplex, Shape.VECTOR, description="class probabilities", latex=r"\pi"),),
    support=VectorSupport(
        "one-hot",
        text="one-hot vectors of length k (classes with probs > 0)",
        # Every class with positive probability under P needs positive probability under Q.
        contained_in=lambda p, q: sp.Or(sp.Eq(p["probs"][INDEX], 0), q["probs"][INDEX] > 0),
    ),
    # log p(x) = sum_i x_i log probs_i for one-hot x.
    log_density=lambda x, p: sp.Sum(x[INDEX] * sp.log(p["probs"][INDEX]), (INDEX, 0, DIM - 1)),
    torch_class="Categorical",
    moments=Tabulated({"mean": Fact(lambda p: p["probs"], "E[x_i] = P(class i) = probs_i (one-hot coding)")}),
    structure=Structure.INDEXED,
    marginal=lambda v, i: ("bernoulli", {"probs": v["probs"][i]}),
    aliases=("multinomial", "discrete", "softmax"),
    description="Categorical over k classes with probability vector probs.",
    conventions=("0 log 0 = 0: a class with probs_p[i] = 0 contributes 0",),
)
