"""Stage 1 of the tiny base: the vision tower alone, with small supervised heads, held to a probe.

SigLIP and LiT pretrain (or lock) the image tower before any language is involved; LLaVA then
trains the projector on the frozen encoder. Here the tower of the tiny Qwen3-VL (its patch
embedding, blocks and mergers: what ``model.model.visual`` holds) learns from every view the
environments produce, through heads that read the mean of its merged tokens:

* **galaxy**: the class (10) from the overview, the pixel-matched overview, zooms x2-x4 (exact,
  jittered, on the 50-unit grid), padded crops; an eleventh class for blank (black) tool views;
* **spectrum**: the family (STAR, GALAXY STARFORMING, GALAXY AGN, QSO BROADLINE) from the whole plot
  or from a window around H-alpha (where [N II]/H-alpha decides AGN against star-forming);
* **box**: the galaxy's box in the overview, from its merged tokens in order (so the tower keeps
  *where*, which grounding and aiming need).

The stage stops when its **linear probe** (a logistic regression on the frozen tower's mean merged
token, per framing; :func:`linear_probe`) stops rising on held-out corpus rows (the first half of
the held-out rows; the card reports on the second half).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

BLANK = "blank"
"""The tower's extra galaxy class: a black tool view (the ``blank-tools`` condition)."""

TOWER_FRAMINGS = (
    "overview",
    "matched",
    "zoom2",
    "zoom3",
    "zoom4",
    "zoom2-exact",
    "zoom3-exact",
    "zoom4-exact",
    "zoom2-grid",
    "zoom3-grid",
    "zoom4-grid",
    "crop",
    "crop",
    BLANK,
)
"""Galaxy framings the tower learns from (drawn uniformly; crops twice as often)."""

STOP_FRAMINGS = ("overview", "matched", "zoom3-grid", "crop")
"""Framings whose mean linear-probe accuracy decides when the tower stage stops."""


@dataclass(frozen=True)
class TowerStage:
    """The tower stage's recipe (``PretrainConfig.tower``)."""

    max_steps: int = 3000
    """Most optimizer steps (the probe stops it earlier once it stalls; the shipped run reached 3,000)."""

    batch_size: int = 64
    """Views per step."""

    learning_rate: float = 1e-3
    """Peak learning rate (AdamW, cosine after warm-up)."""

    spectrum_share: float = 0.2
    """Share of the views that are spectrum plots."""

    probe_every: int = 300
    """Steps between linear probes of the frozen tower."""

    patience: int = 2
    """Stop after this many probes without a rise of at least ``min_rise``."""

    min_rise: float = 0.005
    """Smallest rise of the mean probe accuracy that counts."""

    probe_train_rows: int = 1500
    """Corpus training rows the linear probe is fit on (per framing)."""


# ----------------------------------------------------------------------------------------------
# the tower and its heads
# ----------------------------------------------------------------------------------------------
def _torch_module():
    import torch

    class TowerWithHeads(torch.nn.Module):
        """The vision tower plus linear heads on the mean merged token (and a box head)."""

        def __init__(self, visual, n_galaxy: int, n_spectrum: int, box_tokens: int):
            super().__init__()
            d = visual.config.out_hidden_size
            self.visual = visual
            self.galaxy = torch.nn.Linear(d, n_galaxy)
            self.spectrum = torch.nn.Linear(d, n_spectrum)
            self.box = torch.nn.Linear(d * box_tokens, 4)
            self.box_tokens = box_tokens

        def forward(self, pixel_values, image_grid_thw, kind, label, box):
            tokens = merged_tokens(self.visual, pixel_values, image_grid_thw)
            mean = torch.stack([t.mean(0) for t in tokens])
            loss = mean.new_zeros(())
            for k, head in ((0, self.galaxy), (1, self.spectrum)):
                sel = kind == k
                if sel.any():
                    ce = torch.nn.functional.cross_entropy(head(mean[sel]), label[sel])
                    loss = loss + ce * sel.float().mean()
            sized = torch.tensor([t.shape[0] == self.box_tokens for t in tokens])
            has_box = torch.nonzero(~torch.isnan(box).any(1) & sized).flatten().tolist()
            if has_box:
                flat = torch.stack([tokens[i].reshape(-1) for i in has_box])
                mse = torch.nn.functional.mse_loss(self.box(flat), box[has_box])
                loss = loss + 10.0 * mse * len(has_box) / len(tokens)
            return {"loss": loss}

    return TowerWithHeads


