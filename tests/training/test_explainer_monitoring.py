"""ExplainerModule with a real Trainer: model selection, mask collapse, tuple batches,
learning-rate schedules and flips."""

import csv
import math
import re
import warnings
from pathlib import Path

import pytest
import torch
from lightning.pytorch import Callback, Trainer
from lightning.pytorch.callbacks import EarlyStopping, ModelCheckpoint
from lightning.pytorch.loggers import CSVLogger
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from captum_ext.data.samples import collate_samples
from captum_ext.data.shapes import ShapesDataset
from captum_ext.metrics.masking_matrix import class_masking_matrix, masking_matrix_ratio
from captum_ext.models.pretrained import load_shapes_classifier
from captum_ext.training import explainer_module
from captum_ext.training.explainer_module import ExplainerModule
from tests.conftest import TinyCNN

UNET = {"width": 4, "depth": 1}
DOCS = Path(__file__).resolve().parents[2] / "docs" / "methods" / "explainer.md"


def _trainer(tmp_path, **kwargs):
    defaults = dict(
        max_epochs=1,
        logger=False,
        enable_progress_bar=False,
        accelerator="cpu",
        enable_model_summary=False,
        enable_checkpointing=False,
        default_root_dir=tmp_path,
    )
    defaults.update(kwargs)
    return Trainer(**defaults)


def _tensor_loader(n=8, k=4, size=16, batch_size=4, multi_hot=False, seed=0):
    g = torch.Generator().manual_seed(seed)
    images = torch.rand(n, 3, size, size, generator=g)
    targets = torch.randint(0, k, (n,), generator=g)
    if multi_hot:
        targets = torch.nn.functional.one_hot(targets, k).float()
        targets[0, (int(targets[0].argmax()) + 1) % k] = 1.0  # one image with two classes
    return DataLoader(TensorDataset(images, targets), batch_size=batch_size)


# ---------------------------------------------------------------- model selection
class Replay(nn.Module):
    """An 'Explainer' that returns given logits for consecutive images (an unshuffled loader)."""

    def __init__(self, logits):
        super().__init__()
        self.register_buffer("logits", logits)
        self.bias = nn.Parameter(torch.zeros(()))
        self.seen = 0

    def forward(self, images):
        out = self.logits[self.seen : self.seen + images.shape[0]] + self.bias
        self.seen += images.shape[0]
        return out


def _shapes_val(n):
    dataset = ShapesDataset(n, 64, split="val")
    return dataset, collate_samples([dataset[i] for i in range(n)])


def _class_ratio(tmp_path, module, dataset):
    trainer = _trainer(tmp_path)
    trainer.validate(
        module, DataLoader(dataset, batch_size=8, collate_fn=collate_samples), verbose=False
    )
    return trainer.callback_metrics["val/class_ratio"].item()


def test_class_ratio_is_table_1s_criterion_and_sees_class_agnostic_masks(tmp_path):
    # Two replayed Explainers on the same validation images: ground-truth class masks, and
    # class-agnostic masks (every channel the union of the image's objects). val/iou
    # scores only present channels; val/class_ratio must separate the two.
    n = 12
    dataset, batch = _shapes_val(n)
    gt = batch["masks"].float()
    specific = (gt * 2 - 1) * 10
    agnostic = (gt.amax(dim=1, keepdim=True).expand_as(gt) * 2 - 1) * 10
    classifier = load_shapes_classifier()
    ratios = {}
    for name, logits in (("specific", specific), ("agnostic", agnostic)):
        module = ExplainerModule(
            num_classes=6,
            classifier=classifier,
            arch="unet",
            arch_kwargs=UNET,
            class_ratio_images=8,
        )
        module.model = Replay(logits)
        ratios[name] = _class_ratio(tmp_path, module, dataset)
        # The logged value is Table 1's ratio on the first 8 validation images.
        matrix = class_masking_matrix(
            classifier,
            batch["image"][:8],
            logits[:8].sigmoid(),
            batch["labels"][:8],
            score="softmax",
        )
        assert ratios[name] == pytest.approx(masking_matrix_ratio(matrix).item(), rel=1e-5)
    assert ratios["agnostic"] < 1.3 < 2.0 < ratios["specific"], ratios


