"""Public wrappers around the generated functions: signature, docs and validation.

The generated modules hold bare formulas. ``symkl.numpy`` and ``symkl.torch.functional``
expose each of them under the same name and parameter names, plus a keyword-only
``validate`` that checks every argument against its family's declared constraint
(:meth:`symkl.family.Family.validate`) and that shapes broadcast.
"""

from __future__ import annotations

import functools
import inspect
from types import ModuleType
from typing import Any, Callable

import numpy as np

from symkl import constraints, distributions


def split_name(param: str, quantity: str) -> tuple[str, str]:
    """``loc_p`` -> (``loc``, ``p``); entropy parameters have no suffix (side ``p``)."""
    if quantity != "entropy" and param[-2:] in ("_p", "_q"):
        return param[:-2], param[-1]
    return param, "p"


def check_specialised(name: str, declared: dict[str, str], values: dict[str, Any],
                      to_numpy: Callable[[Any], np.ndarray]) -> None:
    """Validate a specialisation's own parameters (``mu``, ``logvar``, ``logits`` ...)."""
    for param, value in values.items():
        array = to_numpy(value)
        constraint = getattr(constraints, declared[param])
        ok = np.asarray(constraint.check(array, {}))
        if not np.all(ok):
            raise ValueError(f"{name}: parameter '{param}' must be {constraint.text}; got "
                             f"{np.array2string(array, precision=6, threshold=8)} (shape {array.shape})")


def check_arguments(name: str, spec: tuple[str, str, str | None], values: dict[str, Any],
                    to_numpy: Callable[[Any], np.ndarray]) -> None:
    """Raise ValueError naming the parameter and its constraint (or the shapes that clash)."""
    quantity, p, q = spec
    by_side: dict[str, dict[str, np.ndarray]] = {"p": {}, "q": {}}
    arrays = {}
    for param, value in values.items():
        array = to_numpy(value)
        if np.isnan(array).any():
            raise ValueError(f"{name}: parameter '{param}' contains NaN (shape {array.shape})")
        base, side = split_name(param, quantity)
        by_side[side][base] = array
        arrays[param] = array
    for side, fam_name in (("p", p), ("q", q)):
        if fam_name is not None and by_side[side]:
            try:
                distributions.get(fam_name).validate(by_side[side])
            except ValueError as exc:
                message = str(exc)
                if quantity != "entropy":  # name the argument: 'scale_q', not 'scale'
                    for base in by_side[side]:
                        message = message.replace(f"parameter '{base}'", f"parameter '{base}_{side}'")
                raise ValueError(f"{name}: {message}") from None
    _check_broadcast(name, quantity, p, q, arrays)


def _check_broadcast(name: str, quantity: str, p: str, q: str | None, arrays: dict[str, np.ndarray]) -> None:
    batch_shapes = []
    for param, array in arrays.items():
        base, side = split_name(param, quantity)
        family = distributions.get(p if side == "p" else q)
        event_dim = {"SCALAR": 0, "VECTOR": 1, "MATRIX": 2}[family.parameter(base).shape.name]
        batch_shapes.append((param, array.shape[: array.ndim - event_dim], array.shape[array.ndim - event_dim:]))
    try:
        np.broadcast_shapes(*[b for _, b, _ in batch_shapes])
    except ValueError:
        shown = ", ".join(f"{n}: {tuple(b)}" for n, b, _ in batch_shapes)
        raise ValueError(f"{name}: batch shapes do not broadcast ({shown})") from None
    events = {tuple(e)[-1:] for _, _, e in batch_shapes if e}
    if len(events) > 1:
        shown = ", ".join(f"{n}: event {tuple(e)}" for n, _, e in batch_shapes if e)
        raise ValueError(f"{name}: event dimensions differ ({shown})")


Execute = Callable[[str, Callable[..., Any], list[Any]], Any]


def expose(generated: ModuleType, namespace: dict[str, Any], convert: Callable[[Any], Any],
           to_numpy: Callable[[Any], np.ndarray], validate_default: Callable[[], bool],
           backend: str, execute: Execute) -> list[str]:
    """Define one wrapper per generated function in ``namespace``; returns their names.

    ``convert`` turns an argument into the backend's array type (lists, Python floats);
    ``to_numpy`` gives a numpy view for validation; ``execute(name, formula, args)``
    evaluates the generated formula on the converted arguments (in float64, see the
    backends).
    """
    names = []
    for name, spec in generated.FUNCTIONS.items():
        raw = getattr(generated, name)
        declared = generated.PARAMETERS.get(name)
        namespace[name] = _wrapper(name, spec, declared, raw, convert, to_numpy, validate_default, backend,
                                   execute)
        names.append(name)
    return names


def _wrapper(name, spec, declared, raw, convert, to_numpy, validate_default, backend, execute):
    params = list(inspect.signature(raw).parameters)

    @functools.wraps(raw)
    def call(*args: Any, validate: bool | None = None, **kwargs: Any) -> Any:
        bound = dict(zip(params, args))
        bound.update(kwargs)
        bound = {k: convert(v) for k, v in bound.items()}
        missing = [p for p in params if p not in bound]
        if missing or len(bound) != len(params):
            raise TypeError(f"{name}() takes parameters {params}; missing {missing}")
        if validate if validate is not None else validate_default():
            if declared is not None:
                check_specialised(name, declared, bound, to_numpy)
            else:
                check_arguments(name, spec, bound, to_numpy)
        return execute(name, raw, [bound[p] for p in params])

    sig = inspect.signature(raw)
    call.__signature__ = sig.replace(parameters=[*sig.parameters.values(), inspect.Parameter(
        "validate", inspect.Parameter.KEYWORD_ONLY, default=None)])
    call.__doc__ = (raw.__doc__ or "") + (
        f"\n    {backend} backend. ``validate`` (default: "
        + ("on" if backend == "numpy" else "torch.distributions' validate_args default")
        + ") checks each parameter against its declared constraint and raises ValueError.\n")
    return call
