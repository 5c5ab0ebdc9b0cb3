"""FGVis's defence against adversarial evidence: gradient filtering at every activation call.

Wagner et al. (2019) bound each activation ``a`` of the perturbed image by the
activation ``a0`` of the clean image, ``min(0, a0) <= a <= max(0, a0)``, by filtering
the gradient in the backward pass while leaving the forward pass unchanged: the mask
may switch units off (towards 0) but not make them more active, or active with the
other sign, than in the image. The paper states it for ReLU networks; the argument does
not depend on the function, so :class:`ActivationGradientFilter` applies it at every
call of every elementwise activation module (:data:`ACTIVATIONS`: the ReLU family,
GELU, SiLU, Mish, Hardswish, the ELUs, the sigmoids used as gates in
squeeze-and-excitation blocks, tanh, softplus...), with forward hooks:

* on the clean input (:meth:`ActivationGradientFilter.record`) each *call* stores its
  output ``a0`` (for activations with negative outputs, its bounds ``min(0, a0)`` and
  ``max(0, a0)``); calls are counted per forward pass, so a module that is called several
  times (torchvision's ResNet blocks reuse one in-place ReLU) gets one bound per call;
* on perturbed inputs (:meth:`ActivationGradientFilter.forward`) each call registers a
  tensor hook on its output that multiplies the incoming gradient by
  ``1[min(0, a0) <= a <= max(0, a0)]``, per example and per unit.

An activation is included when it is elementwise and 0 is the output of an inactive
unit (``f(0) = 0``, or ``f(z) -> 0`` as ``z -> -inf``), so that the bound means "no
more evidence than in the image". Left out: functions that mix units (softmax, GLU,
attention), ``LogSigmoid`` (0 is its *most* active output) and ``Threshold`` (an
arbitrary replacement value).

Functional calls (``F.relu`` in DenseNet's ``forward``, ``x.sigmoid()``) have no module
to hook. :meth:`~ActivationGradientFilter.record` counts the activation *functions* the
model calls on the clean input (a ``torch.overrides.TorchFunctionMode`` sees every
``torch`` call, functional or not, made from Python) and compares that count with the
calls its hooks saw: each activation module makes exactly one such call, so any excess
is functional, and a warning says how many activations go unfiltered.

``restore=True`` departs from the pure indicator for optimisations that *start* outside
the bounds: an out-of-bound activation also passes its gradient when the descent step
moves it back towards its bound (towards 0); only the gradient that would push it
further out is blocked. Under the pure indicator such an activation passes no gradient
and nothing ever pulls it back. FGVis's generation and repression games start from the
reference, where many activations are already above the clean image's, and other paths
push them further out at no cost: on the shipped shapes-world classifier the generation
game still hallucinated 6 of 34 classes from constant images under the pure indicator
(final-layer activations at five times their bounds), and 0 of 34 with
``restore=True``. Games that start from the clean image (every activation inside its
bounds) keep the pure indicator: with the restoring gate the deletion game's masks
spread over the background (pointing 1.00 -> 0.44 on 18 shapes-world pairs).

Tensor hooks see the gradient with respect to the value the tensor had when the hook
was registered, so later in-place operations (``out += identity``) do not disturb them.
"""

from __future__ import annotations

import warnings
from collections import Counter
from collections.abc import Callable, Sequence
from typing import Any

import torch
from torch import Tensor, nn
from torch.overrides import TorchFunctionMode
from torch.utils.hooks import RemovableHandle

#: Elementwise activation modules whose calls the defence filters.
ACTIVATIONS = (
    nn.ReLU,
    nn.ReLU6,
    nn.Hardtanh,
    nn.LeakyReLU,
    nn.PReLU,
    nn.RReLU,
    nn.ELU,
    nn.CELU,
    nn.SELU,
    nn.GELU,
    nn.SiLU,
    nn.Mish,
    nn.Hardswish,
    nn.Hardsigmoid,
    nn.Sigmoid,
    nn.Tanh,
    nn.Softplus,
    nn.Softsign,
    nn.Tanhshrink,
    nn.Softshrink,
    nn.Hardshrink,
)

#: Activations whose outputs are never negative: the lower bound ``min(0, a0) = 0``
#: always holds, and one comparison finds the units out of bounds.
_NON_NEGATIVE = (nn.ReLU, nn.ReLU6, nn.Sigmoid, nn.Hardsigmoid, nn.Softplus)

