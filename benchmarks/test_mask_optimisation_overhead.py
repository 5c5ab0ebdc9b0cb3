"""FGVis and DSSR cost against the bare forward+backward passes they are made of.

Each case times, in the same run, one attribution of a batch and the same number of
bare forward+backward passes of the classifier on the same batch (input gradient only,
parameters frozen, as inside the methods). FGVis makes one pass per iteration on the N
images (with the defence's hooks); DSSR one pass per iteration on the stacked 2N batch
(``x_{r,m}`` and ``x_{r,1-m}``). The overhead ratio must be <= 1.3.

The classifier is the shapes-world CNN (ReLU), and for FGVis's defence also
torchvision's EfficientNet-B0 (random weights): 65 activation calls per pass (SiLU, and
the Sigmoid gates of squeeze-and-excitation), each bounded on both sides.

Run: ``pytest benchmarks/test_mask_optimisation_overhead.py --benchmark-enable``
(``--bench-mode full`` for 224 x 224 images).
"""

from __future__ import annotations

import time

import pytest
import torch
import torchvision

from benchmarks.conftest import device_name
from captum_ext.attr import DSSR, FGVis
from captum_ext.models.shapes_classifier import ShapesClassifier

MAX_RATIO = 1.3


def bare_passes(model, x, target, passes):
    """``passes`` forward+backward passes, gradient w.r.t. the input only."""
    x = x.clone().requires_grad_(True)
    for _ in range(passes):
        logits = model(x)
        (grad,) = torch.autograd.grad(logits.gather(1, target[:, None]).sum(), x)
    return grad


MODELS = {
    "shapes": lambda: ShapesClassifier(num_classes=6),
    "efficientnet_b0": lambda: torchvision.models.efficientnet_b0(weights=None, num_classes=6),
}

#: name -> (method builder, copies of the batch per pass, classifier)
CASES = {
    "FGVis (deletion, defence)": (lambda m, it: FGVis(m, iterations=it, defense=True), 1, "shapes"),
    "FGVis (deletion, no defence)": (
        lambda m, it: FGVis(m, iterations=it, defense=False),
        1,
        "shapes",
    ),
    # generation starts from the reference and uses the restoring gate (other hook path)
    "FGVis (generation, defence)": (
        lambda m, it: FGVis(m, game="generation", iterations=it, defense=True),
        1,
        "shapes",
    ),
    "DSSR+": (lambda m, it: DSSR(m, iterations=it), 2, "shapes"),
    "FGVis (deletion, defence, EfficientNet-B0)": (
        lambda m, it: FGVis(m, iterations=it, defense=True),
        1,
        "efficientnet_b0",
    ),
    "FGVis (generation, defence, EfficientNet-B0)": (
        lambda m, it: FGVis(m, game="generation", iterations=it, defense=True),
        1,
        "efficientnet_b0",
    ),
}


@pytest.mark.parametrize("name", list(CASES))
def test_overhead_over_bare_passes(benchmark, settings, name):
    build, stack, classifier = CASES[name]
    iterations = 100 if settings.full else 20
    batch = 8 if settings.full else 4
    size = settings.image_size if settings.full else 64
    torch.manual_seed(0)
    model = settings.prepare(MODELS[classifier]())
    x = torch.randn(batch, 3, size, size, generator=torch.Generator().manual_seed(0))
    x = x.to(settings.device)
    target = torch.arange(batch, device=settings.device) % 6
    method = build(model, iterations)

    for p in model.parameters():  # as inside the methods: input gradients only
        p.requires_grad_(False)
    stacked, stacked_target = torch.cat([x] * stack), torch.cat([target] * stack)
    attribute = settings.synchronised(lambda: method.attribute(x, target=target))
    bare = settings.synchronised(lambda: bare_passes(model, stacked, stacked_target, iterations))
    times = {"attribution": [], "bare": []}

    def one_round():
        # interleaved, so that load from other processes hits both sides alike
        for key, fn in (("attribution", attribute), ("bare", bare)):
            start = time.perf_counter()
            fn()
            times[key].append(time.perf_counter() - start)

    benchmark.pedantic(one_round, rounds=3, warmup_rounds=1)
    if getattr(benchmark, "stats", None) is None:  # --benchmark-disable: ran once
        return
    attribution_s, bare_s = min(times["attribution"]), min(times["bare"])
    ratio = attribution_s / bare_s
    benchmark.extra_info.update(
        {
            "method": name,
            "classifier": classifier,
            "device": device_name(settings.device),
            "images": batch,
            "image_size": size,
            "iterations": iterations,
            "attribution_seconds": attribution_s,
            "bare_seconds": bare_s,
            "ratio": ratio,
        }
    )
    print(f"\n{name}: {attribution_s:.3f} s vs {bare_s:.3f} s bare, ratio {ratio:.3f}")
    assert ratio <= MAX_RATIO
