"""Stalder Tables 1 and 2 through the evaluation registry."""

import json
import math

import pytest
import torch

from captum_ext.attr import ExplainerAttribution
from captum_ext.data.shapes import ShapesDataset
from captum_ext.evaluation.explainer_tables import ExplainerTables, explainer_tables, write_tables
from captum_ext.evaluation.methods import MethodSpec, default_methods
from captum_ext.metrics import segmentation_scores
from captum_ext.models.explainer_nets import build_explainer_net
from tests.conftest import TinyCNN


class Oracle:
    """Returns the ground-truth mask of the target class (looked up by image)."""

    def __init__(self, dataset):
        self.images = torch.stack([dataset[i]["image"] for i in range(len(dataset))])
        self.masks = torch.stack([dataset[i]["masks"] for i in range(len(dataset))])

    def attribute(self, inputs, target):
        index = [int((self.images - x).abs().flatten(1).sum(1).argmin()) for x in inputs]
        return self.masks[index, target].unsqueeze(1).expand(-1, 3, -1, -1)


@pytest.fixture(scope="module")
def setup():
    torch.manual_seed(0)
    dataset = ShapesDataset(6, image_size=32, num_classes=4, split="test")
    model = TinyCNN(num_classes=4).eval()
    net = build_explainer_net("unet", 4, width=4, depth=1).eval()
    specs = [
        MethodSpec("Explainer", lambda m: ExplainerAttribution(m, explainer=net), {}, 64),
        MethodSpec("Oracle", lambda m: Oracle(dataset), {}, 5),
    ] + default_methods(32, include=["gradcam"], space=dataset.space)
    result = explainer_tables(
        model, dataset, specs, table1_images=4, image_batch_size=4, show_progress=False
    )
    return dataset, model, net, result


def test_table_shapes_and_sanity_rows(setup):
    dataset, _, _, result = setup
    assert set(result.table1) == {"Explainer", "Oracle", "GradCAM"}
    assert all(torch.tensor(m).shape == (4, 5) for m in result.table1.values())
    sanity = result.sanity
    assert sanity["G.T."]["iou"] == pytest.approx(1.0) and sanity["G.T."]["mae"] == 0.0
    assert sanity["0"]["iou"] == 0.0
    fg = torch.stack(
        [
            (dataset[i]["masks"] * dataset[i]["labels"][:, None, None]).amax(0).mean()
            for i in range(6)
        ]
    )
    assert sanity["1"]["accuracy"] == pytest.approx(float(fg.mean()), rel=1e-5)
    assert sanity["0.5"]["mae"] == pytest.approx(0.5)
    assert result.settings["table1_images"] == 4 and result.settings["table2_images"] == 6


def test_oracle_matches_the_ground_truth_row(setup):
    *_, result = setup
    for key in ("accuracy", "iou", "mae", "saliency"):
        assert result.table2["Oracle"][key] == pytest.approx(result.sanity["G.T."][key], abs=1e-5)


def test_explainer_row_is_its_aggregated_sigmoid_mask(setup):
    dataset, _, net, result = setup
    x = torch.stack([dataset[i]["image"] for i in range(6)])
    labels = torch.stack([dataset[i]["labels"] for i in range(6)]) > 0.5
    gt = torch.stack([dataset[i]["masks"] for i in range(6)])
    with torch.no_grad():
        s = net(x).sigmoid()
    present = labels[:, :, None, None]
    scores = segmentation_scores(
        (s * present).amax(1, keepdim=True), (gt * present).amax(1, keepdim=True)
    )
    assert result.table2["Explainer"]["iou"] == pytest.approx(float(scores["iou"].mean()), rel=1e-5)


def test_diagonal_ratio_and_report(setup, tmp_path):
    *_, result = setup
    hand = ExplainerTables(["a", "b"], table1={"m": [[0.9, 0.8, 0.1], [0.7, 0.3, 0.6]]})
    assert hand.diagonal_ratio("m") == pytest.approx(((0.8 + 0.6) / 2) / ((0.1 + 0.3) / 2))
    paths = write_tables(result, tmp_path)
    payload = json.loads(paths["json"].read_text())
    assert payload["class_names"] == ["disc", "square", "triangle", "cross"]
    text = paths["markdown"].read_text()
    assert "Table 1" in text and "| ↑ IoU |" in text and "G.T." in text
    assert not math.isnan(payload["table1_diagonal_ratio"]["Oracle"])


def test_registry_explainer_method_loads_a_checkpoint(tmp_path):
    from captum_ext.evaluation.methods import METHODS, MethodContext, explainer_method
    from captum_ext.models.weights import save_weights

    net = build_explainer_net("unet", 4, width=4, depth=1)
    path = save_weights(tmp_path / "e.pt", net.config, net.state_dict())
    spec = explainer_method(str(path), name="Mine")(MethodContext((16, 16)))
    method = spec.build(TinyCNN(4).eval())
    assert spec.name == "Mine" and isinstance(method, ExplainerAttribution)
    x = torch.rand(2, 3, 16, 16)
    assert method.attribute(x, target=1).shape == x.shape
    assert {"explainer", "rtis"} <= set(METHODS)
    with pytest.raises(ValueError, match="variant"):
        explainer_method(str(path), variant="other")(MethodContext((16, 16))).build(TinyCNN(4))


