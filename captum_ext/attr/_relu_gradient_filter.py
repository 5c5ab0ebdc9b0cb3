"""FGVis's defence against adversarial evidence: gradient filtering at every ReLU call.

Wagner et al. (2019) bound each ReLU activation ``a`` of the perturbed image by the
activation ``a0`` of the clean image, ``min(0, a0) <= a <= max(0, a0)``, by filtering
the gradient in the backward pass while leaving the forward pass unchanged (SPEC
section 3). :class:`ReluGradientFilter` implements this with forward hooks on every
``nn.ReLU`` module:

* on the clean input (:meth:`ReluGradientFilter.record`) each *call* stores its output
  ``a0``; calls are counted per forward pass, so a module that is called several times
  (torchvision's ResNet blocks reuse one in-place ReLU) gets one bound per call;
* on perturbed inputs (:meth:`ReluGradientFilter.forward`) each call registers a
  tensor hook on its output that multiplies the incoming gradient by
  ``1[min(0, a0) <= a <= max(0, a0)]``, per example and per unit.

``restore=True`` departs from that pure indicator (SPEC section 3) for optimisations
that *start* outside the bounds: an out-of-bound activation also passes its gradient
when the gradient is positive (the descent step lowers the activation towards its
bound); only the gradient that would raise it further is blocked. Under the pure
indicator such an activation passes no gradient and nothing ever pulls it back. FGVis's
generation and repression games start from the reference, where many activations are
already above the clean image's, and other paths push them further out at no cost: on
the shipped shapes-world classifier the generation game still hallucinated 6 of 34
classes from constant images under the pure indicator (final-layer activations at five
times their bounds), and 0 of 34 with ``restore=True``. Games that start from the clean
image (every activation inside its bounds) keep the pure indicator: with the restoring
gate the deletion game's masks spread over the background (pointing 1.00 -> 0.44 on 18
shapes-world pairs).

Tensor hooks see the gradient with respect to the value the tensor had when the hook
was registered, so later in-place operations (``out += identity``) do not disturb them.
"""

from __future__ import annotations

from typing import Callable, List, Optional, Sequence

import torch
from torch import Tensor, nn
from torch.utils.hooks import RemovableHandle


def relu_modules(modules: Sequence[nn.Module]) -> List[nn.ReLU]:
    """Every distinct ``nn.ReLU`` inside ``modules`` (in registration order).

    Examples
    --------
    >>> net = nn.Sequential(nn.Linear(2, 2), nn.ReLU(), nn.Linear(2, 1))
    >>> len(relu_modules([net]))
    1
    """
    found = {id(m): m for top in modules for m in top.modules() if isinstance(m, nn.ReLU)}
    return list(found.values())


class ReluGradientFilter:
    """Record clean ReLU activations, then gate the gradient of perturbed ones.

    Use as a context manager: the hooks exist only inside the ``with`` block and are
    removed on every exit path, exceptions included.

    Parameters
    ----------
    modules : sequence of nn.Module
        The model(s) whose ``nn.ReLU`` modules are filtered.
    restore : bool
        Also pass the gradient that lowers an out-of-bound activation towards its bound
        (for optimisations that start outside the bounds; see the module docstring).
        Default False: the pure indicator.

    Raises
    ------
    ValueError
        When the modules contain no ``nn.ReLU`` (the defence would silently do nothing).

    Examples
    --------
    >>> net = nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Linear(4, 2))
    >>> x = torch.randn(2, 3)
    >>> with ReluGradientFilter([net]) as gate:
    ...     clean = gate.record(lambda: net(x))
    ...     x_adv = (x + 1).requires_grad_()
    ...     out = gate.forward(lambda: net(x_adv))
    >>> out.shape, len(net[1]._forward_hooks)
    (torch.Size([2, 2]), 0)
    """

    def __init__(self, modules: Sequence[nn.Module], restore: bool = False) -> None:
        self._relus = relu_modules(modules)
        if not self._relus:
            raise ValueError(
                "`defense=True` needs a model built from nn.ReLU modules (the gradient "
                "filter bounds every nn.ReLU call), but `forward_func` has none; pass "
                "defense=False (functional F.relu calls cannot be filtered)"
            )
        self.restore = bool(restore)
        self._handles: List[RemovableHandle] = []
        self._clean: List[Tensor] = []
        self._active: List[Tensor] = []
        self._mode: Optional[str] = None
        self._call = 0

    # ------------------------------------------------------------------ context
    def __enter__(self) -> "ReluGradientFilter":
        self._handles = [relu.register_forward_hook(self._hook) for relu in self._relus]
        return self

    def __exit__(self, *exc_info: object) -> None:
        for handle in self._handles:
            handle.remove()
        self._handles = []
        self._clean, self._active = [], []
        self._mode = None

    # ------------------------------------------------------------------ public
    def record(self, forward: Callable[[], Tensor]) -> Tensor:
        """Run ``forward`` (the clean input) without gradient and store every ReLU output."""
        self._clean = []
        with torch.no_grad():
            outputs = self._run("record", forward)
        self._active = self._clean
        return outputs

    def select(self, rows: Tensor) -> None:
        """Restrict the stored bounds to the examples ``rows`` of the recorded batch.

        Later :meth:`forward` calls receive only those examples, in that order.
        """
        self._active = [a0.index_select(0, rows) for a0 in self._clean]

    def forward(self, forward: Callable[[], Tensor]) -> Tensor:
        """Run ``forward`` (a perturbed batch) with the gradient filter in place."""
        if not self._clean:
            raise RuntimeError("ReluGradientFilter.forward called before record()")
        outputs = self._run("filter", forward)
        if self._call != len(self._active):
            raise RuntimeError(
                f"the model called nn.ReLU {self._call} times on the perturbed input but "
                f"{len(self._active)} times on the clean input; the defence needs the same "
                "sequence of ReLU calls (static control flow)"
            )
        return outputs

    # ------------------------------------------------------------------ internals
    def _run(self, mode: str, forward: Callable[[], Tensor]) -> Tensor:
        self._mode, self._call = mode, 0
        try:
            return forward()
        finally:
            self._mode = None

    def _hook(self, module: nn.Module, args: object, output: Tensor) -> None:
        if self._mode is None:
            return
        call, self._call = self._call, self._call + 1
        if self._mode == "record":
            # clone: an in-place op later in the network may overwrite the output.
            self._clean.append(output.detach().clone())
            return
        if call >= len(self._active):
            return  # reported after the forward pass, with the call count
        a0 = self._active[call]
        if a0.shape != output.shape:
            raise RuntimeError(
                f"ReLU call {call} returned shape {tuple(output.shape)} on the perturbed "
                f"input but {tuple(a0.shape)} on the clean input"
            )
        if output.requires_grad:
            # ReLU outputs are >= 0, so min(0, a0) = 0 <= a always holds and the bound
            # reduces to a <= max(0, a0) = a0. (Gating the pre-activation z instead gives
            # the same gradient: where relu(z) and z disagree, ReLU's own derivative is 0.)
            above = output.detach() > a0
            if self.restore:
                output.register_hook(lambda g, above=above: g.masked_fill(_raising(g, above), 0))
            else:
                output.register_hook(lambda g, above=above: g.masked_fill(above, 0))


def _raising(grad: Tensor, above: Tensor) -> Tensor:
    """``above & (grad < 0)``, the restoring gate's blocked units, with one allocation."""
    return (grad < 0).logical_and_(above)
