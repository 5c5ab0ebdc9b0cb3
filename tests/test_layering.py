"""Layers point one way (docs/architecture.md, "Layers"): what each layer loads and imports."""

import ast
import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "captum_ext"

#: The library: never imports the harness (evaluation, cli) nor the callbacks built on it.
LIBRARY = ("_utils", "attr", "fillers", "inpainters", "metrics", "data", "models", "training")
HARNESS_AND_ABOVE = ("captum_ext.evaluation", "captum_ext.cli", "lightning_callbacks")

#: Modules that come with an extra (matplotlib is not one of them: captum imports it).
OPTIONAL = (
    "lightning",
    "pytorch_lightning",
    "cv2",
    "torchmetrics",
    "pycocotools",
    "jsonargparse",
    "markdown",
)
#: Core dependencies that take seconds to import: only the functions that use them do.
SLOW = ("scipy", "skimage", "torchvision")
UPPER = ("captum_ext.training", "captum_ext.evaluation", "captum_ext.cli", "lightning_callbacks")

#: What importing each layer must not load.
FORBIDDEN = {
    "captum_ext.attr": OPTIONAL + SLOW + UPPER,
    "captum_ext.fillers": OPTIONAL + SLOW + UPPER,
    "captum_ext.metrics": OPTIONAL + SLOW + UPPER,
    "captum_ext.data.shapes": OPTIONAL + SLOW + UPPER,
    "captum_ext.models.pretrained": OPTIONAL + UPPER,
    "captum_ext.inpainters": OPTIONAL + UPPER,
    "captum_ext.utils": OPTIONAL + SLOW + UPPER,
    "lightning_callbacks": (
        "cv2",
        "pycocotools",
        "jsonargparse",
        "markdown",
        "captum_ext.training",
        "captum_ext.evaluation",
        "captum_ext.cli",
    ),
}


def loaded_modules(module: str) -> set:
    """Top-level names and ``captum_ext.*`` packages in ``sys.modules`` after one import."""
    code = (
        "import json, sys\n"
        f"import {module}\n"
        "names = set(sys.modules)\n"
        "names |= {n.split('.')[0] for n in sys.modules}\n"
        "names |= {'.'.join(n.split('.')[:2]) for n in sys.modules}\n"
        "print(json.dumps(sorted(names)))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=300
    )
    assert out.returncode == 0, out.stderr
    return set(json.loads(out.stdout.splitlines()[-1]))


@pytest.mark.parametrize("module", sorted(FORBIDDEN))
def test_layer_loads_no_heavy_or_upper_module(module):
    loaded = loaded_modules(module)
    assert module in loaded
    assert sorted(set(FORBIDDEN[module]) & loaded) == []


def _imports(path: Path):
    """``(module, names)`` of every import statement of a file (relative ones resolved)."""
    package = ".".join(path.relative_to(ROOT).with_suffix("").parts[:-1])
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield alias.name, []
        elif isinstance(node, ast.ImportFrom):
            module = node.module or ""
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                module = ".".join(base + ([module] if module else []))
            yield module, [alias.name for alias in node.names]


def _files(*packages: str):
    for package in packages:
        root = ROOT.joinpath(*package.split("."))
        yield from sorted(root.rglob("*.py")) if root.is_dir() else []


def library_violations() -> list:
    bad = []
    for path in _files(*(f"captum_ext.{layer}" for layer in LIBRARY)):
        for module, names in _imports(path):
            targets = [module] + [f"{module}.{name}" for name in names]
            if any(t == h or t.startswith(h + ".") for t in targets for h in HARNESS_AND_ABOVE):
                bad.append(f"{path.relative_to(ROOT)} imports {module}")
    return bad


def private_name_violations(packages, own: str) -> list:
    """Imports of a private ``captum_ext`` module or name from outside ``own``."""
    bad = []
    for path in _files(*packages):
        for module, names in _imports(path):
            if not module.startswith("captum_ext") or module.startswith(own):
                continue
            private = [p for p in module.split(".") if p.startswith("_")]
            private += [n for n in names if n.startswith("_")]
            if private:
                bad.append(f"{path.relative_to(ROOT)}: from {module} import {names}")
    return bad


def test_library_never_imports_the_harness():
    assert library_violations() == []


def test_callbacks_import_only_public_names():
    assert private_name_violations(["lightning_callbacks"], own="lightning_callbacks") == []


@pytest.mark.parametrize("package", ["captum_ext.evaluation", "captum_ext.cli"])
def test_harness_imports_only_public_names(package):
    assert private_name_violations([package], own=package) == []


def test_checks_find_a_violation(tmp_path, monkeypatch):
    """The static checks see an upward import and a private name (so they can fail)."""
    fake = tmp_path / "captum_ext" / "attr"
    fake.mkdir(parents=True)
    (fake / "bad.py").write_text(
        "from captum_ext.evaluation import harness\n"
        "from . import _base\n"
        "from captum_ext.metrics import _checks\n"
    )
    monkeypatch.setattr(sys.modules[__name__], "ROOT", tmp_path)
    assert library_violations() == ["captum_ext/attr/bad.py imports captum_ext.evaluation"]
    found = private_name_violations(["captum_ext.attr"], own="captum_ext.attr")
    assert found == ["captum_ext/attr/bad.py: from captum_ext.metrics import ['_checks']"]
