"""The maximum-likelihood derivation: KL(P_data || Q_theta) = -H(P_data) - E_data[log q_theta].

Steps, each checked like the KL derivations (:mod:`symkl.checks`):

1. the decomposition KL = -H(P_data) - E_data[log q_theta] (the main chain);
2. hence argmin KL = argmax E_data[log q_theta], and grad KL = -grad E_data[log q_theta];
3. the expected log-likelihood L(theta) as a function of theta: with generic data through the
   model's basis functions, ``E_data[g_j(x)]`` kept as symbols (the decomposition of
   :func:`symkl.derive.decompose`); with catalogue data it is ``-H(P_data, Q_theta)``,
   derived by :func:`symkl.cross_entropy`;
4. the stationary equations dL/dtheta = 0 (moment matching E_q[T] = E_data[T] for exponential
   families), solved by SymPy where it can; what it cannot solve is stated as an equation
   with "no closed form" in the notes;
5. the solution substituted back (gradient 0) and the Hessian of -L positive definite;
6. the sample version: E_data[g] -> (1/N) sum_n g(x_n), and the estimator, checked against
   the gradient of the sample log-likelihood computed from the density directly.

Non-smooth models are handled by :mod:`symkl.likelihood.boundary` (Uniform: the optimum is
on the boundary of the finite region; Laplace: the location is a median).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping, Sequence

import mpmath
import numpy as np
import sympy as sp

from symkl import mpeval, numeric
from symkl.checks import DPS, numeric_agreement, symbolic_zero
from symkl.derivation import Check, CheckMethod, Conditions, Derivation, Step
# derive's helpers: one source for the domains text and for points of a support.
from symkl.derive import decompose, parameter_domains, sample_support_point
from symkl.family import DIM, INDEX, ExponentialFamily, IndependentOf, SpecialCase, Structure
from symkl.likelihood.nodes import (
    ArgMax, ArgMin, Estimate, NegHessian, Optimal, SampleAverage, StationaryEquation,
)
from symkl.moments import MissingMoment, expectation
from symkl.nodes import CrossEntropy, Entropy, Expect, KL
from symkl.numeric import CHECK_DIM, Side

P_DATA = sp.Symbol("P_data")
Q_THETA = sp.Symbol("Q_theta")
q_theta = sp.Function("q_theta")
#: Coordinate index of the unknowns of vector families (i and j are taken by the catalogue).
COORD = sp.Idx(sp.Symbol("l", integer=True), DIM)
#: Key of the data sample in a numeric environment (read by the expectation hook).
_SAMPLE = sp.Symbol("__data_sample__")
#: Observations per random data set in numeric checks.
SAMPLE_SIZE = 9
LAGRANGE = sp.Symbol("lambda", real=True)


@dataclass
class MLEDerivation(Derivation):
    """A :class:`Derivation` of the maximum-likelihood equivalence for a model family."""

    #: Suffixed parameter name -> optimal value (SymPy), or None where there is no closed form.
    optimum: dict[str, sp.Expr] | None = None
    #: Suffixed parameter name -> sample estimator, E_data[g] replaced by (1/N) sum_n g(x_n).
    estimator: dict[str, sp.Expr] | None = None
    #: Suffixed parameter name -> dL/dtheta (the stationary equations are these = 0).
    stationary: dict[str, sp.Expr] = field(default_factory=dict)
    #: Without a closed form: the unknowns SymPy solved in terms of the rest (Gamma rate = a/E[x])
    partial: dict[str, sp.Expr] = field(default_factory=dict)
    #: ... and the stationary equations left (expression = 0) after substituting them.
    unsolved: dict[str, sp.Expr] = field(default_factory=dict)


# -- the problem ------------------------------------------------------------------------------


@dataclass
class Problem:
    """What is maximised: L(theta) over the free coordinate parameters theta."""

    model: Side
    data: Side | None
    x: sp.Basic  # the model's random variable (IndexedBase for vector families)
    theta: dict[str, sp.Basic]  # suffixed name -> unknown (Symbol, or sym[l] for vector families)
    objective: sp.Expr  # L(theta) = E_data[log q_theta(x)]
    sampler: Callable[[np.random.Generator], dict]  # random consistent points for checks

    @property
    def indexed(self) -> bool:
        return self.model.family.structure is Structure.INDEXED

    @property
    def unknowns(self) -> sp.Tuple:
        return sp.Tuple(*self.theta.values())


def free_unknowns(model: Side) -> dict[str, sp.Basic]:
    """The model's free parameters as unknowns (coordinate l for vector families)."""
    out = {}
    for name, sym in model.symbols.items():
        if name in model.fixed:
            continue
        out[f"{name}_q"] = sym[COORD] if model.family.structure is Structure.INDEXED else sym
    return out


def expectation_hook(x: sp.Basic) -> mpeval.ExpectHook:
    """E_data[g] on the environment's data sample: the average of g over the observations."""

    def expect(node: Expect, local: Mapping) -> Any:
        g = node.args[0]
        sample = local[_SAMPLE]
        return mpmath.fsum(mpeval.evaluate(g, {**local, x: xn}) for xn in sample) / len(sample)

    return expect


