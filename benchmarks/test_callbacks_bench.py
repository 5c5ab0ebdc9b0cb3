"""Cost of one logging event of the Lightning callbacks on the shapes world.

Quick mode: 32 x 32 images, a width-8 classifier. Full mode: the shapes world's default
64 x 64 images and the shipped classifier's width 32. The events run exactly as inside
a Trainer (a real Trainer after ``validate``, so the fixed samples come from its
validation loader); the first event, which draws and fetches the samples, is excluded.
"""

from __future__ import annotations

import pytest
import torch
from lightning.pytorch import Trainer
from lightning.pytorch.loggers import CSVLogger

from captum_ext.data.shapes import ShapesDataModule, shapes_space
from captum_ext.training.classifier_module import ClassifierModule
from lightning_callbacks import FaithfulnessMetrics, MaskLogger


@pytest.fixture(scope="module")
def validated(settings, tmp_path_factory):
    image_size, width = (64, 32) if settings.full else (32, 8)
    data = ShapesDataModule(
        image_size=image_size, num_train=8, num_val=64, num_test=8, batch_size=16
    )
    module = ClassifierModule(width=width).to(settings.device)
    trainer = Trainer(
        accelerator="gpu" if settings.device.type == "cuda" else "cpu",
        devices=1,
        limit_val_batches=1,
        enable_progress_bar=False,
        enable_model_summary=False,
        logger=CSVLogger(tmp_path_factory.mktemp("bench")),
    )
    trainer.validate(module, datamodule=data)
    return trainer, module


def test_mask_logger_event(benchmark, validated):
    trainer, module = validated
    callback = MaskLogger("Saliency", num_samples=8, space=shapes_space())
    callback.log_event(trainer, module)  # draws and fetches the samples
    benchmark.pedantic(lambda: callback.log_event(trainer, module), rounds=5, warmup_rounds=1)
    assert callback.routes == ["png"]
    if benchmark.stats is not None:
        benchmark.extra_info["seconds_per_event"] = benchmark.stats.stats.mean


def test_faithfulness_metrics_event(benchmark, validated, settings):
    trainer, module = validated
    callback = FaithfulnessMetrics("Saliency", num_samples=32, score="sigmoid")
    callback.compute(trainer, module)
    values = benchmark.pedantic(
        lambda: callback.compute(trainer, module), rounds=3, warmup_rounds=0
    )
    assert set(values) == {
        "deletion_auc",
        "insertion_auc",
        "saliency_metric",
        "pointing_game",
        "pointing_game_pairs",
        "continuous_iou",
    }
    assert all(torch.isfinite(v) for v in values.values())
    if benchmark.stats is not None:
        benchmark.extra_info["seconds_per_event"] = benchmark.stats.stats.mean
