"""How model outputs become the scalar a mask method preserves or deletes."""

from __future__ import annotations

from typing import Literal

from torch import Tensor

from captum_ext._utils.validation import check_choice

ScoreName = Literal["softmax", "sigmoid", "logit"]
SCORES = ("softmax", "sigmoid", "logit")


def check_score(score: object) -> str:
    """Validate a ``score=`` argument."""
    return check_choice(score, "score", SCORES)


def to_scores(outputs: Tensor, score: str) -> Tensor:
    """Turn ``(N, K)`` model outputs into scores.

    Parameters
    ----------
    outputs : Tensor
        Logits ``(N, K)``.
    score : {"softmax", "sigmoid", "logit"}
        ``softmax`` for single-label classifiers (every paper's choice), ``sigmoid``
        for multi-label ones, ``logit`` for the raw outputs.

    Examples
    --------
    >>> import torch
    >>> to_scores(torch.tensor([[0.0, 0.0]]), "softmax")
    tensor([[0.5000, 0.5000]])
    """
    if score == "softmax":
        return outputs.softmax(dim=1)
    if score == "sigmoid":
        return outputs.sigmoid()
    if score == "logit":
        return outputs
    check_score(score)
    raise AssertionError("unreachable")


def target_scores(outputs: Tensor, target: Tensor, score: str) -> Tensor:
    """Score of each example's target class, ``(N,)``.

    Examples
    --------
    >>> import torch
    >>> target_scores(torch.tensor([[2.0, 0.0], [0.0, 3.0]]), torch.tensor([0, 1]), "logit")
    tensor([2., 3.])
    """
    return to_scores(outputs, score).gather(1, target.view(-1, 1)).squeeze(1)


def as_logits(outputs: object, name: str = "forward_func") -> Tensor:
    """Check that a model returned ``(N, K)`` (or ``(N,)``) outputs; return ``(N, K)``."""
    if not isinstance(outputs, Tensor):
        raise TypeError(f"`{name}` must return a tensor, got {type(outputs).__name__}")
    if outputs.dim() == 1:
        outputs = outputs.unsqueeze(1)
    if outputs.dim() != 2:
        raise ValueError(
            f"`{name}` must return (N, num_classes) outputs, got shape {tuple(outputs.shape)}"
        )
    return outputs


def entropy(probabilities: Tensor, eps: float = 1e-16) -> Tensor:
    """Shannon entropy (nats) of each row of ``(N, K)`` probabilities, ``(N,)``.

    Examples
    --------
    >>> import torch
    >>> entropy(torch.full((1, 4), 0.25))
    tensor([1.3863])
    """
    p = probabilities.clamp_min(eps)
    return -(probabilities * p.log()).sum(dim=1)
