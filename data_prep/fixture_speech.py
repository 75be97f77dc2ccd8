"""A spoken-word fixture in the Speech Commands v0.02 layout, synthesised with eSpeak NG.

Layout (the same as the real dataset, so the same converter reads both)::

    speech_commands/
        yes/<speaker>_nohash_0.wav     16 kHz mono 16-bit, exactly 1 s
        ... one folder per word (10 commands + 10 digits)
        validation_list.txt            word/<speaker>_nohash_0.wav, one per line
        testing_list.txt
        _background_noise_/            white, pink, brown noise and mains hum, 15 s each

Each speaker is an eSpeak NG voice: an English accent, a voice variant, a speaking
rate, a base pitch and a pitch range, plus a microphone tilt, all drawn from the seed.
Every speaker says every word once. Speaker ids are 8 hex digits chosen so that
TensorFlow's Speech Commands hash rule (``input_data.which_set``: SHA-1 of the name
before ``_nohash_``, 10% validation, 10% testing) puts each speaker in the split the
list files give it: a folder split by lists and one split by the hash agree, and no
speaker crosses splits.

Each clip: eSpeak at 22050 Hz -> soxr to 16 kHz -> silence trimmed -> microphone tilt
-> random peak level (-20..-1 dBFS) -> placed at a random offset in the 1 s clip (never
cut) -> white or pink noise 30..40 dB below the word's RMS.

Used in: 01_speech_commands_tfrecords.ipynb and the notebooks that train on spoken
words, in quick mode (through ``data_prep.prepare.speech_commands_source``).
"""

from __future__ import annotations

import dataclasses
import hashlib
from pathlib import Path

import numpy as np

from course_lib.audio import resample
from data_prep import espeak
from data_prep.wav_files import write_pcm16_wav

SAMPLE_RATE = 16000
CLIP_SAMPLES = SAMPLE_RATE  # exactly 1 s, like the real clips
COMMAND_WORDS = ("yes", "no", "up", "down", "left", "right", "on", "off", "stop", "go")
DIGIT_WORDS = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")
WORDS = COMMAND_WORDS + DIGIT_WORDS

VALIDATION_PERCENT = 10.0
TESTING_PERCENT = 10.0
NOISE_FOLDER = "_background_noise_"
NOISE_SECONDS = 15.0
NOISE_RMS = 0.1
RATE_RANGE = (120, 230)  # words per minute; slower rates push some variants past 0.9 s
PITCH_RANGE = (15, 85)
PITCH_VARIATION_RANGE = (20, 80)
TILT_RANGE = (-0.5, 0.5)  # first-difference mix: < 0 duller, > 0 brighter microphone
PEAK_DBFS_RANGE = (-20.0, -1.0)
NOISE_DB_BELOW_WORD = (30.0, 40.0)
MAX_WORD_SECONDS = 0.9
TRIM_DB_BELOW_PEAK = 35.0
FRAME = 160  # 10 ms at 16 kHz, the trimming resolution
_MAX_HASH = 2**27 - 1  # TensorFlow's MAX_NUM_WAVS_PER_CLASS


@dataclasses.dataclass(frozen=True)
class Speaker:
    """One synthetic speaker: an eSpeak voice and a microphone.

    Attributes:
        speaker_id: 8 lowercase hex digits, as in the real dataset.
        split: ``"training"``, ``"validation"`` or ``"testing"``.
        accent: an eSpeak English voice, e.g. ``"en-gb-scotland"``.
        variant: an eSpeak voice variant, e.g. ``"f3"``.
        rate, pitch, pitch_range: eSpeak parameters (see :class:`espeak.Utterance`).
        tilt: spectral tilt of the microphone, ``y = x + tilt * (x[n] - x[n-1])``.
    """

    speaker_id: str
    split: str
    accent: str
    variant: str
    rate: int
    pitch: int
    pitch_range: int
    tilt: float

    def utterance(self, word: str, rate: int | None = None) -> espeak.Utterance:
        return espeak.Utterance(
            word, f"{self.accent}+{self.variant}", rate or self.rate, self.pitch, self.pitch_range
        )


