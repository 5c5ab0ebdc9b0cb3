"""Tiny fits of the package's LightningModules for the resume tests.

``python -m tests.training._resume_run KIND ROOT KILL_STEP`` fits ``KIND`` under ``ROOT``
and SIGKILLs itself after training step ``KILL_STEP`` (no clean-up, as a killed job).
"""

from __future__ import annotations

import os
import signal
import sys
from pathlib import Path
from typing import Any

import torch
from lightning.pytorch import (
    Callback,
    LightningDataModule,
    LightningModule,
    Trainer,
    seed_everything,
)
from lightning.pytorch.callbacks import ModelCheckpoint

EPOCHS = 2
STEPS_PER_EPOCH = 3


def build(kind: str) -> tuple[LightningModule, LightningDataModule]:
    """Seeded tiny module and data of ``kind``: ``explainer``, ``classifier`` or ``inpainter``."""
    seed_everything(0, verbose=False)
    if kind == "explainer":
        from captum_ext.data.shapes import ShapesDataModule
        from captum_ext.training.explainer_module import ExplainerModule
        from tests.conftest import TinyCNN

        module = ExplainerModule(
            num_classes=4,
            classifier=TinyCNN(4),
            arch="unet",
            arch_kwargs={"width": 4, "depth": 1},
            lr=1e-2,
            lr_schedule="onecycle",
            hflip=True,
            class_ratio_images=4,
        )
        data = ShapesDataModule(
            image_size=32, num_classes=4, num_train=12, num_val=4, num_test=4, batch_size=4
        )
    elif kind == "classifier":
        from captum_ext.data.shapes import ShapesDataModule
        from captum_ext.training.classifier_module import ClassifierModule

        module = ClassifierModule(num_classes=4, width=4, lr=1e-2)
        data = ShapesDataModule(
            image_size=32, num_classes=4, num_train=12, num_val=4, num_test=4, batch_size=4
        )
    elif kind == "inpainter":
        from captum_ext.data.inpainting import InpaintingDataModule
        from captum_ext.training.inpainter_module import InpainterModule

        module = InpainterModule(width=4, depth=1, dilations=(2,), lr=1e-2)
        data = InpaintingDataModule(image_size=32, num_train=12, num_val=4, batch_size=4)
    else:
        raise ValueError(f"unknown kind {kind!r}")
    return module, data


class KillAt(Callback):
    """SIGKILL the process after training step ``step``."""

    def __init__(self, step: int) -> None:
        self.step = step

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        if trainer.global_step == self.step:
            os.kill(os.getpid(), signal.SIGKILL)


def trainer(root: Path, callbacks: list[Callback] | None = None, **checkpoint: Any) -> Trainer:
    """A CPU Trainer that checkpoints into ``root / "ckpt"`` (``last.ckpt`` kept)."""
    return Trainer(
        max_epochs=EPOCHS,
        accelerator="cpu",
        logger=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        default_root_dir=root,
        num_sanity_val_steps=1,
        callbacks=[
            ModelCheckpoint(dirpath=root / "ckpt", save_last=True, **checkpoint),
            *(callbacks or []),
        ],
    )


def final_state(trainer: Trainer, module: LightningModule) -> dict[str, Any]:
    """Everything a resumed fit must end with: weights, optimiser, schedule, random state."""
    return {
        "weights": module.state_dict(),
        "optimizer": trainer.optimizers[0].state_dict(),
        "schedulers": [config.scheduler.state_dict() for config in trainer.lr_scheduler_configs],
        "generator": module.generator.get_state(),
        "torch_rng": torch.get_rng_state(),
        "data": trainer.datamodule.state_dict(),
        "progress": (trainer.current_epoch, trainer.global_step),
    }


def differences(a: Any, b: Any, path: str = "") -> list[str]:
    """Paths at which two nested states differ (tensors compared bit for bit)."""
    if isinstance(a, torch.Tensor) or isinstance(b, torch.Tensor):
        same = isinstance(a, torch.Tensor) and isinstance(b, torch.Tensor) and a.dtype == b.dtype
        return [] if same and torch.equal(a, b) else [path]
    if isinstance(a, dict) and isinstance(b, dict):
        if set(a) != set(b):
            return [f"{path} keys {sorted(map(str, set(a) ^ set(b)))}"]
        return [d for key in a for d in differences(a[key], b[key], f"{path}/{key}")]
    if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
        if len(a) != len(b):
            return [f"{path} length"]
        return [d for i, (x, y) in enumerate(zip(a, b)) for d in differences(x, y, f"{path}/{i}")]
    return [] if a == b else [path]


if __name__ == "__main__":
    kind, root, kill_step = sys.argv[1], Path(sys.argv[2]), int(sys.argv[3])
    module, data = build(kind)
    checkpoint = {key: int(value) for key, value in (arg.split("=") for arg in sys.argv[4:])}
    trainer(root, [KillAt(kill_step)], **checkpoint).fit(module, datamodule=data)
    sys.exit("not killed")
