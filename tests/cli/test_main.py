import pytest

from captum_ext.cli.main import COMMANDS, main


def test_usage_lists_commands(capsys):
    main([])
    out = capsys.readouterr().out
    assert all(name in out for name in COMMANDS)


def test_unknown_command_exits_with_usage(capsys):
    with pytest.raises(SystemExit) as info:
        main(["frobnicate"])
    assert info.value.code == 2
    assert "unknown command 'frobnicate'" in capsys.readouterr().err


def test_unknown_preset_is_a_clear_error():
    with pytest.raises(SystemExit, match="unknown preset 'nope'"):
        main(["train-classifier", "--preset", "nope"])
