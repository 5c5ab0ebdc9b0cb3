import pytest
import torch

from captum_ext.fillers import Constant, Filler, Inpaint, UniformNoise
from captum_ext.fillers.perturber import Perturber, fill_holes
from captum_ext.inpainters import OpenCVInpainter


def _holes(p, n, h=12, w=10, seed=0):
    generator = torch.Generator().manual_seed(seed)
    return torch.rand(p, n, 1, h, w, generator=generator) < 0.4


def test_fill_holes_equals_where_with_broadcasting():
    generator = torch.Generator().manual_seed(1)
    images = torch.randn(3, 2, 12, 10, generator=generator) * 50
    reference = torch.randn(3, 2, 12, 10, generator=generator)
    holes = _holes(4, 3)
    expected = torch.where(holes, reference[None], images[None])
    out = fill_holes(images, reference, holes)
    assert out.shape == (4, 3, 2, 12, 10)
    assert torch.equal(out, expected)
    half = fill_holes(images.half(), reference.half(), holes)
    assert half.dtype == torch.float16
    assert torch.equal(half, torch.where(holes, reference.half()[None], images.half()[None]))


@pytest.mark.parametrize(
    "filler",
    [Constant(0.25), UniformNoise(), Inpaint(OpenCVInpainter("telea"))],
    ids=["constant", "uniform-noise", "telea"],
)
def test_tiled_equals_filling_each_copy(filler):
    p, n = 3, 2
    inputs = torch.rand(n, 3, 12, 10)
    holes = _holes(p, n)
    perturb = Perturber(filler, inputs, torch.Generator().manual_seed(0))
    out = perturb.tiled(holes)
    assert out.shape == (p * n, 3, 12, 10)
    for j in range(p):
        for i in range(n):
            copy = out[j * n + i]
            assert torch.equal(copy[:, ~holes[j, i, 0]], inputs[i][:, ~holes[j, i, 0]])
    index = torch.arange(n).repeat(p)
    assert torch.equal(out, perturb(index, holes.flatten(0, 1)))
    if not filler.needs_holes:  # one reference per example, shared by its copies
        assert torch.equal(out, torch.where(holes, perturb.reference, inputs).flatten(0, 1))


class _NanFiller(Filler):
    def reference(self, inputs, holes=None, *, generator=None):
        return torch.full_like(inputs, float("nan"))


def test_non_finite_reference_is_rejected():
    with pytest.raises(ValueError, match="_NanFiller returned a non-finite reference"):
        Perturber(_NanFiller(), torch.rand(1, 3, 4, 4))
