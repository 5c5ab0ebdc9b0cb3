"""Attribution methods the evaluation harness runs, and the registry of defaults.

A method is a :class:`MethodSpec`: a name, a builder that takes the classifier and
returns a Captum ``Attribution``, the keyword arguments of its ``attribute`` call and
the number of image-class pairs per call. The registry :data:`METHODS` maps a short name
to a factory that makes the spec for a :class:`MethodContext` (image size, channels,
score, image space), so scale-dependent parameters follow the images. Adding a method
is one entry::

    METHODS["my_method"] = lambda ctx: MethodSpec(
        "MyMethod", lambda model: MyMethod(model, score=ctx.score), {"steps": 100}, 8
    )
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Dict, List, Mapping, Optional, Sequence, Tuple

from captum.attr import Attribution, IntegratedGradients, Occlusion
from torch import nn

from captum_ext._utils.scores import check_score
from captum_ext.attr import RandomAttribution, UpsampledLayerGradCam
from captum_ext.fillers.image_space import ImageSpace


@dataclass
class MethodSpec:
    """How the harness builds and calls one attribution method.

    Attributes
    ----------
    name : str
        Row label in the report.
    build : callable
        ``build(model) -> Attribution`` (ours or any Captum attribution).
    attribute_kwargs : mapping
        Extra keyword arguments of ``attribute(inputs, target=..., **kwargs)``.
    batch_size : int
        Image-class pairs per ``attribute`` call.
    """

    name: str
    build: Callable[[nn.Module], Attribution]
    attribute_kwargs: Mapping[str, Any] = field(default_factory=dict)
    batch_size: int = 16


@dataclass(frozen=True)
class MethodContext:
    """What a method factory may depend on.

    Attributes
    ----------
    image_size : (int, int)
        ``(H, W)`` of the evaluated images.
    channels : int
        Image channels.
    score : str
        ``"softmax"`` or ``"sigmoid"`` (multi-label classifiers), for methods taking
        ``score=``.
    space : ImageSpace
        The classifier's normalisation, for methods working in pixel space.
    """

    image_size: Tuple[int, int]
    channels: int = 3
    score: str = "softmax"
    space: ImageSpace = field(default_factory=ImageSpace)

    def scaled(self, pixels_at_224: float) -> int:
        """A length given at 224 x 224 scaled to these images (at least 1 px)."""
        return max(1, round(pixels_at_224 * min(self.image_size) / 224))


MethodFactory = Callable[[MethodContext], MethodSpec]


def occlusion(ctx: MethodContext) -> MethodSpec:
    """Captum ``Occlusion``: window 1/8 and stride 1/16 of the image side, baseline 0.

    At 64 x 64 this is CALIBRATION.md's 8 x 8 window with stride 4 (225 windows at any
    size); the baseline 0 is the mean colour of a normalised input space.
    """
    window, stride = ctx.scaled(28), ctx.scaled(14)
    return MethodSpec(
        "Occlusion",
        Occlusion,
        {
            "sliding_window_shapes": (ctx.channels, window, window),
            "strides": (ctx.channels, stride, stride),
            "baselines": 0.0,
            "perturbations_per_eval": 32,
        },
        batch_size=8,
    )


def gradcam(ctx: MethodContext) -> MethodSpec:
    """Grad-CAM at ``model.gradcam_layer`` (or the last conv block), upsampled bilinearly."""
    return MethodSpec("GradCAM", UpsampledLayerGradCam, {}, batch_size=64)


def integrated_gradients(ctx: MethodContext) -> MethodSpec:
    """Captum ``IntegratedGradients``, 32 steps from the all-0 (mean colour) baseline."""
    return MethodSpec(
        "IntegratedGradients",
        IntegratedGradients,
        {"n_steps": 32, "internal_batch_size": 256},
        batch_size=8,
    )


def random_baseline(ctx: MethodContext) -> MethodSpec:
    """:class:`~captum_ext.attr.RandomAttribution`, the floor every method must beat."""
    return MethodSpec("Random", RandomAttribution, {}, batch_size=64)


#: Registered methods, in report order: name -> factory.
METHODS: Dict[str, MethodFactory] = {
    "occlusion": occlusion,
    "gradcam": gradcam,
    "integrated_gradients": integrated_gradients,
    "random": random_baseline,
}

#: The Captum baselines every report shows.
DEFAULT_METHODS: Tuple[str, ...] = ("occlusion", "gradcam", "integrated_gradients", "random")


def available_methods() -> List[str]:
    """Names accepted by :func:`default_methods`."""
    return list(METHODS)


def default_methods(
    image_size: Tuple[int, int] | int,
    *,
    channels: int = 3,
    score: str = "softmax",
    space: Optional[ImageSpace] = None,
    include: Optional[Sequence[str]] = None,
) -> List[MethodSpec]:
    """Specs of registered methods for images of ``image_size``.

    Parameters
    ----------
    image_size : int or (int, int)
        Side or ``(H, W)`` of the images.
    channels : int
        Image channels.
    score : {"softmax", "sigmoid", "logit"}
        Passed to methods that take ``score=`` (``sigmoid`` for multi-label models).
    space : ImageSpace, optional
        The classifier's normalisation (identity by default).
    include : sequence of str, optional
        Names from :data:`METHODS` (default :data:`DEFAULT_METHODS`), in this order.

    Examples
    --------
    >>> [spec.name for spec in default_methods(64)]
    ['Occlusion', 'GradCAM', 'IntegratedGradients', 'Random']
    >>> default_methods(64, include=["occlusion"])[0].attribute_kwargs["sliding_window_shapes"]
    (3, 8, 8)
    """
    size = (image_size, image_size) if isinstance(image_size, int) else tuple(image_size)
    if len(size) != 2 or any(not isinstance(s, int) or s < 1 for s in size):
        raise ValueError(f"`image_size` must be an int or (H, W), got {image_size!r}")
    ctx = MethodContext(size, channels, check_score(score), space or ImageSpace())
    names = list(DEFAULT_METHODS if include is None else include)
    unknown = [n for n in names if n not in METHODS]
    if unknown:
        raise ValueError(f"`include` has unknown methods {unknown}; available: {available_methods()}")
    return [METHODS[name](ctx) for name in names]
