"""The Table 3 script: pytest-benchmark JSON -> seconds per image, extrapolations, ratios."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

from captum_ext.cli.main import main
from captum_ext.evaluation.benchmark_table import load_rows, table3_markdown

ROOT = Path(__file__).resolve().parents[2]


def _bench(method, median, images, scale=1.0):
    return {
        "name": method,
        "stats": {"median": median},
        "extra_info": {
            "method": method,
            "classifier": "vgg16",
            "images": images,
            "scale": scale,
            "device": "CPU (test)",
            "image_size": 224,
            "batch_size": images,
        },
    }


def test_rows_scale_partial_work_and_divide_by_images(tmp_path):
    path = tmp_path / "bench.json"
    path.write_text(
        json.dumps(
            {
                "datetime": "2026-11-22T00:00:00",
                "benchmarks": [
                    _bench("Explainer", 0.2, 2),
                    _bench("FGVis", 0.5, 2, scale=50.0),
                    {"name": "disabled", "stats": None, "extra_info": {"method": "SP"}},
                ],
            }
        )
    )
    rows = {r["method"]: r for r in load_rows(path)}
    assert set(rows) == {"Explainer", "FGVis"}
    assert rows["Explainer"]["seconds_per_image"] == pytest.approx(0.1)
    assert rows["FGVis"]["seconds_per_image"] == pytest.approx(12.5)  # 0.5 s * 50 / 2 images
    assert rows["FGVis"]["images_per_second"] == pytest.approx(0.08)
    table = table3_markdown(list(rows.values()), date="2026-11-22")
    fgvis = next(line for line in table.splitlines() if "| FGVis |" in line)
    # 210 images: 2,625 s = 00:43:45; 1,000 images: 12,500 s = 03:28:20; 125x the Explainer.
    assert "| 00:43:45 | 03:28:20 | 125 |" in fgvis
    assert "CPU (test)" in table and "2026-11-22" in table


def test_cli_on_a_real_benchmark_run(tmp_path):
    out = tmp_path / "bench.json"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "benchmarks/test_table3.py",
            "-q",
            "-p",
            "no:cacheprovider",
            "-k",
            "vgg16 and (Explainer or LayerGradCam)",
            "--benchmark-enable",
            f"--benchmark-json={out}",
        ],
        cwd=ROOT,
        check=True,
        capture_output=True,
    )
    table_path = tmp_path / "table3.md"
    main(["benchmark-table", "--json", str(out), "--output", str(table_path)])
    lines = table_path.read_text().splitlines()
    explainer = next(line for line in lines if "| Explainer |" in line)
    gradcam = next(line for line in lines if "| LayerGradCam |" in line)
    assert explainer.split("|")[7].strip() == "1"  # ratio of the Explainer to itself
    assert gradcam.split("|")[8].strip() == "11 s"  # the paper's GCAM time, VGG-16, VOC


def test_cli_rejects_a_run_without_timings(tmp_path):
    path = tmp_path / "bench.json"
    path.write_text(json.dumps({"benchmarks": []}))
    with pytest.raises(SystemExit, match="no test_table3 benchmark"):
        main(["benchmark-table", "--json", str(path)])
