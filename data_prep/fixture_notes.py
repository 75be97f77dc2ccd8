"""Synthesised instrument notes in the NSynth json/wav layout, and the instruments behind them.

Layout (the same as NSynth's json/wav archives)::

    nsynth/nsynth-valid/examples.json       note_str -> NSynth metadata
    nsynth/nsynth-valid/audio/<note_str>.wav
    nsynth/nsynth-test/...

Each note is 4 s at 16 kHz, held for 3 s and released in the last second, like NSynth
(Engel et al. 2017, "Neural Audio Synthesis of Musical Notes with WaveNet
Autoencoders"). ``note_str`` is ``<family>_<source>_<instrument:03d>-<pitch:03d>-
<velocity:03d>``. Five families, each an instrument model with parameters drawn per
instrument:

- ``organ`` (electronic): additive drawbar harmonics, tremolo, flat envelope.
- ``keyboard`` (acoustic): additive piano-like partials with stiff-string stretch
  ``f_n = n f0 sqrt(1 + B n^2)`` (Fletcher 1964) and faster decay for higher partials.
- ``flute`` (acoustic): a few harmonics with vibrato plus breath noise shaped around them.
- ``mallet`` (acoustic): FM bell/marimba (Chowning 1973, ``sin(2 pi fc t + I(t)
  sin(2 pi fm t))``) with an inharmonic ratio and a decaying index, percussive envelope.
- ``brass`` (acoustic): FM with ratio 1 and an index that follows the envelope, so
  louder means brighter (Chowning's brass recipe).

Velocity sets the level (-19 dB at 25 up to 0 dB at 127) and, for keyboard and brass,
the brightness. Validation and test use different instruments of each family.

Used in: the VQ-VAE and inpainting notebook (NSynth spectrograms) in quick mode, through
``data_prep.prepare.nsynth_source``; the instruments also play the music fixture
(:mod:`data_prep.fixture_music`).
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import ClassVar, Protocol

import numpy as np

from data_prep.nsynth import NSYNTH_FAMILIES, NSYNTH_QUALITIES, NSYNTH_SOURCES
from data_prep.wav_files import write_pcm16_wav

SAMPLE_RATE = 16000
NOTE_SECONDS = 4.0
NOTE_OFF_SECONDS = 3.0
VELOCITIES = (25, 50, 75, 100, 127)
NOTES_PER_INSTRUMENT = 8
SPLITS = ("valid", "test")
BLOCK = 8192  # samples per block in partial_sum


def midi_to_hz(pitch: float) -> float:
    """Equal temperament: 440 * 2**((pitch - 69) / 12)."""
    return 440.0 * 2.0 ** ((pitch - 69.0) / 12.0)


def velocity_gain(velocity: int) -> float:
    """Linear gain of a MIDI velocity: 0 dB at 127, -24 dB per 127 steps below."""
    return 10.0 ** (-24.0 * (127 - velocity) / 127 / 20)


def adsr_envelope(
    num_samples: int,
    sample_rate: int,
    attack: float,
    decay: float,
    sustain: float,
    release: float,
    note_off: float,
) -> np.ndarray:
    """Attack-decay-sustain-release envelope, shape ``[num_samples]`` float32.

    Linear attack to 1 in ``attack`` s, exponential decay towards ``sustain`` with time
    constant ``decay`` s, then from ``note_off`` s an exponential release falling 60 dB
    in ``release`` s.
    """
    attack_end = min(num_samples, round(attack * sample_rate))
    off = min(num_samples, max(attack_end, round(note_off * sample_rate)))
    time = np.arange(num_samples, dtype=np.float32) / np.float32(sample_rate)
    envelope = np.empty(num_samples, np.float32)
    envelope[:attack_end] = time[:attack_end] / np.float32(max(attack, 1e-4))
    decaying = np.exp((attack - time[attack_end:off]) / np.float32(decay))
    envelope[attack_end:off] = sustain + (1.0 - sustain) * decaying
    level_at_off = envelope[off - 1] if off > 0 else np.float32(0.0)
    release_rate = np.float32(3.0 * np.log(10.0) / release)  # -60 dB after `release` s
    envelope[off:] = level_at_off * np.exp(
        -release_rate * (time[off:] - np.float32(off / sample_rate))
    )
    return envelope


def partial_sum(
    frequencies: np.ndarray,
    amplitudes: np.ndarray,
    num_samples: int,
    sample_rate: int,
    *,
    decay_rates: np.ndarray | None = None,
    time_warp: np.ndarray | None = None,
    phases: np.ndarray | None = None,
) -> np.ndarray:
    """Additive synthesis: ``sum_p a_p exp(-d_p t) sin(2 pi f_p (t + w(t)) + phi_p)``.

    Partials at or above 0.45 x the sample rate are dropped (no aliasing).

    Args:
        frequencies, amplitudes: ``[partials]`` in Hz and linear gain.
        num_samples, sample_rate: output length and rate.
        decay_rates: ``[partials]`` exponential decay rates in 1/s, or None.
        time_warp: ``[num_samples]`` added to time (vibrato), or None.
        phases: ``[partials]`` start phases in radians, or None for 0.

    Returns:
        float32 ``[num_samples]``.
    """
    keep = frequencies < 0.45 * sample_rate
    frequencies = frequencies[keep]
    amplitudes = amplitudes[keep].astype(np.float32)
    start_cycles = 0.0 if phases is None else phases[keep, None] / (2 * np.pi)
    output = np.zeros(num_samples, np.float32)
    if frequencies.size == 0:
        return output
    # Blocks of BLOCK samples keep the [partials, block] temporaries in cache (~10x faster).
    for start in range(0, num_samples, BLOCK):
        time = np.arange(start, min(num_samples, start + BLOCK)) / sample_rate
        warped = time if time_warp is None else time + time_warp[start : start + BLOCK]
        cycles = np.outer(frequencies, warped) + start_cycles  # [partials, block], float64
        cycles -= np.floor(cycles)  # in [0, 1): float32 is now precise enough
        waves = np.sin(np.float32(2 * np.pi) * cycles.astype(np.float32))
        if decay_rates is not None:
            waves *= np.exp(np.outer(-decay_rates[keep], time).astype(np.float32))
        output[start : start + time.shape[0]] = amplitudes @ waves  # [p] @ [p, block] -> [block]
    return output


def fm_operator(
    carrier_hz: float, modulator_hz: float, index: np.ndarray, sample_rate: int
) -> np.ndarray:
    """Two-operator FM: ``sin(2 pi fc t + I(t) sin(2 pi fm t))``, float32 ``[len(index)]``."""
    time = np.arange(index.shape[0]) / sample_rate
    modulator_cycles = modulator_hz * time
    modulator = np.sin(2 * np.pi * (modulator_cycles - np.floor(modulator_cycles)))
    carrier_cycles = carrier_hz * time
    carrier_cycles -= np.floor(carrier_cycles)
    return np.sin(2 * np.pi * carrier_cycles + index * modulator).astype(np.float32)


def _vibrato_warp(
    num_samples: int, sample_rate: int, rate: float, depth: float, delay: float = 0.0
) -> np.ndarray:
    """Time warp for a vibrato of relative depth ``depth`` at ``rate`` Hz after ``delay`` s.

    The instantaneous frequency is f (1 + depth sin(2 pi rate t)), i.e. time is warped by
    ``-depth / (2 pi rate) cos(2 pi rate t)`` (faded in over ``delay`` s).
    """
    time = np.arange(num_samples) / sample_rate
    fade = np.clip(time / delay, 0.0, 1.0) if delay > 0 else 1.0
    return -fade * depth / (2 * np.pi * rate) * np.cos(2 * np.pi * rate * time)


def _uniform(rng: np.random.Generator, **ranges: tuple[float, float]) -> dict[str, float]:
    """One uniform draw in ``[low, high)`` per named range, in the order given (so the same
    generator state always gives the same instrument): ``name -> value``."""
    return {name: float(rng.uniform(low, high)) for name, (low, high) in ranges.items()}


def _release_quality(instrument) -> set[str]:
    """NSynth's ``long_release`` quality for a release longer than a quarter second."""
    return {"long_release"} if instrument.release > 0.25 else set()


