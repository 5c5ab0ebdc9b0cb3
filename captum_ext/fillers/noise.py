"""Random references: uniform noise (DSSR) and zero-mean Gaussian noise (FGVis A2)."""

from __future__ import annotations

import torch
from torch import Tensor

from captum_ext._utils.validation import check_non_negative
from captum_ext.fillers.base import Filler
from captum_ext.fillers.image_space import ImageSpace


def random_like(inputs: Tensor, kind: str, generator: torch.Generator | None = None) -> Tensor:
    """Draw ``rand``/``randn`` noise shaped like ``inputs`` from ``generator``.

    The noise is drawn on the generator's device (CPU by default) and moved to the
    inputs' device, so a seed gives the same noise wherever the inputs live.
    """
    device = generator.device if generator is not None else torch.device("cpu")
    draw = torch.rand if kind == "uniform" else torch.randn
    noise = draw(inputs.shape, generator=generator, device=device, dtype=torch.float32)
    return noise.to(inputs.device, inputs.dtype)


class UniformNoise(Filler):
    """Fill with i.i.d. ``U(0, 1)`` noise in pixel space (DSSR's reference).

    Parameters
    ----------
    space : ImageSpace, optional
        The classifier's normalisation; the noise is drawn in pixel space and mapped to
        input space.
    low, high : float
        Pixel-space range of the noise.

    Examples
    --------
    >>> x = torch.zeros(1, 3, 8, 8)
    >>> r = UniformNoise().reference(x, generator=torch.Generator().manual_seed(0))
    >>> bool((r >= 0).all() and (r <= 1).all())
    True
    """

    def __init__(
        self, space: ImageSpace | None = None, low: float = 0.0, high: float = 1.0
    ) -> None:
        if not high > low:
            raise ValueError(f"`high` must be > `low`, got low={low}, high={high}")
        self.space = space or ImageSpace()
        self.range: tuple[float, float] = (float(low), float(high))

    def reference(self, inputs, holes=None, *, generator=None) -> Tensor:
        low, high = self.range
        pixels = low + (high - low) * random_like(inputs, "uniform", generator)
        return self.space.to_inputs(pixels)

    def __repr__(self) -> str:
        return f"UniformNoise(space={self.space!r}, low={self.range[0]}, high={self.range[1]})"


class GaussianNoise(Filler):
    """Fill with zero-mean Gaussian noise (FGVis Table A2's "Gaussian noise image").

    Zero mean is taken in input space (the dataset's mean colour for a normalised
    classifier); ``std`` is in pixel units (the paper's sigma_n = 8 on a 0..255 scale is
    ``std = 8 / 255``).

    Parameters
    ----------
    std : float
        Standard deviation in pixel units.
    space : ImageSpace, optional
        The classifier's normalisation, used to convert ``std`` per channel.

    Examples
    --------
    >>> r = GaussianNoise(0.1).reference(torch.zeros(1, 3, 64, 64),
    ...                                   generator=torch.Generator().manual_seed(0))
    >>> round(r.std().item(), 1)
    0.1
    """

    def __init__(self, std: float = 8 / 255, space: ImageSpace | None = None) -> None:
        self.std = check_non_negative(std, "std")
        self.space = space or ImageSpace()

    def reference(self, inputs, holes=None, *, generator=None) -> Tensor:
        noise = self.std * random_like(inputs, "normal", generator)
        # A zero-mean pixel-space perturbation maps to input space by dividing by std.
        return self.space.to_inputs(noise) - self.space.to_inputs(torch.zeros_like(noise))

    def __repr__(self) -> str:
        return f"GaussianNoise(std={self.std}, space={self.space!r})"
