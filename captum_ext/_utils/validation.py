"""Argument checks shared by every public entry point.

Each check raises ``TypeError`` (wrong type or dtype) or ``ValueError`` (wrong value
or shape) with a message that names the argument, so a user sees *which* argument
was wrong and what was expected.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import torch
from torch import Tensor, nn

TargetLike = None | int | Tensor | Sequence[int]


def check_tensor(
    value: object,
    name: str,
    *,
    ndim: int | None = None,
    floating: bool = True,
    finite: bool = True,
) -> Tensor:
    """Check that ``value`` is a (floating, finite) tensor of rank ``ndim``.

    Parameters
    ----------
    value : object
        The argument to check.
    name : str
        The argument's name, used in error messages.
    ndim : int, optional
        Required rank.
    floating : bool
        Require a floating-point dtype.
    finite : bool
        Reject NaN and infinity (only checked for floating tensors).

    Returns
    -------
    Tensor
        ``value`` itself.

    Examples
    --------
    >>> check_tensor(torch.zeros(2, 3, 8, 8), "inputs", ndim=4).shape
    torch.Size([2, 3, 8, 8])
    """
    if not isinstance(value, Tensor):
        raise TypeError(f"`{name}` must be a torch.Tensor, got {type(value).__name__}")
    if ndim is not None and value.dim() != ndim:
        raise ValueError(f"`{name}` must have {ndim} dimensions, got shape {tuple(value.shape)}")
    if floating and not value.is_floating_point():
        raise TypeError(f"`{name}` must be a floating-point tensor, got dtype {value.dtype}")
    if finite and value.is_floating_point() and not bool(torch.isfinite(value).all()):
        raise ValueError(f"`{name}` contains NaN or infinite values")
    return value


def unwrap_single(value: Any, name: str) -> Any:
    """The element of a one-element tuple, other values as they are.

    Captum passes per-input arguments (``baselines``, ``feature_mask``) as tuples with
    one element per input tensor; mask methods take one input tensor.

    Examples
    --------
    >>> unwrap_single((0.5,), "baselines"), unwrap_single(0.5, "baselines")
    (0.5, 0.5)
    """
    if isinstance(value, tuple):
        if len(value) != 1:
            raise ValueError(
                f"`{name}` is a tuple of {len(value)} elements but there is one input tensor; "
                "pass one value, alone or in a 1-tuple"
            )
        (value,) = value
    return value


def check_inputs(inputs: object, name: str = "inputs") -> Tensor:
    """Check an image batch ``(N, C, H, W)``: float, finite, non-empty.

    Examples
    --------
    >>> check_inputs(torch.rand(1, 3, 16, 16)).shape
    torch.Size([1, 3, 16, 16])
    """
    if isinstance(inputs, tuple):
        if len(inputs) != 1:
            raise TypeError(
                f"`{name}` must be a single (N, C, H, W) tensor; mask methods do not "
                f"support {len(inputs)} input tensors"
            )
        inputs = inputs[0]
    inputs = check_tensor(inputs, name, ndim=4)
    if inputs.shape[0] == 0 or inputs.shape[2] == 0 or inputs.shape[3] == 0:
        raise ValueError(f"`{name}` must be non-empty, got shape {tuple(inputs.shape)}")
    return inputs


def check_mask(mask: object, inputs: Tensor, name: str = "mask", *, binary: bool = False) -> Tensor:
    """Check a per-pixel mask against an ``(N, C, H, W)`` batch.

    The mask must be ``(N, 1, H, W)`` (or ``(N, H, W)``, which is unsqueezed), on the
    same device as ``inputs``. With ``binary=True`` it must be ``bool``; otherwise a
    bool mask is converted to the inputs' dtype.

    Examples
    --------
    >>> x = torch.rand(2, 3, 8, 8)
    >>> check_mask(torch.ones(2, 8, 8, dtype=torch.bool), x, binary=True).shape
    torch.Size([2, 1, 8, 8])
    """
    if not isinstance(mask, Tensor):
        raise TypeError(f"`{name}` must be a torch.Tensor, got {type(mask).__name__}")
    if mask.dim() == 3:
        mask = mask.unsqueeze(1)
    n, _, h, w = inputs.shape
    if mask.dim() != 4 or tuple(mask.shape) != (n, 1, h, w):
        raise ValueError(
            f"`{name}` must have shape ({n}, 1, {h}, {w}) to match the inputs, "
            f"got {tuple(mask.shape)}"
        )
    check_same_device(inputs, mask, names=("inputs", name))
    if binary:
        if mask.dtype != torch.bool:
            raise TypeError(f"`{name}` must be a bool tensor (True = hole), got {mask.dtype}")
        return mask
    if mask.dtype == torch.bool:
        return mask.to(inputs.dtype)
    return check_tensor(mask, name)


def check_same_device(*tensors: Tensor, names: Sequence[str]) -> None:
    """Raise ``ValueError`` when the tensors live on different devices."""
    devices = [t.device for t in tensors]
    if any(d != devices[0] for d in devices[1:]):
        listed = ", ".join(f"`{n}` on {d}" for n, d in zip(names, devices))
        raise ValueError(f"tensors must be on the same device: {listed}")


def check_model_device(model: object, inputs: Tensor, name: str = "forward_func") -> None:
    """Raise ``ValueError`` when a module's parameters are not on the inputs' device."""
    if not isinstance(model, nn.Module):
        return
    param = next(iter(model.parameters()), None)
    if param is None:
        param = next(iter(model.buffers()), None)
    if param is not None and param.device != inputs.device:
        raise ValueError(
            f"`inputs` are on {inputs.device} but `{name}` is on {param.device}; "
            "move them to the same device"
        )


def check_int(value: object, name: str) -> int:
    """Check an integer argument (a ``bool`` is not one)."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"`{name}` must be an int, got {type(value).__name__}")
    return value


