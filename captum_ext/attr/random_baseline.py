"""A random map: the floor every attribution method must beat."""

from __future__ import annotations

from typing import Any

import torch
from captum.log import log_usage
from torch import Tensor

from captum_ext._utils.validation import TargetLike, check_int
from captum_ext.attr._base import InputsLike, MaskAttribution
from captum_ext.fillers.noise import random_like


class RandomAttribution(MaskAttribution):
    """Per-pixel ``U(0, 1)`` noise, independent of the model (a sanity baseline).

    The target is still validated against the model's outputs (one forward pass).
    Values are in [0, 1].

    Parameters
    ----------
    forward_func : callable or nn.Module
        The classifier (only used to validate ``target``).

    Examples
    --------
    >>> import torch
    >>> from torch import nn
    >>> model = nn.Sequential(nn.Flatten(), nn.Linear(3 * 8 * 8, 4))
    >>> attr = RandomAttribution(model).attribute(torch.rand(2, 3, 8, 8), target=1)
    >>> attr.shape
    torch.Size([2, 3, 8, 8])
    """

    @log_usage()
    def attribute(
        self,
        inputs: InputsLike,
        target: TargetLike = None,
        additional_forward_args: Any = None,
        *,
        seed: int = 0,
        return_map: bool = False,
    ) -> InputsLike:
        """Random attribution of ``inputs``.

        Parameters
        ----------
        inputs : Tensor or tuple of one Tensor
            ``(N, C, H, W)`` images (a tuple gives a tuple back).
        target : int, list of int or Tensor
            Target class(es), Captum semantics.
        additional_forward_args : any, optional
            Extra arguments to ``forward_func``.
        seed : int
            Seed of the noise; the same seed gives the same map.
        return_map : bool
            Return the ``(N, 1, H, W)`` map instead of the channel-expanded attribution.
        """
        return self._run(inputs, target, additional_forward_args, return_map, seed=seed)

    def _attribute_map(  # type: ignore[override]  # narrows **kwargs to its options
        self,
        inputs: Tensor,
        target: TargetLike,
        additional_forward_args: tuple[Any, ...],
        *,
        seed: int,
    ) -> Tensor:
        with torch.no_grad():
            num_classes = self._forward(inputs, additional_forward_args).shape[1]
        self._target(target, inputs, num_classes)
        generator = torch.Generator().manual_seed(check_int(seed, "seed"))
        return random_like(inputs[:, :1], "uniform", generator)
