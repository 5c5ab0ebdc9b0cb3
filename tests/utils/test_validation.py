import pytest
import torch

from captum_ext._utils.validation import (
    check_choice,
    check_inputs,
    check_mask,
    check_model_device,
    check_non_negative,
    check_positive_int,
    format_target,
)

CPU = torch.device("cpu")


def test_check_inputs_accepts_batch_and_single_tuple():
    x = torch.rand(2, 3, 4, 4)
    assert check_inputs(x) is x
    assert check_inputs((x,)) is x


@pytest.mark.parametrize(
    "bad, error, match",
    [
        (torch.rand(3, 4, 4), ValueError, "4 dimensions"),
        (torch.ones(1, 3, 4, 4, dtype=torch.long), TypeError, "floating-point"),
        (torch.full((1, 3, 2, 2), float("nan")), ValueError, "NaN"),
        (torch.full((1, 3, 2, 2), float("inf")), ValueError, "NaN or infinite"),
        (torch.rand(0, 3, 2, 2), ValueError, "non-empty"),
        ([1.0], TypeError, "torch.Tensor"),
        ((torch.rand(1, 3, 2, 2), torch.rand(1, 3, 2, 2)), TypeError, "single"),
    ],
)
def test_check_inputs_rejects(bad, error, match):
    with pytest.raises(error, match=match) as info:
        check_inputs(bad)
    assert "inputs" in str(info.value)


def test_check_mask_shapes_and_dtypes():
    x = torch.rand(2, 3, 5, 6)
    assert check_mask(torch.rand(2, 5, 6), x).shape == (2, 1, 5, 6)
    assert check_mask(torch.ones(2, 1, 5, 6, dtype=torch.bool), x).dtype == torch.float32
    with pytest.raises(ValueError, match=r"`holes` must have shape \(2, 1, 5, 6\)"):
        check_mask(torch.rand(2, 1, 5, 5), x, "holes")
    with pytest.raises(TypeError, match="bool"):
        check_mask(torch.rand(2, 1, 5, 6), x, "holes", binary=True)


@pytest.mark.parametrize(
    "target, expected",
    [
        (2, [2, 2, 2]),
        (torch.tensor(1), [1, 1, 1]),
        ([0, 3, 1], [0, 3, 1]),
        (torch.tensor([3, 2, 0]), [3, 2, 0]),
    ],
)
def test_format_target(target, expected):
    assert format_target(target, 3, 4, CPU).tolist() == expected


@pytest.mark.parametrize(
    "target, error, match",
    [
        (4, ValueError, "out of range"),
        (-1, ValueError, "out of range"),
        ([0, 1], ValueError, "2 entries but the batch has 3"),
        (torch.tensor([0.0, 1.0, 2.0]), TypeError, "integer"),
        (torch.zeros(3, 1, dtype=torch.long), ValueError, "1-d"),
        (True, TypeError, "bool"),
        ("cat", TypeError, "str"),
        ([(0, 1)] * 3, TypeError, "tuple targets"),
        (None, ValueError, "target` is None"),
    ],
)
def test_format_target_rejects(target, error, match):
    with pytest.raises(error, match=match):
        format_target(target, 3, 4, CPU)


def test_format_target_none_single_output():
    assert format_target(None, 2, 1, CPU).tolist() == [0, 0]


def test_scalar_checks():
    assert check_positive_int(3, "iterations") == 3
    with pytest.raises(ValueError, match="`iterations` must be >= 1"):
        check_positive_int(0, "iterations")
    with pytest.raises(TypeError, match="`iterations` must be an int"):
        check_positive_int(2.0, "iterations")
    with pytest.raises(ValueError, match="`lam`"):
        check_non_negative(-0.1, "lam")
    with pytest.raises(ValueError, match="`game` must be one of"):
        check_choice("chess", "game", ("preservation", "deletion"))


def test_check_model_device_on_meta_device():
    model = torch.nn.Linear(2, 2, device="meta")
    with pytest.raises(ValueError, match="same device"):
        check_model_device(model, torch.rand(1, 2))
