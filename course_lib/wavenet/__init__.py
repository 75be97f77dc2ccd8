"""WaveNet (van den Oord et al. 2016) in Keras 3, after ibab/tensorflow-wavenet.

- ``layers``: :class:`CausalConv1D`, :class:`GatedResidualBlock`;
- ``model``: :class:`WaveNet`, :func:`build_wavenet`;
- ``settings``: :class:`WaveNetConfig` (full and quick presets), :func:`receptive_field`;
- ``training_data``: random crops of receptive field + target length, silence trimming;
- ``generation``: naive and fast (Paine et al. 2016) sampling, with classifier-free
  guidance;
- ``checkpoints``: step checkpoints and the loss log; ``logdir``: train into a log
  directory and generate from it (``files`` names its files);
- ``python -m course_lib.wavenet train|generate``: the command line, which calls ``logdir``.

Mu-law encoding lives in ``course_lib.audio`` (``mu_law_encode``, ``mu_law_decode``).

Exports: imported here eagerly and listed in ``__all__``, so Keras knows them on import.

Used in: 06_wavenet.ipynb.
"""

from course_lib.wavenet.generation import (
    FastGenerator,
    Generation,
    NaiveGenerator,
    generate,
    guided_logits,
    sample_next,
    start_history,
)
from course_lib.wavenet.layers import CausalConv1D, GatedResidualBlock
from course_lib.wavenet.model import WaveNet, build_wavenet
from course_lib.wavenet.settings import WaveNetConfig, dilation_stack, receptive_field
from course_lib.wavenet.training_data import (
    AudioCorpus,
    align_onset,
    corpus_from_arrays,
    crop_dataset,
    crop_dataset_from_records,
    crop_length,
    load_audio_folder,
    trim_silence,
)

__all__ = [
    "AudioCorpus",
    "CausalConv1D",
    "FastGenerator",
    "GatedResidualBlock",
    "Generation",
    "NaiveGenerator",
    "WaveNet",
    "WaveNetConfig",
    "align_onset",
    "build_wavenet",
    "corpus_from_arrays",
    "crop_dataset",
    "crop_dataset_from_records",
    "crop_length",
    "dilation_stack",
    "generate",
    "guided_logits",
    "load_audio_folder",
    "receptive_field",
    "sample_next",
    "start_history",
    "trim_silence",
]
