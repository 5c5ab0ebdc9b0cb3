"""The evaluation harness: pairs, metric wiring, report files, shapes-world entry point."""

import json
import math

import matplotlib.image
import pytest
import torch
from captum.attr import Occlusion, Saliency
from torch.utils.data import Dataset

from captum_ext.attr import RandomAttribution
from captum_ext.data.shapes import ShapesDataset
from captum_ext.evaluation import (
    EvaluationResult,
    MethodSpec,
    default_methods,
    evaluate_attributions,
    evaluate_shapes_world,
    pointing_markdown,
    pointing_per_class,
    write_report,
)
from captum_ext.evaluation.harness import COLUMNS
from captum_ext.metrics import (
    continuous_iou,
    deletion_auc,
    deletion_curve,
    insertion_auc,
    normalize_map,
    pointing_accuracy,
    pointing_game,
    saliency_metric,
    scaled_tolerance,
    soft_accuracy,
)
from captum_ext.models.shapes_classifier import ShapesClassifier


@pytest.fixture(scope="module")
def world():
    torch.manual_seed(0)
    return ShapesDataset(3, image_size=32, split="test"), ShapesClassifier(width=4).eval()


def pairs_of(dataset):
    return [
        (i, c)
        for i in range(len(dataset))
        for c in dataset[i]["labels"].nonzero().flatten().tolist()
    ]


def test_pairs_and_metrics_match_direct_calls(world):
    dataset, model = world
    spec = MethodSpec("Random", RandomAttribution, {"seed": 3}, batch_size=100)
    result = evaluate_attributions(
        model, dataset, [spec], score="sigmoid", show_progress=False, steps=7
    )
    pairs = pairs_of(dataset)
    assert result.pairs == pairs
    x = torch.stack([dataset[i]["image"] for i, _ in pairs])
    target = torch.tensor([c for _, c in pairs])
    masks = torch.stack([dataset[i]["masks"][c] for i, c in pairs])
    maps = RandomAttribution(model).attribute(x, target=target, seed=3, return_map=True)
    got = {k: torch.tensor(v) for k, v in result.per_pair["Random"].items()}
    tol = scaled_tolerance(32)
    assert torch.equal(got["pointing"], pointing_game(maps, masks=masks, tolerance=tol).float())
    assert torch.allclose(got["iou"], continuous_iou(normalize_map(maps), masks))
    assert torch.allclose(got["accuracy"], soft_accuracy(normalize_map(maps), masks))
    assert torch.allclose(
        got["deletion_auc"], deletion_auc(model, x, maps, target, score="sigmoid", steps=7)
    )
    assert torch.allclose(
        got["insertion_auc"], insertion_auc(model, x, maps, target, score="sigmoid", steps=7)
    )
    assert torch.allclose(got["saliency"], saliency_metric(model, x, maps, target, score="sigmoid"))
    curve = deletion_curve(model, x, maps, target, score="sigmoid", steps=7)
    assert result.curve_fractions == pytest.approx(curve.fractions.tolist())
    assert result.curves["Random"]["deletion_curve"] == pytest.approx(
        curve.scores.mean(0).tolist(), abs=1e-6
    )
    assert len(result.curves["Random"]["insertion_curve"]) == 8
    assert bool((got["seconds_per_pair"] > 0).all())
    table = result.table()["Random"]
    assert table["iou"] == pytest.approx(got["iou"].mean().item())
    assert (table["pointing"], table["pointing_pairs"]) == pytest.approx(
        pointing_accuracy(got["pointing"], target)
    )
    assert result.sanity["G.T."]["iou"] == 1.0 and result.sanity["0"]["iou"] == 0.0
    assert result.settings["pointing_tolerance_px"] == pytest.approx(tol)


@pytest.mark.filterwarnings("ignore:Input Tensor 0 did not already require gradients")
def test_method_batch_size_does_not_change_maps(world):
    dataset, model = world

    def make(b):
        return MethodSpec("Saliency", Saliency, {"abs": True}, batch_size=b)

    a = evaluate_attributions(
        model, dataset, [make(1)], show_progress=False, figure_rows=0, steps=4
    )
    b = evaluate_attributions(
        model, dataset, [make(64)], show_progress=False, figure_rows=0, steps=4
    )
    for key in ("iou", "pointing", "deletion_auc"):
        assert torch.allclose(
            torch.tensor(a.per_pair["Saliency"][key]),
            torch.tensor(b.per_pair["Saliency"][key]),
            atol=1e-5,
        )
    assert a.figure is None


def test_occlusion_scores_every_class_of_an_image_from_one_sweep(world):
    dataset, model = world
    pairs = pairs_of(dataset)
    assert len(pairs) > len(dataset)  # some image has two classes
    kwargs = {"sliding_window_shapes": (3, 8, 8), "strides": (3, 4, 4)}
    swept = []

    class CountingOcclusion(Occlusion):
        def attribute(self, inputs, **options):
            swept.append(inputs.shape[0])
            return super().attribute(inputs, **options)

    spec = MethodSpec("Occlusion", CountingOcclusion, kwargs, batch_size=64)
    result = evaluate_attributions(
        model, dataset, [spec], show_progress=False, figure_rows=0, steps=4
    )
    x = torch.stack([dataset[i]["image"] for i, _ in pairs])
    target = torch.tensor([c for _, c in pairs])
    masks = torch.stack([dataset[i]["masks"][c] for i, c in pairs])
    direct = Occlusion(model).attribute(x, target=target, **kwargs).mean(dim=1, keepdim=True)
    got = result.per_pair["Occlusion"]
    assert torch.allclose(torch.tensor(got["iou"]), continuous_iou(normalize_map(direct), masks))
    assert torch.allclose(
        torch.tensor(got["deletion_auc"]), deletion_auc(model, x, direct, target, steps=4)
    )
    assert swept == [len(dataset)]  # one sweep per image for all its classes, not per pair