def evaluate(expr: sp.Basic, env: Mapping, x: sp.Basic) -> Any:
    return mpeval.evaluate(expr, env, expect=expectation_hook(x))


def draw_sample(model: Side, rng: np.random.Generator, dim: int) -> list:
    """A small data set on the model's support, with every outcome that a discrete model
    needs represented (no empty class: its log-likelihood would be -inf at the optimum)."""
    family = model.family
    for _ in range(100):
        raw = family.sample_parameters(rng, dim=dim)
        values = {n: numeric.to_mp(v, numeric.PORTABLE_BITS) for n, v in raw.items()}
        for name, value in model.fixed.items():  # data inside a fixed Uniform's interval etc.
            v = mpmath.mpf(float(value))
            values[name] = [v] * dim if family.structure is Structure.INDEXED else v
            raw[name] = np.full_like(raw[name], float(value))
        try:
            family.validate(raw)  # a fixed low may now exceed the drawn high: draw again
        except ValueError:
            continue
        sample = [sample_support_point(family, values, rng, dim) for _ in range(SAMPLE_SIZE)]
        if _spread(sample, family):
            return sample
    raise RuntimeError(f"could not draw a non-degenerate sample for {family.title}")


def _spread(sample: list, family) -> bool:
    if family.structure is Structure.INDEXED:
        columns = list(zip(*sample))
        if family.support.kind == "one-hot":
            return all(any(v != 0 for v in c) for c in columns)
        return all(len(set(c)) > 1 for c in columns)
    return len(set(sample)) > 1


def generic_sampler(model: Side, x: sp.Basic) -> Callable[[np.random.Generator], dict]:
    """Random theta (from the constraints) and a random data sample (for E_data[.])."""
    family = model.family
    dim = CHECK_DIM[family.structure]

    def sample(rng: np.random.Generator) -> dict:
        env: dict = {DIM: mpmath.mpf(dim)}
        env.update(model.env(numeric.sample_values(model, rng, dim)))
        env[_SAMPLE] = draw_sample(model, rng, dim)
        env[COORD] = env[COORD.label] = mpmath.mpf(int(rng.integers(dim)))
        return env

    return sample


def data_sampler(model: Side, data: Side) -> Callable[[np.random.Generator], dict]:
    """Random free parameters of the data family and of the model."""
    dim = CHECK_DIM[model.family.structure]

    def sample(rng: np.random.Generator) -> dict:
        env: dict = {DIM: mpmath.mpf(dim)}
        for side in (data, model):
            env.update(side.env(numeric.sample_values(side, rng, dim)))
        env[COORD] = env[COORD.label] = mpmath.mpf(int(rng.integers(dim)))
        return env

    return sample


# -- the expected log-likelihood for generic data --------------------------------------------


def fixed_log_density(model: Side, x: sp.Basic) -> sp.Expr:
    """log q_theta(x) with the fixed parameters substituted (elementwise for vectors)."""
    family = model.family
    symbols: dict[str, sp.Basic] = dict(model.symbols)
    for name, value in model.fixed.items():
        if family.structure is Structure.INDEXED:
            symbols[name] = _Constant(sp.sympify(value))
        else:
            symbols[name] = sp.sympify(value)
    return family.log_density(x, symbols)


class _Constant:
    """An IndexedBase stand-in whose every coordinate is the same fixed value."""

    def __init__(self, value: sp.Expr):
        self.value = value

    def __getitem__(self, index: Any) -> sp.Expr:
        return self.value


def expand_basis(f: sp.Expr) -> sp.Expr:
    """Expand polynomials in x (inside the coordinate sum for vector families) so that the
    basis functions are free of theta: (x - mu)^2 -> x^2 - 2 mu x + mu^2. |x - mu| stays."""
    f = sp.expand(sp.expand_log(f, force=True))
    return f.replace(lambda e: isinstance(e, sp.Sum),
                     lambda e: sp.Sum(sp.expand(sp.expand_log(e.function, force=True)), *e.limits))


def generic_objective(model: Side) -> tuple[sp.Expr, sp.Expr, sp.Expr, Any]:
    """(log q_theta(x), its basis decomposition, L(theta), decomposition) for generic data."""
    x = model.family.variable()
    log_q = fixed_log_density(model, x)
    decomposition = decompose(expand_basis(log_q), x, model.family.structure)
    collected = decomposition.assemble()
    moments = {b: (sp.S.One if b == 1 else Expect(b, P_DATA)) for b in decomposition.terms}
    return log_q, collected, decomposition.assemble(moments), decomposition


# -- differentiation and solving -------------------------------------------------------------


def derivative(expr: sp.Expr, var: sp.Basic) -> sp.Expr:
    """d expr / d var; for a coordinate var = theta[l], sums over i collapse to their l term."""
    out = sp.diff(expr, var)
    if isinstance(var, sp.Indexed):
        out = out.doit()
        # sum_i delta(i, l) f(i) -> Piecewise((f(l), 0 <= l <= k - 1), (0, True)); l is in range.
        out = out.replace(lambda e: isinstance(e, sp.Piecewise) and e.has(COORD.label),
                          lambda e: e.args[0][0])
    return sp.simplify(out) if not out.has(sp.Sum) else out


