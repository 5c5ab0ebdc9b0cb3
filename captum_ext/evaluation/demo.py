"""The demo report: every shapes-world experiment of the project in one directory.

``captum-ext demo`` runs, with the shipped checkpoints (classifier, Explainer, RTIS,
inpainter), the evaluation harness over all methods (Fig. 3-style grid, metric table,
deletion / insertion curves, throughput), Stalder et al.'s Tables 1 and 2, Agarwal &
Nguyen's removal-effectiveness table and FGVis' hallucination table, then writes
``report.md``, ``report.html`` and ``report.json`` beside each section's own files.
"""

from __future__ import annotations

import dataclasses
import json
import math
import platform
import time
from collections.abc import Mapping, Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import torch
from tqdm.auto import tqdm

from captum_ext.evaluation.harness import EvaluationResult
from captum_ext.utils import to_json, write_markdown_json

PathLike = str | Path

#: Methods of the demo's harness run, in report order (registry names).
DEMO_METHODS: tuple = (
    "explainer",
    "rtis",
    "gradcam",
    "occlusion",
    "integrated_gradients",
    "fgvis_deletion",
    "dssr_plus",
    "sp",
    "sp_g",
    "lime",
    "lime_g",
    "mp2",
    "mp2_g",
    "random",
)

#: Methods of the Tables 1-2 analogues (one pass per class is affordable for these).
TABLE_METHODS: tuple = ("explainer", "rtis", "gradcam", "occlusion")


@dataclasses.dataclass(frozen=True)
class DemoSettings:
    """Sizes of one demo run.

    Attributes
    ----------
    num_images : int
        Test images of the harness (every class present is one image-class pair).
    table_images : int
        Test images of Tables 1 and 2.
    removal_images, quality_images : int
        Images of the removal-effectiveness table and of its inpainting-quality rows.
    hallucination_paper_setting_only : bool
        Only the paper's black image with the mid-grey reference (FGVis Table A1).
    hallucination_iterations : int
        Iterations of the generation game (paper: 500).
    attribute_overrides : mapping
        ``method -> attribute keyword arguments`` replacing the registry's (fewer LIME
        samples, fewer MP2 iterations in the quick run).
    """

    num_images: int
    table_images: int
    removal_images: int
    quality_images: int
    hallucination_paper_setting_only: bool
    hallucination_iterations: int = 500
    attribute_overrides: Mapping[str, Mapping[str, Any]] = dataclasses.field(default_factory=dict)


#: The default run: <= 5 minutes on 2 CPU cores.
QUICK = DemoSettings(
    num_images=4,
    table_images=4,
    removal_images=40,
    quality_images=40,
    hallucination_paper_setting_only=True,
    attribute_overrides={
        "lime": {"n_samples": 250},
        "lime_g": {"n_samples": 250},
        "mp2": {"max_iterations": 24},
        "mp2_g": {"max_iterations": 24},
    },
)

#: ``--full``: the papers' settings (1,000 LIME samples, MP2 to the stopping score) and
#: 500-image tables.
FULL = DemoSettings(
    num_images=500,
    table_images=500,
    removal_images=500,
    quality_images=200,
    hallucination_paper_setting_only=False,
)


#: The shipped networks ``--retrain`` trains, in order (the Explainer, RTIS and the removal
#: table depend on the classifier): name -> (task, preset) of
#: :func:`~captum_ext.training.presets.train_preset`.
RETRAINED = {
    "shapes_classifier": ("classifier", "shapes_classifier"),
    "shapes_inpainter": ("inpainter", "shapes_inpainter"),
    "shapes_explainer": ("explainer", "shapes_explainer"),
    "shapes_explainer_rtis": ("explainer", "shapes_explainer_rtis"),
}


def retrain_checkpoints(directory: PathLike, root_dir: PathLike) -> dict[str, Path]:
    """Train every shipped checkpoint from scratch with its preset into ``directory``.

    The Explainers are trained against the classifier retrained here. Hours on CPU;
    minutes on a GPU. Returns ``name -> weights file``; load them with the
    ``checkpoint_dir=directory`` argument of the ``models.pretrained`` loaders.
    """
    from captum_ext.training.presets import train_preset

    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    classifier = directory / "shapes_classifier.pt"
    paths = {}
    for name, (task, preset) in tqdm(RETRAINED.items(), desc="retrain checkpoints", unit="network"):
        overrides = {}
        if task == "explainer":
            overrides = {"model": {"classifier_checkpoint": str(classifier)}}
        paths[name] = train_preset(
            task,
            preset,
            directory / f"{name}.pt",
            default_root_dir=Path(root_dir) / name,
            overrides=overrides,
        )
    return paths


