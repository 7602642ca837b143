"""The specialisations people use most, derived and generated like the rest.

Each is a catalogue derivation with some parameters fixed and others re-expressed in the
parametrisation a model actually outputs (log-variances, logits). The substitution is
applied to the derived result, the stable rewrite runs on what comes out (the VAE term
becomes ``mu^2/2 + exp_bregman(0, logvar)/2``, exactly 0 at the prior), and the emitter
checks the rewrite like any other.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Mapping

import sympy as sp

import symkl
from symkl.derivation import Derivation
from symkl.family import DIM, INDEX2


class LogSumExp(sp.Function):
    """``log sum_j exp(v[j])`` over the event axis, printed as ``logsumexp`` (no overflow)."""

    nargs = 1
    is_real = True

    def elementary(self) -> sp.Expr:
        v = self.args[0]
        return sp.log(sp.Sum(sp.exp(v[INDEX2]), (INDEX2, 0, DIM - 1)))


@dataclass(frozen=True)
class Specialisation:
    name: str
    title: str
    quantity: str
    p: str
    q: str
    fix_q: Mapping[str, float]
    #: derivation -> (symbol substitution, new parameters name -> (symbol, constraint name))
    substitute: Callable[[Derivation], tuple[dict, dict[str, tuple[sp.Basic, str]]]]


def _vector(name: str) -> sp.IndexedBase:
    return sp.IndexedBase(name, real=True)


def _vae(d: Derivation):
    mu, logvar = _vector("mu"), _vector("logvar")
    subs = {d.symbols["loc_p"]: lambda i: mu[i], d.symbols["scale_p"]: lambda i: sp.exp(logvar[i] / 2)}
    return subs, {"mu": (mu, "real"), "logvar": (logvar, "real")}


def _normal_logvar(d: Derivation):
    out, params = {}, {}
    for side in ("p", "q"):
        loc, logvar = sp.Symbol(f"loc_{side}", real=True), sp.Symbol(f"logvar_{side}", real=True)
        out[d.symbols[f"loc_{side}"]] = loc
        out[d.symbols[f"scale_{side}"]] = sp.exp(logvar / 2)
        params[f"loc_{side}"] = (loc, "real")
        params[f"logvar_{side}"] = (logvar, "real")
    return out, {k: params[k] for k in ("loc_p", "logvar_p", "loc_q", "logvar_q")}


def _logits(sides: tuple[str, ...]):
    def substitute(d: Derivation):
        out, params = {}, {}
        for side in ("p", "q"):
            if side in sides:
                logits = _vector(f"logits_{side}")
                lse = LogSumExp(logits)
                out[d.symbols[f"probs_{side}"]] = lambda i, logits=logits, lse=lse: sp.exp(logits[i] - lse)
                params[f"logits_{side}"] = (logits, "real")
            else:
                probs = sp.IndexedBase(f"probs_{side}", nonnegative=True)
                out[d.symbols[f"probs_{side}"]] = lambda i, probs=probs: probs[i]
                params[f"probs_{side}"] = (probs, "simplex")
        return out, params

    return substitute


SPECIALISATIONS: tuple[Specialisation, ...] = (
    Specialisation("kl_vae", "KL(N(mu, diag(exp(logvar))) || N(0, I)), the VAE term", "kl",
                   "mvn_diag", "mvn_diag", {"loc": 0, "scale": 1}, _vae),
    Specialisation("kl_normal_normal_logvar", "KL(N(loc_p, exp(logvar_p)) || N(loc_q, exp(logvar_q)))",
                   "kl", "normal", "normal", {}, _normal_logvar),
    Specialisation("kl_categorical_logits", "KL(Cat(softmax(logits_p)) || Cat(softmax(logits_q)))",
                   "kl", "categorical", "categorical", {}, _logits(("p", "q"))),
    Specialisation("cross_entropy_categorical_logits", "H(Cat(softmax(logits_p)), Cat(softmax(logits_q)))",
                   "cross_entropy", "categorical", "categorical", {}, _logits(("p", "q"))),
    Specialisation("kl_categorical_probs_logits", "KL(Cat(probs_p) || Cat(softmax(logits_q)))",
                   "kl", "categorical", "categorical", {}, _logits(("q",))),
    Specialisation("cross_entropy_categorical_probs_logits",
                   "H(Cat(probs_p), Cat(softmax(logits_q))): the classification loss from target probabilities",
                   "cross_entropy", "categorical", "categorical", {}, _logits(("q",))),
)


def specialised_result(spec: Specialisation) -> tuple[Derivation, sp.Expr, dict[str, tuple[sp.Basic, str]]]:
    """The derivation, its result in the new parameters (log-space simplified), the parameters."""
    d = getattr(symkl, spec.quantity)(spec.p, spec.q, q=dict(spec.fix_q) or None)
    subs, params = spec.substitute(d)
    expr = d.result
    for old, new in subs.items():
        if callable(new):
            expr = expr.replace(lambda e, old=old: isinstance(e, sp.Indexed) and e.base == old,
                                lambda e, new=new: new(e.indices[0]))
        else:
            expr = expr.xreplace({old: new})
    # log(exp(a)) = a and exp(a) exp(b) = exp(a + b): the log-space form of the result.
    expr = sp.powsimp(sp.expand_log(expr, force=True), combine="exp")
    return d, expr, params