def _moment_dummies(expr: sp.Expr) -> dict[sp.Basic, sp.Dummy]:
    nodes = sorted(expr.atoms(Expect), key=sp.default_sort_key)
    return {n: sp.Dummy(f"m{k}", real=True) for k, n in enumerate(nodes)}


def _unknown_dummy(name: str, model: Side) -> sp.Dummy:
    base = name.rsplit("_", 1)[0]
    assumptions = dict(model.family.parameter(base).constraint.assumptions)
    return sp.Dummy(base, **assumptions)


def _positive_on_samples(expr: sp.Expr, problem: Problem) -> bool:
    """True when ``expr`` is positive at 3 random points (picks the root of a quadratic that
    lies in a positive parameter's domain when SymPy cannot order the two)."""
    rng = np.random.default_rng(7)
    try:
        with mpmath.workdps(DPS):
            return all(evaluate(expr, problem.sampler(rng), problem.x) > 0 for _ in range(3))
    except (TypeError, ValueError, mpeval.UnsupportedNode, KeyError):
        return False


def _candidate(sol: sp.Expr, dummy: sp.Dummy) -> bool:
    if sol.has(sp.I):
        return False
    return not (dummy.is_positive and sol.could_extract_minus_sign())


def solve_stationary(equations: Mapping[str, sp.Expr], problem: Problem,
                     extra: Sequence[sp.Basic] = ()) -> tuple[dict[str, sp.Expr], dict[str, sp.Expr]]:
    """Solve ``equations[name] = 0`` greedily, one unknown at a time.

    Returns (solved unknowns by name, equations left unsolved after substitution). An
    algebraic solution is preferred; one that needs an inverse special function (the Gamma
    concentration from log a - psi(a) = c) is not attempted.
    """
    names = list(problem.theta) + [str(e) for e in extra]
    unknowns = {**problem.theta, **{str(e): e for e in extra}}
    dummies = {n: (_unknown_dummy(n, problem.model) if n in problem.theta
                   else sp.Dummy(n, real=True)) for n in names}
    all_eqs = sp.Add(*equations.values())
    moments = _moment_dummies(all_eqs)
    to_dummy = {**moments, **{unknowns[n]: dummies[n] for n in names}}
    back = {v: k for k, v in to_dummy.items()}
    pending = {n: sp.together(e.xreplace(to_dummy)) for n, e in equations.items()}
    solved: dict[str, sp.Expr] = {}
    progress = True
    while pending and progress:
        progress = False
        best = None
        for eq_name, eq in pending.items():
            for n in names:
                if n in solved or not eq.has(dummies[n]):
                    continue
                if eq.has(sp.polygamma, sp.loggamma, sp.Abs):
                    continue
                try:
                    sols = [s for s in sp.solve(sp.numer(eq), dummies[n]) if _candidate(s, dummies[n])]
                except (NotImplementedError, ValueError, TypeError):
                    continue
                if len(sols) > 1 and dummies[n].is_positive:  # keep the root inside the domain
                    sols = [s for s in sols if _positive_on_samples(s.xreplace(back), problem)]
                if len(sols) != 1 or sols[0].has(sp.polygamma, sp.loggamma):
                    continue
                # Solve for the unknowns outside special functions first (the Gamma rate
                # from a/b = E[x]), leaving the equation in the one inside psi (a) to state.
                inside = any(f.has(dummies[n]) for e in pending.values()
                             for f in e.atoms(sp.polygamma, sp.loggamma))
                cost = sp.count_ops(sols[0]) + (100 if inside else 0)
                if best is None or cost < best[0]:
                    best = (cost, eq_name, n, sols[0])
        if best is not None:
            _, eq_name, n, sol = best
            solved[n] = sol
            del pending[eq_name]
            pending = {k: sp.simplify(e.xreplace({dummies[n]: sol})) for k, e in pending.items()}
            solved = {k: sp.simplify(v.xreplace({dummies[n]: sol})) for k, v in solved.items()}
            progress = True
    solved_back = {n: sp.factor_terms(sp.simplify(v)).xreplace(back) for n, v in solved.items()}
    return solved_back, {k: e.xreplace(back) for k, e in pending.items()}


# -- checks --------------------------------------------------------------------------------


def numeric_derivative_check(objective: sp.Expr, gradient: sp.Expr, var: sp.Basic,
                             problem: Problem, seed: int) -> Check:
    """dL/dtheta (SymPy) against a numeric derivative of L (mpmath.diff): independent."""

    def numeric_grad(env: dict) -> Any:
        key = var.base if isinstance(var, sp.Indexed) else var
        point = env[key]

        def at(t: Any) -> Any:
            if isinstance(var, sp.Indexed):
                vec = list(point)
                vec[int(env[COORD])] = t
                return evaluate(objective, {**env, key: vec}, problem.x)
            return evaluate(objective, {**env, key: t}, problem.x)

        here = point[int(env[COORD])] if isinstance(var, sp.Indexed) else point
        with mpmath.workdps(DPS + 15):
            return mpmath.diff(at, here)

    return numeric_agreement(numeric_grad, lambda env: evaluate(gradient, env, problem.x),
                             problem.sampler, seed, "numeric derivative (mpmath.diff) vs SymPy; ")


