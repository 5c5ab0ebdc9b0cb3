"""Networks and the loaders of the shipped checkpoints.

The public names live in the modules, imported from there so that each loads only what
it needs:

* :mod:`captum_ext.models.pretrained` - ``load_shapes_classifier``,
  ``load_shapes_explainer``, ``load_shapes_inpainter`` (shipped weights, no download);
* :mod:`captum_ext.models.shapes_classifier` - the shapes-world classifier;
* :mod:`captum_ext.models.explainer_nets` - Explainer networks (``build_explainer_net``,
  ``load_explainer_net``);
* :mod:`captum_ext.models.inpainting_unet` - the learned inpainter's network;
* :mod:`captum_ext.models.classifiers`, :mod:`captum_ext.models.weights` - building
  classifiers and reading / writing weights files.
"""

__all__: list[str] = []
