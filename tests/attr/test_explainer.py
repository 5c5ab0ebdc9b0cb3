"""ExplainerAttribution: masks from one Explainer forward pass, Captum contract, loading."""

import matplotlib

matplotlib.use("Agg")

import pytest
import torch
from captum.attr import NoiseTunnel
from captum.attr import visualization as viz
from torch import nn

from captum_ext.attr import ExplainerAttribution
from captum_ext.models.explainer_nets import UNet, build_explainer_net
from captum_ext.models.weights import save_weights
from tests.conftest import TinyCNN


@pytest.fixture
def net():
    torch.manual_seed(0)
    return build_explainer_net("unet", 4, width=4, depth=1).eval()


class FixedClassifier(nn.Module):
    """Returns preset logits and counts its calls."""

    def __init__(self, logits):
        super().__init__()
        self.logits = logits
        self.calls = 0

    def forward(self, x):
        self.calls += 1
        return self.logits[: x.shape[0]]


def test_attribute_is_the_target_mask_without_classifier_call(net, images):
    classifier = FixedClassifier(torch.zeros(3, 4))
    method = ExplainerAttribution(classifier, explainer=net)
    attr = method.attribute(images, target=[0, 3, 1])
    expected = net(images).sigmoid()
    assert attr.shape == images.shape
    for i, t in enumerate([0, 3, 1]):
        assert torch.allclose(attr[i, 0], expected[i, t]) and torch.equal(attr[i, 0], attr[i, 2])
    assert classifier.calls == 0
    amap = method.attribute(images, target=2, return_map=True)
    assert amap.shape == (3, 1, 16, 16) and torch.allclose(amap[:, 0], expected[:, 2])
    assert ((amap >= 0) & (amap <= 1)).all()


def test_class_masks_are_all_k_masks(net, images):
    masks = ExplainerAttribution(None, explainer=net).class_masks(images)
    assert masks.shape == (3, 4, 16, 16)
    assert torch.allclose(masks, net(images).sigmoid())


def test_target_none_aggregates_the_predicted_labels(net, images):
    logits = torch.tensor([[3.0, -3.0, 2.0, -1.0], [-3.0, -2.0, -1.0, -5.0], [0.0, 5.0, 5.0, 5.0]])
    method = ExplainerAttribution(FixedClassifier(logits), explainer=net)
    amap = method.attribute(images, return_map=True)
    s = net(images).sigmoid()
    expected = torch.stack(
        [
            torch.maximum(s[0, 0], s[0, 2]),  # sigmoid > 0.5
            s[1, 2],  # nothing above 0.5: the top class
            s[2, 1:].amax(dim=0),
        ]
    )
    assert torch.allclose(amap[:, 0], expected)


def test_target_none_without_classifier_is_a_clear_error(net, images):
    with pytest.raises(ValueError, match="without a classifier"):
        ExplainerAttribution(None, explainer=net).attribute(images)
    with pytest.raises(ValueError, match="3 classes but the explainer predicts 4"):
        ExplainerAttribution(FixedClassifier(torch.zeros(3, 3)), explainer=net).attribute(images)


def test_bad_inputs_are_rejected(net, images):
    method = ExplainerAttribution(None, explainer=net)
    with pytest.raises(ValueError, match="inputs"):
        method.attribute(images[0], target=0)
    with pytest.raises(TypeError, match="inputs"):
        method.attribute((images * 255).long(), target=0)
    bad = images.clone()
    bad[0, 0, 0, 0] = float("nan")
    with pytest.raises(ValueError, match="inputs"):
        method.attribute(bad, target=0)
    with pytest.raises(ValueError, match="out of range"):
        method.attribute(images, target=4)
    with pytest.raises(ValueError, match="3 examples"):
        method.attribute(images, target=[0, 1])
    with pytest.raises(ValueError, match="inputs"):
        method.class_masks(images.half()[:, :, :, :, None])
    with pytest.raises(TypeError, match="explainer"):
        ExplainerAttribution(None, explainer="unet")
    meta_net = build_explainer_net("unet", 4, width=4, depth=1).to("meta")
    on_meta = ExplainerAttribution(None, explainer=meta_net)
    with pytest.raises(ValueError, match="`explainer` is on meta"):
        on_meta.attribute(images, target=0)
    with pytest.raises(ValueError, match="explainer"):
        on_meta.class_masks(images)


def test_explainer_runs_in_eval_mode_and_state_is_restored(images):
    torch.manual_seed(0)
    net = build_explainer_net("unet", 4, width=4, depth=1)
    with torch.no_grad():  # give BatchNorm non-trivial running statistics
        net.train()(images * 3 + 1)
    buffers = {k: v.clone() for k, v in net.state_dict().items()}
    method = ExplainerAttribution(None, explainer=net)
    attr = method.attribute(images, target=1, return_map=True)
    assert net.training and all(p.requires_grad for p in net.parameters())
    assert all(torch.equal(v, buffers[k]) for k, v in net.state_dict().items())
    assert torch.allclose(attr[:, 0], net.eval()(images).sigmoid()[:, 1])


def test_captum_visualization_and_noise_tunnel(net, images):
    method = ExplainerAttribution(None, explainer=net)
    attr = method.attribute(images, target=1)
    fig, _ = viz.visualize_image_attr(
        attr[0].permute(1, 2, 0).numpy(),
        images[0].permute(1, 2, 0).numpy(),
        method="blended_heat_map",
        sign="positive",
        use_pyplot=False,
    )
    assert fig is not None
    smoothed = NoiseTunnel(method).attribute(images, nt_samples=2, stdevs=0.01, target=1)
    assert smoothed.shape == images.shape


def test_torchvision_dict_model_is_wrapped_and_upsampled(images):
    from torchvision.models.segmentation import lraspp_mobilenet_v3_large

    model = lraspp_mobilenet_v3_large(weights=None, weights_backbone=None, num_classes=4).eval()
    method = ExplainerAttribution(None, explainer=model)
    x = torch.rand(1, 3, 40, 40)
    assert torch.allclose(method.class_masks(x), model(x)["out"].sigmoid())
    assert method.attribute(images, target=0).shape == images.shape


def test_from_checkpoint_weights_file_and_plain_state_dict(net, tmp_path, images):
    path = save_weights(tmp_path / "w.pt", net.config, net.state_dict())
    loaded = ExplainerAttribution.from_checkpoint(path, forward_func=TinyCNN(4).eval())
    reference = ExplainerAttribution(None, explainer=net.half().float()).class_masks(images)
    assert torch.allclose(loaded.class_masks(images), reference, atol=1e-6)
    assert loaded.attribute(images).shape == images.shape  # target=None through the classifier

    torch.save(net.net.state_dict(), tmp_path / "plain.pt")
    with pytest.raises(ValueError, match="pass `net`"):
        ExplainerAttribution.from_checkpoint(tmp_path / "plain.pt")
    plain = ExplainerAttribution.from_checkpoint(
        tmp_path / "plain.pt", explainer=UNet(4, width=4, depth=1)
    )
    assert torch.allclose(plain.class_masks(images), reference, atol=1e-6)
