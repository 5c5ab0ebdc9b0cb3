"""Weights-only files: the small ``{"config", "state_dict"}`` checkpoints the package ships.

Written after training (``captum-ext train-* --export``) and read back with
``torch.load(weights_only=True)``; torch is all this needs, so loading a shipped network
never imports the training code or Lightning.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch


def save_weights(path: str | Path, config: dict[str, Any], state_dict: dict[str, Any]) -> Path:
    """Save ``{"config", "state_dict"}`` loadable with ``torch.load(weights_only=True)``.

    Tensors are stored in float16 where they are float32 (halves the file); loaders cast
    back to float32.

    Examples
    --------
    >>> import tempfile
    >>> path = save_weights(tempfile.mkdtemp() + "/w.pt", {"width": 2}, {"w": torch.ones(2)})
    >>> payload = load_weights(path)
    >>> payload["config"], payload["state_dict"]["w"].dtype
    ({'width': 2}, torch.float32)
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    compact = {
        k: v.detach().cpu().half() if v.dtype == torch.float32 else v.detach().cpu()
        for k, v in state_dict.items()
    }
    torch.save({"config": dict(config), "state_dict": compact}, path)
    return path


def load_weights(path: str | Path) -> dict[str, Any]:
    """Load a file written by :func:`save_weights` (``weights_only=True``), float32 tensors."""
    payload = torch.load(path, map_location="cpu", weights_only=True)
    if not isinstance(payload, dict) or "state_dict" not in payload:
        raise ValueError(f"{path} is not a captum-ext weights file (no 'state_dict' entry)")
    payload["state_dict"] = {
        k: v.float() if v.dtype == torch.float16 else v for k, v in payload["state_dict"].items()
    }
    return payload
