"""Scheduling shared by the callbacks: when a logging event happens in each loop."""

from __future__ import annotations

import abc
from typing import Any

from captum_ext.utils import check_positive_int
from lightning_callbacks._attribution import AttributionSpec
from lightning_callbacks._batch import TargetPolicy, check_target_policy
from lightning_callbacks._compat import Callback
from lightning_callbacks._samples import FixedSamples


class PeriodicAttributionCallback(Callback, abc.ABC):
    """A callback that explains fixed samples at scheduled events.

    Events:

    * ``trainer.fit``: every ``every_n_epochs`` epochs (epochs ``n - 1, 2n - 1, ...``),
      at the end of that epoch's validation loop, or at the end of the training epoch
      when no validation ran in it; and every ``every_n_steps`` optimizer steps, after
      the training batch. Never during the sanity check. When a step event and an epoch
      event fall on the same optimizer step (the model has the same weights), the work
      is done once, at the step event.
    * ``trainer.validate`` / ``trainer.test``: once, at the end of the loop.
    * Nothing under ``fast_dev_run``: Lightning replaces the loggers with a
      ``DummyLogger`` there, so the maps would go nowhere.

    ``name`` prefixes every logged tag and is the callback's key in checkpoints (two
    instances of one class need two names); the periods are not part of it, so a run
    resumed with other periods restores the same fixed samples. Subclasses implement
    :meth:`log_event`.
    """

    def __init__(
        self,
        name: str,
        spec: AttributionSpec,
        samples: FixedSamples,
        target: TargetPolicy,
        every_n_epochs: int | None,
        every_n_steps: int | None,
    ) -> None:
        if not isinstance(name, str) or not name:
            raise ValueError(f"`name` must be a non-empty string, got {name!r}")
        self.name = name
        self.spec = spec
        self.samples = samples
        self.target = check_target_policy(target)
        self.every_n_epochs = (
            None if every_n_epochs is None else check_positive_int(every_n_epochs, "every_n_epochs")
        )
        self.every_n_steps = (
            None if every_n_steps is None else check_positive_int(every_n_steps, "every_n_steps")
        )
        self._last_epoch: int | None = None
        #: ``global_step`` of the last event in ``fit``.
        self._last_step: int | None = None

    @abc.abstractmethod
    def log_event(self, trainer: Any, pl_module: Any) -> None:
        """Explain the samples against the module as it is now and log the results."""

    # ------------------------------------------------------------------ schedule
    def _epoch_due(self, trainer: Any) -> bool:
        return (
            self.every_n_epochs is not None
            and (trainer.current_epoch + 1) % self.every_n_epochs == 0
            and self._last_epoch != trainer.current_epoch
        )

    def _epoch_event(self, trainer: Any, pl_module: Any) -> None:
        self._last_epoch = trainer.current_epoch
        if trainer.global_step == self._last_step:
            return  # a step event already explained the model with these weights
        self._last_step = trainer.global_step
        self.log_event(trainer, pl_module)

    def on_train_batch_end(
        self, trainer: Any, pl_module: Any, outputs: Any, batch: Any, batch_idx: int
    ) -> None:
        step = trainer.global_step
        # Once per optimizer step (gradient accumulation calls this per batch), never
        # before the first one.
        if trainer.fast_dev_run or self.every_n_steps is None or step == 0:
            return
        if step % self.every_n_steps:
            return
        if step == self._last_step:
            return
        self._last_step = step
        self.log_event(trainer, pl_module)

    def on_validation_epoch_end(self, trainer: Any, pl_module: Any) -> None:
        if trainer.sanity_checking or trainer.fast_dev_run:
            return
        if trainer.state.fn != "fit":
            self.log_event(trainer, pl_module)
        elif self._epoch_due(trainer):
            self._epoch_event(trainer, pl_module)

    def on_train_epoch_end(self, trainer: Any, pl_module: Any) -> None:
        if not trainer.fast_dev_run and self._epoch_due(trainer):
            self._epoch_event(trainer, pl_module)

    def on_test_epoch_end(self, trainer: Any, pl_module: Any) -> None:
        if not trainer.fast_dev_run:
            self.log_event(trainer, pl_module)

    # ------------------------------------------------------------------ state
    @property
    def state_key(self) -> str:
        return self._generate_state_key(name=self.name)

    def state_dict(self) -> dict[str, Any]:
        return {"samples": self.samples.state_dict()}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.samples.load_state_dict(state_dict.get("samples", {}))
