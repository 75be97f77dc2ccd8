"""A Naive Bayes model of VQ-VAE code maps, and resampling a region of a map with it.

A VQ-VAE turns a spectrogram into a small grid of integer codes ``x[t, f]`` (time down,
frequency across). To redraw a region of a sound, we need the distribution of one code
given the codes around it, ``p(x[t, f] | neighbours)``. Naive Bayes assumes the neighbours
independent given the centre, so with the neighbours ``n_o = x[t + dt, f + df]`` at each
offset ``o = (dt, df)`` of a square of radius ``r`` (``(2r + 1)^2 - 1`` offsets),

    p(x | n_1, ..., n_O)  ∝  p(x) prod_o p(n_o | x)
                          ∝  prod_o p(x | n_o) / p(x)^(O - 1)      (Bayes' rule per factor),

i.e. the product of the per-neighbour conditionals ``p(x | one neighbour)``, with the prior
counted once. Every table is a count over the training code maps, with Laplace (add-alpha)
smoothing so no code is ever impossible:

    p(x = k)              = (N_k + alpha) / (N + alpha K),
    p(n_o = v | x = k)    = (C_o[v, k] + alpha) / (sum_v' C_o[v', k] + alpha K),
    p(x = k | n_o = v)    = (C_o[v, k] + alpha) / (sum_k' C_o[v, k'] + alpha K),

where ``C_o[v, k]`` counts the pairs (centre ``k``, neighbour ``v`` at offset ``o``). Scores
are summed in log space, ``log p(x) + sum_o log p(n_o | x)``, and normalised over the ``K``
codes; neighbours outside the map are left out of the sum (a missing feature).

A positional model (``positional=True``) counts one more feature: the position ``(t, f)``
of the code itself, with its own table

    p(pos = (t, f) | x = k) = (P[t, f, k] + alpha) / (N_k + alpha h w),

where ``P[t, f, k]`` counts the maps with code ``k`` at ``(t, f)`` (``h x w``: the size of
every map it is fitted on). The neighbours say what fits beside a code; the position says
where in the clip (when, and at which frequency) a code is found. A spectrogram is not the
same everywhere: the start and end of a word are silence, and low and high bins hold
different sounds, which a model of neighbours alone cannot know. It adds ``log p(pos |
x)`` to the scores, so it only applies to maps of the size it was fitted on.

Resampling a region is Gibbs sampling: sweep over the positions of a box in random order,
drawing each code from its conditional given the current neighbours (which include codes
already redrawn), ``p^(1 / T)`` renormalised at temperature ``T``. Codes outside the box
never change. Decoding the new code map and inverting the spectrogram
(:func:`course_lib.inpainting.effect.inpaint_audio`) gives a sound whose region keeps the
statistics of its surroundings but loses its detail: a "blur".

Plain numpy: no TensorFlow, no audio.

Used in: 05_vq_vae_inpainting.ipynb (and ``python -m course_lib.inpainting``).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from pathlib import Path

import numpy as np


def neighbour_offsets(radius: int) -> np.ndarray:
    """The ``(dt, df)`` offsets of a ``(2 radius + 1)^2`` square without its centre,
    ``[(2 radius + 1)^2 - 1, 2]`` int, in raster order."""
    if radius < 1:
        raise ValueError(f"radius must be at least 1, got {radius}.")
    steps = range(-radius, radius + 1)
    return np.array([(dt, df) for dt in steps for df in steps if (dt, df) != (0, 0)], np.int64)


def _as_maps(codes, codebook_size: int) -> tuple[np.ndarray, bool]:
    """Code maps as int64 ``[n, h, w]`` and whether a single ``[h, w]`` map was given."""
    codes = np.asarray(codes)
    single = codes.ndim == 2
    if single:
        codes = codes[None]
    if codes.ndim != 3 or not np.issubdtype(codes.dtype, np.integer):
        raise ValueError(
            f"codes must be integer code maps [n, h, w] or [h, w], got {codes.dtype} {codes.shape}."
        )
    if codes.size and (codes.min() < 0 or codes.max() >= codebook_size):
        raise ValueError(
            f"codes must lie in 0..{codebook_size - 1}, got {codes.min()}..{codes.max()}."
        )
    return codes.astype(np.int64), single


SCORED_MAPS_PER_STEP = 64  # score_batches predicts at most this many maps at once: the
# log-probabilities [maps, h, w, K] of 64 maps of 64 x 32 codes with K = 64 take 67 MB.


@dataclasses.dataclass(frozen=True)
class CodeScores:
    """How well :class:`CodeNaiveBayes` predicts held-out codes from their neighbours.

    Attributes:
        accuracy: fraction of positions whose code is the model's most likely one.
        mean_log_likelihood: mean ``log p(true code | neighbours)`` per position, in nats.
        most_frequent_accuracy: the baseline, always predicting the code most frequent in
            training (:func:`most_frequent_code_accuracy`).
    """

    accuracy: float
    mean_log_likelihood: float
    most_frequent_accuracy: float


class CodeNaiveBayes:
    """``p(code | neighbouring codes)`` on code maps by Naive Bayes (module docstring).

    Args:
        codebook_size: number of distinct codes ``K``.
        radius: neighbours within ``radius`` steps in time and in frequency.
        smoothing: Laplace's ``alpha`` (1 is add-one smoothing).
        positional: also count each code's position in its map (module docstring): then
            every map it fits, scores or resamples must have the same ``[h, w]``.

    Example:
        >>> model = CodeNaiveBayes(64, radius=2).fit(train_codes)   # [n, h, w] ints
        >>> model.accuracy(test_codes), most_frequent_code_accuracy(train_codes, test_codes)
        >>> model = CodeNaiveBayes(64).fit_batches(vq_model.code_batches(train_dataset))
        >>> model.score_batches(vq_model.code_batches(test_dataset))  # CodeScores
    """

    def __init__(
        self,
        codebook_size: int,
        radius: int = 1,
        smoothing: float = 1.0,
        positional: bool = False,
    ):
        if codebook_size < 2:
            raise ValueError(f"codebook_size must be at least 2, got {codebook_size}.")
        if smoothing <= 0:
            raise ValueError(f"smoothing must be positive, got {smoothing}.")
        self.codebook_size = int(codebook_size)
        self.radius = int(radius)
        self.smoothing = float(smoothing)
        self.offsets = neighbour_offsets(self.radius)
        self.positional = bool(positional)
        self.prior_counts: np.ndarray | None = None
        self.pair_counts: np.ndarray | None = None
        self.position_counts: np.ndarray | None = None  # [h, w, K] when positional

    # ------------------------------------------------------------------ fitting

    def fit(self, codes) -> CodeNaiveBayes:
        """Count codes and (centre, neighbour) pairs in code maps ``[n, h, w]`` (or one
        ``[h, w]`` map). Returns ``self``."""
        return self.fit_batches([codes])

    def fit_batches(self, code_batches: Iterable) -> CodeNaiveBayes:
        """:meth:`fit` on code maps that come a batch ``[b, h, w]`` at a time (e.g.
        ``vq_model.code_batches(dataset)``): the counts add up batch by batch, so the maps
        are never held together, and the result is that of :meth:`fit` on all of them.
        Returns ``self``."""
        self.prior_counts = self.pair_counts = self.position_counts = None
        for codes in code_batches:
            self.partial_fit(codes)
        if self.prior_counts is None or self.prior_counts.sum() == 0:
            raise ValueError("cannot fit on an empty set of code maps.")
        return self

    def partial_fit(self, codes) -> CodeNaiveBayes:
        """Add the counts of more code maps ``[n, h, w]`` (or one ``[h, w]`` map) to those
        already counted (none before the first call). Returns ``self``."""
        maps, _ = _as_maps(codes, self.codebook_size)
        size = self.codebook_size
        if self.prior_counts is None or self.pair_counts is None:
            self.prior_counts = np.zeros(size, np.float64)
            self.pair_counts = np.zeros((len(self.offsets), size, size), np.float64)
            if self.positional:
                self.position_counts = np.zeros((*maps.shape[1:], size), np.float64)
        if self.positional:
            self._check_map_shape(maps.shape[1:], "fit")
            positions = np.arange(maps.shape[1] * maps.shape[2])  # [h w], raster order
            flat = (positions * size + maps.reshape(len(maps), -1)).ravel()
            counts = np.bincount(flat, minlength=len(positions) * size)
            self.position_counts += counts.reshape(self.position_counts.shape)
        self.prior_counts += np.bincount(maps.ravel(), minlength=size)
        for index, (dt, df) in enumerate(self.offsets):
            centre, neighbour = _shifted_pairs(maps, dt, df)
            pairs = np.bincount((neighbour * size + centre).ravel(), minlength=size * size)
            self.pair_counts[index] += pairs.reshape(size, size)  # [neighbour v, centre k]
        return self

    def _check_fitted(self):
        if self.prior_counts is None or self.pair_counts is None:
            raise ValueError("this CodeNaiveBayes is not fitted yet: call fit(code_maps) first.")

    @property
    def log_prior(self) -> np.ndarray:
        """``log p(x = k)``, ``[K]``."""
        self._check_fitted()
        alpha, size = self.smoothing, self.codebook_size
        return np.log((self.prior_counts + alpha) / (self.prior_counts.sum() + alpha * size))

    @property
    def log_likelihood(self) -> np.ndarray:
        """``log p(n_o = v | x = k)``, ``[offsets, K (neighbour v), K (centre k)]``."""
        self._check_fitted()
        alpha, size = self.smoothing, self.codebook_size
        totals = self.pair_counts.sum(axis=1, keepdims=True)  # over neighbour values
        return np.log((self.pair_counts + alpha) / (totals + alpha * size))

    @property
    def log_position_likelihood(self) -> np.ndarray:
        """``log p(pos = (t, f) | x = k)``, ``[h, w, K]`` (a positional model only)."""
        self._check_fitted()
        if self.position_counts is None:
            raise ValueError(
                "this CodeNaiveBayes is not positional: create it with positional=True."
            )
        height, width, _ = self.position_counts.shape
        totals = self.position_counts.sum(axis=(0, 1))  # N_k
        return np.log(
            (self.position_counts + self.smoothing) / (totals + self.smoothing * height * width)
        )

    def _check_map_shape(self, shape, action: str) -> None:
        """A positional model's maps must all be ``[h, w]`` as first fitted."""
        if self.position_counts is not None and tuple(shape) != self.position_counts.shape[:2]:
            height, width, _ = self.position_counts.shape
            raise ValueError(
                f"cannot {action} {shape[0]} x {shape[1]} code maps with a positional Naive "
                f"Bayes model fitted on {height} x {width} maps: it knows the codes of those "
                "positions only (cut or pad the clips to the length it was fitted on, or "
                "fit it with positional=False)."
            )

    @property
    def conditionals(self) -> np.ndarray:
        """``p(x = k | n_o = v)``, the per-neighbour tables, ``[offsets, K (v), K (k)]``;
        each row sums to 1."""
        self._check_fitted()
        alpha, size = self.smoothing, self.codebook_size
        totals = self.pair_counts.sum(axis=2, keepdims=True)  # over centre values
        return (self.pair_counts + alpha) / (totals + alpha * size)

    def _padded_tables(self) -> tuple[np.ndarray, np.ndarray]:
        """``log_prior [K]`` and ``log_likelihood`` with an extra neighbour value ``K``
        (outside the map) whose row is 0: ``[offsets, K + 1, K]``."""
        likelihood = self.log_likelihood
        outside = np.zeros((likelihood.shape[0], 1, self.codebook_size))
        return self.log_prior, np.concatenate([likelihood, outside], axis=1)

    # ------------------------------------------------------------------ prediction

    def predict_log_proba(self, codes, positions=None) -> np.ndarray:
        """``log p(x[t, f] = k | neighbours)`` for code maps ``[n, h, w]`` (or ``[h, w]``).

        Args:
            codes: the code maps (the centre's own value is never used).
            positions: None for every position, or a list of ``(t, f)``.

        Returns:
            ``[n, h, w, K]`` (all positions) or ``[n, len(positions), K]``; without the
            leading ``n`` when one map was given. Each distribution sums to 1.
        """
        maps, single = _as_maps(codes, self.codebook_size)
        log_prior, table = self._padded_tables()
        position_table = self._position_table(maps.shape[1:], "score")
        padded = self._pad(maps)
        radius = self.radius
        if positions is None:
            _, height, width = maps.shape
            scores = np.broadcast_to(log_prior, (*maps.shape, self.codebook_size)).copy()
            for index, (dt, df) in enumerate(self.offsets):
                neighbours = padded[
                    :, radius + dt : radius + dt + height, radius + df : radius + df + width
                ]  # [n, h, w]
                scores += table[index][neighbours]  # [n, h, w, K]
            if position_table is not None:
                scores += position_table
        else:
            positions = self._checked_positions(positions, maps.shape[1:])
            scores = np.stack(
                [
                    self._scores_at(padded, table, log_prior, t, f, position_table)
                    for t, f in positions
                ],
                axis=1,
            )  # [n, P, K]
        scores -= _logsumexp(scores)
        return scores[0] if single else scores

    def predict_proba(self, codes, positions=None) -> np.ndarray:
        """Probabilities over the ``K`` codes; see :meth:`predict_log_proba`."""
        return np.exp(self.predict_log_proba(codes, positions))

    def predict(self, codes) -> np.ndarray:
        """The most likely code of every position given its neighbours, ``[n, h, w]``."""
        return np.argmax(self.predict_log_proba(codes), axis=-1)

    def accuracy(self, codes) -> float:
        """Fraction of positions whose code is the model's most likely one."""
        return self.score_batches([codes]).accuracy

    def mean_log_likelihood(self, codes) -> float:
        """Mean ``log p(true code | neighbours)`` per position, in nats (higher is better)."""
        return self.score_batches([codes]).mean_log_likelihood

    def score_batches(self, code_batches: Iterable) -> CodeScores:
        """How well the model predicts each code of held-out maps from its neighbours, with
        the maps coming a batch ``[b, h, w]`` at a time (e.g.
        ``vq_model.code_batches(test_dataset)``); memory stays that of one batch.

        Returns:
            :class:`CodeScores`: accuracy, mean log-likelihood, and the accuracy of the
            baseline that always predicts the code most frequent in training.
        """
        self._check_fitted()
        most_frequent = int(np.argmax(self.prior_counts))
        correct = baseline_correct = positions = 0
        log_likelihood = 0.0
        for codes in code_batches:
            maps, _ = _as_maps(codes, self.codebook_size)
            for start in range(0, len(maps), SCORED_MAPS_PER_STEP):
                chunk = maps[start : start + SCORED_MAPS_PER_STEP]
                log_proba = self.predict_log_proba(chunk)  # [chunk, h, w, K]
                correct += int(np.sum(np.argmax(log_proba, axis=-1) == chunk))
                log_likelihood += float(
                    np.sum(np.take_along_axis(log_proba, chunk[..., None], axis=-1))
                )
            baseline_correct += int(np.sum(maps == most_frequent))
            positions += maps.size
        if positions == 0:
            raise ValueError("cannot score an empty set of code maps.")
        return CodeScores(
            correct / positions, log_likelihood / positions, baseline_correct / positions
        )

    def _pad(self, maps: np.ndarray) -> np.ndarray:
        """Maps padded by ``radius`` on both sides with the "outside" value ``K``."""
        radius = self.radius
        return np.pad(
            maps, ((0, 0), (radius, radius), (radius, radius)), constant_values=self.codebook_size
        )

    def _position_table(self, shape, action: str) -> np.ndarray | None:
        """``log p(pos | x)`` ``[h, w, K]`` for maps of ``shape``, or None (not positional)."""
        self._check_map_shape(shape, action)
        return self.log_position_likelihood if self.position_counts is not None else None

    def _scores_at(self, padded, table, log_prior, t: int, f: int, position_table) -> np.ndarray:
        """Unnormalised log scores ``[n, K]`` of position ``(t, f)``."""
        rows = self.radius + t + self.offsets[:, 0]
        cols = self.radius + f + self.offsets[:, 1]
        neighbours = padded[:, rows, cols]  # [n, offsets]
        offset_index = np.arange(len(self.offsets))[None, :]
        scores = log_prior + table[offset_index, neighbours].sum(axis=1)  # [n, O, K] -> [n, K]
        return scores if position_table is None else scores + position_table[t, f]

    @staticmethod
    def _checked_positions(positions, shape) -> list[tuple[int, int]]:
        checked = []
        for t, f in positions:
            if not (0 <= t < shape[0] and 0 <= f < shape[1]):
                raise ValueError(f"position {(t, f)} is outside the {shape[0]} x {shape[1]} map.")
            checked.append((int(t), int(f)))
        return checked

    # ------------------------------------------------------------------ resampling

    def resample_region(
        self,
        codes,
        time_slice: slice | tuple[int, int],
        freq_slice: slice | tuple[int, int],
        sweeps: int = 4,
        temperature: float = 1.0,
        seed: int | None = 0,
        reinitialize: bool = False,
    ) -> np.ndarray:
        """Redraw the codes inside a box by Gibbs sweeps; codes outside never change.

        Args:
            codes: code maps ``[n, h, w]`` or one ``[h, w]`` map (not modified).
            time_slice, freq_slice: the box, as slices or ``(start, stop)`` of the map's
                first (time) and second (frequency) axes.
            sweeps: passes over the box, each visiting every position once in random
                order.
            temperature: 0 takes the most likely code; 1 samples the model; > 1 flattens it.
            seed: seed of the visiting order and the draws (same seed, same result).
            reinitialize: start the box from codes drawn from the prior ``p(x)`` instead of
                the current ones.

        Returns:
            New code maps, the shape of ``codes``.
        """
        self._check_fitted()
        maps, single = _as_maps(codes, self.codebook_size)
        rows, cols = region_slices(time_slice, freq_slice, maps.shape[1:])
        if sweeps < 1:
            raise ValueError(f"sweeps must be at least 1, got {sweeps}.")
        if temperature < 0:
            raise ValueError(f"temperature must be >= 0, got {temperature}.")
        rng = np.random.default_rng(seed)
        log_prior, table = self._padded_tables()
        position_table = self._position_table(maps.shape[1:], "resample")
        padded = self._pad(maps)
        box = [(t, f) for t in range(rows.start, rows.stop) for f in range(cols.start, cols.stop)]
        radius = self.radius
        if reinitialize:  # from p(x), or from p(x | pos) for a positional model
            for t, f in box:
                start = log_prior if position_table is None else log_prior + position_table[t, f]
                padded[:, radius + t, radius + f] = _draw(start[None], 1.0, rng, len(maps))
        for _ in range(sweeps):
            for position in rng.permutation(len(box)):
                t, f = box[position]
                scores = self._scores_at(padded, table, log_prior, t, f, position_table)  # [n, K]
                padded[:, radius + t, radius + f] = _draw(scores, temperature, rng, len(maps))
        result = padded[:, radius:-radius, radius:-radius].astype(np.int32)
        return result[0] if single else result

    # ------------------------------------------------------------------ saving

    def save(self, path: str | Path) -> Path:
        """Write the counts and settings to an ``.npz`` file."""
        self._check_fitted()
        path = Path(path)
        positional = (
            {} if self.position_counts is None else {"position_counts": self.position_counts}
        )
        np.savez(
            path,
            prior_counts=self.prior_counts,
            pair_counts=self.pair_counts,
            codebook_size=self.codebook_size,
            radius=self.radius,
            smoothing=self.smoothing,
            **positional,
        )
        return path if path.suffix == ".npz" else path.with_name(path.name + ".npz")

    @classmethod
    def load(cls, path: str | Path) -> CodeNaiveBayes:
        """Read a model written by :meth:`save`."""
        with np.load(path) as saved:
            model = cls(
                int(saved["codebook_size"]),
                int(saved["radius"]),
                float(saved["smoothing"]),
                positional="position_counts" in saved,
            )
            model.prior_counts = saved["prior_counts"].astype(np.float64)
            model.pair_counts = saved["pair_counts"].astype(np.float64)
            if model.positional:
                model.position_counts = saved["position_counts"].astype(np.float64)
        expected = (len(model.offsets), model.codebook_size, model.codebook_size)
        if model.pair_counts.shape != expected:
            raise ValueError(f"{path}: pair counts {model.pair_counts.shape}, expected {expected}.")
        return model


