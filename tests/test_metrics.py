"""course_lib.metrics against numpy/scipy references and closed forms."""

import itertools

import numpy as np
import pytest
import scipy.linalg

from course_lib import metrics


def scipy_frechet_distance(mu_a, sigma_a, mu_b, sigma_b):
    """The usual reference: scipy's sqrtm, real part, as in the TTUR FID code."""
    root = scipy.linalg.sqrtm(sigma_a @ sigma_b)
    return float(np.sum((mu_a - mu_b) ** 2) + np.trace(sigma_a + sigma_b - 2 * np.real(root)))


def random_covariance(rng, d):
    factor = rng.standard_normal((d, d))
    return factor @ factor.T / d + 0.1 * np.eye(d)


def test_frechet_distance_matches_scipy_reference():
    rng = np.random.default_rng(0)
    for d in (1, 4, 16):
        mu_a, mu_b = rng.standard_normal(d), rng.standard_normal(d)
        sigma_a, sigma_b = random_covariance(rng, d), random_covariance(rng, d)
        expected = scipy_frechet_distance(mu_a, sigma_a, mu_b, sigma_b)
        assert metrics.frechet_distance(mu_a, sigma_a, mu_b, sigma_b) == pytest.approx(
            expected, rel=1e-8, abs=1e-9
        )


def test_frechet_distance_closed_form_for_diagonal_gaussians():
    # For commuting (here diagonal) covariances the distance is
    # ||mu_a - mu_b||^2 + sum_i (sqrt(a_i) - sqrt(b_i))^2.
    a, b = np.array([1.0, 4.0, 9.0]), np.array([4.0, 1.0, 0.25])
    mu_a, mu_b = np.array([0.0, 1.0, 2.0]), np.array([1.0, 1.0, -1.0])
    expected = np.sum((mu_a - mu_b) ** 2) + np.sum((np.sqrt(a) - np.sqrt(b)) ** 2)
    value = metrics.frechet_distance(mu_a, np.diag(a), mu_b, np.diag(b))
    assert value == pytest.approx(expected, rel=1e-12)


def test_fid_from_samples_converges_to_the_closed_form():
    rng = np.random.default_rng(1)
    a, b = np.array([1.0, 2.0, 0.5, 3.0]), np.array([2.0, 0.5, 0.5, 1.0])
    mu_a, mu_b = np.zeros(4), np.array([0.5, -0.5, 0.0, 1.0])
    expected = np.sum((mu_a - mu_b) ** 2) + np.sum((np.sqrt(a) - np.sqrt(b)) ** 2)
    samples_a = mu_a + np.sqrt(a) * rng.standard_normal((200_000, 4))
    samples_b = mu_b + np.sqrt(b) * rng.standard_normal((200_000, 4))
    score = metrics.fid_from_embeddings(samples_a, samples_b)
    assert score.value == pytest.approx(expected, rel=0.02)
    assert score.samples == 200_000 and score.name == "FID"


def test_fid_is_zero_for_a_set_against_itself_and_symmetric():
    rng = np.random.default_rng(2)
    x, y = rng.standard_normal((500, 8)), rng.standard_normal((400, 8)) + 0.3
    assert metrics.fid_from_embeddings(x, x).value == pytest.approx(0.0, abs=1e-9)
    forward, backward = metrics.fid_from_embeddings(x, y), metrics.fid_from_embeddings(y, x)
    assert forward.value == pytest.approx(backward.value, rel=1e-9)
    assert forward.samples == 400


def test_fid_grows_monotonically_with_added_noise():
    rng = np.random.default_rng(3)
    x = rng.standard_normal((2000, 6))
    values = [
        metrics.fid_from_embeddings(x, x + scale * rng.standard_normal(x.shape)).value
        for scale in (0.0, 0.25, 0.5, 1.0, 2.0)
    ]
    assert values[0] == pytest.approx(0.0, abs=1e-9)
    assert all(later > earlier for earlier, later in itertools.pairwise(values))


def test_near_singular_covariances_give_a_finite_non_negative_distance():
    rng = np.random.default_rng(4)
    # Fewer samples than dimensions: rank-deficient covariances, where sqrtm leaves an
    # imaginary residue and negative eigenvalues from rounding.
    x, y = rng.standard_normal((10, 64)), rng.standard_normal((10, 64))
    value = metrics.fid_from_embeddings(x, y).value
    assert np.isfinite(value) and value > 0
    assert metrics.fid_from_embeddings(x, x).value == pytest.approx(0.0, abs=1e-6)
    expected = scipy_frechet_distance(
        *metrics.gaussian_statistics(x), *metrics.gaussian_statistics(y)
    )
    assert value == pytest.approx(expected, rel=1e-4)


def test_frechet_distance_rejects_mismatched_or_non_finite_input():
    with pytest.raises(ValueError, match="shapes do not match"):
        metrics.frechet_distance(np.zeros(3), np.eye(3), np.zeros(2), np.eye(2))
    with pytest.raises(ValueError, match="sigma_b contains NaN"):
        metrics.frechet_distance(np.zeros(2), np.eye(2), np.zeros(2), np.full((2, 2), np.nan))
    with pytest.raises(ValueError, match="at least 2 embeddings"):
        metrics.fid_from_embeddings(np.zeros((1, 3)), np.zeros((5, 3)))


