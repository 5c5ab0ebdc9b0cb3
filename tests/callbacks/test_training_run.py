"""A real fit on the shapes world with TensorBoard, CSV and MLflow loggers attached."""

import csv

import numpy as np
import pytest
import torch
from captum.attr import Saliency
from lightning.pytorch import seed_everything
from lightning.pytorch.callbacks import ModelCheckpoint
from lightning.pytorch.loggers import CSVLogger, MLFlowLogger, TensorBoardLogger
from PIL import Image
from torchvision.utils import make_grid

from captum_ext.data.shapes import shapes_space
from captum_ext.metrics import (
    continuous_iou,
    deletion_auc,
    normalize_map,
    pointing_accuracy,
    pointing_game,
)
from lightning_callbacks import FaithfulnessMetrics, MaskLogger
from lightning_callbacks._render import colorize
from lightning_callbacks.faithfulness import METRICS
from tests.callbacks._helpers import QUICK_METRICS, ExplainedModule, shapes_data, trainer

TAGS = [f"attributions/Saliency/{kind}" for kind in ("images", "masks", "overlays")]
EVENT_STEPS = [2, 4]  # two epochs of two steps; the sanity check logs nothing


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    with pytest.MonkeyPatch.context() as patch:
        # MLflow 3 keeps the local file store behind an opt-in flag.
        patch.setenv("MLFLOW_ALLOW_FILE_STORE", "true")
        yield _fit(tmp_path_factory.mktemp("run"))


def _fit(root):
    seed_everything(0)
    data = shapes_data()
    module = ExplainedModule(width=8)
    loggers = [
        TensorBoardLogger(root / "tb", name="", version=0),
        CSVLogger(root / "csv", name="", version=0),
        MLFlowLogger(experiment_name="callbacks", tracking_uri=f"file:{root / 'mlruns'}"),
    ]
    masks = MaskLogger(Saliency, num_samples=4, space=shapes_space())
    explainer = MaskLogger(attribution_fn="masks", num_samples=4, name="explainer")
    metrics = FaithfulnessMetrics(
        "Saliency",
        num_samples=6,
        batch_size=4,
        score="sigmoid",
        metric_args=QUICK_METRICS,
        name="faith",
    )
    checkpoint = ModelCheckpoint(
        root / "ckpt", monitor="faith/deletion_auc", mode="min", save_last=True
    )
    fit = trainer(
        root,
        logger=loggers,
        callbacks=[masks, explainer, metrics, checkpoint],
        enable_checkpointing=True,
    )
    fit.fit(module, datamodule=data)
    return dict(
        root=root,
        trainer=fit,
        module=module,
        data=data,
        loggers=loggers,
        masks=masks,
        explainer=explainer,
        metrics=metrics,
        checkpoint=checkpoint,
    )


def test_logger_types_and_routes(run):
    loggers = [type(lg) for lg in run["trainer"].loggers]
    assert loggers == [TensorBoardLogger, CSVLogger, MLFlowLogger]
    assert run["masks"].routes == ["tensorboard", "png", "mlflow"]


def test_tensorboard_event_file_has_image_and_scalar_tags(run):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(str(run["root"] / "tb" / "version_0"), size_guidance={"images": 0})
    events.Reload()
    tags = events.Tags()
    for tag in TAGS:
        # add_images writes one tiled image per call
        assert [e.step for e in events.Images(tag)] == EVENT_STEPS
        assert (events.Images(tag)[0].width, events.Images(tag)[0].height) == (4 * 32, 32)
    for name in METRICS:
        assert f"faith/{name}" in tags["scalars"]
    deletion = [e.value for e in events.Scalars("faith/deletion_auc")]
    assert len(deletion) == 2
    final = run["trainer"].callback_metrics["faith/deletion_auc"]
    assert deletion[-1] == pytest.approx(float(final))


def test_csv_logger_gets_png_grids_and_metric_rows(run):
    directory = run["root"] / "csv" / "version_0"
    for tag in TAGS:
        for step in EVENT_STEPS:
            image = Image.open(directory / "images" / tag / f"step_{step:07d}.png")
            assert image.size == (4 * 34 + 2, 36)  # make_grid: 4 images, padding 2
    rows = list(csv.DictReader(open(directory / "metrics.csv")))
    logged = [r for r in rows if r.get("faith/insertion_auc")]
    assert [int(r["step"]) for r in logged] == EVENT_STEPS  # the step the images are at
    assert all(0.0 <= float(r["faith/insertion_auc"]) <= 1.0 for r in logged)


