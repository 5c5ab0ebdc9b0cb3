"""Lightning callbacks for attribution: mask logging, faithfulness metrics during
training, and dataset-scale attribution through ``trainer.predict``.

Built on ``lightning.pytorch`` when installed, else ``pytorch_lightning``
(:mod:`lightning_callbacks._compat`).
"""

from lightning_callbacks.attribution_module import AttributionModule
from lightning_callbacks.faithfulness import FaithfulnessMetrics
from lightning_callbacks.mask_logger import MaskLogger
from lightning_callbacks.prediction_writer import AttributionWriter
from lightning_callbacks.shards import AttributionShards

__all__ = [
    "AttributionModule",
    "AttributionShards",
    "AttributionWriter",
    "FaithfulnessMetrics",
    "MaskLogger",
]
