"""Speech synthesis with the eSpeak NG engine of the ``espeakng-loader`` wheel, via ctypes.

eSpeak NG (a formant synthesiser) renders English words in many accents and voice
variants in well under a millisecond per word, offline, so it can build a spoken-word
fixture in the Speech Commands layout. The C API is the one of espeak-ng's
``speak_lib.h``: ``espeak_Initialize`` (synchronous output, returns the rate, 22050 Hz),
``espeak_SetSynthCallback`` (receives int16 chunks), ``espeak_SetVoiceByName``
(``"en-us+f3"``: accent + variant), ``espeak_SetParameter`` (rate, pitch, pitch range),
``espeak_Synth`` and ``espeak_Synchronize``.

The engine holds global state: it is initialised once per process (:class:`_Engine`,
a lazy singleton behind a lock). Two things stop it from being bit-reproducible:

- ``espeak_Initialize`` seeds the noise generator (breath and whisper noise of variants
  such as ``f3``, ``Alicia``, ``whisper``) from the clock; we reseed it with
  ``espeak_ng_SetRandSeed`` (espeak-ng's ``espeak_ng.h``).
- Wave-generator state (the pitch-flutter phase, the noise sequence) carries over from
  one utterance to the next, so the same call made twice in one process gives slightly
  different samples (the same word, a few samples longer or shorter).

So a fresh process that makes the same calls in the same order gives identical samples:
:func:`synthesize_batch` runs one to be bit-reproducible; :func:`synthesize` is the
quick in-process call.

Used in: the spoken-word fixture (:mod:`data_prep.fixture_speech`), which quick mode uses
from 01_speech_commands_tfrecords.ipynb on.
"""

from __future__ import annotations

import ctypes
import dataclasses
import json
import os
import subprocess
import sys
import tempfile
import threading
from collections.abc import Sequence
from pathlib import Path

import numpy as np

# espeak-ng speak_lib.h constants.
AUDIO_OUTPUT_SYNCHRONOUS = 2  # espeak_AUDIO_OUTPUT: return audio through the callback, block
POS_CHARACTER = 1  # espeak_POSITION_TYPE (the enum starts at 1)
CHARS_AUTO = 0  # espeakCHARS_AUTO: UTF-8 or 8-bit text
PARAMETER_RATE = 1  # espeakRATE, words per minute
PARAMETER_PITCH = 3  # espeakPITCH, 0..100 (50 = normal)
PARAMETER_RANGE = 4  # espeakRANGE, pitch range 0..100 (0 = monotone, 50 = normal)
RATE_LIMITS = (80, 450)  # espeakRATE_MINIMUM, espeakRATE_MAXIMUM
NOISE_SEED = 1
ERROR_NAMES = {-1: "EE_INTERNAL_ERROR", 1: "EE_BUFFER_FULL", 2: "EE_NOT_FOUND"}

ENGLISH_ACCENTS = (
    "en",
    "en-us",
    "en-gb-scotland",
    "en-gb-x-rp",
    "en-gb-x-gbclan",
    "en-gb-x-gbcwmd",
    "en-029",
    "en-us-nyc",
)
"""English voices of eSpeak NG (``espeak-ng-data/lang/gmw/en*``, without Shavian script)."""

# int cb(short *wav, int numsamples, espeak_EVENT *events); events are not read here.
_SynthCallback = ctypes.CFUNCTYPE(
    ctypes.c_int, ctypes.POINTER(ctypes.c_short), ctypes.c_int, ctypes.c_void_p
)


@dataclasses.dataclass(frozen=True)
class Utterance:
    """One thing to say and the voice to say it with.

    Attributes:
        text: the words (UTF-8).
        voice: ``"<accent>+<variant>"`` such as ``"en-us+f3"``, or just an accent.
        rate: speaking rate in words per minute, 80..450 (175 is eSpeak's default).
        pitch: base pitch, 0..100 (50 is normal).
        pitch_range: pitch variation, 0..100 (0 is monotone, 50 is normal).
    """

    text: str
    voice: str = "en"
    rate: int = 175
    pitch: int = 50
    pitch_range: int = 50

    def __post_init__(self):
        if not self.text.strip():
            raise ValueError("Utterance.text is empty: give the words to say.")
        if not RATE_LIMITS[0] <= self.rate <= RATE_LIMITS[1]:
            raise ValueError(f"Utterance.rate must be in {RATE_LIMITS} words/min, got {self.rate}.")
        for name in ("pitch", "pitch_range"):
            if not 0 <= getattr(self, name) <= 100:
                raise ValueError(f"Utterance.{name} must be in 0..100, got {getattr(self, name)}.")


