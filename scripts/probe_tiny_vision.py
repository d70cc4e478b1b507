r"""What the tiny base reads: the three probes of its card, or a tower trained on the class alone.

``--base FOLDER`` (a pretrained base written by ``astroreason model pretrain``) reproduces the
card's numbers from the folder's ``pretrain_summary.json`` (its recipe, hence its corpus and its
held-out rows):

* the linear probe on the **stage-1 tower** (``--stage1``, default ``WORK/stage-1-tower/model``);
* the same probe on the base's own **frozen tower**;
* the base's **greedy answers** (naming per framing, from codec ids, grounding, spectra);
* the **id-grid classifier**, the reference for what the codec ids carry.

A linear probe is a logistic regression on the mean merged visual token of each view, fit on the
corpus's first training rows and scored on the reported held-out rows
(``astroreason.training.tower.linear_probe``).

``--data FILE --model FOLDER`` is the older experiment kept for comparison: a tower of the
model's shape trained together with a linear head on the class alone, per framing, on the
split's train rows, scored on its val rows (the table in ``../shared/docs/stack.md``).

Usage::

    .venv/bin/python scripts/probe_tiny_vision.py --base checkpoints/tiny-base
    .venv/bin/python scripts/probe_tiny_vision.py --data runs/demo/data/galaxies.h5 \
        --model runs/demo/tiny-model --framings overview matched zoom3 crop
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np


def framing_view(image: np.ndarray, bbox, framing: str, view: int) -> np.ndarray:
    """One framing of a galaxy; ``zoomF`` is the 50-grid zoom, ``fit`` scales the box to the view."""
    from astroreason.training.pretrain import framing_view as corpus_view

    if framing == "fit":  # the exact centre, magnified so that the padded box fills the view
        from astroreason.tools import Footprint, zoom

        side = image.shape[1]
        x0, y0, x1, y1 = (float(v) for v in bbox)
        centre = [c / side * 1000 for c in ((x0 + x1) / 2, (y0 + y1) / 2)]
        factor = min(16.0, max(1.01, side / (max(x1 - x0, y1 - y0) * 1.3)))
        return zoom(image, Footprint.full(*image.shape[:2]), centre, factor, view)[0]
    if framing.startswith("zoom") and "-" not in framing:  # zoomF: on the 50-unit grid
        framing += "-grid"
    try:
        return corpus_view(image, bbox, framing, view)
    except ValueError:
        raise SystemExit(f"--framings: unknown {framing!r}") from None


def class_only(source, rows, labels, framing, args) -> list[float]:
    """Train tower + head on one framing; val accuracy after every epoch."""
    import torch
    from PIL import Image
    from transformers import AutoProcessor, Qwen3VLForConditionalGeneration

    from astroreason.training.tower import merged_tokens

    torch.manual_seed(args.seed)
    proc = AutoProcessor.from_pretrained(args.model)
    visual = Qwen3VLForConditionalGeneration.from_pretrained(args.model).model.visual
    head = torch.nn.Linear(visual.config.out_hidden_size, len(source.class_names))
    opt = torch.optim.AdamW([*visual.parameters(), *head.parameters()], lr=1e-3)

    def batches(split, size):
        out = []
        for i in range(0, len(rows[split]), size):
            chunk = rows[split][i : i + size]
            ims = []
            for r in chunk:
                s = source[int(r)]
                ims.append(
                    Image.fromarray(framing_view(s.image, s.meta["bbox"], framing, args.view))
                )
            enc = proc.image_processor(images=ims, return_tensors="pt")
            out.append((enc["pixel_values"], enc["image_grid_thw"], torch.as_tensor(labels[chunk])))
        return out

    def logits(pv, thw):
        return head(torch.stack([t.mean(0) for t in merged_tokens(visual, pv, thw)]))

    train, val = batches("train", 32), batches("val", 100)
    rng = np.random.default_rng(args.seed)
    accs = []
    for _ in range(args.epochs):
        visual.train()
        for b in rng.permutation(len(train)):
            pv, thw, y = train[b]
            loss = torch.nn.functional.cross_entropy(logits(pv, thw), y)
            opt.zero_grad()
            loss.backward()
            opt.step()
        visual.eval()
        with torch.no_grad():
            hits = sum(int((logits(pv, thw).argmax(-1) == y).sum()) for pv, thw, y in val)
        accs.append(hits / len(rows["val"]))
    return accs


def base_probes(args) -> None:
    """The card's three probes (and the id reference) for a pretrained base folder."""
    import torch
    from transformers import AutoModelForImageTextToText, AutoProcessor

    from astroreason.training.pretrain import (
        GalaxyCorpus,
        PretrainConfig,
        SpectrumCorpus,
        ids_reference,
        probe,
        tower_probe,
        write_corpus,
    )

    torch.set_num_threads(args.threads)
    base = Path(args.base)
    summary = json.loads((base / "pretrain_summary.json").read_text())
    cfg = PretrainConfig.from_dict(summary["config"])
    stage1 = Path(args.stage1 or Path(cfg.work) / "stage-1-tower" / "model")
    galaxies = GalaxyCorpus(cfg, write_corpus(cfg, progress=False))
    spectra = SpectrumCorpus(cfg)
    processor = AutoProcessor.from_pretrained(base)
    load = lambda f: AutoModelForImageTextToText.from_pretrained(f, dtype=torch.float32).eval()  # noqa: E731
    t = time.time()
    first = tower_probe(load(stage1).model.visual, processor, cfg, galaxies, spectra)
    model = load(base)
    final = tower_probe(model.model.visual, processor, cfg, galaxies, spectra)
    greedy = probe(model, processor, cfg, galaxies, spectra)
    ref = ids_reference(galaxies, cfg)
    print(f"{'class from':14} {'stage-1 probe':>13} {'final probe':>11} {'greedy':>7}")
    for f, v in greedy["naming"].items():
        print(f"{f:14} {first['naming'][f]:13.3f} {final['naming'][f]:11.3f} {v:7.3f}")
    for k in ("family_accuracy", "nii_ha_accuracy"):
        print(
            f"{k:14} {first['spectra'][k]:13.3f} {final['spectra'][k]:11.3f} "
            f"{greedy['spectra'][k]:7.3f}"
        )
    print(f"{'ids of':14} {'id-grid clf':>13} {'':>11} {'greedy':>7}")
    for f, v in greedy["naming_ids"].items():
        print(f"{f:14} {ref[f]:13.3f} {'':>11} {v:7.3f}")
    print(f"({time.time() - t:.0f} s)")


