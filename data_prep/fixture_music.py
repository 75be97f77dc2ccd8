"""Short synthesised music clips in the GTZAN layout: ``genres/<genre>/<genre>.000NN.wav``.

Real GTZAN clips are 30 s at 22050 Hz; these are 6 s at 22050 Hz (mono, 16-bit) so the
fixture builds in about a second. Four "genres" that differ in rhythm and in timbre:

===========  ==========  ====================================================================
genre        tempo BPM   parts
===========  ==========  ====================================================================
classical    60 - 84     piano arpeggios, legato flute melody, no drums, long hall reverb
disco        112 - 128   four-on-the-floor kick, clap on 2 and 4, off-beat open hats,
                         16th closed hats, FM octave bass, organ stabs
reggae       66 - 84     one-drop (kick + rim on beat 3), swung hats, off-beat organ skank,
                         deep syncopated bass
rock         132 - 160   kick on 1 and 3, snare on 2 and 4, 8th hats, distorted power chords,
                         root bass
===========  ==========  ====================================================================

Every clip draws its tempo, key, mode, chord progression and instrument parameters from
``(seed, genre, clip index)``; instruments come from :mod:`data_prep.fixture_notes`.

Used in: the notebooks' music-folder option in quick mode (through
``data_prep.prepare.music_tfrecords``).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from pathlib import Path

import numpy as np
from scipy import signal

from data_prep.fixture_notes import (
    Brass,
    Flute,
    Instrument,
    Keyboard,
    Organ,
    fm_operator,
    midi_to_hz,
    partial_sum,
    velocity_gain,
)
from data_prep.wav_files import write_pcm16_wav

SAMPLE_RATE = 22050
CLIP_SECONDS = 6.0
TEMPO_RANGES = {"classical": (60, 84), "disco": (112, 128), "reggae": (66, 84), "rock": (132, 160)}
GENRES = tuple(TEMPO_RANGES)
MAJOR_SCALE = (0, 2, 4, 5, 7, 9, 11)
MINOR_SCALE = (0, 2, 3, 5, 7, 8, 10)
PROGRESSIONS = ((0, 5, 3, 4), (0, 3, 4, 0), (0, 4, 5, 3), (5, 3, 0, 4), (0, 6, 5, 4))


@dataclasses.dataclass(frozen=True)
class ClipPlan:
    """What one clip plays: drawn from the seed, returned with the audio for inspection."""

    genre: str
    tempo: float  # beats per minute
    key: int  # MIDI pitch of the tonic, 45..56
    minor: bool
    progression: tuple[int, ...]  # scale degrees, one chord per bar

    @property
    def beat_seconds(self) -> float:
        return 60.0 / self.tempo


class Mix:
    """A mono buffer that sounds are added into at given times (samples past the end drop)."""

    def __init__(self, seconds: float, sample_rate: int):
        self.sample_rate = sample_rate
        self.samples = np.zeros(round(seconds * sample_rate), np.float32)

    def add(self, sound: np.ndarray, start_seconds: float, gain: float = 1.0) -> None:
        start = round(start_seconds * self.sample_rate)
        if start >= self.samples.shape[0]:
            return
        stop = min(self.samples.shape[0], start + sound.shape[0])
        self.samples[start:stop] += gain * sound[: stop - start]


def chord(plan: ClipPlan, degree: int, octave: int = 0, size: int = 3) -> list[int]:
    """MIDI pitches of the diatonic chord on ``degree`` (stacked thirds), ``size`` notes."""
    scale = MINOR_SCALE if plan.minor else MAJOR_SCALE
    pitches = []
    for step in range(size):
        index = degree + 2 * step
        pitches.append(plan.key + 12 * octave + scale[index % 7] + 12 * (index // 7))
    return pitches


def held_note(
    instrument: Instrument,
    pitch: int,
    velocity: int,
    seconds: float,
    sample_rate: int,
    tail: float = 0.4,
) -> np.ndarray:
    """A note of ``instrument`` held ``seconds`` plus a release tail, at velocity gain."""
    num_samples = round((seconds + tail) * sample_rate)
    return velocity_gain(velocity) * instrument.render(
        pitch, velocity, num_samples, seconds, sample_rate
    )


# Drums: short synthetic hits, float32 [samples], peak about 1.


def kick(sample_rate: int, rng: np.random.Generator) -> np.ndarray:
    """Sine sweeping 150 -> 45 Hz, decaying with a 0.12 s time constant, and a short click."""
    time = np.arange(round(0.35 * sample_rate)) / sample_rate
    sweep = 45.0 + 105.0 * np.exp(-time / 0.04)  # Hz
    phase = 2 * np.pi * np.cumsum(sweep) / sample_rate
    click = rng.standard_normal(time.shape[0]) * np.exp(-time / 0.003) * 0.3
    return (np.sin(phase) * np.exp(-time / 0.12) + click).astype(np.float32)


def snare(sample_rate: int, rng: np.random.Generator, decay: float = 0.12) -> np.ndarray:
    """Bright noise burst (first difference of white noise) over a 190 Hz body."""
    time = np.arange(round(0.3 * sample_rate)) / sample_rate
    noise = np.diff(rng.standard_normal(time.shape[0] + 1)) * 0.5
    body = np.sin(2 * np.pi * 190.0 * time) * np.exp(-time / 0.05)
    return (noise * np.exp(-time / decay) + 0.6 * body).astype(np.float32)


def hat(sample_rate: int, rng: np.random.Generator, open_hat: bool = False) -> np.ndarray:
    """High-passed noise (second difference), decay time constant 20 ms closed, 120 ms open."""
    decay = 0.12 if open_hat else 0.02
    time = np.arange(round(5 * decay * sample_rate)) / sample_rate
    noise = np.diff(rng.standard_normal(time.shape[0] + 2), n=2) * 0.3
    return (noise * np.exp(-time / decay)).astype(np.float32)


def rim(sample_rate: int) -> np.ndarray:
    """Short woody click at 1.7 kHz (reggae cross-stick)."""
    time = np.arange(round(0.06 * sample_rate)) / sample_rate
    return (np.sin(2 * np.pi * 1700.0 * time) * np.exp(-time / 0.008)).astype(np.float32)


def fm_bass(pitch: int, seconds: float, sample_rate: int, brightness: float) -> np.ndarray:
    """FM bass: ratio 1 with a plucked index, short release."""
    num_samples = round((seconds + 0.05) * sample_rate)
    time = np.arange(num_samples) / sample_rate
    index = brightness * np.exp(-time / 0.08)
    level = np.minimum(time / 0.005, 1.0) * np.exp(-time / 0.6)
    level *= np.clip((seconds + 0.05 - time) / 0.05, 0.0, 1.0)  # release at note end
    return (fm_operator(midi_to_hz(pitch), midi_to_hz(pitch), index, sample_rate) * level).astype(
        np.float32
    )


def power_chord(pitch: int, seconds: float, sample_rate: int, drive: float) -> np.ndarray:
    """Root + fifth + octave of a sawtooth-like tone, overdriven with tanh and low-passed."""
    num_samples = round((seconds + 0.05) * sample_rate)
    numbers = np.arange(1, 16, dtype=float)
    tone = sum(
        partial_sum(midi_to_hz(pitch + interval) * numbers, 1.0 / numbers, num_samples, sample_rate)
        for interval in (0, 7, 12)
    )
    time = np.arange(num_samples) / sample_rate
    level = np.minimum(time / 0.004, 1.0) * np.clip((seconds + 0.05 - time) / 0.05, 0.0, 1.0)
    distorted = np.tanh(drive * tone * level)
    return signal.lfilter([0.35], [1.0, -0.65], distorted).astype(np.float32)  # one-pole LP


def reverb(
    samples: np.ndarray, sample_rate: int, seconds: float, wet: float, rng: np.random.Generator
) -> np.ndarray:
    """Convolution with exponentially decaying noise (60 dB down after ``seconds``)."""
    time = np.arange(round(seconds * sample_rate)) / sample_rate
    impulse = rng.standard_normal(time.shape[0]) * 10.0 ** (-3.0 * time / seconds)
    impulse /= np.sqrt(np.sum(impulse**2))
    tail = signal.fftconvolve(samples, impulse)[: samples.shape[0]]
    return ((1.0 - wet) * samples + wet * tail).astype(np.float32)


def _classical(plan: ClipPlan, rng: np.random.Generator, mix: Mix) -> float:
    """Piano arpeggios (triplets or eighths) and a legato flute line; returns the reverb time."""
    piano = Keyboard.draw(rng)
    flute = Flute.draw(rng)
    beat = plan.beat_seconds
    scale = MINOR_SCALE if plan.minor else MAJOR_SCALE
    steps_per_beat = 3 if rng.random() < 0.5 else 2  # triplet or eighth arpeggios
    step = beat / steps_per_beat
    for bar, degree in enumerate(_bars(plan, mix)):
        tones = chord(plan, degree) + chord(plan, degree, octave=1)
        pattern = tones + tones[-2:0:-1]  # up and down
        for index in range(4 * steps_per_beat):
            start = (bar * 4) * beat + index * step
            velocity = int(rng.integers(45, 80))
            mix.add(
                held_note(
                    piano, pattern[index % len(pattern)], velocity, 2 * step, mix.sample_rate
                ),
                start,
            )
        melody_pitch = plan.key + 24 + scale[int(rng.integers(0, 7))]
        for half in range(2):  # legato half notes
            mix.add(
                held_note(flute, melody_pitch, 70, 2 * beat, mix.sample_rate, tail=0.2),
                (bar * 4 + 2 * half) * beat,
                gain=0.6,
            )
            melody_pitch += int(rng.choice([-2, -1, 1, 2]))
    return 2.0  # reverb seconds


def _disco(plan: ClipPlan, rng: np.random.Generator, mix: Mix) -> float:
    """Four-on-the-floor drums, octave FM bass, organ stabs; returns the reverb time."""
    organ = Organ.draw(rng)
    beat = plan.beat_seconds
    sounds = {
        "kick": kick(mix.sample_rate, rng),
        "clap": snare(mix.sample_rate, rng, 0.08),
        "open": hat(mix.sample_rate, rng, open_hat=True),
        "closed": hat(mix.sample_rate, rng),
    }
    brightness = float(rng.uniform(1.5, 4.0))
    for bar, degree in enumerate(_bars(plan, mix)):
        root = chord(plan, degree, octave=-1)[0]
        for beat_index in range(4):
            start = (bar * 4 + beat_index) * beat
            mix.add(sounds["kick"], start, 0.9)
            if beat_index in (1, 3):
                mix.add(sounds["clap"], start, 0.5)
                mix.add(
                    sum_notes(organ, chord(plan, degree, octave=1), 80, beat / 4, mix.sample_rate),
                    start + beat / 2,
                    0.25,
                )
            mix.add(sounds["open"], start + beat / 2, 0.35)
            for sixteenth in range(4):
                mix.add(sounds["closed"], start + sixteenth * beat / 4, 0.15)
            for eighth in range(2):  # octave-jumping bass
                mix.add(
                    fm_bass(root + 12 * eighth, beat / 2 * 0.8, mix.sample_rate, brightness),
                    start + eighth * beat / 2,
                    0.6,
                )
    return 0.4


def _reggae(plan: ClipPlan, rng: np.random.Generator, mix: Mix) -> float:
    """One-drop drums, swung hats, organ skank on the off-beats, bass; returns the reverb time."""
    organ = Organ.draw(rng)
    bass = Brass.draw(rng)
    beat = plan.beat_seconds
    swing = float(rng.uniform(0.58, 0.66))  # off-beat eighth position within the beat
    sounds = {
        "kick": kick(mix.sample_rate, rng),
        "rim": rim(mix.sample_rate),
        "closed": hat(mix.sample_rate, rng),
    }
    for bar, degree in enumerate(_bars(plan, mix)):
        tones = chord(plan, degree, octave=1)
        root = chord(plan, degree, octave=-1)[0]
        bar_start = bar * 4 * beat
        mix.add(sounds["kick"], bar_start + 2 * beat, 0.9)  # the one drop
        mix.add(sounds["rim"], bar_start + 2 * beat, 0.5)
        for beat_index in range(4):
            start = bar_start + beat_index * beat
            mix.add(sounds["closed"], start, 0.12)
            mix.add(sounds["closed"], start + swing * beat, 0.1)
            mix.add(
                sum_notes(organ, tones, 75, 0.12 * beat, mix.sample_rate),
                start + swing * beat,
                0.35,
            )  # skank on every off-beat
        for offset, length, interval in ((0.0, 1.2, 0), (1.5, 0.4, 7), (2.5, 1.0, 12)):
            mix.add(
                held_note(bass, root + interval, 100, length * beat, mix.sample_rate, 0.1),
                bar_start + offset * beat,
                0.5,
            )
    return 0.5


def _rock(plan: ClipPlan, rng: np.random.Generator, mix: Mix) -> float:
    """Kick/snare backbeat, 8th hats, distorted power chords, bass; returns the reverb time."""
    beat = plan.beat_seconds
    drive = float(rng.uniform(3.0, 8.0))
    sounds = {
        "kick": kick(mix.sample_rate, rng),
        "snare": snare(mix.sample_rate, rng),
        "closed": hat(mix.sample_rate, rng),
        "crash": hat(mix.sample_rate, rng, True),
    }
    mix.add(sounds["crash"], 0.0, 0.5)
    for bar, degree in enumerate(_bars(plan, mix)):
        root = chord(plan, degree)[0]
        for beat_index in range(4):
            start = (bar * 4 + beat_index) * beat
            mix.add(sounds["kick" if beat_index in (0, 2) else "snare"], start, 0.8)
            for eighth in range(2):
                mix.add(sounds["closed"], start + eighth * beat / 2, 0.2)
                mix.add(
                    power_chord(root - 12, beat / 2 * 0.85, mix.sample_rate, drive),
                    start + eighth * beat / 2,
                    0.3,
                )
                mix.add(
                    fm_bass(root - 24, beat / 2 * 0.9, mix.sample_rate, 1.0),
                    start + eighth * beat / 2,
                    0.5,
                )
    return 0.6


def sum_notes(
    instrument: Instrument, pitches: list[int], velocity: int, seconds: float, sample_rate: int
) -> np.ndarray:
    """A chord: the notes of ``pitches`` played together on ``instrument``."""
    return sum(
        held_note(instrument, pitch, velocity, seconds, sample_rate, tail=0.1) for pitch in pitches
    )


def _bars(plan: ClipPlan, mix: Mix) -> list[int]:
    """The chord degree of every bar that starts inside the clip."""
    num_bars = -(-mix.samples.shape[0] // round(4 * plan.beat_seconds * mix.sample_rate))
    return [plan.progression[bar % len(plan.progression)] for bar in range(num_bars)]


COMPOSERS: dict[str, Callable[[ClipPlan, np.random.Generator, Mix], float]] = {
    "classical": _classical,
    "disco": _disco,
    "reggae": _reggae,
    "rock": _rock,
}


def render_clip(
    genre: str,
    clip_index: int,
    seed: int,
    sample_rate: int = SAMPLE_RATE,
    seconds: float = CLIP_SECONDS,
) -> tuple[np.ndarray, ClipPlan]:
    """Compose and render one clip of ``genre``, the same for the same arguments.

    Returns:
        ``(samples, plan)``: float32 ``[round(seconds * sample_rate)]`` peaking at
        -6..-1 dBFS, and what it plays.
    """
    if genre not in COMPOSERS:
        raise ValueError(f"unknown genre {genre!r}; choose from {GENRES}.")
    rng = np.random.default_rng([seed, 3, GENRES.index(genre), clip_index])
    low, high = TEMPO_RANGES[genre]
    plan = ClipPlan(
        genre,
        round(float(rng.uniform(low, high)), 2),
        int(rng.integers(45, 57)),
        bool(rng.random() < 0.4),
        PROGRESSIONS[int(rng.integers(0, len(PROGRESSIONS)))],
    )
    mix = Mix(seconds, sample_rate)
    reverb_seconds = COMPOSERS[genre](plan, rng, mix)
    wet = 0.35 if genre == "classical" else 0.12
    samples = reverb(mix.samples, sample_rate, reverb_seconds, wet, rng)
    peak = 10.0 ** (rng.uniform(-6.0, -1.0) / 20.0)
    samples *= peak / max(float(np.max(np.abs(samples))), 1e-9)
    return samples.astype(np.float32), plan


def write_gtzan(folder: Path, per_class: int, seed: int, seconds: float = CLIP_SECONDS) -> dict:
    """Write ``genres/<genre>/<genre>.000NN.wav`` into ``folder`` (empty or new).

    Args:
        folder: the dataset folder (``genres/`` goes inside).
        per_class: clips per genre.
        seed: same seed, byte-identical clips (clip k does not depend on ``per_class``).
        seconds: the length of every clip.

    Returns:
        A summary: ``counts`` (genre -> clips) and ``tempos`` (genre -> list of BPM).
    """
    tempos = {}
    for genre in GENRES:
        tempos[genre] = []
        for clip_index in range(per_class):
            samples, plan = render_clip(genre, clip_index, seed, seconds=seconds)
            write_pcm16_wav(
                folder / "genres" / genre / f"{genre}.{clip_index:05d}.wav", samples, SAMPLE_RATE
            )
            tempos[genre].append(plan.tempo)
    return {"counts": dict.fromkeys(GENRES, per_class), "tempos": tempos}
