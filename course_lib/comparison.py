"""Scoring generators through the judge: quality, the word asked for, speed, energy, size.

One API for every notebook that scores generated audio (03, 06 and 07):

- :func:`real_reference`: real clips of a converted dataset at the model's own sample
  rate, as the judge hears them (``judge.conform`` resamples and pads): the embeddings
  of ``n`` training clips, which FID compares with, and the row of ``n`` test clips
  scored like a generator (the ceiling), with the judge's accuracy on their words;
- :func:`score`: one set of clips scored against a reference: FID, Inception Score and,
  for clips asked to say a word, the **word accuracy**: the fraction of clips the judge
  hears as the word they were asked for (chance: 1 / number of words);
- :func:`evaluate`: a :class:`Generator` makes ``n`` clips, timed (and its energy
  measured), then :func:`score`; speed is reported as seconds of audio made per second
  of wall-clock time, and as the real-time factor ``RTF = generation time / audio
  duration`` (below 1: faster than real time). A generator with a ``keep_clips_in``
  folder makes its clips in batches with a progress bar and keeps them there
  (``course_lib.resumable_generation``): after a disconnect, the same call resumes;
- :func:`with_reconstruction`: for an autoencoder (VAE, VQ-VAE), the **reconstruction
  accuracy**: the fraction of the reference's real test clips whose round trip through
  the model the judge still hears as the clip's word (the word must survive it; the
  real row's word accuracy is its ceiling);
- :func:`heard_among`: the judge's answer among the few words a model was trained on;
- :func:`table` and :func:`plot`: the rows side by side.

Every set is scored on the same number of clips (the scores depend on it) by the same
judge against the same real clips at the model's rate.

Used in: 03_diffusion.ipynb, 06_wavenet.ipynb, 07_compare_models.ipynb.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from course_lib import audio, energy, metrics, resumable_generation
from course_lib.config import Presets, not_training

WORD_ACCURACY = "word accuracy"
RECONSTRUCTION_ACCURACY = "reconstruction accuracy"


@dataclasses.dataclass(frozen=True)
class ComparisonConfig(Presets):
    """Settings of notebook 07 (``ComparisonConfig.for_mode()``).

    Attributes:
        clips_per_model: clips each model makes and is scored on, and real clips in
            each reference row (full 500: FID's bias at that size is small next to the
            gaps between models; quick 20).
    """

    clips_per_model: int = not_training(500)

    REHEARSAL_COUNTS: ClassVar[Mapping[str, Any]] = dict(clips_per_model=4)

    @classmethod
    def quick(cls) -> ComparisonConfig:
        return cls(clips_per_model=20)


@dataclasses.dataclass
class Generator:
    """A model to compare.

    Attributes:
        name: the row label.
        generate: ``generate(n, seed) -> clips [n, samples]`` (or ``[n, samples, 1]``);
            for a ``conditioned`` generator ``generate(n, seed, words)``, where clip ``i``
            is asked to say word ``words[i]`` (an index into the judge's labels).
        sample_rate: the rate of the clips it makes.
        parameters: number of weights.
        training_energy: the energy its training took (may be unmeasured).
        conditioned: whether it is told which word to say.
        keep_clips_in: the model's training folder, to make the clips in batches and
            keep them in a subfolder of it, so that :func:`evaluate` resumes after a
            disconnect (None: make all clips in one call, keep nothing).
        settings: with ``keep_clips_in``, everything besides ``n``, the seed and the
            words that decides the clips (e.g. the model's config, with its sampling
            settings): another value makes and keeps other clips.
    """

    name: str
    generate: Callable[..., np.ndarray]
    sample_rate: int
    parameters: int
    training_energy: energy.EnergyReport | None = None
    conditioned: bool = False
    keep_clips_in: str | Path | None = None
    settings: Mapping[str, Any] = dataclasses.field(default_factory=dict)


@dataclasses.dataclass
class Row:
    """One set of clips scored (see :func:`score` and :func:`evaluate`).

    ``scores`` holds ``"FID"``, ``"IS"``, ``"mIS"`` and, when the clips were asked for
    words (real clips: their own), ``"word accuracy"``; an autoencoder's row can hold its
    ``"reconstruction accuracy"`` (:func:`with_reconstruction`); ``num_words`` gives the
    chance level ``1 / num_words``. Speed, energy and size are set by :func:`evaluate`
    only.
    """

    name: str
    scores: dict[str, metrics.Score]
    clips: np.ndarray
    sample_rate: int
    seconds: float = 0.0
    audio_seconds: float = 0.0
    parameters: int | None = None
    generation_energy: energy.EnergyReport | None = None
    training_energy: energy.EnergyReport | None = None
    num_words: int | None = None

    @property
    def audio_per_second(self) -> float:
        """Seconds of audio made per second of generation."""
        return self.audio_seconds / self.seconds if self.seconds > 0 else float("inf")

    @property
    def real_time_factor(self) -> float:
        """Generation time divided by the duration of the audio made."""
        return self.seconds / self.audio_seconds if self.audio_seconds > 0 else float("inf")

    @property
    def word_accuracy(self) -> float | None:
        """The fraction of clips heard as the word asked for (None: not asked)."""
        accuracy = self.scores.get(WORD_ACCURACY)
        return None if accuracy is None else accuracy.value

    @property
    def reconstruction_accuracy(self) -> float | None:
        """The fraction of real test clips whose reconstruction is heard as their word
        (None: not an autoencoder, or not measured)."""
        accuracy = self.scores.get(RECONSTRUCTION_ACCURACY)
        return None if accuracy is None else accuracy.value

    @property
    def chance(self) -> float | None:
        """The word accuracy of random guesses, ``1 / num_words``."""
        return None if not self.num_words else 1.0 / self.num_words


@dataclasses.dataclass
class Reference:
    """Real clips at one sample rate, as the judge hears them (see :func:`real_reference`).

    Attributes:
        sample_rate: the rate of the real clips, which is the rate of the models scored
            against them.
        embeddings: ``[m, d]`` judge embeddings of real training clips: what FID compares
            every set with.
        row: real test clips scored like a generator: the ceiling, with the judge's
            accuracy on their words.
        num_words: the judge's number of words (chance is ``1 / num_words``).
        test_labels: ``[n]`` the words of the real test clips (``row.clips``).
    """

    sample_rate: int
    embeddings: np.ndarray
    row: Row
    num_words: int
    test_labels: np.ndarray

    @property
    def n(self) -> int:
        """How many real test clips were scored: score generated sets on as many."""
        return len(self.row.clips)


def word_accuracy(heard: np.ndarray, asked: np.ndarray) -> metrics.Score:
    """The fraction of clips the judge hears as the word each was asked for.

    ``mean(heard == asked)``; when every word is asked equally often (as
    :func:`evaluate` does), it is also the mean over words ``w`` of the fraction of clips
    asked to say ``w`` that the judge hears as ``w``.

    Args:
        heard: ``[n]`` the judge's most likely word per clip.
        asked: ``[n]`` the word each clip was asked for.
    """
    heard, asked = np.asarray(heard).reshape(-1), np.asarray(asked).reshape(-1)
    if heard.shape != asked.shape or heard.size == 0:
        raise ValueError(
            f"need one asked word per clip, got {asked.size} words for {heard.size} clips."
        )
    return metrics.Score(WORD_ACCURACY, float(np.mean(heard == asked)), samples=heard.size)


def heard_among(judge, clips: np.ndarray, sample_rate: int, words: Sequence[int]) -> np.ndarray:
    """The word of ``words`` the judge finds likeliest in each clip: its answer when only
    the words a model was trained on may win (chance: one over their number).

    ``words[argmax_k p(words[k] | clip)]``, with the judge's probabilities of the clips
    resampled to its rate (``judge.conform``): a finer measure than the judge's plain
    answer for a model trained on a few of the words, whose weak clips the plain answer
    may hear as a word the model never saw.

    Args:
        judge: the judge (``predict_proba`` of conformed clips: ``[n, words]``).
        clips: ``[n, samples]`` at ``sample_rate``.
        words: label indices of the candidate words, at least two, no repeats.

    Returns:
        ``[n]`` label indices, each one of ``words``.
    """
    words = list(words)
    if len(words) < 2 or len(set(words)) != len(words):
        raise ValueError(f"need at least two different words to choose among, got {words}.")
    probabilities = judge.predict_proba(judge.conform(clips, sample_rate))  # [n, all words]
    if max(words) >= probabilities.shape[1] or min(words) < 0:
        raise ValueError(f"words {words} are not all among the judge's {probabilities.shape[1]}.")
    return np.asarray(words)[np.argmax(probabilities[:, words], axis=-1)]


def reference_from_clips(
    judge,
    train_clips: np.ndarray,
    test_clips: np.ndarray,
    test_labels: np.ndarray,
    sample_rate: int,
    splits: int = 1,
    name: str = "real test clips",
) -> Reference:
    """The :class:`Reference` of real clips at ``sample_rate`` (conformed to the judge).

    Args:
        judge: a ``course_lib.judge.Judge`` (anything with ``conform``, ``embed``,
            ``features`` and ``labels``).
        train_clips: ``[m, samples]`` real clips whose embeddings FID compares with.
        test_clips: ``[n, samples]`` other real clips, scored like a generator.
        test_labels: ``[n]`` their words (indices into ``judge.labels``).
        sample_rate: the clips' rate.
        splits: Inception Score splits.
        name: the real row's label.
    """
    embeddings = judge.embed(judge.conform(audio.clip_batch(train_clips), sample_rate))
    num_words = len(judge.labels)
    row = _score(name, test_clips, sample_rate, judge, embeddings, test_labels, num_words, splits)
    labels = np.asarray(test_labels).reshape(-1)
    return Reference(int(sample_rate), embeddings, row, num_words, labels)


def real_reference(judge, folder: str | Path, n: int, splits: int = 1) -> Reference:
    """The :class:`Reference` of a converted dataset at its own sample rate: the first
    ``n`` training clips (for FID) and the first ``n`` test clips (the real row).

    Convert the dataset at the model's rate (``prepare.speech_commands_tfrecords(rate,
    words)``), so that real and generated clips reach the judge through the same
    resampling: a 4 kHz model is compared with 4 kHz speech, not with 16 kHz speech.

    Raises:
        ValueError: the dataset's words are not the judge's, in the same order.
    """
    from course_lib import data

    manifest = data.read_manifest(folder)
    if list(manifest.labels) != list(judge.labels):
        raise ValueError(
            f"{folder} holds the words {list(manifest.labels)} but the judge knows "
            f"{judge.labels}: convert the dataset with the judge's words."
        )
    test_clips, test_labels = data.read_arrays(folder, "test", limit=n)
    train_clips = data.read_arrays(folder, "train", limit=n)[0]
    return reference_from_clips(
        judge, train_clips, test_clips, test_labels, manifest.sample_rate, splits
    )


def score(
    name: str,
    clips: np.ndarray,
    sample_rate: int,
    judge,
    reference: Reference,
    asked: np.ndarray | None = None,
    splits: int = 1,
) -> Row:
    """Score clips ``[n, samples]`` (or ``[n, samples, 1]``) at ``sample_rate`` against
    the real clips of ``reference``, at the same rate.

    Args:
        name: the row label.
        clips: the clips (generated, or degraded real ones).
        sample_rate: their rate, which must be the reference's.
        judge: the judge the reference was made with.
        reference: from :func:`real_reference`.
        asked: ``[n]`` the word each clip was asked to say, for a conditioned model: adds
            the word accuracy.
        splits: Inception Score splits (at most ``n`` are used).

    Raises:
        ValueError: the clips are not at the reference's rate.
    """
    if sample_rate != reference.sample_rate:
        raise ValueError(
            f"{name}: clips at {sample_rate} Hz scored against real clips at "
            f"{reference.sample_rate} Hz; use a reference at the model's own rate "
            "(real_reference on the dataset converted at that rate)."
        )
    return _score(
        name, clips, sample_rate, judge, reference.embeddings, asked, reference.num_words, splits
    )


def _score(name, clips, sample_rate, judge, embeddings, asked, num_words, splits) -> Row:
    clips = audio.clip_batch(clips)
    if len(clips) < 2:
        raise ValueError(f"need at least 2 clips to score, got {len(clips)}.")
    generated, probabilities = judge.features(judge.conform(clips, sample_rate))
    scores = {
        "FID": metrics.fid_from_embeddings(generated, embeddings),
        "IS": metrics.inception_score(probabilities, min(splits, len(probabilities))),
        "mIS": metrics.modified_inception_score(probabilities),
    }
    if asked is not None:
        scores[WORD_ACCURACY] = word_accuracy(np.argmax(probabilities, axis=-1), asked)
    return Row(
        name,
        scores,
        clips,
        int(sample_rate),
        audio_seconds=clips.size / sample_rate,
        num_words=num_words if asked is not None else None,
    )


def evaluate(
    generator: Generator,
    judge,
    reference: Reference,
    n: int,
    seed: int = 0,
    splits: int = 1,
    measure: bool = True,
    batch_size: int = 32,
) -> Row:
    """Generate ``n`` clips, timing them (and measuring their energy), and :func:`score`
    them against ``reference`` (at the generator's rate).

    A ``conditioned`` generator is asked for the words in turn (clip ``i`` for word
    ``i mod num_words``), so every word is asked equally often, and its row gets the word
    accuracy.

    A generator with ``keep_clips_in`` makes its clips ``batch_size`` at a time with a
    progress bar, each batch kept in that folder as it finishes
    (``resumable_generation.generate_in_batches``): run again after a disconnect, only
    the missing batches are made, and the time and energy reported are those of all the
    batches, measured when each was made.

    Args:
        generator: the model.
        judge: a ``course_lib.judge.Judge``.
        reference: real clips at the generator's rate (:func:`real_reference`).
        n: clips to generate.
        seed: generation seed.
        splits: Inception Score splits.
        measure: measure the generation's energy with codecarbon.
        batch_size: clips per batch of a generator with ``keep_clips_in``.
    """
    if n < 2:
        raise ValueError(f"need at least 2 clips to score, got {n}.")
    asked = np.arange(n) % reference.num_words if generator.conditioned else None
    if generator.keep_clips_in is not None:
        return _evaluate_in_batches(
            generator, judge, reference, n, seed, splits, measure, batch_size, asked
        )
    arguments = (n, seed) if asked is None else (n, seed, asked)
    started = time.perf_counter()
    if measure:
        with energy.measure_energy(f"{generator.name} generation") as report:
            clips = np.asarray(generator.generate(*arguments), np.float32)
    else:
        report = None
        clips = np.asarray(generator.generate(*arguments), np.float32)
    seconds = time.perf_counter() - started
    clips = audio.clip_batch(clips)
    if clips.shape[0] != n:
        raise ValueError(f"{generator.name} made {clips.shape[0]} clips instead of {n}.")
    row = score(generator.name, clips, generator.sample_rate, judge, reference, asked, splits)
    return dataclasses.replace(
        row,
        seconds=seconds,
        parameters=generator.parameters,
        generation_energy=report,
        training_energy=generator.training_energy,
    )


def _evaluate_in_batches(
    generator, judge, reference, n, seed, splits, measure, batch_size, asked
) -> Row:
    made = resumable_generation.generate_in_batches(
        generator.generate,
        n,
        generator.keep_clips_in,
        {"generator": generator.name, **generator.settings},
        labels=asked,
        seed=seed,
        batch_size=batch_size,
        measure=measure,
        name=f"{generator.name} generation",
    )
    row = score(generator.name, made.clips, generator.sample_rate, judge, reference, asked, splits)
    return dataclasses.replace(
        row,
        seconds=made.seconds,
        parameters=generator.parameters,
        generation_energy=made.energy,
        training_energy=generator.training_energy,
    )


def reconstruction_accuracy(
    judge,
    reconstruct: Callable[[np.ndarray], np.ndarray],
    reference: Reference,
    batch_size: int = 50,
) -> metrics.Score:
    """The fraction of the reference's real test clips that the judge hears as their own
    word after a round trip through an autoencoder: ``mean(judge(reconstruct(x_i)) ==
    w_i)`` over the ``n`` test clips ``x_i`` of words ``w_i``.

    Args:
        judge: a ``course_lib.judge.Judge``.
        reconstruct: ``clips [k, samples] -> clips [k, samples]`` at the reference's rate
            (e.g. ``VAE.reconstruct``), called on batches of ``batch_size`` clips.
        reference: the real clips at the model's rate (:func:`real_reference`).
        batch_size: clips per call of ``reconstruct``.

    Raises:
        ValueError: ``reconstruct`` returns another number of clips than it was given.
    """
    clips = audio.clip_batch(reference.row.clips)
    heard = []
    for start in range(0, len(clips), batch_size):
        batch = clips[start : start + batch_size]
        rebuilt = audio.clip_batch(reconstruct(batch))
        if len(rebuilt) != len(batch):
            raise ValueError(
                f"reconstruct returned {len(rebuilt)} clips for {len(batch)}: it must "
                "return one clip per clip."
            )
        probabilities = judge.predict_proba(judge.conform(rebuilt, reference.sample_rate))
        heard.append(np.argmax(probabilities, axis=1))
    score = word_accuracy(np.concatenate(heard), reference.test_labels)
    return dataclasses.replace(score, name=RECONSTRUCTION_ACCURACY)


def with_reconstruction(
    row: Row,
    judge,
    reconstruct: Callable[[np.ndarray], np.ndarray],
    reference: Reference,
    batch_size: int = 50,
) -> Row:
    """``row`` with its model's :func:`reconstruction_accuracy` added to its scores."""
    if row.sample_rate != reference.sample_rate:
        raise ValueError(
            f"{row.name}: a model at {row.sample_rate} Hz reconstructs real clips at its own "
            f"rate, not at {reference.sample_rate} Hz."
        )
    score = reconstruction_accuracy(judge, reconstruct, reference, batch_size)
    return dataclasses.replace(row, scores={**row.scores, RECONSTRUCTION_ACCURACY: score})


# (title, width, value of a row or None, format)
_COLUMNS = (
    ("Hz", 7, lambda row: row.sample_rate, "d"),
    ("FID", 9, lambda row: row.scores["FID"].value, ".2f"),
    ("IS", 7, lambda row: row.scores["IS"].value, ".2f"),
    ("word acc", 10, lambda row: row.word_accuracy, ".2f"),
    ("recon acc", 11, lambda row: row.reconstruction_accuracy, ".2f"),
    ("n", 6, lambda row: row.scores["FID"].samples, "d"),
    ("audio s/s", 11, lambda row: row.audio_per_second if row.seconds else None, ".2f"),
    ("RTF", 9, lambda row: row.real_time_factor if row.seconds else None, ".2f"),
    ("gen J", 9, lambda row: _joules(row.generation_energy), ".1f"),
    ("train J", 10, lambda row: _joules(row.training_energy), ".0f"),
    ("weights", 11, lambda row: row.parameters, ",d"),
)


def table(rows: Sequence[Row]) -> str:
    """The results as a fixed-width text table, one line per row.

    Columns that no row has a value for (speed and energy of scored-only rows) are left
    out; a row without a word accuracy (an unconditioned model) shows ``n/a``. A last
    line gives the chance level of the word accuracy.
    """
    columns = [column for column in _COLUMNS if any(column[2](row) is not None for row in rows)]
    header = f"{'model':<26}" + "".join(f"{title:>{width}}" for title, width, _, _ in columns)
    lines = [header, "-" * len(header)]
    for row in rows:
        cells = []
        for title, width, value, spec in columns:
            missing = "n/a" if title == "word acc" else "-"
            cells.append(f"{_number(value(row), spec, missing):>{width}}")
        lines.append(f"{row.name:<26}" + "".join(cells))
    chances = sorted({row.num_words for row in rows if row.num_words})
    if chances:
        levels = ", ".join(f"1/{words} = {1 / words:.2f}" for words in chances)
        lines.append(f"word acc: heard as the word asked for (real: their own); chance {levels}")
    if any(row.reconstruction_accuracy is not None for row in rows):
        lines.append("recon acc: real test clips heard as their own word after the round trip")
    return "\n".join(lines)


def plot(rows: Sequence[Row], references: Row | Sequence[Row] | None = None):
    """Bar plots of FID, IS, word accuracy, speed and energy per generated second, one
    bar per model; real-clip rows (``references``) are dashed lines, chance is dotted."""
    import matplotlib.pyplot as plt

    if isinstance(references, Row):
        references = [references]
    references = list(references or [])
    names = [row.name for row in rows]
    panels: Mapping[str, tuple[str | None, list[float]]] = {
        "FID (lower is better)": ("FID", [row.scores["FID"].value for row in rows]),
        "Inception Score": ("IS", [row.scores["IS"].value for row in rows]),
        "word accuracy": (
            WORD_ACCURACY,
            [np.nan if row.word_accuracy is None else row.word_accuracy for row in rows],
        ),
        "seconds of audio per second": (None, [row.audio_per_second for row in rows]),
        "J per generated second": (
            None,
            [(_joules(row.generation_energy) or np.nan) / row.audio_seconds for row in rows],
        ),
    }
    figure, axes = plt.subplots(1, len(panels), figsize=(4.2 * len(panels), 3.2))
    for ax, (title, (key, values)) in zip(axes, panels.items(), strict=True):
        ax.bar(names, values, color="tab:blue")
        for style, reference in zip(("--", "-.", ":"), references, strict=False):
            if key is not None and key in reference.scores:
                ax.axhline(
                    reference.scores[key].value,
                    color="grey",
                    linestyle=style,
                    label=f"real, {reference.sample_rate} Hz",
                )
        chances = {row.chance for row in rows if row.chance}
        if key == WORD_ACCURACY and len(chances) == 1:
            ax.axhline(chances.pop(), color="tab:red", linestyle=":", label="chance")
        if ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize=8)
        ax.set_title(title, fontsize=10)
        ax.tick_params(axis="x", rotation=30)
    figure.tight_layout()
    return figure


def _joules(report: energy.EnergyReport | None) -> float | None:
    return None if report is None or not report.measured else report.joules


def _number(value, spec: str, missing: str = "-") -> str:
    return missing if value is None else format(value, spec)
