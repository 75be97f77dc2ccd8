"""course_lib.data: the TFRecord format round trip, the pipeline and its augmentations."""

import numpy as np
import pytest
import tensorflow as tf

from course_lib import audio, data

RATE = 4000


def _write_dataset(folder, clips_per_split=(("train", 10), ("test", 3)), shards=2):
    rng = np.random.default_rng(0)
    written = {}
    splits = {}
    for split, count in clips_per_split:
        clips = rng.uniform(-1, 1, size=(count, RATE)).astype(np.float32)
        labels = rng.integers(0, 3, size=count)
        written[split] = (clips, labels)
        for shard in range(shards):
            examples = [
                data.serialize_example(
                    audio.to_pcm16(clips[i]),
                    RATE,
                    int(labels[i]),
                    "abc"[labels[i]],
                    speaker=f"s{i}",
                    source=f"{split}/{i}.wav",
                )
                for i in range(shard, count, shards)
            ]
            data.write_shard(folder / data.shard_name(split, shard, shards), examples)
        splits[split] = {"examples": count, "shards": shards}
    data.write_manifest(folder, data.Manifest(RATE, RATE, ["a", "b", "c"], splits, [], "toy"))
    return written


def test_round_trip_through_load_split(tmp_path):
    written = _write_dataset(tmp_path)
    batches = list(data.load_split(tmp_path, "train", batch_size=4, shuffle=False))
    assert [b[0].shape for b in batches] == [(4, RATE, 1), (4, RATE, 1), (2, RATE, 1)]
    assert batches[0][0].dtype == tf.float32 and batches[0][1].dtype == tf.int32
    audio_read = np.concatenate([b[0].numpy()[..., 0] for b in batches])
    labels_read = np.concatenate([b[1].numpy() for b in batches])
    clips, labels = written["train"]
    # File order: shard 0 (examples 0, 2, 4, ...), then shard 1 (1, 3, 5, ...).
    order = [*range(0, 10, 2), *range(1, 10, 2)]
    np.testing.assert_allclose(audio_read, clips[order], atol=1 / 32768 + 1e-7)
    np.testing.assert_array_equal(labels_read, labels[order])
    assert np.abs(audio_read).max() <= 1.0


@pytest.mark.parametrize(("drop_remainder", "batches"), [(False, 3), (True, 2)])
def test_a_finite_split_knows_its_number_of_batches(tmp_path, drop_remainder, batches):
    _write_dataset(tmp_path)
    dataset = data.load_split(tmp_path, "train", batch_size=4, drop_remainder=drop_remainder)
    assert int(dataset.cardinality()) == batches
    assert len(list(dataset)) == batches
    repeated = data.load_split(tmp_path, "train", batch_size=4, repeat=True)
    assert int(repeated.cardinality()) == tf.data.INFINITE_CARDINALITY


def test_shuffled_split_keeps_every_example_once(tmp_path):
    written = _write_dataset(tmp_path)
    arrays = [b[0].numpy()[:, :8, 0] for b in data.load_split(tmp_path, "train", batch_size=3)]
    seen = {tuple(np.round(row * 32768).astype(int)) for row in np.concatenate(arrays)}
    expected = {tuple(np.round(row[:8] * 32768).astype(int)) for row in written["train"][0]}
    assert seen == expected


def test_manifest_round_trip_and_helpful_errors(tmp_path):
    _write_dataset(tmp_path)
    manifest = data.read_manifest(tmp_path)
    assert manifest.splits["train"] == {"examples": 10, "shards": 2}
    assert data.label_names(tmp_path) == ["a", "b", "c"]
    with pytest.raises(ValueError, match="split 'validation' is not in"):
        data.load_split(tmp_path, "validation")
    with pytest.raises(FileNotFoundError, match="convert the dataset first"):
        data.read_manifest(tmp_path / "missing")
    with pytest.raises(ValueError, match="batch_size"):
        data.load_split(tmp_path, "train", batch_size=0)


def test_interrupted_shard_write_leaves_no_shard(tmp_path):
    def examples():
        yield data.serialize_example(b"\x00\x00", RATE, 0, "a")
        raise KeyboardInterrupt

    target = tmp_path / data.shard_name("train", 0, 1)
    with pytest.raises(KeyboardInterrupt):
        data.write_shard(target, examples())
    assert not target.exists()
    assert data.write_shard(target, [data.serialize_example(b"\x00\x00", RATE, 0, "a")]) == 1
    assert target.exists()
    with pytest.raises(ValueError, match="outside"):
        data.shard_name("train", 3, 3)


def test_random_time_shift_matches_numpy_roll_with_zero_fill():
    clips = np.arange(1, 3 * 20 + 1, dtype=np.float32).reshape(3, 20, 1)
    generator = tf.random.Generator.from_seed(3)
    shifted = data.random_time_shift(tf.constant(clips), 5, generator).numpy()
    for clip, result in zip(clips[..., 0], shifted[..., 0], strict=True):
        matches = []
        for shift in range(-5, 6):
            reference = np.zeros(20, np.float32)
            if shift >= 0:
                reference[shift:] = clip[: 20 - shift]
            else:
                reference[:shift] = clip[-shift:]
            matches.append(np.array_equal(result, reference))
        assert sum(matches) == 1


