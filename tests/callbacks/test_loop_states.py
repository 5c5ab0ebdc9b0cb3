"""Every loop state: training hooks leave the run bit-identical; validate/test under
inference mode; step schedules; the pytorch_lightning Trainer; W&B when installed."""

import pytest
import torch
from captum.attr import NoiseTunnel, Saliency
from lightning.pytorch import seed_everything
from lightning.pytorch.loggers import CSVLogger

from lightning_callbacks import FaithfulnessMetrics, MaskLogger
from tests.callbacks._helpers import QUICK_METRICS, ExplainedModule, shapes_data, trainer


def _fit(root, callbacks):
    seed_everything(0)
    module = ExplainedModule(width=8)
    fit = trainer(root, callbacks=callbacks, max_epochs=2)
    fit.fit(module, datamodule=shapes_data())
    return module, fit


def test_training_with_callbacks_is_bit_identical(tmp_path):
    """Attribution from training hooks (every step, model in train mode, populated
    .grad) and from validation leaves weights, BatchNorm statistics and optimizer state
    exactly as without the callbacks. NoiseTunnel draws from the global RNG, which
    would change the next epoch's shuffling if it were not forked."""
    noisy = lambda model: NoiseTunnel(Saliency(model))  # noqa: E731
    callbacks = [
        MaskLogger(noisy, attribute_args={"nt_samples": 2}, every_n_steps=1, num_samples=2),
        FaithfulnessMetrics(Saliency, num_samples=2, metric_args=QUICK_METRICS, every_n_steps=2),
    ]
    plain, plain_trainer = _fit(tmp_path / "plain", [])
    observed, observed_trainer = _fit(tmp_path / "observed", callbacks)
    assert "faithfulness/Saliency/deletion_auc" in observed_trainer.callback_metrics
    for (name, a), (_, b) in zip(
        plain.state_dict().items(), observed.state_dict().items(), strict=True
    ):
        assert torch.equal(a, b), name
    state_a = plain_trainer.optimizers[0].state_dict()["state"]
    state_b = observed_trainer.optimizers[0].state_dict()["state"]
    for key in state_a:
        for name in state_a[key]:
            assert torch.equal(state_a[key][name], state_b[key][name])
    assert all(p.requires_grad for p in observed.parameters())


class _Recorder(MaskLogger):
    """Records the loop state at each event."""

    def __init__(self, **kwargs):
        super().__init__(Saliency, num_samples=2, **kwargs)
        self.events = []

    def log_event(self, trainer, pl_module):
        self.events.append(
            (
                str(trainer.state.fn.value),
                trainer.global_step,
                torch.is_grad_enabled(),
                torch.is_inference_mode_enabled(),
                pl_module.training,
            )
        )
        super().log_event(trainer, pl_module)


def test_schedule_per_loop(tmp_path):
    epochs = _Recorder(every_n_epochs=2, name="epochs")
    steps = _Recorder(every_n_epochs=None, every_n_steps=3, name="steps")
    seed_everything(0)
    module = ExplainedModule(width=8)
    data = shapes_data()
    run = trainer(tmp_path, max_epochs=4, callbacks=[epochs, steps])
    run.fit(module, datamodule=data)
    # epochs 1 and 3, after validation (grad disabled); never the sanity check
    assert epochs.events == [("fit", 4, False, False, False), ("fit", 8, False, False, False)]
    # training hooks: module in train mode, grad enabled
    assert steps.events == [("fit", 3, True, False, True), ("fit", 6, True, False, True)]
    run.validate(module, datamodule=data)
    run.test(module, datamodule=data)
    assert [e[0] for e in epochs.events[2:]] == ["validate", "test"]
    assert all(e[3] for e in epochs.events[2:])  # Lightning's default inference mode


def test_step_events_once_per_optimizer_step_with_accumulation(tmp_path):
    steps = _Recorder(every_n_epochs=None, every_n_steps=1)
    seed_everything(0)
    run = trainer(
        tmp_path, max_epochs=1, limit_train_batches=4, accumulate_grad_batches=2, callbacks=[steps]
    )
    run.fit(ExplainedModule(width=8), datamodule=shapes_data(batch_size=4))
    assert [e[1] for e in steps.events] == [1, 2]


