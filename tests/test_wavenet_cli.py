"""python -m course_lib.wavenet: train, resume and generate on a tiny config; clear errors."""

import json
import os
import re
import subprocess
import sys

import keras
import numpy as np
import pytest
import soundfile

from course_lib import audio, data
from course_lib.wavenet import checkpoints
from course_lib.wavenet.__main__ import main


def _tone(frequency, rate, seconds=0.5):
    return 0.5 * np.sin(2 * np.pi * frequency * np.arange(int(rate * seconds)) / rate)


@pytest.fixture
def word_folder(tmp_path):
    """Two labels in the Speech Commands layout, at two sample rates."""
    folder = tmp_path / "words"
    for label, frequency in (("low", 220.0), ("high", 880.0)):
        (folder / label).mkdir(parents=True)
        soundfile.write(folder / label / "a.wav", _tone(frequency, 8000), 8000)
        soundfile.write(folder / label / "b.wav", _tone(frequency * 1.05, 16000), 16000)
    return folder


def _steps_in(logdir):
    model = keras.saving.load_model(logdir / "model.keras")
    return int(model.optimizer.iterations.numpy())


@pytest.mark.slow
def test_train_resumes_where_it_stopped_and_generates_a_wav(word_folder, tmp_path, capsys):
    logdir = tmp_path / "logdir"
    common = ["train", "--data-dir", str(word_folder), "--logdir", str(logdir), "--quick"]
    assert main([*common, "--steps", "4", "--checkpoint-every", "2", "--batch-size", "2"]) == 0
    first = capsys.readouterr().out
    assert "4 clips" in first and "step 2:" in first and "step 4:" in first
    assert "trained steps 0 -> 4 in" in first and f"checkpoint {logdir / 'model.keras'}" in first
    saved = json.loads((logdir / "wavenet_config.json").read_text())
    assert saved["label_names"] == ["high", "low"]
    assert saved["config"]["batch_size"] == 2 and saved["config"]["sample_rate"] == 4000
    assert _steps_in(logdir) == 4

    assert main([*common, "--steps", "6", "--checkpoint-every", "2"]) == 0
    second = capsys.readouterr().out
    assert "resuming from step 4" in second
    assert "step 6:" in second and "step 2:" not in second  # continues, does not restart
    assert _steps_in(logdir) == 6
    losses = checkpoints.read_losses(logdir)
    assert losses["step"] == [2, 4, 6]
    assert all(np.isfinite(losses["loss"])) and f"step 6: loss {losses['loss'][-1]:.4f}" in second

    other = tmp_path / "other_logdir"
    assert (
        main(
            [
                "train",
                "--data-dir",
                str(word_folder),
                "--logdir",
                str(other),
                "--restore-from",
                str(logdir),
                "--steps",
                "7",
            ]
        )
        == 0
    )
    assert "resuming from step 6" in capsys.readouterr().out
    assert _steps_in(other) == 7

    out_path = tmp_path / "generated.wav"
    seed_path = word_folder / "low" / "a.wav"
    assert (
        main(
            [
                "generate",
                "--logdir",
                str(logdir),
                "--samples",
                "300",
                "--wav-out-path",
                str(out_path),
                "--label",
                "low",
                "--seed",
                "3",
                "--seed-wav",
                str(seed_path),
                "--temperature",
                "0.9",
            ]
        )
        == 0
    )
    assert "wrote 1 x 300 samples" in capsys.readouterr().out
    samples, rate = soundfile.read(out_path)
    assert samples.shape == (300,) and rate == 4000

    assert (
        main(
            [
                "generate",
                "--logdir",
                str(logdir),
                "--samples",
                "10",
                "--wav-out-path",
                str(out_path),
                "--label",
                "maybe",
            ]
        )
        == 2
    )
    error = capsys.readouterr().err.strip().splitlines()
    assert error == ["error: unknown label 'maybe'; this model knows: high, low."]

    # The quick preset guides (w = 3, saved with the settings); --guidance 1 samples plainly.
    assert saved["config"]["p_uncond"] == 0.1 and saved["config"]["guidance"] == 3.0
    assert checkpoints.load_checkpoint(logdir).no_label == 2
    generate = ["generate", "--logdir", str(logdir), "--samples", "20", "--label", "low"]
    plain = tmp_path / "plain.wav"
    assert main([*generate, "--wav-out-path", str(plain), "--guidance", "1", "--seed", "3"]) == 0
    guided = tmp_path / "guided.wav"
    assert main([*generate, "--wav-out-path", str(guided), "--seed", "3"]) == 0
    assert soundfile.read(plain)[0].shape == soundfile.read(guided)[0].shape == (20,)
    capsys.readouterr()
    assert main([*generate, "--wav-out-path", str(plain), "--guidance", "-1"]) == 2
    error = capsys.readouterr().err.strip().splitlines()
    assert error == ["error: guidance must be >= 0 (1 = plain conditional), got -1.0."]


