"""Pretraining the tiny Qwen3-VL from scratch on CPU: what a released Qwen3-VL already knows.

A real user starts from a pretrained Qwen3-VL that reads images, grounds objects and speaks the chat
and tool-call format; RL then teaches it when and where to look. The offline tiny model starts from
random weights, so without this stage the demo measures a vision tower that cannot read what it
zooms to. ``run_pretrain`` gives the tiny model that shape, on a synthetic corpus of its own seeds
(no object is shared with any demo, val or test data):

* **naming**: the galaxy's class from one view, in every framing the environments produce: the
  overview, the pixel-matched overview, zooms x2-x4 around the galaxy (exact, jittered or on the
  50-unit grid) and padded crops;
* **grounding**: the galaxy's centre and box in 0-1000 coordinates of the overview;
* **conversations** in the environments' own format (their system prompts and tool schemas, through
  ``GalaxyEnv``): answer at once, or one ``zoom``/``crop`` call (aimed roughly at the galaxy, at
  varied factors) then the answer; the no-tools and matched prompts; blank tool views, after which
  the answer must come from the overview;
* **spectra**: plots of synthetic SDSS spectra (``make_spectrum``): the family from the whole
  spectrum, and from a window around H-alpha whether [N II]/H-alpha is high or low and the subclass.

Loss is on the assistant's tokens only (TRL's Qwen3-VL training template, as in SFT). The trainer is
``transformers.Trainer``; examples are drawn on the fly from the corpus files (each index its own
seeded random framing), so memory stays small. After training, :func:`probe` measures every skill
on the corpus's held-out galaxies and spectra, and the card (``README.md``) is written beside the
weights.
"""

from __future__ import annotations

import dataclasses
import json
import math
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from astroreason.data.classes import SPECTRUM_CLASSES, SPECTRUM_SUBCLASSES
from astroreason.models.tiny import TinyModelConfig

NAME_Q = "What kind of galaxy is this? Answer with one class name."
GROUND_Q = "Where is the galaxy? Give its centre and box in 0-1000 coordinates."
SPEC_FAMILY_Q = "What kind of object is this spectrum? Answer with one class name: " + ", ".join(
    SPECTRUM_CLASSES
)
SPEC_RATIO_Q = "In this window, is [N II] 6585 high or low against H-alpha?"
SPEC_SUB_Q = "Which subclass does this window show? Answer with one class name: " + ", ".join(
    SPECTRUM_SUBCLASSES
)

BASE_MODEL = TinyModelConfig(
    patch_size=8,
    vision_hidden_size=128,
    vision_depth=4,
    vision_heads=4,
    vision_intermediate_size=256,
)
"""The base's architecture: a patch-8 vision tower, 128 wide and 4 deep (16 tokens per 64 px view);
the probe in ``../shared/docs/stack.md`` measured this tower reading 0.73 from an on-target zoom."""

GALAXY_FRAMINGS = ("overview", "matched", "zoom2", "zoom3", "zoom3-grid", "zoom4", "crop")
"""Framings of the naming task (see :func:`framing_view`)."""

PROBE_FRAMINGS = ("overview", "matched", "zoom3-grid", "zoom3-exact", "zoom4-exact", "crop")
"""Framings the card reports (``zoom3-grid`` is the demo teacher's zoom)."""


