"""course_lib.course_models, notebook 07's way back to every model through
training.train_or_restore: train once, restore afterwards (same weights, no training, no
new energy), keyed on the training settings only."""

import keras
import numpy as np
import pytest

from course_lib import config, course_models, training
from data_prep import prepare

pytestmark = pytest.mark.slow  # each trains a model, then restores it


@pytest.fixture
def checkpoint_root(tmp_path, monkeypatch):
    """The checkpoint folder a notebook passes, in a data folder of this test's own."""
    monkeypatch.setenv("COURSE_DATA_DIR", str(tmp_path))
    return config.checkpoint_root()


class CountEpochs(keras.callbacks.Callback):
    def __init__(self):
        super().__init__()
        self.epochs = 0

    def on_epoch_begin(self, epoch, logs=None):
        self.epochs += 1


def test_diffusion_trains_once_then_restores_the_same_weights(checkpoint_root):
    from course_lib.diffusion import DiffusionConfig

    cfg = DiffusionConfig.quick().replace(epochs=1, residual_layers=2, dilation_cycle=2)
    folder = prepare.speech_commands_tfrecords(cfg.sample_rate, "sc09")
    first = course_models.diffusion(folder, cfg, checkpoint_root, verbose=0)
    assert len(first.history["loss"]) == 1
    assert first.folder == config.checkpoint_dir("diffusion_sc09") / cfg.tag()  # notebook 03's
    assert (first.folder / training.ENERGY_NAME).is_file()
    assert first.training_energy.seconds > 0

    counter = CountEpochs()
    again = course_models.diffusion(folder, cfg, checkpoint_root, [counter], verbose=0)
    assert counter.epochs == 0 and again.history == first.history
    assert again.training_energy == first.training_energy  # nothing new was added
    clips = first.model.generate(2, steps=3, label=[0, 1], seed=4, progress=False)
    np.testing.assert_allclose(
        again.model.generate(2, steps=3, label=[0, 1], seed=4, progress=False), clips, atol=1e-5
    )

    # Other sampling and scoring settings restore the same training.
    sampling = cfg.replace(guidance=4.0, ddim_steps=5, sampler="ddpm", eta=0.5, score_clips=3)
    counter = CountEpochs()
    restored = course_models.diffusion(folder, sampling, checkpoint_root, [counter], verbose=0)
    assert restored.folder == first.folder and counter.epochs == 0
    assert restored.history == first.history and len(restored.history["loss"]) == 1
    assert restored.training_energy == first.training_energy
    _assert_same_weights(restored.model, first.model)

    # Another optimiser setting trains a new model in a new folder.
    counter = CountEpochs()
    retrained = course_models.diffusion(
        folder, cfg.replace(learning_rate=3e-3), checkpoint_root, [counter], verbose=0
    )
    assert retrained.folder != first.folder and retrained.folder.parent == first.folder.parent
    assert counter.epochs == 1 and len(retrained.history["loss"]) == 1
    assert len(training.read_history(first.folder)["loss"]) == 1  # the first one untouched


def test_the_laptop_diffusion_preset_trains_for_its_budget_then_restores(checkpoint_root):
    """The laptop preset's U-Net (its pyramid, a few channels per level), with a budget
    of 3 seconds in place of 20 minutes: training stops once the budget is spent, long
    before its epochs, and the same call then restores (what a rerun of notebook 03
    does)."""
    from course_lib.diffusion import DiffusionConfig

    laptop = DiffusionConfig.laptop()
    narrow = tuple(4 for _ in laptop.unet_channels)  # an epoch in seconds, not a minute
    cfg = laptop.replace(training_minutes=0.05, unet_channels=narrow)
    assert cfg.denoiser == "unet" and cfg.label_frames > 0 and cfg.epochs >= 100
    folder = prepare.speech_commands_tfrecords(cfg.sample_rate, "sc09")
    first = course_models.diffusion(folder, cfg, checkpoint_root, verbose=0)
    epochs = len(first.history["loss"])
    assert 1 <= epochs < cfg.epochs
    assert training.training_seconds(first.folder) >= 3.0
    counter = CountEpochs()
    again = course_models.diffusion(folder, cfg, checkpoint_root, [counter], verbose=0)
    assert counter.epochs == 0 and len(again.history["loss"]) == epochs
    _assert_same_weights(again.model, first.model)
    clips = again.model.generate(2, steps=2, sampler=cfg.sampler, label=[0, 6], progress=False)
    assert clips.shape == (2, cfg.clip_samples, 1) and np.all(np.isfinite(clips))


def _assert_same_weights(model, other):
    weights, others = model.get_weights(), other.get_weights()
    assert len(weights) == len(others)
    for weight, expected in zip(weights, others, strict=True):
        np.testing.assert_array_equal(weight, expected)


