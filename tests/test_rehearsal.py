"""Full-size rehearsal: every ``full`` preset built, trained one step and sampled, on the CPU.

No other test runs a full preset; the notebooks run them only on a Colab T4 (12.7 GB RAM,
15 GB GPU). One test runs the table of :func:`_cases` (a row per preset: its memory
budget, the shapes its full config implies, and its short generation). Each case takes
``Config.full()`` as it is and builds the model the way its notebook does (same build
function, same compile, inside ``config.strategy().scope()``) at the real shapes (sample
rate, clip length, image size, channel and layer counts) with
``course_tools.full_presets``, which the T4 time table (``benchmarks/t4_times.py``) uses
too; it trains ONE step with ``model.fit(..., epochs=1, steps_per_epoch=1)`` (the notebooks'
compiled path) on a synthetic batch of the real input shape, asserts the loss is
finite, generates a short output and asserts its shape and finiteness, and asserts the
peak memory of the case stays within a budget stated per case in :func:`_cases`.

Only counts are overridden, never shapes or sizes: the batch size (2 instead of the
presets' 4 to 64), training steps and epochs (1), the number of generated clips (1), the
DDIM steps (2), the Griffin-Lim iterations (2) and the WaveNet samples generated (200).

- judge: ``judging.build_judge_model`` at 1 s of 16 kHz, 10 classes; compiled as
  ``judging.train_judge`` compiles it, with ``jit_compile=True`` (what "auto" picks on a
  GPU). The judge generates nothing: its "generation" is scoring (``Judge.features``:
  embeddings and class probabilities of the batch).
- diffusion: ``diffusion.build_diffusion_model`` (the 1-D U-Net of 32 to 256
  channels, 1 s at 16 kHz, conditioned on 10 words over time as in notebook 03),
  ``jit_compile=True``; DDIM, 2 steps, one guided clip.
- VAE: ``vae.build_vae`` (spectrogram VAE, 128 x 256 images of 1 s at 16 kHz),
  ``jit_compile=True``; one prior sample, 2 Griffin-Lim iterations.
- VQ-VAE: ``vq.build_vq_vae`` on the full 512 x 256 spectrogram images of 4 s NSynth
  notes (made by ``vq.spectrogram_images``), ``jit_compile=True``; the batch's code maps
  (``encode_codes``) and one random 64 x 32 code map decoded, 2 Griffin-Lim iterations.
- WaveNet: ``wavenet.build_wavenet`` (dilations 1..512 x 3, 32/32/512 channels, 256
  classes, 10 labels as in notebook 06) on crops of receptive field + 8,000 samples,
  ``jit_compile=True``; 200 samples of fast generation.

Each case runs in its own Python process (this file run as a script; two at a time, as
most of a case is single-threaded tracing and XLA compilation), so its peak memory is its
own. The cases run in the background of the test session (``python tests/test_rehearsal.py
--all FOLDER``, started by the root ``conftest.py`` once a case is collected: see
``course_tools.background_jobs``), so the session goes on with other tests while they
compile, and each test waits for its case's record. The peak is the peak resident set
size of that process (the kernel's ``VmHWM``, and ``psutil`` sampled every 10 ms),
TensorFlow's runtime included: what the Colab VM has to hold for
the model alone. On the CPU the activations and XLA buffers live in that RSS too, so
it also bounds the GPU memory a float32 step needs (mixed_float16 on the T4 needs less).
The budgets leave room on the 12.7 GB machine for the notebook's data: a preset whose
step alone does not fit fails here.

Run only this file: ``python -m pytest -m rehearsal -s tests/test_rehearsal.py`` (``-s``
prints one summary line per case). Cases run on the CPU in float32 (no GPU here; the
notebooks' ``accelerator.prepare`` picks float32 without one).

Time: about 4 to 5 minutes on two CPU cores (measured: 222 to 277 s; twice that when
other jobs share the cores), nearly all of it in the first ``fit`` call of diffusion
(~65 s alone for the U-Net, 63 s of it the first step; DiffWave's 30 layers took ~110 s)
and WaveNet (~60 s alone): Keras tracing the training step in Python and XLA compiling
it. The step itself takes 3 to 7 s, so a batch of 1 would not make the file faster; XLA
adds about 30 s (WaveNet) of compilation on the CPU, and works for every case. Diffusion runs beside
WaveNet, then the three short cases, so the two workers finish at about the same time;
a lower XLA CPU backend optimization level saved under 10%.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from course_tools import background_jobs, full_presets

pytestmark = pytest.mark.rehearsal

REPO = Path(__file__).resolve().parents[1]
BATCH = 2  # a count, not a shape; the time goes to tracing and compiling, not the step
DDIM_STEPS = 2
GRIFFIN_LIM_ITERATIONS = 2
WAVENET_SAMPLES = 200
RESULT_TAG = "REHEARSAL_RESULT "
# A case took 800 s in a check of CI at nice 10 (105 s of CPU: the cores went to the
# session's chain first); the jobs now run at nice 15.
CASE_TIMEOUT_S = 1800
PARALLEL = 2  # cases running at once: the CI machine's two cores


# ----------------------------------------------------------------------------- generation
# Each takes the trained preset (course_tools.full_presets.Built) and returns its output
# (whose shape is checked) followed by any other arrays that must be finite.


def _score_with_judge(built) -> tuple:
    """The judge generates nothing: its "generation" is scoring the batch."""
    from course_lib import judge as judging

    audio = built.batch[0]
    labels = [str(i) for i in range(full_presets.NUM_CLASSES)]
    judge = judging.Judge(built.model, labels, built.cfg.sample_rate)
    embeddings, probabilities = judge.features(audio[..., 0])
    return probabilities, embeddings


def _ddim_guided(built) -> tuple:
    cfg = built.cfg
    clips = built.model.generate(
        1, steps=DDIM_STEPS, sampler="ddim", label=[0], guidance=cfg.guidance, progress=False
    )
    return (clips,)


def _vae_prior_sample(built) -> tuple:
    """One clip from N(0, I), and one from a mixture prior fitted to the batch's codes
    (notebook 04's fitted prior, with one Gaussian: the batch has few clips)."""
    from course_lib import vae

    audio = built.batch[0][..., 0]
    prior = vae.LatentMixturePrior(components=1).fit(built.model.encode(audio)[0])
    return (
        built.model.generate(1, seed=0, iterations=GRIFFIN_LIM_ITERATIONS),
        built.model.decode_to_audio(prior.sample(1), GRIFFIN_LIM_ITERATIONS),
    )


def _vq_codes_decoded(built) -> tuple:
    """The batch's code maps (what the Naive Bayes prior is fitted on), and one random
    code map decoded and inverted."""
    import numpy as np

    from course_lib import spectrogram

    model, cfg = built.model, built.cfg
    model.encode_codes(built.batch)
    drawn = np.random.default_rng(0).integers(0, model.codebook_size, (1, *model.code_shape()))
    decoded = model.decode_codes(drawn.astype(np.int32))
    clips = spectrogram.to_audio(decoded, cfg.clip_samples, cfg.spec, GRIFFIN_LIM_ITERATIONS)
    return clips, decoded


def _wavenet_fast(built) -> tuple:
    from course_lib import wavenet

    generated = wavenet.generate(
        built.model, WAVENET_SAMPLES, method="fast", labels=0, seed=0, progress=False
    )
    return (generated.audio,)


@dataclasses.dataclass(frozen=True)
class Case:
    """One full preset's rehearsal (built by ``full_presets.BUILDERS[name]``).

    Attributes:
        budget_mb: the peak RSS (MB) its process may reach, TensorFlow included.
        expected_input: the shape of the training batch (from the full config).
        expected_output: the shape of what it generates (from the full config).
        generate: the short generation after the training step (see above).
    """

    budget_mb: int
    expected_input: tuple[int, ...]
    expected_output: tuple[int, ...]
    generate: Callable[[full_presets.Built], tuple]


def _cases() -> dict[str, Case]:
    """The table: budgets, the shapes the full configs imply, and the generation.

    Longest first (measured: diffusion and WaveNet spend minutes tracing and compiling),
    so that the two long cases start together.
    """
    from course_lib import diffusion, vae, vq, wavenet
    from course_lib import judge as judging

    judge = round(judging.JudgeConfig.full().sample_rate * full_presets.SC09_SECONDS)
    diffusion_clip = diffusion.DiffusionConfig.full().clip_samples
    vae_clip = round(vae.VAEConfig.full().sample_rate * full_presets.SC09_SECONDS)
    vq_cfg = vq.VQConfig.full()
    wavenet_cfg = wavenet.WaveNetConfig.full()
    wavenet_inputs = wavenet_cfg.receptive_field + wavenet_cfg.target_length - 1
    # Budgets: about 1.4 x the peak measured at batch 2 (judge 1.1 GB, diffusion 1.7 GB,
    # VAE 1.3 GB, VQ-VAE 1.5 GB, WaveNet 3.8 GB, TensorFlow's 0.8 GB included), so noise
    # does not fail them, and far enough below Colab's 12.7 GB to leave room for the
    # preset's larger batch and the notebook's data.
    return {
        "diffusion": Case(2400, (BATCH, diffusion_clip, 1), (1, diffusion_clip, 1), _ddim_guided),
        "wavenet": Case(5300, (BATCH, wavenet_inputs), (1, WAVENET_SAMPLES), _wavenet_fast),
        "vae": Case(1800, (BATCH, vae_clip, 1), (1, vae_clip), _vae_prior_sample),
        "vq_vae": Case(
            2100, (BATCH, *vq_cfg.image_shape, 1), (1, vq_cfg.clip_samples), _vq_codes_decoded
        ),
        # the judge's "output": class probabilities [batch, classes]
        "judge": Case(
            1600, (BATCH, judge, 1), (BATCH, full_presets.NUM_CLASSES), _score_with_judge
        ),
    }


def _fit_one_step(model, batch) -> float:
    """The loss of one step of ``fit`` on ``batch`` (``x``, or ``(x, y)``)."""
    import tensorflow as tf

    dataset = tf.data.Dataset.from_tensors(batch).repeat()
    history = model.fit(dataset, epochs=1, steps_per_epoch=1, verbose=0)
    return float(history.history["loss"][-1])


def _rehearse(name: str) -> dict:
    """Build, train one step and generate (in the child); what the parent asserts on."""
    import numpy as np

    case = _cases()[name]
    built = full_presets.BUILDERS[name](BATCH)
    started = time.perf_counter()
    loss = _fit_one_step(built.model, built.batch)
    step_s = time.perf_counter() - started
    outputs = case.generate(built)
    return {
        "weights": built.model.count_params(),
        "input_shape": list(built.input_shape),
        "loss": loss,
        "step_s": step_s,
        "generation_s": time.perf_counter() - started - step_s,
        "output_shape": list(np.shape(outputs[0])),
        "output_finite": all(bool(np.isfinite(output).all()) for output in outputs),
        "jit_compile": bool(built.model.jit_compile),
    }


class _PeakRSS:
    """The process's peak resident set size, sampled in a thread every 10 ms."""

    def __init__(self):
        import psutil

        self._process = psutil.Process()
        self.peak = self._process.memory_info().rss
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def _sample(self):
        while not self._stop.wait(0.01):
            self.peak = max(self.peak, self._process.memory_info().rss)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()


def _peak_rss_since_start_mb() -> float:
    """This interpreter's peak resident set size in MB: the kernel's ``VmHWM``, which
    starts afresh when the process image starts. (``ru_maxrss`` does not: after a fork
    from a big pytest process, it keeps the parent's size across ``exec``.)"""
    lines = Path("/proc/self/status").read_text().splitlines()
    kilobytes = next(int(line.split()[1]) for line in lines if line.startswith("VmHWM:"))
    return kilobytes / 1024


def _run_in_this_process(name: str) -> dict:
    """Run one case here (the child) and return its numbers with its peak memory."""
    import psutil

    import course_lib  # noqa: F401  (TensorFlow's log level, before TensorFlow loads)
    from course_lib import accelerator, config

    accelerator.use_mixed_precision(False)  # what the notebooks pick without a GPU
    config.set_seed(0)
    baseline_mb = psutil.Process().memory_info().rss / 2**20  # TensorFlow loaded
    started = time.perf_counter()
    with _PeakRSS() as sampled:
        result = _rehearse(name)
    result["case_s"] = time.perf_counter() - started
    result["peak_mb"] = max(_peak_rss_since_start_mb(), sampled.peak / 2**20)
    result["baseline_mb"] = baseline_mb
    return result


def _run_in_child(name: str) -> tuple[dict | None, str]:
    """Run one case in a fresh interpreter; its result (None if it failed) and its log."""
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")])),
        "TF_CPP_MIN_LOG_LEVEL": "3",
    }
    try:
        completed = subprocess.run(
            [sys.executable, str(Path(__file__).resolve()), name],
            cwd=REPO,
            env=env,
            capture_output=True,
            text=True,
            timeout=CASE_TIMEOUT_S,
            check=False,
        )
    except subprocess.TimeoutExpired as timeout:  # its record says so; the other cases go on
        output = "".join(
            part.decode(errors="replace") if isinstance(part, bytes) else part
            for part in (timeout.stdout, timeout.stderr)
            if part
        )
        return None, f"{output[-6000:]}\n[the case took over {CASE_TIMEOUT_S} s and was stopped]"
    log = (completed.stdout + completed.stderr)[-6000:]
    for line in reversed(completed.stdout.splitlines()):
        if line.startswith(RESULT_TAG):
            return json.loads(line[len(RESULT_TAG) :]), log
    return None, log


