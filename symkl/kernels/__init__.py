"""Numerically stable helpers called by generated KL code.

Each helper is a Bregman divergence B_f(x + d, x) = f(x + d) - f(x) - f'(x) d of a
convex generator f, evaluated from the base point x and the *increment* d (never from
x + d alone), so that it keeps full relative accuracy when d is small instead of
cancelling, and is >= 0 by construction:

=======================  ====================  ==============================================
helper                   f                     B_f(x + d, x)
=======================  ====================  ==============================================
neglog_bregman           -log x                d/x - log1p(d/x)
xlogx_bregman            x log x               (x + d) log1p(d/x) - d
exp_bregman              exp x                 exp(x) (expm1(d) - d)
lgamma_bregman           lnGamma x             lgamma(x+d) - lgamma(x) - d digamma(x)
lgamma_residual_bregman  lnGamma x - x log x   lgamma_bregman - xlogx_bregman, without
                         + x                   computing either (Gamma, Beta, Dirichlet)
=======================  ====================  ==============================================

``product_difference(a, b, c, e) = a b - c e`` from exact products (Dekker), for increments
such as the Gamma KL's ``a_q b_p - a_p b_q`` that vanish where P and Q agree.

``poisson_entropy(rate)`` is not a Bregman divergence but has the same problem:
``rate - rate log rate + E[log X!]`` cancels two terms of size ``rate log rate``; the kernel
sums the positive terms ``-p_k log p_k`` (Loader's split of ``-log p_k``) or, for large
rates, the asymptotic series in ``1/rate``.

Two backends with identical names and results: ``symkl.kernels.numpy`` and
``symkl.kernels.torch`` (branch-free, so ``torch.compile(fullgraph=True)``,
``torch.func.vmap`` and autograd work).
"""
