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

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from captum.attr import Attribution, IntegratedGradients, Occlusion
from torch import nn

from captum_ext.attr import (
    DSSR,
    MP2,
    FGVis,
    RandomAttribution,
    SlidingPatch,
    SuperpixelLime,
    UpsampledLayerGradCam,
)
from captum_ext.fillers import Blur, Constant, Filler, Inpaint
from captum_ext.fillers.image_space import ImageSpace
from captum_ext.utils import check_score, scaled_size


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
    checkpoint_dir : path, optional
        Where the shipped networks (Explainer, RTIS, inpainter) are looked up first
        (:func:`~captum_ext.models.pretrained.checkpoint_path`), e.g. retrained ones.
    inpainter : path, optional
        Weights of the learned inpainter of the -G methods (``captum-ext
        train-inpainter --export``), e.g. one trained at the classifier's image size;
        default the shipped one (looked up in ``checkpoint_dir`` first).
    """

    image_size: tuple[int, int]
    channels: int = 3
    score: str = "softmax"
    space: ImageSpace = field(default_factory=ImageSpace)
    checkpoint_dir: Path | None = None
    inpainter: Path | None = None

    def scaled(self, pixels_at_224: float) -> int:
        """A length given at 224 x 224 scaled to these images (at least 1 px)."""
        side = min(self.image_size)
        return scaled_size(pixels_at_224, side, side)[0]


MethodFactory = Callable[[MethodContext], MethodSpec]


def occlusion(ctx: MethodContext) -> MethodSpec:
    """Captum ``Occlusion``: window 1/8 and stride 1/16 of the image side, baseline 0.

    At 64 x 64 this is an 8 x 8 window with stride 4 (225 windows at any size); the
    baseline 0 is the mean colour of a normalised input space.
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


def fgvis_deletion(ctx: MethodContext) -> MethodSpec:
    """:class:`~captum_ext.attr.FGVis`, deletion game, defence on, 500 iterations.

    Scored on the logit with lambda = 0.05 per pixel: a confident classifier's
    probability is saturated (the shapes classifier's target logits are 11-17, so
    ``sigmoid'`` is ~1e-7), its gradient vanishes and any lambda large enough to keep
    the mask sparse freezes it at 1, while a lambda small enough to move it lets the
    normalised step wander once the class is deleted. On the logit the game deletes
    the pixels whose logit gradient exceeds lambda (measured on 6 shapes-world pairs:
    pointing 6/6 with the logit, 2/6 with sigmoid and lambda 1e-8).
    """
    return MethodSpec(
        "FGVis (deletion)",
        lambda model: FGVis(model, game="deletion", lambda_=0.05, score="logit"),
        {},
        batch_size=32,
    )


def fgvis_preservation(ctx: MethodContext) -> MethodSpec:
    """:class:`~captum_ext.attr.FGVis`, preservation game, defence on, 500 iterations.

    Scored with the run's score (sigmoid for the shapes classifier), lambda 1e-4.
    """
    return MethodSpec(
        "FGVis (preservation)",
        lambda model: FGVis(model, game="preservation", lambda_=1e-4, score=ctx.score),
        {},
        batch_size=32,
    )


def dssr_plus(ctx: MethodContext) -> MethodSpec:
    """:class:`~captum_ext.attr.DSSR` (DSSR+), uniform noise in the classifier's pixel space."""
    return MethodSpec(
        "DSSR+", lambda model: DSSR(model, space=ctx.space, score=ctx.score), {}, batch_size=32
    )


def dssr_plus_mean_fill(ctx: MethodContext) -> MethodSpec:
    """DSSR+ with ``Constant(0)`` (the dataset mean colour) instead of uniform noise.

    Differs from the paper: for classifiers that see classes in noise (the first
    shapes classifier, trained without object-free negatives, scored U(0, 1) noise as
    cross, ring and diamond) the noise reference cannot delete those classes and
    DSSR+'s mask collapses to all background. On a classifier whose references carry no
    evidence (the shipped ``load_shapes_classifier()``) the paper's reference works
    (:func:`dssr_plus`).
    """
    return MethodSpec(
        "DSSR+ (mean-colour reference)",
        lambda model: DSSR(model, filler=Constant(0.0), score=ctx.score),
        {},
        batch_size=32,
    )


