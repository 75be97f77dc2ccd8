"""The GPU a notebook trains on: a clear word when there is none, and mixed precision.

- :func:`require_gpu`: in full mode, stop with one line (:class:`NoGPUError`, shown
  without a traceback: how to switch Colab's runtime, or set ``TRAIN_ON_CPU = True``)
  when TensorFlow sees no GPU, unless told to go on on the CPU. Quick mode checks nothing.
- :func:`use_mixed_precision`: Keras' ``mixed_float16`` policy on a GPU, whose float16
  units are several times faster than float32; ``float32`` elsewhere.
- :func:`prepare`: both, in the order a training notebook needs them.

GPU memory growth is switched on by ``course_lib/__init__.py`` (``TF_FORCE_GPU_ALLOW_GROWTH``),
before TensorFlow first touches the GPU.

Used in: every notebook that trains (02 to 07).
"""

from __future__ import annotations

NO_GPU_MESSAGE = (
    "No GPU: full mode would train on the CPU for days. On Colab choose "
    "Runtime > Change runtime type > T4 GPU and run all cells again, or set "
    "TRAIN_ON_CPU = True in the settings cell to train on the CPU anyway."
)
CPU_WARNING = (
    "Warning: no GPU, training on the CPU as TRAIN_ON_CPU = True asks "
    "(full mode: this can take days)."
)


class NoGPUError(RuntimeError):
    """Full mode found no GPU: one line, shown without a traceback in a notebook.

    IPython displays what ``_render_traceback_`` returns instead of the traceback, so the
    student sees only the message (and "run all" stops at this cell).
    """

    def __init__(self, message: str = NO_GPU_MESSAGE):
        super().__init__(message)

    def _render_traceback_(self) -> list[str]:
        return [str(self)]


def require_gpu(allow_cpu: bool = False) -> None:
    """Stop a full-mode notebook that would train on the CPU, with how to get a GPU.

    Quick mode and the rehearsal (CPU, CI: tiny counts) check nothing, and a Colab TPU
    runtime (which :func:`course_lib.config.strategy` uses) counts as an accelerator.

    Args:
        allow_cpu: go on without a GPU (a notebook passes its ``TRAIN_ON_CPU``
            setting); prints one warning line instead of raising.

    Raises:
        NoGPUError: full mode, no GPU visible to TensorFlow, and not ``allow_cpu``.
    """
    from course_lib import config

    if config.mode() != "full" or config.on_tpu():
        return
    import tensorflow as tf

    if tf.config.list_physical_devices("GPU"):
        return
    if not allow_cpu:
        raise NoGPUError()
    print(CPU_WARNING)


def use_mixed_precision(enabled: bool | None = None) -> str:
    """Set Keras' global dtype policy: ``mixed_float16`` on a GPU, ``float32`` elsewhere.

    Under ``mixed_float16`` layers keep their variables in float32 but compute in float16
    (a T4's tensor cores are several times faster at it); the course's models keep their
    numerically sensitive parts (spectrogram front ends, output layers, losses, KL terms,
    the VQ codebook, diffusion schedules) in float32, and ``Model.compile`` wraps the
    optimizer in a ``keras.optimizers.LossScaleOptimizer`` so that small float16
    gradients do not underflow. The policy applies to models built after the call.

    Args:
        enabled: True for ``mixed_float16``, False for ``float32``; None (default) picks
            ``mixed_float16`` when TensorFlow sees a GPU.

    Returns:
        the global policy's name, ``"mixed_float16"`` or ``"float32"``.
    """
    import keras

    if enabled is None:
        import tensorflow as tf

        enabled = bool(tf.config.list_physical_devices("GPU"))
    keras.config.set_dtype_policy("mixed_float16" if enabled else "float32")
    return keras.config.dtype_policy().name


def precision_policy(name: str):
    """A context manager that sets the global Keras dtype policy to ``name`` (e.g.
    ``"mixed_float16"``) and restores the previous policy on exit, even after an error.

    Models built inside keep their policy after the block. Example::

        with accelerator.precision_policy("mixed_float16"):
            model = build_vae(clip_samples, cfg)
    """
    import contextlib

    import keras

    policy = keras.dtype_policies.get(name)  # an unknown name fails here, not on entry

    @contextlib.contextmanager
    def scope():
        previous = keras.config.dtype_policy()
        keras.config.set_dtype_policy(policy)
        try:
            yield policy.name
        finally:
            keras.config.set_dtype_policy(previous)

    return scope()


def skip_cpu_remapper() -> bool:
    """Without a GPU, switch off grappler's remapper (its CPU fusions of convolution, bias
    and activation); with one, leave it on. Returns whether it was switched off.

    On the CPU the remapper fuses a convolution, its bias and a following LeakyReLU into
    one op, even where the bias's output also feeds another op, as in the VQ-VAE's
    residual stacks; the fused graph then lacks the node that the LeakyReLU's gradient
    reads, the remapper gives up on the whole graph, and TensorFlow prints an
    ``E0000 ... meta_optimizer.cc:967] remapper failed`` line into the notebook (the
    full-size rehearsal found it; ``TF_CPP_MIN_LOG_LEVEL`` does not reach it). Switched
    off, the line goes and the VQ-VAE trains as fast (measured on two cores: 4.2 against
    4.6 s for the first epoch of the full digits model, 1.2 against 1.3 s for two more).
    """
    import tensorflow as tf

    if tf.config.list_physical_devices("GPU"):
        return False
    tf.config.optimizer.set_experimental_options({"remapping": False})
    return True


def prepare(allow_cpu: bool = False) -> str:
    """Check for a GPU (:func:`require_gpu`), switch off the CPU remapper without one
    (:func:`skip_cpu_remapper`), then pick the precision policy.

    A notebook calls it once, before its first model is built:
    ``accelerator.prepare(allow_cpu=TRAIN_ON_CPU)``.

    Returns:
        the global Keras dtype policy's name, ``"mixed_float16"`` or ``"float32"``.

    Raises:
        NoGPUError: full mode without a GPU, and not ``allow_cpu``.
    """
    require_gpu(allow_cpu)
    skip_cpu_remapper()
    return use_mixed_precision()
