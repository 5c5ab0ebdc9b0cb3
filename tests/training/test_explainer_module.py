"""ExplainerModule with a real Lightning Trainer: frozen classifier, logging, resume, CLI."""

import pytest
import torch
import yaml
from lightning.pytorch import Callback, Trainer

from captum_ext.cli.main import main
from captum_ext.data.shapes import ShapesDataModule
from captum_ext.metrics import pointing_accuracy, pointing_game
from captum_ext.models.shapes_classifier import ShapesClassifier
from captum_ext.models.weights import save_weights
from captum_ext.training.explainer_loss import ExplainerLoss, RTISLoss
from captum_ext.training.explainer_module import ExplainerModule
from tests.conftest import TinyCNN

UNET = {"width": 4, "depth": 1}


def _data(num_classes=4):
    return ShapesDataModule(
        image_size=32, num_classes=num_classes, num_train=16, num_val=8, num_test=8, batch_size=8
    )


def _trainer(tmp_path, **kwargs):
    defaults = dict(
        max_epochs=1,
        logger=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        enable_checkpointing=False,
        default_root_dir=tmp_path,
    )
    defaults.update(kwargs)
    return Trainer(**defaults)


class ModeSpy(Callback):
    """Records the classifier's mode and flags at every step."""

    def __init__(self):
        self.seen = []

    def _record(self, pl_module):
        clf = pl_module.classifier
        self.seen.append(
            (
                clf.training,
                any(m.training for m in clf.modules()),
                any(p.requires_grad for p in clf.parameters()),
                pl_module.model.training,
            )
        )

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
        self._record(pl_module)

    def on_validation_batch_start(self, trainer, pl_module, batch, batch_idx, dataloader_idx=0):
        self._record(pl_module)

    def on_test_batch_start(self, trainer, pl_module, batch, batch_idx, dataloader_idx=0):
        self._record(pl_module)


def test_classifier_stays_frozen_through_fit_validate_test(tmp_path):
    torch.manual_seed(0)
    classifier = TinyCNN(num_classes=4).train()  # BatchNorm + Dropout, handed over in train mode
    buffers = {k: v.clone() for k, v in classifier.state_dict().items()}
    module = ExplainerModule(
        num_classes=4, classifier=classifier, arch="unet", arch_kwargs=UNET, lr=1e-2
    )
    before = [p.detach().clone() for p in module.model.parameters()]
    spy = ModeSpy()
    trainer = _trainer(tmp_path, callbacks=[spy])
    dm = _data()
    trainer.fit(module, datamodule=dm)
    trainer.validate(module, datamodule=dm, verbose=False)
    trainer.test(module, datamodule=dm, verbose=False)
    for key, value in classifier.state_dict().items():  # running stats bit-identical
        assert torch.equal(value, buffers[key]), key
    assert spy.seen and all(not a and not b and not c for a, b, c, _ in spy.seen)
    assert any(train for *_, train in spy.seen)  # the explainer itself did train
    assert any(not torch.equal(a, b) for a, b in zip(before, module.model.parameters()))
    assert all(p.grad is None for p in classifier.parameters())
    module.train()
    assert not classifier.training


def test_every_loss_term_is_logged(tmp_path):
    module = ExplainerModule(num_classes=4, classifier=TinyCNN(4), arch="unet", arch_kwargs=UNET)
    trainer = _trainer(tmp_path, limit_train_batches=1)
    trainer.fit(module, datamodule=_data())
    for stage in ("train", "val"):
        for term in ExplainerLoss.TERMS + ("loss",):
            assert torch.isfinite(trainer.callback_metrics[f"{stage}/{term}"]), (stage, term)
    for metric in ("iou", "pointing"):  # the shapes world has ground-truth masks
        assert 0 <= trainer.callback_metrics[f"val/{metric}"] <= 1


