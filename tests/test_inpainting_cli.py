"""python -m course_lib.inpainting and course_lib.inpainting.effect: saving and loading an
effect, a WAV of the input's length out, and one error line with exit 2 for bad arguments
(before TensorFlow loads)."""

import json
import os
import subprocess
import sys

import keras
import numpy as np
import pytest
import soundfile

from course_lib import audio
from course_lib.inpainting import CodeNaiveBayes, effect
from course_lib.inpainting.__main__ import main
from course_lib.vq import VQConfig, build_vq_vae, spectrogram_images
from data_prep.fixtures import make_fixtures

CFG = VQConfig.quick()


@pytest.fixture(scope="module")
def effect_dir(tmp_path_factory):
    """An effect folder: a quick VQ-VAE after one epoch on a few fixture notes (its
    codebook initialised on their encoder outputs) and Naive Bayes on its code maps."""
    root = make_fixtures(tmp_path_factory.mktemp("fixtures"), kind="notes", per_class=2).nsynth
    folder = root / "nsynth-valid" / "audio"
    notes = np.stack(
        [audio.load_audio(path, CFG.sample_rate)[0] for path in sorted(folder.glob("*.wav"))]
    )
    images = spectrogram_images(notes, CFG.spec)
    keras.utils.set_random_seed(0)
    model = build_vq_vae(cfg=CFG)
    model.fit(images, epochs=1, batch_size=len(images), verbose=0)
    naive_bayes = CodeNaiveBayes(CFG.codebook_size, radius=1).fit(model.encode_codes(images))
    out = tmp_path_factory.mktemp("effect")
    effect.save_effect(out, model, naive_bayes, CFG.spec, sweeps=2, griffin_lim_iterations=4)
    return {"folder": out, "model": model, "images": images, "note": notes[0]}


@pytest.fixture()
def input_wav(tmp_path):
    """A 2.3 s stereo WAV at 22.05 kHz: not the model's rate, length or channel count."""
    rate = 22050
    time_axis = np.arange(round(2.3 * rate)) / rate
    tone = 0.4 * np.sin(2 * np.pi * 330 * time_axis) * np.exp(-time_axis)
    path = tmp_path / "in.wav"
    soundfile.write(path, np.stack([tone, 0.5 * tone], axis=1), rate, subtype="PCM_16")
    return path


def test_effect_folder_round_trip(effect_dir):
    settings = json.loads((effect_dir["folder"] / effect.SETTINGS_NAME).read_text())
    assert settings["spectrogram"]["frame_step"] == CFG.frame_step
    assert settings["sweeps"] == 2 and settings["codebook_size"] == CFG.codebook_size
    loaded = effect.load_effect(effect_dir["folder"])
    assert loaded.spec == CFG.spec and loaded.griffin_lim_iterations == 4
    np.testing.assert_array_equal(
        loaded.vq_model.encode_codes(effect_dir["images"]),
        effect_dir["model"].encode_codes(effect_dir["images"]),
    )
    assert loaded.naive_bayes.pair_counts.sum() > 0


def test_writes_a_wav_with_the_inputs_rate_and_length(effect_dir, input_wav, tmp_path):
    output = tmp_path / "out.wav"
    command = [
        sys.executable,
        "-m",
        "course_lib.inpainting",
        "--input",
        str(input_wav),
        "--output",
        str(output),
        "--time",
        "0.5:1.5",
        "--freq",
        "200:3000",
        "--model",
        str(effect_dir["folder"]),
        "--temperature",
        "2",
        "--seed",
        "3",
    ]
    done = subprocess.run(
        command,
        capture_output=True,
        text=True,
        timeout=600,
        env={**os.environ, "CUDA_VISIBLE_DEVICES": ""},
    )
    assert done.returncode == 0, done.stderr
    assert "wrote" in done.stdout
    info = soundfile.info(output)
    original = soundfile.info(input_wav)
    assert (info.samplerate, info.frames, info.channels) == (
        original.samplerate,
        original.frames,
        1,
    )
    samples, _ = soundfile.read(output)
    assert np.abs(samples).max() > 0.01


def test_in_process_run_keeps_the_length_and_reports(effect_dir, input_wav, tmp_path, capsys):
    output = tmp_path / "out.wav"
    arguments = ["--input", str(input_wav), "--output", str(output), "--time", "0:1"]
    arguments += ["--freq", "0:8000", "--model", str(effect_dir["folder"]), "--sweeps", "1"]
    assert main(arguments) == 0
    assert soundfile.info(output).frames == soundfile.info(input_wav).frames
    assert "changed" in capsys.readouterr().out


