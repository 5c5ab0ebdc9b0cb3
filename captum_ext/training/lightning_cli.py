"""Training through Lightning's ``LightningCLI``: presets, ``--export`` and ``--ckpt_path``.

:func:`run_training` is what the ``captum-ext train-*`` commands run (with their
command-line arguments) and what :func:`captum_ext.training.presets.train_preset` runs
(with a configuration dict), so a preset trains the same way from the shell and from
Python.
"""

from __future__ import annotations

import warnings
from importlib.resources import files
from pathlib import Path
from typing import Any

from lightning.pytorch import LightningDataModule, LightningModule
from lightning.pytorch.cli import LightningArgumentParser, LightningCLI

from captum_ext.models.weights import save_weights
from captum_ext.training.export import trained_state_dict


def preset_path(name: str) -> Path:
    """Path of a preset config shipped in ``captum_ext/configs``."""
    path = Path(str(files("captum_ext") / "configs" / f"{name}.yaml"))
    if not path.exists():
        available = sorted(p.stem for p in path.parent.glob("*.yaml"))
        raise SystemExit(f"unknown preset {name!r}; available presets: {', '.join(available)}")
    return path


def expand_presets(argv: list[str]) -> list[str]:
    """Replace ``--preset NAME`` by ``--config <shipped NAME.yaml>``."""
    out: list[str] = []
    i = 0
    while i < len(argv):
        arg = argv[i]
        if arg == "--preset" and i + 1 < len(argv):
            out += ["--config", str(preset_path(argv[i + 1]))]
            i += 2
            continue
        if arg.startswith("--preset="):
            out += ["--config", str(preset_path(arg.split("=", 1)[1]))]
        else:
            out.append(arg)
        i += 1
    return out


class TrainingCLI(LightningCLI):
    """``LightningCLI`` with ``--export`` (weights-only output) and ``--ckpt_path`` (resume)."""

    def add_arguments_to_parser(self, parser: LightningArgumentParser) -> None:
        parser.add_argument(
            "--export",
            type=str | None,
            default=None,
            help="After training, write the network's weights (best checkpoint if any) to "
            "this weights-only file, loadable with torch.load(weights_only=True).",
        )
        parser.add_argument(
            "--ckpt_path",
            type=str | None,
            default=None,
            help="Resume training from this Lightning checkpoint.",
        )


def run_training(
    model_class: type[LightningModule],
    datamodule_class: type[LightningDataModule],
    argv: list[str] | dict[str, Any],
    **cli_kwargs: Any,
) -> TrainingCLI:
    """Parse ``argv`` (``--preset``, ``--config``, any option), fit, and export.

    ``argv`` is a command line, or a configuration dict with the structure of a preset
    file (``trainer``, ``model``, ``data``, plus ``export`` and ``ckpt_path``).

    ``cli_kwargs`` go to ``LightningCLI`` (e.g. ``subclass_mode_data=True`` to choose
    the data module in the config with ``class_path``). Returns the CLI object (its
    ``trainer`` and ``model`` hold the results).
    """
    with warnings.catch_warnings():
        # A configuration dict replaces the command line on purpose (train_preset):
        # Lightning's warning that sys.argv is then ignored does not apply.
        warnings.filterwarnings("ignore", message="LightningCLI's args parameter is intended")
        cli = TrainingCLI(
            model_class,
            datamodule_class,
            args=expand_presets(argv) if isinstance(argv, list) else argv,
            run=False,
            seed_everything_default=0,
            save_config_kwargs={"overwrite": True},
            **cli_kwargs,
        )
    cli.trainer.fit(cli.model, datamodule=cli.datamodule, ckpt_path=cli.config.get("ckpt_path"))
    export = cli.config.get("export")
    if export and cli.trainer.is_global_zero:
        save_weights(export, cli.model.export_config(), trained_state_dict(cli.trainer, cli.model))
        print(f"weights written to {export}")
    return cli
