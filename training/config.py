"""One training config for both stages, and the two functions that turn it into TRL's.

``TrainConfig`` documents every field once; ``build_sft_config`` and ``build_grpo_config`` translate
it into ``trl.SFTConfig`` / ``trl.GRPOConfig`` instead of exposing TRL's ~80 fields. Named configs
live in ``training/configs/<name>.py`` as ``CONFIG = TrainConfig(...)``; ``load_config`` reads one
by name or path and applies ``key=value`` overrides.

Run layout (``output_dir`` is the run's root)::

    OUTPUT_DIR/
      experiment_log.md     a table of stage runs, then one section each (from experiment_log.json)
      experiment_log.json   the entries: written at a run's start, at checkpoints and at its end
      sft/                  SFT checkpoint (model + processor), alarms.log, tensorboard logs
      grpo/                 GRPO checkpoint; starts from ../sft when that holds a model
      grpo/val/step-N/      validation rollouts (traces) of the current model
      STAGE/val_curve.jsonl one line per validation: step, accuracy, tool calls, on-target, ...
      STAGE/log_history.json  the trainer's logs; STAGE/curves.png their learning curves
      STAGE/train.log       third-party warnings (once each) and per-step lines
      STAGE/astroreason.json  the settings the model trained with (eval, rollout, serve read them)
      STAGE/README.md       the stage's card (also in each checkpoint-N)
"""

from __future__ import annotations

import dataclasses
import importlib
import importlib.util
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from astroreason.conditions import TRAINABLE_CONDITIONS
from astroreason.errors import ConfigError, check_counts
from astroreason.models.pixels import MAX_PIXELS, MIN_PIXELS
from astroreason.reward import RewardConfig

# moved to training/bootstrap.py; re-exported here for the CLI's old import path only

ENVS = ("galaxy", "spectrum")
"""Environments a config may train in (``TrainConfig.env``; the keys of ``astroreason.envs.ENV_IDS``)."""

CONDITIONS = TRAINABLE_CONDITIONS
"""Training conditions (the ``trainable`` ones of :mod:`astroreason.conditions`): the model may call
zoom/crop (``tools``, or a placebo, ``reinput``/``random-view``, trained the same way: the oracle's
SFT calls and GRPO rollouts run in that condition's env), or must answer from the overview alone
(the 64 px one, or the pixel-matched larger one)."""


