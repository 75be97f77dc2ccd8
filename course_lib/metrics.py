"""Sample-quality metrics for generated audio: Fréchet distance and Inception-style scores.

Given a judge (``course_lib.judge``) with embedding ``f(x)`` and class
probabilities ``p(y | x)``:

- **FID** (Heusel et al., 2017) fits a Gaussian to each set of embeddings and measures

      FID = ||mu_a - mu_b||^2 + Tr(S_a + S_b - 2 (S_a S_b)^(1/2));

  0 for identical statistics, lower is better.
- **Inception Score** (Salimans et al., 2016): ``IS = exp(E_x KL(p(y|x) || p(y)))``,
  between 1 and the number of classes; high when each clip is confidently one class and
  all classes appear. Reported as mean and standard deviation over ``splits`` parts.
- **modified IS** (Gurumurthy et al., 2017): ``mIS = exp(E_{x,x'} KL(p(y|x) || p(y|x')))``,
  which also rewards diversity *within* a class.
- **AM score** (Zhou et al., 2018): ``AM = KL(p_train(y) || p(y)) + E_x H(p(y|x))``,
  which compares the class balance with the training data's; 0 is best.

**Sample size.** These are biased estimators: FID computed from ``n`` samples is too high
by roughly ``c / n`` (Chong & Forsyth, 2020), and IS moves with ``n`` and ``splits``. So
every :class:`Score` carries its number of samples, and two scores compare only at the
same ``n``.

Used in: 02_judge_and_metrics.ipynb and every notebook that scores generated audio.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence

import numpy as np

EPSILON = 1e-12


@dataclasses.dataclass(frozen=True)
class Score:
    """A metric value with its spread and the number of samples it was computed from.

    Attributes:
        name: ``"FID"``, ``"IS"``, ``"mIS"`` or ``"AM"``.
        value: the score (for IS, the mean over splits).
        std: standard deviation over splits (0 when not split).
        samples: how many clips it was computed from (per set, for FID).
    """

    name: str
    value: float
    std: float = 0.0
    samples: int = 0

    def __str__(self) -> str:
        spread = f" ± {self.std:.2f}" if self.std else ""
        return f"{self.name} {self.value:.3f}{spread} (n={self.samples})"

    def __float__(self) -> float:
        return float(self.value)


def gaussian_statistics(embeddings: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean ``[d]`` and covariance ``[d, d]`` (unbiased, ``n - 1``) of ``[n, d]`` embeddings."""
    embeddings = _matrix(embeddings, "embeddings")
    if embeddings.shape[0] < 2:
        raise ValueError(f"need at least 2 embeddings for a covariance, got {embeddings.shape[0]}.")
    return embeddings.mean(axis=0), np.cov(embeddings, rowvar=False).reshape(
        embeddings.shape[1], embeddings.shape[1]
    )


def frechet_distance(
    mu_a: np.ndarray, sigma_a: np.ndarray, mu_b: np.ndarray, sigma_b: np.ndarray
) -> float:
    """Fréchet distance between ``N(mu_a, sigma_a)`` and ``N(mu_b, sigma_b)``.

    ``||mu_a - mu_b||^2 + Tr(S_a) + Tr(S_b) - 2 Tr((S_a S_b)^(1/2))``. The trace of the
    matrix square root is computed without forming it: with ``R = S_a^(1/2)`` (symmetric,
    from an eigendecomposition), ``S_a S_b`` is similar to the symmetric PSD matrix
    ``R S_b R``, so ``Tr((S_a S_b)^(1/2)) = sum_i sqrt(lambda_i(R S_b R))``. Only symmetric
    eigensolvers are used, so there is no imaginary residue to discard, and tiny negative
    eigenvalues from rounding (near-singular covariances, fewer samples than dimensions)
    are clipped to 0. The result is clipped at 0.
    """
    mu_a, mu_b = np.asarray(mu_a, np.float64), np.asarray(mu_b, np.float64)
    sigma_a, sigma_b = np.asarray(sigma_a, np.float64), np.asarray(sigma_b, np.float64)
    d = mu_a.shape[0]
    if mu_b.shape != (d,) or sigma_a.shape != (d, d) or sigma_b.shape != (d, d):
        raise ValueError(
            f"shapes do not match: means {mu_a.shape} and {mu_b.shape}, covariances "
            f"{sigma_a.shape} and {sigma_b.shape}."
        )
    for name, value in (("mu_a", mu_a), ("mu_b", mu_b), ("sigma_a", sigma_a), ("sigma_b", sigma_b)):
        if not np.all(np.isfinite(value)):
            raise ValueError(f"{name} contains NaN or infinite values.")
    root_a = _psd_sqrt(sigma_a)
    middle = root_a @ _symmetric(sigma_b) @ root_a
    trace_sqrt = float(np.sum(np.sqrt(np.clip(np.linalg.eigvalsh(_symmetric(middle)), 0, None))))
    distance = float(np.sum((mu_a - mu_b) ** 2) + np.trace(sigma_a) + np.trace(sigma_b))
    return max(distance - 2.0 * trace_sqrt, 0.0)


