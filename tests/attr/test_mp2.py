"""MP2 / MP2-G: greedy order on a model with a known gradient, per-example stopping, bad input."""

import pytest
import torch
from torch import nn

from captum_ext.attr import MP2
from captum_ext.fillers import Constant, Inpaint
from captum_ext.inpainters import OpenCVInpainter


class CellModel(nn.Module):
    """Logit 0 = sum of channel 0 weighted per 2 x 2 cell of an 8 x 8 image (4 x 4 grid)."""

    def __init__(self, cell_weights):
        super().__init__()
        self.register_buffer(
            "weights", cell_weights.repeat_interleave(2, -1).repeat_interleave(2, -2)
        )

    def forward(self, x):
        s = (x[:, 0] * self.weights).flatten(1).sum(dim=1)
        return torch.stack([s, torch.zeros_like(s)], dim=1)


def _ranked(cell_weights):
    return torch.argsort(cell_weights.flatten(), descending=True, stable=True)


def test_greedy_order_follows_the_steepest_descent():
    # With fill 0 on an all-ones image, removing cell c lowers the logit by 4 * w_c: the
    # gradient w.r.t. the cell is -4 * w_c, so cells go in decreasing w, two at a time.
    weights = torch.randperm(16, generator=torch.Generator().manual_seed(0)).float().view(4, 4)
    model = CellModel(weights)
    mp2 = MP2(model, filler=Constant(0.0), score="logit", grid_size=4)
    # Stop once the logit is <= 4 * sum of the 6 smallest weights (= 4 * 15): after 5
    # iterations (10 cells removed).
    out = mp2.attribute(torch.ones(1, 3, 8, 8), 0, stop_prob=60.0, return_map=True)
    grid = out[0, 0, ::2, ::2].flatten()
    order = _ranked(weights)
    expected = torch.zeros(16)
    for i, cell in enumerate(order[:10]):
        t = i // 2 + 1
        expected[cell] = 1 - (t - 1) / 5
    assert torch.allclose(grid, expected)


def test_rank_abs_uses_the_gradient_magnitude():
    weights = torch.tensor([[5.0, -9.0, 1.0, 0.0]] * 4)
    mp2 = MP2(
        CellModel(weights),
        filler=Constant(0.0),
        score="logit",
        grid_size=4,
        rank="abs",
        cells_per_step=4,
    )
    out = mp2.attribute(
        torch.ones(1, 3, 8, 8), 0, stop_prob=-1e6, max_iterations=1, binary=True, return_map=True
    )
    # |gradient| is largest for the -9 column, although removing it raises the score.
    assert torch.equal(out[0, 0, ::2, ::2], (weights == -9).float())
    descent = MP2(
        CellModel(weights), filler=Constant(0.0), score="logit", grid_size=4, cells_per_step=4
    )
    out = descent.attribute(
        torch.ones(1, 3, 8, 8), 0, stop_prob=-1e6, max_iterations=1, binary=True, return_map=True
    )
    assert torch.equal(out[0, 0, ::2, ::2], (weights == 5).float())


def test_per_example_stopping():
    weights = torch.arange(16.0).view(4, 4)
    mp2 = MP2(CellModel(weights), filler=Constant(0.0), score="logit", grid_size=4)
    x = torch.ones(2, 3, 8, 8)
    x[1] *= 0.5  # halves every drop: needs more iterations to reach the threshold
    out = mp2.attribute(x, 0, stop_prob=200.0, return_map=True)[:, 0, ::2, ::2]
    # example 0: 4 * 120 = 480 -> removing 15,14 (-116), 13,12 (-100), 11,10 (-84): 180 <= 200
    # example 1: 240 -> removing 15,14 (-58): 182 <= 200
    assert int((out[0] > 0).sum()) == 6 and int((out[1] > 0).sum()) == 2
    assert torch.isclose(out[0][out[0] > 0].min(), torch.tensor(1 / 3))
    assert torch.allclose(out[1][out[1] > 0], torch.ones(2))