#: Names (without a trailing ``_``) of the ``torch`` functions an elementwise activation
#: is computed with, as a ``TorchFunctionMode`` sees them.
ACTIVATION_FUNCTIONS = frozenset(
    {
        "relu",
        "relu6",
        "hardtanh",
        "leaky_relu",
        "prelu",
        "rrelu",
        "elu",
        "celu",
        "selu",
        "gelu",
        "silu",
        "mish",
        "hardswish",
        "hardsigmoid",
        "sigmoid",
        "tanh",
        "softplus",
        "softsign",
        "tanhshrink",
        "softshrink",
        "hardshrink",
    }
)


def activation_modules(modules: Sequence[nn.Module]) -> list[nn.Module]:
    """Every distinct elementwise activation module inside ``modules`` (registration order).

    Examples
    --------
    >>> net = nn.Sequential(nn.Linear(2, 2), nn.GELU(), nn.Linear(2, 2), nn.ReLU())
    >>> [type(m).__name__ for m in activation_modules([net])]
    ['GELU', 'ReLU']
    """
    found = {id(m): m for top in modules for m in top.modules() if isinstance(m, ACTIVATIONS)}
    return list(found.values())


class _UnhookedActivationCalls(TorchFunctionMode):
    """Count, by name, the :data:`ACTIVATION_FUNCTIONS` called outside activation modules.

    ``inside()`` says whether a hooked activation module is running (its own function
    call is the one the hook filters). Calls made inside another ``torch`` function
    (``torch.relu`` inside ``F.relu``) are not seen: the mode is off while a function
    it intercepted runs.
    """

    def __init__(self, inside: Callable[[], bool]) -> None:
        super().__init__()
        self.inside = inside
        self.calls: Counter = Counter()

    def __torch_function__(self, func: Callable, types: Any, args: Any = (), kwargs: Any = None):
        name = getattr(func, "__name__", "").rstrip("_")
        if name in ACTIVATION_FUNCTIONS and not self.inside():
            self.calls[name] += 1
        return func(*args, **(kwargs or {}))


