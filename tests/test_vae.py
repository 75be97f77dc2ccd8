"""course_lib.vae: the KL term, the sampling gradient, the warm-up, the latent over time,
learning, saving, distribution, XLA, and the FID of a trained VAE's reconstructions
against an untrained one's."""

import numpy as np
import pytest
import tensorflow as tf

from course_lib import config, data, metrics, vae
from data_prep import prepare

CFG = vae.VAEConfig.quick()
RATE = CFG.sample_rate


def test_kl_divergence_matches_numpy():
    rng = np.random.default_rng(0)
    mean, log_var = rng.standard_normal((5, 7)), rng.standard_normal((5, 7))
    expected = 0.5 * np.sum(np.exp(log_var) + mean**2 - 1 - log_var, axis=1)
    np.testing.assert_allclose(vae.kl_divergence(mean, log_var).numpy(), expected, rtol=1e-6)
    assert np.allclose(vae.kl_divergence(np.zeros((2, 3)), np.zeros((2, 3))).numpy(), 0)


def test_kl_divergence_sums_over_every_step_of_a_latent_over_time():
    rng = np.random.default_rng(1)
    mean, log_var = rng.standard_normal((4, 8, 3)), rng.standard_normal((4, 8, 3))
    expected = 0.5 * np.sum(np.exp(log_var) + mean**2 - 1 - log_var, axis=(1, 2))
    np.testing.assert_allclose(vae.kl_divergence(mean, log_var).numpy(), expected, rtol=1e-6)


TIME_CFG = CFG.replace(widths=(8, 16, 32), latent_over_time=True, latent_dim=4)


def test_a_latent_over_time_has_one_vector_per_step_of_the_last_feature_map():
    model = vae.build_vae(RATE, TIME_CFG)
    # 64 frames halved three times: 8 steps of 4 numbers (global: one vector of 4).
    assert model.latent_shape == (8, 4)
    assert vae.build_vae(RATE, TIME_CFG.replace(latent_over_time=False)).latent_shape == (4,)
    audio = np.random.default_rng(7).uniform(-0.3, 0.3, (3, RATE)).astype(np.float32)
    outputs = model(audio[..., None])
    assert outputs["mean"].shape == outputs["log_var"].shape == (3, 8, 4)
    assert outputs["reconstruction"].shape == outputs["target"].shape == (3, 64, 128, 1)
    assert model.generate(2, seed=1, iterations=2).shape == (2, RATE)
    assert model.interpolate(audio[0], audio[1], steps=3, iterations=2).shape == (3, RATE)
    assert TIME_CFG.tag() != TIME_CFG.replace(latent_over_time=False).tag()