@pytest.mark.slow
def test_one_label_trains_an_unconditional_wavenet_without_guidance(tmp_path, capsys):
    from course_lib.wavenet.logdir import generate_into_wav, read_logdir

    folder = tmp_path / "one_label" / "hum"
    folder.mkdir(parents=True)
    soundfile.write(folder / "a.wav", _tone(330.0, 4000), 4000)
    logdir = tmp_path / "logdir"
    arguments = ["--data-dir", str(folder.parent), "--logdir", str(logdir), "--quick"]
    assert main(["train", *arguments, "--steps", "2", "--checkpoint-every", "2"]) == 0
    saved = read_logdir(logdir)
    assert saved["label_names"] == [] and checkpoints.load_checkpoint(logdir).no_label is None
    assert (saved["config"].p_uncond, saved["config"].guidance) == (0.0, 1.0)
    out = tmp_path / "hum.wav"
    assert "wrote 1 x 30 samples" in generate_into_wav(logdir, 30, out, seed=1)
    with pytest.raises(ValueError, match="trained with label dropout"):
        generate_into_wav(logdir, 30, out, guidance=2.0)


def test_train_wavenet_trains_every_setting_of_the_given_config(word_folder, tmp_path, capsys):
    from course_lib import training
    from course_lib.wavenet import WaveNetConfig
    from course_lib.wavenet.logdir import read_logdir, train_wavenet

    cfg = WaveNetConfig.quick().replace(
        dilations=(1, 2),
        residual_channels=4,
        dilation_channels=6,
        skip_channels=5,
        batch_size=2,
        target_length=50,
        steps=2,
        checkpoint_every=2,
        temperature=0.5,
    )
    logdir = tmp_path / "logdir"
    trained = train_wavenet(cfg, word_folder, logdir)
    assert trained.extras["start_step"] == 0 and trained.history["step"] == [2]
    assert "4 clips" in capsys.readouterr().out
    assert read_logdir(logdir)["config"] == cfg and _steps_in(logdir) == 2
    assert checkpoints.load_checkpoint(logdir).receptive_field == cfg.receptive_field
    energy_bill = training.read_energy(logdir)  # the session that trained was measured
    assert energy_bill.seconds > 0
    assert train_wavenet(cfg, word_folder, logdir).extras["start_step"] == 2
    assert training.read_energy(logdir) == energy_bill  # a restore adds nothing

    # The command line restores the saved settings and says there is nothing to do.
    assert main(["train", "--data-dir", str(word_folder), "--logdir", str(logdir)]) == 0
    assert "already trained to step 2 (steps 2); nothing to do." in capsys.readouterr().out


def test_the_generate_options_are_generate_into_wavs_arguments(tmp_path):
    import inspect

    from course_lib.command_line import keyword_arguments
    from course_lib.wavenet.__main__ import build_parser
    from course_lib.wavenet.logdir import generate_into_wav

    argv = ["generate", "--logdir", str(tmp_path), "--samples", "5", "--wav-out-path", "a.wav"]
    options = keyword_arguments(build_parser().parse_args(argv))
    assert set(options) == set(inspect.signature(generate_into_wav).parameters)


def _converted_words(tmp_path, rate=4000, clip_samples=1000):
    """A converted dataset of two words, tones of 0.25 s in 1,000-sample clips."""
    examples = [
        data.serialize_example(
            audio.to_pcm16(_tone(300.0 + 100 * label, rate, 0.25)), rate, label, "ab"[label]
        )
        for label in (0, 1, 0, 1)
    ]
    converted = tmp_path / "converted"
    converted.mkdir()
    data.write_shard(converted / data.shard_name("train", 0, 1), examples)
    data.write_manifest(
        converted,
        data.Manifest(rate, clip_samples, ["a", "b"], {"train": {"examples": 4, "shards": 1}}),
    )
    return converted


