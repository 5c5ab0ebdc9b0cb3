"""DDP on CPU (gloo, 2 processes): metrics over all ranks' samples, each sample written once."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from lightning.pytorch import seed_everything

from lightning_callbacks import AttributionShards
from tests.callbacks import ddp_run
from tests.callbacks._helpers import ExplainedModule, shapes_data, trainer

SCRIPT = Path(ddp_run.__file__)


@pytest.fixture(scope="module")
def ddp(tmp_path_factory):
    out = tmp_path_factory.mktemp("ddp")
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONWARNINGS": "ignore"}
    done = subprocess.run(
        [sys.executable, str(SCRIPT), str(out)],
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return out, json.loads((out / "metrics.json").read_text())


def test_ddp_metric_equals_the_single_process_metric(ddp, tmp_path):
    _, result = ddp
    assert result["world_size"] == 2
    seed_everything(0)
    metrics = ddp_run.metrics_callback()
    single = trainer(tmp_path, callbacks=[metrics], limit_val_batches=1).validate(
        ExplainedModule(width=8), datamodule=shapes_data()
    )[0]
    assert metrics.samples.indices == result["indices"]
    names = [k for k in single if k.startswith("faith/")]
    assert len(names) == 6  # deletion, insertion, saliency, pointing (class mean, pairs), IoU
    for name in names:
        assert result["results"][name] == pytest.approx(single[name], abs=1e-5), name


def test_ddp_writer_writes_every_sample_exactly_once(ddp):
    out, _ = ddp
    files = sorted(p.name for p in (out / "attributions").glob("*.pt"))
    # 21 samples -> 11 and 10 per rank -> 3 batches of 4 each -> shards of 2 + 1 batches
    assert files == [f"dl0-rank000{r}-shard00000{s}.pt" for r in (0, 1) for s in (0, 1)]
    shards = AttributionShards(out / "attributions")
    assert shards.sample_ids() == list(range(ddp_run.NUM_PREDICT))  # none missing
    total = sum(
        len(torch.load(out / "attributions" / f, weights_only=True)["index"]) for f in files
    )
    assert total == ddp_run.NUM_PREDICT  # none twice
