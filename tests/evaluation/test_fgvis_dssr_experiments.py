"""Hallucination (Table A1) and reference-entropy (Table A2) experiments, CLI and registry."""

import json
import math

import pytest
import torch
from torch import nn

from captum_ext.cli.main import main
from captum_ext.data.shapes import ShapesDataset, shapes_space
from captum_ext.evaluation.hallucination import (
    candidate_triples,
    hallucination_markdown,
    hallucination_rates,
    summarize,
)
from captum_ext.evaluation.methods import default_methods
from captum_ext.evaluation.reference_entropy import (
    Identity,
    entropy_markdown,
    reference_entropies,
    table_a2_fillers,
)
from captum_ext.fillers import Constant
from captum_ext.models.shapes_classifier import ShapesClassifier
from captum_ext.models.weights import save_weights


@pytest.fixture(scope="module")
def classifier():
    torch.manual_seed(0)
    return ShapesClassifier(num_classes=4, width=4).eval()


def test_candidate_triples_leave_out_both_top1_classes_and_equal_colours(classifier):
    space = shapes_space()
    starts = {"black": (0, 0, 0), "grey": (0.5, 0.5, 0.5)}
    refs = {"mid-grey": (0.5, 0.5, 0.5)}
    triples = candidate_triples(classifier, space, 32, starts, refs)
    assert {t["start"] for t in triples} == {"black"}  # grey start = grey reference: void
    with torch.no_grad():
        black = classifier(torch.full((1, 3, 32, 32), -2.0)).argmax().item()
        grey = classifier(torch.zeros(1, 3, 32, 32)).argmax().item()
    assert {t["class"] for t in triples} == set(range(4)) - {black, grey}


def test_hallucination_rates_count_final_top1(classifier):
    result = hallucination_rates(
        classifier,
        shapes_space(),
        32,
        {"black": (0, 0, 0)},
        {"mid-grey": (0.5,) * 3},
        iterations=3,
        show_progress=False,
    )
    rows = result["rows"]
    assert rows and all(isinstance(r["generated_with_defense"], bool) for r in rows)
    s = result["summary"]["black/mid-grey"]
    assert s["classes_tried"] == len(rows)
    generated = sum(r["generated_without_defense"] for r in rows)
    assert s["rate_without_defense"] == generated / len(rows)
    assert "| black | mid-grey |" in hallucination_markdown(result)


def _paper_setting(classifier: str) -> dict:
    """Table A1 in the paper's setting (black image, mid-grey reference, 500 iterations,
    64 x 64) on a shipped shapes classifier."""
    from captum_ext.models.pretrained import load_shapes_classifier

    return hallucination_rates(
        load_shapes_classifier(classifier),
        shapes_space(),
        64,
        {"black": (0, 0, 0)},
        {"mid-grey": (0.5,) * 3},
        iterations=500,
        show_progress=False,
    )


def test_defence_stops_hallucination_on_the_shipped_classifier():
    """Table A1 in the paper's setting (black image, mid-grey reference, 500 iterations).

    On the first shapes classifier the restoring gate of ActivationGradientFilter
    suppressed all 4 classes. On today's default (trained with object-free negatives)
    *triangle* is still generated with the defence (docs/methods/fgvis.md): the test
    holds the defence to at most that one class.
    """
    result = _paper_setting("shapes_classifier")
    s = result["summary"]["black/mid-grey"]
    assert s["classes_tried"] == 4
    assert s["generated_without_defense"] == 4
    assert s["generated_with_defense"] <= 1
    defended = {r["class"] for r in result["rows"] if r["generated_with_defense"]}
    assert defended <= {2}


def test_defence_stops_hallucination_on_the_silu_classifier():
    """Table A1 in the paper's setting on the shipped SiLU classifier (FGVis's defence
    beyond ReLU): the default's recipe with SiLU activations, 500 iterations, 64 x 64.

    Without the defence every class tried is generated; with it none (on all 32
    start x reference triples, one: docs/methods/fgvis.md). A filter that only bounded
    ``nn.ReLU`` would leave every SiLU call unfiltered and generate all four.
    """
    s = _paper_setting("shapes_classifier_silu")["summary"]["black/mid-grey"]
    assert s["classes_tried"] == 4
    assert s["generated_without_defense"] == 4
    assert s["generated_with_defense"] == 0


