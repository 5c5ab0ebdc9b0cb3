"""Training from Python with a shipped preset (what ``captum-ext demo --retrain`` calls)."""

import pytest
import torch

from captum_ext.models.pretrained import load_shapes_classifier, load_shapes_explainer
from captum_ext.training.presets import fit, preset_config, train_preset

TINY = {
    "trainer": {
        "max_epochs": 1,
        "limit_train_batches": 2,
        "limit_val_batches": 1,
        "accelerator": "cpu",
        "logger": False,
        "enable_progress_bar": False,
        "precision": "32-true",
    },
}


def test_train_preset_writes_the_weights_the_loaders_read(tmp_path):
    classifier = train_preset(
        "classifier",
        "shapes_classifier",
        tmp_path / "shapes_classifier.pt",
        default_root_dir=tmp_path / "runs",
        overrides={
            **TINY,
            "model": {"width": 4},
            "data": {
                "image_size": 32,
                "num_train": 16,
                "num_val": 8,
                "num_test": 8,
                "batch_size": 8,
            },
        },
    )
    # The override directory's classifier replaces the shipped one (width 4, not 32).
    model = load_shapes_classifier(checkpoint_dir=tmp_path)
    assert model.classifier.in_features != load_shapes_classifier().classifier.in_features
    assert classifier == tmp_path / "shapes_classifier.pt"
    assert (tmp_path / "runs").is_dir()

    # The Explainer is trained against that classifier, named by an override.
    train_preset(
        "explainer",
        "shapes_explainer",
        tmp_path / "shapes_explainer.pt",
        default_root_dir=tmp_path / "runs_explainer",
        overrides={
            **TINY,
            "model": {
                "classifier_checkpoint": str(classifier),
                "arch_kwargs": {"width": 4, "depth": 1},
            },
            "data": {
                "init_args": {
                    "image_size": 32,
                    "num_train": 16,
                    "num_val": 8,
                    "num_test": 8,
                    "batch_size": 8,
                }
            },
        },
    )
    (checkpoint,) = (tmp_path / "runs_explainer").rglob("epoch=*.ckpt")
    hparams = torch.load(checkpoint, map_location="cpu", weights_only=False)["hyper_parameters"]
    assert hparams["classifier_checkpoint"] == str(classifier)
    net = load_shapes_explainer(checkpoint_dir=tmp_path)
    assert net(torch.zeros(1, 3, 32, 32)).shape == (1, 6, 32, 32)
    assert net.config["width"] == 4


def test_preset_config_and_bad_task():
    config = preset_config("shapes_explainer", overrides={"model": {"lr": 0.5}})
    assert config["model"]["lr"] == 0.5 and config["model"]["arch"] == "unet"  # merged
    with pytest.raises(ValueError, match="`task` must be one of"):
        fit("segmenter", [])
