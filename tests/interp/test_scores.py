"""Scores of representation structure, on synthetic data whose answer is known."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from interp.pca import discrete_logs
from interp.scores import (
    circularity,
    embedding_plane_scores,
    pair_contrast,
    pca,
    pearson_matrix,
    ring_score,
    same_label_mask,
    same_ratio_mask,
)

RNG = np.random.default_rng(0)


def _circle(n, radius=1.0, centre=(0.0, 0.0), phase=0.0):
    t = phase + 2 * np.pi * np.arange(n) / n
    return np.stack([centre[0] + radius * np.cos(t), centre[1] + radius * np.sin(t)], axis=1)


def test_ring_score_is_one_on_a_circle_and_about_zero_on_a_blob():
    assert ring_score(_circle(29, radius=3.0)) == pytest.approx(1.0)
    blob = np.mean([ring_score(RNG.normal(size=(2000, 2))) for _ in range(5)])
    assert abs(blob) < 0.05
    noisy = ring_score(_circle(500) + RNG.normal(scale=0.1, size=(500, 2)))
    assert 0.5 < noisy < 1.0
    assert ring_score(np.zeros((10, 2))) == 0.0 and ring_score(_circle(2)) == 0.0


def _labelled(p):
    x, y = np.meshgrid(np.arange(p), np.arange(p), indexing="ij")
    return x.ravel(), y.ravel()


@pytest.mark.parametrize("p", [11, 29])
def test_a_circle_of_circles_scores_high_with_either_grouping(p):
    x, y = _labelled(p)
    outer = 4.0 * np.stack([np.cos(2 * np.pi * x / p), np.sin(2 * np.pi * x / p)], 1)
    inner = 1.0 * np.stack([np.cos(2 * np.pi * y / p), np.sin(2 * np.pi * y / p)], 1)
    score, _ = circularity(outer + inner, x, y)
    assert score > 0.99


def test_concentric_circles_score_high_grouped_by_the_radius_input():
    p = 13
    x, y = _labelled(p)
    radius = 1.0 + x  # x sets the radius, y the angle
    pts = radius[:, None] * np.stack([np.cos(2 * np.pi * y / p), np.sin(2 * np.pi * y / p)], 1)
    score, by = circularity(pts, x, y)
    assert score > 0.99 and by == "x"


def test_a_blob_scores_low_whatever_the_labels():
    p = 29
    x, y = _labelled(p)
    scores = [circularity(RNG.normal(size=(p * p, 2)), x, y)[0] for _ in range(5)]
    assert np.mean(scores) < 0.15


def test_points_set_by_one_input_alone_form_rings_grouped_by_the_other():
    p = 11
    x, y = _labelled(p)
    pts = np.stack([np.cos(2 * np.pi * x / p), np.sin(2 * np.pi * x / p)], 1)  # y does nothing
    score, by = circularity(pts, x, y)
    assert score > 0.99 and by == "y"  # grouped by x every group collapses to a point


def test_pca_removes_the_mean_before_projecting():
    data = RNG.normal(size=(200, 6)) + 50.0  # a large mean: the authors' (v + mu) projection would show it
    coords, share = pca(data, 3)
    assert np.allclose(coords.mean(0), 0, atol=1e-9)
    assert np.all(np.diff(share) <= 1e-12) and 0 < share.sum() <= 1
    centred = data - data.mean(0)
    assert np.allclose((coords**2).sum(0) / (centred**2).sum(), share)


def test_even_and_odd_on_two_planes_against_random_points():
    p = 29
    r = np.arange(p)
    planes = np.column_stack([RNG.normal(size=p), RNG.normal(size=p), np.where(r % 2, 1.0, -1.0)])
    s = embedding_plane_scores(planes, r)
    assert s["planarity"] == pytest.approx(1.0)
    assert s["parity_r2"] > 0.3 and s["parity_r2"] > 3 * s["parity_r2_null"]
    assert s["planarity"] > s["planarity_null"]
    blob = embedding_plane_scores(RNG.normal(size=(p, 3)), r)
    assert abs(blob["planarity"] - blob["planarity_null"]) < 0.1
    assert blob["parity_r2"] < 0.3


def test_pearson_matrix_is_the_correlation_of_rows():
    v = RNG.normal(size=(7, 20))
    np.testing.assert_allclose(pearson_matrix(v), np.corrcoef(v), atol=1e-6)
    v[3] = 5.0  # a constant vector correlates with nothing
    m = pearson_matrix(v)
    assert np.all(m[3] == 0) and np.all(m[:, 3] == 0)


@given(st.sampled_from([2, 3, 5, 7]))
@settings(max_examples=8, deadline=None)
def test_same_ratio_mask_against_brute_force(p):
    mask = same_ratio_mask(p)
    grid = [(x, y) for x in range(p) for y in range(p)]
    for i, a in enumerate(grid):
        for j, b in enumerate(grid):
            expected = i != j and a != (0, 0) and b != (0, 0) and any(
                ((c * a[0]) % p, (c * a[1]) % p) == b for c in range(1, p))
            assert mask[i, j] == expected, (p, a, b)


def test_pair_contrast_finds_a_property_the_vectors_encode():
    p = 11
    grid = np.array([(x, y) for x in range(p) for y in range(p)])
    mask = same_ratio_mask(p)
    line = np.array([(y * pow(int(x), p - 2, p)) % p if x else p for x, y in grid])
    code = RNG.normal(size=(p + 1, 32))
    encodes = code[line] + 0.1 * RNG.normal(size=(len(grid), 32))
    assert pair_contrast(pearson_matrix(encodes), mask) > 0.8
    ignores = RNG.normal(size=(len(grid), 32))
    assert abs(pair_contrast(pearson_matrix(ignores), mask)) < 0.05
    z = (3 * grid[:, 0] + 5 * grid[:, 1]) % p
    assert same_label_mask(z).sum() == sum((z == v).sum() * ((z == v).sum() - 1) for v in range(p))


@pytest.mark.parametrize("p", [2, 3, 5, 7, 11, 13, 29, 31, 37])
def test_discrete_logs_use_a_generator_the_code_finds(p):
    g, log = discrete_logs(p)
    assert log[0] == -1
    assert sorted(log[1:]) == list(range(p - 1))  # g generates GF(p)*
    assert all(pow(g, int(log[v]), p) == v for v in range(1, p))


def test_the_shuffled_null_is_low_for_a_circle_of_circles_and_near_the_score_for_a_blob():
    from interp.pca import circularity_null

    p = 11
    x, y = _labelled(p)
    pts = 4.0 * np.stack([np.cos(2 * np.pi * x / p), np.sin(2 * np.pi * x / p)], 1) + np.stack(
        [np.cos(2 * np.pi * y / p), np.sin(2 * np.pi * y / p)], 1)
    # shuffled groups are random points of the annulus 3 <= r <= 5: ring-like, but far from circles
    assert circularity(pts, x, y)[0] > 0.99 and circularity_null(pts, x, y) < 0.7
    blob = RNG.normal(size=(p * p, 2))
    assert abs(circularity(blob, x, y)[0] - circularity_null(blob, x, y)) < 0.15
