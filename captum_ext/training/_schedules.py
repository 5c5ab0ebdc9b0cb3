"""Optimiser and learning-rate schedule shared by the package's LightningModules."""

from __future__ import annotations

from typing import Any

import lightning.pytorch as pl
import torch


def adamw_one_cycle(
    module: pl.LightningModule, lr: float, weight_decay: float, pct_start: float
) -> dict[str, Any]:
    """AdamW over ``module``'s parameters with a per-step one-cycle schedule peaking at ``lr``.

    The return value is what ``configure_optimizers`` returns; the schedule spans
    ``module.trainer.estimated_stepping_batches`` steps, so the module must be attached
    to a Trainer.
    """
    optimizer = torch.optim.AdamW(module.parameters(), lr=lr, weight_decay=weight_decay)
    scheduler = torch.optim.lr_scheduler.OneCycleLR(
        optimizer,
        max_lr=lr,
        total_steps=int(module.trainer.estimated_stepping_batches),
        pct_start=pct_start,
    )
    return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, "interval": "step"}}