def explainer_method(
    checkpoint: str | None = None, name: str = "Explainer", variant: str = "explainer"
) -> MethodFactory:
    """Factory of a learned-Explainer method (:class:`~captum_ext.attr.ExplainerAttribution`).

    Parameters
    ----------
    checkpoint : str, optional
        An Explainer weights file or Lightning checkpoint for the evaluated classifier;
        default the shipped shapes-world network of ``variant``.
    name : str
        Row label.
    variant : {"explainer", "rtis"}
        Which shipped shapes-world network (trained with the Explainer or the RTIS loss).

    Examples
    --------
    >>> spec = explainer_method(name="RTIS", variant="rtis")(MethodContext((64, 64)))
    >>> spec.name, spec.batch_size
    ('RTIS', 64)
    """

    def factory(ctx: MethodContext) -> MethodSpec:
        def build(model: nn.Module) -> Attribution:
            from captum_ext.attr import ExplainerAttribution
            from captum_ext.models.pretrained import load_shapes_explainer

            device = next(iter(model.parameters())).device
            net = load_shapes_explainer(
                checkpoint, device=device, variant=variant, checkpoint_dir=ctx.checkpoint_dir
            )
            return ExplainerAttribution(model, explainer=net)

        return MethodSpec(name, build, {}, batch_size=64)

    return factory


def generative_inpainter(model: nn.Module, kind: str, ctx: MethodContext):
    """The inpainter of the -G methods, on the classifier's device.

    ``"learned"``: ``ctx.inpainter``, else the shipped shapes-world inpainter
    (:func:`~captum_ext.models.pretrained.load_shapes_inpainter`, looked up in
    ``ctx.checkpoint_dir`` first); ``"telea"`` / ``"ns"``: OpenCV.
    """
    from captum_ext.inpainters import OpenCVInpainter
    from captum_ext.models.pretrained import load_shapes_inpainter

    if kind == "learned":
        param = next(iter(model.parameters()), None)
        device = param.device if param is not None else "cpu"
        return load_shapes_inpainter(
            ctx.inpainter, device=device, checkpoint_dir=ctx.checkpoint_dir
        )
    return OpenCVInpainter(kind)


def _filler(ctx: MethodContext, model: nn.Module, inpainter: str | None, base: Filler) -> Filler:
    if inpainter is None:
        return base
    return Inpaint(generative_inpainter(model, inpainter, ctx), ctx.space)


def _suffix(inpainter: str | None) -> str:
    return {None: "", "learned": "-G", "telea": "-G (Telea)", "ns": "-G (NS)"}[inpainter]


def sliding_patch(ctx: MethodContext, inpainter: str | None = None) -> MethodSpec:
    """SP / SP-G: the paper's 29 px patch scaled to the image (8 px at 64), stride 4 px at 64.

    The paper's stride (3 px at 224, a 66 x 66 window grid) is coarsened to
    ``scaled(14)`` (1/16 of the side; 15 x 15 windows at 64 x 64) to keep the
    evaluation affordable on CPU; ``aggregate="grid"`` as in the paper.
    """
    window, stride = ctx.scaled(29), ctx.scaled(14)
    return MethodSpec(
        "SP" + _suffix(inpainter),
        lambda model: SlidingPatch(
            model, filler=_filler(ctx, model, inpainter, Constant(0.0)), score=ctx.score
        ),
        {"sliding_window_shapes": window, "strides": stride, "perturbations_per_eval": 64},
        batch_size=8,
    )


def superpixel_lime(ctx: MethodContext, inpainter: str | None = None) -> MethodSpec:
    """LIME / LIME-G with the paper's defaults: 50 SLIC superpixels, 1,000 samples."""
    return MethodSpec(
        "LIME" + _suffix(inpainter),
        lambda model: SuperpixelLime(
            model,
            filler=_filler(ctx, model, inpainter, Constant(0.0)),
            score=ctx.score,
            space=ctx.space,
        ),
        {"n_samples": 1000, "perturbations_per_eval": 50},
        batch_size=8,
    )


