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

from course_lib.lazy_exports import lazy_exports

_MODULE_OF = {
    "VectorQuantizer": "quantizer",
    "kmeans_plus_plus": "quantizer",
    "perplexity": "quantizer",
    "VQVAE": "model",
    "build_vq_vae": "model",
    "spectrogram_images": "model",
    "VQConfig": "settings",
}

__getattr__, __dir__, __all__ = lazy_exports(__name__, _MODULE_OF)
