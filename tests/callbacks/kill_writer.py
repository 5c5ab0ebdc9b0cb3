"""Write a dataset's attributions with one shard write stalled half-way, to be killed.

``python tests/callbacks/kill_writer.py OUT_DIR STALL``: runs ``trainer.predict`` with an
``AttributionWriter`` into ``OUT_DIR/attributions``. The ``STALL``-th shard write (0-based)
writes half of the shard's bytes, flushes them, creates ``OUT_DIR/stalled`` and sleeps
until the test kills the process. :func:`predict` is the same run without the stall.
"""

import io
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

import torch  # noqa: E402
from captum.attr import Saliency  # noqa: E402
from torch.utils.data import DataLoader  # noqa: E402

from captum_ext.data.samples import collate_samples  # noqa: E402
from captum_ext.data.shapes import ShapesDataset  # noqa: E402
from captum_ext.models.shapes_classifier import ShapesClassifier  # noqa: E402
from lightning_callbacks import AttributionModule, AttributionWriter  # noqa: E402
from tests.callbacks._helpers import trainer  # noqa: E402

NUM_IMAGES, BATCH, BATCHES_PER_SHARD = 21, 4, 2  # 3 shards: 8, 8 and 5 samples


def predict(out_dir: Path) -> AttributionWriter:
    torch.manual_seed(0)
    model = ShapesClassifier(width=8).eval()
    data = ShapesDataset(NUM_IMAGES, image_size=32, split="test")
    loader = DataLoader(data, batch_size=BATCH, collate_fn=collate_samples)
    writer = AttributionWriter(out_dir / "attributions", batches_per_shard=BATCHES_PER_SHARD)
    run = trainer(out_dir, callbacks=[writer])
    run.predict(AttributionModule(model, Saliency), loader, return_predictions=False)
    return writer


def _stalling_save(stall: int, marker: Path):
    real_save, calls = torch.save, []

    def save(obj, f, *args, **kwargs):
        calls.append(f)
        if len(calls) != stall + 1:
            return real_save(obj, f, *args, **kwargs)
        buffer = io.BytesIO()
        real_save(obj, buffer, *args, **kwargs)
        data = buffer.getvalue()
        file = open(f, "wb") if isinstance(f, (str, os.PathLike)) else f
        file.write(data[: len(data) // 2])
        file.flush()
        marker.touch()
        time.sleep(600)

    return save


if __name__ == "__main__":
    out = Path(sys.argv[1])
    torch.save = _stalling_save(int(sys.argv[2]), out / "stalled")
    predict(out)
