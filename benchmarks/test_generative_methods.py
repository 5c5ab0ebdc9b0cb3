"""Speed of SP / SP-G / LIME against Captum's Occlusion and Lime (ratios measured in one run).

Run with ``pytest benchmarks/test_generative_methods.py --benchmark-enable`` (add
``--bench-mode full`` for the issue's sizes). Each test times the reference and our
method on the same model and inputs in the same run (best of a few interleaved repeats with
``time.perf_counter``), records both and their ratio in ``benchmark.extra_info`` and
checks the issue's target:

* LIME at 1,000 samples against ``captum.attr.Lime`` configured as closely as possible
  (same superpixels, samples, constant baseline, ridge with alpha 1, the same kernel on
  the binary vectors), on a nearly free model (the ratio is about overhead): the
  speed-up is recorded per image size, with no target (at 224 x 224 both are bound by
  writing the 1,000 perturbed images);
* on a real CNN (the shapes-world classifier at 64 x 64; ResNet-50 at 224 x 224 in full
  mode), LIME's time over the bare forward passes of its samples (<= 1.1x);
* LIME against the authors' ``lime`` package (``lime_image``) at equal work: the same
  classifier, superpixels, 1,000 samples and forward batches of 50, 4 images, one by
  one and batched: at least as fast;
* SP with a constant fill no slower than ``captum.attr.Occlusion`` with the same windows;
* SP-G with OpenCV Telea <= 3x SP (local inpainting), and the ratio without it.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import pytest
import torch
import torchvision
from captum._utils.models.linear_model import SkLearnRidge
from captum.attr import Lime, Occlusion
from torch import nn

from benchmarks.conftest import check_target, interleaved_best
from captum_ext.attr import SlidingPatch, SuperpixelLime
from captum_ext.fillers import Inpaint
from captum_ext.inpainters import OpenCVInpainter
from captum_ext.models.shapes_classifier import ShapesClassifier


def record(benchmark, fn: Callable[[], object], info: dict[str, float]) -> None:
    """Run ``fn`` under pytest-benchmark and attach the measured ratios."""
    benchmark.extra_info.update({k: round(v, 4) for k, v in info.items()})
    benchmark.pedantic(fn, rounds=1, iterations=1)


class NearlyFree(nn.Module):
    """A model whose forward costs next to nothing: pooled colours, a linear layer."""

    def __init__(self, num_classes: int = 6) -> None:
        super().__init__()
        self.pool = nn.AdaptiveAvgPool2d(4)
        self.fc = nn.Linear(3 * 16, num_classes)

    def forward(self, x):
        return self.fc(self.pool(x).flatten(1))


def captum_lime(model: nn.Module, num_segments: int) -> Lime:
    """Captum's Lime set up like SuperpixelLime: ridge alpha 1, exp(-d^2/w^2) kernel on the
    cosine distance of the binary vector to all-ones (w = 0.25), Bernoulli(0.5) samples."""

    def similarity(original, perturbed, interpretable, **kwargs):
        on = interpretable.float().sum()
        distance = 1 - torch.sqrt(on / num_segments)
        return torch.exp(-(distance**2) / 0.25**2)

    def perturb(original, **kwargs):
        return torch.bernoulli(torch.full((1, kwargs["num_interp_features"]), 0.5)).long()

    probabilities = nn.Sequential(model, nn.Softmax(dim=1))
    return Lime(
        probabilities,
        interpretable_model=SkLearnRidge(alpha=1.0),
        similarity_func=similarity,
        perturb_func=perturb,
    )


def test_lime_overhead_vs_captum_lime(benchmark, settings):
    pytest.importorskip("sklearn")
    size = settings.image_size
    samples = 1000 if settings.full else 300
    model = settings.prepare(NearlyFree())
    x = settings.inputs(1)
    ours = SuperpixelLime(model)
    segments = ours.superpixels(x.clamp(0, 1))
    count = int(segments.max()) + 1
    theirs = captum_lime(model, count)

    def run_ours():
        return ours.attribute(
            x,
            target=0,
            feature_mask=segments,
            baselines=0.0,
            n_samples=samples,
            perturbations_per_eval=100,
        )

    def run_theirs():
        return theirs.attribute(
            x,
            target=0,
            feature_mask=segments,
            baselines=0.0,
            n_samples=samples,
            perturbations_per_eval=100,
        )

    t_theirs, t_ours = interleaved_best(
        settings.synchronised(run_theirs), settings.synchronised(run_ours), rounds=3
    )
    ratio = t_theirs / t_ours
    record(
        benchmark,
        settings.synchronised(run_ours),
        {
            "image_size": size,
            "samples": samples,
            "superpixels": count,
            "captum_lime_s": t_theirs,
            "superpixel_lime_s": t_ours,
            "speedup": ratio,
        },
    )
    print(f"\nLIME at {size} px: {ratio:.2f}x faster than captum.attr.Lime")


def test_lime_vs_lime_image(benchmark, settings):
    """The authors' package at equal work: same model, superpixels, samples, batch size."""
    lime_image = pytest.importorskip("lime.lime_image")
    samples, batch, count = (1000, 50, 4) if settings.full else (200, 50, 2)
    model = ShapesClassifier().eval()  # a 64 x 64 CNN, as users run it: on the CPU
    x = torch.rand(count, 3, 64, 64, generator=torch.Generator().manual_seed(0))
    ours = SuperpixelLime(model)
    segments = ours.superpixels(x)
    hwc = x.permute(0, 2, 3, 1).double().numpy()

    def classifier_fn(images):  # lime's perturbed images: numpy, channels-last
        with torch.no_grad():
            return model(torch.from_numpy(images).permute(0, 3, 1, 2).float()).softmax(1).numpy()

    def run_lime():
        explainer = lime_image.LimeImageExplainer(random_state=0)
        for image, seg in zip(hwc, segments[:, 0].numpy()):
            explainer.explain_instance(
                image,
                classifier_fn,
                labels=(0,),
                top_labels=None,
                hide_color=0,
                num_samples=samples,
                batch_size=batch,
                segmentation_fn=lambda _, seg=seg: seg,
            )

    def run_one_by_one():
        for i in range(count):
            ours.attribute(
                x[i : i + 1],
                target=0,
                feature_mask=segments[i : i + 1],
                baselines=0.0,
                n_samples=samples,
                perturbations_per_eval=batch,
            )

    def run_batched():  # forward batches of about `batch` images, as lime's
        ours.attribute(
            x,
            target=0,
            feature_mask=segments,
            baselines=0.0,
            n_samples=samples,
            perturbations_per_eval=math.ceil(batch / count),
        )

    t_lime, t_one, t_batched = interleaved_best(run_lime, run_one_by_one, run_batched, rounds=2)
    record(
        benchmark,
        run_one_by_one,
        {
            "images": count,
            "samples": samples,
            "lime_image_s": t_lime,
            "superpixel_lime_one_by_one_s": t_one,
            "superpixel_lime_batched_s": t_batched,
            "lime_over_one_by_one": t_lime / t_one,
            "lime_over_batched": t_lime / t_batched,
        },
    )
    print(f"\nlime_image {t_lime:.2f} s, ours {t_one:.2f} s one by one, {t_batched:.2f} s batched")
    check_target(settings, t_one <= t_lime, f"one by one {t_one:.2f} s vs lime {t_lime:.2f} s")
    check_target(settings, t_batched <= t_lime, f"batched {t_batched:.2f} s vs lime {t_lime:.2f} s")


