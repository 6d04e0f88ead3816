"""Import of the paper's released checkpoints into this project's format.

The authors release bare state dicts (``.pth``) whose *file name* carries the whole
configuration, e.g.::

    noembdFalse_paraleTrue_pltask384_rope_decoder_p29_base29_row32_ntask384_nvar2_
    dsplitTrue_dfrac80.0_relu_n512_h4_d4_lctx512_I1_dI0_adamw_bs1536_t200000_T200000_
    Tw10000_lr1.50e-04_wd2.00e+00.pth

(one name, broken here for width). :func:`parse_authors_filename` reads it into an
:class:`AuthorsRun`; :func:`import_authors_checkpoint` maps the weights onto
:class:`model.gpt.GPT`, rebuilds the task setting by replaying the seeds in the name
(``TaskSetting.authors_replay``) and writes one self-describing checkpoint that every
command then uses like a native one.

Fields of the name (in order): ``noembd`` (embedding excluded from weight decay, i.e.
untied output), ``parale`` (rectangular rule), ``pltask`` (tasks after the rule, 4 per
base task), the model name (``rope_decoder``), ``p``, ``base`` (numbers are written in
this base), ``row`` (examples per sequence), ``ntask`` (all pre-training tasks: rule +
uniformly random ones), ``nvar`` (2: x and y), ``dsplit`` (train/test input split),
``dfrac`` (train-input percentage), the activation, ``n`` (d_model), ``h`` (heads),
``d`` (depth), ``lctx`` (maximum context), ``I`` (task and model seed), ``dI`` (split
seed), the optimizer, ``bs`` (batch), ``t`` (step of this checkpoint; optional), ``T``
(total steps), ``Tw`` (warm-up steps), ``lr`` and ``wd``.

Key names, theirs -> ours (q, k, v are stacked along the output dimension in both):

    transformer.wte.weight                  wte.weight            (V, C)
    transformer.h.{i}.ln_1.{weight,bias}    blocks.{i}.ln_1.*     (C,)
    transformer.h.{i}.attn.to_qkv.weight    blocks.{i}.attn.qkv.weight   (3C, C)
    transformer.h.{i}.attn.o.weight         blocks.{i}.attn.o.weight     (C, C)
    transformer.h.{i}.ln_2.{weight,bias}    blocks.{i}.ln_2.*     (C,)
    transformer.h.{i}.mlp.c_fc.weight       blocks.{i}.mlp.fc.weight     (4C, C)
    transformer.h.{i}.mlp.c_proj.weight     blocks.{i}.mlp.proj.weight   (C, 4C)
    transformer.ln_f.{weight,bias}          ln_f.*                (C,)
    lm_head.weight                          lm_head.weight (tied to wte; must be equal)
    transformer.h.{i}.attn.rotary_emb.freqs (none: checked against the RoPE frequencies)

Their vocabulary is ``base + 1`` digit tokens (0..base), then 10 special and 7
position-hint tokens: 47 at p = base = 29. Residue r is token r, and predictions use only
the first p logits, so the unused tokens are carried along but never predicted.
"""

from __future__ import annotations

import os
import re
from dataclasses import asdict, dataclass
from pathlib import Path

import torch

from algos.errors import InputError
from model.checkpoint import CheckpointError, read_torch_file, save_checkpoint
from model.config import ModelConfig, SettingConfig, TrainConfig

__all__ = [
    "AuthorsRun",
    "parse_authors_filename",
    "authors_key_map",
    "convert_authors_state_dict",
    "import_authors_checkpoint",
    "load_authors_state_dict",
    "N_SPECIAL_TOKENS",
    "N_POSITION_HINT_TOKENS",
]

N_SPECIAL_TOKENS = 10  # <OP> + * - = <SOS> <EOS> <MOD> <MASK> ,
N_POSITION_HINT_TOKENS = 7  # <a> .. <g>
SOURCE_NOTE = "imported from the authors' release"

