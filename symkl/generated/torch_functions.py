"""Generated torch functions for every symkl derivation. DO NOT EDIT.

Written by `symkl codegen` from the derived closed forms (rewritten into stable
Bregman-term form where the rewrite rules apply; each rewrite checked against the
derivation). symkl 0.1.0, SymPy 1.14.0.
"""

# ruff: noqa
import math

import torch

from symkl.kernels import linalg_torch as linalg
from symkl.kernels import torch as kernels

def cross_entropy_bernoulli_bernoulli(probs_p, probs_q):
    """H(Bernoulli(probs_p) || Bernoulli(probs_q)).

    Generated from symkl.cross_entropy('bernoulli', 'bernoulli').
    """
    return torch.where(kernels.both(kernels.either((probs_p == 0), (probs_q > 0)), kernels.either((probs_p == 1), (probs_q < 1))), torch.special.xlogy(-1 + probs_p, 1 - probs_q) - torch.special.xlogy(probs_p, probs_q), math.inf)


def cross_entropy_beta_beta(concentration1_p, concentration0_p, concentration1_q, concentration0_q):
    """H(Beta(concentration1_p, concentration0_p) || Beta(concentration1_q, concentration0_q)).

    Generated from symkl.cross_entropy('beta', 'beta').
    """
    return -torch.lgamma(concentration0_q + concentration1_q) + (1 - concentration0_q)*kernels.digamma(concentration0_p) + (1 - concentration1_q)*kernels.digamma(concentration1_p) + (-2 + concentration0_q + concentration1_q)*kernels.digamma(concentration0_p + concentration1_p) + torch.lgamma(concentration0_q) + torch.lgamma(concentration1_q)


def cross_entropy_beta_normal(concentration1_p, concentration0_p, loc_q, scale_q):
    """H(Beta(concentration1_p, concentration0_p) || Normal(loc_q, scale_q)).

    Generated from symkl.cross_entropy('beta', 'normal').
    """
    return 0.9189385332046728 + (concentration1_p + concentration1_p**2 + concentration0_p*loc_q**2 + concentration1_p*loc_q**2 + loc_q**2*concentration0_p**2 + loc_q**2*concentration1_p**2 - 2*loc_q*concentration1_p - 2*loc_q*concentration1_p**2 - 2*loc_q*concentration0_p*concentration1_p + 2*concentration0_p*concentration1_p*loc_q**2)/(2*scale_q**2*(concentration0_p + concentration1_p)*(1 + concentration0_p + concentration1_p)) + torch.log(scale_q)


def cross_entropy_beta_uniform(concentration1_p, concentration0_p, low_q, high_q):
    """H(Beta(concentration1_p, concentration0_p) || Uniform(low_q, high_q)).

    Generated from symkl.cross_entropy('beta', 'uniform').
    """
    return torch.where(kernels.both((high_q >= 1), (low_q <= 0)), torch.log(high_q - low_q), math.inf)


def cross_entropy_categorical_categorical(probs_p, probs_q):
    """H(Categorical(probs_p) || Categorical(probs_q)).

    Generated from symkl.cross_entropy('categorical', 'categorical').
    """
    return kernels.sum_last(torch.where(kernels.either((probs_p == 0), (probs_q > 0)), -torch.special.xlogy(probs_p, probs_q), math.inf))


def cross_entropy_categorical_logits(logits_p, logits_q):
    """H(Cat(softmax(logits_p)), Cat(softmax(logits_q))).

    Generated from symkl.cross_entropy('categorical', 'categorical'), reparametrised.
    """
    return kernels.sum_last((-logits_q + torch.logsumexp(logits_q, dim=-1, keepdim=True))*torch.exp(-torch.logsumexp(logits_p, dim=-1, keepdim=True) + logits_p))


def cross_entropy_categorical_probs_logits(probs_p, logits_q):
    """H(Cat(probs_p), Cat(softmax(logits_q))): the classification loss from target probabilities.

    Generated from symkl.cross_entropy('categorical', 'categorical'), reparametrised.
    """
    return torch.logsumexp(logits_q, dim=-1) + kernels.sum_last(-logits_q*probs_p)


def cross_entropy_dirichlet_dirichlet(concentration_p, concentration_q):
    """H(Dirichlet(concentration_p) || Dirichlet(concentration_q)).

    Generated from symkl.cross_entropy('dirichlet', 'dirichlet').
    """
    return -torch.lgamma(kernels.sum_last(concentration_q)) + kernels.sum_last(concentration_q)*kernels.digamma(kernels.sum_last(concentration_p)) - concentration_p.shape[-1]*kernels.digamma(kernels.sum_last(concentration_p)) + kernels.sum_last((1 - concentration_q)*kernels.digamma(concentration_p) + torch.lgamma(concentration_q))


def cross_entropy_exponential_exponential(rate_p, rate_q):
    """H(Exponential(rate_p) || Exponential(rate_q)).

    Generated from symkl.cross_entropy('exponential', 'exponential').
    """
    return -torch.log(rate_q) + rate_q/rate_p


def cross_entropy_exponential_gamma(rate_p, concentration_q, rate_q):
    """H(Exponential(rate_p) || Gamma(concentration_q, rate_q)).

    Generated from symkl.cross_entropy('exponential', 'gamma').
    """
    return (rate_q - rate_p*0.5772156649015329 + concentration_q*rate_p*0.5772156649015329)/rate_p + (-1 + concentration_q)*torch.log(rate_p) - concentration_q*torch.log(rate_q) + torch.lgamma(concentration_q)


