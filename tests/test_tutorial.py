"""docs/tutorial.ipynb runs top to bottom on the bundled checkpoint, so it cannot rot.

Executed with nbclient (the Jupyter project's own executor, the one nbconvert uses): it
runs every cell in a real kernel and raises on the first error, with nothing to compare
against stored outputs (nbval would compare outputs, whose floats differ across CPUs;
nbmake wraps the same executor in a pytest plugin we do not need).
"""
from __future__ import annotations

from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOK = ROOT / "docs" / "tutorial.ipynb"

nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")


def test_tutorial_notebook_runs(tmp_path):
    nb = nbformat.read(NOTEBOOK, as_version=4)
    assert not any(c.get("outputs") for c in nb.cells if c.cell_type == "code"), "commit the notebook without outputs"
    client = nbclient.NotebookClient(nb, timeout=600, kernel_name="python3",
                                     resources={"metadata": {"path": str(tmp_path)}})
    client.execute()
    text = "\n".join(o.get("text", "") for c in nb.cells if c.cell_type == "code" for o in c.outputs)
    # the o.o.d. accuracy the notebook prints is the one `compare run --ckpt d4.pt --k 1..8` wrote
    import pandas as pd

    s = pd.read_csv(ROOT / "reports" / "d4" / "summary.csv")
    want = s.query("split == 'ood' and k == 8 and predictor == 'model'")["accuracy"].iloc[0]
    assert f"o.o.d. accuracy at k = 8: {round(float(want), 4)}" in text


def test_readme_notebook_example_runs_as_written(tmp_path):
    """README's example, run as written (a fresh process in an empty folder, so `d4.pt` is the
    bundled one), prints the o.o.d. accuracy at k = 8 that `compare run --ckpt d4.pt --k 1..8`
    wrote to summary.csv."""
    import os
    import re
    import subprocess
    import sys

    import pandas as pd

    readme = (ROOT / "README.md").read_text()
    code = re.search(r"```python\n(.*?)```", readme, re.S).group(1)
    env = dict(os.environ, MPLBACKEND="Agg", OMP_NUM_THREADS="1")
    proc = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, env=env,
                          timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    first = proc.stdout.splitlines()[0]
    s = pd.read_csv(ROOT / "reports" / "d4" / "summary.csv")
    want = float(s.query("split == 'ood' and k == 8 and predictor == 'model'")["accuracy"].iloc[0])
    assert abs(float(first) - want) < 5e-7  # summary.csv keeps 6 significant digits
