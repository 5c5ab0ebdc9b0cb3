"""Attribution maps computed safely from inside any Lightning loop.

:class:`AttributionSpec` names what computes the maps (an attribution class of
Captum or captum-ext, or a user ``attribution_fn`` such as an Explainer's own masks);
:func:`attribution_context` is the state every computation runs in.
"""

from __future__ import annotations

import contextlib
import importlib
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import torch
from captum.attr import LayerAttribution
from torch import Tensor, nn

from captum_ext.metrics import attribution_map
from captum_ext.utils import as_logits, preserved_state
from lightning_callbacks._batch import Samples, TargetPolicy, select_targets

#: A method: a class path or name (``"captum.attr.Saliency"``, ``"Saliency"``), an
#: attribution class, or any callable ``model -> object with .attribute``.
MethodLike = str | Callable[..., Any]
#: ``fn(pl_module, images, targets) -> maps``, or the name of a method of the module
#: called as ``pl_module.<name>(images, targets)``.
AttributionFn = str | Callable[[nn.Module, Tensor, Tensor], Tensor]
#: The network to explain: ``None`` (the LightningModule), a submodule name, or
#: ``fn(pl_module) -> nn.Module``.
ModelLike = None | str | Callable[[nn.Module], Callable[..., Tensor]]

#: Packages searched for a bare method name, in order.
METHOD_PACKAGES = ("captum_ext.attr", "captum.attr")


def import_method(method: str) -> Callable[..., Any]:
    """Import an attribution class from a class path or a bare name.

    Examples
    --------
    >>> import_method("Saliency").__module__
    'captum.attr._core.saliency'
    >>> import_method("captum_ext.attr.RandomAttribution").__name__
    'RandomAttribution'
    """
    if "." in method:
        module_name, _, name = method.rpartition(".")
        try:
            return getattr(importlib.import_module(module_name), name)
        except (ImportError, AttributeError) as error:
            raise ValueError(f"`method` {method!r} cannot be imported: {error}") from error
    for package in METHOD_PACKAGES:
        found = getattr(importlib.import_module(package), method, None)
        if found is not None:
            return found
    raise ValueError(f"`method` {method!r} is neither a class path nor a name in {METHOD_PACKAGES}")


@contextlib.contextmanager
def attribution_context(modules: Sequence[nn.Module], device: torch.device) -> Iterator[None]:
    """The state an attribution runs in, wherever a Lightning hook calls it.

    * ``torch.inference_mode(False)`` and ``torch.enable_grad()``: Lightning's
      evaluation and prediction loops run under inference mode (or ``no_grad``);
      tensors created inside this block are ordinary tensors.
    * Every submodule in eval mode and every parameter frozen, restored on exit with
      ``.grad`` and hooks (:func:`~captum_ext.utils.preserved_state`), so a
      call from a training hook leaves the run exactly as it was.
    * The global RNG state (CPU and the device's) is forked, so methods drawing from it
      do not change the training run's later random draws.
    """
    rng_devices = [device] if device.type == "cuda" else []
    with contextlib.ExitStack() as stack:
        stack.enter_context(torch.inference_mode(False))
        stack.enter_context(torch.enable_grad())
        stack.enter_context(torch.random.fork_rng(devices=rng_devices))
        stack.enter_context(preserved_state(modules, freeze=True, eval_mode=True))
        yield


def pixel_maps(attributions: Any, images: Tensor) -> Tensor:
    """``(N, 1, H, W)`` maps at the images' resolution from any method's output.

    Accepts Captum's tuple outputs, ``(N, C, H, W)`` attributions (averaged over
    channels), and lower-resolution maps such as Grad-CAM's (upsampled bilinearly).
    """
    if isinstance(attributions, (tuple, list)) and len(attributions) == 1:
        attributions = attributions[0]
    if not isinstance(attributions, Tensor):
        raise TypeError(f"the attribution must be a tensor, got {type(attributions).__name__}")
    if attributions.dim() == 3:
        attributions = attributions.unsqueeze(1)
    if attributions.dim() == 4 and attributions.shape[-2:] != images.shape[-2:]:
        attributions = LayerAttribution.interpolate(
            attributions.float(), tuple(images.shape[-2:]), "bilinear"
        )
    maps = attribution_map(attributions.detach().float())
    if maps.shape[0] != images.shape[0]:
        raise ValueError(f"the attribution has {maps.shape[0]} maps for {images.shape[0]} images")
    return maps


