"""Training of the package's networks (classifier, Explainer, inpainter) with Lightning.

Needs the ``lightning`` extra: ``pip install "captum-ext[lightning]"``.
"""

from captum_ext._utils.optional import require

require("lightning", extra="lightning")

__all__: list[str] = []