def test_pointing_per_class_is_the_mean_over_each_class_then_over_classes(tmp_path):
    # Class 0: 1 hit of 1; class 2: 1 of 3 -> class mean (1 + 1/3) / 2, pair mean 2/4.
    hits = [1.0, 0.0, 0.0, 1.0]
    result = EvaluationResult(
        ["m"],
        {"m": {key: hits if key == "pointing" else [math.nan] * 4 for key in COLUMNS}},
        [(0, 2), (1, 2), (2, 2), (2, 0)],
        {},
        {},
        class_names=["disc", "square", "triangle"],
    )
    assert result.table()["m"]["pointing"] == pytest.approx(2 / 3)  # the headline: class mean
    assert result.table()["m"]["pointing_pairs"] == 0.5
    assert result.class_table()["m"] == pytest.approx({0: 1.0, 2: 1 / 3})
    assert pointing_per_class(result)["m"] == pytest.approx(
        {"disc": 1.0, "triangle": 1 / 3, "mean over classes": 2 / 3}
    )
    lines = pointing_markdown(result).splitlines()
    assert lines[0] == "| Method | disc | triangle | mean over classes |"
    assert lines[2] == "| (pairs) | 1 | 3 | 4 |"
    assert lines[3] == "| m | 1.000 | 0.333 | 0.667 |"
    payload = json.loads(write_report(result, tmp_path)["json"].read_text())
    assert payload["pointing_per_class"]["m"]["mean over classes"] == pytest.approx(2 / 3)
    with pytest.raises(ValueError, match="unknown metric 'hits'"):
        result.class_table("hits")


def test_report_names_classes_of_the_dataset(world, tmp_path):
    dataset, model = world
    spec = default_methods(32, include=["random"])[0]
    result = evaluate_attributions(model, dataset, [spec], show_progress=False, steps=4)
    assert result.class_names == list(dataset.class_names)
    by_class = result.class_table()["Random"]
    for c, value in by_class.items():
        pointing = result.per_pair["Random"]["pointing"]
        hits = [v for (_, k), v in zip(result.pairs, pointing) if k == c]
        assert value == pytest.approx(sum(hits) / len(hits))
    text = write_report(result, tmp_path)["markdown"].read_text()
    assert "## Pointing game per class" in text
    assert all(dataset.class_names[c] in text for c in by_class)


class BoxesOnly(Dataset):
    """The shapes world without masks, with a void border marked invalid."""

    def __init__(self, base):
        self.base = base

    def __len__(self):
        return len(self.base)

    def __getitem__(self, i):
        s = dict(self.base[i])
        del s["masks"]
        return s


def test_boxes_only_dataset_gives_pointing_and_no_segmentation(world, tmp_path):
    dataset, model = world
    spec = default_methods(32, include=["random"])[0]
    result = evaluate_attributions(model, BoxesOnly(dataset), [spec], show_progress=False, steps=4)
    assert len(result.pairs) == len(pairs_of(dataset))
    assert all(math.isnan(v) for v in result.per_pair["Random"]["iou"])
    assert not any(math.isnan(v) for v in result.per_pair["Random"]["pointing"])
    paths = write_report(result, tmp_path)
    assert "figure" not in paths
    payload = json.loads(paths["json"].read_text())
    assert payload["table"]["Random"]["iou"] is None
    assert "| Random |" in paths["markdown"].read_text()


def test_bad_arguments(world):
    dataset, model = world
    spec = default_methods(32, include=["random"])[0]
    with pytest.raises(ValueError, match="`methods` must hold at least one"):
        evaluate_attributions(model, dataset, [])
    with pytest.raises(ValueError, match="duplicate names"):
        evaluate_attributions(model, dataset, [spec, spec])
    with pytest.raises(ValueError, match="`score` must be one of"):
        evaluate_attributions(model, dataset, [spec], score="probability")
    with pytest.raises(ValueError, match="`num_images` must be >= 1"):
        evaluate_attributions(model, dataset, [spec], num_images=0)


def test_shapes_world_report_files(world, tmp_path):
    _, model = world
    model.train()
    result = evaluate_shapes_world(
        tmp_path,
        num_images=2,
        image_size=32,
        model=model,
        methods=["gradcam", "random"],
        figure_rows=2,
        show_progress=False,
    )
    assert model.training  # restored after the run
    assert result.methods == ["GradCAM", "Random"]
    assert result.settings["score"] == "sigmoid"
    markdown = (tmp_path / "metrics.md").read_text()
    for header in (
        "Pointing",
        "IoU",
        "Soft acc.",
        "MAE",
        "Deletion AUC",
        "Insertion AUC",
        "Saliency",
        "s / pair",
    ):
        assert header in markdown
    payload = json.loads((tmp_path / "metrics.json").read_text())
    assert set(payload["table"]) == {"GradCAM", "Random"}
    assert len(payload["per_pair"]["GradCAM"]["iou"]) == len(result.pairs)
    assert len(payload["curves"]["GradCAM"]["deletion_curve"]) == len(payload["curve_fractions"])
    assert matplotlib.image.imread(tmp_path / "curves.png").shape[0] > 100
    image = matplotlib.image.imread(tmp_path / "figure.png")
    assert image.shape[0] > 100 and image.shape[1] > image.shape[0]  # 2 rows, 4 columns
    assert result.figure.maps["GradCAM"].shape == (2, 32, 32)
