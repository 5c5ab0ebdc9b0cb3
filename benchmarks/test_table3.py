"""Stalder et al. Table 3 in compute terms: seconds per image of every method.

Classifiers VGG-16 and ResNet-50 (torchvision architectures, random weights: compute
does not depend on them, 20 classes as on VOC), the Explainer a DeepLabV3-ResNet50.
Every method runs with the paper's settings, scaled by ``--work-fraction``: iterative
methods run ``fraction x`` their iterations (FGVis 500, DSSR+ 300, MP2 300), sampling
methods ``fraction x`` their samples (LIME 1,000) and sliding methods ``fraction x``
their windows (29 px patch, stride 3 px at 224: 66 x 66 windows); each benchmark stores
``scale = paper work / work done`` and the table multiplies the measured time by it
(cost is linear in the forward / backward passes). ``--work-fraction 1`` (the default
of the full mode) measures the paper's settings directly; on a 2-core CPU use e.g.
``--work-fraction 0.02``.

Quick mode (CI): 32 x 32 inputs, one image, a token amount of work; full mode: 224 x 224.
Turn the JSON into the README table with
``captum-ext benchmark-table --json bench.json`` (see docs/benchmarks.md).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest
import torch
from captum.attr import LayerGradCam, Lime, Occlusion
from torch import nn
from torchvision.models import resnet50, vgg16

from benchmarks.conftest import device_name, throughput
from captum_ext.attr import (
    DSSR,
    MP2,
    ExplainerAttribution,
    FGVis,
    SlidingPatch,
    SuperpixelLime,
)
from captum_ext.fillers import Constant, Inpaint
from captum_ext.inpainters import LearnedInpainter
from captum_ext.models.explainer_nets import build_explainer_net
from captum_ext.models.inpainting_unet import InpaintingUNet

NUM_CLASSES = 20

CLASSIFIERS: dict[str, Callable[[], nn.Module]] = {
    "vgg16": lambda: vgg16(num_classes=NUM_CLASSES),
    "resnet50": lambda: resnet50(num_classes=NUM_CLASSES),
}
GRADCAM_LAYERS = {"vgg16": lambda m: m.features[28], "resnet50": lambda m: m.layer4}


@dataclass
class Job:
    """One method at a work fraction: the call to time and the factor to the paper's work."""

    run: Callable[[], Any]
    scale: float


def _count(paper: int, fraction: float) -> tuple[int, float]:
    done = max(1, round(paper * fraction))
    return done, paper / done


