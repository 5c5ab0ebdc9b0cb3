"""Shared Captum contract for mask attribution methods."""

from __future__ import annotations

import abc
from collections.abc import Callable
from typing import Any

import torch
from captum._utils.common import _format_additional_forward_args
from captum.attr import PerturbationAttribution
from torch import Tensor, nn

from captum_ext._utils.model_state import modules_of, preserved_state, warn_if_training
from captum_ext._utils.scores import as_logits, check_score, target_scores
from captum_ext._utils.validation import (
    TargetLike,
    check_inputs,
    check_model_device,
    format_target,
)

#: One image batch, or Captum's tuple form holding exactly one (the output follows suit).
InputsLike = Tensor | tuple[Tensor]


class MaskAttribution(PerturbationAttribution, abc.ABC):
    """Base class of every captum-ext attribution method.

    Subclasses implement :meth:`_attribute_map`, which returns the per-pixel map
    ``(N, 1, H, W)``; their public ``attribute`` documents its arguments and calls
    :meth:`_run`, which

    * validates and normalises ``inputs`` and ``additional_forward_args``;
    * checks that the model lives on the inputs' device;
    * runs the method under ``torch.enable_grad()`` (so it works inside ``no_grad`` and
      Lightning's evaluation loops) with every parameter's ``requires_grad`` switched off
      (only input/mask gradients are computed; parameter ``.grad`` is never touched);
    * restores the model's ``requires_grad`` flags and hooks on every exit path,
      exceptions included; the train/eval mode is the user's and is never changed (a
      model with BatchNorm or dropout layers in train mode gets a warning, once per
      call: BatchNorm would overwrite its running statistics with those of the
      perturbed batches, as it does under Captum);
    * expands the map over channels to the shape of ``inputs`` (Captum's convention), or
      returns it as ``(N, 1, H, W)`` with ``return_map=True``; a one-tensor tuple
      ``inputs`` gives a one-tensor tuple back, as Captum's methods do.

    Parameters
    ----------
    forward_func : callable or nn.Module
        The classifier, called as ``forward_func(inputs, *additional_forward_args)`` and
        returning ``(N, num_classes)`` outputs.
    score : {"softmax", "sigmoid", "logit"}
        How outputs become the score being preserved or deleted: ``softmax`` for
        single-label classifiers (what the papers use), ``sigmoid`` for multi-label
        ones, ``logit`` for the raw outputs.
    """

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        attribute = cls.__dict__.get("attribute")
        # NoiseTunnel calls `attribute.__wrapped__`, which only log_usage provides.
        if attribute is not None and not hasattr(attribute, "__wrapped__"):
            raise TypeError(
                f"{cls.__name__}.attribute must be decorated with captum.log.log_usage() "
                "(Captum's NoiseTunnel relies on it)"
            )

    def __init__(self, forward_func: Callable[..., Tensor], *, score: str = "softmax") -> None:
        if not callable(forward_func):
            raise TypeError(
                f"`forward_func` must be callable (a model or function), got "
                f"{type(forward_func).__name__}"
            )
        super().__init__(forward_func)
        self.score = check_score(score)

    @property
    def multiplies_by_inputs(self) -> bool:
        """Masks are not multiplied by the inputs."""
        return False

    def has_convergence_delta(self) -> bool:
        """Mask methods have no convergence delta."""
        return False

    # ------------------------------------------------------------------ helpers
    def _guarded_modules(self) -> list[nn.Module]:
        """Modules whose state :meth:`_run` protects (override to add more)."""
        return modules_of(self.forward_func)

    def _forward(self, inputs: Tensor, additional_forward_args: tuple[Any, ...]) -> Tensor:
        """Classifier outputs ``(N, K)`` for a batch."""
        return as_logits(self.forward_func(inputs, *additional_forward_args))

    def _scores(
        self, inputs: Tensor, target: Tensor, additional_forward_args: tuple[Any, ...]
    ) -> Tensor:
        """Each example's target score ``(N,)`` under ``self.score``."""
        return target_scores(self._forward(inputs, additional_forward_args), target, self.score)

    @staticmethod
    def _target(target: TargetLike, inputs: Tensor, num_classes: int | None) -> Tensor:
        """Validated ``(N,)`` long target on the inputs' device."""
        return format_target(target, inputs.shape[0], num_classes, inputs.device)

    # ------------------------------------------------------------------ pipeline
    def _run(
        self,
        inputs: InputsLike,
        target: TargetLike,
        additional_forward_args: Any,
        return_map: bool,
        **kwargs: Any,
    ) -> InputsLike:
        inputs_are_tuple = isinstance(inputs, tuple)
        inputs = check_inputs(inputs)
        for module in self._guarded_modules():
            check_model_device(module, inputs)
        # the user's call -> log_usage's wrapper -> attribute -> _run
        warn_if_training(modules_of(self.forward_func), type(self).__name__, stacklevel=4)
        additional = _format_additional_forward_args(additional_forward_args) or ()
        with preserved_state(self._guarded_modules(), freeze=True), torch.enable_grad():
            attr_map = self._attribute_map(inputs.detach(), target, additional, **kwargs)
        attr_map = attr_map.detach()
        if not return_map:
            attr_map = attr_map.expand(-1, inputs.shape[1], -1, -1).contiguous()
        # Captum's convention: the output has the structure of `inputs`.
        return (attr_map,) if inputs_are_tuple else attr_map

    @abc.abstractmethod
    def _attribute_map(
        self,
        inputs: Tensor,
        target: TargetLike,
        additional_forward_args: tuple[Any, ...],
        **kwargs: Any,
    ) -> Tensor:
        """Compute the ``(N, 1, H, W)`` map (inputs already validated)."""
