"""course_lib.vae.latent_prior: the Gaussian mixture fitted to a VAE's codes recovers a
known mixture, draws codes of the right shape and statistics, and refuses bad input."""

import numpy as np
import pytest

from course_lib import vae

# Two Gaussians over codes shaped [2 steps, 3 numbers] (d = 6), far apart.
WEIGHTS = np.array([0.3, 0.7])
MEANS = np.stack([np.full(6, -4.0), np.full(6, 4.0)])
SCALES = np.array([0.5, 1.5])


def _codes(n, seed=0):
    rng = np.random.default_rng(seed)
    which = rng.choice(2, n, p=WEIGHTS)
    flat = MEANS[which] + SCALES[which, None] * rng.standard_normal((n, 6))
    return flat.reshape(n, 2, 3)


@pytest.fixture(scope="module")
def prior():
    return vae.LatentMixturePrior(components=2, seed=0).fit(_codes(4000))


def test_the_fit_recovers_a_known_mixture(prior):
    order = np.argsort(prior.means[:, 0])  # the component near -4 first
    np.testing.assert_allclose(prior.weights[order], WEIGHTS, atol=0.03)
    np.testing.assert_allclose(prior.means[order], MEANS, atol=0.1)
    for k, scale in zip(order, SCALES, strict=True):  # isotropic: scale^2 I
        np.testing.assert_allclose(prior.covariances[k], scale**2 * np.eye(6), atol=0.25)
    assert prior.latent_shape == (2, 3)


def test_draws_have_the_codes_shape_and_the_mixtures_moments(prior):
    draws = prior.sample(20000, seed=1)
    assert draws.shape == (20000, 2, 3) and draws.dtype == np.float32
    flat = draws.reshape(len(draws), -1)
    # Mixture moments: E z = sum pi m; Cov z = sum pi (s^2 I + m m^T) - E z E z^T.
    mean = WEIGHTS @ MEANS
    parts = zip(WEIGHTS, MEANS, SCALES, strict=True)
    second = sum(w * (s**2 * np.eye(6) + np.outer(m, m)) for w, m, s in parts)
    np.testing.assert_allclose(flat.mean(axis=0), mean, atol=0.15)
    np.testing.assert_allclose(np.cov(flat.T), second - np.outer(mean, mean), atol=0.5)
    # Every draw sits near one of the two means, about 30% of them near the first.
    near_first = np.abs(flat.mean(axis=1) + 4) < np.abs(flat.mean(axis=1) - 4)
    assert near_first.mean() == pytest.approx(0.3, abs=0.02)


def test_the_same_seed_draws_the_same_codes(prior):
    np.testing.assert_array_equal(prior.sample(5, seed=3), prior.sample(5, seed=3))
    assert not np.allclose(prior.sample(5, seed=3), prior.sample(5, seed=4))


def test_a_large_training_set_is_subsampled_to_the_cap(monkeypatch):
    from course_lib.vae import latent_prior

    monkeypatch.setattr(latent_prior, "MAX_FIT_CODES", 500)
    codes = _codes(3000, seed=5)
    capped = vae.LatentMixturePrior(components=2, seed=7).fit(codes)
    keep = np.sort(np.random.default_rng(7).choice(3000, 500, replace=False))
    direct = vae.LatentMixturePrior(components=2, seed=7).fit(codes[keep])
    np.testing.assert_allclose(capped.means, direct.means, rtol=1e-6)
    np.testing.assert_allclose(capped.weights, direct.weights, rtol=1e-6)


def test_bad_input_is_refused_with_a_message():
    with pytest.raises(ValueError, match="need components >= 1"):
        vae.LatentMixturePrior(components=0)
    too_few = r"need at least 5 codes .* got an array of shape \(3, 2, 3\)"
    with pytest.raises(ValueError, match=too_few):
        vae.LatentMixturePrior(components=5).fit(_codes(3))
    codes = _codes(50)
    codes[[4, 9], 1, 2] = np.nan
    with pytest.raises(ValueError, match="2 of 50 codes are not finite"):
        vae.LatentMixturePrior(components=2).fit(codes)
    with pytest.raises(RuntimeError, match="fit the prior to codes first"):
        vae.LatentMixturePrior(components=2).sample(3)
    with pytest.raises(ValueError, match="no clips to fit the prior to"):
        vae.fit_to_training_clips(None, [], components=2)


def test_a_prior_fitted_to_a_vaes_clips_draws_codes_it_decodes():
    import tensorflow as tf

    cfg = vae.VAEConfig.quick().replace(widths=(8, 16, 32), latent_over_time=True, latent_dim=4)
    model = vae.build_vae(cfg.sample_rate, cfg)
    audio = np.random.default_rng(6).uniform(-0.3, 0.3, (12, cfg.sample_rate)).astype(np.float32)
    batches = tf.data.Dataset.from_tensor_slices((audio[..., None], np.zeros(12))).batch(5)
    fitted = vae.fit_to_training_clips(model, batches, components=2, seed=0)
    direct = vae.LatentMixturePrior(components=2, seed=0).fit(model.encode(audio)[0])
    assert fitted.latent_shape == model.latent_shape == (8, 4)
    np.testing.assert_allclose(fitted.means, direct.means, rtol=1e-5, atol=1e-6)
    clips = model.decode_to_audio(fitted.sample(3, seed=1), iterations=2)
    assert clips.shape == (3, cfg.sample_rate) and np.all(np.isfinite(clips))