@dataclass(frozen=True)
class PretrainConfig:
    """The pretraining recipe; defaults are the shipped ``checkpoints/tiny-base``."""

    out: str = "checkpoints/tiny-base"
    """Folder of the pretrained model, its processor and its card."""

    work: str = "runs/pretrain"
    """Corpus files, trainer logs and the random-init model."""

    n_galaxies: int = 6000
    """Synthetic galaxies of the corpus (Galaxy10 DECaLS format, 256 px)."""

    n_spectra: int = 1600
    """Synthetic spectra of the corpus (four families, balanced)."""

    galaxy_seed: int = 9001
    """Synthesis seed of the corpus galaxies (the demo uses 0, tests 0-3, the agent's test 7)."""

    spectra_seed: int = 9002
    """Synthesis seed of the corpus spectra."""

    held_out: float = 0.1
    """Share of the corpus kept out of training for the probe (the last rows)."""

    view_size: int = 64
    """Side of the galaxy views (the demo's ``view_size``)."""

    spectrum_view: tuple[int, int] = (128, 64)
    """Width and height of the spectrum plots."""

    examples_per_galaxy: int = 5
    """Examples drawn per corpus galaxy and epoch (a mix of the tasks, see ``task_mix``)."""

    examples_per_spectrum: int = 2
    """Examples drawn per corpus spectrum and epoch."""

    task_mix: tuple[tuple[str, float], ...] = (
        ("name", 0.45),
        ("ground", 0.2),
        ("conversation", 0.35),
    )
    """Galaxy tasks and their shares."""

    epochs: float = 2.0
    """Passes over the examples."""

    max_steps: int = -1
    """Optimizer steps; > 0 overrides ``epochs``."""

    batch_size: int = 32
    """Examples per optimizer step."""

    learning_rate: float = 2e-3
    """Peak learning rate (AdamW, cosine decay after a linear warm-up)."""

    warmup_ratio: float = 0.03
    """Share of the steps spent warming up."""

    weight_decay: float = 0.01
    """AdamW weight decay."""

    seed: int = 0
    """Seed of the initial weights, the example draws and the data order."""

    probe_items: int = 300
    """Held-out galaxies (and spectra, at most this many) the probe scores."""

    logging_steps: int = 25
    """Log the loss every N steps."""

    model: TinyModelConfig = field(default_factory=lambda: BASE_MODEL)
    """Architecture of the tiny model."""

    @property
    def command(self) -> str:
        """The CLI command that rebuilds this recipe."""
        default = PretrainConfig()
        flags = []
        names = ("out", "work", "n_galaxies", "n_spectra", "epochs", "max_steps", "batch_size")
        for f in (*names, "probe_items", "seed"):
            value = getattr(self, f)
            if value != getattr(default, f):
                flags.append(f"--{f.replace('_', '-')} {value}")
        return " ".join(["astroreason model pretrain", *flags])


# ----------------------------------------------------------------------------------------------
# the corpus
# ----------------------------------------------------------------------------------------------
def write_corpus(cfg: PretrainConfig, progress: bool = True) -> Path:
    """Write (or reuse) the corpus galaxies as ``WORK/galaxies.h5``."""
    from astroreason.data.synth_galaxy import GalaxySynthConfig, write_galaxy_file

    path = Path(cfg.work) / "galaxies.h5"
    gcfg = GalaxySynthConfig(n=cfg.n_galaxies, size=256, seed=cfg.galaxy_seed)
    if path.exists():
        import h5py

        with h5py.File(path, "r") as f:
            if json.loads(f.attrs["config"]) == json.loads(json.dumps(dataclasses.asdict(gcfg))):
                return path
    path.parent.mkdir(parents=True, exist_ok=True)
    return write_galaxy_file(path, gcfg, progress=progress)


def _centre_box(bbox, side: int) -> tuple[list[float], list[float]]:
    x0, y0, x1, y1 = (float(v) / side * 1000 for v in bbox)
    return [(x0 + x1) / 2, (y0 + y1) / 2], [x0, y0, x1, y1]


