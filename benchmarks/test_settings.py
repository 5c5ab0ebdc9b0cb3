"""The benchmark suites' own options."""

import argparse

import pytest

from benchmarks.conftest import pixels


def test_image_size_takes_a_positive_number_of_pixels():
    assert pixels("48") == 48


@pytest.mark.parametrize("text", ["0", "-3", "2.5", "big"])
def test_image_size_rejects_anything_else(text):
    with pytest.raises(argparse.ArgumentTypeError, match="positive number of pixels"):
        pixels(text)