def equal_check(lhs: sp.Expr, rhs: sp.Expr, problem: Problem, seed: int, what: str = "") -> Check:
    if symbolic_zero(lhs - rhs) or sp.simplify(lhs - rhs) == 0:
        return Check(CheckMethod.SYMBOLIC, "SymPy reduces lhs - rhs to 0")
    return numeric_agreement(lambda env: evaluate(lhs, env, problem.x),
                             lambda env: evaluate(rhs, env, problem.x), problem.sampler, seed, what)


def positive_definite_check(hessian: sp.Matrix, problem: Problem, seed: int) -> Check:
    """Leading principal minors > 0: symbolically if SymPy decides, else on random data."""
    minors = [sp.simplify(hessian[:n, :n].det()) for n in range(1, hessian.rows + 1)]
    if all(m.is_positive for m in minors):
        return Check(CheckMethod.SYMBOLIC, "leading principal minors are positive: "
                     + ", ".join(str(m) for m in minors))
    rng = np.random.default_rng(seed)
    worst = None
    with mpmath.workdps(DPS):
        for _ in range(5):
            env = problem.sampler(rng)
            values = [evaluate(m, env, problem.x) for m in minors]
            low = min(values)
            worst = low if worst is None else min(worst, low)
    return Check(CheckMethod.NUMERIC,
                 f"leading principal minors at the solution on 5 random data sets: smallest "
                 f"{mpmath.nstr(worst, 3)}", bool(worst > 0))


# -- steps shared by generic and catalogue data --------------------------------------------


def optimisation_steps(problem: Problem, objective_display: sp.Expr, seed: int,
                       steps: list[Step], notes: list[str]) -> tuple[dict | None, dict, dict, dict]:
    """Stationary equations, their solution, substitution back and the second-order check.

    Returns (optimum by name or None, solved part by name, gradients by name, unsolved
    equations by name).
    """
    model = problem.model
    theta = problem.theta
    objective = problem.objective
    constrained = [n for n in theta
                   if model.family.parameter(n.rsplit("_", 1)[0]).constraint.event_total is not None]
    lagrangian = objective
    for n in constrained:
        total = model.family.parameter(n.rsplit("_", 1)[0]).constraint.event_total
        base = theta[n].base
        lagrangian -= LAGRANGE * (sp.Sum(base[INDEX], (INDEX, 0, DIM - 1)) - total)
        notes.append(f"{n} lies on the simplex (sum {total}): a Lagrange multiplier lambda "
                     "enforces the constraint")

    gradients: dict[str, sp.Expr] = {}
    for k, (name, var) in enumerate(theta.items()):
        grad = derivative(lagrangian, var)
        gradients[name] = grad
        steps.append(Step(StationaryEquation(objective_display, var), grad,
                          "stationary condition: this partial derivative = 0 at the optimum"
                          + (" (with the multiplier term)" if name in constrained else ""),
                          numeric_derivative_check(lagrangian, grad, var, _with_lagrange(problem),
                                                   seed + 10 + k),
                          chain=False))

    moment_matching_steps(problem, gradients, seed, steps)

    solved, remaining = solve_stationary(gradients, problem, (LAGRANGE,) if constrained else ())
    if constrained and str(LAGRANGE) not in solved:
        solved = _solve_multiplier(solved, constrained, problem, steps)
    multiplier = solved.pop(str(LAGRANGE), None)

    if remaining and problem.data is not None and problem.data.family.name == model.family.name \
            and not model.fixed:
        # The model family contains P_data: KL(P_data || P_data) = 0 is the global minimum
        # (KL >= 0), so theta* = the data's parameters, whatever SymPy can solve.
        data = problem.data
        own = {f"{n}_q": sp.sympify(data.fixed.get(n, data.symbols[n])) for n in model.symbols}
        if all(sp.simplify(g.xreplace({theta[n]: own[n] for n in theta})) == 0 for g in gradients.values()):
            notes.append("the model family contains P_data, so theta* = the data's own parameters: "
                         "KL(P_data || P_data) = 0 and KL >= 0 (SymPy alone cannot solve the "
                         "digamma equation, but the substituted gradient is 0)")
            solved, remaining = own, {}
    optimum: dict[str, sp.Expr] | None = None
    if not remaining and set(solved) == set(theta):
        optimum = {n: solved[n] for n in theta}
        for k, (name, var) in enumerate(theta.items()):
            steps.append(Step(Optimal(var), optimum[name], "solve the stationary equations",
                              _solution_check(gradients, optimum, problem, seed + 30 + k, multiplier),
                              chain=False))
        hessian = sp.Matrix([[-derivative(derivative(objective, a), b) for b in theta.values()]
                             for a in theta.values()])
        at = hessian.xreplace({theta[n]: optimum[n] for n in theta})
        at = at.applyfunc(sp.factor)
        steps.append(Step(NegHessian(problem.unknowns), at,
                          "second-order condition: the Hessian of -E_data[log q] is positive definite "
                          "at the solution, so it is a maximum of the likelihood",
                          positive_definite_check(at, problem, seed + 40), chain=False))
    else:
        for name, value in solved.items():
            steps.append(Step(Optimal(theta[name]), value,
                              "solve the stationary equation(s) SymPy can solve (in terms of the rest)",
                              _solution_check({k: gradients[k] for k in gradients if k not in remaining},
                                              solved, problem, seed + 30, multiplier),
                              chain=False))
        from symkl.printing import SymklStrPrinter

        unsolved_names = ", ".join(n for n in theta if n not in solved)
        equations = []
        unsolved = {}
        for k, (name, eq) in enumerate(remaining.items()):
            profiled = sp.simplify(eq)
            unsolved[name] = profiled
            equations.append(SymklStrPrinter().doprint(profiled) + " = 0")
            steps.append(Step(StationaryEquation(objective_display, theta[name]), profiled,
                              "no closed form: SymPy finds no explicit solution of this stationary "
                              "equation" + (" (psi has no elementary inverse)" if profiled.has(sp.polygamma)
                                            else "") + "; solve it numerically (e.g. Newton's method)",
                              equal_check(gradients[name].xreplace({theta[n]: v for n, v in solved.items()}),
                                          profiled, problem, seed + 50 + k), chain=False))
        notes.append(f"no closed form for {unsolved_names}: SymPy cannot solve the stationary "
                     f"equation(s) {'; '.join(equations)}; solve numerically (e.g. Newton's method)")
        return None, solved, gradients, unsolved
    return optimum, solved, gradients, {}