def data_path() -> Path:
    """The ``espeak-ng-data`` folder shipped in the ``espeakng-loader`` wheel."""
    import espeakng_loader

    return Path(espeakng_loader.get_data_path())


def voice_variants() -> list[str]:
    """Names of the voice variants (files in ``espeak-ng-data/voices/!v``), sorted."""
    return sorted(path.name for path in (data_path() / "voices" / "!v").iterdir())


class _Engine:
    """The process-wide eSpeak NG engine: loaded and initialised on first use."""

    _instance: _Engine | None = None
    _instance_lock = threading.Lock()

    def __init__(self):
        import espeakng_loader

        library = ctypes.CDLL(espeakng_loader.get_library_path())
        library.espeak_Initialize.argtypes = [
            ctypes.c_int,
            ctypes.c_int,
            ctypes.c_char_p,
            ctypes.c_int,
        ]
        library.espeak_Initialize.restype = ctypes.c_int
        library.espeak_SetSynthCallback.argtypes = [_SynthCallback]
        library.espeak_SetSynthCallback.restype = None
        library.espeak_SetVoiceByName.argtypes = [ctypes.c_char_p]
        library.espeak_SetVoiceByName.restype = ctypes.c_int
        library.espeak_SetParameter.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_int]
        library.espeak_SetParameter.restype = ctypes.c_int
        library.espeak_Synth.argtypes = [
            ctypes.c_void_p,  # const void *text
            ctypes.c_size_t,  # size_t size
            ctypes.c_uint,  # unsigned int position
            ctypes.c_int,  # espeak_POSITION_TYPE position_type
            ctypes.c_uint,  # unsigned int end_position
            ctypes.c_uint,  # unsigned int flags
            ctypes.POINTER(ctypes.c_uint),  # unsigned int *unique_identifier
            ctypes.c_void_p,  # void *user_data
        ]
        library.espeak_Synth.restype = ctypes.c_int
        library.espeak_Synchronize.argtypes = []
        library.espeak_Synchronize.restype = ctypes.c_int

        rate = library.espeak_Initialize(AUDIO_OUTPUT_SYNCHRONOUS, 0, str(data_path()).encode(), 0)
        if rate <= 0:
            raise RuntimeError(
                f"espeak_Initialize failed (returned {rate}); data folder "
                f"{data_path()} may be incomplete: reinstall espeakng-loader."
            )
        self.library = library
        self.sample_rate = int(rate)
        self.variants = frozenset(voice_variants())
        self._chunks: list[np.ndarray] = []
        self._lock = threading.Lock()
        # Kept on the instance: the C library holds only a raw pointer to it.
        self._callback = _SynthCallback(self._receive)
        library.espeak_SetSynthCallback(self._callback)
        # espeak_Initialize seeds the engine's noise generator (breath, whisper) from the
        # clock; espeak_ng_SetRandSeed(long) (espeak_ng.h) makes it repeatable.
        library.espeak_ng_SetRandSeed.argtypes = [ctypes.c_long]
        library.espeak_ng_SetRandSeed.restype = ctypes.c_int
        self._check(library.espeak_ng_SetRandSeed(NOISE_SEED), "espeak_ng_SetRandSeed")

    @classmethod
    def get(cls) -> _Engine:
        with cls._instance_lock:
            if cls._instance is None:
                cls._instance = cls()
            return cls._instance

    def _receive(self, wav, num_samples: int, events) -> int:
        if wav and num_samples > 0:
            self._chunks.append(np.ctypeslib.as_array(wav, shape=(num_samples,)).copy())
        return 0  # 0 = continue synthesis

    def _check(self, status: int, call: str) -> None:
        if status != 0:
            raise RuntimeError(f"{call} failed with {ERROR_NAMES.get(status, status)}.")

    def say(self, utterance: Utterance) -> np.ndarray:
        variant = utterance.voice.partition("+")[2]
        with self._lock:
            # An unknown variant is silently ignored by eSpeak: check it here.
            status = self.library.espeak_SetVoiceByName(utterance.voice.encode())
            if status != 0 or (variant and variant not in self.variants):
                raise ValueError(
                    f"eSpeak NG has no voice {utterance.voice!r}; "
                    f"use '<accent>+<variant>' with an accent in {ENGLISH_ACCENTS} and a "
                    "variant from voice_variants()."
                )
            for parameter, value in (
                (PARAMETER_RATE, utterance.rate),
                (PARAMETER_PITCH, utterance.pitch),
                (PARAMETER_RANGE, utterance.pitch_range),
            ):
                self._check(
                    self.library.espeak_SetParameter(parameter, value, 0), "espeak_SetParameter"
                )
            text = utterance.text.encode("utf-8")
            self._chunks.clear()
            self._check(
                self.library.espeak_Synth(
                    text, len(text) + 1, 0, POS_CHARACTER, 0, CHARS_AUTO, None, None
                ),
                "espeak_Synth",
            )
            self._check(self.library.espeak_Synchronize(), "espeak_Synchronize")
            samples = np.concatenate(self._chunks) if self._chunks else np.zeros(0, np.int16)
            self._chunks.clear()
        return samples.astype(np.int16, copy=False)