@dataclass(frozen=True)
class TrainConfig:
    """Everything a training run needs; defaults run on two CPU cores with the tiny model."""

    model: str = "runs/tiny_cpu/model"
    """Base model: a local folder or a hub id (tests and CPU runs use the offline tiny model)."""

    env: str = "galaxy"
    """The environment trained and validated in: ``galaxy`` (``AstroReason/Galaxy-v0``: zoom, crop)
    or ``spectrum`` (``AstroReason/Spectrum-v0``: spectrum_window)."""

    data: str = "runs/tiny_cpu/galaxy.h5"
    """Data file or folder of that env (any format ``astroreason.data.open_source`` reads)."""

    output_dir: str = "runs/tiny_cpu"
    """Run root: ``sft/`` and ``grpo/`` stage folders and ``experiment_log.md`` go here."""

    bootstrap_tiny: bool = False
    """Build the tiny model at ``model`` and synthetic data at ``data`` when they are missing."""

    synth_n: int = 120
    """Galaxies (or spectra) to synthesise when ``bootstrap_tiny`` writes the data."""

    condition: str = "tools"
    """One of ``CONDITIONS``: ``tools`` (zoom and crop offered), a placebo of it (``reinput``,
    ``random-view``: the same tools, placebo views), ``no-tools`` or ``no-tools-matched``."""

    view_size: int = 64
    """Galaxies: side in pixels of every view the model sees (the environment's ``view_size``)."""

    obs: str = "pixels"
    """Galaxies: how views reach the model, ``pixels`` (images) or ``tokens`` (an image codec's ids
    as text and no image; tools return the tokens of the requested view): the environment's ``obs``."""

    codec: str = "tiny-vq"
    """The image codec of ``obs="tokens"``: ``tiny-vq`` (shipped), a codec folder, or
    ``aion:FOLDER`` (see :func:`astroreason.codecs.open_codec`)."""

    view_width: int = 128
    """Spectra: width in pixels of the overview and window plots (the pretrained tiny base reads
    128 x 64 plots)."""

    view_height: int = 64
    """Spectra: height in pixels of the plots."""

    spectrum_task: str = "class"
    """Spectra: ``class`` (STAR, GALAXY, QSO; any SDSS file) or ``subclass`` (the four synthetic
    families, where the [N II]/H-alpha ratio in a window decides star-forming from AGN)."""

    spectrum_table: bool = False
    """Spectra: each window's caption also carries a binned numeric table of wavelength and flux."""

    max_turns: int = 4
    """Replies per episode, the answer included (the environment's ``max_turns``)."""

    max_tool_calls: int = 3
    """Tool calls per episode before further calls are invalid (the environment's cap)."""

    split_seed: int = 0
    """Seed of the persisted train/val/test split; training reads ``train``, validation ``val``."""

    image_min_pixels: int = MIN_PIXELS
    """Smallest image area the processor keeps (Qwen3-VL ships 256 x 256: smaller views would be
    upscaled); applied to the training processor, saved with checkpoints, given to vLLM."""

    image_max_pixels: int = MAX_PIXELS
    """Largest image area the processor keeps before downscaling."""

    allow_leaky: bool = False
    """Train even when the leakage audit of ``data`` has a high-severity finding (it then goes into
    the experiment log); by default such a run refuses to start (``--allow-leaky`` sets this)."""

    max_steps: int = 2
    """GRPO optimizer steps."""

    learning_rate: float = 1e-5
    """GRPO learning rate."""

    per_device_batch_size: int = 4
    """Completions per device per micro-batch (GRPO) / conversations per micro-batch (SFT)."""

    gradient_accumulation_steps: int = 1
    """Micro-batches per optimizer step."""

    num_generations: int = 4
    """GRPO group size: completions sampled per prompt."""

    max_completion_length: int = 256
    """Tokens of the whole multi-turn completion, tool results included (TRL counts both)."""

    max_tool_calling_iterations: int | None = None
    """TRL's cap on tool rounds; None means ``max_turns - 1`` (the last reply must answer)."""

    temperature: float = 1.0
    """Sampling temperature of GRPO rollouts."""

    beta: float = 0.0
    """KL coefficient against the reference model (0: no reference model is kept)."""

    use_vllm: bool = False
    """Generate GRPO rollouts with vLLM (``training/vllm_colocate.py``: its fixes and the TRL/vLLM
    versions they were measured with); on the CPU in ``colocate`` mode only."""

    vllm_mode: str = "colocate"
    """``colocate`` (vLLM inside the trainer) or ``server`` (``trl vllm-serve`` on other GPUs)."""

    vllm_server_base_url: str | None = None
    """URL of the vLLM server in ``server`` mode, e.g. ``http://10.0.0.2:8000``."""

    lora: bool = False
    """Train a LoRA adapter instead of all weights."""

    lora_r: int = 16
    """LoRA rank."""

    lora_alpha: int = 32
    """LoRA scaling numerator."""

    bf16: bool = False
    """bfloat16 mixed precision (GPU); forced off on CPU."""

    use_cpu: bool = True
    """Train on the CPU even when an accelerator exists."""

    gradient_checkpointing: bool = False
    """Recompute activations in the backward pass (saves memory on large models)."""

    grpo_freeze_vision: bool = False
    """GRPO trains the language side only: the vision tower and its mergers keep their SFT weights
    (what the model reads stays put while RL changes where it looks and what it answers)."""

    seed: int = 0
    """Seed of the trainers, samplers and SFT episode order."""

    sft_episodes: int = 16
    """Oracle episodes (train split) turned into SFT conversations (0: every train row once)."""

    sft_tool: str = "crop"
    """The tool the SFT teacher (the oracle) calls: ``crop`` (the padded true box) or ``zoom``
    (its centre at ``sft_zoom_factor``); a zoom needs two numbers where a crop needs four."""

    sft_grid: int = 1
    """Snap the teacher's coordinates (0-1000) to this grid (1: exact); coarse for tiny models."""

    sft_zoom_factor: float = 3
    """Magnification of the teacher's zoom calls."""

    sft_window_grid: float | None = None
    """Spectra: snap the teacher's ``spectrum_window`` bounds outward to this many Angstrom (None:
    0.1 A); coarse for tiny models."""

    sft_look_share: float = 1.0
    """Share of SFT conversations in which the teacher looks before answering (the rest answer at
    once, seeded per episode); below 1 SFT is a warm start that leaves GRPO the choice to learn."""

    sft_epochs: float = 1.0
    """Passes over the SFT conversations."""

    sft_max_steps: int = -1
    """SFT optimizer steps; > 0 overrides ``sft_epochs``."""

    sft_learning_rate: float = 1e-4
    """SFT learning rate."""

    sft_max_length: int | None = None
    """Truncate SFT conversations to this many tokens (None: no truncation; images must fit)."""

    logging_steps: int = 1
    """Log every N optimizer steps."""

    save_steps: int = 500
    """Checkpoint every N optimizer steps (the final model is always saved)."""

    save_total_limit: int | None = 3
    """Checkpoints kept per stage (the oldest go first; None keeps all)."""

    resume: bool = False
    """Continue the stage from its last checkpoint: weights, optimizer, scheduler, RNG states and
    the position in the data order (``--resume``)."""

    reward_correct: float = RewardConfig.correct
    """Reward of a correct final answer (the env's ``RewardConfig.correct``)."""

    reward_call_cost: float = RewardConfig.call_cost
    """Charged per tool call."""

    reward_tool_bonus: float = RewardConfig.tool_bonus
    """Paid at the end only when the answer is correct and a tool call succeeded."""

    reward_format_penalty: float = RewardConfig.format_penalty
    """Charged per invalid reply."""

    reward_truncation: float = RewardConfig.truncation_reward
    """Reward of an episode that hits ``max_turns`` without an answer."""

    mask_truncated: bool = True
    """GRPO: give no reward to episodes cut off without an answer (over-turn, or the completion
    budget ran out), so they drop out of the group's advantages instead of scoring 0."""

    report_to: str = "tensorboard"
    """Where TRL logs go: ``tensorboard``, ``wandb`` or ``none``."""

    val_every: int = 0
    """Validation rollouts on the val split every N steps and at step 0 (0: only at the end)."""

    sft_val_every: int | None = None
    """SFT's validation interval, when it should differ from GRPO's (None: ``val_every``)."""

    val_episodes: int = 8
    """Validation episodes per check (greedy, the current model through transformers)."""

    val_max_new_tokens: int = 128
    """Tokens per reply in validation rollouts."""

    acc_ceiling: float = 0.90
    """Validation accuracy above this raises an alarm (leakage or a too easy set)."""

    loss_collapse_factor: float = 4.0
    """Alarm when the SFT loss falls by this factor ... (GRPO's loss is a surrogate: not checked)"""

    loss_collapse_window: int = 100
    """... within this many steps ..."""

    loss_collapse_floor: float = 0.1
    """... to below this value (per-token loss; the answer of an honest 10-class task stays above)."""

    invalid_rise: float = 0.25
    """Alarm when the invalid-action rate of recent logs exceeds the first logs' by this much."""

    max_wall_s: float | None = None
    """Budget guard: stop cleanly (with a checkpoint) after this many seconds of training."""

    max_generated_tokens: int | None = None
    """Budget guard: stop cleanly after this many completion tokens (GRPO, tool results included)."""

    price_per_device_hour: float | None = None
    """What one device (GPU, or the CPU machine) costs per hour, for ``max_cost``."""

    max_cost: float | None = None
    """Budget guard: stop cleanly once wall hours x devices x ``price_per_device_hour`` passes this."""

    @property
    def reward(self) -> RewardConfig:
        """The env's reward settings this config implies (training and validation use them)."""
        return RewardConfig(
            correct=self.reward_correct,
            call_cost=self.reward_call_cost,
            format_penalty=self.reward_format_penalty,
            tool_bonus=self.reward_tool_bonus,
            truncation_reward=self.reward_truncation,
        )

    @property
    def sft_dir(self) -> Path:
        """Folder of the SFT stage."""
        return Path(self.output_dir) / "sft"

    @property
    def grpo_dir(self) -> Path:
        """Folder of the GRPO stage."""
        return Path(self.output_dir) / "grpo"

    @property
    def tool_iterations(self) -> int:
        """TRL's ``max_tool_calling_iterations``: explicit, or ``max_turns - 1``."""
        if self.max_tool_calling_iterations is not None:
            return self.max_tool_calling_iterations
        return max(0, self.max_turns - 1)


