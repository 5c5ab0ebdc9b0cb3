"""captum-ext: mask-based attribution methods for Captum.

Which pixels does a classifier use? captum-ext adds attribution methods that answer
with a mask (a learned Explainer, FGVis, DSSR, and Sliding Patch, LIME and MP2 with
generative inpainting), the metrics to compare them, and Lightning callbacks that log
them during training. Every method is a Captum ``Attribution``: it takes Captum's
arguments and returns a tensor of the inputs' shape, so Captum's visualisation,
``NoiseTunnel`` and metrics work unchanged.

Where to start:

* :mod:`captum_ext.attr` - the attribution methods;
* :mod:`captum_ext.fillers` - what a removed pixel is replaced with (constant, blur,
  noise, inpainting);
* :mod:`captum_ext.metrics` - pointing game, deletion / insertion curves, saliency
  metric, segmentation scores;
* :mod:`captum_ext.models.pretrained` and :mod:`captum_ext.data.shapes` - a shipped
  classifier and an offline benchmark with pixel-exact ground truth;
* :mod:`lightning_callbacks` (a separate top-level package) - callbacks for Lightning.

Submodules are not imported here, so ``import captum_ext`` stays cheap.

Examples
--------
>>> import captum_ext
>>> isinstance(captum_ext.__version__, str)
True
"""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("captum-ext")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0.1.0"

__all__ = ["__version__"]
