"""The Captum contract of MaskAttribution, exercised through RandomAttribution."""

import matplotlib

matplotlib.use("Agg")

import warnings

import pytest
import torch
from captum.attr import NoiseTunnel, Occlusion
from captum.attr import visualization as viz
from captum.log import log_usage
from captum.metrics import infidelity

from captum_ext.attr import (
    DSSR,
    MP2,
    FGVis,
    MaskAttribution,
    RandomAttribution,
    SlidingPatch,
    SuperpixelLime,
    UpsampledLayerGradCam,
)
from captum_ext.fillers import Blur, Constant, UniformNoise
from tests.conftest import TinyCNN


class GradientOfScore(MaskAttribution):
    """Test method: |d score / d input| summed over channels; optionally fails midway."""

    def __init__(self, forward_func, fail=False, **kwargs):
        super().__init__(forward_func, **kwargs)
        self.fail = fail

    @log_usage()
    def attribute(self, inputs, target=None, additional_forward_args=None, return_map=False):
        return self._run(inputs, target, additional_forward_args, return_map)

    def _attribute_map(self, inputs, target, additional_forward_args, **_):
        x = inputs.clone().requires_grad_(True)
        logits = self._forward(x, additional_forward_args)
        target = self._target(target, inputs, logits.shape[1])
        params = self.forward_func.parameters() if hasattr(self.forward_func, "parameters") else []
        self._seen_requires_grad = [p.requires_grad for p in params]
        if self.fail:
            self.forward_func.register_forward_hook(lambda *a: None)
            raise RuntimeError("failure inside the method")
        score = self._scores(x, target, additional_forward_args).sum()
        (grad,) = torch.autograd.grad(score, x)
        return grad.abs().sum(dim=1, keepdim=True)


def test_output_shapes_and_map(tiny_model, images):
    method = RandomAttribution(tiny_model)
    attr = method.attribute(images, target=2, seed=1)
    assert attr.shape == images.shape
    assert torch.equal(attr[:, 0], attr[:, 2])
    amap = method.attribute(images, target=2, seed=1, return_map=True)
    assert amap.shape == (3, 1, 16, 16)
    assert torch.equal(amap[:, 0], attr[:, 0])
    assert ((amap >= 0) & (amap <= 1)).all()
    assert not method.multiplies_by_inputs and not method.has_convergence_delta()


def test_same_seed_same_map(tiny_model, images):
    a = RandomAttribution(tiny_model).attribute(images, target=0, seed=5)
    b = RandomAttribution(tiny_model).attribute(images, target=0, seed=5)
    c = RandomAttribution(tiny_model).attribute(images, target=0, seed=6)
    assert torch.equal(a, b) and not torch.equal(a, c)


def test_works_under_no_grad_and_with_noise_tunnel(tiny_model, images):
    method = GradientOfScore(tiny_model, score="logit")
    with torch.no_grad():
        attr = method.attribute(images, target=[0, 1, 3])
    assert attr.shape == images.shape and attr.abs().sum() > 0
    nt = NoiseTunnel(method)
    smoothed = nt.attribute(images, nt_samples=4, stdevs=0.05, target=[0, 1, 3])
    assert smoothed.shape == images.shape
    assert not torch.allclose(smoothed, attr)


def test_infidelity_accepts_attributions(tiny_model, images):
    attr = GradientOfScore(tiny_model).attribute(images, target=1)

    def perturb(inputs):
        noise = 0.01 * torch.randn_like(inputs)
        return noise, inputs - noise

    value = infidelity(tiny_model, perturb, images, attr, target=1, n_perturb_samples=3)
    assert value.shape == (3,) and torch.isfinite(value).all()


def test_visualize_image_attr_headless(tiny_model, images):
    attr = RandomAttribution(tiny_model).attribute(images, target=0)
    fig, ax = viz.visualize_image_attr(
        attr[0].permute(1, 2, 0).numpy(),
        images[0].permute(1, 2, 0).numpy(),
        method="blended_heat_map",
        sign="positive",
        use_pyplot=False,
    )
    assert fig is not None and ax is not None


def test_parameters_frozen_inside_and_state_restored(images):
    model = TinyCNN().train()
    model.head[-1].bias.requires_grad_(False)
    flags = [p.requires_grad for p in model.parameters()]
    method = GradientOfScore(model)
    method.attribute(images, target=0)
    assert method._seen_requires_grad == [False] * len(flags)
    assert [p.requires_grad for p in model.parameters()] == flags
    assert all(p.grad is None for p in model.parameters())
    assert model.training and model.head[2].training


TRAIN_MODE_CALLS = {
    "SlidingPatch": lambda m, x: SlidingPatch(m).attribute(x, 5, 4, target=1),
    "RandomAttribution": lambda m, x: RandomAttribution(m).attribute(x, 1),
    "UpsampledLayerGradCam": lambda m, x: UpsampledLayerGradCam(m, m.features[3]).attribute(x, 1),
}