class AttributionSpec:
    """What computes the maps a callback logs or scores.

    Parameters
    ----------
    method : str or callable, optional
        An attribution class (Captum's or captum-ext's), its class path or bare name,
        or any callable ``model -> attributor`` with an ``attribute`` method.
    init_args : dict, optional
        Keyword arguments of the method's constructor. A ``layer`` given as a string
        is resolved as a submodule name of the model (for Captum's layer methods).
    attribute_args : dict, optional
        Keyword arguments of ``attribute`` (besides ``inputs`` and ``target``).
    attribution_fn : callable or str, optional
        Instead of ``method``: ``fn(pl_module, images, targets) -> maps``, or the name
        of a method of the LightningModule called as ``pl_module.<name>(images,
        targets)``. Use it to log a learned Explainer's own masks.
    model : str or callable, optional
        The network explained and scored: the LightningModule itself (default), a
        submodule name, or ``fn(pl_module) -> network``.
    """

    def __init__(
        self,
        method: MethodLike | None = None,
        init_args: dict[str, Any] | None = None,
        attribute_args: dict[str, Any] | None = None,
        attribution_fn: AttributionFn | None = None,
        model: ModelLike = None,
    ) -> None:
        if (method is None) == (attribution_fn is None):
            raise ValueError("pass exactly one of `method` and `attribution_fn`")
        if isinstance(method, str):
            method = import_method(method)
        if method is not None and not callable(method):
            raise TypeError(f"`method` must be a class or callable, got {type(method).__name__}")
        if attribution_fn is not None and not (
            callable(attribution_fn) or isinstance(attribution_fn, str)
        ):
            raise TypeError(
                "`attribution_fn` must be a callable or a method name, got "
                f"{type(attribution_fn).__name__}"
            )
        if model is not None and not (callable(model) or isinstance(model, str)):
            raise TypeError(
                f"`model` must be a submodule name or a callable, got {type(model).__name__}"
            )
        self.method = method
        self.init_args = dict(init_args or {})
        self.attribute_args = dict(attribute_args or {})
        self.attribution_fn = attribution_fn
        self.model_ref = model

    def __repr__(self) -> str:
        what = self.attribution_fn if self.method is None else self.method
        return f"AttributionSpec({getattr(what, '__name__', what)!r})"

    @property
    def name(self) -> str:
        """Short name of the method (for tags and file names)."""
        what = self.attribution_fn if self.method is None else self.method
        return str(getattr(what, "__name__", what))

    def model(self, pl_module: nn.Module) -> Callable[..., Tensor]:
        """The network explained and scored."""
        if self.model_ref is None:
            return pl_module
        if isinstance(self.model_ref, str):
            return pl_module.get_submodule(self.model_ref)
        return self.model_ref(pl_module)

    def guarded_modules(self, pl_module: nn.Module) -> list[nn.Module]:
        """The modules whose state an attribution must leave untouched."""
        model = self.model(pl_module)
        return [pl_module] + ([model] if isinstance(model, nn.Module) else [])

    def _attributor(self, model: Callable[..., Tensor]) -> Any:
        init_args = dict(self.init_args)
        if isinstance(init_args.get("layer"), str) and isinstance(model, nn.Module):
            init_args["layer"] = model.get_submodule(init_args["layer"])
        return self.method(model, **init_args)

    def maps(self, pl_module: nn.Module, images: Tensor, targets: Tensor) -> Tensor:
        """``(N, 1, H, W)`` maps (call inside :func:`attribution_context`)."""
        if self.method is None:
            if isinstance(self.attribution_fn, str):
                out = getattr(pl_module, self.attribution_fn)(images, targets)
            else:
                out = self.attribution_fn(pl_module, images, targets)
        else:
            attributor = self._attributor(self.model(pl_module))
            out = attributor.attribute(images, target=targets, **self.attribute_args)
        return pixel_maps(out, images)

    def explain(
        self, pl_module: nn.Module, samples: Samples, target: TargetPolicy
    ) -> tuple[Samples, Tensor, Tensor, Tensor]:
        """Targets and maps of ``samples`` against the module as it is now.

        The samples are copied to the module's device inside the attribution context
        (so they are never inference tensors) and everything returned is detached.

        Returns
        -------
        samples, targets, maps, logits
            The samples on the device, ``(N,)`` targets, ``(N, 1, H, W)`` maps and the
            model's ``(N, K)`` outputs on the samples.
        """
        device = _module_device(pl_module)
        with attribution_context(self.guarded_modules(pl_module), device):
            samples = samples.to(device)
            with torch.no_grad():
                logits = as_logits(self.model(pl_module)(samples.images), "model")
            targets = select_targets(samples, logits, target)
            maps = self.maps(pl_module, samples.images, targets)
        return samples, targets, maps, logits.detach()


def _module_device(module: nn.Module) -> torch.device:
    tensor = next(iter(module.parameters()), None)
    if tensor is None:
        tensor = next(iter(module.buffers()), None)
    return tensor.device if tensor is not None else torch.device("cpu")
