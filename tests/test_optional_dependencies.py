"""The core works without the extras; a missing extra is named in the error.

Each case runs in a fresh interpreter where the optional packages are made unimportable
(``sys.modules[name] = None``), as in an install without the extra.
"""

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

#: Import names of every optional package (pyproject's extras).
EXTRAS_MODULES = (
    "cv2",
    "lightning",
    "pytorch_lightning",
    "torchmetrics",
    "jsonargparse",
    "pycocotools",
    "markdown",
    "yaml",
)


def run_without(blocked, code: str) -> subprocess.CompletedProcess:
    prelude = "import sys\n" + "".join(f"sys.modules[{m!r}] = None\n" for m in blocked)
    return subprocess.run(
        [sys.executable, "-c", prelude + textwrap.dedent(code)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_core_runs_without_any_extra():
    out = run_without(
        EXTRAS_MODULES,
        """
        import torch
        from captum_ext.attr import RandomAttribution, SlidingPatch
        from captum_ext.data.shapes import ShapesDataset
        from captum_ext.fillers import Blur
        from captum_ext.metrics import deletion_curve, spearman
        from captum_ext.models.pretrained import (load_shapes_classifier, load_shapes_explainer,
                                                  load_shapes_inpainter)

        model = load_shapes_classifier()
        load_shapes_explainer(), load_shapes_inpainter()
        x = ShapesDataset(2, split="test")[0]["image"].unsqueeze(0)
        maps = SlidingPatch(model, filler=Blur(2.0), score="sigmoid").attribute(
            x, sliding_window_shapes=16, strides=16, target=0)
        random = RandomAttribution(model).attribute(x, target=0)
        curve = deletion_curve(model, x, maps, 0, filler=Blur(2.0), steps=4)
        print(tuple(maps.shape), tuple(random.shape), float(spearman(maps, maps)[0]))
    """,
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.split()[-1] == "1.0"


@pytest.mark.parametrize(
    ("blocked", "code", "extra"),
    [
        (
            ["cv2"],
            "from captum_ext.inpainters import OpenCVInpainter; OpenCVInpainter()",
            "inpaint",
        ),
        (["cv2"], "import captum_ext.data.holes", "inpaint"),
        (
            ["cv2"],
            "import torch; from captum_ext.models.pretrained import load_shapes_inpainter; "
            "load_shapes_inpainter()(torch.rand(1, 3, 8, 8), torch.ones(1, 1, 8, 8).bool())",
            "inpaint",
        ),
        (["lightning"], "import captum_ext.training.classifier_module", "lightning"),
        (["lightning"], "from captum_ext.data.shapes import ShapesDataModule", "lightning"),
        (["lightning", "pytorch_lightning"], "import lightning_callbacks", "lightning"),
        (
            ["jsonargparse"],
            "from captum_ext.cli.main import main; main(['demo', '--help'])",
            "lightning",
        ),
        (
            ["pycocotools"],
            "from captum_ext.data.coco import COCODataset; COCODataset('i', 'a')",
            "coco",
        ),
        (["markdown"], "import captum_ext.evaluation.html_report", "report"),
        (["torchmetrics"], "import captum_ext.evaluation.classifier_robustness", "report"),
    ],
)
def test_missing_extra_is_named(blocked, code, extra):
    out = run_without(blocked, code)
    assert out.returncode != 0
    last = out.stderr.strip().splitlines()[-1]
    assert last.startswith("ImportError:"), out.stderr
    assert f'pip install "captum-ext[{extra}]"' in last