def check_config(cfg: TrainConfig) -> TrainConfig:
    """Reject values no stage can run with; returns ``cfg``."""
    if cfg.env not in ENVS:
        raise ConfigError(f"env: {cfg.env!r}; choose {' or '.join(ENVS)}")
    if cfg.obs not in ("pixels", "tokens"):
        raise ConfigError(f"obs: {cfg.obs!r}; choose pixels or tokens")
    if cfg.obs != "pixels" and cfg.env != "galaxy":
        raise ConfigError(f"obs: {cfg.obs!r} is for the galaxy env only (env is {cfg.env!r})")
    if cfg.spectrum_task not in ("class", "subclass"):
        raise ConfigError(f"spectrum_task: {cfg.spectrum_task!r}; choose class or subclass")
    if cfg.condition not in CONDITIONS:
        raise ConfigError(f"condition: {cfg.condition!r}; choose one of {', '.join(CONDITIONS)}")
    from astroreason.policies.scripted import OraclePolicy

    if not 0.0 <= cfg.sft_look_share <= 1.0:
        raise ConfigError(f"sft_look_share: must be in [0, 1], got {cfg.sft_look_share}")
    try:  # the teacher's own rules, reported under the config's names (sft_tool, sft_grid)
        OraclePolicy(
            tool=cfg.sft_tool,
            grid=cfg.sft_grid,
            zoom_factor=cfg.sft_zoom_factor,
            window_grid=cfg.sft_window_grid,
        )
    except ValueError as err:
        raise ConfigError(f"sft_{err}") from None
    if cfg.vllm_mode not in ("colocate", "server"):
        raise ConfigError(f"vllm_mode: {cfg.vllm_mode!r}; choose colocate or server")
    counts = ("per_device_batch_size", "gradient_accumulation_steps", "logging_steps",
              "save_steps", "val_max_new_tokens", "max_completion_length", "synth_n",
              "view_size", "view_width", "view_height")  # fmt: skip
    check_counts(**{name: getattr(cfg, name) for name in counts})
    if cfg.max_tool_calls < 0:
        raise ConfigError(f"max_tool_calls: must be at least 0, got {cfg.max_tool_calls}")
    for name in ("learning_rate", "sft_learning_rate", "temperature"):
        value = getattr(cfg, name)
        if not (math.isfinite(value) and value >= 0 and (value > 0 or name == "temperature")):
            raise ConfigError(f"{name}: must be a finite positive number, got {value}")
    if cfg.num_generations < 2:
        raise ConfigError(f"num_generations: GRPO needs >= 2, got {cfg.num_generations}")
    total = cfg.per_device_batch_size * cfg.gradient_accumulation_steps
    if total % cfg.num_generations:
        raise ConfigError(
            f"per_device_batch_size*gradient_accumulation_steps={total} must be a multiple of "
            f"num_generations={cfg.num_generations}"
        )
    if cfg.max_cost is not None and cfg.price_per_device_hour is None:
        raise ConfigError("max_cost: needs price_per_device_hour (what a device costs per hour)")
    if cfg.max_turns < 1:
        raise ConfigError(f"max_turns: must be >= 1, got {cfg.max_turns}")
    if cfg.use_vllm and cfg.use_cpu and cfg.vllm_mode == "server":
        raise ConfigError(
            "use_vllm: server mode syncs weights to `trl vllm-serve` over NCCL, GPUs only; on the "
            "CPU use vllm_mode=colocate (or use_vllm=false)"
        )
    return cfg


