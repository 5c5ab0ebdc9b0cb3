"""``captum-ext evaluate`` end to end on a tiny classifier file."""

import json

import torch

from captum_ext.cli.main import main
from captum_ext.models.shapes_classifier import ShapesClassifier
from captum_ext.models.weights import save_weights


def test_evaluate_command_writes_report(tmp_path, capsys):
    torch.manual_seed(0)
    weights = save_weights(
        tmp_path / "tiny.pt", {"num_classes": 6, "width": 4}, ShapesClassifier(width=4).state_dict()
    )
    out = tmp_path / "report"
    main(
        [
            "evaluate",
            "--num_images",
            "2",
            "--image_size",
            "32",
            "--methods",
            '["random", "gradcam"]',
            "--output_dir",
            str(out),
            "--checkpoint",
            str(weights),
            "--figure_rows",
            "1",
        ]
    )
    printed = capsys.readouterr().out
    assert "| Random |" in printed and "| GradCAM |" in printed
    payload = json.loads((out / "metrics.json").read_text())
    assert payload["settings"]["image_size"] == [32, 32]
    assert payload["settings"]["num_images"] == 2
    assert (out / "figure.png").stat().st_size > 0


def test_evaluate_command_is_listed(capsys):
    main(["--help"])
    assert "evaluate" in capsys.readouterr().out