def cross_entropy_exponential_normal(rate_p, loc_q, scale_q):
    """H(Exponential(rate_p) || Normal(loc_q, scale_q)).

    Generated from symkl.cross_entropy('exponential', 'normal').
    """
    return 0.9189385332046728 + (2 + loc_q**2*rate_p**2 - 2*loc_q*rate_p)/(2*rate_p**2*scale_q**2) + torch.log(scale_q)


def cross_entropy_gamma_exponential(concentration_p, rate_p, rate_q):
    """H(Gamma(concentration_p, rate_p) || Exponential(rate_q)).

    Generated from symkl.cross_entropy('gamma', 'exponential').
    """
    return -torch.log(rate_q) + concentration_p*rate_q/rate_p


def cross_entropy_gamma_gamma(concentration_p, rate_p, concentration_q, rate_q):
    """H(Gamma(concentration_p, rate_p) || Gamma(concentration_q, rate_q)).

    Generated from symkl.cross_entropy('gamma', 'gamma').
    """
    return (1 - concentration_q)*kernels.digamma(concentration_p) + (-1 + concentration_q)*torch.log(rate_p) - concentration_q*torch.log(rate_q) + concentration_p*rate_q/rate_p + torch.lgamma(concentration_q)


def cross_entropy_gamma_normal(concentration_p, rate_p, loc_q, scale_q):
    """H(Gamma(concentration_p, rate_p) || Normal(loc_q, scale_q)).

    Generated from symkl.cross_entropy('gamma', 'normal').
    """
    return 0.9189385332046728 + (concentration_p + concentration_p**2 + loc_q**2*rate_p**2 - 2*loc_q*concentration_p*rate_p)/(2*rate_p**2*scale_q**2) + torch.log(scale_q)


def cross_entropy_laplace_laplace(loc_p, scale_p, loc_q, scale_q):
    """H(Laplace(loc_p, scale_p) || Laplace(loc_q, scale_q)).

    Generated from symkl.cross_entropy('laplace', 'laplace').
    """
    return scale_p*kernels.exp_bregman(0, -torch.abs(loc_p - loc_q)/scale_p)/scale_q + (scale_p/scale_q + torch.log(2*scale_q))


def cross_entropy_laplace_normal(loc_p, scale_p, loc_q, scale_q):
    """H(Laplace(loc_p, scale_p) || Normal(loc_q, scale_q)).

    Generated from symkl.cross_entropy('laplace', 'normal').
    """
    return 0.9189385332046728 + ((loc_p - loc_q)**2 + 2*scale_p**2)/(2*scale_q**2) + torch.log(scale_q)


def cross_entropy_mvn_diag_mvn_diag(loc_p, scale_p, loc_q, scale_q):
    """H(Diagonal multivariate Normal(loc_p, scale_p) || Diagonal multivariate Normal(loc_q, scale_q)).

    Generated from symkl.cross_entropy('mvn_diag', 'mvn_diag').
    """
    return kernels.sum_last(0.9189385332046728 + ((-loc_q + loc_p)**2 + scale_p**2)/(2*scale_q**2) + torch.log(scale_q))


def cross_entropy_mvn_mvn(loc_p, covariance_matrix_p, loc_q, covariance_matrix_q):
    """H(Multivariate Normal(loc_p, covariance_matrix_p) || Multivariate Normal(loc_q, covariance_matrix_q)).

    Generated from symkl.cross_entropy('mvn', 'mvn').
    """
    chol_covariance_matrix_p = linalg.cholesky(covariance_matrix_p)
    chol_covariance_matrix_q = linalg.cholesky(covariance_matrix_q)
    return linalg.mahalanobis_sq(chol_covariance_matrix_q, (-loc_q + loc_p))/2 + linalg.trace_inv_mul(chol_covariance_matrix_q, chol_covariance_matrix_p)/2 + linalg.logdet(chol_covariance_matrix_q)/2 + loc_p.shape[-1]*1.8378770664093456/2


def cross_entropy_mvn_mvn_tril(loc_p, scale_tril_p, loc_q, scale_tril_q):
    """H(Multivariate Normal(loc_p, covariance_matrix_p) || Multivariate Normal(loc_q, covariance_matrix_q)), from the Cholesky factors scale_tril (covariance = L L^T).

    Generated from symkl.cross_entropy('mvn', 'mvn').
    """
    chol_covariance_matrix_p = scale_tril_p
    chol_covariance_matrix_q = scale_tril_q
    return linalg.mahalanobis_sq(chol_covariance_matrix_q, (-loc_q + loc_p))/2 + linalg.trace_inv_mul(chol_covariance_matrix_q, chol_covariance_matrix_p)/2 + linalg.logdet(chol_covariance_matrix_q)/2 + loc_p.shape[-1]*1.8378770664093456/2


def cross_entropy_normal_exponential(loc_p, scale_p, rate_q):
    """H(Normal(loc_p, scale_p) || Exponential(rate_q)).

    Generated from symkl.cross_entropy('normal', 'exponential').
    """
    return 0 * (loc_p + scale_p + rate_q) + math.inf