def test_summarize_counts_by_hand():
    rows = [
        {
            "start": "black",
            "reference": "mid-grey",
            "generated_without_defense": True,
            "generated_with_defense": False,
        },
        {
            "start": "black",
            "reference": "mid-grey",
            "generated_without_defense": True,
            "generated_with_defense": True,
        },
        {
            "start": "white",
            "reference": "mid-grey",
            "generated_without_defense": False,
            "generated_with_defense": False,
        },
    ]
    s = summarize(rows)
    assert s["black/mid-grey"]["rate_without_defense"] == 1.0
    assert s["black/mid-grey"]["rate_with_defense"] == 0.5
    assert s["all"]["classes_tried"] == 3 and s["all"]["generated_without_defense"] == 2


def test_reference_entropy_by_hand():
    model = nn.Sequential(nn.Flatten(), nn.Linear(3 * 8 * 8, 5))
    nn.init.zeros_(model[1].weight)
    with torch.no_grad():
        model[1].bias.copy_(torch.tensor([1.0, 0.0, 0.0, 0.0, 0.0]))
    dataset = ShapesDataset(4, 32, split="test")
    dataset_8 = [{"image": dataset[i]["image"][:, :8, :8]} for i in range(4)]
    result = reference_entropies(model, dataset_8, {"zero": Constant(0.0), "image": Identity()})
    p = torch.softmax(torch.tensor([1.0, 0, 0, 0, 0]), 0)
    expected = float(-(p * p.log()).sum())
    assert result["zero"]["mean"] == pytest.approx(expected, rel=1e-5)
    assert result["image"]["mean"] == pytest.approx(expected, rel=1e-5)
    assert result["maximum (5 classes)"]["mean"] == pytest.approx(math.log(5))
    assert "| zero |" in entropy_markdown(result, "m")


def test_table_a2_rows_cover_the_paper(classifier):
    names = list(table_a2_fillers(shapes_space()))
    assert any("sigma_n = 8" in n for n in names) and any("sigma_b = 10" in n for n in names)


def test_cli_commands_write_markdown_and_json(tmp_path):
    torch.manual_seed(0)
    weights = tmp_path / "cls.pt"
    model = ShapesClassifier(num_classes=6, width=4)
    save_weights(weights, {"num_classes": 6, "width": 4}, model.state_dict())
    main(
        [
            "reference-entropy",
            "--checkpoint",
            str(weights),
            "--num_images",
            "6",
            "--image_size",
            "32",
            "--output_dir",
            str(tmp_path / "entropy"),
        ]
    )
    payload = json.loads((tmp_path / "entropy" / "reference_entropy.json").read_text())
    assert payload["black image"]["count"] == 6
    main(
        [
            "hallucination",
            "--checkpoint",
            str(weights),
            "--iterations",
            "2",
            "--image_size",
            "32",
            "--paper_setting_only",
            "true",
            "--output_dir",
            str(tmp_path / "hall"),
        ]
    )
    payload = json.loads((tmp_path / "hall" / "hallucination.json").read_text())
    assert payload["summary"]["all"]["classes_tried"] in (4, 5)
    assert (tmp_path / "hall" / "hallucination.md").read_text().startswith("Generation game")


def test_registry_builds_fgvis_and_dssr(classifier):
    specs = default_methods(
        32,
        score="sigmoid",
        space=shapes_space(),
        include=["fgvis_deletion", "fgvis_preservation", "dssr_plus", "dssr_plus_mean_fill"],
    )
    assert [s.name for s in specs] == [
        "FGVis (deletion)",
        "FGVis (preservation)",
        "DSSR+",
        "DSSR+ (mean-colour reference)",
    ]
    x = torch.randn(2, 3, 32, 32)
    for spec in specs:
        method = spec.build(classifier)
        assert method.score == ("logit" if spec.name == "FGVis (deletion)" else "sigmoid")
        method.iterations = 2
        assert method.attribute(x, target=[0, 1], **spec.attribute_kwargs).shape == x.shape