def test_the_library_function_writes_what_the_command_line_writes(
    effect_dir, input_wav, tmp_path, capsys
):
    by_command, by_function = tmp_path / "command.wav", tmp_path / "function.wav"
    arguments = ["--input", str(input_wav), "--time", "0.5:1.5", "--freq", "200:3000"]
    arguments += ["--model", str(effect_dir["folder"]), "--temperature", "2", "--seed", "3"]
    assert main([*arguments, "--output", str(by_command)]) == 0
    printed = capsys.readouterr().out
    summary = effect.inpaint_file(
        input_wav,
        by_function,
        (0.5, 1.5),
        (200.0, 3000.0),
        model=effect_dir["folder"],
        temperature=2.0,
        seed=3,
    )
    assert summary.startswith(f"wrote {by_function} (2.30 s at 22050 Hz): resampled ")
    # the same line but for the output's name and the time taken
    same = printed.replace(str(by_command), str(by_function)).rsplit(" in ", 1)[0]
    assert same == summary.rsplit(" in ", 1)[0]
    assert by_command.read_bytes() == by_function.read_bytes()


def test_the_library_function_raises_the_command_lines_errors(effect_dir, input_wav, tmp_path):
    output = tmp_path / "out.wav"
    with pytest.raises(ValueError, match="--time starts at 3 s but"):
        effect.inpaint_file(input_wav, output, (3, 4), (100, 1000), model=effect_dir["folder"])
    with pytest.raises(ValueError, match="--freq range 1000:100 must satisfy 0 <= START < STOP"):
        effect.inpaint_file(input_wav, output, (0, 1), (1000, 100), model=effect_dir["folder"])
    assert not output.exists()


def test_the_options_are_inpaint_files_arguments():
    import inspect

    from course_lib.command_line import keyword_arguments
    from course_lib.inpainting.__main__ import build_parser

    argv = ["--input", "a.wav", "--output", "b.wav", "--time", "0:1", "--freq", "0:100"]
    options = keyword_arguments(build_parser().parse_args(argv))
    assert set(options) == set(inspect.signature(effect.inpaint_file).parameters)
    assert options["time_range"] == (0.0, 1.0) and options["freq_range"] == (0.0, 100.0)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"--time": "1.5:0.5"}, "--time: range '1.5:0.5' must satisfy 0 <= START < STOP"),
        ({"--time": "abc"}, "is not a range START:STOP in seconds"),
        ({"--time": "3:4"}, "--time starts at 3 s but"),
        ({"--freq": "9000:10000"}, "at or above the model's Nyquist frequency 4000 Hz"),
        ({"--freq": "-5:100"}, "argument --freq: expected one argument"),
        ({"--input": "missing.wav"}, "--input missing.wav does not exist"),
        ({"--input": "not_audio.wav"}, "is not usable audio"),
        ({"--model": "no_effect_here"}, "holds no trained effect"),
        ({"--sweeps": "0"}, "--sweeps must be at least 1"),
        ({"--temperature": "-1"}, "--temperature must be >= 0"),
    ],
)
def test_bad_arguments_print_one_error_line_and_exit_2(
    change, message, effect_dir, input_wav, tmp_path, monkeypatch, capsys
):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "not_audio.wav").write_text("these are not samples")
    (tmp_path / "no_effect_here").mkdir()
    values = {
        "--input": str(input_wav),
        "--output": str(tmp_path / "out.wav"),
        "--time": "0.5:1.0",
        "--freq": "100:1000",
        "--model": str(effect_dir["folder"]),
        **change,
    }
    arguments = [item for pair in values.items() for item in pair]
    try:
        code = main(arguments)
    except SystemExit as stop:  # argparse's own errors
        code = stop.code
    captured = capsys.readouterr()
    assert code == 2
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), captured.err
    assert message in lines[0]
    assert not (tmp_path / "out.wav").exists()


def test_a_bad_argument_fails_fast_without_loading_tensorflow(tmp_path):
    code = (
        "import sys; from course_lib.inpainting.__main__ import main; "
        "status = main(['--input', 'x.wav', '--output', 'y.wav', '--time', '0:1', "
        "'--freq', '0:100', '--model', '.']); "
        "print('tensorflow' in sys.modules); sys.exit(status)"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=600, cwd=tmp_path
    )
    assert done.returncode == 2
    assert done.stdout.strip() == "False"
    assert done.stderr.strip() == "error: --input x.wav does not exist."
