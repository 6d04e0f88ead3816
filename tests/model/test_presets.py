"""Every preset is a runnable configuration: its task setting builds and the batch divides evenly."""
import pytest

from model.config import PRESETS


@pytest.mark.parametrize("name", [n for n in PRESETS if not n.startswith("paper")])
def test_preset_builds_its_setting_and_balances_the_batch(name):
    preset = PRESETS[name]
    setting = preset.setting.build()
    n_tasks = len(setting.pretrain_tasks)
    assert setting.p == preset.model.p == preset.model.vocab_size
    assert preset.train.batch_size % n_tasks == 0, f"{name}: batch {preset.train.batch_size} vs {n_tasks} tasks"
    assert len(setting.ood_tasks) == setting.p**2 - n_tasks > 0


def test_cpu_scale_task_counts():
    assert len(PRESETS["cpu-d4"].setting.build().pretrain_tasks) == 40
    assert len(PRESETS["cpu-p11-d4"].setting.build().pretrain_tasks) == 100
