import pytest

from model.config import get_preset
from model.testing import tiny_checkpoint


@pytest.fixture(scope="session")
def tiny_ckpt(tmp_path_factory):
    """A random-weight checkpoint at p = 5 (plumbing tests)."""
    return tiny_checkpoint(tmp_path_factory.mktemp("ck") / "tiny.pt")


@pytest.fixture(scope="session")
def smoke_run(tmp_path_factory):
    """One run of the smoke preset (shared by the tests that need a trained model)."""
    from model.train import RunSpec, train

    preset = get_preset("smoke")
    out = tmp_path_factory.mktemp("smoke")
    ck = train(RunSpec(model=preset.model, train=preset.train, setting=preset.setting, out_dir=out, progress=False))
    return out, ck