def test_no_validation_loop_falls_back_to_the_training_epoch(tmp_path):
    recorder = _Recorder(samples={"image": torch.rand(2, 3, 32, 32)}, target=1)
    seed_everything(0)
    run = trainer(tmp_path, max_epochs=2, limit_val_batches=0, callbacks=[recorder])
    run.fit(ExplainedModule(width=8), datamodule=shapes_data())
    assert recorder.events == [("fit", 2, True, False, True), ("fit", 4, True, False, True)]


def test_test_loop_logs_metrics_under_inference_mode(tmp_path):
    metrics = FaithfulnessMetrics(
        "RandomAttribution",
        num_samples=3,
        metric_args={"deletion_auc": {"steps": 8}},
        metrics=("deletion_auc", "pointing_game"),
        name="f",
    )
    run = trainer(tmp_path, callbacks=[metrics], logger=CSVLogger(tmp_path))
    results = run.test(ExplainedModule(width=8), datamodule=shapes_data())
    assert set(k for k in results[0] if k.startswith("f/")) == {"f/deletion_auc", "f/pointing_game"}
    data = shapes_data()
    data.setup("test")
    assert len(metrics.samples.indices) == 3 and max(metrics.samples.indices) < len(data.test_set)


def test_bad_arguments():
    with pytest.raises(ValueError, match="every_n_epochs"):
        MaskLogger(Saliency, every_n_epochs=0)
    with pytest.raises(TypeError, match="every_n_steps"):
        MaskLogger(Saliency, every_n_steps=1.5)
    with pytest.raises(ValueError, match="alpha"):
        MaskLogger(Saliency, alpha=2.0)
    with pytest.raises(ValueError, match="name"):
        MaskLogger(Saliency, name="")
    with pytest.raises(ValueError, match="metrics"):
        FaithfulnessMetrics(Saliency, metrics=("accuracy",))
    with pytest.raises(ValueError, match="metric_args"):
        FaithfulnessMetrics(Saliency, metrics=("deletion_auc",), metric_args={"pointing_game": {}})


def test_pytorch_lightning_trainer(tmp_path):
    """The callbacks (built on lightning.pytorch) also drive a pytorch_lightning run."""
    pl = pytest.importorskip("pytorch_lightning")

    class Module(pl.LightningModule):
        def __init__(self):
            super().__init__()
            self.net = torch.nn.Sequential(
                torch.nn.Conv2d(3, 4, 3),
                torch.nn.ReLU(),
                torch.nn.AdaptiveAvgPool2d(1),
                torch.nn.Flatten(),
                torch.nn.Linear(4, 3),
            )

        def forward(self, x):
            return self.net(x)

        def training_step(self, batch, batch_idx):
            return torch.nn.functional.cross_entropy(self(batch[0]), batch[1])

        def validation_step(self, batch, batch_idx):
            self.log("val_loss", torch.nn.functional.cross_entropy(self(batch[0]), batch[1]))

        def configure_optimizers(self):
            return torch.optim.SGD(self.parameters(), lr=0.1)

    data = torch.utils.data.TensorDataset(torch.rand(8, 3, 32, 32), torch.arange(8) % 3)
    loader = torch.utils.data.DataLoader(data, batch_size=4)
    masks = MaskLogger("Saliency", num_samples=3)
    metrics = FaithfulnessMetrics("Saliency", num_samples=3, metric_args=QUICK_METRICS, name="f")
    run = pl.Trainer(
        max_epochs=1,
        accelerator="cpu",
        logger=pl.loggers.CSVLogger(tmp_path),
        callbacks=[masks, metrics],
        enable_progress_bar=False,
        enable_model_summary=False,
        enable_checkpointing=False,
    )
    run.fit(Module(), loader, loader)
    assert masks.routes == ["png"]
    assert {"f/deletion_auc", "f/insertion_auc", "f/saliency_metric"} <= set(run.callback_metrics)
    assert "f/pointing_game" not in run.callback_metrics  # no ground truth in the batches


def test_wandb_logger_offline(tmp_path, monkeypatch):
    pytest.importorskip("wandb")
    from lightning.pytorch.loggers import WandbLogger

    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("WANDB_SILENT", "true")
    logger = WandbLogger(save_dir=str(tmp_path), offline=True, project="callbacks")
    masks = MaskLogger(Saliency, num_samples=2)
    seed_everything(0)
    run = trainer(tmp_path, max_epochs=1, logger=logger, callbacks=[masks])
    run.fit(ExplainedModule(width=8), datamodule=shapes_data())
    assert masks.routes == ["wandb"]
    logger.experiment.finish()
    media = list((tmp_path / "wandb").rglob("*.png"))
    assert len(media) == 3  # images, masks, overlays at the one event


