"""Attribution with a trained Explainer network (Stalder et al., NeurIPS 2022)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from captum.log import log_usage
from torch import Tensor, nn

from captum_ext._utils.model_state import modules_of, preserved_state
from captum_ext._utils.scores import as_logits, to_scores
from captum_ext._utils.validation import TargetLike, check_inputs, check_model_device
from captum_ext.attr._base import InputsLike, MaskAttribution
from captum_ext.models.explainer_nets import (
    SegmentationExplainer,
    as_explainer_net,
    load_explainer_net,
)


class _NoClassifier:
    """Placeholder ``forward_func`` of an Explainer used without its classifier."""

    def __call__(self, *args: Any, **kwargs: Any) -> Tensor:
        raise ValueError(
            "this ExplainerAttribution has no classifier: pass an explicit `target`, or "
            "build it with the classifier as `forward_func` to attribute the predicted "
            "labels (target=None)"
        )


class ExplainerAttribution(MaskAttribution):
    """Class masks of a trained Explainer: ``s_target = sigmoid(S_target)``.

    The Explainer predicts one mask per class in a single forward pass; the classifier
    is not called when a ``target`` is given. With ``target=None`` the classifier's
    predicted labels (score above ``threshold``, and always the top class) are
    attributed together: the map is the pixel-wise maximum of their masks, the paper's
    aggregated mask ``m``. Values are in [0, 1] (1 = the pixel is kept as evidence).

    Parameters
    ----------
    forward_func : callable or nn.Module, optional
        The classifier the Explainer was trained on; only needed for ``target=None``.
    explainer : nn.Module
        The Explainer network: ``(N, C, H, W) -> (N, K, h, w)`` logits (a tensor or a
        dict with ``"out"``), upsampled to the input size if needed. Run in eval mode
        (its train/eval flag is restored afterwards).
    score : {"sigmoid", "softmax", "logit"}
        How the classifier's outputs are scored to find its predicted labels (default
        ``sigmoid``: the Explainer is trained on multi-label classifiers, whose present
        classes each score above ``threshold`` under a sigmoid; under a softmax two
        present classes would share the probability mass and fall below 0.5). Unlike the
        other methods' ``score``, it never changes the masks of a given ``target``.
    threshold : float
        Score above which a class counts as predicted.

    References
    ----------
    S. Stalder, N. Perraudin, R. Achanta, F. Perez-Cruz and M. Volpi, "What You See is
    What You Classify: Black Box Attributions", Advances in Neural Information
    Processing Systems (NeurIPS), 2022. <https://arxiv.org/abs/2205.11266>; the
    authors' code: <https://github.com/stevenstalder/NN-Explainer>.

    Examples
    --------
    >>> from captum_ext.models.explainer_nets import build_explainer_net
    >>> net = build_explainer_net("unet", num_classes=4, width=4, depth=1)
    >>> method = ExplainerAttribution(None, explainer=net)
    >>> method.attribute(torch.rand(2, 3, 16, 16), target=1).shape
    torch.Size([2, 3, 16, 16])
    >>> method.class_masks(torch.rand(2, 3, 16, 16)).shape
    torch.Size([2, 4, 16, 16])

    With ``captum.attr.visualization``:

    >>> from captum.attr import visualization as viz
    >>> x = torch.rand(1, 3, 16, 16)
    >>> attr = method.attribute(x, target=1)
    >>> fig, ax = viz.visualize_image_attr(attr[0].permute(1, 2, 0).numpy(),
    ...     x[0].permute(1, 2, 0).numpy(), method="blended_heat_map", sign="positive",
    ...     use_pyplot=False)
    """

    def __init__(
        self,
        forward_func: Callable[..., Tensor] | None,
        *,
        explainer: nn.Module,
        score: str = "sigmoid",
        threshold: float = 0.5,
    ) -> None:
        if not isinstance(explainer, nn.Module):
            raise TypeError(f"`explainer` must be an nn.Module, got {type(explainer).__name__}")
        classifier = forward_func if forward_func is not None else _NoClassifier()
        super().__init__(classifier, score=score)
        self.explainer: SegmentationExplainer = as_explainer_net(explainer)
        self.threshold = float(threshold)

    @classmethod
    def from_checkpoint(
        cls,
        path: str | Path,
        *,
        forward_func: Callable[..., Tensor] | None = None,
        explainer: nn.Module | None = None,
        map_location: str | torch.device = "cpu",
        **kwargs: Any,
    ) -> ExplainerAttribution:
        """Load the Explainer from a file (``torch.load(weights_only=True)``).

        Parameters
        ----------
        path : path
            A ``captum-ext train-explainer --export`` weights file, a Lightning
            checkpoint of ``ExplainerModule``, or a plain state dict (then pass
            ``explainer``, the network to load it into).
        forward_func : callable, optional
            The classifier, for ``target=None``.
        explainer : nn.Module, optional
            Network to load the weights into (default: rebuilt from the file).
        map_location : str or torch.device
            Device of the network.
        **kwargs
            ``score``, ``threshold``.
        """
        net = load_explainer_net(path, explainer, map_location)
        return cls(forward_func, explainer=net, **kwargs)

    def _guarded_modules(self) -> list[nn.Module]:
        return modules_of(self.forward_func) + [self.explainer]

    @property
    def has_classifier(self) -> bool:
        """Whether a classifier was given (needed for ``target=None``)."""
        return not isinstance(self.forward_func, _NoClassifier)

    @log_usage()
    def attribute(
        self,
        inputs: InputsLike,
        target: TargetLike = None,
        additional_forward_args: Any = None,
        *,
        return_map: bool = False,
    ) -> InputsLike:
        """The Explainer's mask of ``target`` for each image.

        Parameters
        ----------
        inputs : Tensor or tuple of one Tensor
            ``(N, C, H, W)`` images in the classifier's input space (a tuple gives a
            tuple back).
        target : int, list of int or Tensor, optional
            Class(es) to attribute, Captum semantics. ``None``: the classifier's
            predicted labels, aggregated by the pixel-wise maximum (needs
            ``forward_func``).
        additional_forward_args : any, optional
            Extra arguments of ``forward_func`` (only used with ``target=None``).
        return_map : bool
            Return the ``(N, 1, H, W)`` mask instead of the channel-expanded attribution.

        Returns
        -------
        Tensor or tuple of one Tensor
            Masks in [0, 1], shaped like ``inputs`` (or ``(N, 1, H, W)``).
        """
        # Checked here so that the error names the explainer (the base names forward_func).
        check_model_device(self.explainer, check_inputs(inputs), "explainer")
        return self._run(inputs, target, additional_forward_args, return_map)

    def class_masks(self, inputs: Tensor) -> Tensor:
        """All K class masks ``sigmoid(S)``, ``(N, K, H, W)``, from one forward pass.

        Examples
        --------
        >>> from captum_ext.models.explainer_nets import build_explainer_net
        >>> net = build_explainer_net("unet", num_classes=3, width=4, depth=1)
        >>> method = ExplainerAttribution(None, explainer=net)
        >>> method.class_masks(torch.rand(1, 3, 8, 8)).shape
        torch.Size([1, 3, 8, 8])
        """
        inputs = check_inputs(inputs)
        check_model_device(self.explainer, inputs, "explainer")
        with preserved_state([self.explainer], freeze=True, eval_mode=True), torch.no_grad():
            return self.explainer(inputs).sigmoid()

    def predicted_labels(
        self, inputs: Tensor, additional_forward_args: tuple[Any, ...] = ()
    ) -> Tensor:
        """``(N, K)`` bool: the classifier's classes scoring above ``threshold``, plus its top class."""
        with torch.no_grad():
            logits = as_logits(self.forward_func(inputs, *additional_forward_args))
        labels = to_scores(logits, self.score) > self.threshold
        labels[torch.arange(logits.shape[0], device=logits.device), logits.argmax(dim=1)] = True
        return labels

    def _attribute_map(
        self, inputs: Tensor, target: TargetLike, additional_forward_args: tuple[Any, ...], **_: Any
    ) -> Tensor:
        with preserved_state([self.explainer], eval_mode=True), torch.no_grad():
            logits = self.explainer(inputs)
        num_classes = logits.shape[1]
        if target is None:
            if not self.has_classifier:
                raise ValueError(
                    "`target` is None but ExplainerAttribution was built without a "
                    "classifier; pass the class(es) to attribute as `target`, or the "
                    "classifier as `forward_func` to attribute its predicted labels"
                )
            labels = self.predicted_labels(inputs, additional_forward_args)
            if labels.shape[1] != num_classes:
                raise ValueError(
                    f"the classifier has {labels.shape[1]} classes but the explainer "
                    f"predicts {num_classes} masks"
                )
            masked = logits.masked_fill(~labels[:, :, None, None], float("-inf"))
            return masked.amax(dim=1, keepdim=True).sigmoid()
        index = self._target(target, inputs, num_classes)
        return logits.gather(1, index.view(-1, 1, 1, 1).expand(-1, 1, *logits.shape[2:])).sigmoid()