def _throughput_markdown(result: EvaluationResult) -> tuple:
    table = result.table()
    seconds = {m: table[m]["seconds_per_pair"] for m in result.methods}
    reference = seconds.get("Explainer")
    lines = [
        "Wall-clock seconds of `attribute` per image-class pair in the harness run "
        f"(device: {result.settings.get('device', 'cpu')}; {_cpu_name()}). The Explainer's "
        "one forward pass gives the masks of every class; here it is timed per pair like "
        "the others.",
        "",
        "| Method | s / pair | pairs / s | × Explainer time |",
        "|---|---:|---:|---:|",
    ]
    rows = {}
    for method, s in seconds.items():
        ratio = s / reference if reference else math.nan
        rows[method] = {
            "seconds_per_pair": s,
            "pairs_per_second": 1.0 / s if s else math.nan,
            "ratio_to_explainer": ratio,
        }
        lines.append(
            f"| {method} | {s:.4f} | {rows[method]['pairs_per_second']:.1f} | {ratio:.1f} |"
        )
    return "\n".join(lines), rows


def _cpu_name() -> str:
    if torch.cuda.is_available():
        return torch.cuda.get_device_name()
    return f"{platform.processor() or platform.machine()}, {torch.get_num_threads()} threads"


def _section(path: Path, level_shift: int = 1) -> str:
    """A section file's Markdown with its headings moved down ``level_shift`` levels."""
    lines = []
    for line in path.read_text().splitlines():
        if line.startswith("#"):
            line = "#" * level_shift + line
        lines.append(line)
    return "\n".join(lines)


