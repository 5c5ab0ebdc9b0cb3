"""Every method and metric on the classifiers in use today, with random weights.

torchvision's ResNet-18, VGG-11-BN, MobileNetV3-small (Hardswish, Hardsigmoid gates),
EfficientNet-B0 (SiLU, Sigmoid gates), DenseNet-121 (a functional ``F.relu``),
ConvNeXt-tiny (GELU, LayerNorm) and a Vision Transformer (GELU, token maps), built with
``weights=None`` (no download) and 4 classes, on 32 x 32 inputs, the smallest the CNNs
take (five stride-2 stages). The ViT is ``torchvision.models.VisionTransformer``, the
class behind ``vit_b_16``, with ``vit_b_16``'s patch size (16) but an image size of 32
and 2 encoder layers of width 48 instead of 12 of width 768: the same architecture,
small enough for a test (``vit_b_16`` itself only takes 224 x 224 inputs).

Each test checks the output's shape and finiteness and that the model is left exactly
as found: train/eval flags (the model is in eval mode except its last ``nn.Linear``,
which ignores the flag), ``requires_grad`` flags (one parameter starts frozen),
``.grad``, every parameter and buffer bit for bit (BatchNorm statistics included), and
no hook left behind.
"""

from __future__ import annotations

import functools
import warnings
from collections.abc import Callable

import pytest
import torch
import torchvision.models as tvm
from torch import Tensor, nn

from captum_ext.attr import (
    DSSR,
    MP2,
    ExplainerAttribution,
    FGVis,
    RandomAttribution,
    SlidingPatch,
    SuperpixelLime,
    UpsampledLayerGradCam,
    default_gradcam_layer,
)
from captum_ext.attr._activation_filter import ActivationGradientFilter
from captum_ext.metrics import deletion_auc, insertion_auc, pointing_game
from captum_ext.models.explainer_nets import build_explainer_net

NUM_CLASSES = 4
SIZE = 32
TARGET = torch.tensor([0, 3])


def small_vit() -> nn.Module:
    """``vit_b_16``'s class and patch size, at 32 x 32 with 2 narrow encoder layers."""
    return tvm.VisionTransformer(
        image_size=SIZE,
        patch_size=16,
        num_layers=2,
        num_heads=3,
        hidden_dim=48,
        mlp_dim=96,
        num_classes=NUM_CLASSES,
    )


ARCHITECTURES: dict[str, Callable[[], nn.Module]] = {
    "resnet18": lambda: tvm.resnet18(weights=None, num_classes=NUM_CLASSES),
    "vgg11_bn": lambda: tvm.vgg11_bn(weights=None, num_classes=NUM_CLASSES),
    "mobilenet_v3_small": lambda: tvm.mobilenet_v3_small(weights=None, num_classes=NUM_CLASSES),
    "efficientnet_b0": lambda: tvm.efficientnet_b0(weights=None, num_classes=NUM_CLASSES),
    "densenet121": lambda: tvm.densenet121(weights=None, num_classes=NUM_CLASSES),
    "convnext_tiny": lambda: tvm.convnext_tiny(weights=None, num_classes=NUM_CLASSES),
    "vit": small_vit,
}

#: Activation-module calls per forward pass, and the functional calls no hook sees.
ACTIVATION_CALLS = {
    "resnet18": (17, {}),  # 9 nn.ReLU modules, reused within the blocks
    "vgg11_bn": (10, {}),
    "mobilenet_v3_small": (42, {}),  # Hardswish, ReLU and Hardsigmoid (SE gates)
    "efficientnet_b0": (65, {}),  # SiLU and Sigmoid (SE gates)
    "densenet121": (120, {"relu": 1}),  # forward's F.relu before the pooling
    "convnext_tiny": (18, {}),  # GELU
    "vit": (2, {}),  # one GELU per encoder MLP (attention's softmax is not elementwise)
}


@functools.cache
def classifier(name: str) -> nn.Module:
    """The model, built once per architecture, in a state every call must leave as is."""
    torch.manual_seed(0)
    model = ARCHITECTURES[name]().eval()
    [linear for linear in model.modules() if isinstance(linear, nn.Linear)][-1].train()
    next(model.parameters()).requires_grad_(False)
    return model


@pytest.fixture(scope="module", autouse=True)
def _free_models():
    yield
    classifier.cache_clear()  # VGG-11 alone holds 0.5 GB


def images() -> Tensor:
    return torch.rand(2, 3, SIZE, SIZE, generator=torch.Generator().manual_seed(0))


def explainer_net() -> nn.Module:
    torch.manual_seed(0)
    return build_explainer_net("unet", num_classes=NUM_CLASSES, width=4, depth=1)


_HOOKS = ("_forward_hooks", "_forward_pre_hooks", "_backward_hooks", "_backward_pre_hooks")


def snapshot(model: nn.Module) -> dict:
    return {
        "training": [m.training for m in model.modules()],
        "requires_grad": [p.requires_grad for p in model.parameters()],
        "grad": [p.grad for p in model.parameters()],
        "state": {k: v.clone() for k, v in model.state_dict().items()},
    }


def assert_as_found(model: nn.Module, before: dict) -> None:
    after = snapshot(model)
    assert after["training"] == before["training"]
    assert after["requires_grad"] == before["requires_grad"]
    assert all(g is None for g in after["grad"])
    for key, value in before["state"].items():
        assert torch.equal(after["state"][key], value), key
    for module in model.modules():
        for hooks in _HOOKS:
            assert not getattr(module, hooks), (type(module).__name__, hooks)