def most_frequent_code_accuracy(train_codes, test_codes) -> float:
    """The baseline: accuracy of always predicting the code most frequent in training."""
    train, test = np.asarray(train_codes), np.asarray(test_codes)
    if train.size == 0 or test.size == 0:
        raise ValueError("need non-empty training and test code maps.")
    most_frequent = np.bincount(train.ravel().astype(np.int64)).argmax()
    return float(np.mean(test == most_frequent))


def region_slices(
    time_slice: slice | tuple[int, int], freq_slice: slice | tuple[int, int], shape
) -> tuple[slice, slice]:
    """Check a box against a map of ``shape (h, w)`` and return it as two slices with
    explicit, non-empty bounds."""
    checked = []
    for name, given, size in (("time", time_slice, shape[0]), ("freq", freq_slice, shape[1])):
        if isinstance(given, slice):
            if given.step not in (None, 1):
                raise ValueError(f"{name} slice must have step 1, got {given}.")
            start = 0 if given.start is None else int(given.start)
            stop = size if given.stop is None else int(given.stop)
        else:
            start, stop = (int(value) for value in given)
        if not 0 <= start < stop <= size:
            raise ValueError(
                f"{name} range {start}:{stop} must be non-empty and inside 0:{size} "
                "of the code map."
            )
        checked.append(slice(start, stop))
    return checked[0], checked[1]