def test_mlflow_gets_images_and_metrics(run):
    logger = run["loggers"][2]
    client = logger.experiment
    artifacts = [a.path for a in client.list_artifacts(logger.run_id, "images")]
    for tag in TAGS:
        assert sum(tag.replace("/", "#") in p.replace("~", "#") for p in artifacts) >= 2, artifacts
    history = client.get_metric_history(logger.run_id, "faith/pointing_game")
    assert len(history) == 2


def test_explainer_masks_are_logged_through_attribution_fn(run):
    module, data = run["module"], run["data"]
    indices = run["explainer"].samples.indices
    images = torch.stack([data.val_set[i]["image"] for i in indices])
    labels = torch.stack([data.val_set[i]["labels"] for i in indices])
    module.eval()
    with torch.no_grad():
        logits = module(images)
    targets = torch.where(labels > 0.5, logits, -torch.inf).argmax(1)
    expected = make_grid(colorize(module.masks(images, targets)), nrow=8, padding=2, pad_value=1.0)
    expected = (expected * 255 + 0.5).clamp(0, 255).to(torch.uint8).permute(1, 2, 0).numpy()
    png = run["root"] / "csv" / "version_0" / "images" / "explainer" / "masks" / "step_0000004.png"
    assert np.abs(np.asarray(Image.open(png)).astype(int) - expected.astype(int)).max() <= 1


def test_logged_metrics_equal_the_metrics_on_the_fixed_samples(run):
    """The last event ran after the last training step: the final model is the one scored."""
    module, data, callback = run["module"], run["data"], run["metrics"]
    indices = callback.samples.indices
    assert len(indices) == 6 and indices == sorted(set(indices))
    images = torch.stack([data.val_set[i]["image"] for i in indices])
    labels = torch.stack([data.val_set[i]["labels"] for i in indices])
    gt = torch.stack([data.val_set[i]["masks"] for i in indices])
    module.eval()
    with torch.no_grad():
        logits = module(images)
    targets = torch.where(labels > 0.5, logits, -torch.inf).argmax(1)
    maps = Saliency(module).attribute(images.clone(), target=targets).mean(1, keepdim=True)
    target_masks = gt[torch.arange(6), targets].unsqueeze(1)
    hits = pointing_game(maps, masks=target_masks)
    expected = {
        "deletion_auc": deletion_auc(module, images, maps, targets, score="sigmoid", steps=8),
        "pointing_game_pairs": hits,
        "continuous_iou": continuous_iou(normalize_map(maps), target_masks),
    }
    logged = run["trainer"].callback_metrics
    for name, values in expected.items():
        expected_mean = float(values.float().mean())
        assert float(logged[f"faith/{name}"]) == pytest.approx(expected_mean, abs=1e-4)
    class_mean = pointing_accuracy(hits, targets).mean_over_classes  # TorchRay's accuracy
    assert float(logged["faith/pointing_game"]) == pytest.approx(class_mean, abs=1e-4)


def test_checkpoint_monitors_the_metric_and_stores_the_samples(run):
    checkpoint = run["checkpoint"]
    scores = [e for e in run["trainer"].callback_metrics]
    assert "faith/deletion_auc" in scores
    assert checkpoint.best_model_score is not None
    state = torch.load(checkpoint.last_model_path, weights_only=False)["callbacks"]
    stored = state[run["metrics"].state_key]["samples"]
    assert stored["indices"] == run["metrics"].samples.indices
    assert state[run["masks"].state_key]["samples"]["indices"] == run["masks"].samples.indices


def test_resumed_run_explains_the_same_samples(run, tmp_path):
    """A new callback with another seed, restored from the checkpoint, keeps the samples."""
    resumed = FaithfulnessMetrics(
        "Saliency",
        num_samples=6,
        batch_size=4,
        score="sigmoid",
        metric_args=QUICK_METRICS,
        name="faith",
        seed=1234,
    )
    fresh_draw = resumed.samples.draw(len(run["data"].val_set))
    assert fresh_draw != run["metrics"].samples.indices  # the seed alone would differ
    evaluation = trainer(tmp_path, callbacks=[resumed])
    evaluation.validate(
        ExplainedModule(width=8),
        datamodule=shapes_data(),
        ckpt_path=run["checkpoint"].last_model_path,
    )
    assert resumed.samples.indices == run["metrics"].samples.indices
    logged = float(evaluation.callback_metrics["faith/deletion_auc"])
    assert logged == pytest.approx(
        float(run["trainer"].callback_metrics["faith/deletion_auc"]), abs=1e-4
    )