def mp2(ctx: MethodContext, inpainter: str | None = None) -> MethodSpec:
    """MP2 / MP2-G: blur sigma 10 px at 224 (scaled), a grid of cells of 8 px at 224, 4 px minimum.

    The paper's 28 x 28 grid at 224 has 8 px cells; on small images the grid is
    ``min(28, side // 4)`` (16 x 16 at 64) so that cells stay a few pixels wide.
    """
    grid = max(1, min(28, min(ctx.image_size) // 4))
    return MethodSpec(
        "MP2" + _suffix(inpainter),
        lambda model: MP2(
            model,
            filler=_filler(ctx, model, inpainter, Blur(float(ctx.scaled(10)))),
            score=ctx.score,
            grid_size=grid,
        ),
        {},
        batch_size=16,
    )


def _variant(factory: Callable[..., MethodSpec], inpainter: str | None) -> MethodFactory:
    return lambda ctx: factory(ctx, inpainter)


def _defaults(method: Callable[[nn.Module], Attribution], name: str, batch: int) -> MethodFactory:
    """``method(model)`` with every option at its default, as a new user first runs it
    (softmax score, the papers' values scaled to the image size): the check that the
    defaults hold on a classifier nobody tuned for."""
    return lambda ctx: MethodSpec(f"{name} (defaults)", method, {}, batch_size=batch)


#: Registered methods, in report order: name -> factory.
METHODS: dict[str, MethodFactory] = {
    "explainer": explainer_method(),
    "rtis": explainer_method(name="RTIS", variant="rtis"),
    "occlusion": occlusion,
    "gradcam": gradcam,
    "integrated_gradients": integrated_gradients,
    "random": random_baseline,
    "fgvis_deletion": fgvis_deletion,
    "fgvis_preservation": fgvis_preservation,
    "dssr_plus": dssr_plus,
    "dssr_plus_mean_fill": dssr_plus_mean_fill,
    "sp": _variant(sliding_patch, None),
    "sp_g": _variant(sliding_patch, "learned"),
    "sp_g_telea": _variant(sliding_patch, "telea"),
    "lime": _variant(superpixel_lime, None),
    "lime_g": _variant(superpixel_lime, "learned"),
    "lime_g_telea": _variant(superpixel_lime, "telea"),
    "mp2": _variant(mp2, None),
    "mp2_g": _variant(mp2, "learned"),
    "mp2_g_telea": _variant(mp2, "telea"),
    "fgvis_defaults": _defaults(FGVis, "FGVis", 32),
    "dssr_defaults": _defaults(DSSR, "DSSR+", 32),
    "mp2_defaults": _defaults(MP2, "MP2", 16),
    "sp_defaults": _defaults(SlidingPatch, "SP", 8),
    "lime_defaults": _defaults(SuperpixelLime, "LIME", 8),
}

#: The generative-removal methods of Agarwal & Nguyen (Tables 2-3), G = learned inpainter.
GENERATIVE_METHODS: tuple[str, ...] = ("sp", "sp_g", "lime", "lime_g", "mp2", "mp2_g")

#: The Captum baselines every report shows.
DEFAULT_METHODS: tuple[str, ...] = ("occlusion", "gradcam", "integrated_gradients", "random")


def available_methods() -> list[str]:
    """Names accepted by :func:`default_methods`."""
    return list(METHODS)


def default_methods(
    image_size: tuple[int, int] | int,
    *,
    channels: int = 3,
    score: str = "softmax",
    space: ImageSpace | None = None,
    include: Sequence[str] | None = None,
    checkpoint_dir: Path | None = None,
    inpainter: Path | None = None,
) -> list[MethodSpec]:
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
    checkpoint_dir : path, optional
        Directory of networks that replace the shipped ones (:class:`MethodContext`).
    inpainter : path, optional
        Learned-inpainter weights of the -G methods (:class:`MethodContext`).

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
    ctx = MethodContext(
        size, channels, check_score(score), space or ImageSpace(), checkpoint_dir, inpainter
    )
    names = list(DEFAULT_METHODS if include is None else include)
    unknown = [n for n in names if n not in METHODS]
    if unknown:
        raise ValueError(
            f"`include` has unknown methods {unknown}; available: {available_methods()}"
        )
    return [METHODS[name](ctx) for name in names]