def test_each_step_of_the_code_hears_only_the_sounds_around_it():
    """Changing the last quarter second changes the last steps' codes, not the first's."""
    model = vae.build_vae(RATE, TIME_CFG)
    audio = np.random.default_rng(8).uniform(-0.3, 0.3, (1, RATE)).astype(np.float32)
    changed = audio.copy()
    changed[:, -RATE // 4 :] = np.random.default_rng(9).uniform(-0.3, 0.3, RATE // 4)
    before, after = model.encode(audio)[0][0], model.encode(changed)[0][0]  # [8, 4]
    np.testing.assert_allclose(after[:2], before[:2], atol=1e-6)
    assert np.abs(after[-1] - before[-1]).max() > 1e-3


def test_the_laptop_and_full_presets_keep_time_in_the_code():
    laptop = vae.VAEConfig.laptop()
    assert laptop.latent_over_time and laptop.training_minutes == 20.0
    assert vae.build_vae(RATE, laptop).latent_shape == (8, 16)  # one vector per 125 ms
    full = vae.VAEConfig.full()
    assert vae.build_vae(16000, full).latent_shape == (8, 16)
    assert not CFG.latent_over_time  # quick: one vector, its minute
    with pytest.raises(ValueError, match="prior_components must be at least 1, got 0"):
        CFG.replace(prior_components=0)


def test_sampling_passes_gradients_to_mean_and_variance():
    layer = vae.Sampling(seed=1)
    mean = tf.Variable(np.zeros((4, 3), np.float32))
    log_var = tf.Variable(np.zeros((4, 3), np.float32))
    with tf.GradientTape() as tape:
        z = layer((mean, log_var), training=True)
        loss = tf.reduce_sum(z**2)
    grad_mean, grad_log_var = tape.gradient(loss, [mean, log_var])
    # d/d mu sum (mu + s eps)^2 = 2 z; d/d log_var = z * eps * s (s = exp(log_var / 2) = 1).
    np.testing.assert_allclose(grad_mean.numpy(), 2 * z.numpy(), rtol=1e-6)
    np.testing.assert_allclose(grad_log_var.numpy(), z.numpy() ** 2, rtol=1e-5)
    np.testing.assert_array_equal(layer((mean, log_var), training=False).numpy(), mean.numpy())


@pytest.mark.parametrize(("step", "expected"), [(0, 0.0), (50, 1.0), (100, 2.0), (1000, 2.0)])
def test_kl_warmup_follows_its_schedule(step, expected):
    assert float(vae.kl_weight(step, beta=2.0, warmup_steps=100)) == pytest.approx(expected)
    assert float(vae.kl_weight(step, beta=2.0, warmup_steps=0)) == 2.0


def test_gradients_reach_the_encoder_through_the_sampled_latent():
    model = vae.build_vae(RATE, CFG)
    audio = np.random.default_rng(2).uniform(-0.3, 0.3, (2, RATE, 1)).astype(np.float32)
    with tf.GradientTape() as tape:
        outputs = model(audio, training=True)
        loss = tf.reduce_sum((outputs["reconstruction"] - outputs["target"]) ** 2)
    gradients = tape.gradient(loss, model.encoder.trainable_variables)
    assert all(g is not None for g in gradients)
    assert all(float(tf.reduce_max(tf.abs(g))) > 0 for g in gradients)


def test_shapes_that_do_not_halve_are_refused():
    with pytest.raises(ValueError, match="cannot be halved 4 times"):
        vae.SpectrogramVAE(RATE + 125, RATE, frame_length=256, widths=(8, 8, 8, 8))
    model = vae.build_vae(RATE, CFG)
    with pytest.raises(ValueError, match=rf"expected clips shaped \[n, {RATE}\]"):
        model.encode(np.zeros((2, 100)))


def _batch(n=4):
    audio = np.random.default_rng(3).uniform(-0.3, 0.3, (n, RATE, 1)).astype(np.float32)
    return tf.data.Dataset.from_tensor_slices((audio, np.zeros(n, np.int32))).batch(n)


@pytest.mark.slow  # MirroredStrategy: the judge's step stays in every leg
def test_one_step_under_a_mirrored_strategy(two_cpu_strategy):
    with two_cpu_strategy.scope():
        model = vae.build_vae(RATE, CFG)
    history = model.fit(_batch(), epochs=1, verbose=0, shuffle=False)
    assert set(history.history) == {"loss", "reconstruction", "kl", "kl_weight"}
    assert np.isfinite(history.history["loss"][0])
    assert isinstance(model.encoder.trainable_variables[0].value, tf.distribute.DistributedValues)


@pytest.mark.slow  # XLA: WaveNet's step stays in every leg
def test_one_step_with_xla():
    model = vae.build_vae(RATE, CFG, jit_compile=True)
    history = model.fit(_batch(), epochs=1, verbose=0, shuffle=False)
    assert np.isfinite(history.history["loss"][0])


@pytest.fixture(scope="module")
def digits():
    return prepare.speech_commands_tfrecords(RATE, CFG.words)


@pytest.fixture(scope="module")
def trained(digits):
    """The quick VAE trained on the fixture's digits, with its loss before training.

    Trained as notebook 04 trains it (``course_models.vae``: the same build, data and
    training folder), in the session's data folder: the notebook, run later in the same
    session, restores it instead of training it again.
    """
    from course_lib import course_models

    validation = data.load_split(digits, "validation", batch_size=64, shuffle=False)
    config.set_seed(CFG.seed)  # the seed course_models.vae builds with: the same start
    before = vae.build_vae(RATE, CFG).evaluate(validation, verbose=0, return_dict=True)
    model = course_models.vae(digits, CFG, config.checkpoint_root(), verbose=0).model
    after = model.evaluate(validation, verbose=0, return_dict=True)
    return model, before, after


@pytest.mark.slow
def test_reconstruction_loss_falls_well_below_its_start(trained):
    _, before, after = trained
    assert after["reconstruction"] < 0.2 * before["reconstruction"], (before, after)


@pytest.mark.slow
def test_a_saved_vae_reloads_with_identical_outputs(trained, tmp_path):
    import keras

    model, _, _ = trained
    model.save(tmp_path / "vae.keras")
    loaded = keras.saving.load_model(tmp_path / "vae.keras")
    clips = np.random.default_rng(4).uniform(-0.3, 0.3, (3, RATE)).astype(np.float32)
    np.testing.assert_allclose(loaded.encode(clips)[0], model.encode(clips)[0], atol=1e-5)
    np.testing.assert_allclose(
        loaded.generate(2, seed=5, iterations=4), model.generate(2, seed=5, iterations=4), atol=1e-4
    )
    steps = loaded.interpolate(clips[0], clips[1], steps=3, iterations=4)
    assert steps.shape == (3, RATE)


def test_a_saved_vae_with_a_latent_over_time_reloads_as_one(tmp_path):
    import keras

    model = vae.build_vae(RATE, TIME_CFG)
    model.save(tmp_path / "vae.keras")
    loaded = keras.saving.load_model(tmp_path / "vae.keras")
    assert loaded.latent_over_time and loaded.latent_shape == (8, 4)
    clips = np.random.default_rng(4).uniform(-0.3, 0.3, (2, RATE)).astype(np.float32)
    np.testing.assert_allclose(loaded.encode(clips)[0], model.encode(clips)[0], atol=1e-5)


@pytest.mark.slow
def test_trained_vae_reconstructions_score_a_lower_fid_than_an_untrained_ones(
    trained, digits, quick_judge
):
    import keras

    model, _, _ = trained
    judge = quick_judge
    clips = data.read_arrays(digits, "test")[0]
    test = judge.embed(judge.conform(clips, RATE))
    keras.utils.set_random_seed(1)
    untrained = vae.build_vae(RATE, CFG)
    scores = {
        name: metrics.fid_from_embeddings(
            judge.embed(judge.conform(candidate.reconstruct(clips, iterations=16), RATE)), test
        ).value
        for name, candidate in (("trained", model), ("untrained", untrained))
    }
    # The round trip, not prior samples: after a minute of training the quick VAE's prior
    # samples are barely better than an untrained model's (FID 44 against 70 here, 45
    # against 47 in one CI run), while its reconstructions are far closer to the test
    # clips. Measured (fixed seeds, three judges): 28 against 75, 32 against 87 (0.37), 28
    # against 94 (0.30). The untrained model rebuilds every clip as the same sound, whose
    # FID depends on where the judge puts that one sound: in a fresh-clone check (a64e29b),
    # whose judge trained beside other jobs, 33.5 against 47.8 (0.70).
    assert scores["trained"] < 0.8 * scores["untrained"], scores


@pytest.mark.slow  # trains the waveform VAE for tens of seconds
def test_waveform_vae_rebuilds_samples_and_reloads(tmp_path):
    import keras

    model = vae.build_vae(RATE, CFG, waveform=True)
    audio = np.random.default_rng(5).uniform(-0.3, 0.3, (4, RATE, 1)).astype(np.float32)
    outputs = model(audio)
    assert outputs["target"].shape == (4, RATE, 1) and outputs["reconstruction"].shape == (
        4,
        RATE,
        1,
    )
    before = model.evaluate(_batch(), verbose=0, return_dict=True)["reconstruction"]
    # Untrained: the squared error is the signal's energy plus the output's (numpy check).
    expected = np.mean(
        np.sum((outputs["target"].numpy() - outputs["reconstruction"].numpy()) ** 2, axis=(1, 2))
    )
    assert before == pytest.approx(float(expected), rel=1e-3)
    model.fit(_batch(), epochs=3, verbose=0, shuffle=False)
    assert model.generate(2, seed=1).shape == (2, RATE)
    model.save(tmp_path / "waveform.keras")
    loaded = keras.saving.load_model(tmp_path / "waveform.keras")
    np.testing.assert_allclose(loaded.generate(2, seed=1), model.generate(2, seed=1), atol=1e-5)
