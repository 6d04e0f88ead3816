"""README and docs/ hold together: links resolve, the door's example and tables say what the repository holds.

- every relative link and image in README.md and docs/*.md points to a file or folder that
  exists, and a ``#fragment`` to a heading of the page it names (GitHub's anchors);
- docs/index.md lists every page of docs/, and README links to it;
- README's CLI table has one row per command of the ``compare`` parser;
- README's Python example (its first ``python`` block) is at most 20 lines, is valid Python,
  and the value it says it prints is the one in ``reports/d4/summary.csv`` (the example is
  not run here: a notebook test executes code);
- the table of runs by letter in docs/findings-cpu-scale.md has every lettered run of the
  committed ``runs.csv`` tables, with their configurations.

The figures the pages quote are checked by tests/test_readme_figures.py.
"""
from __future__ import annotations

import argparse
import re
from pathlib import Path

import pandas as pd
import pytest

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
DOCS = ROOT / "docs"
EXAMPLE_MAX_LINES = 20


def _pages() -> list[Path]:
    return [README, *sorted(DOCS.glob("*.md"))]


def _rel(path: Path) -> str:
    return str(path.relative_to(ROOT))


_FENCE = re.compile(r"^(```|~~~).*?^\1[^\n]*$", re.M | re.S)
_INLINE_CODE = re.compile(r"`[^`\n]*`")
_TARGET = re.compile(r"\]\(\s*<?([^()\s<>]+)>?(?:\s+\"[^\"]*\")?\s*\)")


def _prose(text: str) -> str:
    """The page without fenced code blocks (links there are code, not links)."""
    return _FENCE.sub("", text)


def _links(path: Path) -> list[str]:
    """Every link and image target of a page: ``[text](target)``, ``![alt](target)``, ``[![alt](img)](target)``."""
    return _TARGET.findall(_prose(path.read_text()))


def _slug(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation dropped, spaces to hyphens."""
    text = re.sub(r"!?\[([^\]]*)\]\([^)]*\)", r"\1", heading.strip())  # a link's text only
    text = re.sub(r"[^\w\- ]", "", text.lower())
    return text.replace(" ", "-")


def _anchors(path: Path) -> set[str]:
    seen: dict[str, int] = {}
    anchors = set()
    for line in _prose(path.read_text()).splitlines():
        m = re.match(r"^#{1,6}\s+(.*?)\s*#*\s*$", line)
        if not m:
            continue
        slug = _slug(m.group(1))
        n = seen.get(slug, 0)
        seen[slug] = n + 1
        anchors.add(slug if n == 0 else f"{slug}-{n}")
    return anchors


def _is_external(target: str) -> bool:
    return re.match(r"^[a-z][a-z0-9+.-]*:", target, re.I) is not None  # http:, https:, mailto:, …


def test_the_link_check_sees_links_and_anchors():
    """The extraction is not vacuous: README's image, its docs links and a nested image link are seen."""
    links = _links(README)
    assert "reports/d4/grid_ood_7_7.png" in links and "docs/index.md" in links
    assert "../reports/V2-trajectory/report.md" in _links(DOCS / "trajectory.md")
    assert _slug("One prompt by hand: `compare run --examples`") == "one-prompt-by-hand-compare-run---examples"
    assert _slug("Whether the paper's findings hold here") == "whether-the-papers-findings-hold-here"


@pytest.mark.parametrize("page", _pages(), ids=_rel)
def test_every_relative_link_resolves(page):
    broken = []
    for target in _links(page):
        if _is_external(target):
            continue
        path_part, _, fragment = target.partition("#")
        dest = page if not path_part else (page.parent / path_part).resolve()
        if not dest.exists():
            broken.append(f"{target} (no such file)")
        elif fragment and dest.suffix == ".md" and fragment not in _anchors(dest):
            broken.append(f"{target} (no heading #{fragment} in {_rel(dest)})")
        elif path_part and not dest.is_relative_to(ROOT):
            broken.append(f"{target} (outside the repository)")
    assert not broken, f"{_rel(page)} links to: {broken}"


def test_the_index_lists_every_page():
    index = DOCS / "index.md"
    listed = {(index.parent / t.partition("#")[0]).resolve() for t in _links(index) if not _is_external(t)}
    missing = [_rel(p) for p in sorted(DOCS.glob("*.md")) if p != index and p.resolve() not in listed]
    assert not missing, f"docs/index.md does not list: {missing}"
    assert "docs/index.md" in _links(README), "README should link to docs/index.md"


def _parser_commands() -> list[str]:
    from compare.cli.main import build_parser

    sub = [a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction)]
    return list(sub[0].choices)


def test_the_readme_cli_table_has_one_row_per_command():
    rows = re.findall(r"^\| `compare ([a-z][a-z-]*)[ `]", README.read_text(), re.M)
    assert sorted(rows) == sorted(_parser_commands()), f"README's CLI table lists {rows}"


def _readme_example() -> str:
    m = re.search(r"^```python\n(.*?)^```", README.read_text(), re.M | re.S)
    assert m, "README should hold a ```python example"
    return m.group(1)


def test_the_readme_example_is_short_and_valid_python():
    code = _readme_example()
    n = len(code.strip("\n").splitlines())
    assert n <= EXAMPLE_MAX_LINES, f"README's Python example has {n} lines (at most {EXAMPLE_MAX_LINES})"
    compile(code, "README.md example", "exec")


def test_the_readme_example_prints_what_the_committed_report_holds():
    """The value the example says it prints is the `accuracy` of reports/d4/summary.csv (written with 6 decimals)."""
    code = _readme_example()
    assert 'compare.load("d4.pt")' in code and "k=range(1, 9)" in code, "the example should run d4.pt at k = 1..8"
    m = re.search(r'print\(res\.accuracy\("(id|ood)", (\d+)\)\)\s*#\s*([0-9]*\.[0-9]+)', code)
    assert m, "the example should print res.accuracy(split, k) and say the value in a comment"
    split, k, claimed = m.group(1), int(m.group(2)), float(m.group(3))
    summary = pd.read_csv(ROOT / "reports" / "d4" / "summary.csv")
    row = summary[(summary["split"] == split) & (summary["k"] == k) & (summary["predictor"] == "model")]
    assert len(row) == 1
    assert claimed == pytest.approx(float(row["accuracy"].iloc[0]), abs=5e-7), (
        f"README's example claims {claimed}; reports/d4/summary.csv has {row['accuracy'].iloc[0]}")


def _lettered_runs() -> pd.DataFrame:
    a = pd.read_csv(ROOT / "reports" / "training" / "runs.csv")
    b = pd.read_csv(ROOT / "reports" / "training-p11-d2" / "runs.csv")
    runs = pd.concat([a, b[~b["run"].isin(a["run"])]], ignore_index=True)
    return runs[runs["run"].str.match(r"^[A-Z]_")]


@pytest.mark.parametrize("run", _lettered_runs()["run"].tolist())
def test_the_runs_by_letter_match_the_committed_runs(run):
    r = _lettered_runs().set_index("run").loc[run]
    row = (f"| {run} | {r.p} | {r.n_tasks} | {r.alpha:g} | {r.n_layer} × {r.d_model} | {r.n_examples} | "
           f"{r.batch} | {r.step:,} / {r.steps_planned:,} |")
    lines = (DOCS / "findings-cpu-scale.md").read_text().splitlines()
    assert any(line.startswith(row) for line in lines), f"docs/findings-cpu-scale.md should have a row: {row} …"
