"""Optional dependencies: import them where they are used, with an error naming the extra.

The core package (``attr``, ``fillers``, ``metrics``, ``data.shapes``,
``models.pretrained``) needs torch, torchvision, captum, numpy, scikit-image and tqdm;
everything else comes with an extra of ``pyproject.toml`` (``inpaint``, ``lightning``,
``coco``, ``report``, ``all``). Modules that need an optional package call
:func:`require` inside the function that uses it, so importing the module stays cheap
and a missing package is reported with the ``pip install`` command that adds it.
"""

from __future__ import annotations

import importlib
from types import ModuleType


def require(module: str, extra: str) -> ModuleType:
    """Import ``module``, or raise an ``ImportError`` naming the extra that installs it.

    Parameters
    ----------
    module : str
        Module name, e.g. ``"cv2"`` or ``"matplotlib.figure"``.
    extra : str
        The captum-ext extra that installs it, e.g. ``"inpaint"``.

    Returns
    -------
    module
        The imported module.

    Raises
    ------
    ImportError
        When the module (or one of its own dependencies) cannot be imported; the message
        gives ``pip install "captum-ext[<extra>]"``.

    Examples
    --------
    >>> require("math", extra="core").sqrt(4.0)
    2.0
    >>> require("no_such_module_xyz", extra="inpaint")
    Traceback (most recent call last):
    ImportError: no_such_module_xyz is needed here but could not be imported (No module named 'no_such_module_xyz'); install it with: pip install "captum-ext[inpaint]"
    """
    try:
        return importlib.import_module(module)
    except ImportError as error:
        raise ImportError(
            f"{module} is needed here but could not be imported ({error}); install it "
            f'with: pip install "captum-ext[{extra}]"',
            name=module,
        ) from error