def _sliding(size: int, fraction: float) -> tuple[int, int, float]:
    """Window and stride covering ``fraction`` of the paper's 66 x 66 windows at 224."""
    window = max(1, round(29 * size / 224))
    paper_stride = max(1, round(3 * size / 224))
    paper_windows = ((size - window) // paper_stride + 1) ** 2
    per_side = max(1, round(math.sqrt(paper_windows * fraction)))
    stride = max(paper_stride, (size - window) // max(1, per_side - 1)) if per_side > 1 else size
    stride = min(stride, window)  # Captum's Occlusion needs windows that touch or overlap
    windows = ((size - window) // stride + 1) ** 2
    return window, stride, paper_windows / windows


def _grid_mask(x: torch.Tensor, cells: int = 7) -> torch.Tensor:
    """A ``cells x cells`` block feature mask (49 features, like LIME's ~50 superpixels)."""
    h, w = x.shape[-2:]
    rows = torch.arange(h, device=x.device) * cells // h
    cols = torch.arange(w, device=x.device) * cells // w
    return (rows[:, None] * cells + cols[None, :]).expand(x.shape[0], 1, h, w)


def make_job(method: str, name: str, model: nn.Module, x: torch.Tensor, fraction: float) -> Job:
    size = x.shape[-1]
    target = 3
    inpaint = Inpaint(LearnedInpainter(InpaintingUNet().to(x.device).eval()))
    if method in ("Explainer", "RTIS"):
        # RTIS's network is the same segmentation model trained with another loss.
        net = build_explainer_net("deeplabv3_resnet50", NUM_CLASSES).to(x.device).eval()
        explainer = ExplainerAttribution(model, explainer=net)
        return Job(lambda: explainer.attribute(x, target=target), 1.0)
    if method == "FGVis":
        n, scale = _count(500, fraction)
        fgvis = FGVis(model, iterations=n)
        return Job(lambda: fgvis.attribute(x, target=target), scale)
    if method == "DSSR+":
        n, scale = _count(300, fraction)
        dssr = DSSR(model, iterations=n)
        return Job(lambda: dssr.attribute(x, target=target), scale)
    if method in ("MP2", "MP2-G"):
        n, scale = _count(300, fraction)
        mp2 = MP2(model, filler=inpaint if method == "MP2-G" else None)
        return Job(lambda: mp2.attribute(x, target=target, stop_prob=0.0, max_iterations=n), scale)
    if method in ("SP", "SP-G", "Occlusion"):
        window, stride, scale = _sliding(size, fraction)
        if method == "Occlusion":
            occlusion = Occlusion(model)
            return Job(
                lambda: occlusion.attribute(
                    x,
                    target=target,
                    sliding_window_shapes=(3, window, window),
                    strides=(3, stride, stride),
                    baselines=0.0,
                    perturbations_per_eval=16,
                ),
                scale,
            )
        sp = SlidingPatch(model, filler=inpaint if method == "SP-G" else Constant(0.0))
        return Job(
            lambda: sp.attribute(
                x,
                target=target,
                sliding_window_shapes=window,
                strides=stride,
                perturbations_per_eval=16,
            ),
            scale,
        )
    if method in ("LIME", "LIME-G", "Lime"):
        n, scale = _count(1000, fraction)
        if method == "Lime":
            lime = Lime(model)
            mask = _grid_mask(x)
            return Job(
                lambda: lime.attribute(
                    x, target=target, feature_mask=mask, n_samples=n, perturbations_per_eval=16
                ),
                scale,
            )
        ours = SuperpixelLime(model, filler=inpaint if method == "LIME-G" else Constant(0.0))
        return Job(
            lambda: ours.attribute(x, target=target, n_samples=n, perturbations_per_eval=16), scale
        )
    if method == "LayerGradCam":
        gradcam = LayerGradCam(model, GRADCAM_LAYERS[name](model))
        return Job(lambda: gradcam.attribute(x, target=target), 1.0)
    raise ValueError(method)


METHODS = (
    "Explainer",
    "RTIS",
    "FGVis",
    "DSSR+",
    "MP2",
    "MP2-G",
    "SP",
    "SP-G",
    "LIME",
    "LIME-G",
    "LayerGradCam",
    "Occlusion",
    "Lime",
)


@pytest.fixture(scope="module", params=sorted(CLASSIFIERS))
def classifier(request, settings):
    torch.manual_seed(0)
    return request.param, settings.prepare(CLASSIFIERS[request.param]())


@pytest.mark.parametrize("method", METHODS)
def test_table3(benchmark, settings, classifier, method, request):
    name, model = classifier
    fraction = request.config.getoption("--work-fraction") or (1.0 if settings.full else 0.005)
    x = settings.inputs(settings.batch_size if settings.full else 1).sigmoid()  # pixels in [0, 1]
    if settings.full and settings.device.type == "cpu":
        x = x[:1]  # one image per call: the CPU measures the per-image cost
    job = make_job(method, name, model, x, fraction)
    run = settings.synchronised(job.run)
    out = run()  # warm-up, and the output check
    assert out.shape[0] == x.shape[0]
    if method != "LayerGradCam":  # Captum's LayerGradCam answers at the layer's resolution
        assert out.shape[-2:] == x.shape[-2:]
    assert torch.isfinite(out).all()
    benchmark.extra_info.update(
        method=method,
        classifier=name,
        images=x.shape[0],
        scale=job.scale,
        work_fraction=fraction,
        image_size=x.shape[-1],
        batch_size=x.shape[0],
        device=device_name(settings.device),
    )
    rounds = 3 if settings.full and settings.device.type == "cuda" else 1
    benchmark.pedantic(run, rounds=rounds, iterations=1)
    images_per_s = throughput(benchmark, x.shape[0])
    if images_per_s is not None:
        benchmark.extra_info["images_per_s_measured"] = images_per_s
