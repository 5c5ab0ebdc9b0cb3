import pytest
import torch
import torch.nn.functional as F
import yaml
from lightning.pytorch import Trainer
from torch import nn

from captum_ext.cli.main import main
from captum_ext.data.object_masking import default_dilation, keep_random_objects
from captum_ext.data.samples import collate_samples
from captum_ext.data.shapes import ShapesDataModule, ShapesDataset
from captum_ext.models.pretrained import load_shapes_classifier
from captum_ext.models.shapes_classifier import ShapesClassifier
from captum_ext.models.weights import load_weights, save_weights
from captum_ext.training.classifier_module import ClassifierModule


def _trainer(tmp_path, **kwargs):
    return Trainer(
        max_epochs=1,
        limit_train_batches=2,
        limit_val_batches=1,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        default_root_dir=tmp_path,
        **kwargs,
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
    assert payload["config"] == {"num_classes": 5, "width": 4, "activation": "relu"}
    model = load_shapes_classifier(path)
    x = torch.rand(2, 3, 32, 32)
    expected = module.model.half().float().eval()(x)
    assert torch.allclose(model(x), expected, atol=1e-5)


def test_train_classifier_cli_exports(tmp_path):
    out = tmp_path / "clf.pt"
    main(
        [
            "train-classifier",
            "--preset",
            "shapes_classifier",
            "--trainer.max_epochs=1",
            "--trainer.limit_train_batches=2",
            "--trainer.limit_val_batches=1",
            "--trainer.enable_progress_bar=false",
            f"--trainer.default_root_dir={tmp_path}",
            "--data.image_size=32",
            "--data.num_train=16",
            "--data.num_val=8",
            "--data.num_test=8",
            "--data.batch_size=8",
            "--model.width=4",
            f"--export={out}",
        ]
    )
    model = load_shapes_classifier(out)
    assert model(torch.zeros(1, 3, 32, 32)).shape == (1, 6)
    assert (tmp_path / "lightning_logs").exists()


def _train_batch():
    return collate_samples([ShapesDataset(8, 32, split="train")[i] for i in range(8)])


def _fed_images(module, batch):
    seen = []
    handle = module.model.register_forward_hook(lambda m, args, out: seen.append(args[0]))
    with pytest.warns(UserWarning, match="self.log"):  # no Trainer attached
        loss = module.training_step(batch, 0)
    handle.remove()
    return seen[0], loss


def test_null_p_zero_keeps_the_augmentation_stream():
    # null_p = 0 reproduces the shipped shapes_classifier's recipe: the step draws only
    # the masking augmentation and the flips from the module's generator.
    batch = _train_batch()
    module = ClassifierModule(width=4, null_p=0.0, seed=3)
    generator = torch.Generator().manual_seed(3)
    images, _ = keep_random_objects(
        batch["image"], batch["labels"], batch["masks"], 0.5, default_dilation(32), generator
    )
    flip = torch.rand(8, generator=generator) < 0.5
    expected = torch.where(flip[:, None, None, None], images.flip(-1), images)
    assert torch.equal(_fed_images(module, batch)[0], expected)


def test_null_p_one_feeds_object_free_images_labelled_no_class():
    batch = _train_batch()
    module = ClassifierModule(width=4, robust_p=0.0, null_p=1.0, seed=3)
    fed, loss = _fed_images(module, batch)
    # No fed image (or its mirror) is one of the batch's images, and every label is 0.
    for image in batch["image"]:
        assert not any(torch.equal(image, f) or torch.equal(image.flip(-1), f) for f in fed)
    with torch.no_grad():
        expected = F.binary_cross_entropy_with_logits(module(fed), torch.zeros(8, 6))
    assert torch.allclose(loss, expected)


@pytest.mark.parametrize(
    "preset, null_p, activation",
    [
        ("shapes_classifier", 0.1, "relu"),
        ("shapes_classifier_silu", 0.1, "silu"),
        ("shapes_classifier_heldout", 0.1, "relu"),
    ],
)
def test_classifier_presets_parse(preset, null_p, activation, capsys):
    # Each shipped checkpoint's preset carries the recipe it was trained with.
    with pytest.raises(SystemExit) as exit_info:
        main(["train-classifier", "--preset", preset, "--print_config"])
    assert exit_info.value.code in (0, None)
    config = yaml.safe_load(capsys.readouterr().out)
    assert config["model"]["null_p"] == null_p
    epochs = 8 if preset.endswith("heldout") else 16  # the held-out budget is cut
    assert config["model"]["robust_p"] == 0.5 and config["trainer"]["max_epochs"] == epochs
    assert config["model"]["activation"] == activation
    (checkpointing,) = config["trainer"]["callbacks"]
    assert checkpointing["init_args"]["save_last"] is True


def test_activation_reaches_the_model_and_its_export():
    module = ClassifierModule(num_classes=3, width=4, activation="silu")
    acts = {type(m) for m in module.model.modules() if isinstance(m, (nn.ReLU, nn.SiLU))}
    assert acts == {nn.SiLU}
    rebuilt = ShapesClassifier(**module.export_config())
    rebuilt.load_state_dict(module.model.state_dict())
    x = torch.randn(2, 3, 32, 32)
    module.eval(), rebuilt.eval()
    assert torch.equal(rebuilt(x), module(x))


def test_heldout_arch_trains_exports_and_loads(tmp_path):
    """The held-out architecture: ResNet-18 behind an ImageNet normalisation, any size."""
    from torchvision.models import ResNet

    from captum_ext.models.shapes_classifier import ImageNetNormalized

    module = ClassifierModule(num_classes=6, arch="resnet18")
    assert isinstance(module.model, ImageNetNormalized) and isinstance(module.model.net, ResNet)
    save_weights(tmp_path / "h.pt", module.export_config(), module.model.state_dict())
    loaded = load_shapes_classifier(tmp_path / "h.pt")
    x = torch.randn(2, 3, 96, 96)
    module.eval()
    assert torch.allclose(loaded(x), module(x), atol=1e-2)  # fp16 weights on disk
    # the wrapper feeds the network ImageNet-normalised pixels of the shapes-world inputs
    seen = []
    loaded.net.conv1.register_forward_pre_hook(lambda m, a: seen.append(a[0]))
    loaded(torch.zeros(1, 3, 8, 8))  # the shapes world's mean colour: pixels 0.5
    expected = (0.5 - torch.tensor([0.485, 0.456, 0.406])) / torch.tensor([0.229, 0.224, 0.225])
    assert torch.allclose(seen[0][0, :, 0, 0], expected, atol=1e-6)
