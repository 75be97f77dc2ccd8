"""course_lib.inpainting: Naive Bayes tables against hand counts and a brute-force
posterior, region resampling invariants (``algorithm``), L5 on code maps of a VQ-VAE
trained on the notes fixture, and the end-to-end audio effect (``effect.inpaint_audio``)."""

import json

import keras
import numpy as np
import pytest

from course_lib import audio, inpainting
from course_lib.inpainting import CodeNaiveBayes
from course_lib.spectrogram import SpectrogramSpec
from course_lib.vq import VQConfig, build_vq_vae, spectrogram_images
from data_prep.fixtures import make_fixtures

CFG = VQConfig.quick()


# ----------------------------------------------------------------------------- tables


def test_tables_match_a_hand_count_with_laplace_smoothing():
    codes = np.array([[0, 1], [2, 0]])  # K = 3, radius 1
    model = CodeNaiveBayes(3, radius=1, smoothing=1.0).fit(codes)
    # prior: counts 2, 1, 1 of 4 -> (c + 1) / (4 + 3)
    np.testing.assert_allclose(np.exp(model.log_prior), [3 / 7, 2 / 7, 2 / 7])
    right = list(map(tuple, model.offsets)).index((0, 1))  # the neighbour one bin up
    # pairs (centre, right neighbour): (0 at [0,0], 1) and (2 at [1,0], 0)
    expected_counts = np.zeros((3, 3))
    expected_counts[1, 0] = 1  # [neighbour v, centre k]
    expected_counts[0, 2] = 1
    np.testing.assert_array_equal(model.pair_counts[right], expected_counts)
    # p(n = v | x = 0): column k = 0 has one count (v = 1): (c + 1) / (1 + 3)
    np.testing.assert_allclose(np.exp(model.log_likelihood[right][:, 0]), [1 / 4, 2 / 4, 1 / 4])
    # an unseen centre (k = 1) gets the uniform (0 + 1) / (0 + 3)
    np.testing.assert_allclose(np.exp(model.log_likelihood[right][:, 1]), [1 / 3] * 3)
    # p(x = k | n = 1): row v = 1 has one count (k = 0): (c + 1) / (1 + 3)
    np.testing.assert_allclose(model.conditionals[right][1], [2 / 4, 1 / 4, 1 / 4])
    np.testing.assert_allclose(model.conditionals.sum(axis=2), 1.0)
    assert model.pair_counts.sum() == 12  # 4 horizontal + 4 vertical + 4 diagonal pairs


def brute_force_posterior(train, test, t, f, size, radius, alpha):
    """p(x | neighbours) ∝ p(x) prod_o p(n_o | x), counted with Python loops."""
    height, width = train.shape[1:]
    log_scores = np.zeros(size)
    prior = np.array([(train == k).sum() for k in range(size)], float)
    log_scores += np.log((prior + alpha) / (prior.sum() + alpha * size))
    for dt in range(-radius, radius + 1):
        for df in range(-radius, radius + 1):
            if (dt, df) == (0, 0) or not (0 <= t + dt < height and 0 <= f + df < width):
                continue
            value = test[t + dt, f + df]
            counts = np.zeros((size, size))  # [v, k]
            for m in train:
                for i in range(height):
                    for j in range(width):
                        if 0 <= i + dt < height and 0 <= j + df < width:
                            counts[m[i + dt, j + df], m[i, j]] += 1
            likelihood = (counts + alpha) / (counts.sum(axis=0) + alpha * size)
            log_scores += np.log(likelihood[value])
    probabilities = np.exp(log_scores - log_scores.max())
    return probabilities / probabilities.sum()


def test_posterior_matches_a_brute_force_count_at_corners_edges_and_centre():
    rng = np.random.default_rng(0)
    train = rng.integers(0, 4, (3, 5, 6))
    test = rng.integers(0, 4, (5, 6))
    model = CodeNaiveBayes(4, radius=2, smoothing=0.5).fit(train)
    everywhere = model.predict_proba(test)
    assert everywhere.shape == (5, 6, 4)
    positions = [(0, 0), (4, 5), (2, 3), (0, 3), (3, 1)]
    chosen = model.predict_proba(test, positions)
    for index, (t, f) in enumerate(positions):
        expected = brute_force_posterior(train, test, t, f, 4, 2, 0.5)
        np.testing.assert_allclose(everywhere[t, f], expected, rtol=1e-6)
        np.testing.assert_allclose(chosen[index], expected, rtol=1e-6)