def test_val_loss_and_class_ratio_are_logged_every_epoch_and_monitorable(tmp_path):
    module = ExplainerModule(
        num_classes=4, classifier=TinyCNN(4), arch="unet", arch_kwargs=UNET, lr=1e-3
    )
    checkpoint = ModelCheckpoint(dirpath=tmp_path / "ckpt", monitor="val/class_ratio", mode="max")
    stop = EarlyStopping(monitor="val/class_ratio", mode="max", patience=5, check_finite=True)
    trainer = _trainer(
        tmp_path,
        max_epochs=2,
        enable_checkpointing=True,
        callbacks=[checkpoint, stop],
        logger=CSVLogger(tmp_path, name="log"),
        num_sanity_val_steps=0,
    )
    trainer.fit(module, _tensor_loader(multi_hot=True), _tensor_loader(seed=1))
    with open(Path(trainer.logger.log_dir) / "metrics.csv") as f:
        rows = [r for r in csv.DictReader(f) if r.get("val/class_ratio")]
    assert [int(r["epoch"]) for r in rows] == [0, 1]
    for row in rows:
        assert math.isfinite(float(row["val/class_ratio"])) and float(row["val/class_ratio"]) > 0
        assert math.isfinite(float(row["val/loss"]))
    assert checkpoint.best_model_score is not None and "val/class_ratio" in stop.state_key


# ---------------------------------------------------------------- mask collapse
class Constant(nn.Module):
    """An 'Explainer' whose masks are the same value at every pixel (a collapsed one)."""

    def __init__(self, k, logit):
        super().__init__()
        self.k, self.bias = k, nn.Parameter(torch.tensor(float(logit)))

    def forward(self, images):
        return self.bias.expand(images.shape[0], self.k, *images.shape[-2:])


class FromImage(nn.Module):
    """A healthy stand-in: every class's mask follows the image's brightness."""

    def __init__(self, k):
        super().__init__()
        self.k, self.scale = k, nn.Parameter(torch.tensor(20.0))

    def forward(self, images):
        return (self.scale * (images.mean(dim=1, keepdim=True) - 0.5)).expand(-1, self.k, -1, -1)


def _collapse_warnings(tmp_path, model):
    module = ExplainerModule(
        num_classes=4, classifier=TinyCNN(4), arch="unet", arch_kwargs=UNET, lr=1e-6
    )
    module.model = model
    trainer = _trainer(tmp_path, max_epochs=2, limit_val_batches=0)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        trainer.fit(module, _tensor_loader(multi_hot=True))
    messages = [str(w.message) for w in caught if "masks collapsed" in str(w.message)]
    return messages, trainer.callback_metrics


@pytest.mark.parametrize("logit, how", [(-8.0, "all off"), (8.0, "all on"), (0.0, "flat at 0.50")])
def test_collapse_warning_fires_once_on_a_constant_explainer(tmp_path, logit, how):
    messages, logged = _collapse_warnings(tmp_path, Constant(4, logit))
    assert len(messages) == 1, messages  # two epochs, one warning
    assert how in messages[0] and "100% of the 9 target-class masks" in messages[0]
    assert "'Training on your own classifier' in docs/methods/explainer.md" in messages[0]
    assert logged["train/mask_collapse"].item() == 1.0
    assert logged["train/mask_std"].item() < 1e-6


def test_no_collapse_warning_on_a_healthy_explainer(tmp_path):
    messages, logged = _collapse_warnings(tmp_path, FromImage(4))
    assert messages == []
    assert logged["train/mask_collapse"].item() == 0.0
    assert logged["train/mask_std"].item() > explainer_module.COLLAPSE_STD


def test_the_warnings_recipe_section_exists():
    heading = re.search(r"'(.+)' in docs/methods/explainer.md", explainer_module.RECIPE).group(1)
    assert f"## {heading}\n" in DOCS.read_text()


# ---------------------------------------------------------------- tuple batches
@pytest.mark.parametrize("multi_hot", [False, True])
def test_tuple_batches_train_with_a_real_trainer(tmp_path, multi_hot):
    module = ExplainerModule(
        num_classes=4, classifier=TinyCNN(4), arch="unet", arch_kwargs=UNET, lr=1e-3
    )
    before = [p.detach().clone() for p in module.model.parameters()]
    trainer = _trainer(tmp_path)
    trainer.fit(module, _tensor_loader(multi_hot=multi_hot), _tensor_loader(seed=1))
    assert any(not torch.equal(a, p) for a, p in zip(before, module.model.parameters()))
    for key in ("train/loss", "val/loss", "val/class_ratio", "val/mask_collapse"):
        assert torch.isfinite(trainer.callback_metrics[key]), key


