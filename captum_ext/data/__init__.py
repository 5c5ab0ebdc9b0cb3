"""Datasets with ground truth for evaluating attributions, in one sample format.

The public names live in the modules, imported from there so that a dataset's
dependencies load only when it is used:

* :mod:`captum_ext.data.shapes` - ``ShapesDataset``, the offline shapes world (pixel-exact
  masks and boxes, deterministic in the seed); :mod:`captum_ext.data.shapes_world` - its
  generator; :mod:`captum_ext.data.shapes_datamodule` - its Lightning splits;
* :mod:`captum_ext.data.voc`, :mod:`captum_ext.data.coco` - PASCAL VOC and COCO from disk;
* :mod:`captum_ext.data.samples` - the sample format and ``collate_samples``;
* :mod:`captum_ext.data.object_masking`, :mod:`captum_ext.data.null_images` - images with
  objects removed or replaced, for the experiments.
"""

__all__: list[str] = []