def _with_lagrange(problem: Problem) -> Problem:
    """The same problem whose sampler also draws the Lagrange multiplier."""
    base = problem.sampler

    def sample(rng: np.random.Generator) -> dict:
        env = base(rng)
        env[LAGRANGE] = mpmath.mpf(float(rng.uniform(0.5, 2.0)))
        return env

    return Problem(problem.model, problem.data, problem.x, problem.theta, problem.objective, sample)


def _solve_multiplier(solved: dict, constrained: list[str], problem: Problem,
                      steps: list[Step]) -> dict:
    """theta_l = f_l / lambda on a simplex: the constraint sum_l theta_l = total fixes lambda."""
    out = dict(solved)
    for name in constrained:
        value = out.get(name)
        if value is None or not value.has(LAGRANGE):
            continue
        total = problem.model.family.parameter(name.rsplit("_", 1)[0]).constraint.event_total
        numerator = sp.simplify(value * LAGRANGE)
        if numerator.has(LAGRANGE):
            continue
        summed = sp.Sum(numerator, (COORD, 0, DIM - 1))
        lam = summed / total
        if problem.model.family.support.kind == "one-hot" and numerator == Expect(problem.x[COORD], P_DATA):
            # one-hot data: sum_l x_l = 1, so sum_l E_data[x_l] = E_data[1] = 1
            steps.append(Step(summed, sp.S.One, "one-hot data: sum_l x_l = 1, and E_data[1] = 1",
                              Check(CheckMethod.STRUCTURAL, "linearity of expectation over the classes"),
                              chain=False))
            lam = sp.S.One / total
        steps.append(Step(LAGRANGE, lam, "the constraint sum_l theta_l = "
                          f"{total} fixes the multiplier",
                          Check(CheckMethod.STRUCTURAL, "sum over l of theta_l = f_l / lambda"),
                          chain=False))
        out[name] = sp.simplify(value.subs(LAGRANGE, lam))
        out[str(LAGRANGE)] = lam
    return out


def _solution_check(gradients: Mapping[str, sp.Expr], solution: Mapping[str, sp.Expr],
                    problem: Problem, seed: int, multiplier: sp.Expr | None = None) -> Check:
    """Substitute the solution (and the Lagrange multiplier) back: every stationary
    equation holds (gradient = 0)."""
    subs = {problem.theta[n]: v for n, v in solution.items() if n in problem.theta}
    if multiplier is not None:
        subs[LAGRANGE] = multiplier
    parts = [sp.simplify(g.xreplace(subs)) for g in gradients.values()]
    if all(p == 0 or symbolic_zero(p) for p in parts):
        return Check(CheckMethod.SYMBOLIC, "substituted back, every gradient component is 0")
    if any(p.has(LAGRANGE) for p in parts) or not parts:
        return Check(CheckMethod.NUMERIC, "the multiplier is unknown: nothing to substitute", False)
    checks = [equal_check(p, sp.S.Zero, problem, seed, "substituted back; ") for p in parts]
    return Check(CheckMethod.NUMERIC, "; ".join(c.detail for c in checks), all(c.passed for c in checks))


