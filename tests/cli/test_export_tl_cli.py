"""``compare export-tl``: the file, its config and names; bad input one line and exit 2."""
from __future__ import annotations

import torch

from compare.cli.main import main


def test_export_tl_writes_config_and_state_dict(tmp_path, capsys):
    out = tmp_path / "d4-tl.pt"
    assert main(["export-tl", "d4.pt", "--out", str(out)]) == 0
    line = capsys.readouterr().out
    assert "wrote" in line and "3.5.1" in line
    blob = torch.load(out, weights_only=True)
    cfg, sd = blob["config"], blob["state_dict"]
    assert cfg["rotary_adjacent_pairs"] is True and cfg["positional_embedding_type"] == "rotary"
    assert sd["blocks.3.attn.W_Q"].shape == (4, 64, 16) and sd["blocks.0.attn.W_O"].shape == (4, 16, 64)
    assert sd["unembed.W_U"].shape == (64, 11) and sd["blocks.2.mlp.W_in"].shape == (64, 256)


def test_bad_input(tmp_path, capsys):
    foreign = tmp_path / "x.pt"
    foreign.write_text("not ours")
    for argv, message in [(["nope.pt", "--out", str(tmp_path / "a.pt")], "nope.pt"),
                          (["d4.pt", "--out", str(foreign)], "not a TransformerLens export"),
                          (["d4.pt", "--out", str(tmp_path)], "is a folder"),
                          (["d4.pt", "--out", str(tmp_path / "no" / "a.pt")], "no folder"),
                          (["d4.pt"], "--out")]:
        rc = main(["export-tl", *argv])
        err = capsys.readouterr().err
        assert rc == 2 and err.count("\n") == 1 and message in err, (argv, err)
    assert foreign.read_text() == "not ours"