def _common(cfg: TrainConfig, out: Path) -> dict[str, Any]:
    cpu = cfg.use_cpu or not _has_accelerator()
    return dict(
        output_dir=str(out),
        seed=cfg.seed,
        per_device_train_batch_size=cfg.per_device_batch_size,
        gradient_accumulation_steps=cfg.gradient_accumulation_steps,
        logging_steps=cfg.logging_steps,
        save_steps=cfg.save_steps,
        save_only_model=False,  # optimizer, scheduler and RNG states too: --resume needs them
        save_total_limit=cfg.save_total_limit,
        report_to=[] if cfg.report_to == "none" else [cfg.report_to],
        use_cpu=cpu,
        bf16=cfg.bf16 and not cpu,
        gradient_checkpointing=cfg.gradient_checkpointing,
        dataloader_num_workers=0,
        remove_unused_columns=False,
    )


def _has_accelerator() -> bool:
    import torch

    return torch.cuda.is_available()


def build_sft_config(cfg: TrainConfig):
    """``trl.SFTConfig`` for the SFT stage (assistant-only loss, no packing with images)."""
    from trl import SFTConfig

    check_config(cfg)
    kwargs = _common(cfg, cfg.sft_dir)
    return SFTConfig(
        **kwargs,
        learning_rate=cfg.sft_learning_rate,
        num_train_epochs=cfg.sft_epochs,
        max_steps=cfg.sft_max_steps,
        assistant_only_loss=True,
        packing=False,
        padding_free=False,
        max_length=cfg.sft_max_length,
        dataset_kwargs={"skip_prepare_dataset": True},
    )