# ----------------------------------------------------------------------------- the test

CASE_NAMES = list(_cases())


def _run_every_case(folder: Path) -> None:
    """The background job (``background_jobs.FULL_PRESETS``): every case in a child
    process, ``PARALLEL`` at a time, each record written to ``folder`` when it ends."""

    def run(name: str) -> None:
        result, log = _run_in_child(name)
        background_jobs.write_record(folder, name, {"result": result, "log": log})

    with ThreadPoolExecutor(PARALLEL) as pool:
        list(pool.map(run, CASE_NAMES))


@pytest.fixture(scope="session")
def full_preset_rehearsal(request) -> pytest.Config:
    """The session's config, once the background run of every case
    (:func:`_run_every_case`) is started."""
    background_jobs.session_job(request.config, background_jobs.FULL_PRESETS)
    return request.config


@pytest.mark.parametrize("name", CASE_NAMES)
def test_full_preset_trains_one_step_and_generates_within_memory(name, full_preset_rehearsal):
    case = _cases()[name]
    record = background_jobs.wait_for_record(
        full_preset_rehearsal, background_jobs.FULL_PRESETS, name
    )
    result, log = record["result"], record["log"]
    assert result is not None, f"the {name} rehearsal failed:\n{log}"
    summary = (
        f"[rehearsal] {name}: {result['weights']:,} weights, input {tuple(result['input_shape'])},"
        f" step {result['step_s']:.1f} s (trace + XLA compile + 1 step), generation"
        f" {result['generation_s']:.1f} s, peak {result['peak_mb']:.0f} MB"
        f" (budget {case.budget_mb} MB, TensorFlow alone {result['baseline_mb']:.0f} MB),"
        f" case {result['case_s']:.1f} s, loss {result['loss']:.4g}"
    )
    print(summary)
    assert tuple(result["input_shape"]) == case.expected_input, summary
    assert result["jit_compile"], summary
    assert math.isfinite(result["loss"]), f"loss is not finite: {summary}"
    assert tuple(result["output_shape"]) == case.expected_output, summary
    assert result["output_finite"], f"generated output is not finite: {summary}"
    assert result["peak_mb"] <= case.budget_mb, f"over the memory budget: {summary}"