def cross_entropy_normal_laplace(loc_p, scale_p, loc_q, scale_q):
    """H(Normal(loc_p, scale_p) || Laplace(loc_q, scale_q)).

    Generated from symkl.cross_entropy('normal', 'laplace').
    """
    return (loc_p - loc_q)*torch.special.erf(1.4142135623730951*(loc_p - loc_q)/(2*scale_p))/scale_q + scale_p*1.4142135623730951*torch.exp(-((loc_p - loc_q)/scale_p)**2/2)/(1.772453850905516*scale_q) + torch.log(2*scale_q)


def cross_entropy_normal_normal(loc_p, scale_p, loc_q, scale_q):
    """H(Normal(loc_p, scale_p) || Normal(loc_q, scale_q)).

    Generated from symkl.cross_entropy('normal', 'normal').
    """
    return 0.9189385332046728 + (scale_p**2 + (loc_p - loc_q)**2)/(2*scale_q**2) + torch.log(scale_q)


def cross_entropy_normal_uniform(loc_p, scale_p, low_q, high_q):
    """H(Normal(loc_p, scale_p) || Uniform(low_q, high_q)).

    Generated from symkl.cross_entropy('normal', 'uniform').
    """
    return 0 * (loc_p + scale_p + low_q + high_q) + math.inf


def cross_entropy_poisson_poisson(rate_p, rate_q):
    """H(Poisson(rate_p) || Poisson(rate_q)).

    Generated from symkl.cross_entropy('poisson', 'poisson').
    """
    return kernels.xlogx_bregman(rate_q, rate_p - rate_q, rate_p) + kernels.poisson_entropy(rate_p)


def cross_entropy_uniform_normal(low_p, high_p, loc_q, scale_q):
    """H(Uniform(low_p, high_p) || Normal(loc_q, scale_q)).

    Generated from symkl.cross_entropy('uniform', 'normal').
    """
    return 0.9189385332046728 + (high_p**2 + low_p**2 + 3*loc_q**2 + high_p*low_p - 3*high_p*loc_q - 3*loc_q*low_p)/(6*scale_q**2) + torch.log(scale_q)


def cross_entropy_uniform_uniform(low_p, high_p, low_q, high_q):
    """H(Uniform(low_p, high_p) || Uniform(low_q, high_q)).

    Generated from symkl.cross_entropy('uniform', 'uniform').
    """
    return torch.where(kernels.both((low_p >= low_q), (high_p <= high_q)), torch.log(high_q - low_q), math.inf)


def entropy_bernoulli(probs):
    """H(Bernoulli(probs)).

    Generated from symkl.entropy('bernoulli').
    """
    return torch.special.xlogy(-1 + probs, 1 - probs) - torch.special.xlogy(probs, probs)


def entropy_beta(concentration1, concentration0):
    """H(Beta(concentration1, concentration0)).

    Generated from symkl.entropy('beta').
    """
    return -torch.lgamma(concentration0 + concentration1) + (1 - concentration0)*kernels.digamma(concentration0) + (1 - concentration1)*kernels.digamma(concentration1) + (-2 + concentration0 + concentration1)*kernels.digamma(concentration0 + concentration1) + torch.lgamma(concentration0) + torch.lgamma(concentration1)


def entropy_categorical(probs):
    """H(Categorical(probs)).

    Generated from symkl.entropy('categorical').
    """
    return kernels.sum_last(-torch.special.xlogy(probs, probs))


def entropy_dirichlet(concentration):
    """H(Dirichlet(concentration)).

    Generated from symkl.entropy('dirichlet').
    """
    return -torch.lgamma(kernels.sum_last(concentration)) + kernels.sum_last(concentration)*kernels.digamma(kernels.sum_last(concentration)) - concentration.shape[-1]*kernels.digamma(kernels.sum_last(concentration)) + kernels.sum_last((1 - concentration)*kernels.digamma(concentration) + torch.lgamma(concentration))


def entropy_exponential(rate):
    """H(Exponential(rate)).

    Generated from symkl.entropy('exponential').
    """
    return 1 - torch.log(rate)


def entropy_gamma(concentration, rate):
    """H(Gamma(concentration, rate)).

    Generated from symkl.entropy('gamma').
    """
    return concentration - torch.log(rate) + (1 - concentration)*kernels.digamma(concentration) + torch.lgamma(concentration)


def entropy_laplace(loc, scale):
    """H(Laplace(loc, scale)).

    Generated from symkl.entropy('laplace').
    """
    return 1 + torch.log(2*scale)


def entropy_mvn(loc, covariance_matrix):
    """H(Multivariate Normal(loc, covariance_matrix)).

    Generated from symkl.entropy('mvn').
    """
    chol_covariance_matrix = linalg.cholesky(covariance_matrix)
    return loc.shape[-1]/2 + linalg.logdet(chol_covariance_matrix)/2 + loc.shape[-1]*1.8378770664093456/2


def entropy_mvn_diag(loc, scale):
    """H(Diagonal multivariate Normal(loc, scale)).

    Generated from symkl.entropy('mvn_diag').
    """
    return kernels.sum_last(0.5 + 0.9189385332046728 + torch.log(scale))