def pixel_limits(cfg: TrainConfig):
    """The processor's :class:`~astroreason.models.pixels.PixelLimits` of a config."""
    from astroreason.models.pixels import PixelLimits

    return PixelLimits(cfg.image_min_pixels, cfg.image_max_pixels)


def build_grpo_config(cfg: TrainConfig, **trl_overrides: Any):
    """``trl.GRPOConfig`` for the GRPO stage (multi-turn tools through ``environment_factory``).

    Args:
        cfg: Our config.
        **trl_overrides: ``GRPOConfig`` fields set directly (e.g. ``generation_kwargs``), for what
            ``TrainConfig`` does not cover; they win over the translated values.
    """
    from trl import GRPOConfig

    check_config(cfg)
    kwargs = _common(cfg, cfg.grpo_dir)
    vllm: dict[str, Any] = {"use_vllm": cfg.use_vllm}
    if cfg.use_vllm:
        vllm["vllm_mode"] = cfg.vllm_mode
        if cfg.vllm_mode == "server" and cfg.vllm_server_base_url:
            vllm["vllm_server_base_url"] = cfg.vllm_server_base_url
    return GRPOConfig(
        **kwargs,
        learning_rate=cfg.learning_rate,
        max_steps=cfg.max_steps,
        num_generations=cfg.num_generations,
        max_completion_length=cfg.max_completion_length,
        max_tool_calling_iterations=cfg.tool_iterations,
        temperature=cfg.temperature,
        beta=cfg.beta,
        log_completions=False,
        **{**vllm, **trl_overrides},
    )


# ----------------------------------------------------------------------------------------------
# loading named configs and overrides
# ----------------------------------------------------------------------------------------------
def load_config(name_or_path: str, overrides: list[str] | tuple[str, ...] = ()) -> TrainConfig:
    """Load ``CONFIG`` from ``training/configs/NAME.py`` (``tiny-cpu`` = ``tiny_cpu``) or a .py file.

    Args:
        name_or_path: A config name or the path of a Python file defining ``CONFIG``.
        overrides: ``key=value`` strings; values are parsed by the field's type (``none`` is None).

    Returns:
        The checked config.
    """
    path = Path(name_or_path)
    if path.suffix == ".py" and path.is_file():
        spec = importlib.util.spec_from_file_location(f"_astroreason_cfg_{path.stem}", path)
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        try:
            spec.loader.exec_module(module)
        except SyntaxError as err:
            raise ConfigError(f"config: {path}, line {err.lineno}: {err.msg}") from None
        except Exception as err:  # the file is the user's code: any error is a config error
            raise ConfigError(f"config: {path}: {type(err).__name__}: {err}") from None
    else:
        mod_name = name_or_path.replace("-", "_")
        try:
            module = importlib.import_module(f"astroreason.training.configs.{mod_name}")
        except ModuleNotFoundError:
            known = ", ".join(list_configs())
            raise ConfigError(
                f"config: no file or named config {name_or_path!r}; known: {known}"
            ) from None
    cfg = getattr(module, "CONFIG", None)
    if not isinstance(cfg, TrainConfig):
        raise ConfigError(f"config: {name_or_path} defines no CONFIG = TrainConfig(...)")
    return check_config(apply_overrides(cfg, overrides))


def list_configs() -> list[str]:
    """Names of the configs shipped in ``training/configs``, as the CLI spells them (``tiny-cpu``)."""
    folder = Path(__file__).parent / "configs"
    return sorted(
        p.stem.replace("_", "-") for p in folder.glob("*.py") if not p.stem.startswith("_")
    )


def apply_overrides(cfg: TrainConfig, overrides: list[str] | tuple[str, ...]) -> TrainConfig:
    """Return ``cfg`` with ``key=value`` overrides applied (typed by the field's annotation)."""
    fields = {f.name: f for f in dataclasses.fields(cfg)}
    changes: dict[str, Any] = {}
    for item in overrides:
        key, sep, raw = item.partition("=")
        key = key.strip()
        if not sep:
            raise ConfigError(f"--set {item!r}: expected key=value")
        if key not in fields:
            raise ConfigError(f"--set {key}: unknown field; known: {', '.join(sorted(fields))}")
        changes[key] = _parse_value(key, str(fields[key].type), raw.strip())
    return dataclasses.replace(cfg, **changes)


