"""Captum's ``LayerGradCam`` upsampled to the input size (a baseline of the evaluations)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from captum.attr import GradientAttribution, LayerAttribution, LayerGradCam
from captum.log import log_usage
from torch import Tensor, nn

from captum_ext._utils.forward import forward_args, select_args
from captum_ext._utils.model_state import modules_of, preserved_state, warn_if_training
from captum_ext._utils.scores import as_logits
from captum_ext._utils.validation import TargetLike, check_inputs, check_model_device, format_target

#: Layers that only resample the map before them: Grad-CAM looks at the map they resample.
_POOLING = (
    nn.MaxPool2d,
    nn.AvgPool2d,
    nn.LPPool2d,
    nn.FractionalMaxPool2d,
    nn.AdaptiveMaxPool2d,
    nn.AdaptiveAvgPool2d,
)


def _is_feature_map(output: Any) -> bool:
    return isinstance(output, Tensor) and output.dim() == 4 and min(output.shape[2:]) > 1


def _module_outputs(
    model: nn.Module, inputs: Tensor, additional_forward_args: Any
) -> list[tuple[str, nn.Module, Any]]:
    """``(name, module, output)`` of every module call of one forward pass on the first
    example, in the order the calls finish (a container after its children)."""
    names = {id(m): name for name, m in model.named_modules()}
    calls: list[tuple[str, nn.Module, Any]] = []

    def record(module: nn.Module, _: Any, output: Any) -> None:
        calls.append((names[id(module)], module, output))

    args = forward_args(additional_forward_args)
    first = torch.zeros(1, dtype=torch.long, device=inputs.device)
    # eval mode: the probe must not move BatchNorm statistics; the hooks go on exit.
    with preserved_state([model], eval_mode=True), torch.no_grad():
        for module in model.modules():
            module.register_forward_hook(record)
        model(inputs[:1], *select_args(args, first, inputs.shape[0]))
    return calls


def default_gradcam_layer(
    model: nn.Module, inputs: Tensor | None = None, additional_forward_args: Any = None
) -> nn.Module:
    """The layer Grad-CAM looks at: ``model.gradcam_layer`` when the model names one.

    Otherwise the layer is found from what the model does, with one forward pass on
    the first example of ``inputs`` (no gradient, eval mode, the model left as it was):
    the module whose output is the last ``(N, C, h, w)`` feature map the model computes
    with ``h, w > 1``. Among the modules that return that same tensor (a block, its
    stage, an in-place ReLU) the outermost is taken; maps made by a pooling layer (or
    returned through one, as VGG's ``features`` ends in a max-pool) are passed over,
    because pooling only resamples the map before it. So a torchvision ResNet gives
    ``layer4``, a VGG the last ReLU of ``features`` before its final max-pool, and a
    wrapper (a normalising ``nn.Sequential``, a LightningModule holding the network)
    the same layer as the network it wraps. A 1 x 1 map has no layout to show: on
    inputs so small that the last stage is 1 x 1, the stage before it is taken.

    Parameters
    ----------
    model : nn.Module
        The classifier.
    inputs : Tensor, optional
        ``(N, C, H, W)`` images the model takes (only the first is used). Required
        unless the model has a ``gradcam_layer``.
    additional_forward_args : any, optional
        Extra arguments of the model, as in Captum.

    Returns
    -------
    nn.Module

    Raises
    ------
    ValueError
        When the model computes no 4-D feature map with ``h, w > 1``, or goes on with
        token sequences after it (a vision transformer's patch embedding is not a
        feature map to explain): then name the layer with ``layer=``.

    Examples
    --------
    >>> net = nn.Sequential(nn.Conv2d(3, 4, 3), nn.ReLU(), nn.Conv2d(4, 4, 3), nn.Flatten())
    >>> default_gradcam_layer(net, torch.rand(1, 3, 8, 8)) is net[2]
    True
    """
    if not isinstance(model, nn.Module):
        raise TypeError(f"`model` must be an nn.Module, got {type(model).__name__}")
    named = getattr(model, "gradcam_layer", None)
    if isinstance(named, nn.Module):
        return named
    if not isinstance(inputs, Tensor):
        raise TypeError(
            "`inputs` (a Tensor of images) is needed to find the Grad-CAM layer of a model "
            "without a `gradcam_layer`; or pass `layer=`"
        )
    calls = _module_outputs(model, inputs, additional_forward_args)
    pooled = {id(out) for _, module, out in calls if isinstance(module, _POOLING)}
    maps = [
        i for i, (_, _, out) in enumerate(calls) if _is_feature_map(out) and id(out) not in pooled
    ]
    if not maps:
        raise ValueError(
            f"{type(model).__name__} computes no (N, C, h, w) feature map with h, w > 1 on "
            f"inputs of shape {tuple(inputs.shape)}; pass the Grad-CAM layer with `layer=`"
        )
    name, layer, _ = calls[maps[-1]]
    later = calls[maps[-1] + 1 :]
    tokens = [n for n, _, out in later if isinstance(out, Tensor) and out.dim() == 3]
    if tokens:
        raise ValueError(
            f"{type(model).__name__} goes on with token sequences ({tokens[0]!r}) after its last "
            f"feature map ({name!r}), as a vision transformer does; Grad-CAM needs a spatial "
            "map: pass the layer with `layer=`"
        )
    return layer


class UpsampledLayerGradCam(GradientAttribution):
    """Grad-CAM (Selvaraju et al. 2017) resized to the input, as an input attribution.

    Wraps ``captum.attr.LayerGradCam`` and upsamples its layer map with
    ``LayerAttribution.interpolate`` (bilinear by default), so that the output has the
    shape of ``inputs`` (the map expanded over channels) like every other attribution
    of the evaluation. ReLU is applied to the layer map by default, as in the paper
    (Captum's default is not to).

    The constructor and ``attribute`` take ``captum.attr.LayerGradCam``'s arguments in
    its order (``forward_func, layer, device_ids``; ``inputs, target,
    additional_forward_args, attribute_to_layer_input``); the others are keyword-only.

    Parameters
    ----------
    forward_func : callable or nn.Module
        The classifier.
    layer : nn.Module, optional
        The layer; default :func:`default_gradcam_layer` of the model, found at the
        first ``attribute`` call from its inputs and kept for later calls.
    device_ids : list of int, optional
        As Captum (DataParallel models).
    interpolate_mode : str
        Mode of ``torch.nn.functional.interpolate``.
    relu_attributions : bool
        Clamp the layer map at 0.

    References
    ----------
    R. R. Selvaraju, M. Cogswell, A. Das, R. Vedantam, D. Parikh and D. Batra, "Grad-CAM:
    Visual Explanations from Deep Networks via Gradient-based Localization", IEEE
    International Conference on Computer Vision (ICCV), 2017.
    <https://arxiv.org/abs/1610.02391>

    Examples
    --------
    >>> from captum_ext.models.shapes_classifier import ShapesClassifier
    >>> model = ShapesClassifier(width=4).eval()
    >>> UpsampledLayerGradCam(model).attribute(torch.rand(2, 3, 32, 32), target=1).shape
    torch.Size([2, 3, 32, 32])
    """

    def __init__(
        self,
        forward_func: Callable[..., Tensor],
        layer: nn.Module | None = None,
        device_ids: list[int] | None = None,
        *,
        interpolate_mode: str = "bilinear",
        relu_attributions: bool = True,
    ) -> None:
        if layer is None and not modules_of(forward_func):
            raise ValueError("`layer` is required when `forward_func` is not a module")
        super().__init__(forward_func)
        #: The layer explained (None until the first ``attribute`` call finds it).
        self.layer = layer
        self.device_ids = device_ids
        self.interpolate_mode = interpolate_mode
        self.relu_attributions = relu_attributions

    @property
    def multiplies_by_inputs(self) -> bool:
        return False

    def has_convergence_delta(self) -> bool:
        return False

    @log_usage()
    def attribute(
        self,
        inputs: Tensor | tuple[Tensor],
        target: TargetLike = None,
        additional_forward_args: Any = None,
        attribute_to_layer_input: bool = False,
        *,
        return_map: bool = False,
    ) -> Tensor | tuple[Tensor]:
        """Upsampled Grad-CAM of ``inputs`` for ``target``.

        Parameters
        ----------
        inputs : Tensor or tuple of one Tensor
            ``(N, C, H, W)`` images (a tuple gives a tuple back, as in Captum).
        target : int, list of int or Tensor
            Target class(es), Captum semantics.
        additional_forward_args : any, optional
            Extra arguments to ``forward_func``.
        attribute_to_layer_input : bool
            Use the layer's input instead of its output (Captum's option).
        return_map : bool
            Return the ``(N, 1, H, W)`` map instead of the channel-expanded attribution.
        """
        inputs_are_tuple = isinstance(inputs, tuple)
        inputs = check_inputs(inputs)
        for module in modules_of(self.forward_func):
            check_model_device(module, inputs)
        warn_if_training(modules_of(self.forward_func), type(self).__name__, stacklevel=3)
        args = forward_args(additional_forward_args)
        first = torch.zeros(1, dtype=torch.long, device=inputs.device)
        with torch.no_grad():  # one image, to range-check the target
            outputs = self.forward_func(inputs[:1], *select_args(args, first, inputs.shape[0]))
        num_classes = as_logits(outputs).shape[1]
        target = format_target(target, inputs.shape[0], num_classes, inputs.device)
        if self.layer is None:
            self.layer = default_gradcam_layer(
                modules_of(self.forward_func)[0], inputs, additional_forward_args
            )
        gradcam = LayerGradCam(self.forward_func, self.layer, self.device_ids)
        layer_map = gradcam.attribute(
            inputs,
            target=target,
            additional_forward_args=additional_forward_args,
            attribute_to_layer_input=attribute_to_layer_input,
            relu_attributions=self.relu_attributions,
        )
        attr_map = LayerAttribution.interpolate(
            layer_map, tuple(inputs.shape[2:]), self.interpolate_mode
        ).detach()
        if not return_map:
            attr_map = attr_map.expand(-1, inputs.shape[1], -1, -1).contiguous()
        return (attr_map,) if inputs_are_tuple else attr_map
