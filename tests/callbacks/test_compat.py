"""Without the ``lightning`` package the callbacks fall back to ``pytorch_lightning``."""

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

SCRIPT = textwrap.dedent(
    """
    import sys
    sys.modules["lightning"] = None  # as if only pytorch_lightning were installed
    import torch
    import pytorch_lightning as pl
    from lightning_callbacks import (AttributionModule, AttributionShards, AttributionWriter,
                                     FaithfulnessMetrics, MaskLogger)
    from lightning_callbacks._compat import pl as chosen

    assert chosen is pl and issubclass(AttributionWriter, pl.callbacks.BasePredictionWriter)

    class Module(pl.LightningModule):
        def __init__(self):
            super().__init__()
            self.net = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.ReLU(),
                                           torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten(),
                                           torch.nn.Linear(4, 3))
        def forward(self, x):
            return self.net(x)
        def training_step(self, batch, batch_idx):
            return torch.nn.functional.cross_entropy(self(batch[0]), batch[1])
        def validation_step(self, batch, batch_idx):
            pass
        def configure_optimizers(self):
            return torch.optim.SGD(self.parameters(), lr=0.1)

    out = sys.argv[1]
    data = torch.utils.data.TensorDataset(torch.rand(10, 3, 16, 16), torch.arange(10) % 3)
    loader = torch.utils.data.DataLoader(data, batch_size=4)
    settings = dict(accelerator="cpu", enable_progress_bar=False, enable_model_summary=False,
                    enable_checkpointing=False, default_root_dir=out)
    masks = MaskLogger("Saliency", num_samples=2)
    metrics = FaithfulnessMetrics("Saliency", num_samples=2, name="f", metrics=("deletion_auc",),
                                  metric_args={"deletion_auc": {"steps": 4}})
    module = Module()
    fit = pl.Trainer(max_epochs=1, logger=pl.loggers.CSVLogger(out), callbacks=[masks, metrics],
                     **settings)
    fit.fit(module, loader, loader)
    assert masks.routes == ["png"] and "f/deletion_auc" in fit.callback_metrics
    writer = AttributionWriter(out + "/attributions", batches_per_shard=1)
    pl.Trainer(logger=False, callbacks=[writer], **settings).predict(
        AttributionModule(module.net, "Saliency"), loader, return_predictions=False)
    assert AttributionShards(out + "/attributions").sample_ids() == list(range(10))
    assert "lightning" not in {m.split(".")[0] for m in sys.modules if sys.modules[m] is not None}
    print("fallback ok")
    """
)


def test_pytorch_lightning_fallback(tmp_path):
    pytest.importorskip("pytorch_lightning")
    done = subprocess.run(
        [sys.executable, "-c", SCRIPT, str(tmp_path)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        env={"PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1", "PATH": "/usr/bin:/bin"},
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert "fallback ok" in done.stdout
