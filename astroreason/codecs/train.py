"""Train the ``tiny-vq`` image codec: k-means over 8x8 patches of the views the env shows.

Recipe (``astroreason model codec``): render ``n`` synthetic galaxies with a seed no demo, val or
test set uses (9003), cut every framing the env shows from each one with the env's own tools
(``FRAMINGS``: the 64 px overview of the 256 px field, zooms x2, x3 and x4, and a crop around the
galaxy's box), split them into ``patch x patch`` RGB blocks and learn ``vocab`` centroids with
scikit-learn's ``MiniBatchKMeans``. Quality is measured on views of galaxies from another seed
(9004): MSE and PSNR per framing against two unquantised yardsticks (a flat grey image, and each
block replaced by its own mean colour, i.e. the view downsampled ``patch`` times), and codebook
usage (share of ids used, perplexity). ``--compare`` fits other sizes only to report them.

Why 256 ids of 8x8 blocks: a 64 px view is then 64 ids of at most three digits (the tiny model
reads each digit as one token, and the separators cost more); measured on the held-out
views (card of ``checkpoints/tiny-vq``), 1024 ids gain about 0.2 dB overall and 0.5 dB on the
galaxy for a fourth digit per id and leave a fifth of the ids unused; 64 ids save a digit but
lose 0.3 dB overall and 0.7 dB on the galaxy. Weighting bright blocks in k-means gained more: in
an exploratory run at 256 ids, 0.8-1.2 dB on the galaxy blocks of every framing and 0.2-0.3 dB
overall, which put it above unweighted k-means with 1024 ids.

The folder gets ``codebook.npy``, ``codec.json``, a card
(``README.md``) and ``examples.png`` (held-out views beside their reconstructions).
"""

from __future__ import annotations

import dataclasses
import json
import math
import time
from dataclasses import dataclass
from pathlib import Path

import h5py
import numpy as np

from astroreason.codecs.vq import CODEBOOK_FILE, VQCodec, to_patches
from astroreason.data.synthesis.galaxy import GalaxySynthConfig, write_galaxy_file
from astroreason.errors import ConfigError
from astroreason.tools import COORD_MAX, crop, overview, zoom

FRAMINGS = ("overview", "zoom2", "zoom3", "zoom4", "crop")
"""Views cut from every galaxy, as the env shows them: the overview, zooms by 2-4 of it (on the
galaxy three times in four, anywhere otherwise) and a crop of the galaxy's box with a margin."""


@dataclass(frozen=True)
class CodecTrainConfig:
    """How the codebook is learned and measured (CPU defaults: about a minute on two cores)."""

    out: str = "checkpoints/tiny-vq"
    """Folder for the codec (``codebook.npy``, ``codec.json``, ``README.md``, ``examples.png``)."""
    work: str = "runs/codec"
    """Scratch folder for the rendered galaxy files (reused when present)."""
    n: int = 1000
    """Training galaxies (one view per framing each)."""
    n_eval: int = 200
    """Held-out galaxies for the quality figures."""
    vocab: int = 256
    """Codebook size: token ids are 0 .. vocab - 1."""
    patch: int = 8
    """Block side in pixels: a 64 px view is (64 / patch)^2 tokens."""
    view: int = 64
    """View side in pixels, as the env shows it."""
    seed: int = 9003
    """Seed of the training galaxies and of k-means (no demo, val or test set uses it)."""
    eval_seed: int = 9004
    """Seed of the held-out galaxies."""
    max_patches: int = 300_000
    """At most this many training blocks (a seeded subsample beyond it)."""
    batch_size: int = 4096
    """MiniBatchKMeans batch size."""
    max_iter: int = 50
    """MiniBatchKMeans passes over the blocks at most."""
    signal_weight: float = 4.0
    """Blocks weigh ``1 + max(0, brightness above the mean) / signal_weight`` in k-means (0: all
    weigh 1), so codewords go to the galaxy rather than to sky noise (0-255 units)."""
    compare: tuple[int, ...] = ()
    """Other codebook sizes fitted the same way, only to report their held-out quality."""
    name: str = "tiny-vq"
    """Name written into ``codec.json``."""

    def __post_init__(self) -> None:
        checks = [
            (self.n >= 10, f"--n must be at least 10, got {self.n}"),
            (self.n_eval >= 10, f"n_eval must be at least 10, got {self.n_eval}"),
            (2 <= self.vocab <= 65536, f"--vocab must be 2..65536, got {self.vocab}"),
            (self.patch >= 1, f"--patch must be >= 1, got {self.patch}"),
            (
                self.view >= 8 and self.view % self.patch == 0,
                f"the view side {self.view} must be >= 8 and a multiple of --patch {self.patch}",
            ),
            (self.seed != self.eval_seed, "the training and held-out seeds must differ"),
            (self.signal_weight >= 0, f"signal_weight must be >= 0, got {self.signal_weight}"),
            (
                all(2 <= k <= 65536 for k in self.compare),
                f"--compare sizes must be 2..65536: {self.compare}",
            ),
        ]
        for ok, msg in checks:
            if not ok:
                raise ConfigError(msg)