def framing_view(image: np.ndarray, bbox, framing: str, view: int, rng=None) -> np.ndarray:
    """One framing of a galaxy through the environment's own tools.

    ``overview``; ``matched`` (the no-tools-matched side for one call); ``zoomF`` around the centre
    jittered by up to 30 units; ``zoomF-exact``; ``zoomF-grid`` on the 50-unit grid (the demo
    teacher's call); ``crop``: the box padded by 10-30% (15% and no jitter without ``rng``).
    """
    from astroreason.envs.galaxy import matched_side
    from astroreason.tools import Footprint, crop, overview, zoom

    side = image.shape[1]
    if framing == "overview":
        return overview(image, view)[0]
    if framing == "matched":
        return overview(image, matched_side(view, 1, side))[0]
    fp = Footprint.full(*image.shape[:2])  # the overview's footprint: tool coordinates refer to it
    centre, box = _centre_box(bbox, side)
    if framing.startswith("zoom"):
        factor, _, how = framing[4:].partition("-")
        if how == "grid":
            at = [round(c / 50) * 50 for c in centre]
        elif how == "exact" or rng is None:
            at = centre
        else:
            at = [c + rng.uniform(-30, 30) for c in centre]
        at = [min(1000.0, max(0.0, c)) for c in at]
        return zoom(image, fp, at, float(factor), view)[0]
    if framing == "crop":
        pad = 0.15 if rng is None else rng.uniform(0.1, 0.3)
        w, h = box[2] - box[0], box[3] - box[1]
        jx, jy = (0.0, 0.0) if rng is None else rng.uniform(-0.1, 0.1, 2) * (w, h)
        b = [
            box[0] - pad * w + jx,
            box[1] - pad * h + jy,
            box[2] + pad * w + jx,
            box[3] + pad * h + jy,
        ]
        b = [min(1000.0, max(0.0, v)) for v in b]
        return crop(image, fp, b, view)[0]
    raise ValueError(f"framing: unknown {framing!r}")


def grounding_answer(bbox, side: int) -> str:
    """The grounding target: centre and box in 0-1000 coordinates, on a 10-unit grid."""
    centre, box = _centre_box(bbox, side)
    c = [int(round(v / 10) * 10) for v in centre]
    b = [int(round(v / 10) * 10) for v in box]
    return f"centre [{c[0]}, {c[1]}], box [{b[0]}, {b[1]}, {b[2]}, {b[3]}]"


def parse_grounding(text: str) -> tuple[list[float], list[float]] | None:
    """Centre and box from a grounding reply, or None."""
    import re

    nums = [float(x) for x in re.findall(r"-?\d+(?:\.\d+)?", text)]
    return (nums[:2], nums[2:6]) if len(nums) >= 6 else None


def _qa(images: list[np.ndarray], question: str, answer: str | None) -> dict[str, Any]:
    content: list[dict[str, Any]] = [{"type": "image", "image": im} for im in images]
    content.append({"type": "text", "text": question})
    messages: list[dict[str, Any]] = [{"role": "user", "content": content}]
    if answer is not None:
        messages.append({"role": "assistant", "content": answer})
    return {"messages": messages, "tools": None}


class SpectrumCorpus:
    """The corpus spectra, made in memory by ``make_spectrum`` (deterministic per index)."""

    def __init__(self, cfg: PretrainConfig):
        from astroreason.data.synth_spectra import SpectraSynthConfig

        self.cfg = cfg
        self.scfg = SpectraSynthConfig(n=cfg.n_spectra, seed=cfg.spectra_seed)
        self._cache: dict[int, Any] = {}

    def get(self, i: int):
        """Spectrum ``i`` (cached)."""
        from astroreason.data.synth_spectra import make_spectrum

        if i not in self._cache:
            self._cache[i] = make_spectrum(i, self.scfg)
        return self._cache[i]

    def plot(self, i: int, window: tuple[float, float] | None) -> np.ndarray:
        """The whole spectrum (``window`` None) or a window, as the environment plots them."""
        from astroreason.tools import spectrum_overview, spectrum_window

        s = self.get(i)
        wl = 10.0 ** s.loglam.astype(np.float64)
        mask = s.ivar <= 0
        w, h = self.cfg.spectrum_view
        if window is None:
            return spectrum_overview(wl, s.flux, mask, w, h)[0]
        return spectrum_window(wl, s.flux, mask, window[0], window[1], w, h)[0]


