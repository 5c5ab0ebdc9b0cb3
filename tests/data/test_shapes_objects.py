"""Objects per image of the shapes world's dataset and data module (`max_objects`)."""

from captum_ext.data.shapes import ShapesDataModule, ShapesDataset


def test_dataset_max_objects():
    single = ShapesDataset(40, image_size=32, split="val", max_objects=1)
    assert ((single.object_classes >= 0).sum(dim=1) == 1).all()
    assert (single.labels.sum(dim=1) == 1).all()
    several = ShapesDataset(40, image_size=32, split="val")
    assert (several.object_classes >= 0).sum(dim=1).max() == 3


def test_data_module_train_max_objects_only_affects_training():
    dm = ShapesDataModule(image_size=32, num_train=30, num_val=30, num_test=30, train_max_objects=1)
    dm.setup()
    assert ((dm.train_set.object_classes >= 0).sum(dim=1) == 1).all()
    for split in (dm.val_set, dm.test_set):
        assert (split.object_classes >= 0).sum(dim=1).max() > 1