def galaxy_file(work: Path, n: int, seed: int) -> Path:
    """The synthetic galaxy file of ``n`` galaxies with ``seed`` in ``work`` (rendered if missing)."""
    path = work / f"galaxies-seed{seed}-n{n}.h5"
    if not path.exists():
        work.mkdir(parents=True, exist_ok=True)
        write_galaxy_file(path, GalaxySynthConfig(n=n, seed=seed), progress=False)
    return path


def framed_views(path: Path, view: int, seed: int) -> dict[str, np.ndarray]:
    """Every framing of every galaxy in ``path``: ``{framing: (n, view, view, 3) uint8}``."""
    rng = np.random.default_rng([seed, 7])
    out: dict[str, list[np.ndarray]] = {f: [] for f in FRAMINGS}
    with h5py.File(path, "r") as f:
        images, boxes = f["images"], f["bbox"][:]
        for i in range(images.shape[0]):
            src = images[i]
            first, fp = overview(src, view)
            out["overview"].append(first)
            x0, y0, x1, y1 = (float(v) for v in boxes[i])
            size = src.shape[0]
            for factor in (2, 3, 4):
                if rng.random() < 0.75:  # on the galaxy, as the model mostly aims
                    cx, cy = rng.uniform(x0, x1), rng.uniform(y0, y1)
                else:
                    cx, cy = rng.uniform(0, size, 2)
                centre = [cx / size * COORD_MAX, cy / size * COORD_MAX]
                out[f"zoom{factor}"].append(zoom(src, fp, centre, factor, view)[0])
            out["crop"].append(crop(src, fp, _crop_box(x0, y0, x1, y1, size, rng), view)[0])
    return {k: np.stack(v) for k, v in out.items()}


def _crop_box(x0, y0, x1, y1, size: int, rng: np.random.Generator) -> list[float]:
    """The galaxy's box widened by a random margin, in 0-1000 overview coordinates."""
    m = rng.uniform(0.0, 0.4)
    w, h = x1 - x0, y1 - y0
    box = [x0 - m * w, y0 - m * h, x1 + m * w, y1 + m * h]
    box = [min(max(v, 0.0), float(size)) for v in box]
    return [round(v / size * COORD_MAX, 1) for v in box]


def signal(rows: np.ndarray, grey: np.ndarray) -> np.ndarray:
    """Mean brightness of each block row above the grey level (0-255 units; negative below)."""
    return rows.reshape(len(rows), -1, 3).mean(axis=(1, 2)) - float(np.mean(grey))


def fit_codebook(
    views: np.ndarray, cfg: CodecTrainConfig, grey: np.ndarray, vocab: int | None = None
) -> np.ndarray:
    """Learn ``vocab`` (default ``cfg.vocab``) centroids of the blocks of ``views``.

    MiniBatchKMeans on raw 0-255 block vectors, each weighted by its brightness above ``grey``
    (see ``CodecTrainConfig.signal_weight``).
    """
    from sklearn.cluster import MiniBatchKMeans

    vocab = vocab or cfg.vocab
    rows = np.concatenate([to_patches(v, cfg.patch) for v in views]).astype(np.float32)
    rng = np.random.default_rng([cfg.seed, 8])
    if len(rows) > cfg.max_patches:
        rows = rows[rng.choice(len(rows), cfg.max_patches, replace=False)]
    if len(rows) < vocab:
        raise ConfigError(f"{len(rows)} training blocks cannot fit {vocab} codewords")
    weight = None
    if cfg.signal_weight > 0:
        weight = 1.0 + np.clip(signal(rows, grey), 0, None) / cfg.signal_weight
    km = MiniBatchKMeans(
        n_clusters=vocab,
        batch_size=cfg.batch_size,
        max_iter=cfg.max_iter,
        n_init=1,
        random_state=cfg.seed,
        reassignment_ratio=0.01,
    ).fit(rows, sample_weight=weight)
    return km.cluster_centers_.astype(np.float32)