def spectrum_example(corpus: SpectrumCorpus, i: int, rng) -> dict[str, Any]:
    """One spectrum example: the family from the whole plot, or a window question."""
    s = corpus.get(i)
    galaxy = s.family.startswith("GALAXY")
    if not galaxy or rng.random() < 0.3:
        return _qa([corpus.plot(i, None)], SPEC_FAMILY_Q, f"<answer>{s.cls}</answer>")
    lo, hi = s.key_window
    shift = rng.uniform(-0.25, 0.25) * (hi - lo)
    view = corpus.plot(i, (lo + shift, hi + shift))
    if rng.random() < 0.5:
        return _qa([view], SPEC_RATIO_Q, "high" if s.family == "GALAXY AGN" else "low")
    return _qa([view], SPEC_SUB_Q, f"<answer>{s.family}</answer>")


class GalaxyCorpus:
    """Examples from the corpus galaxies; conversations run through ``GalaxyEnv`` itself."""

    def __init__(self, cfg: PretrainConfig, path: Path):
        from astroreason.data import open_source
        from astroreason.envs.galaxy import GalaxyEnv

        self.cfg = cfg
        self.source = open_source(path)
        self.class_names = tuple(self.source.class_names)
        opts = {"view_size": cfg.view_size, "max_tool_calls": 1, "max_turns": 4}
        self.envs = {
            c: GalaxyEnv(self.source, split="all", condition=c, **opts)
            for c in ("tools", "no-tools", "no-tools-matched", "blank-tools")
        }

    def name_example(self, row: int, rng, framing: str | None = None) -> dict[str, Any]:
        """The class from one view (a random framing unless given)."""
        s = self.source[row]
        framing = framing or str(rng.choice(GALAXY_FRAMINGS))
        view = framing_view(s.image, s.meta["bbox"], framing, self.cfg.view_size, rng)
        return _qa([view], NAME_Q, f"<answer>{self.class_names[s.label]}</answer>")

    def ground_example(self, row: int) -> dict[str, Any]:
        """Centre and box of the galaxy from the overview."""
        s = self.source[row]
        view = framing_view(s.image, s.meta["bbox"], "overview", self.cfg.view_size)
        return _qa([view], GROUND_Q, grounding_answer(s.meta["bbox"], s.image.shape[1]))

    def conversation(self, row: int, rng) -> dict[str, Any]:
        """An episode in the environment's format: answer at once, or one rough look then answer."""
        from astroreason.protocol import format_answer, format_tool_call
        from astroreason.training.sft import conversation_row, fill_images

        u = rng.random()
        cond = (
            "tools"
            if u < 0.6
            else "blank-tools"
            if u < 0.7
            else "no-tools"
            if u < 0.85
            else "no-tools-matched"
        )
        env = self.envs[cond]
        _, info = env.reset(seed=int(rng.integers(1 << 30)), options={"row_id": row})
        gt = info["ground_truth"]
        if env.uses_tools and rng.random() < 0.7:
            side = self.source[row].image.shape[1]
            centre, box = _centre_box(gt["bbox"], side)
            if rng.random() < 0.6:
                at = [int(np.clip(round(c + rng.uniform(-60, 60)), 0, 1000)) for c in centre]
                factor = int(rng.choice([2, 3, 4]))
                reply = format_tool_call("zoom", {"center": at, "factor": factor})
            else:
                w, h = box[2] - box[0], box[3] - box[1]
                pad = rng.uniform(0.1, 0.5)
                b = [box[0] - pad * w, box[1] - pad * h, box[2] + pad * w, box[3] + pad * h]
                b = [int(np.clip(round(v), 0, 1000)) for v in b]
                b[2], b[3] = max(b[2], b[0] + 20), max(b[3], b[1] + 20)
                reply = format_tool_call("crop", {"bbox_2d": b})
            _, _, _, _, info = env.step(reply)
            if not info["tool_calls"][-1]["ok"]:  # a call the tool refused: no call at all
                _, info = env.reset(options={"row_id": row})
        _, _, _, _, info = env.step(format_answer(gt["class_name"]))
        row_data = conversation_row(info["messages"])
        messages = fill_images(row_data["messages"], row_data["images"])
        return {"messages": messages, "tools": env.tool_schemas() or None}