def entropy_mvn_tril(loc, scale_tril):
    """H(Multivariate Normal(loc, covariance_matrix)), from the Cholesky factors scale_tril (covariance = L L^T).

    Generated from symkl.entropy('mvn').
    """
    chol_covariance_matrix = scale_tril
    return loc.shape[-1]/2 + linalg.logdet(chol_covariance_matrix)/2 + loc.shape[-1]*1.8378770664093456/2


def entropy_normal(loc, scale):
    """H(Normal(loc, scale)).

    Generated from symkl.entropy('normal').
    """
    return 0.5 + 0.9189385332046728 + torch.log(scale)


def entropy_poisson(rate):
    """H(Poisson(rate)).

    Generated from symkl.entropy('poisson').
    """
    return kernels.poisson_entropy(rate)


def entropy_uniform(low, high):
    """H(Uniform(low, high)).

    Generated from symkl.entropy('uniform').
    """
    return torch.log(high - low)


def kl_bernoulli_bernoulli(probs_p, probs_q):
    """KL(Bernoulli(probs_p) || Bernoulli(probs_q)).

    Generated from symkl.kl('bernoulli', 'bernoulli').
    """
    return torch.where(kernels.both(kernels.either((probs_p == 0), (probs_q > 0)), kernels.either((probs_p == 1), (probs_q < 1))), kernels.xlogx_bregman(1 - probs_q, probs_q - probs_p, 1 - probs_p) + kernels.xlogx_bregman(probs_q, probs_p - probs_q, probs_p), math.inf)


def kl_beta_beta(concentration1_p, concentration0_p, concentration1_q, concentration0_q):
    """KL(Beta(concentration1_p, concentration0_p) || Beta(concentration1_q, concentration0_q)).

    Generated from symkl.kl('beta', 'beta').
    """
    return kernels.lgamma_residual_bregman(concentration0_p, concentration0_q - concentration0_p, concentration0_q) + kernels.lgamma_residual_bregman(concentration1_p, concentration1_q - concentration1_p, concentration1_q) - kernels.lgamma_residual_bregman(concentration0_p + concentration1_p, (concentration0_q - concentration0_p) + (concentration1_q - concentration1_p), concentration0_q + concentration1_q) + kernels.xlogx_bregman(concentration0_p*(concentration0_q + concentration1_q)/(concentration0_p + concentration1_p), kernels.product_difference(concentration0_q, concentration1_p, concentration0_p, concentration1_q)/(concentration0_p + concentration1_p), concentration0_q) + kernels.xlogx_bregman(concentration1_p*(concentration0_q + concentration1_q)/(concentration0_p + concentration1_p), kernels.product_difference(concentration0_p, concentration1_q, concentration0_q, concentration1_p)/(concentration0_p + concentration1_p), concentration1_q)


def kl_beta_normal(concentration1_p, concentration0_p, loc_q, scale_q):
    """KL(Beta(concentration1_p, concentration0_p) || Normal(loc_q, scale_q)).

    Generated from symkl.kl('beta', 'normal').
    """
    return 0.9189385332046728 - torch.lgamma(concentration0_p) - torch.lgamma(concentration1_p) + (-1 + concentration0_p)*kernels.digamma(concentration0_p) + (-1 + concentration1_p)*kernels.digamma(concentration1_p) + (2 - concentration0_p - concentration1_p)*kernels.digamma(concentration0_p + concentration1_p) + (concentration1_p + concentration1_p**2 + concentration0_p*loc_q**2 + concentration1_p*loc_q**2 + loc_q**2*concentration0_p**2 + loc_q**2*concentration1_p**2 - 2*loc_q*concentration1_p - 2*loc_q*concentration1_p**2 - 2*loc_q*concentration0_p*concentration1_p + 2*concentration0_p*concentration1_p*loc_q**2)/(2*scale_q**2*(concentration0_p + concentration1_p)*(1 + concentration0_p + concentration1_p)) + torch.log(scale_q) + torch.lgamma(concentration0_p + concentration1_p)


def kl_beta_uniform(concentration1_p, concentration0_p, low_q, high_q):
    """KL(Beta(concentration1_p, concentration0_p) || Uniform(low_q, high_q)).

    Generated from symkl.kl('beta', 'uniform').
    """
    return torch.where(kernels.both((high_q >= 1), (low_q <= 0)), -torch.lgamma(concentration0_p) - torch.lgamma(concentration1_p) + (-1 + concentration0_p)*kernels.digamma(concentration0_p) + (-1 + concentration1_p)*kernels.digamma(concentration1_p) + (2 - concentration0_p - concentration1_p)*kernels.digamma(concentration0_p + concentration1_p) + torch.log(high_q - low_q) + torch.lgamma(concentration0_p + concentration1_p), math.inf)


def kl_categorical_categorical(probs_p, probs_q):
    """KL(Categorical(probs_p) || Categorical(probs_q)).

    Generated from symkl.kl('categorical', 'categorical').
    """
    return kernels.sum_last(torch.where(kernels.either((probs_p == 0), (probs_q > 0)), kernels.xlogx_bregman(probs_q, -probs_q + probs_p, probs_p), math.inf))


def kl_categorical_logits(logits_p, logits_q):
    """KL(Cat(softmax(logits_p)) || Cat(softmax(logits_q))).

    Generated from symkl.kl('categorical', 'categorical'), reparametrised.
    """
    return kernels.sum_last((-logits_q - torch.logsumexp(logits_p, dim=-1, keepdim=True) + logits_p + torch.logsumexp(logits_q, dim=-1, keepdim=True))*torch.exp(-torch.logsumexp(logits_p, dim=-1, keepdim=True) + logits_p))