SIGNAL_BLOCK = 8.0
"""A held-out block counts as *galaxy* when its mean is this far above the grey level (0-255)."""


def _psnr(mse: float) -> float:
    return round(10 * math.log10(255.0**2 / mse), 2) if mse > 0 else math.inf


def measure(codec: VQCodec, views: dict[str, np.ndarray], grey: np.ndarray) -> dict:
    """Held-out quality per framing: MSE and PSNR of the codec and of two baselines, usage.

    Args:
        codec: The codec to measure.
        views: ``{framing: (n, H, W, 3) uint8}``.
        grey: The flat-colour baseline (RGB, 0-255): the training views' mean colour.

    Returns:
        ``{"framings": {framing: {...}}, "all": {...}, "usage", "perplexity", "encode_ms"}``
        (the median time of one ``encode``). MSE
        in squared 0-255 units over whole views (``mse_codec``, ``mse_grey``, ``mse_patch_mean``)
        and over galaxy blocks only (``mse_galaxy``, blocks ``SIGNAL_BLOCK`` above grey); PSNR in
        dB of the mean MSE.
    """
    p = codec.patch
    counts = np.zeros(codec.vocab_size, np.int64)
    per: dict[str, dict] = {}
    pooled: dict[str, list[float]] = {}
    t_enc: list[float] = []
    for framing, vs in views.items():
        err: dict[str, list[float]] = {"codec": [], "grey": [], "patch_mean": [], "galaxy": []}
        for v in vs:
            t0 = time.perf_counter()
            ids = codec.encode(v)
            t_enc.append(time.perf_counter() - t0)
            counts += np.bincount(ids.ravel(), minlength=codec.vocab_size)
            x = v.astype(np.float64)
            blocks = to_patches(x, p)
            sq = to_patches((codec.decode(ids) - x) ** 2, p).mean(axis=1)
            err["codec"].append(float(sq.mean()))
            err["galaxy"] += sq[signal(blocks, grey) > SIGNAL_BLOCK].tolist()
            err["grey"].append(float(((x - grey) ** 2).mean()))
            rows = blocks.reshape(len(blocks), p * p, 3)
            flat = np.rint(rows.mean(axis=1, keepdims=True))
            err["patch_mean"].append(float(((rows - flat) ** 2).mean()))
        per[framing] = {"n": len(vs), "galaxy_blocks": len(err["galaxy"])}
        for k, e in err.items():
            pooled.setdefault(k, []).extend(e)
            mse = float(np.mean(e)) if e else math.nan
            per[framing][f"mse_{k}"] = round(mse, 2)
            per[framing][f"psnr_{k}"] = _psnr(mse) if e else math.nan
    freq = counts / counts.sum()
    nz = freq[freq > 0]
    every = {}
    for k, e in pooled.items():
        every[f"mse_{k}"] = round(float(np.mean(e)), 2)
        every[f"psnr_{k}"] = _psnr(float(np.mean(e)))
    return {
        "framings": per,
        "all": every,
        "usage": round(float((counts > 0).mean()), 4),
        "perplexity": round(float(np.exp(-(nz * np.log(nz)).sum())), 1),
        "encode_ms": round(1000 * float(np.median(t_enc)), 3),
    }


