"""Send images to whatever loggers a Trainer has, by duck typing.

No ``isinstance`` against logger classes: the same code serves ``lightning.pytorch``
and ``pytorch_lightning`` loggers, and any third-party logger with the same API.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from torch import Tensor
from torchvision.utils import make_grid, save_image


def _hwc_uint8(image: Tensor):
    """A ``(3, H, W)`` image in [0, 1] as an ``(H, W, 3)`` uint8 numpy array."""
    return (image.clamp(0, 1) * 255).round().to(torch.uint8).permute(1, 2, 0).numpy()


def image_directory(logger: Any) -> Path | None:
    """Where a logger without an image API gets PNG files: ``<log_dir>/images``."""
    for attribute in ("log_dir", "save_dir"):
        directory = getattr(logger, attribute, None)
        if isinstance(directory, (str, Path)):
            return Path(directory) / "images"
    return None


def log_image_batch(logger: Any, tag: str, batch: Tensor, step: int, nrow: int = 8) -> str:
    """Log an ``(N, 3, H, W)`` batch in [0, 1] to one logger under ``tag``.

    Dispatch, first match wins:

    * TensorBoard-like (``logger.experiment.add_images``): the batch, TensorBoard tiles it;
    * Weights & Biases-like (``logger.log_image(key, images, step)``): one grid image;
    * MLflow-like (``logger.experiment.log_image`` and ``logger.run_id``): one grid
      image with ``key=tag`` and ``step``;
    * anything with a ``log_dir`` / ``save_dir`` (CSV): a PNG grid at
      ``<log_dir>/images/<tag>/step_<step>.png``.

    Returns
    -------
    str
        Which route was taken (``"tensorboard"``, ``"wandb"``, ``"mlflow"``, ``"png"``
        or ``"none"`` when the logger offers none of these).
    """
    experiment = getattr(logger, "experiment", None)
    if callable(getattr(experiment, "add_images", None)):
        experiment.add_images(tag, batch, global_step=step, dataformats="NCHW")
        return "tensorboard"
    grid = make_grid(batch, nrow=nrow, padding=2, pad_value=1.0)
    if callable(getattr(logger, "log_image", None)):
        logger.log_image(key=tag, images=[_hwc_uint8(grid)], step=step)
        return "wandb"
    run_id = getattr(logger, "run_id", None)
    if callable(getattr(experiment, "log_image", None)) and run_id is not None:
        experiment.log_image(run_id, _hwc_uint8(grid), key=tag, step=step)
        return "mlflow"
    directory = image_directory(logger)
    if directory is not None:
        path = directory.joinpath(*tag.split("/")) / f"step_{step:07d}.png"
        path.parent.mkdir(parents=True, exist_ok=True)
        save_image(grid, path)
        return "png"
    return "none"


def log_images(loggers: list[Any], images: dict, step: int, nrow: int = 8) -> list[str]:
    """Log ``{tag: batch}`` to every logger; returns the route taken per logger."""
    routes = []
    for logger in loggers:
        route = "none"
        for tag, batch in images.items():
            route = log_image_batch(logger, tag, batch, step, nrow)
        routes.append(route)
    return routes
