"""Reference-image entropy (FGVis Table A2)."""

import math

import pytest
import torch

from captum_ext.fillers import Constant, GaussianNoise, Inpaint
from captum_ext.metrics import max_entropy, reference_entropy
from tests.conftest import TinyCNN
from tests.metrics.helpers import PixelSum


def test_entropy_by_hand():
    x = torch.rand(2, 1, 2, 2)
    assert torch.allclose(
        reference_entropy(PixelSum(), x, Constant(0.0)), torch.full((2,), math.log(3))
    )
    # Reference of ones: logits (4, -4, 0).
    p = torch.tensor([4.0, -4.0, 0.0]).softmax(0)
    expected = -(p * p.log()).sum()
    assert torch.allclose(reference_entropy(PixelSum(), x, Constant(1.0)), expected.expand(2))
    assert max_entropy(1000) == pytest.approx(6.9078, abs=1e-4)


def test_random_reference_is_seeded_and_inpainting_gets_whole_image_holes():
    model = TinyCNN().eval()
    x = torch.zeros(3, 3, 8, 8)

    def run(seed):
        return reference_entropy(
            model,
            x,
            GaussianNoise(0.5),
            batch_size=2,
            generator=torch.Generator().manual_seed(seed),
        )

    assert torch.equal(run(0), run(0)) and not torch.equal(run(0), run(1))
    assert bool((run(0) <= math.log(4) + 1e-6).all())

    class Grey:
        def __call__(self, images, holes):
            assert bool(holes.all())
            return torch.where(holes, torch.full_like(images, 0.5), images)

    grey = reference_entropy(PixelSum(), torch.rand(1, 1, 2, 2), Inpaint(Grey()))
    p = torch.tensor([2.0, -2.0, 0.0]).softmax(0)
    assert grey.item() == pytest.approx(-(p * p.log()).sum().item(), abs=1e-6)


def test_bad_input():
    with pytest.raises(TypeError, match="`filler` must be a captum_ext.fillers.Filler"):
        reference_entropy(PixelSum(), torch.rand(1, 1, 2, 2), "zero")
    with pytest.raises(ValueError, match="`inputs` must have 4 dimensions"):
        reference_entropy(PixelSum(), torch.rand(1, 2, 2), Constant(0.0))
    with pytest.raises(ValueError, match="`batch_size` must be >= 1"):
        reference_entropy(PixelSum(), torch.rand(1, 1, 2, 2), Constant(0.0), batch_size=0)
    with pytest.raises(ValueError, match="`num_classes` must be >= 1"):
        max_entropy(0)
