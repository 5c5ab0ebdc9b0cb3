"""The shipped shapes-world classifier meets the foundation issue's acceptance numbers."""

import torch

from captum_ext.data.shapes import ShapesDataset
from captum_ext.evaluation.classifier_robustness import masking_robustness
from captum_ext.models.pretrained import checkpoint_path, load_shapes_classifier


def test_checkpoint_is_small_and_weights_only():
    path = checkpoint_path("shapes_classifier")
    assert path.stat().st_size < 5 * 2**20
    payload = torch.load(path, weights_only=True)
    assert set(payload) == {"config", "state_dict"}


def test_shipped_classifier_acceptance():
    model = load_shapes_classifier()
    assert not model.training
    results = masking_robustness(
        model, ShapesDataset(1000, 64, split="test"), show_progress=False
    )
    assert results["clean"] >= 0.90
    assert results["object_only"] >= 0.85
    # Removal is reported, not gated; it must at least be measured for each filler.
    assert {"removed/constant", "removed/blur"} <= set(results)


def test_checkpoint_directory_override(tmp_path, monkeypatch):
    shipped = checkpoint_path("shapes_classifier")
    (tmp_path / "shapes_classifier.pt").write_bytes(shipped.read_bytes())
    monkeypatch.setenv("CAPTUM_EXT_CHECKPOINTS", str(tmp_path))
    assert checkpoint_path("shapes_classifier") == tmp_path / "shapes_classifier.pt"
    # Names missing from the override directory still come from the package.
    assert checkpoint_path("shapes_inpainter").parent == shipped.parent
    monkeypatch.setenv("CAPTUM_EXT_CHECKPOINTS", str(tmp_path / "missing"))
    assert checkpoint_path("shapes_classifier") == shipped
