"""Scoring several generators side by side: quality, speed, energy and size.

Each generator is scored on the same number of clips by the same judge against the same
real clips. Speed is reported as seconds of audio made per second of wall-clock time,
and as the real-time factor ``RTF = generation time / audio duration`` (below 1: faster
than real time).

Used in: 07_compare_models.ipynb.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Mapping, Sequence

import numpy as np

from course_lib import energy, metrics


@dataclasses.dataclass
class Generator:
    """A model to compare.

    Attributes:
        name: the row label.
        generate: ``generate(n, seed) -> clips [n, samples]`` (or ``[n, samples, 1]``).
        sample_rate: the rate of the clips it makes.
        parameters: number of weights.
        training_energy: the energy its training took (may be unmeasured).
    """

    name: str
    generate: Callable[[int, int], np.ndarray]
    sample_rate: int
    parameters: int
    training_energy: energy.EnergyReport | None = None


@dataclasses.dataclass
class Row:
    """One generator's results (see :func:`evaluate`)."""

    name: str
    scores: dict[str, metrics.Score]
    clips: np.ndarray
    sample_rate: int
    seconds: float
    audio_seconds: float
    parameters: int | None
    generation_energy: energy.EnergyReport | None
    training_energy: energy.EnergyReport | None

    @property
    def audio_per_second(self) -> float:
        """Seconds of audio made per second of generation."""
        return self.audio_seconds / self.seconds if self.seconds > 0 else float("inf")

    @property
    def real_time_factor(self) -> float:
        """Generation time divided by the duration of the audio made."""
        return self.seconds / self.audio_seconds if self.audio_seconds > 0 else float("inf")


def evaluate(
    generator: Generator,
    judge,
    reference_embeddings: np.ndarray,
    n: int,
    seed: int = 0,
    splits: int = 1,
    measure: bool = True,
) -> Row:
    """Generate ``n`` clips, timing them (and measuring their energy), and score them.

    Args:
        generator: the model.
        judge: a ``course_lib.classifier.Judge``; clips are conformed to its rate and length.
        reference_embeddings: ``judge.embed(real clips)``.
        n: clips to generate.
        seed: generation seed.
        splits: Inception Score splits.
        measure: measure the generation's energy with codecarbon.
    """
    if n < 2:
        raise ValueError(f"need at least 2 clips to score, got {n}.")
    started = time.perf_counter()
    if measure:
        with energy.measure_energy(f"{generator.name} generation") as report:
            clips = np.asarray(generator.generate(n, seed), np.float32)
    else:
        report = None
        clips = np.asarray(generator.generate(n, seed), np.float32)
    seconds = time.perf_counter() - started
    clips = clips.reshape(clips.shape[0], -1)  # [n, samples(, 1)] -> [n, samples]
    if clips.shape[0] != n:
        raise ValueError(f"{generator.name} made {clips.shape[0]} clips instead of {n}.")
    scores = metrics.judge_scores(
        judge, judge.conform(clips, generator.sample_rate), reference_embeddings, splits
    )
    return Row(
        name=generator.name,
        scores=scores,
        clips=clips,
        sample_rate=generator.sample_rate,
        seconds=seconds,
        audio_seconds=clips.size / generator.sample_rate,
        parameters=generator.parameters,
        generation_energy=report,
        training_energy=generator.training_energy,
    )


def reference_row(
    name: str, clips: np.ndarray, sample_rate: int, judge, reference_embeddings, splits: int = 1
) -> Row:
    """The real-data row: real clips scored like a generator's (no speed or energy)."""
    clips = np.asarray(clips, np.float32).reshape(len(clips), -1)
    scores = metrics.judge_scores(
        judge, judge.conform(clips, sample_rate), reference_embeddings, splits
    )
    return Row(name, scores, clips, sample_rate, 0.0, clips.size / sample_rate, None, None, None)


def table(rows: Sequence[Row]) -> str:
    """The results as a fixed-width text table, one line per row."""
    header = (
        f"{'model':<24}{'FID':>9}{'IS':>7}{'n':>6}{'audio s/s':>11}{'RTF':>9}"
        f"{'gen J':>9}{'train J':>10}{'weights':>11}"
    )
    lines = [header, "-" * len(header)]
    for row in rows:
        lines.append(
            f"{row.name:<24}{row.scores['FID'].value:>9.2f}{row.scores['IS'].value:>7.2f}"
            f"{row.scores['FID'].samples:>6}"
            f"{_number(row.audio_per_second if row.seconds else None, '.2f'):>11}"
            f"{_number(row.real_time_factor if row.seconds else None, '.2f'):>9}"
            f"{_number(_joules(row.generation_energy), '.1f'):>9}"
            f"{_number(_joules(row.training_energy), '.0f'):>10}"
            f"{_number(row.parameters, ',d'):>11}"
        )
    return "\n".join(lines)


def plot(rows: Sequence[Row], reference: Row | None = None):
    """Bar plots of FID, IS, speed and energy per generated second, one bar per model."""
    import matplotlib.pyplot as plt

    names = [row.name for row in rows]
    panels: Mapping[str, list[float]] = {
        "FID (lower is better)": [row.scores["FID"].value for row in rows],
        "Inception Score": [row.scores["IS"].value for row in rows],
        "seconds of audio per second": [row.audio_per_second for row in rows],
        "J per generated second": [
            (_joules(row.generation_energy) or np.nan) / row.audio_seconds for row in rows
        ],
    }
    figure, axes = plt.subplots(1, len(panels), figsize=(4.2 * len(panels), 3.2))
    for ax, (title, values) in zip(axes, panels.items(), strict=True):
        ax.bar(names, values, color="tab:blue")
        if reference is not None and title.startswith(("FID", "Inception")):
            key = "FID" if title.startswith("FID") else "IS"
            ax.axhline(reference.scores[key].value, color="grey", linestyle="--", label="real")
            ax.legend(fontsize=8)
        ax.set_title(title, fontsize=10)
        ax.tick_params(axis="x", rotation=30)
    figure.tight_layout()
    return figure


def _joules(report: energy.EnergyReport | None) -> float | None:
    return None if report is None or not report.measured else report.joules


def _number(value, spec: str) -> str:
    return "-" if value is None else format(value, spec)
