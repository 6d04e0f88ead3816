"""Our RoPE is the ``rotary-embedding-torch`` package's rotation (adjacent channel pairs)."""
import pytest
import torch

from model.gpt import apply_rope, rope_tables

rotary = pytest.importorskip("rotary_embedding_torch")


@pytest.mark.parametrize("head_dim", [4, 8, 16, 32, 128])
@pytest.mark.parametrize("T", [1, 7, 96, 512])
def test_rotation_equals_the_package(head_dim, T):
    g = torch.Generator().manual_seed(head_dim * 1000 + T)
    q = torch.randn(2, 3, T, head_dim, generator=g)  # (B, H, T, hd)
    theirs = rotary.RotaryEmbedding(dim=head_dim).rotate_queries_or_keys(q)
    cos, sin = rope_tables(head_dim, torch.arange(T), 10000.0)
    ours = apply_rope(q, cos, sin)
    assert ours.shape == q.shape
    assert torch.allclose(ours, theirs, atol=1e-6, rtol=0), (ours - theirs).abs().max()


def test_offset_positions_equal_the_package_offset():
    q = torch.randn(1, 2, 5, 16, generator=torch.Generator().manual_seed(1))
    theirs = rotary.RotaryEmbedding(dim=16).rotate_queries_or_keys(q, offset=40)
    cos, sin = rope_tables(16, torch.arange(40, 45), 10000.0)
    assert torch.allclose(apply_rope(q, cos, sin), theirs, atol=1e-6, rtol=0)


def test_pairs_are_adjacent_not_half_split():
    x = torch.zeros(1, 1, 2, 8)
    x[..., 0] = 1.0  # only channel 0 is set
    cos, sin = rope_tables(8, torch.arange(2), 10000.0)
    out = apply_rope(x, cos, sin)
    moved = (out[0, 0, 1].abs() > 1e-6).nonzero().flatten().tolist()
    assert moved == [0, 1]  # channel 0 rotates into channel 1, not channel 4
    assert torch.equal(out[0, 0, 0], x[0, 0, 0])  # position 0 is not rotated


def test_rotation_preserves_norms_and_relative_position_scores():
    g = torch.Generator().manual_seed(2)
    q, k = torch.randn(1, 1, 1, 32, generator=g), torch.randn(1, 1, 1, 32, generator=g)

    def score(tq, tk):
        cq, sq = rope_tables(32, torch.tensor([tq]), 10000.0)
        ck, sk = rope_tables(32, torch.tensor([tk]), 10000.0)
        return float((apply_rope(q, cq, sq) * apply_rope(k, ck, sk)).sum())

    assert score(10, 4) == pytest.approx(score(36, 30), abs=1e-4)
    cos, sin = rope_tables(32, torch.tensor([17]), 10000.0)
    assert float(apply_rope(q, cos, sin).norm()) == pytest.approx(float(q.norm()), rel=1e-5)