class CorpusDataset:
    """Index -> one training example (messages with ndarray images, tool schemas or None)."""

    def __init__(self, cfg: PretrainConfig, galaxies: GalaxyCorpus, spectra: SpectrumCorpus):
        self.cfg, self.galaxies, self.spectra = cfg, galaxies, spectra
        n_g = int(round(cfg.n_galaxies * (1 - cfg.held_out)))
        n_s = int(round(cfg.n_spectra * (1 - cfg.held_out)))
        self.items = [("g", r) for r in range(n_g) for _ in range(cfg.examples_per_galaxy)]
        self.items += [("s", r) for r in range(n_s) for _ in range(cfg.examples_per_spectrum)]
        names, shares = zip(*cfg.task_mix, strict=True)
        self.task_names, self.task_p = names, np.asarray(shares) / sum(shares)

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, i: int) -> dict[str, Any]:
        kind, row = self.items[i]
        rng = np.random.default_rng([self.cfg.seed, i])
        if kind == "s":
            return spectrum_example(self.spectra, row, rng)
        task = self.task_names[int(rng.choice(len(self.task_names), p=self.task_p))]
        if task == "name":
            return self.galaxies.name_example(row, rng)
        if task == "ground":
            return self.galaxies.ground_example(row)
        return self.galaxies.conversation(row, rng)


