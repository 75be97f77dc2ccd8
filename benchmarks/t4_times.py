"""T4 times of the notebooks in full mode, from the FLOPs of their full-size networks.

Run from the repository's root: ``python benchmarks/t4_times.py`` (a few minutes on two
CPU cores: it builds every full-size network and traces its training step; nothing is
trained). Options change the stated T4 assumptions (``--help``).

How the numbers are made:

- FLOPs of one training step (forward, backward and the Adam update) at the preset's
  real shapes and batch size: the graph of ``model.train_step`` traced with
  ``tf.function``, each op counted by TensorFlow's FLOP registry (what its profiler's
  ``float_operation`` sums: 2 per multiply-add of matrix products and convolutions, 1
  per element of most elementwise ops; FFTs, tanh and sigmoid count 0), with BatchMatMul
  counted here (the registry ignores its ``adj_x``, which drops most of the weight
  gradients of WaveNet's and DiffWave's 1x1 layers). The same for one network call per
  clip (the judge, a diffusion step under guidance, the decoders, a WaveNet sample).
  :func:`check_counts` checks a Dense layer against the hand count ``2 m t k n``.
  The models are built by ``course_tools.full_presets``, as the rehearsal builds them.
- Work per notebook: training steps = epochs x ceil(clips / batch) (WaveNet: its step
  count), plus validation, sampling and judge scoring as its full-mode cells run them
  (the counts are in :func:`notebooks`), with Griffin-Lim at 2 x 2.5 N log2 N FLOPs per
  frame and iteration. Dataset sizes: SC09 31,158 / 3,643 / 4,107 clips (train /
  validation / test), NSynth about 11,410 training notes (90% of nsynth-valid's 12,678)
  and 4,096 test notes, MNIST 60,000. The notebooks run in order, so 03 to 07 restore the
  judge of 02, and 07 restores the models of 03, 04 and 06 (it trains only its VQ-VAE).
- Time = FLOPs / (peak x utilization), for float32 and for mixed_float16 (tensor
  cores). WaveNet's sample-by-sample generation is latency-bound: each of its steps takes
  at least (TensorFlow ops in one step) x (a per-op launch latency).

The minutes are compute only: loading data, converting it (notebook 01), checkpoints,
XLA compilation and Python overheads come on top, and a T4 that throttles is slower.
"""

from __future__ import annotations

import argparse
import dataclasses
import math
import sys
from pathlib import Path

import keras
import tensorflow as tf
from tensorflow.python.framework.ops import get_stats_for_node_def

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # course_tools: the repo root
from course_tools import full_presets

T4_FP32 = 8.1e12  # FLOP/s, NVIDIA's T4 datasheet (single precision)
T4_FP16 = 65e12  # FLOP/s, mixed precision on tensor cores (same datasheet)
SC09 = {"train": 31_158, "validation": 3_643, "test": 4_107}
NSYNTH_TRAIN, NSYNTH_TEST, MNIST_TRAIN = 11_410, 4_096, 60_000
# The parts of a graph that launch no kernel.
NO_KERNEL = {"Const", "Identity", "NoOp", "Placeholder", "ReadVariableOp", "VarHandleOp"}


def op_flops(graph: tf.Graph, op: tf.Operation) -> int:
    """FLOPs of one op: TensorFlow's registry (what its profiler sums), except for
    BatchMatMul, whose registry entry ignores ``adj_x`` and so undercounts the weight
    gradients of a Dense layer on ``[batch, time, channels]`` by a factor of time / k."""
    if op.type.startswith("BatchMatMul"):
        k = op.inputs[0].shape[-2 if op.get_attr("adj_x") else -1]
        return 2 * k * op.outputs[0].shape.num_elements()
    try:
        return get_stats_for_node_def(graph, op.node_def, "flops").value or 0
    except ValueError:  # no statistics registered (FFT, tanh, ...): 0
        return 0


def graph_cost(function, *args) -> tuple[float, int]:
    """FLOPs and kernel-launching ops of ``function``'s graph, traced for ``args``."""
    graph = tf.function(function).get_concrete_function(*args).graph
    operations = graph.get_operations()
    flops = sum(op_flops(graph, op) for op in operations)
    return float(flops), sum(op.type not in NO_KERNEL for op in operations)