def moment_matching_steps(problem: Problem, gradients: Mapping[str, sp.Expr], seed: int,
                          steps: list[Step]) -> None:
    """Exponential families: dL/dtheta = sum_j dc_j/dtheta (E_data[T_j] - E_q[T_j]).

    So the stationary equations say E_q[T] = E_data[T]; the identity is checked with the
    model's own moments (derived from its log-partition function in :mod:`symkl.moments`).
    """
    model = problem.model
    if problem.data is not None or not isinstance(model.family.moments, (ExponentialFamily, SpecialCase, IndependentOf)):
        return
    if any(model.family.parameter(n.rsplit("_", 1)[0]).constraint.event_total for n in problem.theta):
        return
    x = model.family.variable()
    _, _, _, decomposition = generic_objective(model)
    xc = x[INDEX] if decomposition.indexed else x
    coord = model.family.coordinate(model.symbols)
    fixed_coord = {n: (v if n not in model.fixed else sp.sympify(model.fixed[n])) for n, v in coord.items()}
    to_l = {INDEX: COORD}
    for basis, coeff in decomposition.terms.items():
        if basis == 1:
            continue
        try:
            model_moment = expectation(basis, xc, model.family, fixed_coord)
        except MissingMoment:
            return
        lhs = Expect(basis.xreplace(to_l), Q_THETA)
        rhs = Expect(basis.xreplace(to_l), P_DATA)
        steps.append(Step(lhs, rhs,
                          f"moment matching (exponential family): E_q[T] = E_data[T]; "
                          f"E_q[{_text(basis.xreplace(to_l))}] = {_text(model_moment.value.xreplace(to_l))} "
                          f"({model_moment.source})",
                          _moment_matching_check(problem, gradients, decomposition, fixed_coord, seed),
                          chain=False))


def _text(expr: sp.Basic) -> str:
    from symkl.printing import SymklStrPrinter

    return SymklStrPrinter().doprint(expr)


def _moment_matching_check(problem: Problem, gradients, decomposition, coord, seed: int) -> Check:
    """grad L - sum_j dc_j/dtheta (E_data[g_j] - E_q[g_j]) = 0 for every parameter."""
    x = problem.model.family.variable()
    xc = x[INDEX] if decomposition.indexed else x
    to_l = {INDEX: COORD}
    ok_symbolic = True
    checks = []
    for k, (name, var) in enumerate(problem.theta.items()):
        total = sp.S.Zero
        for basis, coeff in decomposition.terms.items():
            if basis == 1:
                continue
            e_q = expectation(basis, xc, problem.model.family, coord).value
            total += derivative(coeff.xreplace(to_l), var) * (
                Expect(basis.xreplace(to_l), P_DATA) - e_q.xreplace(to_l))
        gap = gradients[name] - total
        if not (symbolic_zero(gap) or sp.simplify(gap) == 0):
            ok_symbolic = False
            checks.append(equal_check(gradients[name], total, problem, seed + 60 + k))
    if ok_symbolic:
        return Check(CheckMethod.SYMBOLIC,
                     "dL/dtheta = sum_j dc_j/dtheta (E_data[T_j] - E_q[T_j]) reduces to 0 - 0")
    return Check(CheckMethod.NUMERIC, "; ".join(c.detail for c in checks), all(c.passed for c in checks))


def sample_steps(problem: Problem, optimum: Mapping[str, sp.Expr] | None,
                 log_q: sp.Expr, objective_display: sp.Expr, seed: int,
                 steps: list[Step]) -> dict[str, sp.Expr] | None:
    """The sample version: p_data -> (1/N) sum_n delta(x - x_n); the estimator if closed form."""
    x = problem.x
    to_sample = lambda e: e.replace(lambda n: isinstance(n, Expect) and n.args[1] == P_DATA,  # noqa: E731
                                    lambda n: SampleAverage(n.args[0], x))
    steps.append(Step(objective_display, SampleAverage(log_q, x),
                      "sample version: p_data is the empirical distribution (1/N) sum_n delta(x - x_n), "
                      "so maximising the expected log-likelihood is maximising the average "
                      "log-likelihood",
                      Check(CheckMethod.DEFINITION, "expectation under the empirical distribution"),
                      chain=False))
    if optimum is None:
        return None
    estimator = {n: to_sample(v) for n, v in optimum.items()}
    for k, (name, var) in enumerate(problem.theta.items()):
        steps.append(Step(Estimate(var), estimator[name],
                          "maximum-likelihood estimator: E_data[g] replaced by the sample average",
                          estimator_check(problem, optimum, log_q, name, seed + 70 + k),
                          chain=False))
    return estimator


def estimator_check(problem: Problem, optimum: Mapping[str, sp.Expr], log_q: sp.Expr,
                    name: str, seed: int) -> Check:
    """At the estimate, the sample log-likelihood sum_n log q(x_n) (from the density, not from
    L) is stationary in ``name``; on a simplex, its partial derivatives are all equal."""
    var = problem.theta[name]
    x = problem.x
    constrained = problem.model.family.parameter(name.rsplit("_", 1)[0]).constraint.event_total

    def loglik_derivative(env: dict, coordinate: int | None = None) -> Any:
        estimate = {}
        for n, v in optimum.items():
            sym = problem.theta[n]
            if isinstance(sym, sp.Indexed):
                dim = int(env[DIM])
                estimate[sym.base] = [evaluate(v, {**env, COORD: mpmath.mpf(c), COORD.label: mpmath.mpf(c)}, x)
                                            for c in range(dim)]
            else:
                estimate[sym] = evaluate(v, env, x)
        key = var.base if isinstance(var, sp.Indexed) else var
        c = int(env[COORD]) if coordinate is None else coordinate

        def loglik(t: Any) -> Any:
            point = dict(estimate)
            if isinstance(var, sp.Indexed):
                vec = list(point[key])
                vec[c] = t
                point[key] = vec
            else:
                point[key] = t
            local = {**env, **point}
            return mpmath.fsum(mpeval.evaluate(log_q, {**local, x: xn}) for xn in env[_SAMPLE])

        here = estimate[key][c] if isinstance(var, sp.Indexed) else estimate[key]
        with mpmath.workdps(DPS + 15):
            return mpmath.diff(loglik, here)

    if constrained:
        def other(env: dict) -> Any:
            return loglik_derivative(env, (int(env[COORD]) + 1) % int(env[DIM]))

        return numeric_agreement(loglik_derivative, other, problem.sampler, seed,
                                 "Lagrange condition on random samples: equal partial derivatives of "
                                 "sum_n log q(x_n) at the estimate; ")
    return numeric_agreement(loglik_derivative, lambda env: mpmath.mpf(0), problem.sampler, seed,
                             "derivative of sum_n log q(x_n) at the estimate on random samples; ")


