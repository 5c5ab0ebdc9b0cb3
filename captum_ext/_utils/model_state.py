"""Leave a user's model exactly as it was found.

Attribution methods switch parameters' ``requires_grad`` off (so no parameter
gradient is computed), register hooks (FGVis's defence) or put a model in eval mode
(callbacks). :func:`preserved_state` snapshots everything such code may touch and puts
it back on every exit path, exceptions included.
"""

from __future__ import annotations

import contextlib
import warnings
from collections.abc import Callable, Iterator, Sequence

from torch import nn
from torch.nn.modules.batchnorm import _NormBase
from torch.nn.modules.dropout import _DropoutNd

#: Layers that behave differently in train mode.
_MODE_LAYERS = (_NormBase, _DropoutNd)

_HOOK_DICTS = (
    "_forward_hooks",
    "_forward_hooks_with_kwargs",
    "_forward_hooks_always_called",
    "_forward_pre_hooks",
    "_forward_pre_hooks_with_kwargs",
    "_backward_hooks",
    "_backward_pre_hooks",
)


def modules_of(forward_func: Callable) -> list[nn.Module]:
    """The ``nn.Module`` objects behind a forward function.

    A module itself, the module a bound method belongs to (``model.forward``), or
    none for an arbitrary callable.

    Examples
    --------
    >>> net = nn.Linear(2, 2)
    >>> modules_of(net) == [net] and modules_of(net.forward) == [net]
    True
    """
    if isinstance(forward_func, nn.Module):
        return [forward_func]
    owner = getattr(forward_func, "__self__", None)
    if isinstance(owner, nn.Module):
        return [owner]
    return []


def warn_if_training(modules: Sequence[nn.Module], method: str, stacklevel: int = 2) -> None:
    """Warn (once per call) when a model runs attribution with train-mode layers.

    A normalisation layer in train mode (BatchNorm) normalises with the statistics of
    each perturbed batch and overwrites its running statistics with them; a dropout
    layer in train mode drops activations at random. Captum does the same without a
    word. The mode is the user's: it is never changed here, only reported.

    Parameters
    ----------
    modules : sequence of nn.Module
        The model(s) the method calls.
    method : str
        The method's name, for the message.
    stacklevel : int
        Passed to ``warnings.warn``, counted from the caller of this function.

    Examples
    --------
    >>> import warnings
    >>> net = nn.Sequential(nn.Linear(2, 2), nn.BatchNorm1d(2))
    >>> with warnings.catch_warnings(record=True) as caught:
    ...     warnings.simplefilter("always")
    ...     warn_if_training([net], "Occlusion")
    ...     warn_if_training([net.eval()], "Occlusion")
    >>> len(caught), net.training
    (1, False)
    """
    training = [
        m for top in modules for m in top.modules() if m.training and isinstance(m, _MODE_LAYERS)
    ]
    if not training:
        return
    names = ", ".join(sorted({type(m).__name__ for m in training}))
    effects = []
    if any(isinstance(m, _NormBase) for m in training):
        effects.append(
            "normalisation layers use the statistics of the perturbed batches and overwrite "
            "their running statistics with them (the model is changed)"
        )
    if any(isinstance(m, _DropoutNd) for m in training):
        effects.append("dropout is active (the attributions are random)")
    warnings.warn(
        f"{method}: the model is in train mode ({names}): {'; '.join(effects)}. Call "
        "model.eval() before attributing; attribute() leaves the mode as it finds it.",
        UserWarning,
        stacklevel=stacklevel + 1,
    )


@contextlib.contextmanager
def preserved_state(
    modules: Sequence[nn.Module], *, freeze: bool = False, eval_mode: bool = False
) -> Iterator[None]:
    """Restore train/eval flags, ``requires_grad`` flags, ``.grad`` and hooks on exit.

    Parameters
    ----------
    modules : sequence of nn.Module
        The modules to protect (all their submodules are included).
    freeze : bool
        Inside the block, set ``requires_grad=False`` on every parameter, so that
        backward passes compute input gradients only.
    eval_mode : bool
        Inside the block, put every submodule in eval mode.

    Examples
    --------
    >>> net = nn.Sequential(nn.Linear(2, 2), nn.Dropout()).train()
    >>> with preserved_state([net], freeze=True, eval_mode=True):
    ...     assert not net.training and not net[0].weight.requires_grad
    >>> net.training, net[0].weight.requires_grad
    (True, True)
    """
    submodules = {id(m): m for top in modules for m in top.modules()}.values()
    params = {id(p): p for m in submodules for p in m.parameters(recurse=False)}.values()
    training = [(m, m.training) for m in submodules]
    requires_grad = [(p, p.requires_grad) for p in params]
    grads = [(p, p.grad) for p in params]
    hooks = [
        (getattr(m, name), set(getattr(m, name).keys()))
        for m in submodules
        for name in _HOOK_DICTS
        if hasattr(m, name)
    ]
    try:
        if freeze:
            for p, _ in requires_grad:
                p.requires_grad_(False)
        if eval_mode:
            for m, _ in training:
                m.training = False
        yield
    finally:
        for hook_dict, keys in hooks:
            for key in [k for k in hook_dict.keys() if k not in keys]:
                del hook_dict[key]
        for m, flag in training:
            m.training = flag
        for p, flag in requires_grad:
            p.requires_grad_(flag)
        for p, grad in grads:
            if p.grad is not grad:
                p.grad = grad