def check_counts() -> None:
    """A Dense layer on ``[m, t, k]``: its forward pass is 2 m t k n + m t n FLOPs (the
    bias), and its gradients with respect to input and kernel twice the product again."""
    m, t, k, n = 4, 50, 30, 20
    dense = keras.layers.Dense(n)
    x = tf.ones((m, t, k))
    dense(x)
    product = 2 * m * t * k * n
    assert graph_cost(dense, x)[0] == product + m * t * n

    def gradients(x):
        with tf.GradientTape() as tape:
            tape.watch(x)
            y = tf.reduce_sum(dense(x))
        return tape.gradient(y, [x, dense.kernel])

    assert graph_cost(gradients, x)[0] >= 3 * product


def train_step_flops(built: full_presets.Built) -> float:
    """FLOPs of one training step of a built preset, at its batch's size."""
    model = built.model
    model.optimizer.build(model.trainable_variables)  # Adam's slots, before tracing
    batch = tf.nest.map_structure(tf.convert_to_tensor, built.batch)
    return graph_cost(model.train_step, batch)[0]


def griffin_lim_flops(samples: int, frame_length: int, frame_step: int, iterations: int):
    """FLOPs of Griffin-Lim on one clip: an STFT and an inverse STFT per iteration."""
    frames = math.ceil(samples / frame_step)
    return iterations * 2 * frames * 2.5 * frame_length * math.log2(frame_length)


def measure() -> dict[str, float]:
    """FLOPs (and WaveNet's ops per step) of every network the notebooks run."""
    from course_lib.wavenet.generation import FastGenerator

    one = tf.zeros
    costs: dict[str, float] = {}

    def say(name: str) -> None:
        print(f"  {name}: {costs[name]:.4g}", file=sys.stderr, flush=True)

    def train(name: str, builder, *args, **changes) -> full_presets.Built:
        built = builder(*args, **changes)
        costs[name] = train_step_flops(built)
        say(name)
        return built

    def call(name: str, function, *args) -> None:
        costs[name] = graph_cost(function, *args)[0]
        say(name)

    keras.utils.set_random_seed(0)
    judge = train("judge step", full_presets.judge, 64).model
    call("judge clip", lambda x: judge(x, training=False), one((1, *judge.input_shape[1:])))

    model = train("diffusion step", full_presets.diffusion, 8).model
    clip = (one((1, model.clip_samples, 1)), tf.constant([3]), tf.constant([0]), 2.0)
    call("diffusion guided clip-step", model._guided_noise, *clip)  # eps of x and of no label

    vae = train("VAE step", full_presets.vae, 64).model
    call("VAE clip", lambda x: vae(x, training=False), one((1, vae.clip_samples, 1)))
    call("VAE decoder", lambda z: vae.decoder(z, training=False), one((1, *vae.latent_shape)))
    train("VAE step z=4 per step", full_presets.vae, 64, latent_dim=4)
    waveform = train("waveform VAE step", full_presets.vae, 64, waveform=True).model
    latent = one((1, *waveform.latent_shape))
    call("waveform VAE decoder", lambda z: waveform.decoder(z, training=False), latent)

    train("VQ digits step", full_presets.vq_vae, 32, digits=True)
    for name, changes in (("VQ", {}), ("VQ speech", {"dataset": "speech", "clip_seconds": 1.0})):
        vq = train(f"{name} step", full_presets.vq_vae, 32, **changes).model
        image = one((1, *vq.image_shape, 1))
        call(f"{name} encoder", lambda x, vq=vq: vq.encoder(x, training=False), image)
        codes = one((1, *vq.code_shape(), vq.code_dim))
        call(f"{name} decoder", lambda q, vq=vq: vq.decoder(q, training=False), codes)

    wavenet = train("WaveNet step", full_presets.wavenet, 4).model
    window = (tf.zeros((1, wavenet.receptive_field), tf.int32), tf.constant([0]))
    if wavenet.label_frames:  # the word over time: the clip position of the first prediction
        window = (*window, tf.constant([0]))
    generator = FastGenerator(wavenet, 1)
    vectors = wavenet.label_vectors(tf.constant([0]))
    biases = tf.stack(wavenet.condition_biases(vectors))
    step = (tf.constant([0]), tf.constant(0), biases, *generator._skip_weights())
    for kind, function, args in (("naive", wavenet, (window,)), ("fast", generator._step, step)):
        costs[f"WaveNet {kind} sample"], costs[f"WaveNet {kind} ops"] = graph_cost(function, *args)
        say(f"WaveNet {kind} sample")
    return costs