class Instrument(Protocol):
    """An instrument model: parameters drawn once, then any note rendered."""

    family: ClassVar[str]
    source: ClassVar[str]
    pitch_range: ClassVar[tuple[int, int]]

    def render(
        self, pitch: int, velocity: int, num_samples: int, note_off: float, sample_rate: int
    ) -> np.ndarray:
        """MIDI ``pitch`` at ``velocity`` (1..127), released at ``note_off`` seconds.

        Returns:
            float32 ``[num_samples]``, not normalised (see :func:`render_note`).
        """
        ...

    def qualities(self) -> set[str]:
        """The NSynth qualities (names from ``NSYNTH_QUALITIES``) this instrument has."""
        ...


@dataclasses.dataclass(frozen=True)
class Organ:
    """Drawbar organ: fixed harmonic mix, tremolo, on/off envelope."""

    family: ClassVar[str] = "organ"
    source: ClassVar[str] = "electronic"
    pitch_range: ClassVar[tuple[int, int]] = (36, 84)
    harmonics: tuple[int, ...]
    levels: tuple[float, ...]
    tremolo_hz: float
    tremolo_depth: float
    release: float

    @classmethod
    def draw(cls, rng: np.random.Generator) -> Organ:
        harmonics = (1, 2, 3, 4, 6, 8)
        levels = rng.choice([0.0, 0.25, 0.5, 0.75, 1.0], size=len(harmonics))
        levels[0] = 1.0
        return cls(
            harmonics,
            tuple(float(level) for level in levels),
            **_uniform(rng, tremolo_hz=(4.5, 7.0), tremolo_depth=(0.0, 0.2), release=(0.08, 0.3)),
        )

    def render(self, pitch, velocity, num_samples, note_off, sample_rate):
        f0 = midi_to_hz(pitch)
        tone = partial_sum(
            f0 * np.array(self.harmonics, float), np.array(self.levels), num_samples, sample_rate
        )
        time = np.arange(num_samples) / sample_rate
        tremolo = 1.0 - self.tremolo_depth * (
            0.5 + 0.5 * np.sin(2 * np.pi * self.tremolo_hz * time)
        )
        envelope = adsr_envelope(num_samples, sample_rate, 0.01, 1.0, 1.0, self.release, note_off)
        return (tone * tremolo * envelope).astype(np.float32)

    def qualities(self):
        return ({"bright"} if sum(self.levels[3:]) > 1.5 else set()) | _release_quality(self)