def hash_split(file_name: str) -> str:
    """The split TensorFlow's Speech Commands rule gives a file (``input_data.which_set``).

    SHA-1 of the name without its ``_nohash_...`` part, modulo 2**27, as a percentage:
    below 10 is validation, below 20 testing, the rest training.
    """
    speaker = Path(file_name).name.split("_nohash_")[0]
    digest = int(hashlib.sha1(speaker.encode()).hexdigest(), 16)
    percent = (digest % (_MAX_HASH + 1)) * (100.0 / _MAX_HASH)
    if percent < VALIDATION_PERCENT:
        return "validation"
    if percent < VALIDATION_PERCENT + TESTING_PERCENT:
        return "testing"
    return "training"


def draw_speakers(num_speakers: int, rng: np.random.Generator) -> list[Speaker]:
    """``num_speakers`` distinct speakers, 10% validation and 10% testing (one each at least).

    With fewer than 3 speakers every speaker is in training.
    """
    held_out = max(1, round(num_speakers * VALIDATION_PERCENT / 100)) if num_speakers >= 3 else 0
    quota = {"validation": held_out, "testing": held_out, "training": num_speakers - 2 * held_out}
    ids: list[tuple[str, str]] = []
    used: set[str] = set()
    while len(ids) < num_speakers:  # rejection sampling: about num_speakers draws in all
        speaker_id = f"{int(rng.integers(0, 2**32)):08x}"
        split = hash_split(speaker_id)
        if quota[split] > 0 and speaker_id not in used:
            quota[split] -= 1
            used.add(speaker_id)
            ids.append((speaker_id, split))

    voices = [
        (accent, variant)
        for accent in espeak.ENGLISH_ACCENTS
        for variant in espeak.voice_variants()
    ]
    order = np.concatenate(
        [rng.permutation(len(voices)) for _ in range(-(-num_speakers // len(voices)))]
    )
    rates = rng.integers(RATE_RANGE[0], RATE_RANGE[1] + 1, num_speakers)
    pitches = rng.integers(PITCH_RANGE[0], PITCH_RANGE[1] + 1, num_speakers)
    pitch_ranges = rng.integers(
        PITCH_VARIATION_RANGE[0], PITCH_VARIATION_RANGE[1] + 1, num_speakers
    )
    tilts = rng.uniform(*TILT_RANGE, num_speakers)
    return [
        Speaker(
            speaker_id,
            split,
            *voices[order[index]],
            int(rates[index]),
            int(pitches[index]),
            int(pitch_ranges[index]),
            round(float(tilts[index]), 3),
        )
        for index, (speaker_id, split) in enumerate(ids)
    ]


def colored_noise(num_samples: int, exponent: float, rng: np.random.Generator) -> np.ndarray:
    """Noise with power spectrum ~ 1 / f**exponent (0 white, 1 pink, 2 brown), unit RMS.

    Shapes white Gaussian noise in the frequency domain: amplitude ~ f**(-exponent/2).

    Returns:
        float32 samples, shape ``[num_samples]``.
    """
    spectrum = np.fft.rfft(rng.standard_normal(num_samples))
    frequencies = np.arange(spectrum.shape[0], dtype=np.float64)
    frequencies[0] = frequencies[1]  # no infinite gain at DC
    noise = np.fft.irfft(spectrum * frequencies ** (-exponent / 2.0), num_samples)
    noise -= noise.mean()
    return (noise / np.sqrt(np.mean(noise**2))).astype(np.float32)


def background_noises(rng: np.random.Generator) -> dict[str, np.ndarray]:
    """The ``_background_noise_`` files: name -> float32 ``[NOISE_SECONDS * 16000]``, RMS 0.1.

    White, pink and brown noise (power ~ 1/f**0, 1/f, 1/f**2), and mains hum: a 50 or
    60 Hz buzz with 5 harmonics, slowly wavering, over brown noise.
    """
    num_samples = int(NOISE_SECONDS * SAMPLE_RATE)
    time = np.arange(num_samples) / SAMPLE_RATE
    mains = 50.0 if rng.random() < 0.5 else 60.0
    buzz = sum(
        np.sin(2 * np.pi * mains * harmonic * time + rng.uniform(0, 2 * np.pi)) / harmonic
        for harmonic in (1, 2, 3, 4, 5)
    )
    noises = {
        "white_noise": colored_noise(num_samples, 0.0, rng),
        "pink_noise": colored_noise(num_samples, 1.0, rng),
        "brown_noise": colored_noise(num_samples, 2.0, rng),
        "mains_hum": buzz * (1 + 0.2 * np.sin(2 * np.pi * 0.3 * time))
        + 0.3 * colored_noise(num_samples, 2.0, rng),
    }
    return {
        name: (NOISE_RMS * noise / np.sqrt(np.mean(noise**2))).astype(np.float32)
        for name, noise in noises.items()
    }


def trim_silence(samples: np.ndarray) -> np.ndarray:
    """Cut leading and trailing 10 ms frames more than 35 dB below the loudest frame.

    Keeps one frame of margin on each side. Shape ``[n] -> [m]``, m <= n.
    """
    num_frames = -(-samples.shape[0] // FRAME)
    frames = np.pad(samples, (0, num_frames * FRAME - samples.shape[0])).reshape(num_frames, FRAME)
    rms = np.sqrt(np.mean(frames.astype(np.float64) ** 2, axis=1))  # [num_frames]
    loud = np.flatnonzero(rms > rms.max() * 10 ** (-TRIM_DB_BELOW_PEAK / 20))
    if loud.size == 0:
        return samples[:0]
    start = max(0, loud[0] - 1) * FRAME
    stop = min(num_frames, loud[-1] + 2) * FRAME
    return samples[start:stop]


def _word_audio(raw: np.ndarray, source_rate: int) -> np.ndarray:
    """eSpeak int16 output -> the trimmed word at 16 kHz, float32 ``[m]``."""
    return trim_silence(resample(raw.astype(np.float32) / 32768.0, source_rate, SAMPLE_RATE))


def synthesize_words(speakers: list[Speaker]) -> dict[tuple[str, str], np.ndarray]:
    """Every speaker says every word: ``(speaker_id, word) -> trimmed 16 kHz word``.

    Words longer than ``MAX_WORD_SECONDS`` are said again 35% faster (up to 4 times),
    so no word is ever cut to fit its 1 s clip.

    Raises:
        RuntimeError: a word is silent or stays too long.
    """
    jobs = {
        (speaker.speaker_id, word): (speaker, speaker.rate)
        for speaker in speakers
        for word in WORDS
    }
    source_rate = espeak.sample_rate()
    words: dict[tuple[str, str], np.ndarray] = {}
    for _ in range(5):
        keys = list(jobs)
        raws = espeak.synthesize_batch(
            [speaker.utterance(key[1], rate) for key, (speaker, rate) in jobs.items()]
        )
        retry = {}
        for key, raw in zip(keys, raws, strict=True):
            audio = _word_audio(raw, source_rate)
            speaker, rate = jobs[key]
            if audio.shape[0] == 0:
                raise RuntimeError(f"eSpeak NG said nothing for {key[1]!r} with {speaker}.")
            if audio.shape[0] > MAX_WORD_SECONDS * SAMPLE_RATE and rate < espeak.RATE_LIMITS[1]:
                retry[key] = (speaker, min(espeak.RATE_LIMITS[1], round(rate * 1.35)))
            else:
                words[key] = audio
        jobs = retry
        if not jobs:
            return words
    raise RuntimeError(f"words still longer than {MAX_WORD_SECONDS} s: {sorted(jobs)}")


def make_clip(
    word: np.ndarray, tilt: float, noise_bank: np.ndarray, rng: np.random.Generator
) -> np.ndarray:
    """Place one trimmed word in a noisy 1 s clip.

    Args:
        word: float32 ``[m]`` with m <= ``CLIP_SAMPLES``.
        tilt: microphone tilt of the speaker.
        noise_bank: ``[kinds, n]`` unit-RMS noises to take a random stretch from.
        rng: the generator that picks level, offset and noise.

    Returns:
        float32 ``[CLIP_SAMPLES]``.
    """
    word = word + tilt * np.diff(word, prepend=word[:1])  # microphone colour
    peak = 10 ** (rng.uniform(*PEAK_DBFS_RANGE) / 20)
    word = word * (peak / max(float(np.max(np.abs(word))), 1e-9))
    offset = int(rng.integers(0, CLIP_SAMPLES - word.shape[0] + 1))
    clip = np.zeros(CLIP_SAMPLES, np.float32)
    clip[offset : offset + word.shape[0]] = word
    noise_start = int(rng.integers(0, noise_bank.shape[1] - CLIP_SAMPLES + 1))
    noise = noise_bank[
        int(rng.integers(0, noise_bank.shape[0])), noise_start : noise_start + CLIP_SAMPLES
    ]
    word_rms = float(np.sqrt(np.mean(word.astype(np.float64) ** 2)))
    noise_level = word_rms * 10 ** (-rng.uniform(*NOISE_DB_BELOW_WORD) / 20)
    return np.clip(clip + noise_level * noise, -1.0, 1.0).astype(np.float32)


def write_speech_commands(folder: Path, per_class: int, seed: int) -> dict:
    """Write the spoken-word fixture into ``folder`` (which must be empty or new).

    Args:
        folder: where the Speech Commands layout goes.
        per_class: speakers, i.e. clips per word.
        seed: same seed and ``per_class``, byte-identical files.

    Returns:
        A summary: ``counts`` (word -> clips), ``splits`` (split -> clips), ``speakers``
        (list of :class:`Speaker` fields), ``word_seconds`` (word -> mean duration).
    """
    rng = np.random.default_rng([seed, 1])  # stream 1: speech
    speakers = draw_speakers(per_class, rng)
    words = synthesize_words(speakers)
    noise_bank = np.stack(
        [colored_noise(4 * CLIP_SAMPLES, exponent, rng) for exponent in (0.0, 1.0)]
    )  # [white/pink, 4 s]

    lists: dict[str, list[str]] = {"validation": [], "testing": []}
    splits = {"training": 0, "validation": 0, "testing": 0}
    for speaker in speakers:
        for word in WORDS:
            clip = make_clip(words[speaker.speaker_id, word], speaker.tilt, noise_bank, rng)
            relative = f"{word}/{speaker.speaker_id}_nohash_0.wav"
            write_pcm16_wav(folder / relative, clip, SAMPLE_RATE)
            splits[speaker.split] += 1
            if speaker.split in lists:
                lists[speaker.split].append(relative)
    for split, lines in lists.items():
        text = "".join(f"{line}\n" for line in sorted(lines))
        (folder / f"{split}_list.txt").write_text(text)
    for name, noise in background_noises(rng).items():
        write_pcm16_wav(folder / NOISE_FOLDER / f"{name}.wav", noise, SAMPLE_RATE)

    word_seconds = {
        word: round(
            float(np.mean([words[speaker.speaker_id, word].shape[0] for speaker in speakers]))
            / SAMPLE_RATE,
            3,
        )
        for word in WORDS
    }
    return {
        "counts": dict.fromkeys(WORDS, len(speakers)),
        "splits": splits,
        "word_seconds": word_seconds,
        "speakers": [dataclasses.asdict(speaker) for speaker in speakers],
    }