def _parse_value(key: str, type_str: str, raw: str) -> Any:
    optional = "None" in type_str
    if optional and raw.lower() in ("none", "null", ""):
        return None
    base = type_str.replace("| None", "").strip()
    try:
        if base == "bool":
            if raw.lower() in ("1", "true", "yes", "on"):
                return True
            if raw.lower() in ("0", "false", "no", "off"):
                return False
            raise ValueError(raw)
        if base == "int":
            return int(raw)
        if base == "float":
            return float(raw)
    except ValueError:
        raise ConfigError(f"--set {key}={raw}: not a valid {base}") from None
    return raw


def env_options(cfg: TrainConfig) -> dict[str, Any]:
    """The environment overrides (the env config's fields) a training config implies."""
    opts: dict[str, Any] = {
        "max_turns": cfg.max_turns,
        "max_tool_calls": cfg.max_tool_calls,
        "split_seed": cfg.split_seed,
        "reward": cfg.reward,
    }
    if cfg.env == "spectrum":
        opts.update(
            view_width=cfg.view_width,
            view_height=cfg.view_height,
            task=cfg.spectrum_task,
            table=cfg.spectrum_table,
        )
    else:
        opts["view_size"] = cfg.view_size
        if cfg.obs != "pixels":
            opts.update(obs=cfg.obs, codec=cfg.codec)
    return opts


def checkpoint_settings(cfg: TrainConfig, stage: str, **trained: Any):
    """The :class:`~astroreason.checkpoint_settings.CheckpointSettings` a stage's model carries.

    The env, condition and env options it trained in, and the sampling of its validation
    (greedy, ``val_max_new_tokens``); ``trained`` adds provenance (config, steps, command).
    """
    from astroreason.checkpoint_settings import ENV_OPTION_KEYS, CheckpointSettings

    opts = {k: v for k, v in env_options(cfg).items() if k in ENV_OPTION_KEYS}
    return CheckpointSettings(
        env=cfg.env,
        condition=cfg.condition,
        env_options=opts,
        temperature=0.0,
        max_tokens=cfg.val_max_new_tokens,
        min_pixels=cfg.image_min_pixels,
        max_pixels=cfg.image_max_pixels,
        trained={"stage": stage, **trained},
    )


def field_docs(cls: type = TrainConfig) -> dict[str, str]:
    """Each field's docstring (the string literal under it in the class body), whitespace joined.

    What ``config show`` prints beside each field.
    """
    import ast
    import inspect
    import textwrap

    tree = ast.parse(textwrap.dedent(inspect.getsource(cls)))
    body = tree.body[0].body  # type: ignore[attr-defined]
    docs: dict[str, str] = {}
    for stmt, nxt in zip(body, body[1:], strict=False):
        if (
            isinstance(stmt, ast.AnnAssign)
            and isinstance(stmt.target, ast.Name)
            and isinstance(nxt, ast.Expr)
            and isinstance(nxt.value, ast.Constant)
            and isinstance(nxt.value.value, str)
        ):
            docs[stmt.target.id] = " ".join(nxt.value.value.split())
    return docs


def config_summary(name: str) -> str:
    """The first line of a named config's module docstring."""
    module = importlib.import_module(f"astroreason.training.configs.{name.replace('-', '_')}")
    return (module.__doc__ or "").strip().splitlines()[0] if module.__doc__ else ""


STAGE_ALIASES = {"sft": {"max_steps": "sft_max_steps", "learning_rate": "sft_learning_rate"}}
"""``--set`` keys that mean the running stage's own field: in ``train sft``, ``max_steps`` is
``sft_max_steps`` and ``learning_rate`` is ``sft_learning_rate`` (GRPO's fields carry no prefix)."""


def stage_overrides(stage: str, overrides: list[str] | tuple[str, ...]) -> list[str]:
    """``overrides`` with the stage's aliases (:data:`STAGE_ALIASES`) mapped to its own fields."""
    aliases = STAGE_ALIASES.get(stage, {})
    out = []
    for item in overrides:
        key, sep, raw = item.partition("=")
        out.append(f"{aliases[key.strip()]}={raw}" if sep and key.strip() in aliases else item)
    return out
