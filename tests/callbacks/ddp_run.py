"""Run the metrics callback and the prediction writer under DDP on CPU (2 processes).

``python tests/callbacks/ddp_run.py OUT_DIR``: Lightning's ``ddp`` strategy re-launches
this script for rank 1. Rank 0 writes ``OUT_DIR/metrics.json``; the writer writes
``OUT_DIR/attributions``.
"""

import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

import torch  # noqa: E402
from lightning.pytorch import Trainer, seed_everything  # noqa: E402
from torch.utils.data import DataLoader  # noqa: E402

from captum_ext.data.samples import collate_samples  # noqa: E402
from captum_ext.data.shapes import ShapesDataset  # noqa: E402
from lightning_callbacks import (  # noqa: E402
    AttributionModule,
    AttributionWriter,
    FaithfulnessMetrics,
)
from tests.callbacks._helpers import QUICK_METRICS, ExplainedModule, shapes_data  # noqa: E402

NUM_METRIC_SAMPLES = 5  # uneven shares: 3 on rank 0, 2 on rank 1
NUM_PREDICT = 21


def metrics_callback() -> FaithfulnessMetrics:
    return FaithfulnessMetrics(
        "Saliency",
        num_samples=NUM_METRIC_SAMPLES,
        batch_size=2,
        score="sigmoid",
        metric_args=QUICK_METRICS,
        name="faith",
    )


def ddp_trainer(**kwargs) -> Trainer:
    return Trainer(
        strategy="ddp",
        accelerator="cpu",
        devices=2,
        logger=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        enable_checkpointing=False,
        **kwargs,
    )


def main(out: Path) -> None:
    torch.set_num_threads(1)
    seed_everything(0)
    module = ExplainedModule(width=8)
    metrics = metrics_callback()
    results = ddp_trainer(callbacks=[metrics], limit_val_batches=1).validate(
        module, datamodule=shapes_data()
    )
    torch.manual_seed(0)
    loader = DataLoader(
        ShapesDataset(NUM_PREDICT, image_size=32, split="test"),
        batch_size=4,
        collate_fn=collate_samples,
    )
    writer = AttributionWriter(out / "attributions", batches_per_shard=2)
    run = ddp_trainer(callbacks=[writer])
    run.predict(
        AttributionModule(module.model, "RandomAttribution"), loader, return_predictions=False
    )
    if run.is_global_zero:
        (out / "metrics.json").write_text(
            json.dumps(
                {
                    "results": results[0],
                    "indices": metrics.samples.indices,
                    "world_size": run.world_size,
                }
            )
        )


if __name__ == "__main__":
    main(Path(sys.argv[1]))