BAND_RATE = 16000  # the judge's rate, whose clips are band-limited to 8 and 4 kHz


def test_band_limit_matches_a_numpy_brick_wall():
    clips = np.random.default_rng(5).uniform(-0.5, 0.5, (3, 1000, 1)).astype(np.float32)
    cutoffs = np.array([2000.0, 5000.0, np.inf], np.float32)
    limited = data.band_limit(tf.constant(clips), tf.constant(cutoffs), BAND_RATE).numpy()
    assert limited.shape == clips.shape and limited.dtype == np.float32
    frequencies = np.fft.rfftfreq(1000, 1 / BAND_RATE)  # 16 Hz bins
    for clip, result, cutoff in zip(clips[..., 0], limited[..., 0], cutoffs, strict=True):
        spectrum = np.fft.rfft(clip.astype(np.float64))
        reference = np.fft.irfft(np.where(frequencies < cutoff, spectrum, 0), 1000)
        np.testing.assert_allclose(result, reference, atol=1e-5)
        result_spectrum = np.fft.rfft(result.astype(np.float64))
        above = frequencies >= cutoff
        assert np.max(np.abs(result_spectrum[above]), initial=0) < 1e-3  # zero above
        np.testing.assert_allclose(result_spectrum[~above], spectrum[~above], atol=1e-3)
    np.testing.assert_array_equal(limited[2], clips[2])  # an infinite cutoff keeps the clip


def test_random_band_limit_imitates_the_lower_rates_of_a_fraction_of_clips():
    clips = np.random.default_rng(6).uniform(-0.5, 0.5, (400, 256, 1)).astype(np.float32)
    generator = tf.random.Generator.from_seed(7)
    limited = data.random_band_limit(clips, BAND_RATE, (8000, 4000), 0.5, generator).numpy()
    frequencies = np.fft.rfftfreq(256, 1 / BAND_RATE)
    power = np.abs(np.fft.rfft(limited[..., 0], axis=1)) ** 2  # [400, 129]
    band = data.RESAMPLE_BANDWIDTH
    top = np.array([power[:, frequencies >= band * rate / 2].sum(1) for rate in (4000, 8000)])
    as_4k = top[0] < 1e-6  # nothing left above 1.9 kHz
    as_8k = (top[1] < 1e-6) & ~as_4k  # nothing above 3.8 kHz, but some below
    untouched = np.all(limited == clips, axis=(1, 2))
    assert np.all(as_4k | as_8k | untouched) and not np.any(untouched & (as_4k | as_8k))
    assert 0.4 < np.mean(~untouched) < 0.6 and 0.3 < np.mean(as_4k[~untouched]) < 0.7
    every = data.random_band_limit(clips, BAND_RATE, (4000,), 1.0, generator).numpy()
    np.testing.assert_allclose(every, data.band_limit(clips, np.full(400, 1900.0), BAND_RATE))
    np.testing.assert_array_equal(
        data.random_band_limit(clips, BAND_RATE, (4000,), 0, generator), clips
    )
    for rates, probability, message in (
        ((), 0.5, "rates must be one or more rates in"),
        ((16000,), 0.5, r"in \(0, 16000\) Hz, got \(16000,\)"),
        ((4000,), 1.5, r"probability must be in \[0, 1\], got 1.5"),
    ):
        with pytest.raises(ValueError, match=message):
            data.random_band_limit(clips, BAND_RATE, rates, probability, generator)
    with pytest.raises(ValueError, match="bandwidth must be in"):
        data.random_band_limit(clips, BAND_RATE, (4000,), 0.5, generator, bandwidth=0)


def test_background_noise_is_added_within_gain(tmp_path):
    written = _write_dataset(tmp_path)
    (tmp_path / data.NOISE_FOLDER).mkdir()
    noise = np.random.default_rng(1).uniform(-0.5, 0.5, 3 * RATE + 100).astype(np.float32)
    audio.write_wav(tmp_path / data.NOISE_FOLDER / "white.wav", noise, RATE)
    bank = data.load_noise_bank(tmp_path)
    assert bank.shape == (3, RATE)
    dataset = data.load_split(
        tmp_path,
        "train",
        batch_size=10,
        shuffle=False,
        noise_bank=bank,
        noise_probability=1.0,
        max_noise_gain=0.2,
    )
    noisy = next(iter(dataset))[0].numpy()[..., 0]
    clean, _ = data.read_arrays(tmp_path, "train")
    difference = noisy - clean
    assert np.all(np.abs(difference) <= 0.2 * 0.5 + 1e-3)
    assert np.mean(np.abs(difference) > 1e-4) > 0.5
    with pytest.raises(ValueError, match="noise_bank must have shape"):
        data.load_split(tmp_path, "train", noise_bank=bank[:, :10])
    _ = written


def test_read_arrays_limit(tmp_path):
    _write_dataset(tmp_path)
    clips, labels = data.read_arrays(tmp_path, "train", limit=4)
    assert clips.shape == (4, RATE) and labels.shape == (4,)


