"""course_tools.run_course: executes notebooks, collects their WAVs, writes the index."""

from html.parser import HTMLParser
from pathlib import Path

import nbformat
import numpy as np

from course_lib import audio
from course_tools import browser_check, run_course


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
    code = run_course.main([str(good), str(bad), "--out", str(out), "--no-screenshot"])
    assert code == 1  # one notebook failed
    wav = out / "01_tone" / "tone.wav"
    samples, rate = audio.load_audio(wav)
    assert rate == 4000 and np.argmax(np.abs(np.fft.rfft(samples))) == 440
    executed = (out / "01_tone.html").read_text()
    assert "quick" in executed  # the kernel ran in quick mode and its output was kept
    assert "cell failed on purpose" in (out / "02_broken.html").read_text()
    index = (out / "index.html").read_text()
    assert '<audio controls preload="metadata" src="01_tone/tone.wav">' in index
    assert 'href="01_tone.html"' in index and 'href="02_broken.html"' in index
    assert '<span class="status failed">failed</span>' in index
    assert "cell failed on purpose" in index  # the failing notebook's error is shown
    assert not (out / run_course.SCREENSHOT_NAME).exists()
    runs = run_course.read_runs(out)
    assert list(runs) == ["01_tone.ipynb", "02_broken.ipynb"]
    assert (
        runs["01_tone.ipynb"]["error"] == "" and "cell failed" in runs["02_broken.ipynb"]["error"]
    )
    assert runs["01_tone.ipynb"]["wavs"] == [str(wav)]
    # the kernel's peak memory: a Python with NumPy loaded holds tens of MB, not GB
    assert 20 < runs["01_tone.ipynb"]["peak_mb"] < 2000
    kept = nbformat.read(out / "01_tone.ipynb", as_version=4)
    assert kept.cells[1].outputs[0]["text"] == "quick\n"


def test_the_rehearsal_mode_and_data_folder_reach_the_kernel(tmp_path):
    notebook = _notebook(
        tmp_path / "01_where.ipynb",
        ["from course_lib import config\nprint(config.mode(), config.data_dir())"],
    )
    out, data = tmp_path / "outputs", tmp_path / "data"
    arguments = ["--mode", "rehearsal", "--data-dir", str(data), "--no-screenshot"]
    assert run_course.main([str(notebook), "--out", str(out), *arguments]) == 0
    printed = nbformat.read(out / "01_where.ipynb", as_version=4).cells[0].outputs[0]["text"]
    assert printed == f"rehearsal {data.resolve() / 'rehearsal'}\n"
    assert run_course.main([str(notebook), "--out", str(run_course.NOTEBOOK_FOLDER)]) == 2


def test_missing_notebook_is_one_clear_line(tmp_path, capsys):
    assert run_course.main([str(tmp_path / "nope.ipynb"), "--out", str(tmp_path)]) == 2
    assert "error: no such notebook" in capsys.readouterr().err


VOID = {"meta", "link", "br", "img", "input", "hr", "source", "wbr"}


class _StrictTree(HTMLParser):
    """Records every element and fails on a close tag that does not match its opening."""

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.open: list[str] = []
        self.elements: list[tuple[str, dict]] = []
        self.text: list[str] = []

    def handle_starttag(self, tag, attrs):
        self.elements.append((tag, dict(attrs)))
        if tag not in VOID:
            self.open.append(tag)

    def handle_endtag(self, tag):
        assert self.open and self.open[-1] == tag, f"</{tag}> closes <{self.open[-1:]}>"
        self.open.pop()

    def handle_data(self, data):
        self.text.append(data)


def _parse(index: Path) -> _StrictTree:
    tree = _StrictTree()
    tree.feed(index.read_text(encoding="utf-8"))
    tree.close()
    assert tree.open == [], f"unclosed elements: {tree.open}"
    return tree


def _tone(path, seconds=0.5, rate=8000):
    t = np.arange(round(seconds * rate)) / rate
    return audio.write_wav(path, 0.3 * np.sin(2 * np.pi * 330 * t), rate)


