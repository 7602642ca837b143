"""Numeric demonstrations of KL divergence (``symkl demo``), each with a CSV and a plot.

* :func:`symkl.demo.mle.run`: maximum likelihood by SGD is KL minimisation; NLL - KL = H(P)
  at every step, for any (data, model) pair of the catalogue;
* :func:`symkl.demo.modes.run`: forward KL(P || Q) covers a mixture's modes, reverse KL(Q || P)
  seeks one;
* :func:`symkl.demo.mc.run`: Monte Carlo KL against sample size, its 95 % band converging on
  the exact value.

Exact KLs and entropies come from symkl's generated code (:mod:`symkl.torch`); model
parameters are fitted through the constraint-keyed transforms of
:mod:`symkl.demo.parametrize`. Plots need the optional extra ``symkl[plot]`` (matplotlib).
"""
