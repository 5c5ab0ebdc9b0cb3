"""Every computed value reaches every logger, once per optimizer step; nothing runs under
``fast_dev_run``; a resumed run with other periods keeps its fixed samples."""

import csv

import pytest
from lightning.pytorch import seed_everything
from lightning.pytorch.callbacks import ModelCheckpoint
from lightning.pytorch.loggers import CSVLogger, TensorBoardLogger

from lightning_callbacks import FaithfulnessMetrics, MaskLogger
from lightning_callbacks._attribution import AttributionSpec
from tests.callbacks._helpers import ExplainedModule, shapes_data, trainer

CHEAP = dict(num_samples=3, metrics=("deletion_auc",), metric_args={"deletion_auc": {"steps": 4}})


def _tensorboard(directory):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(str(directory), size_guidance={"images": 0, "scalars": 0})
    events.Reload()
    return events


@pytest.mark.parametrize(
    "every_n_steps, expected_steps",
    [(1, [1, 2, 3, 4]), (2, [2, 4])],  # 2 epochs of 2 steps; epoch events at steps 2 and 4
)
def test_step_and_epoch_events_reach_every_logger_once_per_step(
    tmp_path, every_n_steps, expected_steps
):
    """Lightning's default log_every_n_steps=50 would drop every step event's values."""
    seed_everything(0)
    metrics = FaithfulnessMetrics("Saliency", every_n_steps=every_n_steps, name="f", **CHEAP)
    masks = MaskLogger("Saliency", num_samples=2, every_n_steps=every_n_steps, name="m")
    loggers = [
        TensorBoardLogger(tmp_path / "tb", name="", version=0),
        CSVLogger(tmp_path / "csv", name="", version=0),
    ]
    run = trainer(tmp_path, callbacks=[metrics, masks], logger=loggers)
    assert run.log_every_n_steps == 50
    run.fit(ExplainedModule(width=8), datamodule=shapes_data())

    events = _tensorboard(tmp_path / "tb" / "version_0")
    scalars = events.Scalars("f/deletion_auc")
    assert [e.step for e in scalars] == expected_steps  # strictly increasing, no duplicate
    for tag in ("m/images", "m/masks", "m/overlays"):
        assert [e.step for e in events.Images(tag)] == expected_steps
    rows = list(csv.DictReader(open(tmp_path / "csv" / "version_0" / "metrics.csv")))
    logged = [r for r in rows if r.get("f/deletion_auc")]
    assert [int(r["step"]) for r in logged] == expected_steps
    csv_values = [float(r["f/deletion_auc"]) for r in logged]
    assert csv_values == pytest.approx([e.value for e in scalars])
    assert csv_values[-1] == pytest.approx(float(run.callback_metrics["f/deletion_auc"]))


def test_fast_dev_run_computes_nothing(tmp_path, monkeypatch):
    def explain(*args, **kwargs):
        raise AssertionError("explained under fast_dev_run")

    monkeypatch.setattr(AttributionSpec, "explain", explain)
    callbacks = [
        FaithfulnessMetrics("Saliency", every_n_steps=1, **CHEAP),
        MaskLogger("Saliency", every_n_steps=1, num_samples=2),
    ]
    run = trainer(tmp_path, callbacks=callbacks, fast_dev_run=2, logger=CSVLogger(tmp_path))
    module, data = ExplainedModule(width=8), shapes_data()
    run.fit(module, datamodule=data)
    run.validate(module, datamodule=data)
    run.test(module, datamodule=data)
    assert run.global_step == 2 and callbacks[0].samples.indices is None


def test_resume_with_other_periods_keeps_the_fixed_samples(tmp_path):
    seed_everything(0)
    first = FaithfulnessMetrics("Saliency", every_n_epochs=1, **CHEAP)
    checkpoint = ModelCheckpoint(tmp_path / "ckpt", save_top_k=-1, filename="{epoch}")
    run = trainer(tmp_path, callbacks=[first, checkpoint], enable_checkpointing=True)
    run.fit(ExplainedModule(width=8), datamodule=shapes_data())
    drawn = first.samples.indices
    assert len(drawn) == 3

    resumed = FaithfulnessMetrics("Saliency", every_n_epochs=2, every_n_steps=3, **CHEAP)
    larger = shapes_data(num_val=20)  # a fresh draw from it gives other samples
    assert resumed.samples.draw(20) != drawn
    run = trainer(tmp_path, max_epochs=2, callbacks=[resumed])
    # resumed after the first of two epochs: the second epoch's event is due (period 2)
    first_epoch = tmp_path / "ckpt" / "epoch=0.ckpt"
    run.fit(ExplainedModule(width=8), datamodule=larger, ckpt_path=first_epoch)
    assert resumed.samples.indices == drawn
    assert "faithfulness/Saliency/deletion_auc" in run.callback_metrics  # an event ran


def test_two_instances_of_one_class_need_two_names(tmp_path):
    callbacks = [MaskLogger("Saliency", every_n_epochs=1), MaskLogger("Saliency", every_n_steps=5)]
    with pytest.raises(RuntimeError, match="state_key"):  # Lightning checks at construction
        trainer(tmp_path, callbacks=callbacks)
    named = [MaskLogger("Saliency", every_n_epochs=1), MaskLogger("Saliency", name="other")]
    assert named[0].state_key != named[1].state_key