@pytest.mark.parametrize("classifier", ["shapes", "resnet50"])
def test_lime_time_over_bare_forward_passes(benchmark, settings, classifier):
    """LIME's total time over the forward passes of its samples alone, in the layout
    LIME hands the model (channels-last on CPU); ResNet-50 at 224 x 224 in full mode."""
    samples = 1000 if settings.full else 200
    if classifier == "resnet50":
        if not settings.full:
            pytest.skip("ResNet-50 at 224 x 224 only in --bench-mode full")
        model = settings.prepare(torchvision.models.resnet50(weights=None, num_classes=6))
        x = torch.nn.functional.interpolate(settings.inputs(1), size=224)
    else:
        model = settings.prepare(ShapesClassifier())
        x = torch.nn.functional.interpolate(settings.inputs(1), size=64)  # its own size
    lime = SuperpixelLime(model)
    segments = lime.superpixels(x.clamp(0, 1))
    batch = 100

    def run_lime():
        return lime.attribute(
            x, target=0, feature_mask=segments, n_samples=samples, perturbations_per_eval=batch
        )

    perturbed = x.repeat(batch, 1, 1, 1)
    if perturbed.device.type == "cpu":
        perturbed = perturbed.contiguous(memory_format=torch.channels_last)

    @torch.no_grad()
    def bare():
        for _ in range(math.ceil(samples / batch)):
            model(perturbed).softmax(dim=1)

    rounds = 2 if classifier == "resnet50" else 3
    t_bare, t_lime = interleaved_best(
        settings.synchronised(bare), settings.synchronised(run_lime), rounds=rounds
    )
    ratio = t_lime / t_bare
    record(
        benchmark,
        settings.synchronised(run_lime),
        {
            "samples": samples,
            "lime_s": t_lime,
            "bare_forward_s": t_bare,
            "lime_over_forward": ratio,
        },
    )
    print(f"\nLIME on {classifier}: {t_lime:.2f} s, bare passes {t_bare:.2f} s, {ratio:.2f}x")
    check_target(settings, ratio <= 1.1, f"LIME takes {ratio:.2f}x the bare forward passes")