def test_index_is_valid_escaped_and_relative(tmp_path):
    out = tmp_path / "outputs"
    odd = 'x<script>alert("1")</script> & co'
    page = out / f"{odd}.html"
    page.parent.mkdir(parents=True)
    page.write_text("executed")
    runs = [
        run_course.NotebookRun(
            Path(f"/somewhere/{odd}.ipynb"),
            page,
            [_tone(out / odd / "a b#1.wav", 1.5), _tone(out / odd / "sub" / "c.wav")],
            12.4,
        ),
        run_course.NotebookRun(
            Path("02_failed.ipynb"), out / "02_failed.html", [], 1.0, "ValueError: bad <input>"
        ),
        run_course.NotebookRun(Path("03_silent.ipynb"), out / "03_silent.html", [], 2.0),
    ]
    (out / "03_silent.html").write_text("executed")
    index = run_course.write_index(runs, out, mode="quick")

    tree = _parse(index)
    text = index.read_text(encoding="utf-8")
    assert text.startswith("<!doctype html>")
    assert "<script" not in text and "<input" not in text  # names and errors are escaped
    tags = [tag for tag, _ in tree.elements]
    assert tags.count("section") == 3 and tags.count("audio") == 2 and tags.count("h1") == 1
    titles = [attrs for tag, attrs in tree.elements if tag == "title"]
    assert len(titles) == 1 and "Generative Audio Course Kit: results" in "".join(tree.text)
    ids = [attrs["id"] for _, attrs in tree.elements if "id" in attrs]
    assert len(ids) == len(set(ids)) == 3
    links = [attrs["href"] for tag, attrs in tree.elements if tag == "a"]
    sources = [attrs["src"] for tag, attrs in tree.elements if tag == "audio"]
    for link in links + sources:
        assert "://" not in link and not link.startswith("/"), link
    anchors = {link[1:] for link in links if link.startswith("#")}
    assert anchors == set(ids)  # the contents list points at every section
    assert sources == [
        "x%3Cscript%3Ealert%28%221%22%29%3C/script%3E%20%26%20co/a%20b%231.wav",
        "x%3Cscript%3Ealert%28%221%22%29%3C/script%3E%20%26%20co/sub/c.wav",
    ]
    assert "x%3Cscript%3Ealert%28%221%22%29%3C/script%3E%20%26%20co.html" in links
    body = "".join(tree.text)
    assert odd in body and "a b#1.wav" in body and "sub/c.wav" in body
    assert "1.50 s, 8000 Hz" in body  # each player's caption gives length and rate
    assert "ValueError: bad <input>" in body  # the error, shown as text
    assert "no HTML copy was written" in body  # 02 has no HTML file
    assert "No audio written." in body  # 03 wrote none
    assert "1 of 3 notebooks ran" not in body and "2 of 3 notebooks ran" in body
    statuses = [attrs["class"] for tag, attrs in tree.elements if tag == "section"]
    assert statuses == ["notebook ok", "notebook failed", "notebook ok"]


def test_an_unreadable_wav_is_captioned_not_fatal(tmp_path):
    out = tmp_path / "outputs"
    broken = out / "01_x" / "broken.wav"
    broken.parent.mkdir(parents=True)
    broken.write_bytes(b"not audio")
    run = run_course.NotebookRun(Path("01_x.ipynb"), out / "01_x.html", [broken], 1.0)
    text = run_course.write_index([run], out).read_text()
    assert "unreadable" in text and 'src="01_x/broken.wav"' in text


def _fake_execute(notebook, out, mode="quick", cell_timeout=900, data_dir=None):
    html = out / f"{notebook.stem}.html"
    html.parent.mkdir(parents=True, exist_ok=True)
    html.write_text("executed")
    return run_course.NotebookRun(notebook, html, [_tone(out / notebook.stem / "t.wav")], 0.1)


def test_without_a_browser_the_screenshot_is_skipped_with_a_note(tmp_path, monkeypatch, capsys):
    notebook = tmp_path / "01_x.ipynb"
    notebook.write_text("{}")
    monkeypatch.setattr(run_course, "execute_notebook", _fake_execute)
    monkeypatch.setattr(browser_check, "unavailable_reason", lambda: "Chromium not found (hint)")
    out = tmp_path / "outputs"

    assert run_course.main([str(notebook), "--out", str(out)]) == 0  # default: best effort
    assert "note: no screenshot" in capsys.readouterr().out
    assert (out / "index.html").is_file() and not (out / run_course.SCREENSHOT_NAME).exists()

    assert run_course.main([str(notebook), "--out", str(out), "--screenshot"]) == 1  # asked for
    assert "Chromium not found (hint)" in capsys.readouterr().out


def test_a_browser_that_fails_does_not_lose_the_run(tmp_path, monkeypatch, capsys):
    notebook = tmp_path / "01_x.ipynb"
    notebook.write_text("{}")
    monkeypatch.setattr(run_course, "execute_notebook", _fake_execute)
    monkeypatch.setattr(browser_check, "unavailable_reason", lambda: "")

    def crash(*args, **kwargs):
        raise RuntimeError("chrome crashed\nsession not created")

    monkeypatch.setattr(browser_check, "check_page", crash)
    assert run_course.main([str(notebook), "--out", str(tmp_path / "outputs")]) == 0
    printed = capsys.readouterr().out
    assert "browser check" in printed and "session not created" in printed
    assert "1 of 1 notebooks ran" in printed