class ActivationGradientFilter:
    """Record clean activations, then gate the gradient of perturbed ones.

    Use as a context manager: the hooks exist only inside the ``with`` block and are
    removed on every exit path, exceptions included.

    Parameters
    ----------
    modules : sequence of nn.Module
        The model(s) whose activation modules (:data:`ACTIVATIONS`) are filtered.
    restore : bool
        Also pass the gradient that moves an out-of-bound activation back towards its
        bound (for optimisations that start outside the bounds; see the module
        docstring). Default False: the pure indicator.

    Raises
    ------
    ValueError
        When the modules contain no activation module (the defence would do nothing).

    Warns
    -----
    UserWarning
        From :meth:`record`, when the model calls activation functions that no module
        hook sees (``F.relu``, ``x.sigmoid()``): those activations are not bounded.

    Examples
    --------
    >>> net = nn.Sequential(nn.Linear(3, 4), nn.SiLU(), nn.Linear(4, 2))
    >>> x = torch.randn(2, 3)
    >>> with ActivationGradientFilter([net]) as gate:
    ...     clean = gate.record(lambda: net(x))
    ...     x_adv = (x + 1).requires_grad_()
    ...     out = gate.forward(lambda: net(x_adv))
    >>> out.shape, len(net[1]._forward_hooks)
    (torch.Size([2, 2]), 0)
    """

    def __init__(self, modules: Sequence[nn.Module], restore: bool = False) -> None:
        self._activations = activation_modules(modules)
        if not self._activations:
            raise ValueError(
                "`defense=True` bounds the calls of elementwise activation modules "
                "(nn.ReLU, nn.GELU, nn.SiLU, nn.Hardswish, nn.Sigmoid, ...), but "
                "`forward_func` has none: functional calls such as F.relu cannot be "
                "hooked. Build the model from activation modules, or pass defense=False "
                "(no protection against adversarial evidence)"
            )
        self._non_negative = {id(m) for m in self._activations if isinstance(m, _NON_NEGATIVE)}
        self.restore = bool(restore)
        self._handles: list[RemovableHandle] = []
        # per call: (a0,) for non-negative activations, else (min(0, a0), max(0, a0))
        self._clean: list[tuple[Tensor, ...]] = []
        self._active: list[tuple[Tensor, ...]] = []
        self._mode: str | None = None
        self._call = 0
        self._depth = 0  # activation modules running (they may nest, e.g. in a wrapper)
        #: After :meth:`record`: activation-function calls no hook saw, by name.
        self.unfiltered: dict[str, int] = {}

    # ------------------------------------------------------------------ context
    def __enter__(self) -> ActivationGradientFilter:
        for module in self._activations:
            self._handles.append(module.register_forward_pre_hook(self._enter_module))
            self._handles.append(module.register_forward_hook(self._hook))
        return self

    def __exit__(self, *exc_info: object) -> None:
        for handle in self._handles:
            handle.remove()
        self._handles = []
        self._clean, self._active = [], []
        self._mode, self._depth = None, 0

    # ------------------------------------------------------------------ public
    def record(self, forward: Callable[[], Tensor]) -> Tensor:
        """Run ``forward`` (the clean input) without gradient and store every activation.

        Warns once if the model also calls activation functions no hook can see.
        """
        self._clean = []
        counter = _UnhookedActivationCalls(inside=lambda: self._depth > 0)
        with torch.no_grad(), counter:
            outputs = self._run("record", forward)
        self._active = self._clean
        self.unfiltered = dict(counter.calls)
        if self.unfiltered:
            missed = sum(self.unfiltered.values())
            names = ", ".join(f"{name} x{n}" for name, n in sorted(self.unfiltered.items()))
            warnings.warn(
                f"FGVis's defence bounds {len(self._clean)} activation-module calls, but "
                f"the model also made {missed} functional activation call(s) ({names}) "
                "that no hook can see (e.g. F.relu in DenseNet's forward): those "
                "activations are not bounded, and adversarial evidence can pass through "
                "them. Use activation modules (nn.ReLU, ...) to defend every activation",
                stacklevel=2,
            )
        return outputs

    def select(self, rows: Tensor) -> None:
        """Restrict the stored bounds to the examples ``rows`` of the recorded batch.

        Later :meth:`forward` calls receive only those examples, in that order.
        """
        self._active = [tuple(t.index_select(0, rows) for t in call) for call in self._clean]

    def forward(self, forward: Callable[[], Tensor]) -> Tensor:
        """Run ``forward`` (a perturbed batch) with the gradient filter in place."""
        if not self._clean:
            raise RuntimeError("ActivationGradientFilter.forward called before record()")
        outputs = self._run("filter", forward)
        if self._call != len(self._active):
            raise RuntimeError(
                f"the model called its activation modules {self._call} times on the "
                f"perturbed input but {len(self._active)} times on the clean input; the "
                "defence needs the same sequence of activation calls (static control flow)"
            )
        return outputs

    # ------------------------------------------------------------------ internals
    def _run(self, mode: str, forward: Callable[[], Tensor]) -> Tensor:
        self._mode, self._call, self._depth = mode, 0, 0
        try:
            return forward()
        finally:
            self._mode = None

    def _enter_module(self, module: nn.Module, args: object) -> None:
        self._depth += 1

    def _hook(self, module: nn.Module, args: object, output: Tensor) -> None:
        self._depth -= 1
        if self._mode is None:
            return
        call, self._call = self._call, self._call + 1
        if self._mode == "record":
            a0 = output.detach()
            if id(module) in self._non_negative:
                # clone: an in-place op later in the network may overwrite the output.
                self._clean.append((a0.clone(),))
            else:
                self._clean.append((a0.clamp(max=0), a0.clamp(min=0)))
            return
        if call >= len(self._active):
            return  # reported after the forward pass, with the call count
        bounds = self._active[call]
        if bounds[0].shape != output.shape:
            raise RuntimeError(
                f"activation call {call} ({type(module).__name__}) returned shape "
                f"{tuple(output.shape)} on the perturbed input but "
                f"{tuple(bounds[0].shape)} on the clean input"
            )
        if not output.requires_grad:
            return
        a = output.detach()
        if len(bounds) == 1:
            # a >= 0, so min(0, a0) = 0 <= a always holds: out of bounds means a > a0,
            # and moving further out means rising (a negative gradient).
            outside = a > bounds[0]
            if self.restore:
                output.register_hook(lambda g, out=outside: g.masked_fill(_rising(g, out), 0))
            else:
                output.register_hook(lambda g, out=outside: g.masked_fill(out, 0))
            return
        # clamp + compare, two kernels: a three-way torch.where made a defended pass of
        # EfficientNet-B0 (64 x 64, batch 8, CPU) 1.46 times slower than this.
        outside = torch.clamp(a, *bounds) != a
        if self.restore:
            # An out-of-bound unit is beyond max(0, a0) > 0 or below min(0, a0) < 0, so
            # it leaves its interval in the direction of its own sign: a - lr * g moves
            # it further out when g and a have opposite signs.
            positive = a > 0
            output.register_hook(
                lambda g, out=outside, pos=positive: g.masked_fill(
                    (g < 0).eq_(pos).logical_and_(out), 0
                )
            )
        else:
            output.register_hook(lambda g, out=outside: g.masked_fill(out, 0))


def _rising(grad: Tensor, outside: Tensor) -> Tensor:
    """``outside & (grad < 0)``, the restoring gate's blocked units, with one allocation."""
    return (grad < 0).logical_and_(outside)