def sample_rate() -> int:
    """The engine's output rate in Hz (22050 for eSpeak NG)."""
    return _Engine.get().sample_rate


def synthesize(utterance: Utterance) -> np.ndarray:
    """Say one utterance in this process (fast; not bit-reproducible, see the module doc).

    Returns:
        int16 samples at :func:`sample_rate`, shape ``[num_samples]``, with eSpeak's own
        short silences at both ends.

    Raises:
        ValueError: unknown voice.
    """
    return _Engine.get().say(utterance)


def synthesize_batch(utterances: Sequence[Utterance]) -> list[np.ndarray]:
    """Say many utterances in a fresh worker process: same list, same samples, every time.

    The worker initialises eSpeak NG from scratch, fixes its noise seed and the C
    library's ``rand()`` seed, and says the utterances in order, so its output depends
    only on ``utterances`` (checked across processes in ``tests/test_fixtures.py``).
    Start-up costs about 0.1 s; each word then takes well under a millisecond.

    Args:
        utterances: what to say, in order.

    Returns:
        One int16 array at :func:`sample_rate` per utterance, shape ``[num_samples]``.
    """
    if not utterances:
        return []
    requests = [dataclasses.asdict(utterance) for utterance in utterances]
    package_parent = str(Path(__file__).resolve().parents[1])
    environment = dict(os.environ)
    environment["PYTHONPATH"] = os.pathsep.join(
        [package_parent, *filter(None, [environment.get("PYTHONPATH")])]
    )
    with tempfile.TemporaryDirectory(prefix="espeak_batch_") as folder:
        result_path = Path(folder) / "speech.npz"
        completed = subprocess.run(
            [sys.executable, "-m", "data_prep.espeak", str(result_path)],
            input=json.dumps(requests),
            capture_output=True,
            text=True,
            env=environment,
            check=False,
        )
        if completed.returncode != 0:
            lines = (completed.stderr or completed.stdout).strip().splitlines() or ["no output"]
            raise RuntimeError(f"the eSpeak NG worker failed: {lines[-1]}")
        with np.load(result_path) as result:
            samples, lengths = result["samples"], result["lengths"]
    return np.split(samples, np.cumsum(lengths)[:-1])


def _worker_main(result_path: str) -> None:
    """Worker of :func:`synthesize_batch`: JSON utterances on stdin -> ``.npz`` file."""
    utterances = [Utterance(**request) for request in json.loads(sys.stdin.read())]
    ctypes.CDLL(None).srand(NOISE_SEED)  # and the C library's rand(), which it also links
    engine = _Engine.get()
    clips = [engine.say(utterance) for utterance in utterances]
    lengths = np.array([clip.shape[0] for clip in clips], np.int64)
    np.savez(result_path, samples=np.concatenate(clips), lengths=lengths)


if __name__ == "__main__":
    _worker_main(sys.argv[1])