def test_vq_vae_with_prior_generates_clips_of_the_dataset_length(checkpoint_root):
    from course_lib.vq import VQConfig

    folder = prepare.speech_commands_tfrecords(8000, "sc09")
    cfg = VQConfig.quick().replace(dataset="speech", clip_seconds=1.0, epochs=1)
    trained = course_models.vq_vae_with_prior(folder, cfg, checkpoint_root, verbose=0)
    assert trained.extras["code_shape"] == (8, 16)
    # the prior that makes new clips knows where each code sits in the 8 x 16 map
    prior = trained.extras["naive_bayes"]
    assert prior.positional and prior.radius == cfg.prior_radius == 2
    assert prior.position_counts.shape == (8, 16, cfg.codebook_size)
    assert prior.position_counts.sum() == prior.prior_counts.sum()  # one per code counted
    clips = course_models.sample_vq_sounds(trained, 3, seed=1, sweeps=1)
    assert clips.shape == (3, 8000) and np.isfinite(clips).all()
    assert not np.allclose(clips[0], clips[1])
    # The round trip (real clips -> spectrogram images -> codes -> clips): one clip of the
    # dataset's length per clip, the same whether the clips come one by one or together.
    from course_lib import data

    real = data.read_arrays(folder, "test", limit=3)[0]
    rebuilt = course_models.reconstruct_vq_sounds(trained, real)
    assert rebuilt.shape == real.shape and np.isfinite(rebuilt).all()
    one_by_one = np.concatenate(
        [course_models.reconstruct_vq_sounds(trained, c[None]) for c in real]
    )
    np.testing.assert_allclose(one_by_one, rebuilt, atol=1e-3)  # float32 Griffin-Lim
    wrong_rate = prepare.speech_commands_tfrecords(4000, "sc09")
    with pytest.raises(
        ValueError, match=r"holds 4000 Hz audio but the spectrogram settings .* expect 8000"
    ):
        course_models.vq_vae_with_prior(wrong_rate, cfg, checkpoint_root)


def test_wavenet_trains_with_its_command_line_once(checkpoint_root, tmp_path):
    from course_lib.wavenet import WaveNetConfig, checkpoints

    cfg = WaveNetConfig.quick().replace(steps=4, checkpoint_every=2)
    folder = prepare.speech_commands_tfrecords(cfg.sample_rate, "sc09")
    first = course_models.wavenet(folder, cfg, checkpoint_root, logdir=tmp_path / "logdir")
    assert first.history["step"] == [2, 4] and first.model.num_classes == 10
    assert first.training_energy.seconds > 0  # logged in the log directory
    assert training.read_energy(tmp_path / "logdir") == first.training_energy
    again = course_models.wavenet(folder, cfg, checkpoint_root, logdir=tmp_path / "logdir")
    assert checkpoints.read_losses(tmp_path / "logdir")["step"] == [2, 4]  # not trained again
    assert again.training_energy == first.training_energy


def test_wavenet_folder_is_keyed_on_the_training_settings_of_the_whole_config(checkpoint_root):
    from course_lib.wavenet import WaveNetConfig, checkpoints
    from course_lib.wavenet.logdir import read_logdir

    cfg = WaveNetConfig.quick().replace(
        dilations=(1, 2, 4),
        residual_channels=8,
        dilation_channels=8,
        skip_channels=8,
        batch_size=2,
        target_length=100,
        steps=2,
        checkpoint_every=2,
    )
    folder = prepare.speech_commands_tfrecords(cfg.sample_rate, "sc09")
    first = course_models.wavenet(folder, cfg, checkpoint_root)
    assert first.folder == config.checkpoint_dir("wavenet_sc09") / cfg.tag()  # notebook 06's
    assert read_logdir(first.folder)["config"] == cfg  # every setting trained, not the preset's
    assert first.model.receptive_field == cfg.receptive_field

    # Other sampling and scoring settings restore the same checkpoint, untrained.
    sampling = cfg.replace(temperature=0.5, generate_seconds=0.1, score_clips=2)
    restored = course_models.wavenet(folder, sampling, checkpoint_root)
    assert restored.folder == first.folder and restored.history == first.history
    assert checkpoints.read_losses(first.folder)["step"] == [2]  # no new steps
    assert restored.training_energy == first.training_energy
    _assert_same_weights(restored.model, first.model)

    # Another architecture trains a new model in a new folder.
    wider = cfg.replace(residual_channels=12)
    retrained = course_models.wavenet(folder, wider, checkpoint_root)
    assert retrained.folder != first.folder and retrained.folder.parent == first.folder.parent
    assert read_logdir(retrained.folder)["config"].residual_channels == 12
    assert retrained.model.count_params() > first.model.count_params()
    assert checkpoints.read_losses(first.folder)["step"] == [2]
    with pytest.raises(ValueError, match="trained with other settings"):
        course_models.wavenet(folder, wider, checkpoint_root, logdir=first.folder)
