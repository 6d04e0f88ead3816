"""``compare import-authors`` through ``compare.cli.main.main``, and the imported file in other commands."""
import json

import pytest
import torch

from algos.tasks import TaskSetting
from compare.cli.main import main
from model.checkpoint import load_checkpoint
from model.testing import authors_state_dict

NAME = (
    "noembdFalse_paraleTrue_pltask8_rope_decoder_p29_base29_row8_ntask8_nvar2_dsplitTrue_dfrac60.0_relu_"
    "n32_h2_d2_lctx512_I1_dI0_adamw_bs64_t100_T100_Tw10_lr1.50e-04_wd2.00e+00.pth"
)


@pytest.fixture
def authors_file(tmp_path):
    path = tmp_path / NAME
    torch.save(authors_state_dict(vocab_size=47, d_model=32, n_head=2, n_layer=2), path)
    return path


def one_error_line(capsys) -> str:
    err = capsys.readouterr().err
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("compare: error: ")
    return lines[0]


def test_import_then_tasks_on_the_result(authors_file, tmp_path, capsys):
    out = tmp_path / "ckpts" / "imported.pt"
    assert main(["import-authors", str(authors_file), "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert f"wrote {out}" in printed and "vocabulary 47" in printed
    ck = load_checkpoint(out)
    assert ck.meta["source_file"] == NAME
    assert ck.meta["command"].startswith("compare import-authors")

    assert main(["tasks", "--ckpt", str(out), "--json"]) == 0
    shown = json.loads(capsys.readouterr().out)
    expected = TaskSetting.authors_replay(p=29, n_base_tasks=2, alpha=0.6, task_seed=1, split_seed=0)
    assert shown["fingerprint"] == expected.fingerprint()
    assert TaskSetting.from_dict(shown) == expected


def test_a_renamed_file_is_an_error(authors_file, tmp_path, capsys):
    renamed = authors_file.rename(tmp_path / "weights.pth")
    assert main(["import-authors", str(renamed), "--out", str(tmp_path / "x.pt")]) == 2
    assert "not an authors' checkpoint file name" in one_error_line(capsys)
    assert not (tmp_path / "x.pt").exists()


def test_weights_that_do_not_fit_the_name_are_an_error(tmp_path, capsys):
    src = tmp_path / NAME.replace("_n32_", "_n64_")
    torch.save(authors_state_dict(vocab_size=47, d_model=32, n_head=2, n_layer=2), src)
    assert main(["import-authors", str(src), "--out", str(tmp_path / "x.pt")]) == 2
    line = one_error_line(capsys)
    assert "has shape" in line and "expects" in line


def test_a_missing_file_is_an_error(tmp_path, capsys):
    assert main(["import-authors", str(tmp_path / NAME), "--out", str(tmp_path / "x.pt")]) == 2
    assert "file not found" in one_error_line(capsys)


def test_an_unsupported_configuration_is_an_error(tmp_path, capsys):
    src = tmp_path / NAME.replace("_relu_", "_gelu_")
    torch.save(authors_state_dict(vocab_size=47, d_model=32, n_head=2, n_layer=2), src)
    assert main(["import-authors", str(src), "--out", str(tmp_path / "x.pt")]) == 2
    assert "only 'relu'" in one_error_line(capsys)


def test_out_is_required(authors_file, capsys):
    assert main(["import-authors", str(authors_file)]) == 2
    assert "--out" in one_error_line(capsys)


def test_out_may_not_overwrite_the_source(authors_file, capsys):
    before = authors_file.read_bytes()
    assert main(["import-authors", str(authors_file), "--out", str(authors_file)]) == 2
    assert "overwrite the source" in one_error_line(capsys)
    assert authors_file.read_bytes() == before
