"""What the documentation tests share: reading the committed reports the pages quote."""
from __future__ import annotations

import json
from functools import cache
from pathlib import Path

import pandas as pd

ROOT = Path(__file__).resolve().parents[1]


@cache
def read_csv(file: str) -> pd.DataFrame:
    """A committed table, by its path from the repository root (read once)."""
    return pd.read_csv(ROOT / file)


@cache
def manifest(folder: str) -> dict:
    """A committed report's manifest.json."""
    return json.loads((ROOT / folder / "manifest.json").read_text())


@cache
def last_json(file: str) -> dict:
    """The JSON object on the last line of a committed benchmark output."""
    return json.loads((ROOT / file).read_text().strip().splitlines()[-1])


def cell(file: str, column: str, **where) -> float:
    """The one value of ``column`` in the row of ``file`` where every ``where`` column matches."""
    t = read_csv(file)
    mask = pd.Series(True, index=t.index)
    for col, val in where.items():
        mask &= t[col] == val
    rows = t.loc[mask, column]
    assert len(rows) == 1, f"{file}: {where} selects {len(rows)} rows"
    return float(rows.iloc[0])


def pct(v: float) -> str:
    """A share as the pages print it in per cent: 0.956 -> "95.6"."""
    return f"{100 * v:.1f}"
