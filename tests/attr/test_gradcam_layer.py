"""The Grad-CAM layer is found from what the model computes, through any wrapper."""

import pytest
import torch
from torch import nn
from torchvision.models import VisionTransformer, resnet18, vgg11
from torchvision.transforms import Normalize

from captum_ext.attr import UpsampledLayerGradCam, default_gradcam_layer
from captum_ext.models.shapes_classifier import ShapesClassifier
from captum_ext.training.classifier_module import ClassifierModule

X = torch.rand(2, 3, 96, 128, generator=torch.Generator().manual_seed(0))


class Wrapper(nn.Module):
    def __init__(self, net: nn.Module) -> None:
        super().__init__()
        self.net = net

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


def _resnet() -> nn.Module:
    torch.manual_seed(0)
    return resnet18(num_classes=5).eval()


def _resnet_case(wrap):
    net = _resnet()
    return wrap(net), net.layer4


def _vgg_case():
    torch.manual_seed(0)
    vgg = vgg11(num_classes=5).eval()
    # the last ReLU before the final max-pool (not the pool, nor the 7 x 7 adaptive pool)
    return vgg, vgg.features[19]


def _lightning_case():
    module = ClassifierModule(num_classes=5, width=4).eval()
    return module, module.model.features


def _shapes_case():
    shapes = ShapesClassifier(num_classes=5, width=4).eval()
    return shapes, shapes.features[-1]  # its own `gradcam_layer`


NORMALIZE = Normalize((0.485, 0.456, 0.406), (0.229, 0.224, 0.225))
CASES = {
    "resnet18": lambda: _resnet_case(lambda net: net),
    "wrapped resnet18": lambda: _resnet_case(Wrapper),
    "normalised resnet18": lambda: _resnet_case(lambda net: nn.Sequential(NORMALIZE, net)),
    "vgg11": _vgg_case,
    "ClassifierModule": _lightning_case,
    "shapes classifier": _shapes_case,
}


@pytest.mark.parametrize("case", list(CASES))
def test_layer_and_attribution(case):
    model, expected = CASES[case]()
    assert default_gradcam_layer(model, X) is expected
    training = [m.training for m in model.modules()]
    method = UpsampledLayerGradCam(model)
    assert method.layer is None  # found at the first call, from the inputs
    attr = method.attribute(X, target=torch.tensor([0, 4]))
    assert method.layer is expected
    assert attr.shape == X.shape and torch.isfinite(attr).all() and attr.abs().sum() > 0
    # the probe left no hook and no mode change behind
    assert [m.training for m in model.modules()] == training
    assert all(not m._forward_hooks for m in model.modules())


def test_wrapped_resnet_gives_the_bare_resnets_attribution():
    net = _resnet()
    bare = UpsampledLayerGradCam(net).attribute(X, target=3)
    wrapped = UpsampledLayerGradCam(Wrapper(net)).attribute(X, target=3)
    assert torch.allclose(bare, wrapped)


def test_probe_leaves_batchnorm_statistics_and_train_mode_alone():
    net = _resnet().train()
    before = {k: v.clone() for k, v in net.state_dict().items()}
    assert default_gradcam_layer(Wrapper(net), X) is net.layer4
    assert net.training and all(m.training for m in net.modules())
    for key, value in net.state_dict().items():
        assert torch.equal(value, before[key]), key


def test_small_inputs_take_the_last_map_larger_than_one_pixel():
    net = _resnet()
    # at 32 x 32 layer4 is 1 x 1 and layer3 2 x 2
    assert default_gradcam_layer(net, torch.rand(1, 3, 32, 32)) is net.layer3


def test_additional_forward_args_reach_the_probe():
    class Scaled(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.net = _resnet()

        def forward(self, x, scale):
            return self.net(x * scale)

    model = Scaled()
    scale = torch.ones(2, 1, 1, 1)
    assert default_gradcam_layer(model, X, (scale,)) is model.net.layer4
    attr = UpsampledLayerGradCam(model).attribute(X, target=0, additional_forward_args=(scale,))
    assert attr.shape == X.shape


def test_errors_name_layer():
    with pytest.raises(ValueError, match="no \\(N, C, h, w\\) feature map.*`layer=`"):
        default_gradcam_layer(nn.Sequential(nn.Flatten(), nn.Linear(12, 2)), torch.rand(1, 3, 2, 2))
    torch.manual_seed(0)
    vit = VisionTransformer(32, 8, num_layers=1, num_heads=2, hidden_dim=8, mlp_dim=8).eval()
    with pytest.raises(ValueError, match="token sequences.*'conv_proj'.*`layer=`"):
        UpsampledLayerGradCam(vit).attribute(torch.rand(1, 3, 32, 32), target=0)
    # with the layer named, the same model works
    attr = UpsampledLayerGradCam(vit, vit.conv_proj).attribute(torch.rand(1, 3, 32, 32), target=0)
    assert attr.shape == (1, 3, 32, 32)
    with pytest.raises(TypeError, match="`inputs`.*`layer=`"):
        default_gradcam_layer(_resnet())
    with pytest.raises(TypeError, match="`model` must be an nn.Module"):
        default_gradcam_layer(lambda x: x, X)
