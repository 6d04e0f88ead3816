"""Configs as dataclasses, and the named presets.

Three dataclasses travel together in every checkpoint:

- :class:`ModelConfig`: the decoder's shape (it rebuilds the network from a file alone);
- :class:`TrainConfig`: optimizer, schedule, batch and evaluation cadence;
- :class:`SettingConfig`: how the task setting is drawn (the drawn setting itself, an
  ``algos.TaskSetting``, is stored whole beside it).

Presets: ``paper-d2`` / ``paper-d4`` are the paper's released runs exactly (for a GPU);
``cpu-d2`` / ``cpu-d4`` are sized for a 2-core CPU; ``smoke`` learns something measurable
in well under a minute and is what the tests use.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields, replace
from typing import Any

from algos.errors import InputError

__all__ = [
    "ModelConfig",
    "TrainConfig",
    "SettingConfig",
    "Preset",
    "PRESETS",
    "get_preset",
    "config_from_dict",
]


@dataclass(frozen=True)
class ModelConfig:
    """The GPT-style decoder of the paper (pre-LN, RoPE, ReLU MLP, tied output, no biases)."""

    p: int  # residues are tokens 0..p-1
    vocab_size: int  # >= p; the paper's vocabulary has 47 tokens at p = 29
    d_model: int = 128
    n_head: int = 4
    n_layer: int = 4
    n_examples: int = 32  # examples per training sequence (3 tokens each)
    mlp_ratio: int = 4
    rope_base: float = 10000.0
    ln_eps: float = 1e-5

    def __post_init__(self) -> None:
        if self.vocab_size < self.p:
            raise InputError(f"vocab_size {self.vocab_size} < p {self.p}")
        if self.d_model % self.n_head or (self.d_model // self.n_head) % 2:
            raise InputError(f"d_model {self.d_model} must split into {self.n_head} heads of even size")

    @property
    def block_size(self) -> int:
        """Tokens in one training sequence."""
        return 3 * self.n_examples

    @property
    def head_dim(self) -> int:
        return self.d_model // self.n_head


@dataclass(frozen=True)
class TrainConfig:
    """Optimization and evaluation. ``batch_size`` is the global batch (all ranks together)."""

    steps: int = 20_000
    batch_size: int = 256
    lr: float = 1.5e-4
    warmup_steps: int = 1000
    warmup_start: float = 0.01  # warm-up starts at this fraction of lr
    final_lr_frac: float = 0.1  # cosine decays to this fraction of lr
    weight_decay: float = 2.0
    betas: tuple[float, float] = (0.9, 0.98)
    eps: float = 1e-8
    grad_clip: float = 0.0  # 0 = none (the paper)
    seed: int = 1  # model init and data order
    eval_every: int = 500
    eval_sequences: int = 512  # sequences per evaluation set (spread evenly over its tasks)
    save_every: int = 500  # last.pt cadence (also written at every evaluation)
    precision: str = "auto"  # "auto" (bf16 autocast on CUDA, fp32 on CPU) | "fp32" | "bf16"
    compile: bool = False  # torch.compile the model (CUDA mostly)
    threads: int = 0  # torch intra-op threads on CPU; 0 = leave torch's default
    snapshots: tuple[int, ...] = ()  # steps at which a weight-only copy goes to snapshots/ (see snapshot_steps)

    def __post_init__(self) -> None:
        if self.steps < 1 or self.batch_size < 1:
            raise InputError("steps and batch_size must be >= 1")
        if self.precision not in {"auto", "fp32", "bf16"}:
            raise InputError(f"precision must be auto, fp32 or bf16, got {self.precision!r}")
        object.__setattr__(self, "betas", tuple(float(b) for b in self.betas))
        object.__setattr__(self, "snapshots", tuple(sorted({int(s) for s in self.snapshots})))
        bad = [s for s in self.snapshots if not 1 <= s <= self.steps]
        if bad:
            raise InputError(f"snapshot steps must lie in 1..{self.steps}, got {bad[0]}")


def snapshot_steps(spec: str, steps: int) -> tuple[int, ...]:
    """Parse ``--snapshots``: "200,500,1000" (explicit steps) or "log:N" (N log-spaced steps
    from 1 to ``steps``, rounded to integers; duplicates after rounding merge, so early on
    there may be fewer than N).

    >>> snapshot_steps("log:5", 10000)
    (1, 10, 100, 1000, 10000)
    """
    spec = spec.strip()
    if spec.startswith("log:"):
        try:
            n = int(spec[4:])
        except ValueError:
            raise InputError(f"--snapshots: {spec!r}: expected log:N with an integer N") from None
        if n < 2:
            raise InputError(f"--snapshots: log:N needs N >= 2, got {n}")
        out = {round(steps ** (i / (n - 1))) for i in range(n)}
    else:
        try:
            out = {int(s) for s in spec.split(",") if s.strip()}
        except ValueError:
            raise InputError(f"--snapshots: {spec!r}: expected steps like 200,500,1000 or log:N") from None
    bad = sorted(s for s in out if not 1 <= s <= steps)
    if bad:
        raise InputError(f"--snapshots: step {bad[0]} is outside 1..{steps}")
    return tuple(sorted(out))


@dataclass(frozen=True)
class SettingConfig:
    """How to draw the task setting (see ``algos.tasks.TaskSetting``)."""

    p: int = 29
    n_base_tasks: int = 96
    n_random_tasks: int = 0
    alpha: float = 0.8
    task_seed: int = 1
    split_seed: int = 0
    convention: str = "authors"  # "authors" (replay of the paper's code) or "native"
    max_ood_tasks: int | None = None

    def build(self):
        """Draw the ``TaskSetting`` this config describes."""
        from algos.tasks import TaskSetting

        common = dict(
            p=self.p,
            n_base_tasks=self.n_base_tasks,
            alpha=self.alpha,
            task_seed=self.task_seed,
            split_seed=self.split_seed,
            n_random_tasks=self.n_random_tasks,
        )
        if self.convention == "authors":
            cap = self.max_ood_tasks if self.max_ood_tasks is not None else 256
            return TaskSetting.authors_replay(**common, max_ood_tasks=cap)
        if self.convention == "native":
            return TaskSetting.build(**common, max_ood_tasks=self.max_ood_tasks)
        raise InputError(f"convention must be 'authors' or 'native', got {self.convention!r}")


@dataclass(frozen=True)
class Preset:
    """A named bundle of the three configs."""

    name: str
    setting: SettingConfig
    model: ModelConfig
    train: TrainConfig
    description: str = ""


def _paper(depth: int) -> Preset:
    d4 = depth == 4
    setting = SettingConfig(
        p=29,
        n_base_tasks=96 if d4 else 128,
        alpha=0.8 if d4 else 0.6,
        task_seed=1 if d4 else 2,
        split_seed=0,
        convention="authors",
    )
    return Preset(
        name=f"paper-d{depth}",
        setting=setting,
        model=ModelConfig(p=29, vocab_size=47, d_model=512, n_head=4, n_layer=depth, n_examples=32),
        train=TrainConfig(
            steps=200_000,
            batch_size=1536 if d4 else 1024,
            lr=1.5e-4,
            warmup_steps=10_000,
            weight_decay=2.0,
            seed=setting.task_seed,
            eval_every=1000,
            eval_sequences=1024,
            save_every=1000,
        ),
        description=f"The paper's released d={depth} run (A100-scale; use a GPU). Vocabulary of 47 tokens "
        "as in the authors' tokenizer (residues, then unused special tokens), so the softmax matches theirs.",
    )


def _cpu(depth: int, p: int = 7, n_base_tasks: int = 9, batch_size: int = 160) -> Preset:
    """The CPU-scale settings of the bundled checkpoints (see README, "Training at CPU scale").

    p = 7: 40 of 49 tasks; p = 11: 100 of 121 tasks (4 random tasks on top of the base tasks' 4x).
    """
    n_random_tasks = 4
    n_tasks = 4 * n_base_tasks + n_random_tasks
    return Preset(
        name=f"cpu-d{depth}" if p == 7 else f"cpu-p{p}-d{depth}",
        setting=SettingConfig(
            p=p,
            n_base_tasks=n_base_tasks,
            n_random_tasks=n_random_tasks,
            alpha=0.8,
            task_seed=1,
            split_seed=0,
            convention="native",
        ),
        model=ModelConfig(p=p, vocab_size=p, d_model=64, n_head=4, n_layer=depth, n_examples=16),
        train=TrainConfig(
            steps=40_000,
            batch_size=batch_size,
            lr=2e-3,
            warmup_steps=300,
            weight_decay=0.5,
            eval_every=250,
            eval_sequences=320,
            save_every=250,
            threads=1,
        ),
        description=f"Depth-{depth} model at p = {p} ({n_tasks} of {p * p} tasks pre-trained) sized for one CPU core.",
    )


PRESETS: dict[str, Preset] = {
    "paper-d2": _paper(2),
    "paper-d4": _paper(4),
    "cpu-d4": _cpu(4),
    "cpu-d2": _cpu(2),
    "cpu-p11-d4": _cpu(4, p=11, n_base_tasks=24, batch_size=200),
    "cpu-p11-d2": _cpu(2, p=11, n_base_tasks=24, batch_size=200),
    "smoke": Preset(
        name="smoke",
        setting=SettingConfig(p=5, n_base_tasks=2, alpha=0.6, task_seed=1, split_seed=0, convention="native"),
        model=ModelConfig(p=5, vocab_size=5, d_model=64, n_head=4, n_layer=2, n_examples=10),
        train=TrainConfig(
            steps=400,
            batch_size=128,
            lr=5e-3,
            warmup_steps=30,
            weight_decay=0.0,
            eval_every=100,
            eval_sequences=64,
            save_every=100,
        ),
        description="Tiny run for tests: learns its pre-training tasks above chance in seconds.",
    ),
}


def get_preset(name: str) -> Preset:
    """Look up a preset by name; a clear error lists the known ones."""
    try:
        return PRESETS[name]
    except KeyError:
        raise InputError(f"unknown preset {name!r}; known: {', '.join(PRESETS)}") from None


def config_from_dict(cls: type, d: dict[str, Any]):
    """Rebuild a config dataclass from its ``asdict`` form, ignoring unknown keys."""
    if not isinstance(d, dict):
        raise InputError(f"{cls.__name__}: expected a dict, got {type(d).__name__}")
    names = {f.name for f in fields(cls)}
    return cls(**{k: (tuple(v) if k == "betas" else v) for k, v in d.items() if k in names})


def to_dict(cfg: Any) -> dict[str, Any]:
    """``asdict`` with tuples turned into lists (JSON and weights_only friendly)."""
    d = asdict(cfg)
    return {k: (list(v) if isinstance(v, tuple) else v) for k, v in d.items()}


def with_overrides(cfg: Any, **overrides: Any):
    """``dataclasses.replace`` that ignores ``None`` values (unset CLI flags)."""
    return replace(cfg, **{k: v for k, v in overrides.items() if v is not None})