def main() -> None:
    """Parse the flags and run one of the two probes."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--base", help="pretrained base folder: reproduce its card's probes")
    ap.add_argument("--stage1", help="stage-1 model folder (default WORK/stage-1-tower/model)")
    ap.add_argument("--data", help="galaxy file with a bbox column (class-only probe)")
    ap.add_argument("--model", help="tiny model folder (class-only probe)")
    ap.add_argument("--framings", nargs="+", default=["overview", "matched", "zoom3", "crop"])
    ap.add_argument("--view", type=int, default=64, help="view side in px")
    ap.add_argument("--epochs", type=int, default=8)
    ap.add_argument("--seed", type=int, default=0, help="split seed and training seed")
    ap.add_argument("--threads", type=int, default=2, help="torch CPU threads")
    args = ap.parse_args()
    if args.base:
        return base_probes(args)
    if not (args.data and args.model):
        raise SystemExit("give --base FOLDER, or --data FILE and --model FOLDER")

    import torch

    from astroreason.data import open_source
    from astroreason.data.quality.splits import split_for

    torch.set_num_threads(args.threads)
    source = open_source(args.data)
    sp = split_for(source, args.seed)
    rows = {s: np.asarray(sp.rows(s)) for s in ("train", "val")}
    labels = np.asarray(source.labels())
    print(f"{len(rows['train'])} train / {len(rows['val'])} val rows, view {args.view} px")
    print(f"{'framing':10} {'last-3 mean':>11}  per epoch")
    for framing in args.framings:
        t = time.time()
        accs = class_only(source, rows, labels, framing, args)
        per = " ".join(f"{a:.3f}" for a in accs)
        print(f"{framing:10} {np.mean(accs[-3:]):11.3f}  {per}  ({time.time() - t:.0f} s)")


if __name__ == "__main__":
    main()
