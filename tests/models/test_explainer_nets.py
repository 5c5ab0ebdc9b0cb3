import pytest
import torch
from torch import nn
from torchvision.models import mobilenet_v3_large, resnet50

from captum_ext.models.explainer_nets import (
    SegmentationExplainer,
    UNet,
    build_explainer_net,
    load_explainer_net,
    segmentation_logits,
)


@pytest.mark.parametrize("size", [(32, 32), (30, 45), (17, 64)])
def test_unet_keeps_any_input_size(size):
    net = UNet(num_classes=5, width=4, depth=3)
    assert net(torch.zeros(2, 3, *size)).shape == (2, 5, *size)


def test_wrapper_upsamples_tensor_and_dict_outputs():
    class DictNet(nn.Module):
        def forward(self, x):
            return {"out": x[:, :2, ::4, ::4], "aux": None}

    x = torch.rand(1, 3, 16, 24)
    out = SegmentationExplainer(DictNet())(x)
    assert out.shape == (1, 2, 16, 24)
    expected = torch.nn.functional.interpolate(x[:, :2, ::4, ::4], size=(16, 24), mode="bilinear")
    assert torch.allclose(out, expected)
    same = torch.rand(1, 4, 8, 8)
    assert segmentation_logits(same, (8, 8)) is same


def test_wrapper_rejects_bad_outputs():
    with pytest.raises(ValueError, match="'out'"):
        segmentation_logits({"aux": torch.zeros(1, 2, 4, 4)}, (4, 4))
    with pytest.raises(ValueError, match=r"\(N, K, h, w\)"):
        segmentation_logits(torch.zeros(1, 2), (4, 4))
    with pytest.raises(TypeError, match="net"):
        SegmentationExplainer("not a module")


def test_build_rejects_unknown_arch():
    with pytest.raises(ValueError, match="arch"):
        build_explainer_net("segformer", 3)


def test_deeplab_loads_local_backbone_weights(tmp_path):
    torch.manual_seed(0)
    source = resnet50(weights=None)
    torch.save(source.state_dict(), tmp_path / "r50.pt")
    net = build_explainer_net("deeplabv3_resnet50", 4, weights_backbone=str(tmp_path / "r50.pt"))
    assert torch.equal(net.net.backbone.layer3[0].conv2.weight, source.layer3[0].conv2.weight)
    assert "weights_backbone" not in net.config
    assert net.eval()(torch.zeros(1, 3, 32, 32)).shape == (1, 4, 32, 32)


def test_lraspp_loads_local_backbone_weights(tmp_path):
    torch.manual_seed(0)
    source = mobilenet_v3_large(weights=None)
    torch.save(source.state_dict(), tmp_path / "mnv3.pt")
    net = build_explainer_net("lraspp_mobilenet_v3_large", 3, weights_backbone=tmp_path / "mnv3.pt")
    assert torch.equal(
        net.net.backbone["4"].block[0][0].weight, source.features[4].block[0][0].weight
    )
    assert net.eval()(torch.zeros(1, 3, 40, 40)).shape == (1, 3, 40, 40)


def test_backbone_weights_that_do_not_match_are_rejected(tmp_path):
    torch.save({"something.weight": torch.zeros(3)}, tmp_path / "bad.pt")
    with pytest.raises(ValueError, match="does not match"):
        build_explainer_net("deeplabv3_resnet50", 2, weights_backbone=tmp_path / "bad.pt")


def test_load_plain_state_dict_needs_the_network(tmp_path):
    net = build_explainer_net("unet", 3, width=4, depth=1)
    torch.save(net.net.state_dict(), tmp_path / "plain.pt")
    with pytest.raises(ValueError, match="pass `net`"):
        load_explainer_net(tmp_path / "plain.pt")
    loaded = load_explainer_net(tmp_path / "plain.pt", UNet(3, width=4, depth=1))
    x = torch.rand(1, 3, 8, 8)
    assert torch.equal(loaded(x), net.eval()(x))
    assert not loaded.training