def merged_tokens(visual, pixel_values, grid_thw) -> list:
    """The tower's merged tokens, one tensor ``(tokens, out_hidden)`` per image."""
    import torch

    emb = visual(pixel_values, grid_thw=grid_thw).pooler_output
    n = (grid_thw.prod(-1) // visual.spatial_merge_size**2).tolist()
    return list(torch.split(emb, n))


def tower_features(
    visual, image_processor, views: list[np.ndarray], batch: int = 128
) -> np.ndarray:
    """Mean merged token of each view, from the frozen tower (eval mode, no gradients)."""
    import torch
    from PIL import Image

    was = visual.training
    visual.eval()
    out = []
    with torch.no_grad():
        for k in range(0, len(views), batch):
            ims = [Image.fromarray(v) for v in views[k : k + batch]]
            enc = image_processor(images=ims, return_tensors="pt")
            toks = merged_tokens(visual, enc["pixel_values"], enc["image_grid_thw"])
            out.append(torch.stack([t.mean(0) for t in toks]).numpy())
    visual.train(was)
    return np.concatenate(out).astype(np.float64)


def linear_probe(
    train_x: np.ndarray, train_y: np.ndarray, test_x: np.ndarray, test_y: np.ndarray
) -> float:
    """Accuracy on ``test`` of a logistic regression fit on ``train`` (standardised features)."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    clf = make_pipeline(StandardScaler(), LogisticRegression(max_iter=3000, C=1.0))
    clf.fit(train_x, train_y)
    return float((clf.predict(test_x) == test_y).mean())


# ----------------------------------------------------------------------------------------------
# data
# ----------------------------------------------------------------------------------------------
class TowerDataset:
    """Index -> one view with its head, label and (overviews) box; seeded per index."""

    def __init__(self, galaxies, spectra, rows: list[int], spectrum_rows: list[int], stage, seed):
        self.galaxies, self.spectra = galaxies, spectra
        self.rows, self.spectrum_rows = rows, spectrum_rows
        self.stage, self.seed = stage, seed

    def __len__(self) -> int:
        return self.stage.max_steps * self.stage.batch_size

    def __getitem__(self, i: int) -> dict[str, Any]:
        rng = np.random.default_rng([self.seed, 7, i])
        nan = [float("nan")] * 4
        if rng.random() < self.stage.spectrum_share:
            j = int(rng.choice(self.spectrum_rows))
            view, family = self.spectra.tower_view(j, rng)
            return {"image": view, "kind": 1, "label": family, "box": nan}
        row = int(rng.choice(self.rows))
        framing = str(rng.choice(TOWER_FRAMINGS))
        view, label = self.galaxies.tower_view(row, framing, rng)
        box = self.galaxies.overview_box(row) if framing == "overview" else nan
        return {"image": view, "kind": 0, "label": label, "box": box}


class TowerCollator:
    """Views through the model's own image processor; heads' targets as tensors."""

    def __init__(self, image_processor):
        self.image_processor = image_processor

    def __call__(self, items: list[dict[str, Any]]) -> dict[str, Any]:
        """A batch: processed pixels and grid, head kind, label and box per view."""
        import torch
        from PIL import Image

        enc = self.image_processor(
            images=[Image.fromarray(it["image"]) for it in items], return_tensors="pt"
        )
        return {
            "pixel_values": enc["pixel_values"],
            "image_grid_thw": enc["image_grid_thw"],
            "kind": torch.tensor([it["kind"] for it in items]),
            "label": torch.tensor([it["label"] for it in items]),
            "box": torch.tensor([it["box"] for it in items], dtype=torch.float32),
        }


# ----------------------------------------------------------------------------------------------
# the probe that decides when to stop, and the stage
# ----------------------------------------------------------------------------------------------
class ProbeSet:
    """Fixed views (no jitter) of probe-train and held-out rows per framing, made once."""

    def __init__(self, galaxies, train_rows: list[int], test_rows: list[int], framings):
        self.framings = tuple(framings)
        self.train_y = np.asarray([galaxies.label(r) for r in train_rows])
        self.test_y = np.asarray([galaxies.label(r) for r in test_rows])
        self.views = {
            f: (
                [galaxies.tower_view(r, f, None)[0] for r in train_rows],
                [galaxies.tower_view(r, f, None)[0] for r in test_rows],
            )
            for f in self.framings
        }

    def run(self, visual, image_processor) -> dict[str, float]:
        """Linear-probe accuracy per framing on the held-out rows."""
        out = {}
        for f, (tr, te) in self.views.items():
            xtr = tower_features(visual, image_processor, tr)
            xte = tower_features(visual, image_processor, te)
            out[f] = linear_probe(xtr, self.train_y, xte, self.test_y)
        return out


def train_resumable(trainer, work: Path) -> dict[str, Any]:
    """``trainer.train()``, from the newest checkpoint in ``work`` if there is one.

    Returns steps, the logged losses (first, last, all) and the step it resumed from (0: fresh).
    """
    saved = [int(c.name.split("-")[-1]) for c in work.glob("checkpoint-*")]
    trainer.train(resume_from_checkpoint=True if saved else None)
    losses = [(h["step"], h["loss"]) for h in trainer.state.log_history if "loss" in h]
    return {
        "steps": trainer.state.global_step,
        "first_loss": losses[0][1] if losses else None,
        "last_loss": losses[-1][1] if losses else None,
        "losses": losses,
        "resumed_from": max(saved, default=0),
    }


def stalled(history: list[dict[str, Any]], patience: int, min_rise: float) -> bool:
    """True when none of the last ``patience`` probes beat every earlier one by ``min_rise``."""
    if len(history) <= patience:
        return False
    before = max(h["mean"] for h in history[:-patience])
    return all(h["mean"] < before + min_rise for h in history[-patience:])


def run_tower_stage(
    model,
    processor,
    galaxies,
    spectra,
    rows,
    spectrum_rows,
    stop_rows,
    stage: TowerStage,
    work: Path,
    seed: int,
    progress: bool = True,
) -> dict[str, Any]:
    """Train ``model.model.visual`` with heads until the probe on ``stop_rows`` stops rising.

    Resumable: the Trainer checkpoints into ``work`` every ``probe_every`` steps, and the probe
    history is saved beside them. Returns the stage's summary (steps, losses, probe history).
    """
    import torch
    from transformers import Trainer, TrainerCallback, TrainingArguments

    visual = model.model.visual
    box_tokens = (64 // (visual.config.patch_size * visual.spatial_merge_size)) ** 2
    n_gal = len(galaxies.class_names) + 1
    module = _torch_module()(visual, n_gal, len(spectra.families), box_tokens)
    probe_rows = rows[: stage.probe_train_rows]
    probes = ProbeSet(galaxies, probe_rows, stop_rows, STOP_FRAMINGS)
    history_path = work / "probe_history.json"
    history: list[dict[str, Any]] = (
        json.loads(history_path.read_text()) if history_path.exists() else []
    )

    class ProbeStop(TrainerCallback):
        def on_train_begin(self, args, state, control, **kw):
            if not history:  # the random tower: where the curve starts
                return self.on_save(args, state, control)
            return control

        def on_save(self, args, state, control, **kw):
            if history and history[-1]["step"] >= state.global_step > 0:
                return control
            accs = probes.run(visual, processor.image_processor)
            mean = float(np.mean(list(accs.values())))
            history.append({"step": state.global_step, "mean": mean, **accs})
            history_path.write_text(json.dumps(history, indent=1) + "\n")
            if progress:
                line = " ".join(f"{k} {v:.3f}" for k, v in accs.items())
                print(f"tower probe at step {state.global_step}: {line} (mean {mean:.3f})")
            if stalled(history, stage.patience, stage.min_rise):
                control.should_training_stop = True
            return control

    args = TrainingArguments(
        output_dir=str(work),
        per_device_train_batch_size=stage.batch_size,
        learning_rate=stage.learning_rate,
        lr_scheduler_type="cosine",
        warmup_steps=0.03,
        weight_decay=0.01,
        max_steps=stage.max_steps,
        logging_steps=max(1, min(25, stage.max_steps // 4)),
        save_strategy="steps",
        save_steps=stage.probe_every,
        save_total_limit=1,
        report_to=[],
        use_cpu=True,
        seed=seed,
        dataloader_num_workers=0,
        remove_unused_columns=False,
        disable_tqdm=not progress,
    )
    dataset = TowerDataset(galaxies, spectra, rows, spectrum_rows, stage, seed)
    trainer = Trainer(
        model=module,
        args=args,
        train_dataset=dataset,
        data_collator=TowerCollator(processor.image_processor),
        callbacks=[ProbeStop()],
    )
    torch.manual_seed(seed)
    summary = train_resumable(trainer, work)
    if not history or history[-1]["step"] < trainer.state.global_step:
        ProbeStop().on_save(args, trainer.state, trainer.control)
    best = max(history, key=lambda h: h["mean"])
    return {**summary, "probe_history": history, "best_step": best["step"]}