@dataclasses.dataclass(frozen=True)
class Keyboard:
    """Piano-like: stretched partials, brighter when struck harder, high partials die first."""

    family: ClassVar[str] = "keyboard"
    source: ClassVar[str] = "acoustic"
    pitch_range: ClassVar[tuple[int, int]] = (36, 84)
    rolloff: float  # amplitude ~ n**-rolloff
    hammer_node: int  # partials at multiples of it are weak (strike position)
    stretch: float  # inharmonicity B
    decay: float  # decay rate of the fundamental at middle C, 1/s
    release: float

    @classmethod
    def draw(cls, rng: np.random.Generator) -> Keyboard:
        rolloff = float(rng.uniform(0.9, 1.6))
        hammer_node = int(rng.integers(5, 9))
        return cls(
            rolloff,
            hammer_node,
            **_uniform(rng, stretch=(1e-4, 6e-4), decay=(0.6, 1.4), release=(0.15, 0.4)),
        )

    def render(self, pitch, velocity, num_samples, note_off, sample_rate):
        f0 = midi_to_hz(pitch)
        numbers = np.arange(1, 25, dtype=float)
        frequencies = numbers * f0 * np.sqrt(1.0 + self.stretch * numbers**2)
        brightness = self.rolloff + 1.2 * (1.0 - velocity / 127)
        amplitudes = numbers**-brightness
        amplitudes[(numbers % self.hammer_node) == 0] *= 0.1
        decay_rates = self.decay * 2.0 ** ((pitch - 60) / 24) * (1.0 + 0.4 * (numbers - 1))
        phases = np.linspace(0.0, 2.0, numbers.shape[0]) * np.pi
        tone = partial_sum(
            frequencies,
            amplitudes,
            num_samples,
            sample_rate,
            decay_rates=decay_rates,
            phases=phases,
        )
        envelope = adsr_envelope(num_samples, sample_rate, 0.003, 1.0, 1.0, self.release, note_off)
        return tone * envelope

    def qualities(self):
        return {"percussive"} | ({"dark"} if self.rolloff > 1.4 else set()) | _release_quality(self)