def test_already_below_threshold_ranks_the_cells_by_the_first_step():
    weights = torch.randperm(16, generator=torch.Generator().manual_seed(1)).float().view(4, 4)
    mp2 = MP2(CellModel(weights), filler=Constant(0.0), score="logit", grid_size=4)
    with pytest.warns(UserWarning, match=r"already <= stop_prob .* example\(s\) \[0\]"):
        out = mp2.attribute(torch.ones(1, 3, 8, 8), 0, stop_prob=1e6, return_map=True)
    # Nothing to delete: every cell ranked by the first gradient (-4 w), two per rank, as
    # if removed in that order over ceil(16 / 2) = 8 steps.
    expected = torch.zeros(16)
    for place, cell in enumerate(_ranked(weights)):
        expected[cell] = 1 - (place // 2) / 8
    assert torch.allclose(out[0, 0, ::2, ::2].flatten(), expected)
    with pytest.warns(UserWarning, match="binary=True: the first step's cells"):
        first = mp2.attribute(
            torch.ones(1, 3, 8, 8), 0, stop_prob=1e6, binary=True, return_map=True
        )
    assert torch.equal(first[0, 0, ::2, ::2].flatten(), (expected == 1).float())


def test_a_target_below_chance_gets_a_map_that_captum_can_draw():
    from captum.attr import visualization as viz

    torch.manual_seed(0)
    model = nn.Sequential(
        nn.Conv2d(3, 4, 3, padding=1),
        nn.ReLU(),
        nn.AdaptiveAvgPool2d(2),
        nn.Flatten(),
        nn.Linear(16, 5),
    )
    x = torch.rand(1, 3, 16, 16)
    with torch.no_grad():
        probs = model(x).softmax(dim=1)[0]
    target = int(probs.argmin())
    assert probs[target] < 1 / 5  # already below the default stop_prob, 1 / num_classes
    with pytest.warns(UserWarning, match="already <= stop_prob"):
        attr = MP2(model, grid_size=8).attribute(x, target=target)
    assert attr.shape == x.shape and float(attr.min()) > 0 and float(attr.max()) == 1.0
    fig, _ = viz.visualize_image_attr(
        attr[0].permute(1, 2, 0).numpy(),
        x[0].permute(1, 2, 0).numpy(),
        method="blended_heat_map",
        sign="positive",
        use_pyplot=False,
    )
    assert fig is not None


class SaturatedModel(nn.Module):
    """Logit 0 = 100 + 4 * channel-0 mass of a bottom-right object: softmax exactly 1.0."""

    def __init__(self):
        super().__init__()
        weights = torch.zeros(8, 8)
        weights[4:, 4:] = torch.arange(1.0, 17.0).view(4, 4)
        self.register_buffer("weights", weights)

    def forward(self, x):
        s = 100 + 4 * (x[:, 0] * self.weights).flatten(1).sum(dim=1)
        return torch.stack([s, torch.zeros_like(s)], dim=1)


def test_a_saturated_score_breaks_ties_by_the_logit_not_in_raster_order():
    model, x = SaturatedModel(), torch.ones(1, 3, 8, 8)
    assert float(model(x).softmax(dim=1)[0, 0]) == 1.0  # every score gradient is 0
    mp2 = MP2(model, filler=Constant(0.0), score="softmax", grid_size=4)
    first = mp2.attribute(x, 0, stop_prob=0.5, max_iterations=1, binary=True, return_map=True)
    # The logit falls most when the object's heaviest cells go: grid cells (3, 3), (3, 2).
    expected = torch.zeros(4, 4)
    expected[3, 3] = expected[3, 2] = 1
    assert torch.equal(first[0, 0, ::2, ::2], expected)
    out = mp2.attribute(x, 0, stop_prob=0.5, return_map=True)[0, 0, ::2, ::2]
    object_cells = torch.zeros(4, 4, dtype=torch.bool)
    object_cells[2:, 2:] = True
    assert bool((out[object_cells] > 0).all())  # the object goes ...
    assert float(out[~object_cells].max()) < float(out[object_cells].min())  # ... first
    assert float(out[0].max()) < 1  # no band along the top row


class MaskSpy:
    def __init__(self):
        self.holes = []

    def __call__(self, images, holes):
        self.holes.append(holes.clone())
        return OpenCVInpainter()(images, holes)


def test_mp2_g_fills_the_current_mask_and_each_candidate_set():
    spy = MaskSpy()
    weights = torch.arange(16.0).view(4, 4)
    mp2_g = MP2(CellModel(weights), filler=Inpaint(spy), score="logit", grid_size=4)
    x = torch.rand(2, 3, 8, 8, generator=torch.Generator().manual_seed(0))
    out = mp2_g.attribute(x, 0, max_iterations=3, binary=True, return_map=True)
    # Per iteration t = 0..3: the current mask, then it plus each of the 4 parity sets of
    # kept cells (4 cells of 4 pixels each on a 4 x 4 grid, fewer once cells are removed).
    assert len(spy.holes) == 4 * 5 and all(h.shape[0] == 2 for h in spy.holes)
    current = [int(h[0].sum()) for h in spy.holes[::5]]
    assert current == [0, 8, 16, 24]  # 2 cells of 4 pixels per step
    assert torch.equal(spy.holes[-5].float(), out)
    first = torch.stack(spy.holes[1:5])[:, 0, 0, ::2, ::2]  # the 4 candidate sets at t = 0
    assert torch.equal(first.sum(dim=0), torch.ones(4, 4, dtype=torch.long))
    # No two cells of one set touch, so each is filled from its own surroundings.
    for cells in first:
        padded = torch.nn.functional.pad(cells.float()[None, None], (1, 1, 1, 1))
        neighbours = torch.nn.functional.conv2d(padded, torch.ones(1, 1, 3, 3)) - cells.float()
        assert not bool((neighbours[0, 0][cells] > 0).any())


def test_mp2_g_removes_the_evidence_first_not_raster_order():
    # Channel 0 is bright in one cell only; the score sums channel 0. Inpainting that cell
    # from its dark surroundings is the only removal that lowers the score, so it must go
    # first (with the fill of the current, empty mask every kept cell's gradient is 0).
    x = torch.zeros(1, 3, 8, 8)
    x[0, 0, 4:6, 6:8] = 1.0
    mp2_g = MP2(
        CellModel(torch.ones(4, 4)),
        filler=Inpaint(OpenCVInpainter()),
        score="logit",
        grid_size=4,
        cells_per_step=1,
    )
    out = mp2_g.attribute(x, 0, stop_prob=-1e6, max_iterations=1, binary=True, return_map=True)
    expected = torch.zeros(4, 4)
    expected[2, 3] = 1
    assert torch.equal(out[0, 0, ::2, ::2], expected)


def test_any_image_size_and_default_blur(tiny_model, images):
    out = MP2(tiny_model, grid_size=28).attribute(images, 2, max_iterations=3, return_map=True)
    assert out.shape == (3, 1, 16, 16)  # grid capped at 16 x 16
    assert float(out.min()) >= 0 and float(out.max()) <= 1


def test_works_under_no_grad(tiny_model, images):
    with torch.no_grad():
        out = MP2(tiny_model, grid_size=4).attribute(images, 0, max_iterations=2)
    assert out.shape == images.shape


@pytest.mark.parametrize(
    "init, kwargs, error, match",
    [
        (dict(grid_size=0), {}, ValueError, "grid_size"),
        (dict(cells_per_step=0), {}, ValueError, "cells_per_step"),
        (dict(rank="norm"), {}, ValueError, "rank"),
        (dict(filler="blur"), {}, TypeError, "filler"),
        ({}, dict(stop_prob="low"), TypeError, "stop_prob"),
        ({}, dict(max_iterations=0), ValueError, "max_iterations"),
        ({}, dict(seed=1.5), TypeError, "seed"),
        ({}, dict(target=9), ValueError, "target"),
    ],
)
def test_bad_arguments(tiny_model, images, init, kwargs, error, match):
    with pytest.raises(error, match=match):
        MP2(tiny_model, **init).attribute(images, **{"target": 0, **kwargs})
