"""Numbers beside the pictures: scores of representation structure, on plain arrays.

Each score has a definition here and a test on synthetic data whose answer is known
(``tests/interp/test_scores.py``). They take numpy arrays and know nothing of models.
"""
from __future__ import annotations

import math

import numpy as np

__all__ = [
    "RAYLEIGH_CV",
    "pca",
    "ring_score",
    "circularity",
    "embedding_plane_scores",
    "pearson_matrix",
    "pair_contrast",
    "same_ratio_mask",
    "same_label_mask",
]

#: Coefficient of variation (std / mean) of the distance from the centre of a 2-D isotropic
#: Gaussian (a Rayleigh distribution): sqrt((4 - pi) / pi) = 0.5227. A structureless blob's rings.
RAYLEIGH_CV = math.sqrt((4 - math.pi) / math.pi)


def pca(x: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Principal components of the rows of ``x`` (N, D), mean removed.

    Returns (coordinates (N, n) = (x - mean) @ V[:, :n], share of the total variance
    each component explains (n,)). (The authors' script projected ``x`` onto ``V + mean``;
    here the mean is subtracted from the data, as PCA is defined.)
    """
    x = np.asarray(x, dtype=np.float64)
    centred = x - x.mean(axis=0, keepdims=True)
    _, s, vt = np.linalg.svd(centred, full_matrices=False)
    total = float((s**2).sum())
    n = min(n, vt.shape[0])
    share = (s[:n] ** 2) / total if total > 0 else np.zeros(n)
    return centred @ vt[:n].T, share


def ring_score(points: np.ndarray) -> float:
    """How well 2-D points lie on one circle around their centroid: 1 - CV(r) / RAYLEIGH_CV.

    r is each point's distance from the centroid and CV(r) = std(r) / mean(r). Points on
    a circle give 1; a 2-D Gaussian blob gives about 0; clipped to [0, 1]. Fewer than 3
    points, or points that all coincide (no ring at all), give 0.
    """
    pts = np.asarray(points, dtype=np.float64)
    if len(pts) < 3:
        return 0.0
    r = np.linalg.norm(pts - pts.mean(axis=0), axis=1)
    if r.mean() <= 1e-12:
        return 0.0
    return float(np.clip(1.0 - (r.std() / r.mean()) / RAYLEIGH_CV, 0.0, 1.0))


def circularity(coords: np.ndarray, x: np.ndarray, y: np.ndarray) -> tuple[float, str]:
    """The "circle of circles" score of 2-D points labelled by two inputs.

    coords (N, 2): e.g. a head's top two principal components over the p^2 prompts that
    differ only in the query; x, y (N,) the query inputs. Group the points by one input;
    the score is the mean :func:`ring_score` of the groups whose points do not coincide
    (a collapsed group counts 0), maximised over which input groups: returns (score,
    "x" or "y", the input that labels the rings).

    A circle of circles — an outer circle set by one input, inner circles by the other —
    scores 1 with either grouping (every group is a circle: the inner circle, or the outer
    one shifted). Concentric circles (radius set by one input, angle by the other) score
    1 grouped by the radius input. A blob scores about 0, whatever the labels.
    """
    coords = np.asarray(coords, dtype=np.float64)[:, :2]
    best, by = 0.0, "x"
    scale = float(np.sqrt(((coords - coords.mean(0)) ** 2).sum(1).mean())) or 1.0
    for name, labels in (("x", np.asarray(x)), ("y", np.asarray(y))):
        scores = []
        for value in np.unique(labels):
            group = coords[labels == value]
            spread = np.linalg.norm(group - group.mean(0), axis=1).mean() if len(group) else 0.0
            scores.append(ring_score(group) if spread > 1e-6 * scale else 0.0)
        score = float(np.mean(scores)) if scores else 0.0
        if score > best:
            best, by = score, name
    return best, by


def _plane_scores(coords: np.ndarray, classes: np.ndarray) -> tuple[float, float]:
    """(planarity, class R^2) of 3-D points split into classes 0 and 1 (see below)."""
    shares = []
    for c in (0, 1):
        cls = coords[classes == c]
        if len(cls) < 3:
            continue
        eig = np.linalg.eigvalsh(np.cov(cls.T, bias=True))[::-1]
        shares.append(float(eig[:2].sum() / eig.sum()) if eig.sum() > 0 else 0.0)
    total = float(((coords - coords.mean(0)) ** 2).sum())
    between = sum(float((classes == c).sum()) * float(((coords[classes == c].mean(0) - coords.mean(0)) ** 2).sum())
                  for c in (0, 1) if (classes == c).any())
    return (float(np.mean(shares)) if shares else float("nan")), (between / total if total > 0 else 0.0)


def embedding_plane_scores(coords: np.ndarray, residues: np.ndarray, n_null: int = 200) -> dict[str, float]:
    """Do the even and the odd residues lie on two separate planes? coords (p, 3).

    - ``planarity``: for each parity class, the share of its variance in its own top two
      directions (1 = exactly a plane), averaged over the two classes;
    - ``parity_r2``: the share of the total variance explained by parity (between-class
      variance / total variance): 1 when the classes sit at two points, 0 when their
      centroids coincide. Two parallel planes apart score high on both.
    - ``planarity_null``, ``parity_r2_null``: the same for random splits of the residues
      into classes of the parity classes' sizes (``n_null`` of them, seed 0). With a few
      points per class (p = 11: 6 and 5) any split looks fairly planar, so the figure to
      read is the score against its null.
    """
    coords = np.asarray(coords, dtype=np.float64)
    parity = np.asarray(residues) % 2
    planarity, r2 = _plane_scores(coords, parity)
    rng = np.random.default_rng(0)
    null = np.array([_plane_scores(coords, rng.permutation(parity)) for _ in range(n_null)])
    return {"planarity": planarity, "parity_r2": r2,
            "planarity_null": float(np.nanmean(null[:, 0])), "parity_r2_null": float(null[:, 1].mean())}


def pearson_matrix(vectors: np.ndarray) -> np.ndarray:
    """Pearson correlation between every pair of rows of ``vectors`` (N, D) -> (N, N).

    Each vector is centred and scaled over its own features, so entry (i, j) is the
    cosine similarity of the standardized vectors — what the paper's "cosine similarity"
    maps show. A constant vector has no correlation (its row and column are 0).
    """
    v = np.asarray(vectors, dtype=np.float64)
    v = v - v.mean(axis=1, keepdims=True)
    norm = np.linalg.norm(v, axis=1, keepdims=True)
    v = np.divide(v, norm, out=np.zeros_like(v), where=norm > 1e-12)
    return (v @ v.T).astype(np.float32)


def same_ratio_mask(p: int) -> np.ndarray:
    """(p^2, p^2) bool: inputs i = x·p + y and j lie on the same line through the origin
    (y/x equal, or both x = 0), neither being (0, 0), i != j."""
    grid = np.array([(x, y) for x in range(p) for y in range(p)])
    line = np.full(p * p, -1)
    for x, y in grid:
        if (x, y) == (0, 0):
            continue
        inv = pow(int(x), p - 2, p) if x else None
        line[x * p + y] = p if x == 0 else (y * inv) % p  # slope y/x, or p for the line x = 0
    same = (line[:, None] == line[None, :]) & (line[:, None] >= 0)
    np.fill_diagonal(same, False)
    return same


def same_label_mask(z: np.ndarray) -> np.ndarray:
    """(N, N) bool: prompts i != j whose answers z are equal."""
    z = np.asarray(z)
    same = z[:, None] == z[None, :]
    np.fill_diagonal(same, False)
    return same


def pair_contrast(sim: np.ndarray, same: np.ndarray) -> float:
    """Mean similarity of the pairs in ``same`` minus the mean over all other pairs (i != j).

    On a Pearson map this says how much more alike two prompts look when they share a
    property (the ratio y/x of the query, or the answer z) than when they do not: about 0
    for representations that ignore the property, up to 2 at most.
    """
    off = ~np.eye(len(sim), dtype=bool)
    other = off & ~same
    if not same.any() or not other.any():
        return float("nan")
    return float(sim[same].mean() - sim[other].mean())