def check_positive_int(value: object, name: str, minimum: int = 1) -> int:
    """Check an integer argument ``>= minimum``."""
    if check_int(value, name) < minimum:
        raise ValueError(f"`{name}` must be >= {minimum}, got {value}")
    return value


def check_non_negative(value: object, name: str) -> float:
    """Check a real argument ``>= 0`` (finite)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"`{name}` must be a number, got {type(value).__name__}")
    if not value >= 0 or value == float("inf"):
        raise ValueError(f"`{name}` must be a finite number >= 0, got {value}")
    return float(value)


def check_choice(value: object, name: str, choices: Iterable[str]) -> str:
    """Check that a string argument is one of ``choices``."""
    choices = tuple(choices)
    if value not in choices:
        raise ValueError(f"`{name}` must be one of {choices}, got {value!r}")
    return value  # type: ignore[return-value]


def format_target(
    target: TargetLike, num_examples: int, num_classes: int | None, device: torch.device
) -> Tensor:
    """Normalise a Captum-style ``target`` to a ``(N,)`` long tensor.

    Accepts an ``int``, a 0-d tensor, or a list / 1-d tensor of length ``N`` (one
    target per example). ``None`` is only accepted for single-output models
    (``num_classes == 1``), where it means class 0.

    Parameters
    ----------
    target : int, Tensor, sequence of int or None
        The target class(es).
    num_examples : int
        Batch size ``N``.
    num_classes : int or None
        Number of model outputs; when given, targets are range-checked.
    device : torch.device
        Device of the returned tensor.

    Examples
    --------
    >>> format_target(3, 2, 6, torch.device("cpu"))
    tensor([3, 3])
    >>> format_target([0, 5], 2, 6, torch.device("cpu"))
    tensor([0, 5])
    """
    if target is None:
        if num_classes == 1:
            return torch.zeros(num_examples, dtype=torch.long, device=device)
        raise ValueError(
            "`target` is None but the model has "
            f"{num_classes if num_classes is not None else 'several'} outputs; pass the "
            "class to attribute as `target` (an int, or one int per example)"
        )
    if isinstance(target, bool):
        raise TypeError("`target` must be an int, a list of ints or a tensor, got bool")
    if isinstance(target, int):
        out = torch.full((num_examples,), target, dtype=torch.long, device=device)
    elif isinstance(target, Tensor):
        if target.is_floating_point() or target.is_complex() or target.dtype == torch.bool:
            raise TypeError(f"`target` must be an integer tensor, got dtype {target.dtype}")
        if target.dim() == 0:
            out = target.reshape(1).expand(num_examples)
        elif target.dim() == 1:
            out = target
        else:
            raise ValueError(
                "`target` must be an int, a 0-d tensor or a 1-d tensor with one class per "
                f"example; got shape {tuple(target.shape)}"
            )
        out = out.to(device=device, dtype=torch.long)
    elif isinstance(target, (list, tuple)):
        if not all(isinstance(t, int) and not isinstance(t, bool) for t in target):
            raise TypeError(
                "`target` as a list must hold one int per example; tuple targets "
                "(multi-dimensional outputs) are not supported by mask methods"
            )
        out = torch.tensor(list(target), dtype=torch.long, device=device)
    else:
        raise TypeError(
            f"`target` must be an int, a list of ints or a tensor, got {type(target).__name__}"
        )
    if out.numel() != num_examples:
        raise ValueError(
            f"`target` has {out.numel()} entries but the batch has {num_examples} examples"
        )
    if num_classes is not None and out.numel() > 0:
        lo, hi = int(out.min()), int(out.max())
        if lo < 0 or hi >= num_classes:
            bad = lo if lo < 0 else hi
            raise ValueError(f"`target` {bad} is out of range for {num_classes} classes")
    return out.contiguous()
