"""course_lib.command_line: the summary on stdout and 0, or one ``error:`` line and 2."""

import argparse

import pytest

from course_lib.command_line import EXPECTED_ERRORS, keyword_arguments, run_command


def raising(error: BaseException):
    def work():
        raise error

    return work


def test_the_summary_is_printed_and_the_code_is_zero(capsys):
    assert run_command(lambda: "converted 3 files\ndone in 0.1 s") == 0
    captured = capsys.readouterr()
    assert captured.out == "converted 3 files\ndone in 0.1 s\n" and captured.err == ""


@pytest.mark.parametrize(
    "error",
    [
        ValueError("--sweeps must be at least 1,\n   got 0."),
        FileNotFoundError("--input a.wav does not exist."),
        NotADirectoryError("--data-dir x is not a folder."),
    ],
)
def test_each_expected_error_is_one_line_on_stderr_and_code_2(capsys, error):
    assert type(error) in EXPECTED_ERRORS
    assert run_command(raising(error)) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err == f"error: {' '.join(str(error).split())}\n"
    assert len(captured.err.splitlines()) == 1


def test_a_command_can_expect_more_errors(capsys):
    expected = (*EXPECTED_ERRORS, ConnectionError)
    assert run_command(raising(ConnectionError("cannot reach example.org")), expected) == 2
    assert capsys.readouterr().err == "error: cannot reach example.org\n"


@pytest.mark.parametrize(
    "error", [RuntimeError("a bug"), KeyError("missing"), ConnectionError("not expected here")]
)
def test_an_unexpected_error_propagates(capsys, error):
    with pytest.raises(type(error)):
        run_command(raising(error))
    assert capsys.readouterr().err == ""


def test_keyword_arguments_are_the_options_without_the_subcommand():
    args = argparse.Namespace(command="generate", wav_out_path="a.wav", clips=2)
    assert keyword_arguments(args) == {"wav_out_path": "a.wav", "clips": 2}
    assert keyword_arguments(argparse.Namespace(input_path="in.wav")) == {"input_path": "in.wav"}