def kl_categorical_probs_logits(probs_p, logits_q):
    """KL(Cat(probs_p) || Cat(softmax(logits_q))).

    Generated from symkl.kl('categorical', 'categorical'), reparametrised.
    """
    return torch.logsumexp(logits_q, dim=-1) + kernels.sum_last(torch.special.xlogy(probs_p, probs_p) - logits_q*probs_p)


def kl_dirichlet_dirichlet(concentration_p, concentration_q):
    """KL(Dirichlet(concentration_p) || Dirichlet(concentration_q)).

    Generated from symkl.kl('dirichlet', 'dirichlet').
    """
    return -kernels.lgamma_residual_bregman(kernels.sum_last(concentration_p), kernels.sum_last(-concentration_p + concentration_q), kernels.sum_last(concentration_q)) + kernels.sum_last(kernels.lgamma_residual_bregman(concentration_p, -concentration_p + concentration_q, concentration_q) + kernels.xlogx_bregman(concentration_p*kernels.sum_last(concentration_q, keepdim=True)/kernels.sum_last(concentration_p, keepdim=True), torch.where(kernels.sum_last(torch.abs(-concentration_q + concentration_p), keepdim=True) <= kernels.sum_last(concentration_q, keepdim=True), kernels.product_difference(-concentration_p + concentration_q, kernels.sum_last(concentration_p, keepdim=True), concentration_p, kernels.sum_last(-concentration_p + concentration_q, keepdim=True)), kernels.product_difference(concentration_q, kernels.sum_last(concentration_p, keepdim=True), concentration_p, kernels.sum_last(concentration_q, keepdim=True)))/kernels.sum_last(concentration_p, keepdim=True)))


def kl_exponential_exponential(rate_p, rate_q):
    """KL(Exponential(rate_p) || Exponential(rate_q)).

    Generated from symkl.kl('exponential', 'exponential').
    """
    return kernels.xlogx_bregman(rate_q, rate_p - rate_q, rate_p)/rate_p


def kl_exponential_gamma(rate_p, concentration_q, rate_q):
    """KL(Exponential(rate_p) || Gamma(concentration_q, rate_q)).

    Generated from symkl.kl('exponential', 'gamma').
    """
    return concentration_q*kernels.xlogx_bregman(rate_q, rate_p - rate_q, rate_p)/rate_p + ((-1 + concentration_q)*(rate_p - rate_q + rate_p*0.5772156649015329)/rate_p + torch.lgamma(concentration_q))


def kl_exponential_normal(rate_p, loc_q, scale_q):
    """KL(Exponential(rate_p) || Normal(loc_q, scale_q)).

    Generated from symkl.kl('exponential', 'normal').
    """
    return 0.9189385332046728 + (2 + loc_q**2*rate_p**2 - 2*loc_q*rate_p - 2*rate_p**2*scale_q**2)/(2*rate_p**2*scale_q**2) + torch.log(rate_p*scale_q)


def kl_gamma_exponential(concentration_p, rate_p, rate_q):
    """KL(Gamma(concentration_p, rate_p) || Exponential(rate_q)).

    Generated from symkl.kl('gamma', 'exponential').
    """
    return kernels.xlogx_bregman(rate_q, rate_p - rate_q, rate_p)/rate_p + (-torch.lgamma(concentration_p) + (-1 + concentration_p)*kernels.digamma(concentration_p) - (-1 + concentration_p)*(rate_p - rate_q)/rate_p)


def kl_gamma_gamma(concentration_p, rate_p, concentration_q, rate_q):
    """KL(Gamma(concentration_p, rate_p) || Gamma(concentration_q, rate_q)).

    Generated from symkl.kl('gamma', 'gamma').
    """
    return kernels.lgamma_residual_bregman(concentration_p, concentration_q - concentration_p, concentration_q) + kernels.xlogx_bregman(concentration_p*rate_q/rate_p, kernels.product_difference(concentration_q, rate_p, concentration_p, rate_q)/rate_p, concentration_q)


def kl_gamma_normal(concentration_p, rate_p, loc_q, scale_q):
    """KL(Gamma(concentration_p, rate_p) || Normal(loc_q, scale_q)).

    Generated from symkl.kl('gamma', 'normal').
    """
    return 0.9189385332046728 - torch.lgamma(concentration_p) + (-1 + concentration_p)*kernels.digamma(concentration_p) + (concentration_p + concentration_p**2 + loc_q**2*rate_p**2 - 2*loc_q*concentration_p*rate_p - 2*concentration_p*rate_p**2*scale_q**2)/(2*rate_p**2*scale_q**2) + torch.log(rate_p*scale_q)


def kl_laplace_laplace(loc_p, scale_p, loc_q, scale_q):
    """KL(Laplace(loc_p, scale_p) || Laplace(loc_q, scale_q)).

    Generated from symkl.kl('laplace', 'laplace').
    """
    return kernels.neglog_bregman_split(((scale_p - scale_q)/scale_q), kernels.log_ratio(scale_p, scale_q)) + scale_p*kernels.exp_bregman(0, -torch.abs(loc_p - loc_q)/scale_p)/scale_q