def _shifted_pairs(maps: np.ndarray, dt: int, df: int) -> tuple[np.ndarray, np.ndarray]:
    """Centre codes and their neighbours at ``(dt, df)``, for every centre whose neighbour
    lies inside the map."""
    _, height, width = maps.shape
    centre = maps[:, max(0, -dt) : height - max(0, dt), max(0, -df) : width - max(0, df)]
    neighbour = maps[:, max(0, dt) : height + min(0, dt), max(0, df) : width + min(0, df)]
    return centre, neighbour


def _logsumexp(scores: np.ndarray) -> np.ndarray:
    peak = scores.max(axis=-1, keepdims=True)
    return peak + np.log(np.exp(scores - peak).sum(axis=-1, keepdims=True))


def _draw(scores: np.ndarray, temperature: float, rng: np.random.Generator, n: int) -> np.ndarray:
    """One code per row of log scores ``[n, K]`` at ``temperature`` (0: the argmax)."""
    if temperature == 0:
        return scores.argmax(axis=-1)
    scaled = scores / temperature
    probabilities = np.exp(scaled - _logsumexp(scaled))
    cumulative = np.cumsum(probabilities, axis=-1)
    uniform = rng.random((n, 1)) * cumulative[:, -1:]
    return np.minimum((cumulative < uniform).sum(axis=-1), scores.shape[-1] - 1)