@pytest.mark.slow  # the command line's training
def test_train_on_a_converted_dataset(tmp_path, capsys):
    rate = 4000
    converted = _converted_words(tmp_path, rate)
    logdir = tmp_path / "logdir"
    assert (
        main(
            [
                "train",
                "--data-dir",
                str(converted),
                "--logdir",
                str(logdir),
                "--quick",
                "--steps",
                "2",
                "--checkpoint-every",
                "2",
            ]
        )
        == 0
    )
    assert "converted dataset" in capsys.readouterr().out
    saved = json.loads((logdir / "wavenet_config.json").read_text())
    assert saved["label_names"] == ["a", "b"] and saved["config"]["sample_rate"] == rate
    assert (
        main(
            [
                "train",
                "--data-dir",
                str(converted),
                "--logdir",
                str(tmp_path / "x"),
                "--sample-rate",
                "8000",
            ]
        )
        == 2
    )
    assert "converted at 4000 Hz" in capsys.readouterr().err


@pytest.mark.slow  # two short trainings
def test_train_wavenet_tells_the_word_over_time_and_stops_once_its_minutes_are_spent(
    word_folder, tmp_path, capsys
):
    from course_lib import training
    from course_lib.wavenet import WaveNetConfig
    from course_lib.wavenet.logdir import read_logdir, train_wavenet

    converted = _converted_words(tmp_path)
    cfg = WaveNetConfig.quick().replace(
        dilations=(1, 2),
        residual_channels=4,
        dilation_channels=4,
        skip_channels=4,
        batch_size=2,
        target_length=50,
        label_frames=4,
        word_onset_seconds=0.05,
        steps=100,
        checkpoint_every=2,
        training_minutes=1e-4,  # 6 ms: the first interval spends it
    )
    logdir = tmp_path / "logdir"
    trained = train_wavenet(cfg, converted, logdir)
    assert trained.history["step"] == [2] and training.training_seconds(logdir) > 0.006
    model = checkpoints.load_checkpoint(logdir)
    assert (model.label_frames, model.clip_samples) == (4, 1000)
    assert checkpoints.intervals_to_train(logdir, cfg, 2) == 0
    assert checkpoints.intervals_to_train(logdir, cfg.replace(training_minutes=0.0), 2) == 49
    again = train_wavenet(cfg, converted, logdir)  # the minutes are spent: restored only
    assert again.extras["start_step"] == 2 and _steps_in(logdir) == 2
    capsys.readouterr()

    # Audio files of any length have no clip positions to tell: one vector per clip.
    folder_logdir = tmp_path / "folder_logdir"
    train_wavenet(cfg.replace(steps=2, training_minutes=0.0), word_folder, folder_logdir)
    assert "so one label vector per clip" in capsys.readouterr().out
    assert read_logdir(folder_logdir)["config"].label_frames == 0
    assert checkpoints.load_checkpoint(folder_logdir).label_frames == 0


TF_STARTUP_LINE = re.compile(r"(WARNING: All log messages before absl::InitializeLog|[IWEF]\d{4} )")


def _run_cli(*arguments):
    environment = {**os.environ, "COURSE_MODE": "quick"}
    return subprocess.run(
        [sys.executable, "-m", "course_lib.wavenet", *arguments],
        capture_output=True,
        text=True,
        env=environment,
        timeout=600,
    )


def test_a_folder_without_usable_audio_gives_one_error_line_and_exit_2(tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "notes.txt").write_text("not audio")
    (empty / "broken.wav").write_bytes(b"RIFF0000WAVEnot really")
    result = _run_cli("train", "--data-dir", str(empty), "--logdir", str(tmp_path / "logs"))
    assert result.returncode == 2
    # TensorFlow 2.21 (not Colab's 2.20) writes start-up lines through absl before it reads
    # TF_CPP_MIN_LOG_LEVEL (see tests/test_package.py): they are TensorFlow's, not ours.
    lines = [line for line in result.stderr.strip().splitlines() if not TF_STARTUP_LINE.match(line)]
    assert len(lines) == 1 and lines[0].startswith("error: no usable audio in ")
    assert "broken.wav" in lines[0]
    assert result.stdout == ""
    assert not (tmp_path / "logs").exists()


def test_other_mistakes_give_one_error_line(tmp_path, capsys):
    assert (
        main(["train", "--data-dir", str(tmp_path / "missing"), "--logdir", str(tmp_path / "logs")])
        == 2
    )
    assert capsys.readouterr().err.startswith("error: --data-dir")
    assert (
        main(
            [
                "generate",
                "--logdir",
                str(tmp_path),
                "--samples",
                "5",
                "--wav-out-path",
                str(tmp_path / "x.wav"),
            ]
        )
        == 2
    )
    assert "run `python -m course_lib.wavenet train` first" in capsys.readouterr().err