def test_val_pointing_is_the_class_mean_over_the_epochs_pairs(tmp_path):
    module = ExplainerModule(num_classes=4, classifier=TinyCNN(4), arch="unet", arch_kwargs=UNET)
    dm = ShapesDataModule(
        image_size=32, num_classes=4, num_train=8, num_val=12, num_test=4, batch_size=4
    )  # three validation batches, accumulated over the epoch
    trainer = _trainer(tmp_path)
    trainer.validate(module, datamodule=dm, verbose=False)
    hits, classes = [], []
    module.eval()
    with torch.no_grad():
        for batch in dm.val_dataloader():
            gt = batch["masks"]
            present = (batch["labels"] > 0.5) & (gt.flatten(2).amax(dim=2) > 0.5)
            img, cls = present.nonzero(as_tuple=True)
            maps = module(batch["image"])[img, cls].unsqueeze(1)
            hits.append(pointing_game(maps, masks=gt[img, cls]))
            classes.append(cls)
    expected = pointing_accuracy(torch.cat(hits), torch.cat(classes))
    assert expected.mean_over_classes != expected.per_pair  # the two conventions differ here
    logged = trainer.callback_metrics
    assert float(logged["val/pointing"]) == pytest.approx(expected.mean_over_classes)
    assert float(logged["val/pointing_pairs"]) == pytest.approx(expected.per_pair)


def test_rtis_variant_and_schedules_train(tmp_path):
    for schedule in ("cosine", "onecycle"):
        module = ExplainerModule(
            num_classes=4,
            classifier=TinyCNN(4),
            arch="unet",
            arch_kwargs=UNET,
            loss=RTISLoss(),
            lr=1e-3,
            lr_schedule=schedule,
            hflip=True,
        )
        trainer = _trainer(tmp_path, limit_train_batches=2, limit_val_batches=1)
        trainer.fit(module, datamodule=_data())
        assert "train/destroyer" in trainer.callback_metrics
    with pytest.raises(ValueError, match="lr_schedule"):
        ExplainerModule(num_classes=4, classifier=TinyCNN(4), arch="unet", lr_schedule="step")


def test_checkpoint_leaves_out_the_classifier_and_resumes(tmp_path):
    module = ExplainerModule(
        num_classes=4, classifier=TinyCNN(4), arch="unet", arch_kwargs=UNET, lr=1e-3
    )
    trainer = _trainer(
        tmp_path, enable_checkpointing=True, limit_train_batches=1, limit_val_batches=1
    )
    trainer.fit(module, datamodule=_data())
    path = trainer.checkpoint_callback.best_model_path
    checkpoint = torch.load(path, weights_only=True)
    assert not any(k.startswith("classifier.") for k in checkpoint["state_dict"])
    assert any(k.startswith("model.") for k in checkpoint["state_dict"])

    fresh = ExplainerModule(
        num_classes=4, classifier=TinyCNN(4), arch="unet", arch_kwargs=UNET, lr=1e-3
    )
    resumed = _trainer(tmp_path, max_epochs=2, limit_train_batches=1, limit_val_batches=1)
    resumed.fit(fresh, datamodule=_data(), ckpt_path=path)
    assert resumed.current_epoch == 2 and resumed.global_step == 2


def test_named_classifier_needs_weights():
    with pytest.raises(ValueError, match="classifier_checkpoint"):
        ExplainerModule(num_classes=20, classifier="vgg16", arch="unet", arch_kwargs=UNET)
    with pytest.raises(ValueError, match="classifier"):
        ExplainerModule(num_classes=20, classifier="alexnet", arch="unet", arch_kwargs=UNET)


