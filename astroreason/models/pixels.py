"""The Qwen3-VL processor's pixel limits, set so that no view is rescaled behind our back.

Qwen3-VL's image processor resizes every image to a multiple of 32 pixels (patch 16, merge 2) whose
area lies in ``[shortest_edge, longest_edge]`` (its names for min and max pixels). The released
checkpoints ship ``shortest_edge = 256 * 256``: a 128 px overview would be upscaled to 256 px and
cost four times the tokens, and the matched-pixel control would no longer be matched. Every place
that feeds images to a model applies the same :class:`PixelLimits`: the training processor
(:func:`apply_to_processor`, saved with each checkpoint), the transformers policy, vLLM's server
(:meth:`PixelLimits.vllm_kwargs` for ``--mm-processor-kwargs``) and TRL's colocated vLLM, which reads
the processor files of the folder it loads (:func:`folder_with_limits`).

With the defaults (32 x 32 to 2048 x 2048 pixels) a view whose sides are multiples of 32 keeps its size
and costs ``(h / 32) * (w / 32)`` tokens (the tiny CPU model has patch 8: 16 pixels per token side).
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from astroreason.errors import ConfigError

MIN_PIXELS = 32 * 32
"""Default smallest image area: one Qwen3-VL token, so no view of ours is upscaled."""
MAX_PIXELS = 2048 * 2048
"""Default largest image area: views up to 2048 x 2048 are never downscaled."""

FACTOR = 32
"""Pixels per image token side in Qwen3-VL: patch 16 times spatial merge 2."""


@dataclass(frozen=True)
class PixelLimits:
    """The processor's area limits in pixels (``size = {shortest_edge, longest_edge}``)."""

    min_pixels: int = MIN_PIXELS
    """Smallest image area kept (default: one token, so no view of ours is upscaled)."""
    max_pixels: int = MAX_PIXELS
    """Largest image area kept before downscaling."""

    def __post_init__(self) -> None:
        if not 0 < self.min_pixels <= self.max_pixels:
            raise ConfigError(
                f"image pixel limits: need 0 < min_pixels <= max_pixels, got {self.min_pixels} "
                f"and {self.max_pixels}"
            )

    @property
    def size(self) -> dict[str, int]:
        """The processor's ``size`` dict."""
        return {"shortest_edge": self.min_pixels, "longest_edge": self.max_pixels}

    def vllm_kwargs(self) -> dict[str, Any]:
        """The ``--mm-processor-kwargs`` of vLLM (and its ``LLM(mm_processor_kwargs=...)``) for these."""
        return {"size": self.size}


def smart_resize(h: int, w: int, limits: PixelLimits, factor: int = FACTOR) -> tuple[int, int]:
    """The size Qwen3-VL's processor gives an ``h x w`` image (``transformers``' ``smart_resize``)."""
    hb, wb = max(factor, round(h / factor) * factor), max(factor, round(w / factor) * factor)
    if hb * wb > limits.max_pixels:
        beta = math.sqrt(h * w / limits.max_pixels)
        hb = max(factor, math.floor(h / beta / factor) * factor)
        wb = max(factor, math.floor(w / beta / factor) * factor)
    elif hb * wb < limits.min_pixels:
        beta = math.sqrt(limits.min_pixels / (h * w))
        hb, wb = math.ceil(h * beta / factor) * factor, math.ceil(w * beta / factor) * factor
    return hb, wb


def image_tokens(h: int, w: int, limits: PixelLimits, factor: int = FACTOR) -> int:
    """Tokens an ``h x w`` image costs in the language model under ``limits``."""
    rh, rw = smart_resize(h, w, limits, factor)
    return (rh // factor) * (rw // factor)


def apply_to_processor(processor: Any, limits: PixelLimits) -> Any:
    """Set ``limits`` on a loaded processor (and its image processor); returns the processor.

    ``save_pretrained`` then writes them into ``preprocessor_config.json``, so a checkpoint carries
    them to every later reader (transformers, vLLM, TRL's colocated vLLM).
    """
    ip = getattr(processor, "image_processor", processor)
    ip.size = dict(limits.size)
    for name, value in (("min_pixels", limits.min_pixels), ("max_pixels", limits.max_pixels)):
        if hasattr(ip, name):
            setattr(ip, name, value)
    return processor


PROCESSOR_FILES = ("processor_config.json", "preprocessor_config.json")
"""Where a model folder keeps its image processor settings (transformers 5 nests them under
``image_processor`` in the first; older folders use the second)."""


def _image_section(doc: dict[str, Any]) -> dict[str, Any]:
    return doc["image_processor"] if isinstance(doc.get("image_processor"), dict) else doc


def folder_limits(folder: str | os.PathLike) -> PixelLimits | None:
    """The limits in a model folder's processor files; None when it has none."""
    for name in PROCESSOR_FILES:
        try:
            size = _image_section(json.loads((Path(folder) / name).read_text())).get("size") or {}
            return PixelLimits(int(size["shortest_edge"]), int(size["longest_edge"]))
        except (OSError, ValueError, KeyError, TypeError, AttributeError):
            continue
    return None


def local_folder(model: str | os.PathLike) -> str:
    """``model`` when it is a folder, else the local Hugging Face cache folder of that hub id.

    Raises:
        ConfigError: Neither (nothing is downloaded).
    """
    if Path(model).is_dir():
        return str(model)
    from huggingface_hub import try_to_load_from_cache

    try:  # a lookup in the local cache only: no network call is made
        hit = try_to_load_from_cache(str(model), "config.json")
    except ValueError:  # not a valid repo id
        hit = None
    if not isinstance(hit, str):
        raise ConfigError(
            f"model: {str(model)!r} is neither a local folder nor in the Hugging Face cache "
            "(download it once, e.g. `hf download ID`; runs here fetch nothing)"
        )
    return str(Path(hit).parent)


def folder_with_limits(
    model_dir: str | os.PathLike, limits: PixelLimits, out: str | os.PathLike
) -> str:
    """A model folder that vLLM loads with ``limits``: ``model_dir`` itself when it already has them.

    Otherwise ``out`` is made with a symbolic link to every file of ``model_dir`` (no weights
    copied) and its own processor files carrying ``limits``.

    Raises:
        ConfigError: ``model_dir`` is not a local folder with processor files.
    """
    src = Path(model_dir)
    present = [n for n in PROCESSOR_FILES if (src / n).is_file()]
    if not present:
        raise ConfigError(
            f"model: {model_dir} is not a local model folder with a processor_config.json or "
            "preprocessor_config.json (download it first, or start from a checkpoint saved here)"
        )
    if folder_limits(src) == limits:
        return str(src)
    dst = Path(out)
    dst.mkdir(parents=True, exist_ok=True)
    for f in src.iterdir():
        link = dst / f.name
        if link.is_symlink() or link.exists():
            link.unlink()
        if f.name in present:
            doc = json.loads(f.read_text())
            section = _image_section(doc)
            section["size"] = dict(limits.size)
            section.pop("min_pixels", None)
            section.pop("max_pixels", None)
            link.write_text(json.dumps(doc, indent=2))
        else:
            link.symlink_to(f.resolve())
    return str(dst)