def kl_laplace_normal(loc_p, scale_p, loc_q, scale_q):
    """KL(Laplace(loc_p, scale_p) || Normal(loc_q, scale_q)).

    Generated from symkl.kl('laplace', 'normal').
    """
    return -kernels.log1p_ratio((scale_p - scale_q)/scale_q, scale_p, scale_q) + (0.22579135264472744 + ((loc_p - loc_q)**2 - 2*scale_q**2 + 2*scale_p**2)/(2*scale_q**2))


def kl_mvn_diag_mvn_diag(loc_p, scale_p, loc_q, scale_q):
    """KL(Diagonal multivariate Normal(loc_p, scale_p) || Diagonal multivariate Normal(loc_q, scale_q)).

    Generated from symkl.kl('mvn_diag', 'mvn_diag').
    """
    return kernels.sum_last((2*kernels.neglog_bregman_split(((-scale_q + scale_p)/scale_q), kernels.log_ratio(scale_p, scale_q)) + ((-scale_q + scale_p)/scale_q)**2)/2) + kernels.sum_last(((-loc_q + loc_p)/scale_q)**2/2)


def kl_mvn_mvn(loc_p, covariance_matrix_p, loc_q, covariance_matrix_q):
    """KL(Multivariate Normal(loc_p, covariance_matrix_p) || Multivariate Normal(loc_q, covariance_matrix_q)).

    Generated from symkl.kl('mvn', 'mvn').
    """
    chol_covariance_matrix_p = linalg.cholesky(covariance_matrix_p)
    chol_covariance_matrix_q = linalg.cholesky(covariance_matrix_q)
    return linalg.neglogdet_bregman(chol_covariance_matrix_q, chol_covariance_matrix_p)/2 + linalg.mahalanobis_sq(chol_covariance_matrix_q, (-loc_q + loc_p))/2


def kl_mvn_mvn_tril(loc_p, scale_tril_p, loc_q, scale_tril_q):
    """KL(Multivariate Normal(loc_p, covariance_matrix_p) || Multivariate Normal(loc_q, covariance_matrix_q)), from the Cholesky factors scale_tril (covariance = L L^T).

    Generated from symkl.kl('mvn', 'mvn').
    """
    chol_covariance_matrix_p = scale_tril_p
    chol_covariance_matrix_q = scale_tril_q
    return linalg.neglogdet_bregman(chol_covariance_matrix_q, chol_covariance_matrix_p)/2 + linalg.mahalanobis_sq(chol_covariance_matrix_q, (-loc_q + loc_p))/2


def kl_normal_exponential(loc_p, scale_p, rate_q):
    """KL(Normal(loc_p, scale_p) || Exponential(rate_q)).

    Generated from symkl.kl('normal', 'exponential').
    """
    return 0 * (loc_p + scale_p + rate_q) + math.inf


def kl_normal_laplace(loc_p, scale_p, loc_q, scale_q):
    """KL(Normal(loc_p, scale_p) || Laplace(loc_q, scale_q)).

    Generated from symkl.kl('normal', 'laplace').
    """
    return -2*kernels.log1p_ratio((scale_p - scale_q)/scale_q, scale_p, scale_q)/2 + (-0.5 - 0.22579135264472744 + (loc_p - loc_q)*torch.special.erf(1.4142135623730951*(loc_p - loc_q)/(2*scale_p))/scale_q + scale_p*1.4142135623730951*torch.exp(-((loc_p - loc_q)/scale_p)**2/2)/(1.772453850905516*scale_q))


def kl_normal_normal(loc_p, scale_p, loc_q, scale_q):
    """KL(Normal(loc_p, scale_p) || Normal(loc_q, scale_q)).

    Generated from symkl.kl('normal', 'normal').
    """
    return (2*kernels.neglog_bregman_split(((scale_p - scale_q)/scale_q), kernels.log_ratio(scale_p, scale_q)) + ((scale_p - scale_q)/scale_q)**2)/2 + ((loc_p - loc_q)/scale_q)**2/2


def kl_normal_normal_logvar(loc_p, logvar_p, loc_q, logvar_q):
    """KL(N(loc_p, exp(logvar_p)) || N(loc_q, exp(logvar_q))).

    Generated from symkl.kl('normal', 'normal'), reparametrised.
    """
    return kernels.exp_bregman(0, logvar_p - logvar_q)/2 + (loc_p - loc_q)**2*torch.exp(-logvar_q)/2


def kl_normal_uniform(loc_p, scale_p, low_q, high_q):
    """KL(Normal(loc_p, scale_p) || Uniform(low_q, high_q)).

    Generated from symkl.kl('normal', 'uniform').
    """
    return 0 * (loc_p + scale_p + low_q + high_q) + math.inf


def kl_poisson_poisson(rate_p, rate_q):
    """KL(Poisson(rate_p) || Poisson(rate_q)).

    Generated from symkl.kl('poisson', 'poisson').
    """
    return kernels.xlogx_bregman(rate_q, rate_p - rate_q, rate_p)


def kl_uniform_normal(low_p, high_p, loc_q, scale_q):
    """KL(Uniform(low_p, high_p) || Normal(loc_q, scale_q)).

    Generated from symkl.kl('uniform', 'normal').
    """
    return 0.9189385332046728 + (high_p**2 + low_p**2 + 3*loc_q**2 + high_p*low_p - 3*high_p*loc_q - 3*loc_q*low_p)/(6*scale_q**2) + torch.log(scale_q/(high_p - low_p))


