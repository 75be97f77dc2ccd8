"""course_lib.config: mode, folders, seeds, presets and the strategy."""

import dataclasses
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import pytest
import tensorflow as tf

from course_lib import config


def test_mode_defaults_to_full_and_reads_quick(monkeypatch):
    monkeypatch.delenv("COURSE_MODE", raising=False)
    assert config.mode() == "full"
    monkeypatch.setenv("COURSE_MODE", " Quick ")
    assert config.mode() == "quick"
    assert config.is_quick()


def test_unknown_mode_names_the_variable(monkeypatch):
    monkeypatch.setenv("COURSE_MODE", "fast")
    with pytest.raises(
        ValueError, match="COURSE_MODE must be one of quick, laptop, full, rehearsal, not 'fast'"
    ):
        config.mode()


def test_data_dir_override_and_quick_subfolder(monkeypatch, tmp_path):
    monkeypatch.setenv("COURSE_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("COURSE_MODE", "full")
    assert config.data_dir() == tmp_path
    monkeypatch.setenv("COURSE_MODE", "rehearsal")
    assert config.data_dir() == tmp_path / "rehearsal" and config.uses_fixtures()
    monkeypatch.setenv("COURSE_MODE", "laptop")  # quick mode's fixtures and judge
    assert config.data_dir() == tmp_path / "quick" and config.uses_fixtures()
    monkeypatch.setenv("COURSE_MODE", "quick")
    assert config.data_dir() == tmp_path / "quick" and config.uses_fixtures()
    folder = config.checkpoint_dir("judge_sc09")
    assert folder == tmp_path / "quick" / "checkpoints" / "judge_sc09" and folder.is_dir()
    assert config.checkpoint_root() == folder.parent
    with pytest.raises(ValueError, match="plain folder name"):
        config.checkpoint_dir("../escape")


def test_scratch_dir_is_on_the_local_disk_never_on_drive(monkeypatch, tmp_path):
    """Archives and WAV files go to the scratch folder: ``COURSE_SCRATCH_DIR``, the
    runtime's disk on Colab (even when the data folder is on Drive), else a ``scratch``
    folder inside the (local) data folder."""
    for name in ("COURSE_SCRATCH_DIR", "COLAB_RELEASE_TAG"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("COURSE_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("COURSE_MODE", "full")
    assert config.scratch_dir() == tmp_path / "data" / "scratch"
    monkeypatch.setenv("COURSE_MODE", "quick")
    assert config.scratch_dir() == tmp_path / "data" / "quick" / "scratch"

    monkeypatch.setenv("COLAB_RELEASE_TAG", "release-colab_20261101")
    monkeypatch.setattr(config, "COLAB_SCRATCH_FOLDER", tmp_path / "content" / "course_scratch")
    monkeypatch.setattr(config, "DRIVE_MOUNT", tmp_path / "drive")
    monkeypatch.setenv("COURSE_DATA_DIR", str(tmp_path / "drive" / "MyDrive" / "data"))
    assert config.scratch_dir() == tmp_path / "content" / "course_scratch" / "quick"
    monkeypatch.setenv("COURSE_MODE", "full")
    assert config.scratch_dir() == tmp_path / "content" / "course_scratch"
    assert config.on_drive(config.data_dir()) and not config.on_drive(config.scratch_dir())

    monkeypatch.setenv("COURSE_SCRATCH_DIR", str(tmp_path / "fast"))
    assert config.scratch_dir() == tmp_path / "fast" and config.scratch_dir().is_dir()


def test_tpu_runtime_and_download_mirror_come_from_the_environment(monkeypatch):
    for name in ("COLAB_TPU_ADDR", "TPU_NAME", "COURSE_DOWNLOAD_MIRROR"):
        monkeypatch.delenv(name, raising=False)
    assert not config.on_tpu() and config.download_mirror() is None
    monkeypatch.setenv("TPU_NAME", "local")
    monkeypatch.setenv("COURSE_DOWNLOAD_MIRROR", "http://mirror.school/data/")
    assert config.on_tpu() and config.download_mirror() == "http://mirror.school/data/"
    monkeypatch.setenv("COURSE_DOWNLOAD_MIRROR", "")
    assert config.download_mirror() is None


def test_only_config_reads_the_environment():
    """Settings are read in ``config`` and passed down: no other module of the kit looks
    at ``os.environ`` (``course_lib/__init__`` only sets TensorFlow's variables)."""
    root = Path(config.__file__).resolve().parent.parent
    readers = [
        str(path.relative_to(root))
        for folder in ("course_lib", "data_prep")
        for path in sorted((root / folder).rglob("*.py"))
        if path.name != "config.py"
        and re.search(r"os\.environ(?!\.setdefault)|os\.getenv", path.read_text())
    ]
    # espeak.py hands the whole environment to the eSpeak NG subprocess it starts.
    assert readers == ["data_prep/espeak.py"], readers


def test_colab_detection(monkeypatch):
    monkeypatch.delenv("COLAB_RELEASE_TAG", raising=False)
    assert not config.in_colab()
    monkeypatch.setenv("COLAB_RELEASE_TAG", "release-colab_20261101")
    assert config.in_colab()


def test_set_seed_makes_numpy_and_tensorflow_repeatable():
    config.set_seed(7)
    first = (np.random.rand(3), tf.random.uniform([3]).numpy())
    config.set_seed(7)
    second = (np.random.rand(3), tf.random.uniform([3]).numpy())
    np.testing.assert_array_equal(first[0], second[0])
    np.testing.assert_array_equal(first[1], second[1])


def test_strategy_without_accelerators_is_the_default_one():
    strategy = config.strategy()
    assert strategy.num_replicas_in_sync == 1
    assert isinstance(strategy, type(tf.distribute.get_strategy()))


@dataclasses.dataclass(frozen=True)
class _ToyConfig(config.Presets):
    channels: int = 64
    epochs: int = 30

    REHEARSAL_COUNTS: ClassVar[Mapping[str, Any]] = dict(epochs=2)

    @classmethod
    def quick(cls):
        return cls(channels=4, epochs=1)


def test_presets_pick_by_mode_and_stay_frozen(monkeypatch):
    monkeypatch.setenv("COURSE_MODE", "quick")
    assert _ToyConfig.for_mode() == _ToyConfig(4, 1)
    assert _ToyConfig.for_mode("full") == _ToyConfig(64, 30)
    assert _ToyConfig.for_mode("rehearsal") == _ToyConfig(64, 2)  # full shapes, few epochs
    assert _ToyConfig.for_mode("laptop") == _ToyConfig(4, 1)  # quick unless sized for it
    cfg = _ToyConfig.for_mode()
    with pytest.raises(dataclasses.FrozenInstanceError):
        cfg.epochs = 3
    assert cfg.replace(epochs=3).epochs == 3 and cfg.epochs == 1
    with pytest.raises(ValueError, match="mode must be"):
        _ToyConfig.for_mode("medium")
    monkeypatch.setenv("COURSE_MODE", "rehearsal")
    assert _ToyConfig.for_mode() == _ToyConfig(64, 2) and not config.is_quick()


def test_a_config_tag_changes_with_any_setting():
    import dataclasses

    @dataclasses.dataclass(frozen=True)
    class Settings(config.Presets):
        width: int = 8
        rates: tuple[int, ...] = (1, 2)

    assert Settings().tag() == Settings().tag() and len(Settings().tag()) == 10
    assert Settings().replace(width=9).tag() != Settings().tag()
    assert Settings(rates=(1, 3)).tag() != Settings().tag()


@dataclasses.dataclass(frozen=True)
class _Spectrogram:
    frame_length: int = 256
    griffin_lim_iterations: int = config.not_training(32)


@dataclasses.dataclass(frozen=True)
class _MarkedConfig(config.Presets):
    channels: int = 16
    layers: int = 4
    learning_rate: float = 1e-3
    epochs: int = 10
    spectrogram: _Spectrogram = _Spectrogram()
    guidance: float = config.not_training(2.0)
    score_clips: int = config.not_training(100)


def test_tag_leaves_out_fields_marked_not_training():
    cfg = _MarkedConfig()
    assert _MarkedConfig.training_fields() == (
        "channels",
        "layers",
        "learning_rate",
        "epochs",
        "spectrogram",
    )
    assert cfg.replace(guidance=7.5).tag() == cfg.tag()
    assert cfg.replace(score_clips=3).tag() == cfg.tag()
    assert cfg.replace(guidance=0.0, score_clips=1).tag() == cfg.tag()
    nested = _Spectrogram(griffin_lim_iterations=4)
    assert cfg.replace(spectrogram=nested).tag() == cfg.tag()
    # marked fields stay ordinary dataclass fields
    assert cfg.replace(guidance=7.5).guidance == 7.5 and dataclasses.asdict(cfg)["guidance"] == 2.0


@pytest.mark.parametrize(
    "changes",
    [
        {"channels": 32},
        {"layers": 5},
        {"learning_rate": 2e-3},
        {"epochs": 11},
        {"spectrogram": _Spectrogram(frame_length=512)},
        {"channels": 32, "guidance": 7.5},
    ],
)
def test_tag_changes_with_every_training_field_nested_ones_included(changes):
    cfg = _MarkedConfig()
    assert cfg.replace(**changes).tag() != cfg.tag()


def _real_configs():
    from course_lib.diffusion import DiffusionConfig
    from course_lib.judge import JudgeConfig
    from course_lib.vae import VAEConfig
    from course_lib.vq import VQConfig
    from course_lib.wavenet import WaveNetConfig

    # class: (its sampling, scoring and display changes, some training changes)
    return {
        DiffusionConfig: (
            {"sampler": "ddpm", "ddim_steps": 12, "eta": 0.5, "guidance": 3.5, "score_clips": 7},
            {
                "learning_rate": 5e-5,
                "residual_channels": 8,
                "residual_layers": 3,
                "epochs": 3,
                "diffusion_steps": 150,
                "p_uncond": 0.2,
                "ema_decay": 0.9,
            },
        ),
        VAEConfig: (
            {
                "griffin_lim_iterations": 4,
                "score_clips": 7,
                "sweep": ((2.0, 8),),
                "sweep_epochs": 3,
                "waveform_epochs": 7,
                "prior_components": 3,
            },
            {
                "learning_rate": 5e-4,
                "widths": (4, 8),
                "latent_dim": 3,
                "epochs": 2,
                "beta": 0.5,
                "warmup_steps": 7,
                "training_minutes": 5.0,
            },
        ),
        VQConfig: (
            {
                "griffin_lim_iterations": 4,
                "radius": 2,
                "sweeps": 1,
                "temperature": 0.5,
                "prior_radius": 3,
                "prior_sweeps": 2,
            },
            {
                "learning_rate": 5e-4,
                "widths": (4, 8),
                "codebook_size": 5,
                "code_dim": 3,
                "epochs": 2,
                "digit_epochs": 1,
                "min_db": -60.0,
            },
        ),
        WaveNetConfig: (
            {"temperature": 0.5, "guidance": 2.0, "generate_seconds": 2.0, "score_clips": 3},
            {
                "learning_rate": 5e-4,
                "p_uncond": 0.2,
                "residual_channels": 8,
                "dilations": (1, 2),
                "steps": 7,
                "batch_size": 3,
                "target_length": 99,
                "word_onset_seconds": 0.3,
                "training_minutes": 5.0,
            },
        ),
        JudgeConfig: (
            {"score_splits": 3, "sweep_clips": 7},
            {"learning_rate": 5e-4, "widths": (4, 8), "embedding_dim": 5, "epochs": 2},
        ),
    }


@pytest.mark.parametrize("preset", ["quick", "full"])
def test_real_configs_tag_only_their_training_fields(preset):
    for cls, (sampling, training) in _real_configs().items():
        cfg = cls.for_mode(preset)
        marked = {field.name for field in dataclasses.fields(cls)} - set(cls.training_fields())
        assert marked == set(sampling), cls.__name__
        for name, value in sampling.items():
            assert getattr(cfg, name) != value, (cls.__name__, name)
            assert cfg.replace(**{name: value}).tag() == cfg.tag(), (cls.__name__, name)
        assert cfg.replace(**sampling).tag() == cfg.tag(), cls.__name__
        for name, value in training.items():
            assert getattr(cfg, name) != value, (cls.__name__, name)
            changed = cfg.replace(**sampling, **{name: value})
            assert changed.tag() != cfg.tag(), (cls.__name__, name)


@pytest.mark.parametrize("name", ["DiffusionConfig", "VQConfig", "VAEConfig", "WaveNetConfig"])
def test_a_negative_training_budget_is_refused_and_zero_means_none(name):
    from course_lib.diffusion import DiffusionConfig
    from course_lib.vae import VAEConfig
    from course_lib.vq import VQConfig
    from course_lib.wavenet import WaveNetConfig

    preset = {
        "DiffusionConfig": DiffusionConfig,
        "VQConfig": VQConfig,
        "VAEConfig": VAEConfig,
        "WaveNetConfig": WaveNetConfig,
    }[name]
    assert preset.full().training_minutes == 0.0 and preset.laptop().training_minutes == 20.0
    with pytest.raises(ValueError, match=r"training_minutes must be >= 0, got -0\.5\."):
        preset.full().replace(training_minutes=-0.5)
