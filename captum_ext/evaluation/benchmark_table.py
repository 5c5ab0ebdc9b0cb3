"""Turn pytest-benchmark JSON into a compute-time table next to Stalder et al. Table 3.

Each benchmark of ``benchmarks/test_table3.py`` stores in ``extra_info`` the method
name, the classifier, the number of images processed per round and the device. This
module converts the median round time into seconds per image and images per second,
extrapolates to the paper's 210 VOC-2007 and 1,000 COCO-2014 images, and gives the ratio
to the Explainer measured in the same run, next to the paper's own numbers (Tesla P100).
On CPU the absolute times are not comparable with the paper's; the ratios are.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

#: Stalder et al. 2022, Table 3: seconds for 210 VOC-2007 / 1,000 COCO-2014 images.
PAPER_TABLE3: dict[str, dict[str, dict[str, int]]] = {
    "vgg16": {
        "VOC-2007": {
            "GCAM": 11,
            "RISE": 4529,
            "EP": 21436,
            "iGOS++": 10635,
            "RTIS": 8,
            "Explainer": 8,
        },
        "COCO-2014": {
            "GCAM": 83,
            "RISE": 21647,
            "EP": 122073,
            "iGOS++": 104122,
            "RTIS": 34,
            "Explainer": 34,
        },
    },
    "resnet50": {
        "VOC-2007": {
            "GCAM": 10,
            "RISE": 2781,
            "EP": 17159,
            "iGOS++": 6958,
            "RTIS": 11,
            "Explainer": 11,
        },
        "COCO-2014": {
            "GCAM": 90,
            "RISE": 13295,
            "EP": 96042,
            "iGOS++": 68950,
            "RTIS": 47,
            "Explainer": 47,
        },
    },
}
PAPER_IMAGES = {"VOC-2007": 210, "COCO-2014": 1000}
#: Our method names that correspond to a paper column.
PAPER_NAMES = {"Explainer": "Explainer", "RTIS": "RTIS", "LayerGradCam": "GCAM"}


def load_rows(path: str | Path) -> list[dict[str, Any]]:
    """One row per benchmark of a pytest-benchmark ``--benchmark-json`` file."""
    data = json.loads(Path(path).read_text())
    rows = []
    for bench in data.get("benchmarks", []):
        info = bench.get("extra_info", {})
        if "method" not in info or not bench.get("stats"):
            continue
        # A run of a fraction of the paper's work is scaled to the whole (linear cost).
        seconds = bench["stats"]["median"] * info.get("scale", 1.0) / info["images"]
        rows.append(
            {
                "method": info["method"],
                "classifier": info["classifier"],
                "device": info.get(
                    "device", data.get("machine_info", {}).get("cpu", {}).get("brand_raw", "?")
                ),
                "image_size": info.get("image_size"),
                "batch_size": info.get("batch_size"),
                "seconds_per_image": seconds,
                "images_per_second": 1.0 / seconds,
            }
        )
    return rows


def _fmt_seconds(seconds: float) -> str:
    if seconds >= 60:
        h, rest = divmod(int(round(seconds)), 3600)
        return f"{h:02d}:{rest // 60:02d}:{rest % 60:02d}"
    return f"{seconds:.3g} s"


def table3_markdown(rows: list[dict[str, Any]], date: str | None = None) -> str:
    """Markdown table of our measurements next to the paper's Table 3.

    Examples
    --------
    >>> rows = [{"method": "Explainer", "classifier": "vgg16", "device": "cpu",
    ...          "image_size": 224, "batch_size": 8, "seconds_per_image": 0.1,
    ...          "images_per_second": 10.0}]
    >>> print(table3_markdown(rows).splitlines()[4])
    | vgg16 | Explainer | 0.1 | 10 | 21 s | 00:01:40 | 1 | 8 s | 1 |
    """
    lines = []
    devices = sorted({r["device"] for r in rows})
    sizes = sorted({str(r.get("image_size")) for r in rows})
    lines.append(
        f"Device: {', '.join(devices)}; image size {', '.join(sizes)}"
        + (f"; measured {date}" if date else "")
        + ". Paper: Tesla P100, 224 x 224."
    )
    lines.append("")
    lines.append(
        "| classifier | method | s / image | images / s | 210 images (VOC) | 1,000 images (COCO) "
        "| ratio to Explainer | paper, 210 VOC images | paper ratio |"
    )
    lines.append("|---|---|---|---|---|---|---|---|---|")
    for classifier in sorted({r["classifier"] for r in rows}):
        group = [r for r in rows if r["classifier"] == classifier]
        reference = next((r for r in group if r["method"] == "Explainer"), None)
        paper = PAPER_TABLE3.get(classifier, {}).get("VOC-2007", {})
        for r in sorted(group, key=lambda r: r["seconds_per_image"]):
            s = r["seconds_per_image"]
            ratio = f"{s / reference['seconds_per_image']:.3g}" if reference else "n/a"
            paper_name = PAPER_NAMES.get(r["method"])
            paper_time = paper.get(paper_name) if paper_name else None
            paper_ratio = (
                f"{paper_time / paper['Explainer']:.3g}" if paper_time and paper else "n/a"
            )
            lines.append(
                f"| {classifier} | {r['method']} | {s:.3g} | {r['images_per_second']:.3g} | "
                f"{_fmt_seconds(210 * s)} | {_fmt_seconds(1000 * s)} | {ratio} | "
                f"{_fmt_seconds(paper_time) if paper_time else 'n/a'} | {paper_ratio} |"
            )
    lines.append("")
    lines.append(
        "Paper rows without a captum-ext counterpart (VOC-2007, 210 images): "
        + "; ".join(
            f"{c}: " + ", ".join(f"{m} {_fmt_seconds(t)}" for m, t in cols["VOC-2007"].items())
            for c, cols in PAPER_TABLE3.items()
        )
        + "."
    )
    return "\n".join(lines)