def kl_uniform_uniform(low_p, high_p, low_q, high_q):
    """KL(Uniform(low_p, high_p) || Uniform(low_q, high_q)).

    Generated from symkl.kl('uniform', 'uniform').
    """
    return torch.where(kernels.both((low_p >= low_q), (high_p <= high_q)), kernels.log1p_ratio(((high_q - high_p) + (low_p - low_q))/(high_p - low_p), high_q - low_q, high_p - low_p), math.inf)


def kl_vae(mu, logvar):
    """KL(N(mu, diag(exp(logvar))) || N(0, I)), the VAE term.

    Generated from symkl.kl('mvn_diag', 'mvn_diag'), fixed {'loc_q': 0.0, 'scale_q': 1.0}, reparametrised.
    """
    return kernels.sum_last(kernels.exp_bregman(0, logvar)/2) + kernels.sum_last(mu**2/2)

#: name -> (quantity, family of P, family of Q or None), for dispatch and validation.
FUNCTIONS = {
    'cross_entropy_bernoulli_bernoulli': ('cross_entropy', 'bernoulli', 'bernoulli'),
    'cross_entropy_beta_beta': ('cross_entropy', 'beta', 'beta'),
    'cross_entropy_beta_normal': ('cross_entropy', 'beta', 'normal'),
    'cross_entropy_beta_uniform': ('cross_entropy', 'beta', 'uniform'),
    'cross_entropy_categorical_categorical': ('cross_entropy', 'categorical', 'categorical'),
    'cross_entropy_categorical_logits': ('cross_entropy', 'categorical', 'categorical'),
    'cross_entropy_categorical_probs_logits': ('cross_entropy', 'categorical', 'categorical'),
    'cross_entropy_dirichlet_dirichlet': ('cross_entropy', 'dirichlet', 'dirichlet'),
    'cross_entropy_exponential_exponential': ('cross_entropy', 'exponential', 'exponential'),
    'cross_entropy_exponential_gamma': ('cross_entropy', 'exponential', 'gamma'),
    'cross_entropy_exponential_normal': ('cross_entropy', 'exponential', 'normal'),
    'cross_entropy_gamma_exponential': ('cross_entropy', 'gamma', 'exponential'),
    'cross_entropy_gamma_gamma': ('cross_entropy', 'gamma', 'gamma'),
    'cross_entropy_gamma_normal': ('cross_entropy', 'gamma', 'normal'),
    'cross_entropy_laplace_laplace': ('cross_entropy', 'laplace', 'laplace'),
    'cross_entropy_laplace_normal': ('cross_entropy', 'laplace', 'normal'),
    'cross_entropy_mvn_diag_mvn_diag': ('cross_entropy', 'mvn_diag', 'mvn_diag'),
    'cross_entropy_mvn_mvn': ('cross_entropy', 'mvn', 'mvn'),
    'cross_entropy_mvn_mvn_tril': ('cross_entropy', 'mvn', 'mvn'),
    'cross_entropy_normal_exponential': ('cross_entropy', 'normal', 'exponential'),
    'cross_entropy_normal_laplace': ('cross_entropy', 'normal', 'laplace'),
    'cross_entropy_normal_normal': ('cross_entropy', 'normal', 'normal'),
    'cross_entropy_normal_uniform': ('cross_entropy', 'normal', 'uniform'),
    'cross_entropy_poisson_poisson': ('cross_entropy', 'poisson', 'poisson'),
    'cross_entropy_uniform_normal': ('cross_entropy', 'uniform', 'normal'),
    'cross_entropy_uniform_uniform': ('cross_entropy', 'uniform', 'uniform'),
    'entropy_bernoulli': ('entropy', 'bernoulli', None),
    'entropy_beta': ('entropy', 'beta', None),
    'entropy_categorical': ('entropy', 'categorical', None),
    'entropy_dirichlet': ('entropy', 'dirichlet', None),
    'entropy_exponential': ('entropy', 'exponential', None),
    'entropy_gamma': ('entropy', 'gamma', None),
    'entropy_laplace': ('entropy', 'laplace', None),
    'entropy_mvn': ('entropy', 'mvn', None),
    'entropy_mvn_diag': ('entropy', 'mvn_diag', None),
    'entropy_mvn_tril': ('entropy', 'mvn', None),
    'entropy_normal': ('entropy', 'normal', None),
    'entropy_poisson': ('entropy', 'poisson', None),
    'entropy_uniform': ('entropy', 'uniform', None),
    'kl_bernoulli_bernoulli': ('kl', 'bernoulli', 'bernoulli'),
    'kl_beta_beta': ('kl', 'beta', 'beta'),
    'kl_beta_normal': ('kl', 'beta', 'normal'),
    'kl_beta_uniform': ('kl', 'beta', 'uniform'),
    'kl_categorical_categorical': ('kl', 'categorical', 'categorical'),
    'kl_categorical_logits': ('kl', 'categorical', 'categorical'),
    'kl_categorical_probs_logits': ('kl', 'categorical', 'categorical'),
    'kl_dirichlet_dirichlet': ('kl', 'dirichlet', 'dirichlet'),
    'kl_exponential_exponential': ('kl', 'exponential', 'exponential'),
    'kl_exponential_gamma': ('kl', 'exponential', 'gamma'),
    'kl_exponential_normal': ('kl', 'exponential', 'normal'),
    'kl_gamma_exponential': ('kl', 'gamma', 'exponential'),
    'kl_gamma_gamma': ('kl', 'gamma', 'gamma'),
    'kl_gamma_normal': ('kl', 'gamma', 'normal'),
    'kl_laplace_laplace': ('kl', 'laplace', 'laplace'),
    'kl_laplace_normal': ('kl', 'laplace', 'normal'),
    'kl_mvn_diag_mvn_diag': ('kl', 'mvn_diag', 'mvn_diag'),
    'kl_mvn_mvn': ('kl', 'mvn', 'mvn'),
    'kl_mvn_mvn_tril': ('kl', 'mvn', 'mvn'),
    'kl_normal_exponential': ('kl', 'normal', 'exponential'),
    'kl_normal_laplace': ('kl', 'normal', 'laplace'),
    'kl_normal_normal': ('kl', 'normal', 'normal'),
    'kl_normal_normal_logvar': ('kl', 'normal', 'normal'),
    'kl_normal_uniform': ('kl', 'normal', 'uniform'),
    'kl_poisson_poisson': ('kl', 'poisson', 'poisson'),
    'kl_uniform_normal': ('kl', 'uniform', 'normal'),
    'kl_uniform_uniform': ('kl', 'uniform', 'uniform'),
    'kl_vae': ('kl', 'mvn_diag', 'mvn_diag'),
}