def example_grid(codec: VQCodec, views: dict[str, np.ndarray], k: int = 3, scale: int = 2):
    """A uint8 picture: one row per framing of ``k`` held-out views, each beside its reconstruction."""
    gap = 6
    rows = []
    for vs in views.values():
        cells = []
        for v in vs[:k]:
            rec = codec.decode(codec.encode(v))
            cells += [v, np.full((v.shape[0], 1, 3), 255, np.uint8), rec]
            cells.append(np.full((v.shape[0], gap // scale, 3), 0, np.uint8) + 255)
        rows.append(np.concatenate(cells[:-1], axis=1).repeat(scale, 0).repeat(scale, 1))
        rows.append(np.full((gap, rows[-1].shape[1], 3), 255, np.uint8))
    return np.concatenate(rows[:-1], axis=0)


def train_codec(cfg: CodecTrainConfig) -> dict:
    """Render, cut, fit, measure and write the codec folder; returns what ``codec.json`` records."""
    from PIL import Image

    t0 = time.perf_counter()
    work, out = Path(cfg.work), Path(cfg.out)
    cached = all(
        (work / f"galaxies-seed{s}-n{n}.h5").exists()
        for s, n in ((cfg.seed, cfg.n), (cfg.eval_seed, cfg.n_eval))
    )
    train = framed_views(galaxy_file(work, cfg.n, cfg.seed), cfg.view, cfg.seed)
    held = framed_views(galaxy_file(work, cfg.n_eval, cfg.eval_seed), cfg.view, cfg.eval_seed)
    t_data = time.perf_counter() - t0
    all_train = np.concatenate(list(train.values()))
    grey = all_train.reshape(-1, 3).mean(axis=0)
    t1 = time.perf_counter()
    codec = VQCodec(fit_codebook(all_train, cfg, grey), cfg.patch, name=cfg.name)
    t_fit = time.perf_counter() - t1
    quality = measure(codec, held, grey)
    wall = time.perf_counter() - t0
    others = {}
    for k in cfg.compare:
        t2 = time.perf_counter()
        q = measure(VQCodec(fit_codebook(all_train, cfg, grey, k), cfg.patch), held, grey)
        others[str(k)] = {
            "psnr_codec": q["all"]["psnr_codec"],
            "psnr_galaxy": q["all"]["psnr_galaxy"],
            "usage": q["usage"],
            "fit_s": round(time.perf_counter() - t2, 1),
        }
    recipe = dataclasses.asdict(cfg) | {
        "framings": list(FRAMINGS),
        "train_views": int(len(all_train)),
        "algorithm": "sklearn MiniBatchKMeans on raw 0-255 RGB block vectors (no normalisation), "
        "blocks weighted by their brightness above the mean",
        "grey_baseline_rgb": [round(float(g), 2) for g in grey],
    }
    meta = {
        "recipe": recipe,
        "quality": quality,
        "held_out": {"seed": cfg.eval_seed, "n_galaxies": cfg.n_eval, "framings": list(FRAMINGS)},
        "wall_s": {
            "data": round(t_data, 1),
            "fit": round(t_fit, 1),
            "total": round(wall, 1),
            "galaxy_files_reused": cached,
        },
        "command": _command(cfg),
    }
    meta["wall_s"]["with_comparisons"] = round(time.perf_counter() - t0, 1)
    if others:
        meta["vocab_comparison"] = {
            str(cfg.vocab): {
                "psnr_codec": quality["all"]["psnr_codec"],
                "psnr_galaxy": quality["all"]["psnr_galaxy"],
                "usage": quality["usage"],
                "fit_s": round(t_fit, 1),
            },
            **others,
        }
    codec.save(out, meta)
    Image.fromarray(example_grid(codec, held)).save(out / "examples.png", optimize=True)
    (out / "README.md").write_text(card(json.loads((out / "codec.json").read_text()), out))
    return meta


def _command(cfg: CodecTrainConfig) -> str:
    d = CodecTrainConfig()
    parts = ["astroreason model codec"]
    for flag, field in (("--out", "out"), ("--n", "n"), ("--vocab", "vocab"), ("--patch", "patch")):
        parts.append(f"{flag} {getattr(cfg, field)}")
    if cfg.seed != d.seed:
        parts.append(f"--seed {cfg.seed}")
    if cfg.compare:
        parts.append("--compare " + ",".join(str(k) for k in cfg.compare))
    return " ".join(parts)


def card(info: dict, out: Path) -> str:
    """The model card (``README.md``) of a codec folder from its ``codec.json``."""
    q, r, w = info["quality"], info["recipe"], info["wall_s"]
    size = sum(p.stat().st_size for p in out.iterdir() if p.name != "README.md")
    cb = (out / CODEBOOK_FILE).stat().st_size
    rows = [
        "| framing | views | codec MSE | codec PSNR | galaxy blocks: codec PSNR | grey PSNR "
        "| patch-mean PSNR |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    framings = [(f, q["framings"][f]) for f in r["framings"] if f in q["framings"]]
    for f, m in [*framings, ("all", q["all"])]:
        n = m.get("n", sum(x["n"] for x in q["framings"].values()))
        rows.append(
            f"| {f} | {n} | {m['mse_codec']} | **{m['psnr_codec']} dB** | {m['psnr_galaxy']} dB | "
            f"{m['psnr_grey']} dB | {m['psnr_patch_mean']} dB |"
        )
    reused = " (galaxy files reused from --work)" if w.get("galaxy_files_reused") else ""
    tokens = (r["view"] // info["patch"]) ** 2
    comp = ""
    if "vocab_comparison" in info:
        lines = [
            "| vocabulary | digits per id | PSNR, all | PSNR, galaxy blocks | ids used | k-means s |",
            "| --- | --- | --- | --- | --- | --- |",
        ]
        for k, m in sorted(info["vocab_comparison"].items(), key=lambda kv: int(kv[0])):
            lines.append(
                f"| {k} | {len(str(int(k) - 1))} | {m['psnr_codec']} dB | {m['psnr_galaxy']} dB | "
                f"{m['usage']:.0%} | {m['fit_s']} |"
            )
        comp = (
            "\n## Codebook size\nThe same recipe at other sizes, same held-out views (the model "
            "reads each id as its digits, one token each):\n\n" + "\n".join(lines) + "\n"
        )
        me = info["vocab_comparison"][str(info["vocab_size"])]
        digits = len(str(info["vocab_size"] - 1))
        deltas = []
        for k, m in sorted(info["vocab_comparison"].items(), key=lambda kv: int(kv[0])):
            if int(k) == info["vocab_size"]:
                continue
            dt = (len(str(int(k) - 1)) - digits) * tokens
            deltas.append(
                f"{k} ids: {m['psnr_codec'] - me['psnr_codec']:+.2f} dB overall, "
                f"{m['psnr_galaxy'] - me['psnr_galaxy']:+.2f} dB on galaxy blocks, "
                f"{dt:+d} digit tokens per {r['view']} px view"
            )
        comp += (
            f"\nAgainst {info['vocab_size']} ids: " + "; ".join(deltas) + ". A size is worth "
            "its digits only if the gain is large: the tiny model's context and step time grow "
            "with every token.\n"
        )
    return f"""# {info["name"]}: a vector-quantisation image codec for the `tokens` observation

Each {info["patch"]}x{info["patch"]} RGB block of a view becomes the id of its nearest codeword
(ids 0-{info["vocab_size"] - 1}), so a {r["view"]} px view is {tokens} ids written as text. Numpy only at
run time: `astroreason.codecs.open_codec("{info["name"]}")`; encoding a {r["view"]} px view takes
{q["encode_ms"]} ms here (2-core CPU, median over the held-out views).

## Size
Vocabulary {info["vocab_size"]}, patch {info["patch"]} px; codebook {info["vocab_size"]} x
{info["patch"] ** 2 * 3} float32 (`{CODEBOOK_FILE}`, {cb:,} bytes); folder {size:,} bytes without this card.

## Training data
- {r["n"]} synthetic galaxies (`astroreason.data.synthesis.galaxy`, 256 px fields, seed {r["seed"]}: no demo,
  val or test set uses it), {r["train_views"]:,} views of {r["view"]} px, one per framing per galaxy,
  cut with the env's own tools: {", ".join(r["framings"])} (the overview of the whole field; zooms by 2,
  3 and 4 of it, on the galaxy three times in four, anywhere otherwise; a crop of the galaxy's box with
  a 0-40% margin).
- {r["algorithm"]} (weight `1 + max(0, block mean - mean) / {r["signal_weight"]}`);
  {r["vocab"]} clusters, at most {r["max_patches"]:,} blocks, batch {r["batch_size"]}, at most
  {r["max_iter"]} passes, seed {r["seed"]}.

## Held-out reconstruction quality
{info["held_out"]["n_galaxies"]} galaxies of seed {info["held_out"]["seed"]}, one view per framing each.
MSE in squared 0-255 units, PSNR = 10 log10(255^2 / MSE) of the mean MSE. *Galaxy blocks*: only the blocks
whose mean is more than {SIGNAL_BLOCK:g} above the mean level (the galaxy, not the sky). Yardsticks, not
quantised: *grey* is a flat image of the training views' mean colour; *patch-mean* replaces each
block by its own mean colour (the view downsampled {info["patch"]}x: 3 numbers per block where the
codec has one id).

{chr(10).join(rows)}

Codebook usage on these views: {q["usage"]:.1%} of the ids appear; perplexity {q["perplexity"]}
(the effective number of ids). Most blocks are sky noise, which no codebook of this size keeps: the
codec keeps the galaxy's position, size, brightness and rough colour and smooths the noise; the fine
structure (arms, bars) within a block is mostly lost. `examples.png` shows, for each framing (rows:
{", ".join(r["framings"])}), three held-out views each beside its reconstruction.
{comp}
## Rebuild
```bash
{info["command"]}
```
Measured wall time here (2-core CPU, shared with other jobs): {w["total"]} s for this codebook
({w["data"]} s rendering and cutting views{reused}, {w["fit"]} s k-means, the rest measuring);
{w.get("with_comparisons", w["total"])} s with the comparison sizes.
"""