@pytest.mark.parametrize("call", TRAIN_MODE_CALLS.values(), ids=TRAIN_MODE_CALLS.keys())
def test_train_mode_warns_once_and_is_left_as_found(images, call):
    # As documented: the mode is never changed, so BatchNorm in train mode rewrites its
    # running statistics with the perturbed batches, and the user is told once per call.
    torch.manual_seed(0)
    model = TinyCNN().train()
    before = model.features[1].running_mean.clone()
    with pytest.warns(UserWarning) as caught:
        call(model, images)
    messages = [str(w.message) for w in caught if "train mode" in str(w.message)]
    assert len(messages) == 1
    assert "BatchNorm2d" in messages[0] and "Dropout" in messages[0]
    assert "running statistics" in messages[0] and "model.eval()" in messages[0]
    assert all(m.training for m in model.modules())
    assert not torch.equal(model.features[1].running_mean, before)


@pytest.mark.parametrize("call", TRAIN_MODE_CALLS.values(), ids=TRAIN_MODE_CALLS.keys())
def test_eval_mode_is_left_as_found_and_statistics_untouched(images, call):
    torch.manual_seed(0)
    model = TinyCNN().eval()
    state = {k: v.clone() for k, v in model.state_dict().items()}
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        call(model, images)
    assert not [w for w in caught if "train mode" in str(w.message)]
    assert not any(m.training for m in model.modules())
    assert all(torch.equal(v, state[k]) for k, v in model.state_dict().items())


def test_captum_rewrites_batchnorm_statistics_in_train_mode_too(images):
    # What the warning says Captum does silently.
    model = TinyCNN().train()
    before = model.features[1].running_mean.clone()
    Occlusion(model).attribute(images, sliding_window_shapes=(3, 5, 5), strides=4, target=1)
    assert model.training and not torch.equal(model.features[1].running_mean, before)


def test_state_restored_after_exception(images):
    model = TinyCNN().train()
    flags = [p.requires_grad for p in model.parameters()]
    with pytest.raises(RuntimeError, match="failure inside"):
        GradientOfScore(model, fail=True).attribute(images, target=0)
    assert [p.requires_grad for p in model.parameters()] == flags
    assert not model._forward_hooks
    assert all(m.training for m in model.modules())


def test_additional_forward_args_are_forwarded(images):
    calls = []

    def forward(x, scale):
        calls.append(scale)
        return x.mean(dim=(2, 3)) * scale

    attr = GradientOfScore(forward, score="logit").attribute(
        images, target=0, additional_forward_args=(2.0,)
    )
    assert calls and all(c == 2.0 for c in calls)
    # d(mean_c0 * 2)/dx = 2 / (16 * 16) on channel 0 only.
    assert torch.allclose(attr[:, 0], torch.full((3, 16, 16), 2.0 / 256))


def test_bad_inputs_and_targets(tiny_model, images):
    method = RandomAttribution(tiny_model)
    with pytest.raises(ValueError, match="`inputs` must have 4 dimensions"):
        method.attribute(images[0], target=0)
    with pytest.raises(TypeError, match="`inputs` must be a floating-point"):
        method.attribute((images * 255).to(torch.uint8), target=0)
    with pytest.raises(ValueError, match="`inputs` contains NaN"):
        method.attribute(images * float("nan"), target=0)
    with pytest.raises(ValueError, match="out of range for 4 classes"):
        method.attribute(images, target=4)
    with pytest.raises(ValueError, match="`target` is None"):
        method.attribute(images)
    with pytest.raises(ValueError, match="same device"):
        RandomAttribution(TinyCNN().to("meta")).attribute(images, target=0)
    with pytest.raises(ValueError, match="`score` must be one of"):
        GradientOfScore(tiny_model, score="probability")
    with pytest.raises(TypeError, match="`forward_func` must be callable"):
        RandomAttribution("model")


def test_subclass_without_log_usage_is_rejected():
    with pytest.raises(TypeError, match="log_usage"):

        class Undecorated(MaskAttribution):
            def attribute(self, inputs, target=None):
                return self._run(inputs, target, None, False)

            def _attribute_map(self, inputs, target, additional_forward_args, **_):
                return inputs[:, :1]


@pytest.mark.parametrize(
    "method, default",
    [
        (SlidingPatch, Constant),
        (SuperpixelLime, Constant),
        (FGVis, Constant),
        (MP2, Blur),
        (DSSR, UniformNoise),
    ],
)
def test_filler_default_and_type_check(tiny_model, method, default):
    assert type(method(tiny_model).filler) is default
    chosen = Constant(0.5)
    assert method(tiny_model, filler=chosen).filler is chosen
    with pytest.raises(TypeError, match="`filler` must be a captum_ext.fillers.Filler, got str"):
        method(tiny_model, filler="grey")
