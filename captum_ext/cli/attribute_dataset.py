"""``captum-ext attribute-dataset``: attributions of a whole dataset, written in shards."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from torch import nn

from captum_ext.cli.options import UsageError
from captum_ext.utils import require

CLI = require("jsonargparse", extra="lightning").CLI
LightningDataModule = require("lightning.pytorch", extra="lightning").LightningDataModule


def _attribute_dataset(
    output_dir: str,
    method: str = "captum.attr.Saliency",
    init_args: dict[str, Any] | None = None,
    attribute_args: dict[str, Any] | None = None,
    model: nn.Module | None = None,
    checkpoint: str | None = None,
    data: LightningDataModule | None = None,
    target: int | str = "predicted",
    batches_per_shard: int = 16,
    dtype: str = "float32",
    accelerator: str = "auto",
    devices: int | str = "auto",
    strategy: str = "auto",
    num_nodes: int = 1,
    show_progress: bool = True,
) -> Path:
    """Compute attributions for every sample of a dataset's predict split and write them.

    Runs ``trainer.predict`` with :class:`lightning_callbacks.AttributionModule` and
    :class:`lightning_callbacks.AttributionWriter`: one shard file per rank per
    ``batches_per_shard`` batches, and ``index.json`` mapping sample ids to shards.
    Running the same command again resumes: finished shards are skipped.

    Args:
        output_dir: where the shards and the index are written.
        method: attribution class path or bare name (captum_ext.attr first, then
            captum.attr), e.g. captum.attr.IntegratedGradients or RandomAttribution.
        init_args: constructor arguments of the method (a string `layer` names a
            submodule of the model, e.g. {"layer": "features.6"} for LayerGradCam).
        attribute_args: extra arguments of `attribute`, e.g. {"n_steps": 16}.
        model: classifier as a class path with init_args (default: the shapes-world
            ShapesClassifier).
        checkpoint: weights file (written by `train-classifier --export`) loaded into
            the model (default for the shapes classifier: the shipped checkpoint).
        data: LightningDataModule whose predict_dataloader is attributed (default:
            the shapes world's ShapesDataModule, test split).
        target: "predicted", "label" or a class index.
        batches_per_shard: batches per shard file.
        dtype: storage dtype of the maps (float32, float16, bfloat16).
        accelerator: Lightning accelerator.
        devices: Lightning devices.
        strategy: Lightning strategy (e.g. ddp for several devices).
        num_nodes: number of nodes.
        show_progress: show a progress bar.
    """
    from captum_ext.data.shapes import ShapesDataModule
    from captum_ext.models.pretrained import load_shapes_classifier
    from captum_ext.models.weights import load_weights
    from lightning_callbacks import AttributionModule, AttributionWriter
    from lightning_callbacks._attribution import import_method
    from lightning_callbacks._compat import Trainer

    try:  # an unknown method is a usage error, found before any work
        method_class = import_method(method)
    except ValueError as error:
        raise UsageError(str(error)) from None
    if model is None:
        model = load_shapes_classifier(checkpoint)
    elif checkpoint is not None:
        model.load_state_dict(load_weights(checkpoint)["state_dict"])
    module = AttributionModule(
        model.eval(), method_class, init_args, attribute_args, target=target, dtype=dtype
    )
    writer = AttributionWriter(output_dir, batches_per_shard)
    trainer = Trainer(
        accelerator=accelerator,
        devices=devices,
        strategy=strategy,
        num_nodes=num_nodes,
        logger=False,
        enable_checkpointing=False,
        enable_model_summary=False,
        enable_progress_bar=show_progress,
        callbacks=[writer],
    )
    trainer.predict(module, datamodule=data or ShapesDataModule(), return_predictions=False)
    if trainer.is_global_zero:
        print(
            f"{output_dir}: {len(writer.written)} shard(s) written, "
            f"{len(writer.skipped)} already there (rank 0)"
        )
    return Path(output_dir)


def attribute_dataset(argv: list[str]) -> None:
    """``captum-ext attribute-dataset --output_dir DIR [--method CLASS] [options]``."""
    CLI(_attribute_dataset, args=argv)