# ----------------------------------------------------------------- the notebooks' rehearsal

NOTEBOOKS = sorted((REPO / "notebooks").glob("[0-9][0-9]_*.ipynb"))
NOTEBOOK_PEAK_BUDGET_MB = 10 * 1024
"""Each notebook's peak memory: at most 10 GB of the free Colab runtime's 12.7 GB. The
rehearsal measures it on the CPU in float32, where the activations that a T4 holds in its
own memory sit in RAM too, so it bounds what the runtime needs from above."""


@pytest.fixture(scope="session")
def notebook_rehearsal(request):
    """The background run of every notebook in rehearsal mode and its deadline."""
    return background_jobs.session_job(request.config, background_jobs.NOTEBOOKS)


@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=lambda path: path.name)
def test_the_notebook_runs_at_full_shapes_within_memory(notebook, notebook_rehearsal):
    """Every line of the notebook, with the full presets' shapes (``COURSE_MODE=rehearsal``):
    no cell fails, and the kernel's peak memory stays within the budget."""
    process, deadline = notebook_rehearsal
    record = background_jobs.wait_for(
        process, lambda: background_jobs.notebook_record(notebook.name), deadline
    )
    assert record is not None, (
        f"the rehearsal ended without running {notebook.name}:\n{background_jobs.log_tail()}"
    )
    assert not record["error"], f"{notebook.name} failed in the rehearsal: {record['error']}"
    print(
        f"[rehearsal] {notebook.name}: {record['seconds']:.0f} s, kernel peak "
        f"{record['peak_mb']} MB (budget {NOTEBOOK_PEAK_BUDGET_MB} MB), "
        f"{len(record['wavs'])} WAV files"
    )
    assert record["peak_mb"] is not None, "the kernel's peak memory could not be read"
    assert record["peak_mb"] <= NOTEBOOK_PEAK_BUDGET_MB


if __name__ == "__main__":
    if sys.argv[1] == "--all":  # python tests/test_rehearsal.py --all FOLDER
        _run_every_case(Path(sys.argv[2]))
    else:  # python tests/test_rehearsal.py CASE: one case, its record printed
        print(RESULT_TAG + json.dumps(_run_in_this_process(sys.argv[1])), flush=True)