@dataclasses.dataclass
class Notebook:
    """A notebook's full-mode work.

    Attributes:
        training: FLOPs of its training steps.
        sampling: FLOPs of validation, sampling and scoring, sequential steps included.
        sequential: ``(flops, seconds)`` per sample-by-sample generation: it takes at
            least ``seconds`` (its steps' launch latency) whatever the throughput.
    """

    name: str
    training: float = 0.0
    sampling: float = 0.0
    sequential: list[tuple[float, float]] = dataclasses.field(default_factory=list)

    def minutes(self, flops_per_second: float) -> float:
        sequential = sum(max(f / flops_per_second, s) for f, s in self.sequential)
        other = self.training + self.sampling - sum(f for f, _ in self.sequential)
        return (other / flops_per_second + sequential) / 60


def notebooks(c: dict[str, float], op_latency: float) -> list[Notebook]:
    """Each notebook's work, from the measured costs ``c`` (cells in comments)."""
    from course_lib.diffusion import DiffusionConfig
    from course_lib.judge import JudgeConfig
    from course_lib.vae import VAEConfig
    from course_lib.vq import VQConfig
    from course_lib.wavenet import WaveNetConfig

    j, d, v, q, w = (
        config.full()
        for config in (JudgeConfig, DiffusionConfig, VAEConfig, VQConfig, WaveNetConfig)
    )

    def steps(epochs: int, clips: int, batch: int) -> int:
        return epochs * math.ceil(clips / batch)

    def gl(seconds: float) -> float:  # Griffin-Lim of one clip, as the notebooks run it
        return griffin_lim_flops(round(seconds * 16000), 512, 125, v.griffin_lim_iterations)

    def wavenet_run(
        clips: int, samples: int, kind: str = "fast", guidance: float = w.guidance
    ) -> tuple[float, float]:  # guided: every clip runs with and without its word
        rows = clips * (1 if guidance == 1 else 2)
        flops = rows * samples * c[f"WaveNet {kind} sample"]
        return flops, samples * c[f"WaveNet {kind} ops"] * op_latency

    train, validation, test = SC09["train"], SC09["validation"], SC09["test"]
    # 02: validation each epoch; test evaluation; train embeddings; real scores; FID
    # at 7 sizes (cell 21); 12 degraded copies of the test split (cell 23).
    judged = j.epochs * validation + test + train + test + 1435 + test + 12 * test
    # 03: 2 x 2 clips of DDIM-50 at epochs 7 and 14; DDPM-200 and DDIM-50 on 10 clips,
    # then on score_clips (cells 16, 18); the panel's first clip; all guided.
    guided = 200 + 10 * (d.diffusion_steps + d.ddim_steps) + 50
    guided += d.score_clips * (d.diffusion_steps + d.ddim_steps)
    # 04: decoded + Griffin-Lim: 6 at epoch ends, 4 + 8 + 8 + 9 (reconstructions, samples
    # from N(0, I) and from the fitted prior, the walk), 1,000 scored from each prior and
    # 1,000 per sweep setting; the waveform VAE's 1,000 (no Griffin-Lim).
    decoded = 35 + v.score_clips * (2 + len(v.sweep))
    vae_scored = v.score_clips * (5 + len(v.sweep) + 1)  # 3 real sets and every model's
    sweep = sum(c["VAE step z=4 per step" if z == 4 else "VAE step"] for _, z in v.sweep)
    # 06: 10 clips of 1 s, 200 samples naive and fast, score_clips scored plainly and
    # score_clips guided; all but the plain ones guided.
    one_second = round(w.generate_seconds * w.sample_rate)
    wavenet_runs = [
        wavenet_run(10, one_second),
        wavenet_run(1, 200, "naive"),
        wavenet_run(1, 200),
        wavenet_run(w.score_clips, one_second, guidance=1.0),
        wavenet_run(w.score_clips, one_second),
    ]
    n07 = 500
    return [
        Notebook("01 Speech Commands to TFRecords (data conversion only: I/O, not modelled)"),
        Notebook(
            "02 judge and metrics",
            steps(j.epochs, train, j.batch_size) * c["judge step"],
            judged * c["judge clip"],
        ),
        Notebook(
            "03 diffusion",
            steps(d.epochs, train, d.batch_size) * c["diffusion step"],
            guided * c["diffusion guided clip-step"] + 4 * d.score_clips * c["judge clip"],
        ),
        Notebook(
            "04 VAE and FID",
            steps(v.epochs, train, v.batch_size) * c["VAE step"]
            + steps(v.waveform_epochs, train, v.batch_size) * c["waveform VAE step"]
            + steps(v.sweep_epochs, train, v.batch_size) * sweep,
            v.epochs * validation * c["VAE clip"]
            + decoded * (c["VAE decoder"] + gl(1.0))
            + v.score_clips * c["waveform VAE decoder"]
            + vae_scored * c["judge clip"],
        ),
        Notebook(
            "05 VQ-VAE and inpainting",
            steps(q.digit_epochs, MNIST_TRAIN, q.batch_size) * c["VQ digits step"]
            + steps(q.epochs, NSYNTH_TRAIN, q.batch_size) * c["VQ step"],
            (NSYNTH_TRAIN + NSYNTH_TEST + 11) * c["VQ encoder"]
            + 11 * (c["VQ decoder"] + gl(q.clip_seconds)),  # 8 rebuilt, 3 inpainted notes
        ),
        Notebook(
            "06 WaveNet",
            w.steps * c["WaveNet step"],
            sum(f for f, _ in wavenet_runs) + 4 * w.score_clips * c["judge clip"],
            wavenet_runs,
        ),
        Notebook(
            "07 compare models",
            steps(q.epochs, train, q.batch_size) * c["VQ speech step"],
            train * c["VQ speech encoder"]
            + n07 * d.ddim_steps * c["diffusion guided clip-step"]
            + n07 * (c["VAE decoder"] + c["VQ speech decoder"] + 2 * gl(1.0))
            + wavenet_run(n07, one_second)[0]
            + 6 * n07 * c["judge clip"],
            [wavenet_run(n07, one_second)],
        ),
    ]


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--utilization-fp32", type=float, default=0.35)
    parser.add_argument("--utilization-mixed", type=float, default=0.15)
    parser.add_argument("--op-latency-us", type=float, default=10.0)
    args = parser.parse_args()

    tf.get_logger().setLevel("ERROR")  # the FLOP registry's deprecation warnings
    check_counts()
    print("tracing the full-size networks ...", file=sys.stderr)
    costs = measure()
    fp32 = T4_FP32 * args.utilization_fp32
    mixed = T4_FP16 * args.utilization_mixed
    print(
        "| notebook | training TFLOP | sampling and scoring TFLOP | T4 minutes, float32 |"
        " T4 minutes, mixed precision |"
    )
    print("| --- | ---: | ---: | ---: | ---: |")
    books = notebooks(costs, args.op_latency_us * 1e-6)
    total = Notebook(
        "all notebooks",
        sum(book.training for book in books),
        sum(book.sampling for book in books),
        [run for book in books for run in book.sequential],
    )
    for book in [*books, total]:
        print(
            f"| {book.name} | {book.training / 1e12:,.0f} | {book.sampling / 1e12:,.0f} | "
            f"{book.minutes(fp32):,.0f} | {book.minutes(mixed):,.0f} |"
        )
    print()
    print("Assumptions (T4):")
    print(
        f"- float32: {T4_FP32 / 1e12:.1f} TFLOP/s peak at {args.utilization_fp32:.0%} "
        f"utilization = {fp32 / 1e12:.2f} TFLOP/s sustained"
    )
    print(
        f"- mixed_float16: {T4_FP16 / 1e12:.0f} TFLOP/s tensor-core peak at "
        f"{args.utilization_mixed:.0%} utilization = {mixed / 1e12:.2f} TFLOP/s sustained "
        "(small convolutions of 32 to 256 channels keep tensor cores far from peak)"
    )
    print(
        f"- WaveNet's sample-by-sample generation: at least {args.op_latency_us:g} us per "
        f"TensorFlow op of a step ({costs['WaveNet fast ops']:.0f} ops per fast step, "
        f"{costs['WaveNet naive ops']:.0f} per naive step)"
    )
    print("- compute only: data loading, conversion, checkpoints and compilation come on top")
    print()
    print("Measured FLOPs (float32 graphs; a step at the preset's batch size, the rest per clip):")
    for name, value in costs.items():
        if not name.endswith("ops"):
            print(f"- {name}: {value / 1e9:,.4g} GFLOP")


if __name__ == "__main__":
    main()
