"""Learned (InpaintingUNet) and TorchScript (LaMa convention) inpainters."""

import pytest
import torch
from torch import nn

from captum_ext.fillers import ImageSpace, Inpaint
from captum_ext.inpainters import LearnedInpainter, TorchScriptInpainter
from captum_ext.models.inpainting_unet import InpaintingUNet

# torch 2.14 deprecates TorchScript in favour of torch.export; LaMa exports are TorchScript.
pytestmark = pytest.mark.filterwarnings("ignore:`torch.jit:FutureWarning")


def _holes(n, h, w):
    holes = torch.zeros(n, 1, h, w, dtype=torch.bool)
    holes[..., h // 4 : h // 2, w // 4 : w // 2] = True
    return holes


class CountingNet(nn.Module):
    """Returns the hole-zeroed image plus 0.5 in the holes; records batch sizes."""

    def __init__(self):
        super().__init__()
        self.scale = nn.Parameter(torch.ones(()))
        self.batches = []

    def forward(self, images, holes, generator=None):
        self.batches.append(images.shape[0])
        return self.scale * images * (~holes) + 0.5 * holes


def test_learned_keeps_valid_pixels_and_is_deterministic():
    torch.manual_seed(0)
    inpainter = LearnedInpainter(InpaintingUNet(width=8), batch_size=3)
    images = torch.rand(5, 3, 30, 26)
    holes = _holes(5, 30, 26)
    first, second = inpainter(images, holes), inpainter(images, holes)
    keep = ~holes.expand_as(images)
    assert torch.equal(first[keep], images[keep])
    assert torch.equal(first, second)
    assert float(first[~keep].min()) >= 0 and float(first[~keep].max()) <= 1


def test_learned_prefill_adds_the_network_correction_to_the_classical_fill():
    pytest.importorskip("cv2")
    from captum_ext.inpainters import OpenCVInpainter

    net = InpaintingUNet(width=8, prefill="ns")
    images = torch.rand(3, 3, 32, 32)
    holes = _holes(3, 32, 32)
    classical = OpenCVInpainter("ns")(images, holes)
    # Untrained, the correction is zero: the classical fill comes back bit for bit.
    assert torch.equal(LearnedInpainter(net)(images, holes), classical)
    with torch.no_grad():
        net.head.bias.fill_(0.25)
    shifted = LearnedInpainter(net)(images, holes)
    inside = holes.expand_as(images)
    assert torch.allclose(shifted[inside], (classical[inside] + 0.25).clamp(0, 1))
    assert torch.equal(shifted[~inside], images[~inside])
    assert torch.equal(net.classical_fill(images, holes), classical)
    with pytest.raises(ValueError, match="prefill"):
        InpaintingUNet(prefill="lama")
    with pytest.raises(ValueError, match="no `prefill`"):
        InpaintingUNet(width=8).classical_fill(images, holes)


def test_learned_chunks_batches_and_stays_in_eval_mode():
    net = CountingNet()
    inpainter = LearnedInpainter(net, batch_size=4)
    inpainter.train()
    assert not net.training
    out = inpainter(torch.rand(10, 3, 8, 8), _holes(10, 8, 8))
    assert net.batches == [4, 4, 2]
    assert torch.all(out[_holes(10, 8, 8).expand(-1, 3, -1, -1)] == 0.5)


def test_learned_rejects_mismatched_device_and_bad_input():
    net = CountingNet().to("meta")
    with pytest.raises(ValueError, match="inpainter"):
        LearnedInpainter(net)(torch.rand(1, 3, 8, 8), _holes(1, 8, 8))
    with pytest.raises(TypeError, match="model"):
        LearnedInpainter(lambda x, h: x)
    with pytest.raises(ValueError, match="images"):
        LearnedInpainter(CountingNet())(torch.rand(1, 3, 8, 8) + 1, _holes(1, 8, 8))


class MeanFill(nn.Module):
    """LaMa convention; asserts LaMa's size constraint (multiple of 8)."""

    def forward(self, image: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        assert image.shape[-1] % 8 == 0 and image.shape[-2] % 8 == 0
        assert mask.dtype == image.dtype and mask.shape[1] == 1
        valid = 1 - mask
        mean = (image * valid).sum(dim=(2, 3), keepdim=True) / valid.sum(dim=(2, 3), keepdim=True)
        return image * valid + mean * mask


class WrongShape(nn.Module):
    def forward(self, image: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        return image[..., :-1]


def test_torchscript_file_with_lama_convention(tmp_path):
    path = tmp_path / "mean_fill.pt"
    torch.jit.script(MeanFill()).save(str(path))
    inpainter = TorchScriptInpainter(path, batch_size=2)
    images = torch.rand(3, 3, 21, 19)  # not a multiple of 8: padded and cropped back
    holes = _holes(3, 21, 19)
    out = inpainter(images, holes)
    keep = ~holes.expand_as(images)
    assert torch.equal(out[keep], images[keep])
    # The fill is the mean of the valid pixels of the reflect-padded image.
    padded = torch.nn.functional.pad(images, (0, 5, 0, 3), mode="reflect")
    padded_holes = torch.nn.functional.pad(holes.float(), (0, 5, 0, 3), mode="reflect")
    expected = (padded * (1 - padded_holes)).sum(dim=(2, 3)) / (1 - padded_holes).sum(dim=(2, 3))
    assert torch.allclose(out[:, :, 6, 5], expected, atol=1e-6)


def test_torchscript_through_inpaint_filler():
    space = ImageSpace(0.5, 0.25)
    filler = Inpaint(TorchScriptInpainter(torch.jit.script(MeanFill())), space)
    inputs = space.to_inputs(torch.rand(2, 3, 16, 16))
    holes = _holes(2, 16, 16)
    out = filler(inputs, holes)
    assert out.shape == inputs.shape
    assert torch.equal(out[~holes.expand_as(inputs)], inputs[~holes.expand_as(inputs)])


def test_torchscript_bad_models(tmp_path):
    with pytest.raises(FileNotFoundError):
        TorchScriptInpainter(tmp_path / "missing.pt")
    with pytest.raises(TypeError, match="model"):
        TorchScriptInpainter(MeanFill())
    bad = TorchScriptInpainter(torch.jit.script(WrongShape()))
    with pytest.raises(ValueError, match="returned"):
        bad(torch.rand(1, 3, 16, 16), _holes(1, 16, 16))
    with pytest.raises(TypeError, match="holes"):
        TorchScriptInpainter(torch.jit.script(MeanFill()))(
            torch.rand(1, 3, 16, 16), _holes(1, 16, 16).float()
        )
