"""Fixtures the CLI tests share: a tiny checkpoint per test module and a fresh working folder
holding it (``work``). A module whose commands need answers that depend on the prompt
(ablate, lens, patch, probe) asks for the scaled checkpoint by overriding ``ckpt_dir``::

    @pytest.fixture(scope="module")
    def ckpt_dir(scaled_ckpt_dir):
        return scaled_ckpt_dir
"""
from __future__ import annotations

import os
from pathlib import Path

import pytest
from cli_testing import scaled_tiny_checkpoint

from model.testing import tiny_checkpoint


@pytest.fixture(scope="module")
def ckpt_dir(tmp_path_factory) -> Path:
    """A folder with ``tiny.pt``: random weights, p = 5, 8 examples (max_k = 7)."""
    d = tmp_path_factory.mktemp("ckpts")
    tiny_checkpoint(d / "tiny.pt", p=5, n_examples=8)
    return d


@pytest.fixture(scope="module")
def scaled_ckpt_dir(tmp_path_factory) -> Path:
    """A folder with ``tiny.pt`` scaled up 15x (:func:`cli_testing.scaled_tiny_checkpoint`)."""
    d = tmp_path_factory.mktemp("ckpts-scaled")
    scaled_tiny_checkpoint(d)
    return d


@pytest.fixture()
def work(tmp_path, monkeypatch, ckpt_dir) -> Path:
    """A fresh working folder holding ``tiny.pt`` (a hard link), made the current directory."""
    os.link(ckpt_dir / "tiny.pt", tmp_path / "tiny.pt")
    monkeypatch.chdir(tmp_path)
    return tmp_path