def gradcam_layer(name: str, model: nn.Module) -> dict[str, nn.Module]:
    """GradCAM's layer: the default one, or for the ViT the patch embedding, named."""
    return {"layer": model.conv_proj} if name == "vit" else {}


#: name -> (attribute(model, arch, x) -> attributions, whether values lie in [0, 1])
METHODS: dict[str, tuple] = {
    "RandomAttribution": (lambda m, a, x: RandomAttribution(m).attribute(x, target=TARGET), True),
    "SlidingPatch": (
        lambda m, a, x: SlidingPatch(m).attribute(
            x, target=TARGET, sliding_window_shapes=(3, 16, 16), strides=(3, 16, 16)
        ),
        False,
    ),
    "SuperpixelLime": (
        lambda m, a, x: SuperpixelLime(m, n_segments=8).attribute(
            x, target=TARGET, n_samples=16, perturbations_per_eval=16
        ),
        False,
    ),
    "MP2": (
        lambda m, a, x: MP2(m, grid_size=4, cells_per_step=4).attribute(
            x, target=TARGET, max_iterations=1, stop_prob=0.0
        ),  # random nets: p ~ 1/K
        True,
    ),
    "DSSR": (lambda m, a, x: DSSR(m, iterations=2).attribute(x, target=TARGET), True),
    # with the defence (the default); its hooks are checked in
    # test_defence_covers_every_activation
    "FGVis": (lambda m, a, x: FGVis(m, iterations=2).attribute(x, target=TARGET), True),
    # starts from the reference: the defence's restoring gate
    "FGVis-generation": (
        lambda m, a, x: FGVis(m, game="generation", iterations=2).attribute(x, target=TARGET),
        True,
    ),
    "ExplainerAttribution": (
        # target=None: the classifier's predicted labels choose the masks
        lambda m, a, x: ExplainerAttribution(
            m, explainer=explainer_net(), score="softmax"
        ).attribute(x),
        True,
    ),
    "UpsampledLayerGradCam": (
        lambda m, a, x: UpsampledLayerGradCam(m, **gradcam_layer(a, m)).attribute(x, target=TARGET),
        False,
    ),
}


@pytest.mark.parametrize("method", list(METHODS))
@pytest.mark.parametrize("arch", list(ARCHITECTURES))
def test_method_on_architecture(arch, method):
    model = classifier(arch)
    run, unit_range = METHODS[method]
    x = images()
    before = snapshot(model)
    with warnings.catch_warnings():
        # DenseNet's functional ReLU is reported by test_defence_covers_every_activation
        warnings.filterwarnings("ignore", message=".*functional activation")
        attr = run(model, arch, x)
    assert attr.shape == x.shape
    assert torch.isfinite(attr).all()
    if unit_range:
        assert attr.min() >= 0 and attr.max() <= 1
    assert_as_found(model, before)


@pytest.mark.parametrize("arch", list(ARCHITECTURES))
def test_defence_covers_every_activation(arch):
    """Every activation call is bounded, or the functional ones are reported."""
    model = classifier(arch)
    before = snapshot(model)
    calls, functional = ACTIVATION_CALLS[arch]
    x = images()
    with ActivationGradientFilter([model]) as gate:
        if functional:
            with pytest.warns(UserWarning, match="functional activation call"):
                gate.record(lambda: model(x))
        else:
            with warnings.catch_warnings():
                warnings.simplefilter("error")
                gate.record(lambda: model(x))
        assert len(gate._clean) == calls
        assert gate.unfiltered == functional
    assert_as_found(model, before)


@pytest.mark.parametrize("arch", list(ARCHITECTURES))
def test_gradcam_default_layer(arch):
    model = classifier(arch)
    before = snapshot(model)
    x = images()
    if arch == "vit":
        # the only 4-D map is the patch embedding, after which come token sequences
        with pytest.raises(ValueError, match="layer="):
            default_gradcam_layer(model, x)
        with pytest.raises(ValueError, match="layer="):
            UpsampledLayerGradCam(model).attribute(x, target=TARGET)
    else:
        layer = default_gradcam_layer(model, x)
        assert any(layer is m for m in model.modules())
        shapes = []
        handle = layer.register_forward_hook(lambda m, i, out: shapes.append(out.shape))
        with torch.no_grad():
            model(x)
        handle.remove()
        assert len(shapes[0]) == 4 and min(shapes[0][2:]) > 1
    assert_as_found(model, before)


@pytest.mark.parametrize("arch", list(ARCHITECTURES))
def test_metrics(arch):
    model = classifier(arch)
    x = images()
    attr = torch.rand(2, 1, SIZE, SIZE, generator=torch.Generator().manual_seed(1))
    before = snapshot(model)
    for metric in (deletion_auc, insertion_auc):
        auc = metric(model, x, attr, TARGET, steps=2)
        assert auc.shape == (2,) and torch.isfinite(auc).all()
        assert ((auc >= 0) & (auc <= 1)).all()  # softmax scores
    objects = torch.zeros(2, SIZE, SIZE, dtype=torch.bool)
    objects[:, :8, :8] = True
    hits = pointing_game(attr, masks=objects, target=TARGET)
    assert hits.shape == (2,) and hits.dtype == torch.bool
    assert_as_found(model, before)
