"""Captum's ``LayerGradCam`` upsampled to the input size (a baseline of the evaluations)."""

from __future__ import annotations

from typing import Any, Callable, List, Optional

import torch
from captum.attr import GradientAttribution, LayerAttribution, LayerGradCam
from captum.log import log_usage
from torch import Tensor, nn

from captum_ext._utils.model_state import modules_of
from captum_ext._utils.scores import as_logits
from captum_ext._utils.validation import TargetLike, check_inputs, check_model_device, format_target
from captum_ext.metrics._forward import forward_args, select_args


def _contains_conv(module: nn.Module) -> bool:
    return any(isinstance(m, nn.Conv2d) for m in module.modules())


def default_gradcam_layer(model: nn.Module) -> nn.Module:
    """The layer Grad-CAM looks at: ``model.gradcam_layer`` when the model names one.

    Otherwise the model's last direct child that contains an ``nn.Conv2d``: ``layer4``
    of a torchvision ResNet, ``features`` of a VGG, the last convolution of a plain
    ``nn.Sequential``.

    Examples
    --------
    >>> net = nn.Sequential(nn.Conv2d(3, 4, 3), nn.ReLU(), nn.Conv2d(4, 4, 3), nn.Flatten())
    >>> default_gradcam_layer(net) is net[2]
    True
    """
    if not isinstance(model, nn.Module):
        raise TypeError(f"`model` must be an nn.Module, got {type(model).__name__}")
    named = getattr(model, "gradcam_layer", None)
    if isinstance(named, nn.Module):
        return named
    children = [c for c in model.children() if _contains_conv(c)]
    if not children:
        raise ValueError("`model` has no nn.Conv2d child for Grad-CAM; pass `layer=`")
    return children[-1]


class UpsampledLayerGradCam(GradientAttribution):
    """Grad-CAM (Selvaraju et al. 2017) resized to the input, as an input attribution.

    Wraps ``captum.attr.LayerGradCam`` and upsamples its layer map with
    ``LayerAttribution.interpolate`` (bilinear by default), so that the output has the
    shape of ``inputs`` (the map expanded over channels) like every other attribution
    of the evaluation. ReLU is applied to the layer map by default, as in the paper
    (Captum's default is not to).

    Parameters
    ----------
    forward_func : callable or nn.Module
        The classifier.
    layer : nn.Module, optional
        The layer; default :func:`default_gradcam_layer` of the model.
    interpolate_mode : str
        Mode of ``torch.nn.functional.interpolate``.
    relu_attributions : bool
        Clamp the layer map at 0.
    device_ids : list of int, optional
        As Captum (DataParallel models).

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
        layer: Optional[nn.Module] = None,
        interpolate_mode: str = "bilinear",
        relu_attributions: bool = True,
        device_ids: Optional[List[int]] = None,
    ) -> None:
        if layer is None:
            modules = modules_of(forward_func)
            if not modules:
                raise ValueError("`layer` is required when `forward_func` is not a module")
            layer = default_gradcam_layer(modules[0])
        super().__init__(forward_func)
        self.gradcam = LayerGradCam(forward_func, layer, device_ids)
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
        inputs: Tensor,
        target: TargetLike = None,
        additional_forward_args: Any = None,
        attribute_to_layer_input: bool = False,
        return_map: bool = False,
    ) -> Tensor:
        """Upsampled Grad-CAM of ``inputs`` for ``target``.

        Parameters
        ----------
        inputs : Tensor
            ``(N, C, H, W)`` images.
        target : int, list of int or Tensor
            Target class(es), Captum semantics.
        additional_forward_args : any, optional
            Extra arguments to ``forward_func``.
        attribute_to_layer_input : bool
            Use the layer's input instead of its output (Captum's option).
        return_map : bool
            Return the ``(N, 1, H, W)`` map instead of the channel-expanded attribution.
        """
        inputs = check_inputs(inputs)
        for module in modules_of(self.forward_func):
            check_model_device(module, inputs)
        args = forward_args(additional_forward_args)
        first = torch.zeros(1, dtype=torch.long, device=inputs.device)
        with torch.no_grad():  # one image, to range-check the target
            outputs = self.forward_func(inputs[:1], *select_args(args, first, inputs.shape[0]))
        num_classes = as_logits(outputs).shape[1]
        target = format_target(target, inputs.shape[0], num_classes, inputs.device)
        layer_map = self.gradcam.attribute(
            inputs,
            target=target,
            additional_forward_args=additional_forward_args,
            attribute_to_layer_input=attribute_to_layer_input,
            relu_attributions=self.relu_attributions,
        )
        attr_map = LayerAttribution.interpolate(
            layer_map, tuple(inputs.shape[2:]), self.interpolate_mode
        ).detach()
        if return_map:
            return attr_map
        return attr_map.expand(-1, inputs.shape[1], -1, -1).contiguous()