def run_demo(
    output_dir: PathLike = "demo-report",
    full: bool = False,
    retrain: bool = False,
    settings: DemoSettings | None = None,
    methods: Sequence[str] = DEMO_METHODS,
    device: str | torch.device = "cpu",
    seed: int = 0,
    show_progress: bool = True,
) -> dict[str, Path]:
    """Run every shapes-world experiment and write the report to ``output_dir``.

    Parameters
    ----------
    output_dir : path
        Report directory (created): ``report.html``, ``report.md``, ``report.json``
        and each section's files (``metrics.*``, ``figure.png``, ``curves.png``,
        ``substrates.*``, ``tables.*``, ``removal.*``, ``hallucination.*``).
    full : bool
        Paper-scale settings (:data:`FULL`, hours on CPU) instead of :data:`QUICK`.
    retrain : bool
        Retrain every shipped checkpoint from scratch first (into
        ``output_dir/checkpoints``) and use those.
    settings : DemoSettings, optional
        Explicit sizes (overrides ``full``).
    methods : sequence of str
        Registry names of the harness run (default :data:`DEMO_METHODS`).
    device : str or torch.device
        Where the networks and data go.
    seed : int
        Base seed of the shapes world.
    show_progress : bool
        Progress bars (one per stage, and the stages').

    Returns
    -------
    dict
        ``{"html": ..., "markdown": ..., "json": ...}`` paths.

    Examples
    --------
    >>> paths = run_demo("demo-report")  # doctest: +SKIP
    >>> paths["html"]  # doctest: +SKIP
    PosixPath('demo-report/report.html')
    """
    from captum_ext.data.shapes import ShapesDataset, shapes_space
    from captum_ext.evaluation.explainer_tables import (
        explainer_tables,
        write_class_masks_figure,
        write_tables,
    )
    from captum_ext.evaluation.generative import (
        beats_twin_table,
        deletion_by_substrate,
        deletion_substrates,
        recorded_specs,
        run_removal_effectiveness,
        substrate_markdown,
        twin_names,
    )
    from captum_ext.evaluation.hallucination import (
        DEFAULT_REFERENCES,
        DEFAULT_STARTS,
        hallucination_markdown,
        hallucination_rates,
    )
    from captum_ext.evaluation.harness import evaluate_attributions
    from captum_ext.evaluation.html_report import write_html
    from captum_ext.evaluation.methods import default_methods
    from captum_ext.evaluation.report import write_report
    from captum_ext.evaluation.shapes_world import SHAPES_SCORE
    from captum_ext.models.pretrained import load_shapes_classifier, load_shapes_inpainter

    settings = settings or (FULL if full else QUICK)
    out = Path(output_dir)
    out.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    timings: dict[str, float] = {}
    checkpoints = None
    if retrain:
        checkpoints = out / "checkpoints"
        retrain_checkpoints(checkpoints, out / "training")

    stages = tqdm(total=4, desc="demo", unit="stage", disable=not show_progress)
    model = load_shapes_classifier(device=device, checkpoint_dir=checkpoints)
    image_size = 64
    dataset = ShapesDataset(settings.num_images, image_size, seed=seed, split="test")

    tick = time.perf_counter()
    specs = default_methods(
        image_size,
        score=SHAPES_SCORE,
        space=dataset.space,
        include=list(methods),
        checkpoint_dir=checkpoints,
    )
    for name, spec in zip(methods, specs):
        spec.attribute_kwargs = {
            **spec.attribute_kwargs,
            **settings.attribute_overrides.get(name, {}),
        }
    specs, recorders = recorded_specs(specs, only=twin_names(spec.name for spec in specs))
    result = evaluate_attributions(
        model, dataset, specs, score=SHAPES_SCORE, show_progress=show_progress
    )
    deletion = {}
    if recorders:
        inpainter = load_shapes_inpainter(device=device, checkpoint_dir=checkpoints)
        substrates = deletion_substrates(dataset.space, image_size, inpainter)
        deletion = deletion_by_substrate(model, recorders, substrates, show_progress=show_progress)
    result.settings["dataset"] = (
        f"ShapesDataset(num_images={settings.num_images}, image_size={image_size}, "
        f"seed={seed}, split='test')"
    )
    result.settings["device"] = str(device)
    result.settings["attribute overrides"] = dict(settings.attribute_overrides)
    write_report(result, out)
    throughput_md, throughput = _throughput_markdown(result)
    write_markdown_json(out, "throughput", "# Throughput\n\n" + throughput_md, throughput)
    timings["methods"] = time.perf_counter() - tick
    stages.update()

    tick = time.perf_counter()
    table_data = ShapesDataset(settings.table_images, image_size, seed=seed, split="test")
    table_specs = [spec for name, spec in zip(methods, specs) if name in TABLE_METHODS]
    tables = explainer_tables(model, table_data, table_specs, show_progress=show_progress)
    tables.settings["dataset"] = (
        f"ShapesDataset(num_images={settings.table_images}, image_size={image_size}, "
        f"seed={seed}, split='test')"
    )
    write_tables(tables, out)
    # its own 32 test images: the table's few may hold no image with two classes
    figure_data = ShapesDataset(32, image_size, seed=seed, split="test")
    write_class_masks_figure(model, figure_data, table_specs, out / "class_masks.png")
    timings["tables"] = time.perf_counter() - tick
    stages.update()

    tick = time.perf_counter()
    run_removal_effectiveness(
        out,
        num_images=settings.removal_images,
        quality_images=settings.quality_images,
        seed=seed,
        device=device,
        show_progress=show_progress,
        checkpoint_dir=checkpoints,
    )
    timings["removal"] = time.perf_counter() - tick
    stages.update()
    if deletion:
        removal = json.loads((out / "removal.json").read_text())["table"]
        beats_twin = beats_twin_table(deletion)
        write_markdown_json(
            out,
            "substrates",
            substrate_markdown(deletion, beats_twin, removal, pairs=len(result.pairs)),
            {"deletion_auc": deletion, "beats_twin": beats_twin},
        )

    tick = time.perf_counter()
    paper_only = settings.hallucination_paper_setting_only
    hallucination = hallucination_rates(
        model,
        shapes_space(),
        image_size,
        {"black": DEFAULT_STARTS["black"]} if paper_only else None,
        {"mid-grey": DEFAULT_REFERENCES["mid-grey"]} if paper_only else None,
        iterations=settings.hallucination_iterations,
        show_progress=show_progress,
    )
    write_markdown_json(out, "hallucination", hallucination_markdown(hallucination), hallucination)
    timings["hallucination"] = time.perf_counter() - tick
    stages.update()
    stages.close()

    timings["total"] = time.perf_counter() - started
    date = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    intro = [
        "# captum-ext demo report",
        "",
        f"Shapes world, {'paper-scale (`--full`)' if settings is FULL else 'quick'} settings; "
        f"{'retrained' if retrain else 'shipped'} checkpoints; device {device} "
        f"({_cpu_name()}); {date}; {timings['total']:.0f} s in all.",
        "",
        "Contents: [methods](#methods), [throughput](#throughput), "
        "[Tables 1-2](#tables-1-and-2), [removal](#removal-effectiveness), "
        "[hallucination](#hallucination).",
    ]
    body = [
        "\n".join(intro),
        "## Methods\n\n"
        + _section(out / "metrics.md", 2)
        + ("\n\n" + _section(out / "substrates.md", 2) if deletion else ""),
        "## Throughput\n\n" + _section(out / "throughput.md", 2),
        "## Tables 1 and 2\n\n"
        + _section(out / "tables.md", 2)
        + "\n\nEach method's map of each class of a test image with two objects "
        + "(a class-specific map keeps its own object only):\n\n"
        + "![per-class masks](class_masks.png)",
        "## Removal effectiveness\n\n"
        + _section(out / "removal.md", 2)
        + "\n\n![removal](removal.png)",
        "## Hallucination\n\n" + _section(out / "hallucination.md", 2),
    ]
    report_md = out / "report.md"
    report_md.write_text("\n\n".join(body) + "\n")
    payload = {
        "date": date,
        "device": str(device),
        "settings": dataclasses.asdict(settings),
        "stage_seconds": timings,
    }
    for stem in ("metrics", "substrates", "throughput", "tables", "removal", "hallucination"):
        if stem != "substrates" or deletion:
            payload[stem] = json.loads((out / f"{stem}.json").read_text())
    report_json = out / "report.json"
    report_json.write_text(json.dumps(to_json(payload), indent=2, allow_nan=False) + "\n")
    report_html = write_html(report_md, out / "report.html", "captum-ext demo report")
    return {"html": report_html, "markdown": report_md, "json": report_json}