@dataclasses.dataclass(frozen=True)
class Flute:
    """A few harmonics with vibrato, and breath noise shaped around them."""

    family: ClassVar[str] = "flute"
    source: ClassVar[str] = "acoustic"
    pitch_range: ClassVar[tuple[int, int]] = (60, 84)
    overtones: tuple[float, float, float]  # levels of harmonics 2, 3, 4
    vibrato_hz: float
    vibrato_depth: float
    breath: float  # noise level relative to the tone
    attack: float
    release: float
    seed: int  # the breath noise of this instrument

    @classmethod
    def draw(cls, rng: np.random.Generator) -> Flute:
        overtones = (
            float(rng.uniform(0.05, 0.3)),
            float(rng.uniform(0.02, 0.15)),
            float(rng.uniform(0.0, 0.06)),
        )
        settings = _uniform(
            rng,
            vibrato_hz=(4.5, 5.8),
            vibrato_depth=(0.002, 0.007),
            breath=(0.03, 0.08),
            attack=(0.05, 0.12),
            release=(0.1, 0.25),
        )
        return cls(overtones, **settings, seed=int(rng.integers(2**31)))

    def render(self, pitch, velocity, num_samples, note_off, sample_rate):
        f0 = midi_to_hz(pitch)
        warp = _vibrato_warp(
            num_samples, sample_rate, self.vibrato_hz, self.vibrato_depth, delay=0.4
        )
        tone = partial_sum(
            f0 * np.arange(1.0, 5.0),
            np.array([1.0, *self.overtones]),
            num_samples,
            sample_rate,
            time_warp=warp,
        )
        # Breath: white noise filtered to bumps around the harmonics, in the frequency domain.
        rng = np.random.default_rng([self.seed, pitch, velocity])
        spectrum = np.fft.rfft(rng.standard_normal(num_samples))
        bins = np.fft.rfftfreq(num_samples, 1.0 / sample_rate)
        shape = sum(np.exp(-0.5 * ((bins - n * f0) / (0.06 * n * f0)) ** 2) / n for n in (1, 2, 3))
        breath = np.fft.irfft(spectrum * shape, num_samples)
        breath *= self.breath / max(float(np.std(breath)), 1e-9) * 0.7
        envelope = adsr_envelope(
            num_samples, sample_rate, self.attack, 0.3, 0.85, self.release, note_off
        )
        chiff = adsr_envelope(num_samples, sample_rate, 0.01, 0.04, 0.0, 0.05, note_off)
        return ((tone + breath * (1.0 + 3.0 * chiff)) * envelope).astype(np.float32)

    def qualities(self):
        return ({"dark"} if sum(self.overtones) < 0.15 else set()) | _release_quality(self)


