"""Imports flow one way: algos -> model -> compare."""
import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _imported_roots(package: str) -> set[str]:
    roots = set()
    for path in (ROOT / package).rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                roots |= {a.name.split(".")[0] for a in node.names}
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                roots.add(node.module.split(".")[0])
    return roots


def test_model_never_imports_compare():
    assert "compare" not in _imported_roots("model")


def test_algos_imports_neither_torch_nor_the_upper_layers():
    assert not {"torch", "model", "compare"} & _imported_roots("algos")


def test_interp_depends_on_algos_and_model_only():
    assert "compare" not in _imported_roots("interp")
    assert "interp" not in _imported_roots("model") | _imported_roots("algos")
