"""course_lib.run_course: executes notebooks, collects their WAVs, writes the index."""

import nbformat
import numpy as np

from course_lib import audio, run_course


def _notebook(path, cells):
    document = nbformat.v4.new_notebook()
    document.cells = [nbformat.v4.new_code_cell(source) for source in cells]
    document.metadata["kernelspec"] = {
        "name": "python3",
        "display_name": "Python 3",
        "language": "python",
    }
    nbformat.write(document, path)
    return path


def test_runs_notebooks_and_indexes_their_audio(tmp_path):
    good = _notebook(
        tmp_path / "01_tone.ipynb",
        [
            "import numpy as np\nfrom course_lib import audio, config",
            "tone = 0.5 * np.sin(2 * np.pi * 440 * np.arange(4000) / 4000)\n"
            "audio.write_wav(config.outputs_dir() / 'tone.wav', tone, 4000)\n"
            "print(config.mode())",
        ],
    )
    bad = _notebook(tmp_path / "02_broken.ipynb", ["raise RuntimeError('cell failed on purpose')"])
    out = tmp_path / "outputs"
    code = run_course.main([str(good), str(bad), "--out", str(out)])
    assert code == 1  # one notebook failed
    wav = out / "01_tone" / "tone.wav"
    samples, rate = audio.load_audio(wav)
    assert rate == 4000 and np.argmax(np.abs(np.fft.rfft(samples))) == 440
    executed = (out / "01_tone.html").read_text()
    assert "quick" in executed  # the kernel ran in quick mode and its output was kept
    assert "cell failed on purpose" in (out / "02_broken.html").read_text()
    index = (out / "index.html").read_text()
    assert '<audio controls preload="metadata" src="01_tone/tone.wav">' in index
    assert 'href="01_tone.html"' in index and "FAILED" in index


def test_missing_notebook_is_one_clear_line(tmp_path, capsys):
    assert run_course.main([str(tmp_path / "nope.ipynb"), "--out", str(tmp_path)]) == 2
    assert "error: no such notebook" in capsys.readouterr().err