_FLOAT = r"[0-9]+(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?"
_BOOL = r"True|False"
# (what the reader is told was expected, pattern); matched one after the other.
_FIELDS: tuple[tuple[str, str], ...] = (
    ("'noembd<True|False>'", rf"noembd(?P<noembd>{_BOOL})"),
    ("'_parale<True|False>'", rf"_parale(?P<parale>{_BOOL})"),
    ("'_pltask<int>'", r"_pltask(?P<pltask>[0-9]+)"),
    ("'_<model name>' (e.g. _rope_decoder)", r"_(?P<model>[A-Za-z][A-Za-z_]*?)(?=_p[0-9])"),
    ("'_p<int>'", r"_p(?P<p>[0-9]+)"),
    ("'_base<int>'", r"_base(?P<base>[0-9]+)"),
    ("'_row<int>'", r"_row(?P<row>[0-9]+)"),
    ("'_ntask<int>'", r"_ntask(?P<ntask>[0-9]+)"),
    ("'_nvar<int>'", r"_nvar(?P<nvar>[0-9]+)"),
    ("'_dsplit<True|False>'", rf"_dsplit(?P<dsplit>{_BOOL})"),
    ("'_dfrac<percent>'", rf"_dfrac(?P<dfrac>{_FLOAT})"),
    ("'_<activation>' (e.g. _relu)", r"_(?P<act>[A-Za-z]+)"),
    ("'_n<d_model>'", r"_n(?P<n>[0-9]+)"),
    ("'_h<heads>'", r"_h(?P<h>[0-9]+)"),
    ("'_d<depth>'", r"_d(?P<d>[0-9]+)"),
    ("'_lctx<int>'", r"_lctx(?P<lctx>[0-9]+)"),
    ("'_I<seed>'", r"_I(?P<I>[0-9]+)"),
    ("'_dI<split seed>'", r"_dI(?P<dI>[0-9]+)"),
    ("'_<optimizer>' (e.g. _adamw)", r"_(?P<optim>[A-Za-z]+)"),
    ("'_bs<batch>'", r"_bs(?P<bs>[0-9]+)"),
    ("'_t<step>' or '_T<steps>'", r"(?:_t(?P<t>[0-9]+))?"),
    ("'_T<steps>'", r"_T(?P<T>[0-9]+)"),
    ("'_Tw<warm-up steps>'", r"_Tw(?P<Tw>[0-9]+)"),
    ("'_lr<float>'", rf"_lr(?P<lr>{_FLOAT})"),
    ("'_wd<float>'", rf"_wd(?P<wd>{_FLOAT})"),
    ("'.pth' at the end", r"\.pth$"),
)
_EXAMPLE = (
    "noembdFalse_paraleTrue_pltask384_rope_decoder_p29_base29_row32_ntask384_nvar2_dsplitTrue_dfrac80.0_"
    "relu_n512_h4_d4_lctx512_I1_dI0_adamw_bs1536_t200000_T200000_Tw10000_lr1.50e-04_wd2.00e+00.pth"
)