def test_train_explainer_cli_exports_and_resumes(tmp_path):
    clf = tmp_path / "clf.pt"
    save_weights(clf, {"num_classes": 6, "width": 4}, ShapesClassifier(6, width=4).state_dict())
    common = [
        "train-explainer",
        "--preset",
        "shapes_explainer",
        f"--model.classifier_checkpoint={clf}",
        "--model.arch_kwargs={width: 4, depth: 1}",
        "--trainer.limit_train_batches=1",
        "--trainer.limit_val_batches=1",
        "--trainer.enable_progress_bar=false",
        f"--trainer.default_root_dir={tmp_path}",
        "--data.image_size=32",
        "--data.num_train=8",
        "--data.num_val=8",
        "--data.num_test=8",
        "--data.batch_size=8",
        # resuming with a longer run: a one-cycle schedule cannot be extended
        "--model.lr_schedule=constant",
    ]
    out = tmp_path / "explainer.pt"
    main(common + ["--trainer.max_epochs=1", f"--export={out}"])
    from captum_ext.attr.explainer import ExplainerAttribution

    method = ExplainerAttribution.from_checkpoint(out)
    assert method.class_masks(torch.rand(1, 3, 32, 32)).shape == (1, 6, 32, 32)
    # the preset keeps last.ckpt (save_last), the checkpoint the docs resume from
    ckpt = tmp_path / "lightning_logs" / "version_0" / "checkpoints" / "last.ckpt"
    assert ckpt.exists()
    from_lightning = ExplainerAttribution.from_checkpoint(ckpt)
    x = torch.rand(1, 3, 32, 32)
    assert torch.allclose(method.class_masks(x), from_lightning.class_masks(x), atol=2e-3)
    main(common + ["--trainer.max_epochs=2", f"--ckpt_path={ckpt}"])
    assert len(list((tmp_path / "lightning_logs").glob("version_1/checkpoints/epoch=1*.ckpt"))) == 1


@pytest.mark.parametrize(
    "preset, l_e, lr",
    [
        ("explainer_vgg16_voc", 1.0, 1e-5),
        ("explainer_resnet50_voc", 3.0, 1e-4),
        ("explainer_vgg16_coco", 1.0, 1e-5),
        ("explainer_resnet50_coco", 3.0, 1e-5),
        ("shapes_explainer", None, None),
        ("shapes_explainer_paper_loss", None, None),
        ("shapes_explainer_rtis", None, None),
    ],
)
def test_presets_parse(preset, l_e, lr, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["train-explainer", "--preset", preset, "--print_config"])
    assert exit_info.value.code in (0, None)
    config = yaml.safe_load(capsys.readouterr().out)
    callbacks = [c["class_path"] for c in config["trainer"]["callbacks"]]
    assert "lightning.pytorch.callbacks.EarlyStopping" in callbacks
    assert "lightning.pytorch.callbacks.ModelCheckpoint" in callbacks
    if l_e is not None:
        model = config["model"]
        assert model["loss"]["init_args"]["l_e"] == l_e and model["lr"] == lr
        assert model["arch"] == "deeplabv3_resnet50"
    loss = config["model"]["loss"]["class_path"].rsplit(".", 1)[-1]
    assert loss == ("RTISLoss" if preset.endswith("rtis") else "ExplainerLoss")
    monitors = {c["init_args"]["monitor"] for c in config["trainer"]["callbacks"]}
    (checkpointing,) = [
        c for c in config["trainer"]["callbacks"] if "ModelCheckpoint" in c["class_path"]
    ]
    assert checkpointing["init_args"]["save_last"] is True  # --ckpt_path .../last.ckpt resumes
    if preset.startswith("shapes"):
        # Model selection that sees class specificity (val/iou scores present classes only).
        assert monitors == {"val/class_ratio"}
    else:
        assert monitors == {"val/loss"}  # the paper's
    l_c = config["model"]["loss"].get("init_args", {}).get("l_c", 0.0)
    assert l_c == (1.0 if preset == "shapes_explainer" else 0.0)  # paper presets: the paper's loss
    if preset in ("shapes_explainer", "shapes_explainer_paper_loss"):
        # one recipe, the class term aside: the two differ only in l_c
        other = (
            "shapes_explainer_paper_loss" if preset == "shapes_explainer" else "shapes_explainer"
        )
        with pytest.raises(SystemExit):
            main(["train-explainer", "--preset", other, "--print_config"])
        twin = yaml.safe_load(capsys.readouterr().out)
        for c in (config, twin):
            c["model"]["loss"]["init_args"].pop("l_c")
            c["trainer"].pop("default_root_dir")
        assert twin == config
