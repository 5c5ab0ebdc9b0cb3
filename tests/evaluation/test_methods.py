"""Method registry and the upsampled Grad-CAM wrapper."""

import pytest
import torch
from captum.attr import LayerAttribution, LayerGradCam, NoiseTunnel
from torch import nn
from torchvision.models import resnet18

from captum_ext.attr import UpsampledLayerGradCam, default_gradcam_layer
from captum_ext.evaluation import METHODS, MethodSpec, available_methods, default_methods
from captum_ext.evaluation.methods import DEFAULT_METHODS
from captum_ext.models.shapes_classifier import ShapesClassifier
from tests.conftest import TinyCNN


def test_default_methods_scale_with_image_size():
    baselines = ["occlusion", "gradcam", "integrated_gradients", "random"]
    assert list(DEFAULT_METHODS) == baselines and set(baselines) <= set(available_methods())
    for size, window, stride in ((32, 4, 2), (64, 8, 4), (224, 28, 14)):
        occlusion = default_methods(size, include=["occlusion"])[0]
        assert occlusion.attribute_kwargs["sliding_window_shapes"] == (3, window, window)
        assert occlusion.attribute_kwargs["strides"] == (3, stride, stride)
    with pytest.raises(ValueError, match="unknown methods \\['shap'\\]"):
        default_methods(64, include=["shap"])
    with pytest.raises(ValueError, match="`image_size` must be"):
        default_methods((64,))


def test_every_default_method_returns_input_shaped_attributions():
    model = ShapesClassifier(width=4).eval()
    x = torch.rand(2, 3, 32, 32)
    for spec in default_methods(32):
        attr = spec.build(model).attribute(x, target=torch.tensor([0, 3]), **spec.attribute_kwargs)
        assert attr.shape == x.shape, spec.name


def test_adding_a_method_is_one_entry(monkeypatch):
    monkeypatch.setitem(METHODS, "constant", lambda ctx: MethodSpec("Const", lambda m: None, {}, 1))
    assert [s.name for s in default_methods(32, include=["random", "constant"])] == [
        "Random",
        "Const",
    ]


def test_gradcam_equals_captum_interpolated():
    torch.manual_seed(0)
    model = ShapesClassifier(width=4).eval()
    x = torch.rand(3, 3, 32, 32)
    target = torch.tensor([0, 1, 2])
    ours = UpsampledLayerGradCam(model).attribute(x, target=target)
    layer_map = LayerGradCam(model, model.gradcam_layer).attribute(
        x, target=target, relu_attributions=True
    )
    expected = LayerAttribution.interpolate(layer_map, (32, 32), "bilinear")
    assert torch.allclose(ours, expected.expand_as(x))
    assert UpsampledLayerGradCam(model).attribute(x, target=0, return_map=True).shape == (
        3,
        1,
        32,
        32,
    )
    smooth = NoiseTunnel(UpsampledLayerGradCam(model)).attribute(x, nt_samples=2, target=0)
    assert smooth.shape == x.shape


def test_default_gradcam_layer():
    model = ShapesClassifier(width=4)
    assert default_gradcam_layer(model) is model.features[-1]  # named: no probe needed
    x = torch.rand(1, 3, 32, 32)
    tiny = TinyCNN()
    assert default_gradcam_layer(tiny, x) is tiny.features
    plain = nn.Sequential(nn.Conv2d(3, 4, 3), nn.ReLU(), nn.Conv2d(4, 4, 3), nn.Flatten())
    assert default_gradcam_layer(plain, x) is plain[2]
    net = resnet18(weights=None)
    assert default_gradcam_layer(net, torch.rand(1, 3, 64, 64)) is net.layer4
    with pytest.raises(ValueError, match="no \\(N, C, h, w\\) feature map"):
        default_gradcam_layer(nn.Linear(2, 2), torch.rand(1, 2))


def test_gradcam_bad_input():
    model = ShapesClassifier(width=4).eval()
    method = UpsampledLayerGradCam(model)
    x = torch.rand(2, 3, 32, 32)
    with pytest.raises(ValueError, match="out of range for 6 classes"):
        method.attribute(x, target=6)
    with pytest.raises(ValueError, match="`inputs` must have 4 dimensions"):
        method.attribute(x[0], target=0)
    with pytest.raises(TypeError, match="`inputs` must be a floating-point"):
        method.attribute(x.long(), target=0)
    with pytest.raises(ValueError, match="`inputs` contains NaN"):
        method.attribute(x * float("nan"), target=0)
    with pytest.raises(ValueError, match="same device"):
        UpsampledLayerGradCam(ShapesClassifier(width=4).to("meta")).attribute(x, target=0)


def test_defaults_family_builds_each_method_with_nothing_but_the_model():
    from captum_ext.attr import DSSR, MP2, FGVis, SlidingPatch, SuperpixelLime

    names = ["fgvis_defaults", "dssr_defaults", "mp2_defaults", "sp_defaults", "lime_defaults"]
    specs = default_methods(48, include=names)
    model = ShapesClassifier(width=4).eval()
    kinds = [type(spec.build(model)) for spec in specs]
    assert kinds == [FGVis, DSSR, MP2, SlidingPatch, SuperpixelLime]
    assert all(spec.attribute_kwargs == {} for spec in specs)
    for spec, built in zip(specs, (s.build(model) for s in specs)):
        assert spec.name.endswith("(defaults)")
        assert built.score == "softmax"  # the library default, not the run's score