@dataclass(frozen=True)
class AuthorsRun:
    """The configuration encoded in an authors' checkpoint file name (field names as theirs)."""

    file_name: str
    dont_decay_embd: bool  # noembd: True means an untied output layer
    parallelogram: bool  # parale: rectangular rule on
    n_tasks_pl: int  # pltask: tasks after the rectangular rule
    model_name: str  # rope_decoder
    p: int
    base: int
    n_examples: int  # row
    n_tasks: int  # ntask: all pre-training tasks
    n_var: int
    split_data: bool  # dsplit
    data_pct: float  # dfrac (percent)
    act_name: str
    d_model: int  # n
    n_head: int  # h
    n_layer: int  # d
    block_size: int  # lctx
    seed: int  # I
    data_seed: int  # dI
    optim: str
    batch_size: int  # bs
    step: int | None  # t (None in names without it)
    steps: int  # T
    warmup_steps: int  # Tw
    lr: float
    weight_decay: float  # wd

    # ------------------------------------------------------------------ derived
    @property
    def n_base_tasks(self) -> int:
        return self.n_tasks_pl // 4

    @property
    def n_random_tasks(self) -> int:
        return self.n_tasks - self.n_tasks_pl

    @property
    def alpha(self) -> float:
        return self.data_pct / 100.0

    @property
    def vocab_size(self) -> int:
        """base + 1 digit tokens, then the special and position-hint tokens."""
        return self.base + 1 + N_SPECIAL_TOKENS + N_POSITION_HINT_TOKENS

    @property
    def checkpoint_step(self) -> int:
        return self.steps if self.step is None else self.step

    def to_filename(self) -> str:
        """The name the authors' training script gives this run's checkpoint (inverse of parsing)."""
        step = f"_t{self.step}" if self.step is not None else ""
        return (
            f"noembd{self.dont_decay_embd}_parale{self.parallelogram}_pltask{self.n_tasks_pl}_{self.model_name}"
            f"_p{self.p}_base{self.base}_row{self.n_examples}_ntask{self.n_tasks}_nvar{self.n_var}"
            f"_dsplit{self.split_data}_dfrac{self.data_pct:.1f}_{self.act_name}_n{self.d_model}_h{self.n_head}"
            f"_d{self.n_layer}_lctx{self.block_size}_I{self.seed}_dI{self.data_seed}_{self.optim}_bs{self.batch_size}"
            f"{step}_T{self.steps:d}_Tw{self.warmup_steps:d}_lr{self.lr:0.2e}_wd{self.weight_decay:.2e}.pth"
        )

    def check_supported(self) -> None:
        """Raise ValueError unless this run is a configuration the project's model reproduces."""
        problems = []
        if self.model_name != "rope_decoder":
            problems.append(f"model {self.model_name!r} (only the causal 'rope_decoder' is supported)")
        if self.act_name.lower() != "relu":
            problems.append(f"activation {self.act_name!r} (only 'relu' is supported)")
        if self.n_var != 2:
            problems.append(f"nvar{self.n_var} (tasks have two variables, x and y)")
        if not self.parallelogram:
            problems.append("paraleFalse (the task replay needs the rectangular rule)")
        elif self.n_tasks_pl % 4:
            problems.append(f"pltask{self.n_tasks_pl} is not a multiple of 4 (rectangular rule)")
        if self.n_tasks < self.n_tasks_pl:
            problems.append(f"ntask{self.n_tasks} < pltask{self.n_tasks_pl}")
        if not self.split_data:
            problems.append("dsplitFalse (the setting needs a train/test input split)")
        if not 0.0 < self.data_pct < 100.0:
            problems.append(f"dfrac{self.data_pct} is not a percentage in (0, 100)")
        if self.base != self.p:
            problems.append(f"base{self.base} with p{self.p} (only one token per residue, base = p, is supported)")
        if self.n_head < 1 or self.d_model % self.n_head or (self.d_model // self.n_head) % 2:
            problems.append(f"n{self.d_model} does not split into h{self.n_head} heads of even size")
        if self.n_layer < 1 or self.n_examples < 2:
            problems.append(f"d{self.n_layer} / row{self.n_examples} out of range")
        if problems:
            raise InputError(f"{self.file_name}: unsupported authors' configuration: " + "; ".join(problems))

    # ------------------------------------------------------------------ configs
    def model_config(self) -> ModelConfig:
        return ModelConfig(
            p=self.p,
            vocab_size=self.vocab_size,
            d_model=self.d_model,
            n_head=self.n_head,
            n_layer=self.n_layer,
            n_examples=self.n_examples,
            mlp_ratio=4,
            rope_base=10000.0,
            ln_eps=1e-5,
        )

    def train_config(self) -> TrainConfig:
        return TrainConfig(
            steps=self.steps,
            batch_size=self.batch_size,
            lr=self.lr,
            warmup_steps=self.warmup_steps,
            warmup_start=0.01,
            final_lr_frac=0.1,
            weight_decay=self.weight_decay,
            betas=(0.9, 0.98),
            eps=1e-8,
            grad_clip=0.0,
            seed=self.seed,
            eval_every=1000,
            eval_sequences=1024,
            save_every=1000,
        )

    def setting_config(self) -> SettingConfig:
        return SettingConfig(
            p=self.p,
            n_base_tasks=self.n_base_tasks,
            n_random_tasks=self.n_random_tasks,
            alpha=self.alpha,
            task_seed=self.seed,
            split_seed=self.data_seed,
            convention="authors",
        )


def parse_authors_filename(name: str | os.PathLike) -> AuthorsRun:
    """Read the configuration from an authors' checkpoint file name (a path's folder is ignored).

    >>> run = parse_authors_filename(_EXAMPLE)
    >>> (run.p, run.n_base_tasks, run.alpha, run.d_model, run.n_layer, run.seed, run.data_seed)
    (29, 96, 0.8, 512, 4, 1, 0)

    A name that does not follow the pattern raises ValueError saying where it stops matching.
    """
    base_name = Path(name).name
    groups: dict[str, str | None] = {}
    pos = 0
    for expected, pattern in _FIELDS:
        m = re.compile(pattern).match(base_name, pos)
        if m is None:
            rest = base_name[pos : pos + 24] + ("..." if len(base_name) > pos + 24 else "")
            raise InputError(
                f"{base_name}: not an authors' checkpoint file name: expected {expected} at {rest!r} "
                f"(the name carries the configuration, e.g. {_EXAMPLE})"
            )
        groups.update(m.groupdict())
        pos = m.end()
    g = {k: "" if v is None else v for k, v in groups.items()}  # "" for the optional fields left out
    return AuthorsRun(
        file_name=base_name,
        dont_decay_embd=g["noembd"] == "True",
        parallelogram=g["parale"] == "True",
        n_tasks_pl=int(g["pltask"]),
        model_name=str(g["model"]),
        p=int(g["p"]),
        base=int(g["base"]),
        n_examples=int(g["row"]),
        n_tasks=int(g["ntask"]),
        n_var=int(g["nvar"]),
        split_data=g["dsplit"] == "True",
        data_pct=float(g["dfrac"]),
        act_name=str(g["act"]),
        d_model=int(g["n"]),
        n_head=int(g["h"]),
        n_layer=int(g["d"]),
        block_size=int(g["lctx"]),
        seed=int(g["I"]),
        data_seed=int(g["dI"]),
        optim=str(g["optim"]),
        batch_size=int(g["bs"]),
        step=int(g["t"]) if g["t"] else None,  # the step field is optional in the name
        steps=int(g["T"]),
        warmup_steps=int(g["Tw"]),
        lr=float(g["lr"]),
        weight_decay=float(g["wd"]),
    )


def authors_key_map(n_layer: int) -> dict[str, str]:
    """Their state-dict names -> ours (the tied ``lm_head.weight`` and RoPE buffers excluded)."""
    m = {"transformer.wte.weight": "wte.weight"}
    for i in range(n_layer):
        t, o = f"transformer.h.{i}.", f"blocks.{i}."
        m.update(
            {
                t + "ln_1.weight": o + "ln_1.weight",
                t + "ln_1.bias": o + "ln_1.bias",
                t + "attn.to_qkv.weight": o + "attn.qkv.weight",
                t + "attn.o.weight": o + "attn.o.weight",
                t + "ln_2.weight": o + "ln_2.weight",
                t + "ln_2.bias": o + "ln_2.bias",
                t + "mlp.c_fc.weight": o + "mlp.fc.weight",
                t + "mlp.c_proj.weight": o + "mlp.proj.weight",
            }
        )
    m.update({"transformer.ln_f.weight": "ln_f.weight", "transformer.ln_f.bias": "ln_f.bias"})
    return m


def _expected_shapes(cfg: ModelConfig) -> dict[str, tuple[int, ...]]:
    """Shapes of their tensors for a config (by their names)."""
    C, V, F = cfg.d_model, cfg.vocab_size, cfg.mlp_ratio * cfg.d_model
    shapes: dict[str, tuple[int, ...]] = {"transformer.wte.weight": (V, C), "lm_head.weight": (V, C)}
    for i in range(cfg.n_layer):
        t = f"transformer.h.{i}."
        shapes.update(
            {
                t + "ln_1.weight": (C,),
                t + "ln_1.bias": (C,),
                t + "attn.to_qkv.weight": (3 * C, C),
                t + "attn.o.weight": (C, C),
                t + "ln_2.weight": (C,),
                t + "ln_2.bias": (C,),
                t + "mlp.c_fc.weight": (F, C),
                t + "mlp.c_proj.weight": (C, F),
            }
        )
    shapes.update({"transformer.ln_f.weight": (C,), "transformer.ln_f.bias": (C,)})
    return shapes


def _shape_hint(run: AuthorsRun | None) -> str:
    if run is None:
        return ""
    return f" from the file name (n{run.d_model}, h{run.n_head}, d{run.n_layer}, base{run.base})"


def convert_authors_state_dict(
    state: dict[str, torch.Tensor], cfg: ModelConfig, run: AuthorsRun | None = None, source: str = "state dict"
) -> dict[str, torch.Tensor]:
    """Map an authors' state dict onto this project's names, checking every shape.

    Raises :class:`CheckpointError` (naming ``source``) on missing, unexpected or
    misshapen tensors, an untied output layer, or RoPE frequencies other than the model's.
    """
    # Wrappers (DDP, torch.compile) prefix every key; the authors save the bare model, but be lenient.
    for prefix in ("module.", "_orig_mod."):
        if state and all(k.startswith(prefix) for k in state):
            state = {k[len(prefix) :]: v for k, v in state.items()}
    hint = _shape_hint(run)
    rope = {k: v for k, v in state.items() if re.fullmatch(r"transformer\.h\.[0-9]+\.attn\.rotary_emb\..+", k)}
    weights = {k: v for k, v in state.items() if k not in rope}
    shapes = _expected_shapes(cfg)
    missing = [k for k in shapes if k not in weights and k != "lm_head.weight"]
    unexpected = [k for k in weights if k not in shapes]
    if missing or unexpected:
        parts = []
        if missing:
            parts.append(f"missing {_few(missing)}")
        if unexpected:
            parts.append(f"unexpected {_few(unexpected)}")
        raise CheckpointError(f"{source}: weights do not fit the configuration{hint}: " + "; ".join(parts))
    for k, want in shapes.items():
        if k in weights and tuple(weights[k].shape) != want:
            extra = ""
            if run is not None and k in ("transformer.wte.weight", "lm_head.weight"):
                extra = (
                    f" (base{run.base}: {run.base + 1} digit, {N_SPECIAL_TOKENS} special and "
                    f"{N_POSITION_HINT_TOKENS} position-hint tokens)"
                )
            raise CheckpointError(
                f"{source}: {k} has shape {tuple(weights[k].shape)} but the configuration{hint} expects {want}{extra}"
            )
        if k in weights and not weights[k].is_floating_point():
            raise CheckpointError(f"{source}: {k} is not a floating-point tensor ({weights[k].dtype})")
    if "lm_head.weight" in weights and not torch.equal(weights["lm_head.weight"], weights["transformer.wte.weight"]):
        raise CheckpointError(
            f"{source}: lm_head.weight differs from transformer.wte.weight (an untied output layer; "
            "this model ties them)"
        )
    hd = cfg.head_dim
    want_freqs = 1.0 / (cfg.rope_base ** (torch.arange(0, hd, 2, dtype=torch.float32) / hd))
    for k, v in rope.items():
        if not k.endswith(".freqs"):
            continue  # caches of the RoPE package (not weights)
        if tuple(v.shape) != (hd // 2,):
            raise CheckpointError(
                f"{source}: {k} has shape {tuple(v.shape)} but heads of size {hd}{hint} rotate {hd // 2} frequencies"
            )
        if not torch.allclose(v.float(), want_freqs, rtol=1e-5, atol=0.0):
            raise CheckpointError(
                f"{source}: {k} are not the RoPE frequencies of base {cfg.rope_base:g} over {hd} channels"
            )
    names = authors_key_map(cfg.n_layer)
    out = {names[k]: v.detach().to(torch.float32).clone() for k, v in weights.items() if k in names}
    out["lm_head.weight"] = out["wte.weight"]
    return out


def _few(keys: list[str], n: int = 4) -> str:
    shown = ", ".join(keys[:n])
    return shown + (f" and {len(keys) - n} more" if len(keys) > n else "")


def load_authors_state_dict(path: str | os.PathLike) -> tuple[dict[str, torch.Tensor], str]:
    """Read a bare state dict of tensors safely (``weights_only``); returns it and the file's SHA-256."""
    path = Path(path)
    blob, sha = read_torch_file(path, "torch file")
    if isinstance(blob, dict) and blob.get("kind") == "icl-modgrok-checkpoint":
        raise CheckpointError(f"{path}: already an icl-modgrok checkpoint (nothing to import)")
    if (
        not isinstance(blob, dict)
        or not blob
        or not all(isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in blob.items())
    ):
        what = type(blob).__name__ if not isinstance(blob, dict) else "a dict that is not all name -> tensor"
        raise CheckpointError(f"{path}: expected a bare state dict of tensors (the authors' format), got {what}")
    return blob, sha


def import_authors_checkpoint(src: str | os.PathLike, dst: str | os.PathLike, command: str = "") -> Path:
    """Convert one of the authors' ``.pth`` files into a checkpoint of this project at ``dst``.

    The configuration comes from ``src``'s file name (so it must be the authors' name),
    the task setting from replaying its seeds, the weights from the file. Errors are
    ``ValueError`` (a name that does not parse or an unsupported configuration) or
    :class:`CheckpointError` (an unreadable file, weights that do not fit).
    """
    from model.gpt import GPT

    src, dst = Path(src), Path(dst)
    run = parse_authors_filename(src)
    run.check_supported()
    if dst.resolve() == src.resolve():
        raise InputError(f"{dst}: --out would overwrite the source file")
    state, sha = load_authors_state_dict(src)
    mcfg = run.model_config()
    weights = convert_authors_state_dict(state, mcfg, run, source=str(src))
    net = GPT(mcfg)
    net.load_state_dict(weights, strict=True)  # every name and shape checked above
    setting_config = run.setting_config()
    setting = setting_config.build()
    meta = {
        "command": command,
        "source": SOURCE_NOTE,
        "source_file": src.name,
        "source_sha256": sha,
        "authors_run": asdict(run),
        "note": "vocabulary of the authors' tokenizer; predictions use the first p logits",
    }
    return save_checkpoint(
        dst,
        mcfg,
        run.train_config(),
        setting,
        net.state_dict(),
        step=run.checkpoint_step,
        history=[],
        meta=meta,
        setting_config=setting_config,
    )
