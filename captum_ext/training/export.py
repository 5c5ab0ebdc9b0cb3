"""The weights of a trained network, to write with :func:`captum_ext.models.weights.save_weights`."""

from __future__ import annotations

from typing import Any

import torch
from lightning.pytorch import LightningModule, Trainer


def trained_state_dict(trainer: Trainer, module: LightningModule) -> dict[str, Any]:
    """The weights of ``module.model`` to export after ``fit``.

    When a ``ModelCheckpoint`` tracked a best model, its weights (those of the
    ``model.`` submodule) are returned; otherwise the module's current weights.
    """
    best = getattr(trainer.checkpoint_callback, "best_model_path", "")
    if not best:
        return module.model.state_dict()
    checkpoint = torch.load(best, map_location="cpu", weights_only=True)
    prefix = "model."
    return {
        k[len(prefix) :]: v for k, v in checkpoint["state_dict"].items() if k.startswith(prefix)
    }