@dataclasses.dataclass(frozen=True)
class Mallet:
    """FM bell or marimba: inharmonic modulator ratio, index and level decaying fast."""

    family: ClassVar[str] = "mallet"
    source: ClassVar[str] = "acoustic"
    pitch_range: ClassVar[tuple[int, int]] = (48, 84)
    ratio: float
    index: float
    index_decay: float  # s
    decay: float  # s, time constant of the level
    overtone: float  # level of a 4x partial (marimba bar mode)

    @classmethod
    def draw(cls, rng: np.random.Generator) -> Mallet:
        ratio = float(rng.choice([1.4, 2.76, 3.5, 4.0]))
        return cls(
            ratio,
            **_uniform(
                rng,
                index=(1.0, 4.0),
                index_decay=(0.03, 0.2),
                decay=(0.15, 0.9),
                overtone=(0.0, 0.4),
            ),
        )

    def render(self, pitch, velocity, num_samples, note_off, sample_rate):
        f0 = midi_to_hz(pitch)
        time = np.arange(num_samples) / sample_rate
        index = self.index * (0.5 + 0.5 * velocity / 127) * np.exp(-time / self.index_decay)
        tone = fm_operator(f0, self.ratio * f0, index, sample_rate)
        tone += partial_sum(
            np.array([4.0 * f0]),
            np.array([self.overtone]),
            num_samples,
            sample_rate,
            decay_rates=np.array([4.0 / self.decay]),
        )
        envelope = adsr_envelope(num_samples, sample_rate, 0.001, self.decay, 0.0, 0.1, note_off)
        return tone * envelope

    def qualities(self):
        return {"percussive"} | ({"fast_decay"} if self.decay < 0.4 else set())


@dataclasses.dataclass(frozen=True)
class Brass:
    """FM with ratio 1 and an index following the envelope: louder is brighter."""

    family: ClassVar[str] = "brass"
    source: ClassVar[str] = "acoustic"
    pitch_range: ClassVar[tuple[int, int]] = (40, 76)
    index: float  # modulation index at full velocity and level
    attack: float  # s
    sustain: float  # level, 0..1
    release: float  # s
    vibrato_depth: float  # relative frequency deviation

    @classmethod
    def draw(cls, rng: np.random.Generator) -> Brass:
        index = float(rng.uniform(2.0, 5.0))
        envelope = _uniform(rng, attack=(0.03, 0.09), sustain=(0.65, 0.9), release=(0.08, 0.25))
        return cls(index, **envelope, vibrato_depth=float(rng.uniform(0.0, 0.006)))

    def render(self, pitch, velocity, num_samples, note_off, sample_rate):
        f0 = midi_to_hz(pitch)
        envelope = adsr_envelope(
            num_samples, sample_rate, self.attack, 0.15, self.sustain, self.release, note_off
        )
        index = self.index * (0.3 + 0.7 * velocity / 127) * envelope
        warp = _vibrato_warp(num_samples, sample_rate, 5.5, self.vibrato_depth, delay=0.6)
        time = np.arange(num_samples) / sample_rate
        cycles = f0 * (time + warp)
        phase = 2 * np.pi * (cycles - np.floor(cycles))
        tone = np.sin(phase + index * np.sin(phase)).astype(np.float32)  # ratio 1:1
        return tone * envelope

    def qualities(self):
        return ({"bright"} if self.index > 3.5 else set()) | _release_quality(self)


INSTRUMENTS: dict[str, type] = {cls.family: cls for cls in (Organ, Keyboard, Flute, Mallet, Brass)}
"""Family name -> instrument class (each has ``draw(rng)``)."""


def draw_instrument(family: str, index: int, seed: int) -> Instrument:
    """Instrument ``index`` of ``family``: the same parameters for the same seed, always."""
    if family not in INSTRUMENTS:
        raise ValueError(f"unknown family {family!r}; choose from {sorted(INSTRUMENTS)}.")
    rng = np.random.default_rng([seed, 2, NSYNTH_FAMILIES.index(family), index])
    return INSTRUMENTS[family].draw(rng)


