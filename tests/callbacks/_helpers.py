"""Tiny shapes-world set-ups shared by the callback tests."""

from __future__ import annotations

from typing import Any

import torch
from lightning.pytorch import Trainer

from captum_ext.data.shapes import ShapesDataModule
from captum_ext.training.classifier_module import ClassifierModule

#: Few perturbation steps keep the faithfulness metrics cheap in tests.
QUICK_METRICS = {"deletion_auc": {"steps": 8}, "insertion_auc": {"steps": 8}}


def shapes_data(**kwargs: Any) -> ShapesDataModule:
    sizes = dict(image_size=32, num_train=16, num_val=12, num_test=8, batch_size=8)
    return ShapesDataModule(**{**sizes, **kwargs})


class ExplainedModule(ClassifierModule):
    """A classifier module with its own mask method (the shape an Explainer has) and a
    test loop."""

    def masks(self, images: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        return images.mean(dim=1, keepdim=True).sigmoid() * (targets + 1).view(-1, 1, 1, 1)

    def test_step(self, batch, batch_idx):
        return self.validation_step(batch, batch_idx)


def trainer(root, **kwargs: Any) -> Trainer:
    settings = dict(
        max_epochs=2,
        limit_train_batches=2,
        limit_val_batches=1,
        num_sanity_val_steps=1,
        accelerator="cpu",
        devices=1,
        enable_progress_bar=False,
        enable_model_summary=False,
        enable_checkpointing=False,
        logger=False,
        default_root_dir=root,
    )
    return Trainer(**{**settings, **kwargs})