def test_counting_batch_by_batch_gives_the_tables_of_counting_all_at_once():
    rng = np.random.default_rng(2)
    codes = rng.integers(0, 6, (11, 7, 5))
    at_once = CodeNaiveBayes(6, radius=2).fit(codes)
    batches = (codes[start : start + 4] for start in range(0, len(codes), 4))  # 4, 4, 3 maps
    by_batch = CodeNaiveBayes(6, radius=2).fit(codes[:1]).fit_batches(batches)  # fit resets
    np.testing.assert_array_equal(by_batch.prior_counts, at_once.prior_counts)
    np.testing.assert_array_equal(by_batch.pair_counts, at_once.pair_counts)
    with pytest.raises(ValueError, match="empty set of code maps"):
        CodeNaiveBayes(6).fit_batches(iter([]))


def test_scores_of_batches_equal_the_scores_of_all_maps_at_once(monkeypatch):
    rng = np.random.default_rng(3)
    train, test = rng.integers(0, 5, (9, 6, 6)), rng.integers(0, 5, (10, 6, 6))
    model = CodeNaiveBayes(5, radius=1).fit(train)
    log_proba = model.predict_log_proba(test)  # [10, 6, 6, 5], all at once
    monkeypatch.setattr(inpainting.algorithm, "SCORED_MAPS_PER_STEP", 3)
    scores = model.score_batches([test[:4], test[4:]])
    assert scores.accuracy == pytest.approx(np.mean(np.argmax(log_proba, axis=-1) == test))
    expected_likelihood = np.mean(np.take_along_axis(log_proba, test[..., None], axis=-1))
    assert scores.mean_log_likelihood == pytest.approx(expected_likelihood)
    assert scores.most_frequent_accuracy == inpainting.most_frequent_code_accuracy(train, test)
    assert model.accuracy(test) == pytest.approx(scores.accuracy)


def test_save_and_load_give_the_same_predictions(tmp_path):
    codes = np.random.default_rng(1).integers(0, 5, (4, 6, 6))
    model = CodeNaiveBayes(5, radius=1, smoothing=0.3).fit(codes)
    path = model.save(tmp_path / "tables.npz")
    loaded = CodeNaiveBayes.load(path)
    assert (loaded.radius, loaded.smoothing, loaded.codebook_size) == (1, 0.3, 5)
    np.testing.assert_allclose(loaded.predict_proba(codes), model.predict_proba(codes))


def test_a_positional_model_adds_log_p_of_the_position_to_the_brute_force_posterior():
    rng = np.random.default_rng(4)
    train = rng.integers(0, 4, (6, 5, 3))
    test = rng.integers(0, 4, (5, 3))
    model = CodeNaiveBayes(4, radius=1, smoothing=0.5, positional=True).fit(train)
    everywhere = model.predict_proba(test)  # [5, 3, 4]
    for t, f in [(0, 0), (2, 1), (4, 2)]:
        # p(pos = (t, f) | x = k) = (maps with k at (t, f) + alpha) / (N_k + alpha h w)
        at_position = np.array([(train[:, t, f] == k).sum() for k in range(4)])
        totals = np.array([(train == k).sum() for k in range(4)])
        position = (at_position + 0.5) / (totals + 0.5 * 5 * 3)
        expected = brute_force_posterior(train, test, t, f, 4, 1, 0.5) * position
        np.testing.assert_allclose(everywhere[t, f], expected / expected.sum(), rtol=1e-6)
        np.testing.assert_allclose(
            model.predict_proba(test, [(t, f)])[0], expected / expected.sum(), rtol=1e-6
        )
    by_batch = CodeNaiveBayes(4, radius=1, positional=True).fit_batches([train[:2], train[2:]])
    np.testing.assert_array_equal(by_batch.position_counts, model.position_counts)


def test_maps_drawn_from_a_positional_model_keep_each_code_where_training_had_it():
    """Training maps: code 0 on the first two rows, codes 1 and 2 at random below. Drawn
    from scratch, a positional model puts them back in place; neighbours alone cannot
    tell the rows apart far from the edges."""
    rng = np.random.default_rng(5)
    train = rng.integers(1, 3, (40, 8, 6))
    train[:, :2] = 0
    in_place = {}
    for positional in (False, True):
        model = CodeNaiveBayes(3, radius=1, positional=positional).fit(train)
        drawn = model.resample_region(
            np.zeros((20, 8, 6), int), (0, 8), (0, 6), sweeps=4, seed=0, reinitialize=True
        )
        kept = (drawn[:, :2] == 0).sum() + (drawn[:, 2:] != 0).sum()
        in_place[positional] = kept / drawn.size
    assert in_place[True] > 0.97, in_place
    assert in_place[False] < 0.9, in_place


