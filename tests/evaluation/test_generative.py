"""Experiments of Agarwal & Nguyen on the shapes world: removal table, registry, reports."""

import json

import pytest
import torch

from captum_ext.attr import SlidingPatch
from captum_ext.cli.main import main
from captum_ext.data.shapes import ShapesDataset
from captum_ext.evaluation import default_methods
from captum_ext.evaluation.classifier_robustness import removal_effectiveness
from captum_ext.evaluation.generative import (
    RecordedAttribution,
    beats_twin_table,
    run_generative_evaluation,
    scaled_sizes,
)
from captum_ext.evaluation.methods import GENERATIVE_METHODS
from captum_ext.fillers import Constant, Inpaint
from captum_ext.models.inpainting_unet import InpaintingUNet
from captum_ext.models.pretrained import load_shapes_classifier
from captum_ext.models.shapes_classifier import ShapesClassifier
from captum_ext.models.weights import save_weights


class Identity:
    def __call__(self, images, holes):
        return images


def test_removal_effectiveness_rows():
    model = load_shapes_classifier()
    data = ShapesDataset(6, split="test")
    table = removal_effectiveness(
        model,
        data,
        {"identity": Inpaint(Identity(), data.space), "grey": Constant(0.0)},
        show_progress=False,
    )
    pairs = int(data.labels[:6].sum())
    assert table["none"]["pairs"] == pairs
    assert table["identity"] == table["none"]
    assert table["none"]["ssim"] == pytest.approx(1.0) and table["grey"]["ssim"] < 0.95
    with torch.no_grad():
        probs = model(torch.stack([data[i]["image"] for i in range(6)])).sigmoid()
    detected = (probs > 0.5)[data.labels[:6] > 0.5].float().mean()
    assert table["none"]["recall"] == pytest.approx(float(detected))


def test_generative_registry_scales_with_the_image():
    specs = {s.name: s for s in default_methods(64, include=list(GENERATIVE_METHODS))}
    assert list(specs) == ["SP", "SP-G", "LIME", "LIME-G", "MP2", "MP2-G"]
    assert specs["SP"].attribute_kwargs["sliding_window_shapes"] == 8
    assert specs["SP"].attribute_kwargs["strides"] == 4
    assert specs["LIME"].attribute_kwargs["n_samples"] == 1000
    big = {s.name: s for s in default_methods(224, include=["sp", "mp2_g_telea"])}
    assert big["SP"].attribute_kwargs["sliding_window_shapes"] == 29
    mp2 = big["MP2-G (Telea)"].build(ShapesClassifier(width=4))
    assert mp2.grid_size == 28 and isinstance(mp2.filler, Inpaint)


def test_generative_specs_run():
    model = ShapesClassifier(width=4).eval()
    x = torch.rand(2, 3, 32, 32)
    for spec in default_methods(32, include=list(GENERATIVE_METHODS), score="sigmoid"):
        kwargs = dict(spec.attribute_kwargs)
        if "n_samples" in kwargs:
            kwargs["n_samples"] = 20
        attr = spec.build(model).attribute(x, target=torch.tensor([0, 3]), **kwargs)
        assert attr.shape == x.shape, spec.name


def test_recorded_attribution_and_beats_twin():
    recorder = RecordedAttribution(SlidingPatch(ShapesClassifier(width=4).eval()))
    x = torch.rand(2, 3, 16, 16)
    out = recorder.attribute(x, target=torch.tensor([1, 2]), sliding_window_shapes=5)
    assert torch.equal(recorder.maps[0], out.mean(dim=1, keepdim=True))
    assert recorder.targets[0].tolist() == [1, 2]
    table = {"SP": {"a": 0.3, "b": 0.2}, "SP-G": {"a": 0.2, "b": 0.25}, "LIME": {"a": 1, "b": 1}}
    assert beats_twin_table(table) == {"SP-G": {"a": True, "b": False}}
    assert scaled_sizes((5, 17, 29, 41, 53), 224) == [5, 17, 29, 41, 53]


def test_generative_evaluation_report(tmp_path):
    out = run_generative_evaluation(
        tmp_path, num_images=1, image_size=32, methods=["sp", "sp_g"], show_progress=False
    )
    assert set(out["deletion_auc"]) == {"SP", "SP-G"}
    assert set(out["beats_twin"]) == {"SP-G"}
    data = json.loads((tmp_path / "deletion.json").read_text())
    assert set(data["deletion_auc"]["SP"]) == {
        "constant (paper)",
        "blur (sigma 1)",
        "learned inpainting",
    }
    for name in ("metrics.md", "metrics.json", "figure.png", "deletion.md"):
        assert (tmp_path / name).exists()
    # the harness's deletion AUC is the constant-substrate column
    table = json.loads((tmp_path / "metrics.json").read_text())
    assert "SP-G" in (tmp_path / "metrics.md").read_text() and table


@pytest.fixture
def telea_net(tmp_path):
    """Weights of an untrained network refining Telea: its zero-init head returns Telea's fill."""
    config = {"width": 4, "depth": 1, "dilations": [2], "noise_channels": 1, "prefill": "telea"}
    return save_weights(tmp_path / "telea_net.pt", config, InpaintingUNet(**config).state_dict())