#: Specialisations: parameter -> constraint name (their parameters are not the family's).
PARAMETERS = {
    'cross_entropy_categorical_logits': {'logits_p': 'real', 'logits_q': 'real'},
    'cross_entropy_categorical_probs_logits': {'probs_p': 'simplex', 'logits_q': 'real'},
    'cross_entropy_mvn_mvn_tril': {'loc_p': 'real', 'scale_tril_p': 'lower_cholesky', 'loc_q': 'real', 'scale_tril_q': 'lower_cholesky'},
    'entropy_mvn_tril': {'loc': 'real', 'scale_tril': 'lower_cholesky'},
    'kl_categorical_logits': {'logits_p': 'real', 'logits_q': 'real'},
    'kl_categorical_probs_logits': {'probs_p': 'simplex', 'logits_q': 'real'},
    'kl_mvn_mvn_tril': {'loc_p': 'real', 'scale_tril_p': 'lower_cholesky', 'loc_q': 'real', 'scale_tril_q': 'lower_cholesky'},
    'kl_normal_normal_logvar': {'loc_p': 'real', 'logvar_p': 'real', 'loc_q': 'real', 'logvar_q': 'real'},
    'kl_vae': {'mu': 'real', 'logvar': 'real'},
}

__all__ = ['cross_entropy_bernoulli_bernoulli', 'cross_entropy_beta_beta', 'cross_entropy_beta_normal', 'cross_entropy_beta_uniform', 'cross_entropy_categorical_categorical', 'cross_entropy_categorical_logits', 'cross_entropy_categorical_probs_logits', 'cross_entropy_dirichlet_dirichlet', 'cross_entropy_exponential_exponential', 'cross_entropy_exponential_gamma', 'cross_entropy_exponential_normal', 'cross_entropy_gamma_exponential', 'cross_entropy_gamma_gamma', 'cross_entropy_gamma_normal', 'cross_entropy_laplace_laplace', 'cross_entropy_laplace_normal', 'cross_entropy_mvn_diag_mvn_diag', 'cross_entropy_mvn_mvn', 'cross_entropy_mvn_mvn_tril', 'cross_entropy_normal_exponential', 'cross_entropy_normal_laplace', 'cross_entropy_normal_normal', 'cross_entropy_normal_uniform', 'cross_entropy_poisson_poisson', 'cross_entropy_uniform_normal', 'cross_entropy_uniform_uniform', 'entropy_bernoulli', 'entropy_beta', 'entropy_categorical', 'entropy_dirichlet', 'entropy_exponential', 'entropy_gamma', 'entropy_laplace', 'entropy_mvn', 'entropy_mvn_diag', 'entropy_mvn_tril', 'entropy_normal', 'entropy_poisson', 'entropy_uniform', 'kl_bernoulli_bernoulli', 'kl_beta_beta', 'kl_beta_normal', 'kl_beta_uniform', 'kl_categorical_categorical', 'kl_categorical_logits', 'kl_categorical_probs_logits', 'kl_dirichlet_dirichlet', 'kl_exponential_exponential', 'kl_exponential_gamma', 'kl_exponential_normal', 'kl_gamma_exponential', 'kl_gamma_gamma', 'kl_gamma_normal', 'kl_laplace_laplace', 'kl_laplace_normal', 'kl_mvn_diag_mvn_diag', 'kl_mvn_mvn', 'kl_mvn_mvn_tril', 'kl_normal_exponential', 'kl_normal_laplace', 'kl_normal_normal', 'kl_normal_normal_logvar', 'kl_normal_uniform', 'kl_poisson_poisson', 'kl_uniform_normal', 'kl_uniform_uniform', 'kl_vae']
