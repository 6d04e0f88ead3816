"""algos.tempfiles: whole-or-nothing writes through a named temporary."""
import os

import pytest

from algos import tempfiles


def test_a_write_lands_whole_and_leaves_no_temporary(tmp_path):
    target = tmp_path / "out.txt"
    seen = []

    def write(tmp):
        seen.append(tmp)
        assert tempfiles.parse(tmp.name) == {"name": "out.txt", "kind": "tmp", "host": tempfiles.host_id(),
                                             "pid": os.getpid()}
        tmp.write_text("done")

    assert tempfiles.atomic_write(target, write) == target
    assert target.read_text() == "done" and os.listdir(tmp_path) == ["out.txt"]
    assert seen[0].parent == tmp_path


def test_a_failed_write_keeps_the_old_file_and_removes_the_temporary(tmp_path):
    target = tmp_path / "out.txt"
    target.write_text("old")

    def write(tmp):
        tmp.write_text("half")
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        tempfiles.atomic_write(target, write)
    assert target.read_text() == "old" and os.listdir(tmp_path) == ["out.txt"]


def test_figures_through_a_temporary_keep_their_format(tmp_path):
    import matplotlib

    matplotlib.use("Agg")
    from model.curves import save_learning_curves

    hist = [{"step": s, "id_train": {"acc": 0.1 * s, "loss": 2.0 / s}} for s in (1, 2, 3)]
    out = save_learning_curves(hist, tmp_path / "curves.png")
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and os.listdir(tmp_path) == ["curves.png"]
