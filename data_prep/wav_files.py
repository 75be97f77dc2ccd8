"""The fixture generators' WAV writer: mono 16-bit PCM through the standard library.

Not :func:`course_lib.audio.write_wav`: that one goes through soundfile, which packs
floats with a different scale and rounding (about half the samples of a noisy clip differ
by one step) and is about 1.7x slower for many short files. Here the samples are packed
with :func:`course_lib.audio.to_pcm16`, the convention the converters read back exactly.

Used in: :mod:`data_prep.fixture_speech`, :mod:`data_prep.fixture_notes` and
:mod:`data_prep.fixture_music`.
"""

from __future__ import annotations

import wave
from pathlib import Path

import numpy as np

from course_lib.audio import to_pcm16


def write_pcm16_wav(path: Path, samples: np.ndarray, sample_rate: int) -> None:
    """Write mono float samples in [-1, 1] as a 16-bit PCM WAV, creating parent folders."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with wave.open(str(path), "wb") as wav_file:
        wav_file.setnchannels(1)
        wav_file.setsampwidth(2)
        wav_file.setframerate(sample_rate)
        wav_file.writeframes(to_pcm16(samples))