def test_tuple_targets_become_multi_hot_labels_and_bad_ones_are_refused():
    module = ExplainerModule(num_classes=3, classifier=TinyCNN(3), arch="unet", arch_kwargs=UNET)
    x = torch.rand(2, 3, 8, 8)
    _, labels, _ = module._unpack((x, torch.tensor([2, 0])))
    assert torch.equal(labels, torch.tensor([[0.0, 0, 1], [1, 0, 0]]))
    _, labels, _ = module._unpack([x, torch.tensor([[True, True, False], [False, False, True]])])
    assert torch.equal(labels, torch.tensor([[1.0, 1, 0], [0, 0, 1]]))
    with pytest.raises(ValueError, match=r"class-index targets must be in \[0, 3\)"):
        module._unpack((x, torch.tensor([0, 3])))
    with pytest.raises(ValueError, match=r"class indices \(2,\) or multi-hot \(2, 3\)"):
        module._unpack((x, torch.zeros(2, 4)))
    with pytest.raises(TypeError, match="tuple / list, got tuple of length 3"):
        module._unpack((x, torch.tensor([0, 1]), None))


# ---------------------------------------------------------------- schedules and flips
class LrSpy(Callback):
    """The learning rate each training step runs with."""

    def __init__(self):
        self.lrs = []

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
        self.lrs.append(trainer.optimizers[0].param_groups[0]["lr"])


def _one_cycle(step, total, lr, pct_start=0.1):
    # torch's OneCycleLR with its defaults (cosine annealing, div 25, final div 1e4).
    start, low = lr / 25, lr / 25 / 1e4
    warm_end = pct_start * total - 1

    def anneal(a, b, pct):
        return b + (a - b) / 2 * (1 + math.cos(math.pi * pct))

    if step <= warm_end:
        return anneal(start, lr, step / warm_end)
    return anneal(lr, low, (step - warm_end) / (total - 1 - warm_end))


@pytest.mark.parametrize(
    "schedule, expected",
    [
        ("constant", lambda t, total, lr: lr),
        ("cosine", lambda t, total, lr: lr * (1 + math.cos(math.pi * t / total)) / 2),
        ("onecycle", _one_cycle),
    ],
)
def test_lr_schedule_is_applied_at_every_step(tmp_path, schedule, expected):
    lr, epochs, loader = 1e-2, 2, _tensor_loader(n=20, batch_size=2)  # 20 steps
    module = ExplainerModule(
        num_classes=4,
        classifier=TinyCNN(4),
        arch="unet",
        arch_kwargs=UNET,
        lr=lr,
        lr_schedule=schedule,
    )
    spy = LrSpy()
    _trainer(tmp_path, max_epochs=epochs, limit_val_batches=0, callbacks=[spy]).fit(module, loader)
    total = epochs * len(loader)
    assert spy.lrs == pytest.approx([expected(t, total, lr) for t in range(total)], rel=1e-6)


class FedImages(Callback):
    """(batch images, images the Explainer saw) of every training and validation step."""

    def __init__(self):
        self.pairs = {"train": [], "val": []}

    def _spy(self, pl_module, batch, stage):
        fed = []
        handle = pl_module.model.register_forward_pre_hook(lambda m, args: fed.append(args[0]))
        self._pending = (handle, batch[0], fed, stage)

    def _done(self):
        handle, images, fed, stage = self._pending
        handle.remove()
        self.pairs[stage].append((images, fed[0]))

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
        self._spy(pl_module, batch, "train")

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
        self._done()

    def on_validation_batch_start(self, trainer, pl_module, batch, batch_idx, dataloader_idx=0):
        self._spy(pl_module, batch, "val")

    def on_validation_batch_end(
        self, trainer, pl_module, outputs, batch, batch_idx, dataloader_idx=0
    ):
        self._done()


@pytest.mark.parametrize("hflip", [True, False])
def test_hflip_flips_some_training_images_and_nothing_else(tmp_path, hflip):
    module = ExplainerModule(
        num_classes=4, classifier=TinyCNN(4), arch="unet", arch_kwargs=UNET, hflip=hflip, seed=1
    )
    spy = FedImages()
    _trainer(tmp_path, max_epochs=2, callbacks=[spy], num_sanity_val_steps=0).fit(
        module, _tensor_loader(), _tensor_loader(seed=1)
    )
    flipped = {"train": [], "val": []}
    for stage, pairs in spy.pairs.items():
        for images, fed in pairs:
            for image, seen in zip(images, fed):
                assert torch.equal(seen, image) or torch.equal(seen, image.flip(-1))
                flipped[stage].append(not torch.equal(seen, image))
    assert len(flipped["train"]) == 16 and not any(flipped["val"])
    if hflip:  # seeded: some flipped, some not
        assert 0 < sum(flipped["train"]) < 16
    else:
        assert not any(flipped["train"])
