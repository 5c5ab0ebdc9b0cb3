"""Log attribution masks of fixed samples to every attached logger during training."""

from __future__ import annotations

from typing import Any

from captum_ext.fillers.image_space import ImageSpace
from lightning_callbacks._attribution import AttributionFn, AttributionSpec, MethodLike, ModelLike
from lightning_callbacks._batch import TargetPolicy, Unpack
from lightning_callbacks._image_sinks import log_images
from lightning_callbacks._periodic import PeriodicAttributionCallback
from lightning_callbacks._render import render
from lightning_callbacks._samples import FixedSamples


class MaskLogger(PeriodicAttributionCallback):
    """Render image / mask / overlay grids of fixed samples and log them.

    At each event (see *Events* below) the callback computes attribution maps of the
    same samples against the model as it is now, renders three ``(N, 3, H, W)``
    batches and logs them to every logger of the Trainer under the tags
    ``<name>/images``, ``<name>/masks`` and ``<name>/overlays`` at
    ``trainer.global_step``. Loggers are duck-typed: TensorBoard (``add_images``),
    Weights & Biases (``log_image``), MLflow (``MlflowClient.log_image`` with
    ``key`` and ``step``); loggers without an image API but with a ``log_dir``
    (``CSVLogger``) get PNG grids under ``<log_dir>/images/<tag>/step_<step>.png``.
    Only global rank 0 computes and logs.

    Events: in ``fit``, every ``every_n_epochs`` epochs (at the end of the epoch's
    validation loop, or of the training epoch when no validation ran) and every
    ``every_n_steps`` optimizer steps (once when both fall on the same step); once at
    the end of ``validate`` / ``test``; never during the sanity check nor under
    ``fast_dev_run``. The model is put in eval mode for the attribution and
    every submodule's train/eval flag, ``requires_grad`` flag, ``.grad`` and hook set is
    restored afterwards; the global RNG state is forked, so a training run's weights
    are bit-identical with and without the callback.

    Parameters
    ----------
    method : str or callable, optional
        The attribution method: a class of Captum or captum-ext
        (``captum.attr.Saliency``, ``captum_ext.attr.RandomAttribution``), its class
        path or bare name, or any callable ``model -> attributor``.
    init_args : dict, optional
        Constructor arguments of the method (a string ``layer`` names a submodule).
    attribute_args : dict, optional
        Extra arguments of ``attribute``.
    attribution_fn : callable or str, optional
        Instead of ``method``: ``fn(pl_module, images, targets) -> maps``, or the name
        of a LightningModule method called as ``pl_module.<name>(images, targets)``;
        for an Explainer training run, a function returning the Explainer's own masks.
    model : str or callable, optional
        The network explained: the LightningModule (default), a submodule name, or
        ``fn(pl_module) -> network``.
    num_samples : int
        Number of samples drawn from the validation (or test) dataset.
    samples : any, optional
        Explicit samples (a batch) instead of a draw.
    seed : int
        Seed of the draw.
    target : {"label", "predicted"} or int
        The class explained per sample: the label (for multi-hot labels, the present
        class the model scores highest), the predicted class, or a fixed class.
    every_n_epochs : int, optional
        Epoch period in ``fit`` (None: no epoch events).
    every_n_steps : int, optional
        Optimizer-step period in ``fit`` (None: no step events).
    space : ImageSpace, optional
        The classifier's input normalisation, to show images in true colours (default:
        each image min-max rescaled).
    cmap : str
        Matplotlib colormap of the masks.
    alpha : float
        Opacity of the mask in the overlays.
    nrow : int
        Images per row of the grids.
    name : str, optional
        Tag prefix (default ``"attributions/<method name>"``).
    unpack : callable, optional
        Turns a batch of another layout into a sample dict or ``(images, labels)``.

    Examples
    --------
    >>> from lightning.pytorch import Trainer
    >>> from lightning.pytorch.loggers import TensorBoardLogger
    >>> logger_cb = MaskLogger("captum.attr.Saliency", num_samples=8, every_n_epochs=1)
    >>> trainer = Trainer(callbacks=[logger_cb], logger=TensorBoardLogger("runs"))  # doctest: +SKIP
    """

    def __init__(
        self,
        method: MethodLike | None = None,
        *,
        init_args: dict[str, Any] | None = None,
        attribute_args: dict[str, Any] | None = None,
        attribution_fn: AttributionFn | None = None,
        model: ModelLike = None,
        num_samples: int = 8,
        samples: Any = None,
        seed: int = 0,
        target: TargetPolicy = "label",
        every_n_epochs: int | None = 1,
        every_n_steps: int | None = None,
        space: ImageSpace | None = None,
        cmap: str = "jet",
        alpha: float = 0.5,
        nrow: int = 8,
        name: str | None = None,
        unpack: Unpack | None = None,
    ) -> None:
        spec = AttributionSpec(method, init_args, attribute_args, attribution_fn, model)
        super().__init__(
            f"attributions/{spec.name}" if name is None else name,
            spec,
            FixedSamples(num_samples, seed, samples, unpack),
            target,
            every_n_epochs,
            every_n_steps,
        )
        if not 0.0 <= alpha <= 1.0:
            raise ValueError(f"`alpha` must be in [0, 1], got {alpha}")
        self.space = space
        self.cmap = cmap
        self.alpha = alpha
        self.nrow = nrow
        #: The route taken per logger at the last event ("tensorboard", "wandb",
        #: "mlflow", "png" or "none").
        self.routes: list[str] = []

    def log_event(self, trainer: Any, pl_module: Any) -> None:
        if not trainer.is_global_zero:
            return
        samples = self.samples.get(trainer, pl_module)
        samples, _, maps, _ = self.spec.explain(pl_module, samples, self.target)
        rendered = render(samples.images, maps, self.space, self.cmap, self.alpha)
        tagged = {f"{self.name}/{kind}": batch for kind, batch in rendered.items()}
        self.routes = log_images(trainer.loggers, tagged, trainer.global_step, self.nrow)