# -- the two entry points -----------------------------------------------------------------


def derive_generic(model: Side, seed: int = 0) -> MLEDerivation:
    """MLE for ``model`` with a generic data distribution (moments as E_data[g(x)])."""
    start = time.perf_counter()
    family = model.family
    if family.structure is Structure.MATRIX:
        raise ValueError(
            f"{family.title}: MLE derivations with matrix symbols are not supported (SymPy "
            "cannot differentiate log det and quadratic forms of symbolic dimension); use mvn_diag")
    x = family.variable()
    log_q, collected, objective, decomposition = generic_objective(model)
    theta = free_unknowns(model)
    problem = Problem(model, None, x, theta, objective, generic_sampler(model, x))
    notes = list(family.conventions)
    if any(isinstance(b, sp.Abs) for b in decomposition.terms):
        from symkl.likelihood.boundary import laplace_steps

        return laplace_steps(model, problem, log_q, start, seed)
    if family.name == "uniform":
        from symkl.likelihood.boundary import uniform_steps

        return uniform_steps(model, problem, log_q, start, seed)

    unknowns = problem.unknowns
    kl = KL(P_DATA, Q_THETA)
    log_display = Expect(sp.log(q_theta(sp.Symbol("x"))), P_DATA)
    steps: list[Step] = [
        Step(kl, Expect(sp.log(sp.Function("p_data")(sp.Symbol("x"))) - sp.log(q_theta(sp.Symbol("x"))), P_DATA),
             "definition", Check(CheckMethod.DEFINITION, "")),
        Step(Expect(sp.log(sp.Function("p_data")(sp.Symbol("x"))) - sp.log(q_theta(sp.Symbol("x"))), P_DATA),
             -Entropy(P_DATA) - log_display, "linearity of expectation; -H(P_data) = E_data[log p_data]",
             Check(CheckMethod.STRUCTURAL, "E[a - b] = E[a] - E[b]")),
        Step(-Entropy(P_DATA) - log_display, -Entropy(P_DATA) - Expect(collected, P_DATA),
             "substitute the model's log-density, expanded into basis functions g_j(x)",
             equal_check(log_q, collected, Problem(model, None, x, theta, objective,
                                                   _pointwise_sampler(model, x)), seed + 1,
                         "pointwise in x; ")),
        Step(-Entropy(P_DATA) - Expect(collected, P_DATA), -Entropy(P_DATA) - objective,
             "linearity of expectation: E_data[c_0 + sum c_j g_j] = c_0 + sum c_j E_data[g_j]",
             Check(CheckMethod.STRUCTURAL, "term by term",
                   decomposition.assemble({b: (sp.S.One if b == 1 else Expect(b, P_DATA))
                                           for b in decomposition.terms}) == objective)),
        Step(ArgMin(kl, unknowns), ArgMax(log_display, unknowns),
             "H(P_data) does not depend on theta, so minimising the KL maximises the expected "
             "log-likelihood", Check(CheckMethod.STRUCTURAL, "-H(P_data) is free of theta"),
             chain=False),
    ]
    for name, var in theta.items():
        steps.append(Step(StationaryEquation(kl, var), -StationaryEquation(log_display, var),
                          "gradient identity: grad_theta KL = -grad_theta E_data[log q_theta]",
                          Check(CheckMethod.STRUCTURAL, "d/dtheta H(P_data) = 0"), chain=False))
    steps.append(Step(log_display, objective, "the expected log-likelihood L(theta)",
                      Check(CheckMethod.STRUCTURAL, "the chain above"), chain=False))
    optimum, solved, gradients, unsolved = optimisation_steps(problem, log_display, seed, steps, notes)
    estimator = sample_steps(problem, optimum, log_q, log_display, seed, steps)
    if family.structure is Structure.INDEXED:
        notes.append("vector family: the parameters are optimised coordinate by coordinate "
                     "(coordinate l); E_data[g(x_l)] are the data's coordinate moments")
    return finish(model, None, problem, optimum, estimator, gradients, steps, notes, start,
                  sp.true, "", solved if optimum is None else {}, unsolved)


def _pointwise_sampler(model: Side, x: sp.Basic):
    """Random theta and x (for the pointwise decomposition identity)."""
    base = generic_sampler(model, x)

    def sample(rng: np.random.Generator) -> dict:
        env = base(rng)
        env[x] = env[_SAMPLE][0]
        return env

    return sample


