"""ExplainerAttribution costs one Explainer forward pass and nothing else (ratio <= 1.1).

Quick mode: the shapes-world U-Net on 16 images of 64 x 64; ``--bench-mode full``: the
paper's DeepLabV3-ResNet50 Explainer at 224 x 224.
"""

import torch

from benchmarks.conftest import check_target, device_name, interleaved_best, throughput
from captum_ext.attr import ExplainerAttribution
from captum_ext.models.explainer_nets import build_explainer_net


def test_attribute_vs_bare_forward(benchmark, settings):
    torch.manual_seed(0)
    if settings.full:
        net = build_explainer_net("deeplabv3_resnet50", 20)
        x = settings.inputs()
    else:
        net = build_explainer_net("unet", 6, width=16, depth=3)
        x = torch.rand(16, 3, 64, 64).to(settings.device)
    net = settings.prepare(net)
    method = ExplainerAttribution(None, explainer=net)

    def bare():
        with torch.no_grad():
            return net(x)

    bare = settings.synchronised(bare)
    attribute = settings.synchronised(lambda: method.attribute(x, target=2))
    bare(), attribute()  # warm-up
    bare_time, attr_time = interleaved_best(bare, attribute, rounds=7)
    ratio = attr_time / bare_time
    benchmark.extra_info.update(
        bare_s=bare_time,
        attribute_s=attr_time,
        ratio=ratio,
        images=x.shape[0],
        device=device_name(settings.device),
    )
    benchmark(attribute)
    images_per_s = throughput(benchmark, x.shape[0])
    if images_per_s is not None:
        benchmark.extra_info["images_per_s"] = images_per_s
    check_target(settings, ratio <= 1.1, f"attribute() took {ratio:.3f}x a bare forward pass")