def fid_from_embeddings(embeddings_a: np.ndarray, embeddings_b: np.ndarray) -> Score:
    """FID between two sets of embeddings ``[n_a, d]`` and ``[n_b, d]``.

    ``samples`` is the smaller set's size: the bias depends on it.
    """
    mu_a, sigma_a = gaussian_statistics(embeddings_a)
    mu_b, sigma_b = gaussian_statistics(embeddings_b)
    value = frechet_distance(mu_a, sigma_a, mu_b, sigma_b)
    return Score("FID", value, samples=min(len(embeddings_a), len(embeddings_b)))


def fid(judge, audio_a: np.ndarray, audio_b: np.ndarray) -> Score:
    """FID between two sets of clips ``[n, samples]`` through ``judge.embed``."""
    return fid_from_embeddings(judge.embed(audio_a), judge.embed(audio_b))


def inception_score(probabilities: np.ndarray, splits: int = 10) -> Score:
    """Inception Score of class probabilities ``[n, classes]``, mean ± std over ``splits``.

    ``IS = exp(mean_x sum_y p(y|x) (log p(y|x) - log p(y)))`` with ``p(y)`` the mean of
    ``p(y|x)`` within each split.
    """
    probabilities = _probabilities(probabilities)
    n = probabilities.shape[0]
    if not 1 <= splits <= n:
        raise ValueError(f"splits must be between 1 and the {n} samples, got {splits}.")
    values = []
    for part in np.array_split(probabilities, splits):
        marginal = part.mean(axis=0, keepdims=True)
        kl = np.sum(part * (np.log(part + EPSILON) - np.log(marginal + EPSILON)), axis=1)
        values.append(np.exp(np.mean(kl)))
    return Score("IS", float(np.mean(values)), float(np.std(values)), n)


def modified_inception_score(probabilities: np.ndarray) -> Score:
    """Modified Inception Score ``exp(E_{x, x'} KL(p(y|x) || p(y|x')))`` over all pairs."""
    probabilities = _probabilities(probabilities)
    logs = np.log(probabilities + EPSILON)
    # KL(p_i || p_j) = sum_y p_i (log p_i - log p_j): one matrix product for all pairs.
    self_terms = np.sum(probabilities * logs, axis=1)  # [n]
    cross_terms = probabilities @ logs.T  # [n, n]
    kl = self_terms[:, None] - cross_terms
    return Score("mIS", float(np.exp(np.mean(kl))), samples=probabilities.shape[0])


def am_score(probabilities: np.ndarray, train_class_frequencies: Sequence[float]) -> Score:
    """AM score ``KL(p_train(y) || p(y)) + mean_x H(p(y|x))``; 0 is best.

    Args:
        probabilities: ``[n, classes]`` class probabilities of the generated clips.
        train_class_frequencies: ``[classes]`` class frequencies of the training data
            (normalized here).
    """
    probabilities = _probabilities(probabilities)
    reference = np.asarray(train_class_frequencies, np.float64)
    if (
        reference.shape != (probabilities.shape[1],)
        or np.any(reference < 0)
        or reference.sum() <= 0
    ):
        raise ValueError(
            f"train_class_frequencies must be {probabilities.shape[1]} non-negative numbers, "
            f"got shape {reference.shape}."
        )
    reference = reference / reference.sum()
    marginal = probabilities.mean(axis=0)
    kl = np.sum(reference * (np.log(reference + EPSILON) - np.log(marginal + EPSILON)))
    entropy = -np.mean(np.sum(probabilities * np.log(probabilities + EPSILON), axis=1))
    return Score("AM", float(kl + entropy), samples=probabilities.shape[0])