class _MaskTrainer(ExplainedModule):
    """The structure of an Explainer run: a segmentation net (``self.net``) trained
    against a frozen classifier (``self.classifier``) that ``train()`` keeps in eval."""

    def __init__(self):
        super().__init__(width=8)
        self.classifier = self.model.eval().requires_grad_(False)
        self.net = torch.nn.Sequential(torch.nn.Conv2d(3, 6, 3, padding=1), torch.nn.BatchNorm2d(6))

    def train(self, mode=True):
        super().train(mode)
        self.classifier.eval()
        return self

    def forward(self, images):
        return self.net(images)

    def training_step(self, batch, batch_idx):
        masks = self(batch["image"]).sigmoid()
        return torch.nn.functional.binary_cross_entropy_with_logits(
            self.classifier(batch["image"] * masks.amax(1, keepdim=True)), batch["labels"]
        )

    def validation_step(self, batch, batch_idx):
        pass

    def configure_optimizers(self):
        return torch.optim.Adam(self.net.parameters(), lr=1e-3)


def test_explainer_run_logs_its_own_masks_against_the_frozen_classifier(tmp_path):
    def own_masks(module, images, targets):
        masks = module(images).sigmoid()
        return masks[torch.arange(len(targets)), targets].unsqueeze(1)

    seen = []

    def recorded(module, images, targets):
        seen.append((module.net.training, module.classifier.training, targets.clone()))
        return own_masks(module, images, targets)

    masks = MaskLogger(
        attribution_fn=recorded,
        model="classifier",
        name="explainer",
        every_n_steps=1,
        every_n_epochs=None,
        num_samples=3,
    )
    metrics = FaithfulnessMetrics(
        attribution_fn=own_masks,
        model="classifier",
        num_samples=3,
        metric_args=QUICK_METRICS,
        name="ef",
    )
    seed_everything(0)
    module = _MaskTrainer()
    run = trainer(tmp_path, max_epochs=1, callbacks=[masks, metrics], logger=CSVLogger(tmp_path))
    run.fit(module, datamodule=shapes_data())
    assert [s[:2] for s in seen] == [(False, False), (False, False)]  # eval for the masks
    data = shapes_data()
    data.setup("fit")
    images = torch.stack([data.val_set[i]["image"] for i in masks.samples.indices])
    labels = torch.stack([data.val_set[i]["labels"] for i in masks.samples.indices])
    with torch.no_grad():
        scores = module.classifier(images)  # targets come from the classifier's scores
    assert torch.equal(seen[-1][2], torch.where(labels > 0.5, scores, -torch.inf).argmax(1))
    assert module.net.training and not module.classifier.training
    assert all(p.requires_grad for p in module.net.parameters())
    assert not any(p.requires_grad for p in module.classifier.parameters())
    assert "ef/continuous_iou" in run.callback_metrics


def test_pointing_game_from_boxes_when_no_masks(tmp_path):
    from captum_ext.data.shapes import ShapesDataset
    from captum_ext.metrics import pointing_game

    dataset = ShapesDataset(6, image_size=32, split="val")
    batch = {
        key: torch.stack([torch.as_tensor(dataset[i][key]) for i in range(6)])
        for key in ("image", "labels", "boxes", "box_labels")
    }
    target = int(batch["box_labels"][0, 0])
    present = (batch["box_labels"] == target).any(1)
    assert 0 < int(present.sum()) < 6  # some images have no box of the target: not scored
    metrics = FaithfulnessMetrics(
        Saliency,
        samples=batch,
        target=target,
        name="b",
        metrics=("pointing_game", "continuous_iou"),
    )
    seed_everything(0)
    module = ExplainedModule(width=8)
    run = trainer(tmp_path, callbacks=[metrics])
    logged = run.validate(module, datamodule=shapes_data())[0]
    assert "b/continuous_iou" not in logged  # needs masks
    module.eval()
    maps = Saliency(module).attribute(batch["image"][present].clone(), target=target)
    hits = pointing_game(
        maps, boxes=batch["boxes"][present], box_labels=batch["box_labels"][present], target=target
    )
    assert logged["b/pointing_game"] == pytest.approx(float(hits.float().mean()))