def test_inception_score_bounds():
    classes = 5
    confident_and_diverse = np.eye(classes)[np.arange(100) % classes]
    score = metrics.inception_score(confident_and_diverse, splits=4)
    assert score.value == pytest.approx(classes, rel=1e-6) and score.samples == 100
    one_class = np.tile(np.eye(classes)[2], (100, 1))
    assert metrics.inception_score(one_class, splits=1).value == pytest.approx(1.0, rel=1e-6)
    uniform = np.full((100, classes), 1 / classes)
    assert metrics.inception_score(uniform, splits=1).value == pytest.approx(1.0, rel=1e-6)


def test_inception_score_matches_a_direct_numpy_formula():
    rng = np.random.default_rng(5)
    probabilities = rng.dirichlet(np.full(10, 0.3), size=300)
    parts = np.array_split(probabilities, 3)
    values = []
    for part in parts:
        marginal = part.mean(axis=0)
        kl = [np.sum(p * np.log(p / marginal)) for p in part]
        values.append(np.exp(np.mean(kl)))
    score = metrics.inception_score(probabilities, splits=3)
    assert score.value == pytest.approx(np.mean(values), rel=1e-6)
    assert score.std == pytest.approx(np.std(values), rel=1e-4)


def test_modified_inception_score_matches_the_pairwise_definition():
    rng = np.random.default_rng(6)
    probabilities = rng.dirichlet(np.ones(4), size=40)
    kl = [np.sum(p * np.log(p / q)) for p in probabilities for q in probabilities]
    score = metrics.modified_inception_score(probabilities)
    assert score.value == pytest.approx(np.exp(np.mean(kl)), rel=1e-6)
    same = np.tile(probabilities[:1], (10, 1))
    assert metrics.modified_inception_score(same).value == pytest.approx(1.0, rel=1e-6)


def test_am_score_is_zero_for_confident_predictions_with_the_training_balance():
    classes = 4
    probabilities = np.eye(classes)[np.arange(40) % classes]
    assert metrics.am_score(probabilities, np.ones(classes)).value == pytest.approx(0, abs=1e-6)
    rng = np.random.default_rng(7)
    soft = rng.dirichlet(np.ones(classes), size=50)
    train = np.array([1.0, 2.0, 3.0, 4.0])
    reference = train / train.sum()
    marginal = soft.mean(axis=0)
    expected = np.sum(reference * np.log(reference / marginal)) - np.mean(
        np.sum(soft * np.log(soft), axis=1)
    )
    assert metrics.am_score(soft, train).value == pytest.approx(expected, rel=1e-6)


def test_scores_reject_logits_and_bad_splits():
    with pytest.raises(ValueError, match="apply a softmax"):
        metrics.inception_score(np.array([[2.0, -1.0], [0.5, 0.5]]))
    with pytest.raises(ValueError, match="splits must be between 1 and the 2 samples"):
        metrics.inception_score(np.array([[0.5, 0.5], [0.1, 0.9]]), splits=3)
    with pytest.raises(ValueError, match="train_class_frequencies must be 2"):
        metrics.am_score(np.array([[0.5, 0.5]]), [1, 1, 1])


def test_score_prints_its_sample_count():
    assert str(metrics.Score("IS", 3.14159, 0.2, 500)) == "IS 3.142 ± 0.20 (n=500)"
    assert float(metrics.Score("FID", 2.5, samples=10)) == 2.5


class LinearJudge:
    """A stand-in judge: embedding = the clip itself, probabilities = softmax of it."""

    def embed(self, clips):
        return np.asarray(clips, np.float64)

    def features(self, clips):
        return self.embed(clips), self.predict_proba(clips)

    def predict_proba(self, clips):
        logits = np.asarray(clips, np.float64)
        exp = np.exp(logits - logits.max(axis=1, keepdims=True))
        return exp / exp.sum(axis=1, keepdims=True)


def test_judge_scores_combine_the_metrics_through_the_judge():
    rng = np.random.default_rng(8)
    judge = LinearJudge()
    clips, real = rng.standard_normal((60, 3)), rng.standard_normal((80, 3))
    scores = metrics.judge_scores(
        judge, clips, judge.embed(real), splits=4, train_class_frequencies=[1, 1, 1]
    )
    assert set(scores) == {"FID", "IS", "mIS", "AM"}
    assert scores["FID"] == metrics.fid_from_embeddings(clips, real)
    assert scores["IS"] == metrics.inception_score(judge.predict_proba(clips), splits=4)
    assert scores["AM"] == metrics.am_score(judge.predict_proba(clips), [1, 1, 1])
    assert set(metrics.judge_scores(judge, clips[:2], real, splits=10)) == {"FID", "IS", "mIS"}


def test_fid_against_scores_one_set_against_each_reference():
    rng = np.random.default_rng(9)
    judge = LinearJudge()
    clips = rng.standard_normal((50, 3))
    references = {"train": rng.standard_normal((60, 3)), "test": rng.standard_normal((40, 3)) + 1}
    scores = metrics.fid_against(judge, clips, references)
    assert scores["train"] == metrics.fid_from_embeddings(clips, references["train"])
    assert scores["test"] == metrics.fid_from_embeddings(clips, references["test"])
    assert scores["test"].value > scores["train"].value