def test_a_positional_model_refuses_maps_of_another_size_and_saves_its_positions(tmp_path):
    codes = np.random.default_rng(6).integers(0, 5, (4, 6, 3))
    model = CodeNaiveBayes(5, radius=1, positional=True).fit(codes)
    for action, call in (
        ("score", lambda maps: model.predict(maps)),
        ("resample", lambda maps: model.resample_region(maps, (0, 2), (0, 2))),
        ("fit", lambda maps: model.partial_fit(maps)),
    ):
        with pytest.raises(ValueError, match=f"cannot {action} 7 x 3 code maps .* fitted on 6 x 3"):
            call(np.zeros((2, 7, 3), int))
    loaded = CodeNaiveBayes.load(model.save(tmp_path / "positional.npz"))
    assert (
        loaded.positional
        and not CodeNaiveBayes.load(
            CodeNaiveBayes(5).fit(codes).save(tmp_path / "plain.npz")
        ).positional
    )
    np.testing.assert_allclose(loaded.predict_proba(codes), model.predict_proba(codes))
    with pytest.raises(ValueError, match="not positional"):
        CodeNaiveBayes(5).fit(codes).log_position_likelihood  # noqa: B018


def test_bad_inputs_are_refused_with_a_reason():
    with pytest.raises(ValueError, match="not fitted yet"):
        CodeNaiveBayes(4).predict(np.zeros((2, 2), int))
    model = CodeNaiveBayes(4).fit(np.zeros((1, 3, 3), int))
    with pytest.raises(ValueError, match=r"codes must lie in 0\.\.3"):
        model.predict(np.full((3, 3), 4))
    with pytest.raises(ValueError, match="integer code maps"):
        model.predict(np.zeros((3, 3)))
    with pytest.raises(ValueError, match="radius must be at least 1"):
        CodeNaiveBayes(4, radius=0)
    with pytest.raises(ValueError, match=r"time range 2:2 must be non-empty"):
        model.resample_region(np.zeros((3, 3), int), (2, 2), (0, 1))
    with pytest.raises(ValueError, match=r"freq range 0:9 must be non-empty and inside 0:3"):
        model.resample_region(np.zeros((3, 3), int), slice(0, 1), slice(0, 9))


# ----------------------------------------------------------------------------- resampling


def stripes(count, height=12, width=10, size=6):
    """Code maps whose codes climb by one per frequency step, from a random offset."""
    offsets = np.random.default_rng(2).integers(0, size, count)
    return (
        (offsets[:, None, None] + np.arange(width)[None, None, :])
        % size
        * np.ones((1, height, 1), int)
    )


def test_resampling_changes_only_the_box_and_is_reproducible():
    maps = np.random.default_rng(3).integers(0, 8, (2, 10, 12))
    model = CodeNaiveBayes(8, radius=1).fit(maps)
    box = (slice(2, 6), slice(3, 9))
    first = model.resample_region(maps, *box, sweeps=3, temperature=1.0, seed=7)
    outside = np.ones(maps.shape, bool)
    outside[:, box[0], box[1]] = False
    np.testing.assert_array_equal(first[outside], maps[outside])
    assert np.mean(first[:, box[0], box[1]] != maps[:, box[0], box[1]]) > 0.3
    np.testing.assert_array_equal(
        model.resample_region(maps, *box, sweeps=3, temperature=1.0, seed=7), first
    )
    assert not np.array_equal(model.resample_region(maps, *box, sweeps=3, seed=8), first)
    single = model.resample_region(maps[0], (2, 6), (3, 9), seed=7)  # one [h, w] map
    assert single.shape == maps[0].shape


def test_greedy_resampling_restores_a_pattern_it_has_learned():
    train = stripes(20)
    model = CodeNaiveBayes(6, radius=1).fit(train)
    test = stripes(3)[:, :, ::-1].copy()[:, :, ::-1]  # fresh maps of the same kind
    restored = model.resample_region(
        test, slice(3, 8), slice(2, 7), sweeps=4, temperature=0.0, seed=0, reinitialize=True
    )
    np.testing.assert_array_equal(restored, test)
    noisy = model.resample_region(
        test, slice(3, 8), slice(2, 7), sweeps=4, temperature=50.0, seed=0, reinitialize=True
    )
    assert not np.array_equal(noisy, test)  # a hot sampler forgets the pattern


