"""Leave a user's model exactly as it was found.

Attribution methods switch parameters' ``requires_grad`` off (so no parameter
gradient is computed), register hooks (FGVis's defence) or put a model in eval mode
(callbacks). :func:`preserved_state` snapshots everything such code may touch and puts
it back on every exit path, exceptions included.
"""

from __future__ import annotations

import contextlib
from typing import Callable, Iterator, List, Sequence

from torch import nn

_HOOK_DICTS = (
    "_forward_hooks",
    "_forward_hooks_with_kwargs",
    "_forward_hooks_always_called",
    "_forward_pre_hooks",
    "_forward_pre_hooks_with_kwargs",
    "_backward_hooks",
    "_backward_pre_hooks",
)


def modules_of(forward_func: Callable) -> List[nn.Module]:
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
