"""Write a trained network as a small weights-only file the package can ship."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Dict, Union

import torch
from lightning.pytorch import LightningModule, Trainer


def save_weights(
    path: Union[str, Path], config: Dict[str, Any], state_dict: Dict[str, Any]
) -> Path:
    """Save ``{"config", "state_dict"}`` loadable with ``torch.load(weights_only=True)``.

    Tensors are stored in float16 where they are float32 (halves the file); loaders cast
    back to float32.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    compact = {
        k: v.detach().cpu().half() if v.dtype == torch.float32 else v.detach().cpu()
        for k, v in state_dict.items()
    }
    torch.save({"config": dict(config), "state_dict": compact}, path)
    return path


def load_weights(path: Union[str, Path]) -> Dict[str, Any]:
    """Load a file written by :func:`save_weights` (``weights_only=True``), float32 tensors."""
    payload = torch.load(path, map_location="cpu", weights_only=True)
    if not isinstance(payload, dict) or "state_dict" not in payload:
        raise ValueError(f"{path} is not a captum-ext weights file (no 'state_dict' entry)")
    payload["state_dict"] = {
        k: v.float() if v.dtype == torch.float16 else v for k, v in payload["state_dict"].items()
    }
    return payload


def trained_state_dict(trainer: Trainer, module: LightningModule) -> Dict[str, Any]:
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
