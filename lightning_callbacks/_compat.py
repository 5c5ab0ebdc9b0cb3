"""The Lightning namespace the callbacks are built on.

``lightning.pytorch`` (the ``lightning`` package) is preferred; ``pytorch_lightning`` is
the fallback when only that package is installed. Callbacks that are plain
``Callback`` subclasses work with a ``Trainer`` of either namespace; the prediction
writer and the attribution module must come from the ``Trainer``'s own namespace, since
Lightning checks them with ``isinstance``.
"""

from __future__ import annotations

from captum_ext.utils import require

try:
    import lightning.pytorch as pl
except ImportError:  # pragma: no cover - exercised in a subprocess test
    try:
        import pytorch_lightning as pl  # type: ignore[no-redef]
    except ImportError:
        pl = require("lightning.pytorch", extra="lightning")  # raises, naming the extra

Callback = pl.Callback
LightningModule = pl.LightningModule
Trainer = pl.Trainer
BasePredictionWriter = pl.callbacks.BasePredictionWriter

__all__ = ["BasePredictionWriter", "Callback", "LightningModule", "Trainer", "pl"]
