"""Package metadata: version, type marker, license and the public names of each package."""

import importlib
import re
from pathlib import Path

import pytest

import captum_ext

ROOT = Path(__file__).resolve().parents[1]
PUBLIC_PACKAGES = [
    "captum_ext",
    "captum_ext.attr",
    "captum_ext.cli",
    "captum_ext.data",
    "captum_ext.evaluation",
    "captum_ext.fillers",
    "captum_ext.inpainters",
    "captum_ext.metrics",
    "captum_ext.models",
    "captum_ext.training",
    "lightning_callbacks",
]


def test_version_matches_pyproject():
    declared = re.search(r'^version = "([^"]+)"', (ROOT / "pyproject.toml").read_text(), re.M)
    assert declared and captum_ext.__version__ == declared.group(1)


def test_package_is_marked_typed():
    assert (ROOT / "captum_ext" / "py.typed").is_file()
    assert '"py.typed"' in (ROOT / "pyproject.toml").read_text()


def test_license_file_matches_the_metadata():
    assert 'license = "BSD-3-Clause"' in (ROOT / "pyproject.toml").read_text()
    text = (ROOT / "LICENSE").read_text()
    assert "Redistribution and use in source and binary forms" in text
    assert "Neither the name of the copyright holder" in text  # the third clause


@pytest.mark.parametrize("name", PUBLIC_PACKAGES)
def test_public_package_declares_its_names(name):
    module = importlib.import_module(name)
    assert module.__doc__, f"{name} has no docstring"
    assert isinstance(module.__all__, list), f"{name} has no __all__"
    missing = [n for n in module.__all__ if not hasattr(module, n)]
    assert not missing, f"{name}.__all__ names what it does not define: {missing}"
