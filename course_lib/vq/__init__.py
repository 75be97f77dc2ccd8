"""A VQ-VAE (van den Oord et al. 2017) with Jukebox's codebook fixes (Dhariwal et al. 2020).

- ``quantizer``: :class:`VectorQuantizer` (nearest codeword, straight-through gradient,
  codebook and commitment losses, EMA codebook, restarts, data initialisation),
  :func:`perplexity`, :func:`kmeans_plus_plus`;
- ``model``: :class:`VQVAE` (conv encoder, quantizer, conv decoder on images in [0, 1]:
  digits or spectrograms), :func:`build_vq_vae`, :func:`spectrogram_images`;
- ``settings``: :class:`VQConfig` with its full and quick presets.

The names below load on first use, so the settings can be read without TensorFlow.

Used in: 05_vq_vae_inpainting.ipynb.
"""

import importlib

_MODULE_OF = {
    "VectorQuantizer": "quantizer",
    "kmeans_plus_plus": "quantizer",
    "perplexity": "quantizer",
    "VQVAE": "model",
    "build_vq_vae": "model",
    "spectrogram_images": "model",
    "VQConfig": "settings",
}

__all__ = sorted(_MODULE_OF)


def __getattr__(name: str):
    if name not in _MODULE_OF:
        raise AttributeError(f"module 'course_lib.vq' has no attribute {name!r}")
    module = importlib.import_module(f"course_lib.vq.{_MODULE_OF[name]}")
    return getattr(module, name)


def __dir__() -> list[str]:
    return sorted([*globals(), *__all__])
