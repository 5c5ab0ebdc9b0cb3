"""Write an :class:`~captum_ext.evaluation.harness.EvaluationResult` as Markdown, JSON and PNG."""

from __future__ import annotations

import json
import math
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from captum_ext.evaluation.harness import COLUMNS, SEGMENTATION, EvaluationResult
from captum_ext.utils import require, to_json

Figure = require("matplotlib.figure", extra="report").Figure

PathLike = str | Path


def _fmt(value: float, key: str) -> str:
    if math.isnan(value):
        return "-"
    return f"{value:.4f}" if key == "seconds_per_pair" else f"{value:.3f}"


def markdown_table(result: EvaluationResult) -> str:
    """The metric table (one row per method) and the sanity rows, as Markdown.

    Arrows say which direction is better.
    """
    table = result.table()
    headers = [f"{name} {'↑' if up else '↓'}" for name, up in COLUMNS.values()]
    lines = [
        "| Method | " + " | ".join(headers) + " |",
        "|---|" + "---:|" * len(COLUMNS),
    ]
    for method, row in table.items():
        lines.append(f"| {method} | " + " | ".join(_fmt(row[k], k) for k in COLUMNS) + " |")
    if result.sanity:
        lines += ["", "Sanity rows (constant masks and the ground truth itself):", ""]
        lines.append("| Mask | " + " | ".join(COLUMNS[k][0] for k in SEGMENTATION) + " |")
        lines.append("|---|" + "---:|" * len(SEGMENTATION))
        for name, row in result.sanity.items():
            lines.append(f"| {name} | " + " | ".join(_fmt(row[k], k) for k in SEGMENTATION) + " |")
    return "\n".join(lines)


def _class_label(result: EvaluationResult, c: int) -> str:
    names = result.class_names
    return names[c] if names is not None and c < len(names) else f"class {c}"


def pointing_per_class(result: EvaluationResult) -> dict[str, dict[str, float]]:
    """``method -> class name -> pointing accuracy``, plus ``"mean over classes"``.

    The mean over classes is the pointing accuracy as Zhang et al. (2016), Gu (2020) and
    TorchRay compute it (the main table's "Pointing (class mean)").

    Examples
    --------
    >>> from captum_ext.evaluation import EvaluationResult
    >>> r = EvaluationResult(["m"], {"m": {"pointing": [1.0, 0.0, 1.0]}},
    ...                      [(0, 2), (1, 2), (1, 0)], {}, {}, class_names=["a", "b", "c"])
    >>> pointing_per_class(r)
    {'m': {'a': 1.0, 'c': 0.5, 'mean over classes': 0.75}}
    """
    out: dict[str, dict[str, float]] = {}
    table = result.table()
    for method, by_class in result.class_table("pointing").items():
        row = {_class_label(result, c): v for c, v in by_class.items()}
        row["mean over classes"] = table[method]["pointing"]
        out[method] = row
    return out


def pointing_markdown(result: EvaluationResult) -> str:
    """The per-class pointing table as Markdown: a row of pair counts, one row per method.

    Examples
    --------
    >>> from captum_ext.evaluation import EvaluationResult
    >>> r = EvaluationResult(["m"], {"m": {"pointing": [1.0, 0.0, 1.0]}},
    ...                      [(0, 2), (1, 2), (1, 0)], {}, {})
    >>> print(pointing_markdown(r).splitlines()[-1])
    | m | 1.000 | 0.500 | 0.750 |
    """
    table = pointing_per_class(result)
    headers = list(next(iter(table.values())))
    counts = Counter(c for _, c in result.pairs)
    pairs = [str(counts[c]) for c in sorted(counts)] + [str(len(result.pairs))]
    lines = [
        "| Method | " + " | ".join(headers) + " |",
        "|---|" + "---:|" * len(headers),
        "| (pairs) | " + " | ".join(pairs) + " |",
    ]
    for method, row in table.items():
        cells = " | ".join(_fmt(v, "pointing") for v in row.values())
        lines.append(f"| {method} | {cells} |")
    return "\n".join(lines)


def _settings_markdown(settings: dict) -> str:
    lines = []
    for key, value in settings.items():
        if key != "methods":
            lines.append(f"- {key}: {value}")
    for name, spec in settings.get("methods", {}).items():
        kwargs = ", ".join(f"{k}={v}" for k, v in spec["attribute_kwargs"].items()) or "defaults"
        lines.append(f"- {name}: {kwargs}; {spec['batch_size']} pairs per call")
    return "\n".join(lines)


def write_figure(result: EvaluationResult, path: PathLike) -> Path:
    """The figure grid: one row per pair; image, ground truth, one column per method.

    Drawn on a bare ``matplotlib.figure.Figure`` (Agg canvas): no display and no
    pyplot state are needed or changed.
    """
    figure = result.figure
    if figure is None:
        raise ValueError("the result holds no figure data (figure_rows=0 or no masks)")
    rows, cols = figure.images.shape[0], 2 + len(result.methods)
    fig = Figure(figsize=(1.8 * cols, 1.8 * rows))
    axes = fig.subplots(rows, cols, squeeze=False)
    for r in range(rows):
        panels = [("image", figure.images[r].permute(1, 2, 0).numpy(), None)]
        panels.append(("ground truth", figure.ground_truth[r].numpy(), "gray"))
        panels += [(name, figure.maps[name][r].numpy(), "jet") for name in result.methods]
        for c, (title, data, cmap) in enumerate(panels):
            ax = axes[r][c]
            ax.imshow(data, cmap=cmap, vmin=0, vmax=1)
            ax.set_xticks([])
            ax.set_yticks([])
            if r == 0:
                ax.set_title(title, fontsize=8)
        axes[r][0].set_ylabel(figure.titles[r], fontsize=8)
    fig.tight_layout()
    path = Path(path)
    fig.savefig(path, dpi=100)
    return path


