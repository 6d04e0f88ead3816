"""`algos` is the bottom layer: it never imports torch, `model` or `compare`."""
from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

import algos

FORBIDDEN = {"torch", "model", "compare"}
ALGOS_DIR = Path(algos.__file__).resolve().parent


def test_importing_algos_loads_no_upper_layer():
    code = (
        "import json, sys\n"
        "import algos, algos.solvers\n"
        f"print(json.dumps(sorted(m for m in sys.modules if m.split('.')[0] in {sorted(FORBIDDEN)!r})))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert json.loads(out.stdout.strip().splitlines()[-1]) == []


def _imported_roots(path: Path) -> set[str]:
    roots = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            roots.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            roots.add(node.module.split(".")[0])
    return roots


def test_no_algos_source_imports_an_upper_layer():
    files = sorted(ALGOS_DIR.rglob("*.py"))
    assert len(files) >= 8
    offenders = {str(f.relative_to(ALGOS_DIR)): sorted(_imported_roots(f) & FORBIDDEN) for f in files}
    assert {f: r for f, r in offenders.items() if r} == {}