def render_note(
    instrument: Instrument,
    pitch: int,
    velocity: int,
    sample_rate: int = SAMPLE_RATE,
    seconds: float = NOTE_SECONDS,
    note_off: float = NOTE_OFF_SECONDS,
) -> np.ndarray:
    """One note, peak-normalised then scaled by :func:`velocity_gain` (x 0.9).

    Returns:
        float32 ``[round(seconds * sample_rate)]`` in [-0.9, 0.9].
    """
    samples = instrument.render(
        pitch, velocity, round(seconds * sample_rate), note_off, sample_rate
    )
    peak = max(float(np.max(np.abs(samples))), 1e-9)
    return (samples * (0.9 * velocity_gain(velocity) / peak)).astype(np.float32)


def _note_metadata(
    note_id: int, instrument_index: int, instrument: Instrument, pitch: int, velocity: int
) -> dict:
    family_id = NSYNTH_FAMILIES.index(instrument.family)
    instrument_str = f"{instrument.family}_{instrument.source}_{instrument_index:03d}"
    qualities = instrument.qualities()
    return {
        "note": note_id,
        "note_str": f"{instrument_str}-{pitch:03d}-{velocity:03d}",
        "instrument": family_id * 1000 + instrument_index,
        "instrument_str": instrument_str,
        "pitch": pitch,
        "velocity": velocity,
        "sample_rate": SAMPLE_RATE,
        "instrument_family": family_id,
        "instrument_family_str": instrument.family,
        "instrument_source": NSYNTH_SOURCES.index(instrument.source),
        "instrument_source_str": instrument.source,
        "qualities": [int(name in qualities) for name in NSYNTH_QUALITIES],
        "qualities_str": [name for name in NSYNTH_QUALITIES if name in qualities],
    }


def plan_notes(
    family: str, split_index: int, per_class: int, seed: int
) -> list[tuple[int, int, int]]:
    """``per_class`` distinct ``(instrument_index, pitch, velocity)`` for one family and split.

    Split ``k`` uses instruments ``k * n .. k * n + n - 1`` with
    ``n = ceil(per_class / NOTES_PER_INSTRUMENT)``, so no instrument is in two splits.
    """
    num_instruments = -(-per_class // NOTES_PER_INSTRUMENT)
    low, high = INSTRUMENTS[family].pitch_range
    grid = [(pitch, velocity) for pitch in range(low, high + 1) for velocity in VELOCITIES]
    rng = np.random.default_rng([seed, 2, NSYNTH_FAMILIES.index(family), 1000 + split_index])
    orders = [rng.permutation(len(grid)) for _ in range(num_instruments)]
    plan = []
    for note in range(per_class):
        slot = note % num_instruments
        pitch, velocity = grid[orders[slot][note // num_instruments]]
        plan.append((split_index * num_instruments + slot, pitch, velocity))
    return plan


def write_nsynth(folder: Path, per_class: int, seed: int) -> dict:
    """Write ``nsynth-valid`` and ``nsynth-test`` into ``folder`` (empty or new).

    Args:
        folder: where the two split folders go.
        per_class: notes per family in each split.
        seed: same seed and ``per_class``, byte-identical files.

    Returns:
        A summary: ``counts`` (family -> notes over both splits), ``splits``.
    """
    counts = dict.fromkeys(INSTRUMENTS, 0)
    splits = {}
    note_id = 0
    for split_index, split in enumerate(SPLITS):
        split_folder = folder / f"nsynth-{split}"
        examples = {}
        for family in INSTRUMENTS:
            for instrument_index, pitch, velocity in plan_notes(
                family, split_index, per_class, seed
            ):
                instrument = draw_instrument(family, instrument_index, seed)
                metadata = _note_metadata(note_id, instrument_index, instrument, pitch, velocity)
                write_pcm16_wav(
                    split_folder / "audio" / f"{metadata['note_str']}.wav",
                    render_note(instrument, pitch, velocity),
                    SAMPLE_RATE,
                )
                examples[metadata["note_str"]] = metadata
                counts[family] += 1
                note_id += 1
        (split_folder / "examples.json").write_text(json.dumps(examples, indent=2))
        splits[split] = len(examples)
    return {"counts": counts, "splits": splits}