def test_occlusion_class_maps_come_from_one_sweep_and_equal_per_class_calls():
    from captum.attr import Occlusion

    from captum_ext.evaluation.explainer_tables import class_maps
    from captum_ext.metrics import normalize_map

    class CountingCNN(TinyCNN):
        calls = 0

        def forward(self, x):
            CountingCNN.calls += 1
            return super().forward(x)

    torch.manual_seed(0)
    model = CountingCNN(num_classes=4).eval()
    x = torch.rand(3, 3, 16, 16)
    kwargs = {
        "sliding_window_shapes": (3, 4, 4),
        "strides": (3, 4, 4),
        "baselines": 0.0,
        "perturbations_per_eval": 4,
    }
    spec = MethodSpec("Occlusion", Occlusion, kwargs, batch_size=2)
    wanted = torch.ones(3, 4, dtype=torch.bool)
    wanted[1, 2] = False
    maps = class_maps(Occlusion(model), spec, x, wanted)
    # Per chunk of spec.batch_size = 2 images (two chunks): the unperturbed pass, then
    # 16 windows by 4.
    assert CountingCNN.calls == 2 * (1 + 16 // 4)
    for i in range(3):
        for c in range(4):
            alone = Occlusion(model).attribute(x[i : i + 1], target=c, **kwargs)
            expected = normalize_map(alone.mean(1, keepdim=True))[0, 0] * wanted[i, c]
            assert torch.allclose(maps[i, c], expected, atol=1e-6), (i, c)


def test_tables_reuse_the_occlusion_sweeps_of_the_harness():
    from captum.attr import Occlusion

    from captum_ext.evaluation.harness import evaluate_attributions

    swept = []

    class CountingOcclusion(Occlusion):
        def attribute(self, inputs, **options):
            swept.append(inputs.shape[0])
            return super().attribute(inputs, **options)

    torch.manual_seed(0)
    dataset = ShapesDataset(6, image_size=32, num_classes=4, split="test")
    model = TinyCNN(num_classes=4).eval()
    kwargs = {"sliding_window_shapes": (3, 8, 8), "strides": (3, 8, 8)}
    spec = MethodSpec("Occlusion", CountingOcclusion, kwargs, batch_size=64)
    options = dict(table1_images=3, image_batch_size=4, show_progress=False)
    fresh = explainer_tables(model, dataset, [spec], **options)
    assert sum(swept) == len(dataset)
    swept.clear()
    cache: dict = {}
    evaluate_attributions(
        model, dataset, [spec], show_progress=False, figure_rows=0, steps=4, map_cache=cache
    )
    with_pairs = sum(bool(dataset[i]["labels"].any()) for i in range(len(dataset)))
    assert sum(swept) == with_pairs == len({index for _, index in cache})
    swept.clear()
    reused = explainer_tables(model, dataset, [spec], **options, map_cache=cache)
    assert sum(swept) == len(dataset) - with_pairs  # only images the harness had no pair of
    torch.testing.assert_close(
        torch.tensor(reused.table1["Occlusion"]),
        torch.tensor(fresh.table1["Occlusion"]),
        equal_nan=True,
    )
    assert reused.table2["Occlusion"] == pytest.approx(fresh.table2["Occlusion"])


def test_class_masks_figure_rows_and_columns(setup, tmp_path):
    from PIL import Image

    from captum_ext.evaluation.explainer_tables import write_class_masks_figure

    dataset, model, _, _ = setup
    specs = [MethodSpec("Oracle", lambda m: Oracle(dataset), {}, 5)] + default_methods(
        32, include=["gradcam"], space=dataset.space
    )
    path = write_class_masks_figure(model, dataset, specs, tmp_path / "class_masks.png")
    first = next(i for i in range(len(dataset)) if int(dataset[i]["labels"].sum()) >= 2)
    present = int(dataset[first]["labels"].sum())
    # a row for the image and ground truth, one per method; a column per present class
    assert Image.open(path).size == (round(190 * (1 + present)), 190 * 3)


def test_class_masks_figure_needs_an_image_with_two_classes(tmp_path):
    from captum_ext.evaluation.explainer_tables import write_class_masks_figure

    single = [s for s in ShapesDataset(12, image_size=32, num_classes=4) if s["labels"].sum() == 1]
    specs = default_methods(32, include=["gradcam"])
    with pytest.raises(ValueError, match="two or more classes"):
        write_class_masks_figure(
            TinyCNN(num_classes=4).eval(), single[:2], specs, tmp_path / "f.png"
        )
