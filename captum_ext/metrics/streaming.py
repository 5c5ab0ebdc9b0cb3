"""Metrics accumulated over batches and processes, as ``torchmetrics.Metric`` objects.

For Lightning runs (the Explainer's validation, the callbacks): the per-batch values
are gathered across ranks before the score is computed. torchmetrics comes with the
``lightning`` extra; the functions of :mod:`captum_ext.metrics` do not need it.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from captum_ext._utils.optional import require
from captum_ext.metrics.localization import _as_vector, pointing_accuracy

_torchmetrics = require("torchmetrics", extra="lightning")
dim_zero_cat = require("torchmetrics.utilities", extra="lightning").dim_zero_cat


class PointingAccuracy(_torchmetrics.Metric):  # type: ignore[name-defined]  # optional base
    """:func:`pointing_accuracy` accumulated over batches (and ranks): TorchRay's counters.

    ``update(hits, classes)`` per batch; ``compute()`` gives the mean over classes, or
    the hit rate over pairs with ``per_pair=True``. The pairs are gathered across
    processes in a distributed run.

    Examples
    --------
    >>> metric = PointingAccuracy()
    >>> metric.update(torch.tensor([True, True]), torch.tensor([0, 0]))
    >>> metric.update(torch.tensor([True, False]), torch.tensor([0, 1]))
    >>> metric.compute()
    tensor(0.5000)
    """

    full_state_update = False

    def __init__(self, per_pair: bool = False, **kwargs: object) -> None:
        super().__init__(**kwargs)
        self.per_pair = per_pair
        self.add_state("hits", default=[], dist_reduce_fx="cat")
        self.add_state("classes", default=[], dist_reduce_fx="cat")

    def update(self, hits: Tensor, classes: Tensor) -> None:  # noqa: D102
        self.hits.append(_as_vector(hits, "hits").detach().float())
        self.classes.append(_as_vector(classes, "classes").detach().long())

    def compute(self) -> Tensor:  # noqa: D102
        if len(self.hits) == 0:  # no update yet
            return torch.tensor(math.nan)
        scores = pointing_accuracy(dim_zero_cat(self.hits), dim_zero_cat(self.classes))
        return torch.tensor(scores.per_pair if self.per_pair else scores.mean_over_classes)
