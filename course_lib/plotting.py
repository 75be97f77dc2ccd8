"""Plots a person would rather look at than read: waveforms, spectrograms, histograms, curves.

Every function draws into a Matplotlib ``Axes`` (a new figure when none is given) and
returns it, so notebooks can compose figures and tests can inspect what was drawn.

Used in: 01_speech_commands_tfrecords.ipynb and every later notebook.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np


def _axes(ax=None, figsize=(8, 2.5)):
    if ax is not None:
        return ax
    import matplotlib.pyplot as plt

    _, ax = plt.subplots(figsize=figsize)
    return ax


def waveform(samples: np.ndarray, sample_rate: int, title: str = "", ax=None):
    """Plot a clip (shape ``[n]`` or ``[n, 1]``) against time in seconds."""
    samples = np.asarray(samples, np.float32).reshape(-1)
    ax = _axes(ax)
    ax.plot(np.arange(samples.shape[0]) / sample_rate, samples, linewidth=0.6)
    ax.set(xlabel="time (s)", ylabel="amplitude", title=title, ylim=(-1.05, 1.05))
    return ax


def log_mel_spectrogram(
    samples: np.ndarray, sample_rate: int, n_mels: int = 64, hop_seconds: float = 0.01
) -> np.ndarray:
    """Log-mel power spectrogram in dB, shape ``[n_mels, frames]`` (librosa, for display)."""
    import librosa

    samples = np.asarray(samples, np.float32).reshape(-1)
    hop_length = max(1, round(hop_seconds * sample_rate))
    n_fft = 1 << int(np.ceil(np.log2(4 * hop_length)))
    mel = librosa.feature.melspectrogram(
        y=samples,
        sr=sample_rate,
        n_fft=n_fft,
        hop_length=hop_length,
        n_mels=min(n_mels, n_fft // 4),
    )
    return librosa.power_to_db(mel, ref=1.0, top_db=80.0)


def spectrogram(samples: np.ndarray, sample_rate: int, title: str = "", ax=None, n_mels: int = 64):
    """Plot a log-mel spectrogram of a clip, time in seconds on x, mel bins on y."""
    image = log_mel_spectrogram(samples, sample_rate, n_mels=n_mels)
    ax = _axes(ax)
    duration = np.asarray(samples).reshape(-1).shape[0] / sample_rate
    ax.imshow(
        image,
        origin="lower",
        aspect="auto",
        cmap="magma",
        extent=(0.0, duration, 0, image.shape[0]),
    )
    ax.set(xlabel="time (s)", ylabel="mel bin", title=title)
    return ax


def class_histogram(counts: Mapping[str, int], title: str = "examples per class", ax=None):
    """Bar plot of examples per class, in the mapping's order."""
    ax = _axes(ax, figsize=(max(6, 0.35 * len(counts)), 3))
    names = list(counts)
    ax.bar(range(len(names)), [counts[name] for name in names])
    ax.set_xticks(range(len(names)), names, rotation=60, ha="right")
    ax.set(ylabel="examples", title=title)
    return ax


def training_curves(
    history: Mapping[str, Sequence[float]],
    keys: Sequence[str] | None = None,
    title: str = "training",
    ax=None,
    log_scale: bool = False,
    x: Sequence[float] | None = None,
    xlabel: str = "epoch",
):
    """Plot per-epoch metrics from ``model.fit(...).history`` (or any name -> values map).

    ``x`` gives the horizontal positions (for example training steps); by default the
    epochs 1, 2, ...
    """
    ax = _axes(ax, figsize=(6, 3))
    for key in keys or list(history):
        values = list(history[key])
        positions = list(x) if x is not None else list(range(1, len(values) + 1))
        if len(positions) != len(values):
            raise ValueError(f"{key}: {len(values)} values but {len(positions)} x positions.")
        ax.plot(positions, values, marker="o", markersize=3, label=key)
    ax.set(xlabel=xlabel, title=title)
    if log_scale:
        ax.set_yscale("log")
    ax.legend()
    return ax


def clip_grid(
    clips: Sequence[np.ndarray],
    sample_rate: int,
    titles: Sequence[str] | None = None,
    kind: str = "spectrogram",
    columns: int = 4,
):
    """A figure with one waveform or spectrogram panel per clip; returns the figure."""
    import matplotlib.pyplot as plt

    if kind not in ("spectrogram", "waveform"):
        raise ValueError(f"kind must be 'spectrogram' or 'waveform', not {kind!r}.")
    rows = max(1, int(np.ceil(len(clips) / columns)))
    figure, axes = plt.subplots(rows, columns, figsize=(3.2 * columns, 2.4 * rows), squeeze=False)
    draw = spectrogram if kind == "spectrogram" else waveform
    for index, ax in enumerate(axes.flat):
        if index >= len(clips):
            ax.axis("off")
            continue
        draw(clips[index], sample_rate, title=titles[index] if titles else "", ax=ax)
        ax.label_outer()
    figure.tight_layout()
    return figure


