"""Inpainter training: losses by hand, the LightningModule, `captum-ext train-inpainter`."""

import warnings

import pytest
import torch

from captum_ext.cli.main import main
from captum_ext.inpainters import LearnedInpainter
from captum_ext.models.inpainting_unet import GatedConv2d, InpaintingUNet
from captum_ext.models.pretrained import load_shapes_inpainter
from captum_ext.training.inpainter_module import InpainterModule
from captum_ext.training.inpainting_losses import (
    local_features,
    masked_l1,
    masked_moments,
    texture_loss,
)


def test_masked_l1_by_hand():
    prediction = torch.tensor([[[[1.0, 3.0], [0.0, 9.0]]]])
    weight = torch.tensor([[[[1.0, 1.0], [0.0, 0.0]]]])
    assert masked_l1(prediction, torch.zeros_like(prediction), weight).item() == 2.0


def test_local_features_and_moments_by_hand():
    ramp = torch.arange(6.0).view(1, 1, 1, 6).expand(1, 3, 6, 6)
    features = local_features(ramp, scales=(2,))
    assert features.shape == (1, 9, 6, 6)
    assert features[0, 3, 3, 2].item() == 2.0  # (x[4] - x[0]) / 2
    assert features[0, 6, 3, 2].item() == 0.0  # no vertical change
    mean, cov = masked_moments(
        torch.tensor([[[[1.0, 3.0, 100.0]]]]), torch.tensor([[[[1.0, 1.0, 0.0]]]])
    )
    assert mean.item() == 2.0 and cov.item() == 1.0


def test_texture_loss_penalises_a_flat_fill_of_a_textured_region():
    g = torch.Generator().manual_seed(0)
    grain = torch.rand(1, 3, 32, 32, generator=g)
    holes = torch.zeros(1, 1, 32, 32)
    holes[..., 8:24, 8:24] = 1
    flat = torch.where(holes.bool(), torch.full_like(grain, 0.5), grain)
    other_grain = torch.where(holes.bool(), torch.rand(1, 3, 32, 32, generator=g), grain)
    assert texture_loss(grain, grain, holes).item() == 0.0
    # Both fills have the mean colour of the grain; the texture loss prefers fresh grain
    # to the flat (L1-optimal) fill by a wide margin.
    assert texture_loss(flat, grain, holes) > 3 * texture_loss(other_grain, grain, holes)
    assert masked_l1(flat, grain, holes) < masked_l1(other_grain, grain, holes)


def test_module_step_and_gated_conv():
    module = InpainterModule(width=8)
    batch = {"image": torch.rand(2, 3, 32, 32), "holes": torch.rand(2, 1, 32, 32) > 0.7}
    losses = module._losses(batch)
    assert set(losses) == {"l1_hole", "l1_valid", "texture", "loss", "grad_energy_ratio"}
    losses["loss"].backward()
    assert all(p.grad is not None for p in module.model.parameters())
    assert module.export_config() == {
        "width": 8,
        "depth": 3,
        "dilations": [2, 4],
        "noise_channels": 1,
        "prefill": None,
    }
    gate = GatedConv2d(2, 3)
    with torch.no_grad():
        gate.conv.weight.zero_()
        gate.conv.bias.copy_(torch.tensor([1.0, 1.0, 1.0, 0.0, 0.0, 0.0]))
    assert torch.allclose(gate(torch.zeros(1, 2, 4, 4)), torch.full((1, 3, 4, 4), 0.5))


def test_unet_noise_follows_the_generator():
    net = InpaintingUNet(width=8)
    x, holes = torch.rand(1, 3, 16, 16), torch.rand(1, 1, 16, 16) > 0.5
    a = net(x, holes, generator=torch.Generator().manual_seed(0))
    b = net(x, holes, generator=torch.Generator().manual_seed(0))
    c = net(x, holes, generator=torch.Generator().manual_seed(1))
    assert torch.equal(a, b) and not torch.equal(a, c)
    with pytest.raises(ValueError, match="depth"):
        InpaintingUNet(depth=0)


def test_train_inpainter_cli_exports_loadable_weights(tmp_path):
    export = tmp_path / "inpainter.pt"
    main(
        [
            "train-inpainter",
            "--preset",
            "shapes_inpainter",
            "--model.width",
            "8",
            "--data.image_size",
            "32",
            "--data.num_train",
            "16",
            "--data.num_val",
            "4",
            "--data.batch_size",
            "8",
            "--trainer.max_epochs",
            "1",
            "--trainer.default_root_dir",
            str(tmp_path),
            "--trainer.enable_progress_bar",
            "false",
            "--trainer.logger",
            "false",
            "--export",
            str(export),
        ]
    )
    inpainter = load_shapes_inpainter(export)
    assert isinstance(inpainter, LearnedInpainter)
    assert inpainter.model.stem.conv.out_channels == 16
    holes = torch.zeros(1, 1, 32, 32, dtype=torch.bool)
    holes[..., 8:20, 8:20] = True
    assert inpainter(torch.rand(1, 3, 32, 32), holes).shape == (1, 3, 32, 32)


def _train_tiny(tmp_path, lr: str) -> None:
    main(["train-inpainter", "--preset", "shapes_inpainter", "--model.width", "8",
          "--model.lr", lr, "--data.image_size", "32", "--data.num_train", "32",
          "--data.num_val", "8", "--data.batch_size", "8", "--trainer.max_epochs", "2",
          "--trainer.precision", "32", "--trainer.default_root_dir", str(tmp_path),
          "--trainer.enable_progress_bar", "false", "--trainer.logger", "false"])  # fmt: skip


def test_a_dead_correction_to_the_prefill_is_warned_about_once(tmp_path):
    # lr 1e-12: the zero-initialised head never moves, so the network returns NS's fill
    with pytest.warns(UserWarning, match="correction to OpenCV's 'ns' fill") as caught:
        _train_tiny(tmp_path / "dead", "1e-12")
    assert sum("correction to OpenCV" in str(w.message) for w in caught) == 1
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        _train_tiny(tmp_path / "alive", "2e-3")
    assert not [w for w in caught if "correction to OpenCV" in str(w.message)]