def test_generative_evaluation_takes_an_inpainter_file(tmp_path, telea_net):
    # Given as --inpainter, the Telea-refining network makes SP-G equal SP-G (Telea) on
    # every substrate, and the learned substrate differ from the shipped inpainter's.
    common = ["evaluate-generative", "--num_images", "2", "--image_size", "32"]
    main([*common, "--methods", "[sp, sp_g, sp_g_telea]", "--inpainter", str(telea_net),
          "--output_dir", str(tmp_path / "given")])  # fmt: skip
    main([*common, "--methods", "[sp]", "--output_dir", str(tmp_path / "shipped")])
    given = json.loads((tmp_path / "given" / "deletion.json").read_text())["deletion_auc"]
    shipped = json.loads((tmp_path / "shipped" / "deletion.json").read_text())["deletion_auc"]
    assert given["SP-G"] == pytest.approx(given["SP-G (Telea)"], abs=1e-6)
    assert given["SP"]["blur (sigma 1)"] == pytest.approx(shipped["SP"]["blur (sigma 1)"])
    learned = "learned inpainting"
    assert given["SP"][learned] != pytest.approx(shipped["SP"][learned], abs=1e-4)


def test_removal_effectiveness_cli(tmp_path, capsys):
    main(
        [
            "removal-effectiveness",
            "--num_images",
            "3",
            "--quality_images",
            "8",
            "--output_dir",
            str(tmp_path),
        ]
    )
    assert "inpaint: learned (shipped)" in capsys.readouterr().out
    data = json.loads((tmp_path / "removal.json").read_text())
    assert data["table"]["none"]["ssim"] == pytest.approx(1.0)
    assert (tmp_path / "removal.png").stat().st_size > 0


def test_removal_effectiveness_names_a_given_inpainter_by_its_file(tmp_path, capsys, telea_net):
    main(["removal-effectiveness", "--num_images", "3", "--quality_images", "8",
          "--inpainter", str(telea_net), "--output_dir", str(tmp_path)])  # fmt: skip
    assert "inpaint: learned (telea_net.pt)" in capsys.readouterr().out
    quality = json.loads((tmp_path / "removal.json").read_text())["inpainting_quality"]
    assert quality["inpaint: learned (telea_net.pt)"] == quality["inpaint: OpenCV Telea"]


class FlatFill:
    """Fills every hole with the image's mean colour outside the holes."""

    def __call__(self, images, holes):
        valid = (~holes).float()
        mean = (images * valid).sum(dim=(2, 3), keepdim=True) / valid.sum(dim=(2, 3), keepdim=True)
        return torch.where(holes, mean.expand_as(images), images)


def test_inpainting_quality_sees_texture():
    from captum_ext.evaluation.generative import inpainting_quality
    from captum_ext.inpainters import OpenCVInpainter

    quality = inpainting_quality(
        {"flat": FlatFill(), "telea": OpenCVInpainter("telea")}, num_images=8, image_size=32
    )
    assert quality["flat"]["grad_energy_ratio"] < quality["telea"]["grad_energy_ratio"]
    assert quality["flat"]["texture_loss"] > quality["telea"]["texture_loss"]
    assert 0 < quality["telea"]["grad_energy_ratio"] < 1.5


def test_shipped_inpainter_beats_both_opencv_inpainters_on_held_out_backgrounds():
    # docs/inpainters.md, "The shipped shapes-world inpainter" (200 backgrounds there).
    from captum_ext.evaluation.generative import inpainting_quality
    from captum_ext.inpainters import OpenCVInpainter
    from captum_ext.models.pretrained import load_shapes_inpainter

    quality = inpainting_quality(
        {
            "learned": load_shapes_inpainter(),
            "telea": OpenCVInpainter("telea"),
            "ns": OpenCVInpainter("ns"),
        },
        num_images=60,
    )
    learned = quality["learned"]
    for classical in (quality["telea"], quality["ns"]):
        assert learned["l1_hole"] < classical["l1_hole"]
        assert learned["texture_loss"] < classical["texture_loss"]
        assert learned["grad_energy_ratio"] > classical["grad_energy_ratio"]


@pytest.mark.filterwarnings("ignore:MP2. the target's score is already")
def test_mp2_and_mp2_g_each_delete_fastest_on_their_own_filler():
    # MP2's deletion game minimises the deletion curve of its own filler, so MP2 (blur)
    # wins on the blur substrate and MP2-G (learned inpainter) on the inpainting one
    # (docs/methods/mp2.md, "Why MP2-G loses to MP2 on the blur substrate").
    from captum_ext.attr import MP2
    from captum_ext.data.samples import collate_samples
    from captum_ext.fillers import Blur
    from captum_ext.metrics import deletion_auc
    from captum_ext.models.pretrained import load_shapes_inpainter

    model = load_shapes_classifier()
    data = ShapesDataset(24, split="test")
    batch = collate_samples([data[i] for i in range(len(data))])
    image, target = (batch["labels"] > 0.5).nonzero(as_tuple=True)
    x = batch["image"][image]
    fillers = {
        "blur": Blur(10 * 64 / 224),
        "inpainting": Inpaint(load_shapes_inpainter(), data.space),
    }
    auc = {}
    for method, filler in fillers.items():
        maps = MP2(model, filler=filler, grid_size=16).attribute(x, target=target)
        for substrate, fill in fillers.items():
            auc[method, substrate] = float(deletion_auc(model, x, maps, target, filler=fill).mean())
    assert auc["blur", "blur"] < auc["inpainting", "blur"]
    assert auc["inpainting", "inpainting"] < auc["blur", "inpainting"]
