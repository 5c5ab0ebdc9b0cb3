import torch
from lightning.pytorch import Trainer

from captum_ext.cli.main import main
from captum_ext.data.shapes import ShapesDataModule
from captum_ext.models.pretrained import load_shapes_classifier
from captum_ext.training.classifier_module import ClassifierModule
from captum_ext.training.export import load_weights, save_weights


def _trainer(tmp_path, **kwargs):
    return Trainer(
        max_epochs=1, limit_train_batches=2, limit_val_batches=1, logger=False,
        enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False,
        default_root_dir=tmp_path, **kwargs,
    )


def test_training_step_learns_and_logs(tmp_path):
    torch.manual_seed(0)
    dm = ShapesDataModule(image_size=32, num_train=16, num_val=8, num_test=8, batch_size=8)
    module = ClassifierModule(width=4, lr=1e-2)
    before = [p.detach().clone() for p in module.parameters()]
    trainer = _trainer(tmp_path)
    trainer.fit(module, datamodule=dm)
    assert any(not torch.equal(a, b) for a, b in zip(before, module.parameters()))
    logged = trainer.callback_metrics
    for key in ("train/loss", "val/loss", "val/exact_match", "val/object_only_exact_match"):
        assert key in logged and torch.isfinite(logged[key])


def test_weights_round_trip(tmp_path):
    module = ClassifierModule(num_classes=5, width=4)
    path = save_weights(tmp_path / "w.pt", module.export_config(), module.model.state_dict())
    payload = load_weights(path)
    assert payload["config"] == {"num_classes": 5, "width": 4}
    model = load_shapes_classifier(path)
    x = torch.rand(2, 3, 32, 32)
    expected = module.model.half().float().eval()(x)
    assert torch.allclose(model(x), expected, atol=1e-5)


def test_train_classifier_cli_exports(tmp_path):
    out = tmp_path / "clf.pt"
    main([
        "train-classifier", "--preset", "shapes_classifier",
        "--trainer.max_epochs=1", "--trainer.limit_train_batches=2",
        "--trainer.limit_val_batches=1", "--trainer.enable_progress_bar=false",
        f"--trainer.default_root_dir={tmp_path}",
        "--data.image_size=32", "--data.num_train=16", "--data.num_val=8", "--data.num_test=8",
        "--data.batch_size=8", "--model.width=4", f"--export={out}",
    ])
    model = load_shapes_classifier(out)
    assert model(torch.zeros(1, 3, 32, 32)).shape == (1, 6)
    assert (tmp_path / "lightning_logs").exists()
