"""WaveNet (van den Oord et al. 2016) in Keras 3, after ibab/tensorflow-wavenet.

- ``layers``: :class:`CausalConv1D`, :class:`GatedResidualBlock`;
- ``model``: :class:`WaveNet`, :func:`build_wavenet`;
- ``settings``: :class:`WaveNetConfig` (full and quick presets), :func:`receptive_field`;
- ``training_data``: random crops of receptive field + target length, silence trimming;
- ``generation``: naive and fast (Paine et al. 2016) sampling;
- ``checkpoints``: step checkpoints and the loss log; ``logdir``: train into a log
  directory and generate from it (``files`` names its files);
- ``python -m course_lib.wavenet train|generate``: the command line, which calls ``logdir``.

Mu-law encoding lives in ``course_lib.audio`` (``mu_law_encode``, ``mu_law_decode``).
The names below load on first use, so the command line can reject a bad data folder
with one line before TensorFlow is imported.

Used in: 06_wavenet.ipynb.
"""

from course_lib.lazy_exports import lazy_exports

_MODULE_OF = {
    "CausalConv1D": "layers",
    "GatedResidualBlock": "layers",
    "WaveNet": "model",
    "build_wavenet": "model",
    "WaveNetConfig": "settings",
    "dilation_stack": "settings",
    "receptive_field": "settings",
    "AudioCorpus": "training_data",
    "corpus_from_arrays": "training_data",
    "crop_dataset": "training_data",
    "crop_dataset_from_records": "training_data",
    "crop_length": "training_data",
    "load_audio_folder": "training_data",
    "trim_silence": "training_data",
    "FastGenerator": "generation",
    "Generation": "generation",
    "NaiveGenerator": "generation",
    "generate": "generation",
    "sample_next": "generation",
    "start_history": "generation",
}

__getattr__, __dir__, __all__ = lazy_exports(__name__, _MODULE_OF)