#: Line styles combined with the 10 colours of matplotlib's "tab10": 10 and 4 are
#: coprime up to 20, so 20 methods get distinct (colour, style) pairs, and methods 10
#: apart (which share a colour) never share a style.
LINE_STYLES = ("-", "--", "-.", ":")
MARKERS = (None, "o", "s", "^", "v", "D")


def curve_styles(methods: Sequence[str]) -> dict[str, dict[str, Any]]:
    """``method -> plot keywords`` (colour, line style, marker) unique to each method.

    Method ``i`` gets colour ``i % 10`` of "tab10", style ``i % 4`` and, past 20
    methods, a marker ``i // 20``: no two methods share (colour, style, marker).

    Examples
    --------
    >>> styles = curve_styles([f"m{i}" for i in range(12)])
    >>> [tuple(styles[m].values()) for m in ("m0", "m1", "m10")]
    [('C0', '-', None), ('C1', '--', None), ('C0', '-.', None)]
    """
    if len(methods) > len(MARKERS) * 20:
        raise ValueError(f"at most {len(MARKERS) * 20} methods can be told apart in one plot")
    return {
        method: {
            "color": f"C{i % 10}",
            "linestyle": LINE_STYLES[i % len(LINE_STYLES)],
            "marker": MARKERS[i // 20],
        }
        for i, method in enumerate(methods)
    }


def curves_figure(result: EvaluationResult) -> Figure:
    """Mean deletion and insertion curves of every method, side by side (Agg canvas).

    Every method has its own (colour, line style) pair (:func:`curve_styles`), the same
    in both panels; one legend to the right of the panels.
    """
    if not result.curves or not result.curve_fractions:
        raise ValueError("the result holds no curves")
    fig = Figure(figsize=(12, 4.5))
    axes = fig.subplots(1, 2)
    titles = {
        "deletion_curve": "Deletion (lower is better)",
        "insertion_curve": "Insertion (higher is better)",
    }
    styles = curve_styles(result.methods)
    for ax, (key, title) in zip(axes, titles.items()):
        for method in result.methods:
            ax.plot(
                result.curve_fractions,
                result.curves[method][key],
                label=method,
                linewidth=1.6,
                markersize=3,
                markevery=4,
                **styles[method],
            )
        ax.set_title(title, fontsize=10)
        ax.set_xlabel(
            "fraction of pixels removed"
            if key == "deletion_curve"
            else "fraction of pixels inserted"
        )
        ax.set_ylabel(f"target score ({result.settings.get('score', '?')})")
        ax.set_xlim(0, 1)
        ax.grid(alpha=0.3)
    handles, labels = axes[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="center right", fontsize=8, handlelength=3.5)
    fig.tight_layout(rect=(0, 0, 0.86, 1))
    return fig


def write_curves(result: EvaluationResult, path: PathLike) -> Path:
    """Save :func:`curves_figure` as a PNG."""
    path = Path(path)
    curves_figure(result).savefig(path, dpi=100)
    return path


def write_report(result: EvaluationResult, output_dir: PathLike) -> dict[str, Path]:
    """Write ``metrics.md``, ``metrics.json``, ``figure.png`` and ``curves.png``.

    The JSON holds the table, the sanity rows, the per-class pointing accuracies, the
    settings and every per-pair value.

    Returns
    -------
    dict of str to Path
        ``{"markdown", "json", "figure", "curves"}`` (no ``figure`` / ``curves`` without
        data).
    """
    out = Path(output_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths: dict[str, Path] = {}
    if result.figure is not None:
        paths["figure"] = write_figure(result, out / "figure.png")
    if result.curves:
        paths["curves"] = write_curves(result, out / "curves.png")
    settings = result.settings
    text = [
        "# Attribution evaluation",
        "",
        f"{settings.get('num_pairs', len(result.pairs))} image-class pairs from "
        f"{settings.get('num_images', '?')} images. Maps are `attribute(...)` averaged over "
        "channels; IoU, soft accuracy and MAE use the map clamped at 0 and divided by its "
        "max; pointing uses its argmax.",
        "",
        markdown_table(result),
        "",
        "## Pointing game per class",
        "",
        "Hits over the pairs of each class; the papers' pointing accuracy (Zhang et al. "
        "2016, Gu 2020, TorchRay) is the mean over classes, the table's first pointing "
        "column; the second is the mean over pairs.",
        "",
        pointing_markdown(result),
        "",
        "## Settings",
        "",
        _settings_markdown(settings),
    ]
    if "figure" in paths:
        text += ["", "![figure](figure.png)"]
    if "curves" in paths:
        text += ["", "![deletion and insertion curves](curves.png)"]
    paths["markdown"] = out / "metrics.md"
    paths["markdown"].write_text("\n".join(text) + "\n")
    payload = {
        "table": result.table(),
        "sanity": result.sanity,
        "pointing_per_class": pointing_per_class(result),
        "settings": settings,
        "pairs": [list(p) for p in result.pairs],
        "per_pair": result.per_pair,
        "curve_fractions": result.curve_fractions,
        "curves": result.curves,
    }
    paths["json"] = out / "metrics.json"
    paths["json"].write_text(json.dumps(to_json(payload), indent=2, allow_nan=False) + "\n")
    return paths
