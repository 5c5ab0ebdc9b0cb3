"""Train the package's networks from Python: by task, with a command line or a preset.

The ``captum-ext train-*`` commands call :func:`fit` with their command line; the demo
(``captum-ext demo --retrain``) and user code call :func:`train_preset`, which reads a
shipped preset and applies keyword overrides, with no command line in between.
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

from captum_ext.training.lightning_cli import TrainingCLI, preset_path, run_training

PathLike = str | Path

#: Task -> (LightningModule, LightningDataModule, extra ``LightningCLI`` arguments).
#: The Explainer's data module is chosen in its config (``data.class_path``).
TASKS: dict[str, tuple[str, str, dict[str, Any]]] = {
    "classifier": (
        "captum_ext.training.classifier_module.ClassifierModule",
        "captum_ext.data.shapes_datamodule.ShapesDataModule",
        {},
    ),
    "explainer": (
        "captum_ext.training.explainer_module.ExplainerModule",
        "lightning.pytorch.LightningDataModule",
        {"subclass_mode_data": True},
    ),
    "inpainter": (
        "captum_ext.training.inpainter_module.InpainterModule",
        "captum_ext.data.inpainting.InpaintingDataModule",
        {},
    ),
}


def _import(path: str) -> Any:
    module, name = path.rsplit(".", 1)
    return getattr(importlib.import_module(module), name)


def fit(task: str, args: list[str] | dict[str, Any]) -> TrainingCLI:
    """Train the network of ``task`` with ``LightningCLI`` arguments, then export it.

    Parameters
    ----------
    task : {"classifier", "explainer", "inpainter"}
        Which network (see :data:`TASKS`).
    args : list of str or dict
        A command line (``["--preset", "shapes_classifier", "--export", "w.pt"]``) or a
        configuration dict shaped like a preset file.

    Returns
    -------
    TrainingCLI
        Its ``trainer`` and ``model`` hold the results.
    """
    if task not in TASKS:
        raise ValueError(f"`task` must be one of {tuple(TASKS)}, got {task!r}")
    module, datamodule, cli_kwargs = TASKS[task]
    return run_training(_import(module), _import(datamodule), args, **cli_kwargs)


def _merged(base: dict[str, Any], overrides: Mapping[str, Any]) -> dict[str, Any]:
    """``base`` with ``overrides`` applied, nested dicts merged key by key."""
    out = dict(base)
    for key, value in overrides.items():
        if isinstance(value, Mapping) and isinstance(out.get(key), Mapping):
            out[key] = _merged(dict(out[key]), value)
        else:
            out[key] = value
    return out


def preset_config(
    preset: str,
    export: PathLike | None = None,
    default_root_dir: PathLike | None = None,
    overrides: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """The configuration dict of a shipped preset, with the given settings applied.

    Examples
    --------
    >>> config = preset_config("shapes_classifier", export="w.pt", default_root_dir="runs/c",
    ...                        overrides={"trainer": {"max_epochs": 1}})
    >>> config["trainer"]["max_epochs"], config["trainer"]["default_root_dir"], config["export"]
    (1, 'runs/c', 'w.pt')
    >>> config["model"]["num_classes"]                        # the rest comes from the preset
    6
    """
    config = yaml.safe_load(preset_path(preset).read_text())
    settings: dict[str, Any] = dict(overrides or {})
    if default_root_dir is not None:
        settings = _merged(settings, {"trainer": {"default_root_dir": str(default_root_dir)}})
    if export is not None:
        settings["export"] = str(export)
    return _merged(config, settings)


def train_preset(
    task: str,
    preset: str,
    export: PathLike,
    default_root_dir: PathLike | None = None,
    overrides: Mapping[str, Any] | None = None,
) -> Path:
    """Train a network with a shipped preset and write its weights to ``export``.

    Parameters
    ----------
    task : {"classifier", "explainer", "inpainter"}
        Which network.
    preset : str
        Name of a preset in ``captum_ext/configs`` (e.g. ``"shapes_classifier"``).
    export : path
        Weights-only file to write (read it back with the ``models.pretrained`` loaders).
    default_root_dir : path, optional
        Lightning's directory for logs and checkpoints (default: the preset's).
    overrides : mapping, optional
        Settings replacing the preset's, nested like the preset file, e.g.
        ``{"trainer": {"max_epochs": 1}, "model": {"classifier_checkpoint": "c.pt"}}``.

    Returns
    -------
    Path
        ``export``.

    Examples
    --------
    >>> train_preset("classifier", "shapes_classifier", "c.pt")  # doctest: +SKIP
    PosixPath('c.pt')
    """
    fit(task, preset_config(preset, export, default_root_dir, overrides))
    return Path(export)
