"""Dataset-scale attribution through trainer.predict: shards, index, resume."""

import json

import pytest
import torch
from captum.attr import Saliency
from torch.utils.data import DataLoader, IterableDataset

from captum_ext.data.samples import collate_samples
from captum_ext.data.shapes import ShapesDataset
from captum_ext.models.shapes_classifier import ShapesClassifier
from lightning_callbacks import AttributionModule, AttributionShards, AttributionWriter
from lightning_callbacks.shards import build_index, save_shard, shard_name
from tests.callbacks._helpers import trainer

NUM_IMAGES, BATCH = 21, 4  # 6 batches, the last one of 1 sample


@pytest.fixture(scope="module")
def dataset():
    return ShapesDataset(NUM_IMAGES, image_size=32, split="test")


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    return ShapesClassifier(width=8).eval()


def _predict(root, dataset, method, batches_per_shard=2, **module_args):
    loader = DataLoader(dataset, batch_size=BATCH, collate_fn=collate_samples)
    writer = AttributionWriter(root, batches_per_shard=batches_per_shard)
    run = trainer(root, callbacks=[writer])
    module = AttributionModule(module_args.pop("net"), method, **module_args)
    assert run.predict(module, loader, return_predictions=False) is None
    return writer


def test_every_sample_written_once_with_the_method_values(tmp_path, dataset, model):
    writer = _predict(tmp_path, dataset, Saliency, net=model, target="label")
    assert writer.written == [shard_name(0, 0, s) for s in range(3)]
    shards = AttributionShards(tmp_path)
    assert shards.sample_ids() == list(range(NUM_IMAGES))
    images = torch.stack([dataset[i]["image"] for i in range(NUM_IMAGES)])
    labels = torch.stack([dataset[i]["labels"] for i in range(NUM_IMAGES)])
    with torch.no_grad():
        logits = model(images)
    targets = torch.where(labels > 0.5, logits, -torch.inf).argmax(1)
    expected = Saliency(model).attribute(images.clone(), target=targets).mean(1, keepdim=True)
    for i in (0, 7, 20):
        assert torch.allclose(shards[i]["attribution"], expected[i], atol=1e-6)
        assert int(shards[i]["target"]) == int(targets[i])
    meta = json.loads((tmp_path / "meta.json").read_text())
    assert meta == {"world_size": 1, "batches_per_shard": 2, "num_batches": [6]}
    assert all(p.requires_grad for p in model.parameters()) and not model.training


def test_resume_skips_finished_shards_without_computing(tmp_path, dataset, model):
    calls = []

    def counted(net):
        calls.append(1)
        return Saliency(net)

    _predict(tmp_path, dataset, counted, net=model, dtype="float16")
    assert len(calls) == 6
    before = AttributionShards(tmp_path)[9]["attribution"]
    assert before.dtype == torch.float16
    (tmp_path / shard_name(0, 0, 1)).unlink()  # an interrupted run: shard 1 missing
    calls.clear()
    writer = _predict(tmp_path, dataset, counted, net=model, dtype="float16")
    assert len(calls) == 2  # only the two batches of the missing shard
    assert writer.written == [shard_name(0, 0, 1)]
    assert writer.skipped == [shard_name(0, 0, 0), shard_name(0, 0, 2)]
    shards = AttributionShards(tmp_path)
    assert shards.sample_ids() == list(range(NUM_IMAGES))
    assert torch.equal(shards[9]["attribution"], before)
    with pytest.raises(ValueError, match="same settings"):
        _predict(tmp_path, dataset, counted, net=model, batches_per_shard=3)


def test_iterable_dataset_uses_the_batch_index(tmp_path, dataset, model):
    class Stream(IterableDataset):
        def __iter__(self):
            return (dataset[i] for i in range(5))

    loader = DataLoader(Stream(), batch_size=2, collate_fn=collate_samples)
    writer = AttributionWriter(tmp_path, batches_per_shard=1)
    run = trainer(tmp_path, callbacks=[writer])
    run.predict(AttributionModule(model, "RandomAttribution"), loader, return_predictions=False)
    assert AttributionShards(tmp_path).sample_ids() == [0, 1, 2, 3, 4]


def test_index_rejects_duplicates_and_reader_errors(tmp_path):
    payload = {
        "index": torch.tensor([3, 4]),
        "attribution": torch.zeros(2, 1, 2, 2),
        "target": torch.zeros(2, dtype=torch.long),
    }
    save_shard(tmp_path / shard_name(0, 0, 0), payload)
    save_shard(tmp_path / shard_name(0, 1, 0), payload)
    with pytest.raises(ValueError, match="sample 3 of dataloader 0"):
        build_index(tmp_path)
    with pytest.raises(FileNotFoundError, match="index.json"):
        AttributionShards(tmp_path)


def test_module_argument_errors(model):
    with pytest.raises(TypeError, match="model"):
        AttributionModule(lambda x: x, "Saliency")
    with pytest.raises(ValueError, match="dtype"):
        AttributionModule(model, "Saliency", dtype="int8")
    with pytest.raises(ValueError, match="target"):
        AttributionModule(model, "Saliency", target="best")
    with pytest.raises(ValueError, match="batches_per_shard"):
        AttributionWriter("out", batches_per_shard=0)