def test_read_table_returns_metadata_in_file_order(tmp_path):
    written = _write_dataset(tmp_path, clips_per_split=(("test", 3),), shards=1)
    table = data.read_table(tmp_path, "test")
    clips, labels = written["test"]
    np.testing.assert_allclose(table["audio"], clips, atol=1 / 32768 + 1e-7)
    np.testing.assert_array_equal(table["label"], labels)
    assert list(table["label_name"]) == ["abc"[i] for i in labels]
    assert list(table["speaker"]) == ["s0", "s1", "s2"]
    assert list(table["source"]) == ["test/0.wav", "test/1.wav", "test/2.wav"]
    assert len(data.read_table(tmp_path, "test", limit=2)["speaker"]) == 2


@pytest.mark.parametrize(
    "fields",
    [
        (b"\x01\x02" * 16000, 16000, 3, "yes", "0a2b3c4d", "yes/0a2b3c4d_nohash_0.wav"),
        (b"", 0, 0, "", "", ""),
        (bytes(range(256)) * 700, 2**40, 2**62, "séance", "s" * 300, "d/" * 150),
    ],
)
def test_serialized_examples_equal_tf_train_example(fields):
    """The hand-written wire format parses to exactly the tf.train.Example TensorFlow builds."""
    names = ("audio", "sample_rate", "label", "label_name", "speaker", "source")
    expected = tf.train.Example()
    for name, value in zip(names, fields, strict=True):
        feature = expected.features.feature[name]
        if isinstance(value, int):
            feature.int64_list.value.append(value)
        else:
            feature.bytes_list.value.append(value if isinstance(value, bytes) else value.encode())
    assert tf.train.Example.FromString(data.serialize_example(*fields)) == expected
    parsed = tf.io.parse_single_example(data.serialize_example(*fields), data._feature_spec())
    assert parsed["audio"].numpy() == fields[0] and parsed["label"].numpy() == fields[2]


def test_read_table_samples_rows_by_value_and_per_label_in_file_order(tmp_path):
    written = _write_dataset(tmp_path, clips_per_split=(("train", 10),), shards=1)
    clips, labels = written["train"]
    first_of_each = data.read_table(tmp_path, "train", per_label=1)
    expected_rows = [int(np.flatnonzero(labels == label)[0]) for label in range(3)]
    assert list(first_of_each["source"]) == [f"train/{i}.wav" for i in sorted(expected_rows)]
    only_b = data.read_table(tmp_path, "train", where={"label_name": "b"}, per_label=2)
    np.testing.assert_array_equal(only_b["label"], [1] * min(2, int(np.sum(labels == 1))))
    some = data.read_table(tmp_path, "train", limit=3, where={"label": [0, 2]})
    rows = [i for i in range(10) if labels[i] in (0, 2)][:3]
    np.testing.assert_allclose(some["audio"], clips[rows], atol=1 / 32768 + 1e-7)
    one = data.read_table(tmp_path, "train", where={"source": "train/7.wav"})
    assert list(one["speaker"]) == ["s7"] and one["audio"].shape == (1, RATE)
    none = data.read_table(tmp_path, "train", where={"speaker": "nobody"})
    assert none["audio"].shape == (0, RATE) and none["source"].shape == (0,)
    with pytest.raises(ValueError, match="where can filter on"):
        data.read_table(tmp_path, "train", where={"audio": 0})


def test_label_counts_count_the_split_in_label_order(tmp_path):
    written = _write_dataset(tmp_path)
    labels = written["train"][1]
    assert data.label_counts(tmp_path, "train") == {
        name: int(np.sum(labels == index)) for index, name in enumerate("abc")
    }


def test_rows_of_the_file_order_mean_the_same_clips_everywhere(tmp_path):
    """load_split(shuffle=False), read_arrays and read_table share one file order across
    shards, so read_table(rows=) reads the clips whose indices another pass found."""
    written = _write_dataset(tmp_path, clips_per_split=(("train", 10),), shards=3)
    table = data.read_table(tmp_path, "train")
    clips, labels = data.read_arrays(tmp_path, "train")
    np.testing.assert_array_equal(clips, table["audio"])
    np.testing.assert_array_equal(labels, table["label"])
    order = [*range(0, 10, 3), *range(1, 10, 3), *range(2, 10, 3)]
    np.testing.assert_allclose(clips, written["train"][0][order], atol=1 / 32768 + 1e-7)
    picked = data.read_table(tmp_path, "train", rows=[7, 2, 4])
    np.testing.assert_array_equal(picked["audio"], table["audio"][[2, 4, 7]])
    assert list(picked["source"]) == list(table["source"][[2, 4, 7]])
    assert data.read_table(tmp_path, "train", rows=[]).keys() == table.keys()
    assert len(data.read_table(tmp_path, "train", rows=[])["label"]) == 0
    label_one = data.read_table(tmp_path, "train", rows=range(10), where={"label": 1})
    np.testing.assert_array_equal(label_one["source"], table["source"][table["label"] == 1])
