"""course_lib.config: mode, folders, seeds, presets and the strategy."""

import dataclasses

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
    with pytest.raises(ValueError, match="COURSE_MODE must be 'quick' or 'full', not 'fast'"):
        config.mode()


def test_data_dir_override_and_quick_subfolder(monkeypatch, tmp_path):
    monkeypatch.setenv("COURSE_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("COURSE_MODE", "full")
    assert config.data_dir() == tmp_path
    monkeypatch.setenv("COURSE_MODE", "quick")
    assert config.data_dir() == tmp_path / "quick"
    folder = config.checkpoint_dir("judge_sc09")
    assert folder == tmp_path / "quick" / "checkpoints" / "judge_sc09" and folder.is_dir()
    with pytest.raises(ValueError, match="plain folder name"):
        config.checkpoint_dir("../escape")


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

    @classmethod
    def quick(cls):
        return cls(channels=4, epochs=1)


def test_presets_pick_by_mode_and_stay_frozen(monkeypatch):
    monkeypatch.setenv("COURSE_MODE", "quick")
    assert _ToyConfig.for_mode() == _ToyConfig(4, 1)
    assert _ToyConfig.for_mode("full") == _ToyConfig(64, 30)
    cfg = _ToyConfig.for_mode()
    with pytest.raises(dataclasses.FrozenInstanceError):
        cfg.epochs = 3
    assert cfg.replace(epochs=3).epochs == 3 and cfg.epochs == 1
    with pytest.raises(ValueError, match="mode must be"):
        _ToyConfig.for_mode("medium")


def test_a_config_tag_changes_with_any_setting():
    import dataclasses

    @dataclasses.dataclass(frozen=True)
    class Settings(config.Presets):
        width: int = 8
        rates: tuple[int, ...] = (1, 2)

    assert Settings().tag() == Settings().tag() and len(Settings().tag()) == 10
    assert Settings().replace(width=9).tag() != Settings().tag()
    assert Settings(rates=(1, 3)).tag() != Settings().tag()