# ----------------------------------------------------------------------------------------------
# batching
# ----------------------------------------------------------------------------------------------
def _pil(messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    from astroreason.chat import to_chat
    from astroreason.images import to_pil

    return to_chat(messages, lambda image: {"type": "image", "image": to_pil(image)})


class MixedCollator:
    """Tokenise examples one by one (each with its own tools), pad, labels on assistant tokens."""

    def __init__(self, processor):
        from trl.chat_template_utils import get_training_chat_template, has_generation_markers

        self.processor = processor
        template = processor.chat_template
        self.template = (
            template if has_generation_markers(template) else get_training_chat_template(processor)
        )
        self.pad_id = processor.tokenizer.pad_token_id

    def encode(self, ex: dict[str, Any]) -> dict[str, Any]:
        """One example's tensors (batch dimension 1) with ``labels``."""
        out = self.processor.apply_chat_template(
            [_pil(ex["messages"])],
            tools=ex.get("tools"),
            chat_template=self.template,
            tokenize=True,
            return_dict=True,
            return_tensors="pt",
            return_assistant_tokens_mask=True,
            processor_kwargs={"add_special_tokens": False},
        )
        labels = out["input_ids"].clone()
        labels[out.pop("assistant_masks") == 0] = -100
        out["labels"] = labels
        return out

    def __call__(self, examples: list[dict[str, Any]]) -> dict[str, Any]:
        """Right-padded batch: token tensors padded, image tensors concatenated."""
        import torch

        parts = [self.encode(ex) for ex in examples]
        length = max(p["input_ids"].shape[1] for p in parts)
        batch: dict[str, Any] = {}
        for key in parts[0]:
            tensors = [p[key] for p in parts]
            if key in ("pixel_values", "image_grid_thw"):
                batch[key] = torch.cat(tensors, 0)
                continue
            fill = {"input_ids": self.pad_id, "labels": -100}.get(key, 0)
            batch[key] = torch.stack(
                [
                    torch.nn.functional.pad(t[0], (0, length - t.shape[1]), value=fill)
                    for t in tensors
                ]
            )
        return batch


# ----------------------------------------------------------------------------------------------
# training
# ----------------------------------------------------------------------------------------------
def run_pretrain(cfg: PretrainConfig = PretrainConfig(), progress: bool = True) -> dict[str, Any]:
    """Write the corpus, build the random tiny model, train it, probe it, write model and card.

    Returns:
        A summary: steps, losses, wall time, the probe's numbers and the output folder.
    """
    import torch
    from transformers import AutoModelForImageTextToText, AutoProcessor, Trainer, TrainingArguments

    from astroreason.models.tiny import build_tiny_model, count_parameters

    t0 = time.perf_counter()
    work = Path(cfg.work)
    work.mkdir(parents=True, exist_ok=True)
    path = write_corpus(cfg, progress=progress)
    init = build_tiny_model(work / "init-model", cfg.model, seed=cfg.seed)
    processor = AutoProcessor.from_pretrained(init)
    model = AutoModelForImageTextToText.from_pretrained(init, dtype=torch.float32)
    galaxies = GalaxyCorpus(cfg, path)
    spectra = SpectrumCorpus(cfg)
    dataset = CorpusDataset(cfg, galaxies, spectra)
    args = TrainingArguments(
        output_dir=str(work / "trainer"),
        per_device_train_batch_size=cfg.batch_size,
        learning_rate=cfg.learning_rate,
        lr_scheduler_type="cosine",
        warmup_steps=cfg.warmup_ratio,  # a float below 1 is a share of the steps
        weight_decay=cfg.weight_decay,
        num_train_epochs=cfg.epochs,
        max_steps=cfg.max_steps,
        logging_steps=cfg.logging_steps
        if cfg.max_steps <= 0
        else max(1, min(cfg.logging_steps, cfg.max_steps // 4)),
        save_strategy="no",
        report_to=[],
        use_cpu=True,
        seed=cfg.seed,
        dataloader_num_workers=0,
        remove_unused_columns=False,
        disable_tqdm=not progress,
    )
    trainer = Trainer(
        model=model, args=args, train_dataset=dataset, data_collator=MixedCollator(processor)
    )
    t_train = time.perf_counter()
    trainer.train()
    train_s = time.perf_counter() - t_train
    losses = [(h["step"], h["loss"]) for h in trainer.state.log_history if "loss" in h]

    out = Path(cfg.out)
    tmp = out.with_name(out.name + ".building")
    shutil.rmtree(tmp, ignore_errors=True)
    model = trainer.model.eval()
    model.save_pretrained(tmp)
    processor.save_pretrained(tmp)
    (tmp / "loss_history.json").write_text(json.dumps(losses) + "\n")
    results = probe(model, processor, cfg, galaxies, spectra)
    summary = {
        "config": _plain(dataclasses.asdict(cfg)),
        "command": cfg.command,
        "parameters": count_parameters(model),
        "examples_per_epoch": len(dataset),
        "steps": trainer.state.global_step,
        "first_loss": losses[0][1] if losses else None,
        "last_loss": losses[-1][1] if losses else None,
        "train_wall_s": round(train_s, 1),
        "total_wall_s": round(time.perf_counter() - t0, 1),
        "torch_threads": torch.get_num_threads(),
        "probe": results,
    }
    (tmp / "pretrain_summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    (tmp / "README.md").write_text(model_card(summary, tmp))
    if out.exists():
        shutil.rmtree(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp.rename(out)
    return summary


def _plain(x: Any) -> Any:
    return json.loads(json.dumps(x, default=str))


# ----------------------------------------------------------------------------------------------
# the probe
# ----------------------------------------------------------------------------------------------
def greedy_replies(
    model, processor, examples: list[dict[str, Any]], max_new_tokens: int = 24, batch: int = 32
) -> list[str]:
    """Greedy replies of ``model`` to the last user turn of each example (left-padded batches)."""
    import torch

    replies = []
    for k in range(0, len(examples), batch):
        chunk = examples[k : k + batch]
        enc = processor.apply_chat_template(
            [_pil(ex["messages"]) for ex in chunk],
            tools=chunk[0].get("tools"),
            add_generation_prompt=True,
            tokenize=True,
            return_dict=True,
            return_tensors="pt",
            processor_kwargs={"padding": True, "padding_side": "left", "add_special_tokens": False},
        )
        with torch.no_grad():
            out = model.generate(**enc, max_new_tokens=max_new_tokens, do_sample=False)
        new = out[:, enc["input_ids"].shape[1] :]
        replies += processor.batch_decode(new, skip_special_tokens=True)
    return replies


def probe(
    model, processor, cfg: PretrainConfig, galaxies: GalaxyCorpus, spectra: SpectrumCorpus
) -> dict[str, Any]:
    """What the model does on held-out corpus items: naming per framing, grounding, spectra."""
    from astroreason.protocol import parse_reply

    n_g = int(round(cfg.n_galaxies * (1 - cfg.held_out)))
    rows = list(range(n_g, cfg.n_galaxies))[: cfg.probe_items]
    names = galaxies.class_names
    labels = [galaxies.source[r].label for r in rows]
    out: dict[str, Any] = {"galaxies": len(rows), "naming": {}}
    for framing in PROBE_FRAMINGS:
        exs = [galaxies.name_example(r, None, framing) for r in rows]
        for ex in exs:
            ex["messages"] = ex["messages"][:1]
        replies = greedy_replies(model, processor, exs, max_new_tokens=8)
        preds = [parse_reply(t, names).answer for t in replies]
        out["naming"][framing] = float(
            np.mean([p == y for p, y in zip(preds, labels, strict=True)])
        )
    exs = [galaxies.ground_example(r) for r in rows]
    for ex in exs:
        ex["messages"] = ex["messages"][:1]
    replies = greedy_replies(model, processor, exs, max_new_tokens=32)
    errors, ious, parsed = [], [], 0
    for r, text in zip(rows, replies, strict=True):
        s = galaxies.source[r]
        centre, box = _centre_box(s.meta["bbox"], s.image.shape[1])
        got = parse_grounding(text)
        if got is None:
            errors.append(1000.0)
            ious.append(0.0)
            continue
        parsed += 1
        errors.append(math.dist(got[0], centre))
        ious.append(_iou(got[1], box))
    out["grounding"] = {
        "parsed": parsed / len(rows),
        "centre_error_median": float(np.median(errors)),
        "centre_within_50": float(np.mean([e <= 50 for e in errors])),
        "box_iou_mean": float(np.mean(ious)),
    }
    out["spectra"] = probe_spectra(model, processor, cfg, spectra)
    return out


def probe_spectra(model, processor, cfg: PretrainConfig, spectra: SpectrumCorpus) -> dict[str, Any]:
    """Family from the whole plot; [N II]/H-alpha high or low from the key window (galaxies)."""
    from astroreason.protocol import parse_reply

    n_s = int(round(cfg.n_spectra * (1 - cfg.held_out)))
    idx = list(range(n_s, cfg.n_spectra))[: cfg.probe_items]
    fam = [_qa([spectra.plot(i, None)], SPEC_FAMILY_Q, None) for i in idx]
    replies = greedy_replies(model, processor, fam, max_new_tokens=8)
    fam_acc = np.mean(
        [
            parse_reply(t, SPECTRUM_CLASSES).answer == SPECTRUM_CLASSES.index(spectra.get(i).cls)
            for i, t in zip(idx, replies, strict=True)
        ]
    )
    gal = [i for i in idx if spectra.get(i).family.startswith("GALAXY")]
    ratio = [_qa([spectra.plot(i, spectra.get(i).key_window)], SPEC_RATIO_Q, None) for i in gal]
    replies = greedy_replies(model, processor, ratio, max_new_tokens=4)
    truth = ["high" if spectra.get(i).family == "GALAXY AGN" else "low" for i in gal]
    ratio_acc = (
        np.mean([t.strip().startswith(y) for t, y in zip(replies, truth, strict=True)])
        if gal
        else float("nan")
    )
    return {
        "spectra": len(idx),
        "family_accuracy": float(fam_acc),
        "galaxies": len(gal),
        "nii_ha_accuracy": float(ratio_acc),
    }


def _iou(a, b) -> float:
    ix = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    area = lambda r: max(0.0, r[2] - r[0]) * max(0.0, r[3] - r[1])  # noqa: E731
    union = area(a) + area(b) - inter
    return inter / union if union > 0 else 0.0


# ----------------------------------------------------------------------------------------------
# the card
# ----------------------------------------------------------------------------------------------
def model_card(summary: dict[str, Any], folder: Path) -> str:
    """The model card: corpus, size, steps, wall time, probe results, the rebuild command."""
    c = summary["config"]
    p = summary["probe"]
    size_mb = sum(f.stat().st_size for f in folder.iterdir() if f.is_file()) / 1e6
    naming = "\n".join(f"| {k} | {v:.3f} |" for k, v in p["naming"].items())
    g, s = p["grounding"], p["spectra"]
    m = c["model"]
    return f"""# tiny-base: the pretrained tiny Qwen3-VL (CPU stand-in for a released Qwen3-VL)

`Qwen3VLForConditionalGeneration` at {summary["parameters"]:,} parameters (vision tower: patch
{m["patch_size"]}, width {m["vision_hidden_size"]}, depth {m["vision_depth"]}; language model: width
{m["hidden_size"]}, {m["num_layers"]} layers), trained from random weights on CPU by
`training/pretrain.py`. Every arm of `make demo` and the `tiny-cpu` config start from it.
Files: {size_mb:.1f} MB.

## Corpus (shares no object with any demo, val or test set: its own synthesis seeds)
- {c["n_galaxies"]:,} synthetic galaxies (Galaxy10 DECaLS format, 256 px, seed {c["galaxy_seed"]}),
  {c["n_spectra"]:,} synthetic SDSS spectra (seed {c["spectra_seed"]}); the last {c["held_out"]:.0%}
  of each is held out for the probe below.
- Tasks: the class from one {c["view_size"]} px view in every framing (overview, matched overview,
  zooms x2-x4 exact, jittered and on the 50-grid, padded crops); the galaxy's centre and box in
  0-1000 coordinates; conversations in `GalaxyEnv`'s own format (answer at once, or one rough
  zoom/crop then the answer; no-tools, matched and blank-tool views); spectrum plots
  ({c["spectrum_view"][0]}x{c["spectrum_view"][1]} px): the family, and [N II]/H-alpha high or low and
  the subclass from a window around H-alpha.
- {summary["examples_per_epoch"]:,} examples per epoch, drawn on the fly (seeded per index).

## Training
{summary["steps"]:,} steps of batch {c["batch_size"]} (AdamW, lr {c["learning_rate"]}, cosine, warm-up
{c["warmup_ratio"]}), loss on assistant tokens only: {summary["first_loss"]:.3f} at the first log,
{summary["last_loss"]:.3f} at the last (`loss_history.json`).
Wall time: {summary["train_wall_s"] / 60:.1f} min of training,
{summary["total_wall_s"] / 60:.1f} min in all, on {summary["torch_threads"]} CPU threads.

## Probe on the held-out corpus ({p["galaxies"]} galaxies, {s["spectra"]} spectra; greedy replies)
| naming from | accuracy |
| --- | --- |
{naming}

Chance is 0.100. `zoom3-grid` is the call the demo's teacher makes (x3 around the centre on the
50-unit grid); `crop` is the box padded by 15%.

- Grounding from the overview: {g["parsed"]:.0%} of replies parse; median centre error
  {g["centre_error_median"]:.0f} units of 1000; centre within 50 units {g["centre_within_50"]:.0%};
  mean box IoU {g["box_iou_mean"]:.2f}.
- Spectra: family from the whole plot {s["family_accuracy"]:.3f} (chance 0.333 by class);
  [N II]/H-alpha high or low from the H-alpha window {s["nii_ha_accuracy"]:.3f} on {s["galaxies"]}
  galaxies (chance 0.5).

## Rebuild
```bash
{summary["command"]}
```
(`pretrain_summary.json` holds every number above.)
"""
