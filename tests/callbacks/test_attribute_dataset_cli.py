"""``captum-ext attribute-dataset`` on the shapes world with any method by class path."""

import pytest
import torch
from captum.attr import IntegratedGradients

from captum_ext.cli.main import main
from captum_ext.data.shapes import ShapesDataset
from captum_ext.models.pretrained import load_shapes_classifier
from captum_ext.models.shapes_classifier import ShapesClassifier
from captum_ext.models.weights import save_weights
from lightning_callbacks import AttributionShards

DATA = [
    "--data",
    "captum_ext.data.shapes.ShapesDataModule",
    "--data.image_size",
    "32",
    "--data.num_test",
    "9",
    "--data.batch_size",
    "4",
    "--show_progress",
    "false",
]


def test_cli_writes_integrated_gradients_of_a_checkpoint(tmp_path, capsys):
    torch.manual_seed(0)
    checkpoint = save_weights(
        tmp_path / "clf.pt", {"num_classes": 6, "width": 8}, ShapesClassifier(width=8).state_dict()
    )
    out = tmp_path / "attr"
    argv = [
        "attribute-dataset",
        str(out),
        "--method",
        "captum.attr.IntegratedGradients",
        "--attribute_args",
        '{"n_steps": 4}',
        "--checkpoint",
        str(checkpoint),
        "--batches_per_shard",
        "2",
        *DATA,
    ]
    main(argv)
    assert "2 shard(s) written, 0 already there" in capsys.readouterr().out
    shards = AttributionShards(out)
    assert shards.sample_ids() == list(range(9))
    model = load_shapes_classifier(checkpoint)
    image = ShapesDataset(9, image_size=32, split="test")[5]["image"][None]
    with torch.no_grad():
        target = model(image).argmax(1)
    expected = IntegratedGradients(model).attribute(image, target=target, n_steps=4)
    assert torch.allclose(shards[5]["attribution"], expected.mean(1)[0:1], atol=1e-5)
    assert int(shards[5]["target"]) == int(target)
    main(argv)  # resume: everything is already there
    assert "0 shard(s) written, 2 already there" in capsys.readouterr().out


def test_cli_default_is_the_shipped_classifier_on_the_shapes_world(tmp_path):
    from captum.attr import Saliency

    out = tmp_path / "shipped"
    main(["attribute-dataset", str(out), "--method", "Saliency", "--target", "label",
          "--data", "captum_ext.data.shapes.ShapesDataModule", "--data.num_test", "8",
          "--data.batch_size", "4", "--show_progress", "false"])  # fmt: skip
    shards = AttributionShards(out)
    dataset = ShapesDataset(8, split="test")  # the data module's default 64 x 64 images
    model = load_shapes_classifier()
    images = torch.stack([dataset[i]["image"] for i in range(8)])
    labels = torch.stack([dataset[i]["labels"] for i in range(8)])
    with torch.no_grad():
        logits = model(images)
    targets = torch.where(labels > 0.5, logits, -torch.inf).argmax(1)
    expected = Saliency(model).attribute(images.clone(), target=targets).mean(1)
    for i in shards.sample_ids():
        assert int(shards[i]["target"]) == int(targets[i])
        assert torch.allclose(shards[i]["attribution"][0], expected[i], atol=1e-6)


def test_cli_layer_method_with_a_model_class_path(tmp_path):
    out = tmp_path / "gradcam"
    main(
        [
            "attribute-dataset",
            str(out),
            "--method",
            "LayerGradCam",
            "--init_args",
            '{"layer": "features.6"}',
            "--target",
            "2",
            "--model",
            "captum_ext.models.shapes_classifier.ShapesClassifier",
            "--model.width",
            "8",
            "--dtype",
            "float16",
            *DATA,
        ]
    )
    shards = AttributionShards(out)
    assert shards[0]["attribution"].shape == (1, 32, 32)  # 4x4 Grad-CAM upsampled
    assert shards[0]["attribution"].dtype == torch.float16
    assert {int(shards[i]["target"]) for i in shards.sample_ids()} == {2}


def test_cli_rejects_unknown_methods(tmp_path, capsys):
    with pytest.raises(SystemExit) as info:
        main(
            [
                "attribute-dataset",
                str(tmp_path),
                "--method",
                "captum.attr.Nope",
                "--model",
                "captum_ext.models.shapes_classifier.ShapesClassifier",
                *DATA,
            ]
        )
    assert info.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith("captum-ext attribute-dataset: error: `method` 'captum.attr.Nope' cannot")