def _sp_setup(settings):
    model = settings.prepare(ShapesClassifier())
    n = 2 if settings.full else 1
    x = torch.nn.functional.interpolate(settings.inputs(n), size=64).clamp(-2, 2)
    # window 28, stride 3 tile 64 exactly: Occlusion and SP use the same 13 x 13 windows
    return model, x, 28, 3


def test_sp_constant_vs_captum_occlusion(benchmark, settings):
    model, x, k, s = _sp_setup(settings)
    ppe = 64
    sp = SlidingPatch(model)
    occlusion = Occlusion(nn.Sequential(model, nn.Softmax(dim=1)))

    def run_sp():
        return sp.attribute(
            x,
            target=0,
            sliding_window_shapes=k,
            strides=s,
            aggregate="average",
            baselines=0.0,
            perturbations_per_eval=ppe,
        )

    def run_occlusion():
        return occlusion.attribute(
            x,
            target=0,
            sliding_window_shapes=(3, k, k),
            strides=(3, s, s),
            baselines=0.0,
            perturbations_per_eval=ppe,
        )

    t_occ, t_sp = interleaved_best(
        settings.synchronised(run_occlusion), settings.synchronised(run_sp), rounds=3
    )
    ratio = t_sp / t_occ
    record(
        benchmark,
        settings.synchronised(run_sp),
        {
            "occlusion_s": t_occ,
            "sp_s": t_sp,
            "sp_over_occlusion": ratio,
        },
    )
    check_target(settings, ratio <= 1.05, f"SP is {ratio:.2f}x Captum Occlusion's time")


def test_sp_g_telea_vs_sp(benchmark, settings):
    model, x, k, s = _sp_setup(settings)
    sp = SlidingPatch(model)
    local = SlidingPatch(model, filler=Inpaint(OpenCVInpainter("telea", local=True)))
    full = SlidingPatch(model, filler=Inpaint(OpenCVInpainter("telea", local=False)))
    pixels = (x * 0.25 + 0.5).clamp(0, 1)  # SP-G inputs in [0, 1] (identity ImageSpace)

    def runner(method, inputs):
        return lambda: method.attribute(
            inputs, target=0, sliding_window_shapes=k, strides=s, perturbations_per_eval=64
        )

    t_sp, t_local, t_full = interleaved_best(
        *(settings.synchronised(runner(method, pixels)) for method in (sp, local, full)),
        rounds=2,
    )
    record(
        benchmark,
        settings.synchronised(runner(local, pixels)),
        {
            "sp_s": t_sp,
            "sp_g_telea_local_s": t_local,
            "sp_g_telea_full_image_s": t_full,
            "local_over_sp": t_local / t_sp,
            "full_image_over_sp": t_full / t_sp,
        },
    )
    check_target(settings, t_local / t_sp <= 3, f"SP-G (Telea, local) is {t_local / t_sp:.2f}x SP")
