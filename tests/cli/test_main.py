import sys

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


def test_version_is_the_installed_distributions(capsys):
    from importlib.metadata import version

    main(["--version"])
    assert capsys.readouterr().out == f"captum-ext {version('captum-ext')}\n"


def test_console_script_version_and_unknown_method_in_a_subprocess(tmp_path):
    """The real console script: one stderr line, exit status 2, no traceback."""
    import shutil
    import subprocess
    import sys
    from pathlib import Path

    script = shutil.which("captum-ext", path=str(Path(sys.executable).parent))
    assert script is not None
    done = subprocess.run([script, "--version"], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0 and done.stdout.startswith("captum-ext ")
    done = subprocess.run(
        [script, "evaluate", "--methods", "[nosuch]", "--output_dir", str(tmp_path / "out")],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 2
    assert done.stderr.splitlines() == [
        "captum-ext evaluate: error: unknown method 'nosuch' in --methods; available: "
        + ", ".join(_registry())
    ]
    assert not (tmp_path / "out").exists()  # refused before any work


def _registry():
    from captum_ext.evaluation.methods import available_methods

    return available_methods()


@pytest.mark.parametrize(
    "command", ["evaluate", "evaluate-explainer", "evaluate-generative", "demo"]
)
def test_unknown_methods_are_one_line_errors(command, capsys, tmp_path):
    with pytest.raises(SystemExit) as info:
        main([command, "--methods", "[gradcam, nosuch, shap]", "--output_dir", str(tmp_path)])
    assert info.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith(f"captum-ext {command}: error: unknown methods 'nosuch', 'shap' in")
    assert len(err.splitlines()) == 1


def test_unknown_attribution_class_is_a_one_line_error(capsys, tmp_path):
    with pytest.raises(SystemExit) as info:
        main(["attribute-dataset", str(tmp_path / "out"), "--method", "NoSuch"])
    assert info.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith("captum-ext attribute-dataset: error: `method` 'NoSuch' is neither")
    assert len(err.splitlines()) == 1 and not (tmp_path / "out").exists()


def test_sub_command_usage_and_tip_name_the_sub_command(capsys):
    with pytest.raises(SystemExit) as info:
        main(["evaluate", "--no_such_option", "1"])
    assert info.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith("usage: captum-ext evaluate [")
    assert "tip: For details of accepted options run: captum-ext evaluate --help" in err
    with pytest.raises(SystemExit):
        main(["evaluate", "--help"])
    assert capsys.readouterr().out.startswith("usage: captum-ext evaluate [")
    with pytest.raises(SystemExit):  # LightningCLI sub-commands too
        main(["train-classifier", "--help"])
    assert capsys.readouterr().out.startswith("usage: captum-ext train-classifier [")
    assert sys.argv[0] != "captum-ext train-classifier"  # restored