def confusion_matrix(
    counts: np.ndarray, labels: Sequence[str], title: str = "confusion matrix", ax=None
):
    """Plot ``[classes, classes]`` counts (row = true class, column = prediction), each row
    normalized to fractions, with the count written in every non-empty cell."""
    counts = np.asarray(counts)
    if counts.ndim != 2 or counts.shape != (len(labels), len(labels)):
        raise ValueError(
            f"counts must be [{len(labels)}, {len(labels)}] for {len(labels)} labels, "
            f"got {counts.shape}."
        )
    fractions = counts / np.maximum(counts.sum(axis=1, keepdims=True), 1)
    ax = _axes(ax, figsize=(0.5 * len(labels) + 2, 0.5 * len(labels) + 1.5))
    ax.imshow(fractions, cmap="Blues", vmin=0, vmax=1)
    for (row, column), count in np.ndenumerate(counts):
        if count:
            color = "white" if fractions[row, column] > 0.5 else "black"
            ax.text(column, row, str(count), ha="center", va="center", fontsize=8, color=color)
    ticks = np.arange(len(labels))
    ax.set_xticks(ticks, labels, rotation=90)
    ax.set_yticks(ticks, labels)
    ax.set(xlabel="predicted", ylabel="true", title=title)
    return ax


def metric_sweeps(
    sweeps: Mapping[str, Mapping[float, Mapping[str, float]]],
    metrics: Sequence[str] = ("FID", "IS"),
    reference: Mapping[str, float] | None = None,
):
    """One panel per (metric, sweep): how a score moves as one kind of damage grows.

    Args:
        sweeps: sweep name (the x-axis label) -> x value -> metric name -> value
            (a ``course_lib.metrics.Score`` works as a value).
        metrics: which metric names to plot, one row each.
        reference: optional metric name -> value drawn as a dashed line (e.g. the score
            of clean real data).

    Returns:
        The figure.
    """
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(
        len(metrics), len(sweeps), figsize=(3.6 * len(sweeps), 2.6 * len(metrics)), squeeze=False
    )
    for column, (name, sweep) in enumerate(sweeps.items()):
        xs = list(sweep)
        for row, metric in enumerate(metrics):
            ax = axes[row, column]
            ax.plot(xs, [float(sweep[x][metric]) for x in xs], marker="o")
            if reference and metric in reference:
                ax.axhline(float(reference[metric]), linestyle="--", color="grey", label="clean")
                ax.legend(fontsize=8)
            ax.set(xlabel=name, ylabel=metric)
    figure.tight_layout()
    return figure


def receptive_field_diagram(dilations: Sequence[int], kernel_size: int = 2, ax=None):
    """Draw a stack of causal dilated convolutions and what one output depends on.

    Rows, bottom to top: the input, the causal input convolution (dilation 1), then one
    row per dilated layer. A node at time ``t`` in a layer with dilation ``d`` reads
    ``t, t - d, ..., t - (kernel_size - 1) d`` in the row below. Starting from the last
    output, every node it depends on is drawn dark with its connections; the width of
    the dark input row is the receptive field, ``(kernel_size - 1)(1 + sum(d)) + 1``.
    """
    dilations = [1, *dilations]  # the causal input convolution first
    field = (kernel_size - 1) * sum(dilations) + 1
    width = field + 4
    ax = _axes(ax, figsize=(min(14, 0.25 * width + 2), 0.6 * len(dilations) + 1.5))
    rows = len(dilations) + 1
    needed = [set() for _ in range(rows)]
    needed[-1] = {width - 1}
    for row in range(rows - 1, 0, -1):
        dilation = dilations[row - 1]
        for t in needed[row]:
            for tap in range(kernel_size):
                source = t - tap * dilation
                if source >= 0:
                    needed[row - 1].add(source)
                    ax.plot([source, t], [row - 1, row], color="tab:blue", linewidth=0.8)
    for row in range(rows):
        times = np.arange(width)
        dark = np.isin(times, sorted(needed[row]))
        ax.scatter(times[~dark], np.full((~dark).sum(), row), s=8, color="lightgrey", zorder=2)
        ax.scatter(times[dark], np.full(dark.sum(), row), s=16, color="tab:blue", zorder=3)
    labels = ["input", "causal conv", *[f"dilation {d}" for d in dilations[1:]]]
    ax.set_yticks(range(rows), labels)
    ax.set(xlabel="time step", title=f"receptive field: {field} samples")
    return ax


def grouped_bars(
    rows: Mapping[str, Mapping[str, float]], title: str = "", ylabel: str = "", ax=None
):
    """Bars grouped by row: ``rows`` maps a group name (x-axis) to series name -> value.

    Example: ``{"beta=1, z=16": {"vs train": 12.0, "vs test": 14.5}, ...}``.
    """
    groups = list(rows)
    series = list(dict.fromkeys(name for row in rows.values() for name in row))
    ax = _axes(ax, figsize=(max(5, 1.4 * len(groups)), 3))
    width = 0.8 / max(len(series), 1)
    for index, name in enumerate(series):
        positions = np.arange(len(groups)) + (index - (len(series) - 1) / 2) * width
        values = [float(rows[group].get(name, np.nan)) for group in groups]
        ax.bar(positions, values, width, label=name)
    ax.set_xticks(np.arange(len(groups)), groups, rotation=20, ha="right")
    ax.set(title=title, ylabel=ylabel)
    ax.legend()
    return ax