def judge_scores(
    judge,
    clips: np.ndarray,
    reference_embeddings: np.ndarray,
    splits: int = 10,
    train_class_frequencies: Sequence[float] | None = None,
) -> dict[str, Score]:
    """Every score of a set of clips ``[n, samples]`` through ``judge``.

    Args:
        judge: a ``course_lib.judge.Judge`` (anything with ``features(clips) ->
            (embeddings, probabilities)``, one pass over the clips).
        clips: the clips to score (generated, or degraded real ones).
        reference_embeddings: ``judge.embed(real_clips)`` ``[m, d]``, computed once and
            reused for every set scored against the same real data.
        splits: Inception Score splits (at most ``n`` are used).
        train_class_frequencies: if given, the AM score is included.

    Returns:
        ``{"FID", "IS", "mIS"[, "AM"]}`` name -> :class:`Score`.
    """
    embeddings, probabilities = judge.features(clips)
    return scores_from_features(
        embeddings, probabilities, reference_embeddings, splits, train_class_frequencies
    )


def scores_from_features(
    embeddings: np.ndarray,
    probabilities: np.ndarray,
    reference_embeddings: np.ndarray,
    splits: int = 10,
    train_class_frequencies: Sequence[float] | None = None,
) -> dict[str, Score]:
    """:func:`judge_scores` of clips the judge has already seen: their embeddings
    ``[n, d]`` and probabilities ``[n, classes]`` (``Judge.split_features`` streams a
    whole split into them without holding its audio)."""
    scores = {
        "FID": fid_from_embeddings(embeddings, reference_embeddings),
        "IS": inception_score(probabilities, min(splits, len(probabilities))),
        "mIS": modified_inception_score(probabilities),
    }
    if train_class_frequencies is not None:
        scores["AM"] = am_score(probabilities, train_class_frequencies)
    return scores


def fid_against(
    judge, clips: np.ndarray, references: Mapping[str, np.ndarray], sample_rate: int | None = None
) -> dict[str, Score]:
    """FID of one set of clips against several reference sets (e.g. train and test).

    Args:
        judge: a ``course_lib.judge.Judge``.
        clips: clips ``[n, samples]`` to score.
        references: name -> ``judge.embed(real clips)``, computed once.
        sample_rate: the clips' rate, if it differs from the judge's or the clips are
            shorter (``judge.conform`` resamples and pads them first).

    Returns:
        name -> FID :class:`Score`.
    """
    if sample_rate is not None:
        clips = judge.conform(clips, sample_rate)
    embeddings = judge.embed(clips)
    return {
        name: fid_from_embeddings(embeddings, reference) for name, reference in references.items()
    }


def _psd_sqrt(matrix: np.ndarray) -> np.ndarray:
    """Symmetric square root of a (numerically) positive semi-definite matrix."""
    eigenvalues, eigenvectors = np.linalg.eigh(_symmetric(matrix))
    return (eigenvectors * np.sqrt(np.clip(eigenvalues, 0, None))) @ eigenvectors.T


def _symmetric(matrix: np.ndarray) -> np.ndarray:
    return (matrix + matrix.T) / 2


def _matrix(values: np.ndarray, name: str) -> np.ndarray:
    values = np.asarray(values, np.float64)
    if values.ndim != 2:
        raise ValueError(f"{name} must be a [n, d] array, got shape {values.shape}.")
    if not np.all(np.isfinite(values)):
        raise ValueError(f"{name} contain NaN or infinite values.")
    return values


def _probabilities(probabilities: np.ndarray) -> np.ndarray:
    probabilities = _matrix(probabilities, "probabilities")
    if probabilities.shape[0] < 1:
        raise ValueError("need at least one row of probabilities.")
    sums = probabilities.sum(axis=1)
    if np.any(probabilities < 0) or not np.allclose(sums, 1.0, atol=1e-3):
        raise ValueError(
            "probabilities must be non-negative rows that sum to 1 (apply a softmax to logits)."
        )
    return probabilities