def derive_with_data(model: Side, data: Side, kl_d: Derivation, ce: Derivation, h: Derivation,
                     generic: MLEDerivation | None, seed: int = 0) -> MLEDerivation:
    """MLE of ``model`` when the data distribution is a catalogue family: explicit optimum."""
    start = time.perf_counter()
    family = model.family
    x = family.variable()
    theta = free_unknowns(model)
    objective = -ce.formula
    problem = Problem(model, data, x, theta, objective, data_sampler(model, data))
    notes = list(ce.conditions.notes)
    unknowns = problem.unknowns
    kl = KL(P_DATA, Q_THETA)
    log_display = Expect(sp.log(q_theta(sp.Symbol("x"))), P_DATA)
    steps: list[Step] = [
        Step(kl, -Entropy(P_DATA) - log_display, "definition of KL; linearity of expectation",
             Check(CheckMethod.DEFINITION, "")),
        Step(-Entropy(P_DATA) - log_display, -Entropy(P_DATA) + CrossEntropy(P_DATA, Q_THETA),
             "E_data[log q_theta] = -H(P_data, Q_theta)", Check(CheckMethod.DEFINITION, "")),
        Step(-Entropy(P_DATA) + CrossEntropy(P_DATA, Q_THETA), ce.formula - h.formula,
             f"the entropy of {data.family.title} and the cross-entropy H({data.family.title}, "
             f"{family.title}), each derived step by step (symkl.entropy, symkl.cross_entropy)",
             Check(CheckMethod.STRUCTURAL,
                   f"entropy derivation ({len(h.steps)} steps) and cross-entropy derivation "
                   f"({len(ce.steps)} steps): every step "
                   + ("passed" if h.checked and ce.checked else "NOT passed"),
                   h.checked and ce.checked)),
        Step(ce.formula - h.formula, kl_d.formula,
             f"agrees with the KL derivation symkl.kl({data.family.name!r}, {family.name!r})",
             equal_check(ce.formula - h.formula, kl_d.formula, problem, seed + 2)),
        Step(ArgMin(kl, unknowns), ArgMax(log_display, unknowns),
             "H(P_data) does not depend on theta, so minimising the KL maximises the expected "
             "log-likelihood",
             Check(CheckMethod.SYMBOLIC, "H(P_data) is free of theta",
                   not (h.formula.free_symbols & set(theta.values()))), chain=False),
    ]
    for k, (name, var) in enumerate(theta.items()):
        lhs, rhs = derivative(kl_d.formula, var), -derivative(objective, var)
        steps.append(Step(StationaryEquation(kl, var), -StationaryEquation(log_display, var),
                          "gradient identity: grad_theta KL = -grad_theta E_data[log q_theta]",
                          equal_check(lhs, rhs, problem, seed + 3 + k, "dKL/dtheta + dL/dtheta = 0; "),
                          chain=False))
    steps.append(Step(log_display, objective, "the expected log-likelihood L(theta) = -H(P_data, Q_theta)",
                      Check(CheckMethod.STRUCTURAL, "from the cross-entropy derivation"), chain=False))
    if family.name == "uniform":
        from symkl.likelihood.boundary import uniform_with_data

        return uniform_with_data(model, data, problem, ce, steps, notes, start, seed, generic)
    optimum, solved, gradients, unsolved = optimisation_steps(problem, log_display, seed, steps, notes)
    estimator = generic.estimator if generic is not None else None
    return finish(model, data, problem, optimum, estimator, gradients, steps, notes, start,
                  ce.conditions.finite_when, ce.conditions.infinite_when,
                  solved if optimum is None else {}, unsolved)


def finish(model: Side, data: Side | None, problem: Problem, optimum, estimator, gradients,
           steps: list[Step], notes: list[str], start: float, finite_when: sp.Basic,
           infinite_when: str, partial: Mapping[str, sp.Expr] | None = None,
           unsolved: Mapping[str, sp.Expr] | None = None) -> MLEDerivation:
    symbols = {f"{n}_q": s for n, s in model.symbols.items()}
    fixed = {f"{n}_q": sp.sympify(v) for n, v in model.fixed.items()}
    domains = parameter_domains(model)
    if data is not None:
        symbols.update({f"{n}_p": s for n, s in data.symbols.items()})
        domains = parameter_domains(data) + domains
    unknowns = problem.unknowns
    lhs = ArgMin(KL(P_DATA, Q_THETA), unknowns)
    if optimum is not None:
        formula = sp.Tuple(*optimum.values()) if len(optimum) > 1 else next(iter(optimum.values()))
    else:
        formula = ArgMax(problem.objective, unknowns)
    conditions = Conditions(domains=domains, finite_when=finite_when, infinite_when=infinite_when,
                            notes=tuple(dict.fromkeys(notes)))
    return MLEDerivation(
        quantity="mle", p=data.family.name if data is not None else None, q=model.family.name,
        symbols=symbols, fixed=fixed, result=formula, formula=formula, conditions=conditions,
        steps=tuple(steps), lhs=lhs, variable=problem.x, seconds=time.perf_counter() - start,
        optimum=dict(optimum) if optimum is not None else None,
        estimator=dict(estimator) if estimator is not None else None,
        stationary=dict(gradients), partial=dict(partial or {}), unsolved=dict(unsolved or {}),
    )