def test_code_region_rounds_outwards_to_whole_codes():
    spec = SpectrogramSpec(16000, 256, 250)  # 64 frames per second, 62.5 Hz per bin
    rows, cols = inpainting.code_region((0.5, 1.0), (500.0, 1000.0), spec, 8, (32, 16))
    assert (rows, cols) == (slice(4, 8), slice(1, 2))  # frames 32..64, bins 8..16
    rows, cols = inpainting.code_region((0.51, 9.0), (0.0, 1.0), spec, 8, (32, 16), "bin")
    assert (rows, cols) == (slice(4, 32), slice(0, 1))
    with pytest.raises(ValueError, match="lies outside the sound"):
        inpainting.code_region((5.0, 6.0), (0, 100), spec, 8, (32, 16))


# ----------------------------------------------------------------------------- L5 and audio


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A quick VQ-VAE trained on the notes fixture's nsynth-valid notes, with the code
    maps of those notes and of the nsynth-test notes (other instruments)."""
    root = make_fixtures(tmp_path_factory.mktemp("fixtures"), kind="notes", per_class=8).nsynth

    def notes(split):
        folder = root / f"nsynth-{split}"
        names = sorted(json.loads((folder / "examples.json").read_text()))
        sounds = [
            audio.load_audio(folder / "audio" / f"{name}.wav", CFG.sample_rate)[0] for name in names
        ]
        return names, np.stack(sounds)

    _, train_audio = notes("valid")
    test_names, test_audio = notes("test")
    train_images = spectrogram_images(train_audio, CFG.spec)
    keras.utils.set_random_seed(0)
    model = build_vq_vae(cfg=CFG)
    model.fit(train_images, epochs=10, batch_size=CFG.batch_size, verbose=0)
    return {
        "model": model,
        "train_codes": model.encode_codes(train_images),
        "test_codes": model.encode_codes(spectrogram_images(test_audio, CFG.spec)),
        "test_audio": test_audio,
        "test_names": test_names,
    }


@pytest.mark.slow
def test_l5_naive_bayes_beats_the_most_frequent_code_on_held_out_notes(trained):
    train_codes, test_codes = trained["train_codes"], trained["test_codes"]
    assert train_codes.shape[1:] == (32, 16)
    assert len(np.unique(train_codes)) >= 6  # the code maps are not trivially constant
    model = CodeNaiveBayes(CFG.codebook_size, radius=CFG.radius).fit(train_codes)
    accuracy = model.accuracy(test_codes)
    baseline = inpainting.most_frequent_code_accuracy(train_codes, test_codes)
    assert accuracy > baseline + 0.1, (accuracy, baseline)
    # and in log-likelihood, against the prior alone (no neighbours)
    prior_only = np.mean(model.log_prior[test_codes])
    assert model.mean_log_likelihood(test_codes) > prior_only + 0.2


@pytest.mark.slow
def test_inpaint_audio_keeps_the_length_and_everything_outside_the_box(trained):
    model = trained["model"]
    naive_bayes = CodeNaiveBayes(CFG.codebook_size, radius=1).fit(trained["train_codes"])
    # A decaying piano-like note: steady tones give code maps that are constant in time,
    # where the model is so sure of every code that resampling changes nothing.
    keyboard = [i for i, name in enumerate(trained["test_names"]) if name.startswith("keyboard")]
    sound = trained["test_audio"][keyboard[0]][: 3 * CFG.sample_rate + 321]  # any length
    result = inpainting.inpaint_audio(
        sound,
        model,
        naive_bayes,
        CFG.spec,
        time_range=(0.5, 1.5),
        freq_range=(200.0, 2000.0),
        temperature=2.0,
        seed=0,
        iterations=8,
    )
    assert result.audio.shape == sound.shape and np.isfinite(result.audio).all()
    assert np.abs(result.audio).max() > 0.01
    rows, cols = result.time_slice, result.freq_slice
    assert (rows, cols) == (slice(4, 12), slice(0, 8))  # 0.5 s = frame 32, 2 kHz = bin 64
    outside = np.ones(result.before_codes.shape, bool)
    outside[rows, cols] = False
    np.testing.assert_array_equal(result.after_codes[outside], result.before_codes[outside])
    assert result.changed_fraction > 0
    pixels = np.ones(result.before_image.shape, bool)
    pixels[rows.start * 8 : rows.stop * 8, cols.start * 8 : cols.stop * 8] = False
    np.testing.assert_array_equal(result.after_image[pixels], result.before_image[pixels])
    assert not np.array_equal(result.after_image, result.before_image)
    # inside, the pixels are the decoder's drawing of the new code map (decoded as a crop)
    drawn = model.decode_codes(result.after_codes[None])[0, : len(result.after_image), :, 0]
    np.testing.assert_allclose(result.after_image[~pixels], drawn[~pixels], atol=1e-5)
