"""Target boxes for image files that carry none: the central galaxy, found by source extraction.

Galaxy10 cutouts (and most survey cutouts) are centred on their galaxy but ship no box, so the SFT
teacher would never look and the on-target metric could not score a view. This module finds the
central object with photutils: the cutout's luminance, sky level and noise from sigma-clipped
statistics, smoothed by a Gaussian of ``smooth_fwhm`` pixels, segmented at ``nsigma`` noise sigmas above
the sky with at least ``npixels`` connected pixels, then deblended (multi-thresholding and watershed,
``nlevels``/``contrast``) so that unrelated neighbours that touch the galaxy's isophote split off.

The target is the deblended segment under the centre pixel (else the one whose centroid is nearest the
centre, within a quarter of the side), together with the other deblended pieces of the same parent
segment that are at least ``companion_flux`` of its flux: a merger's partner stays in the box, a faint
star on its edge does not. Its box is that footprint's bounding box in source pixels ``x0, y0, x1, y1``
and its size measure is the half-light radius of the target's pixels. When nothing is detected near
the centre the box is the central square of ``fallback_fraction`` of the side (recorded as such).

Boxes are cached beside the data like the split (``<file>.boxes.json``, else under
``$ASTROREASON_HOME/boxes``), tied to the file's fingerprint and this module's settings, and computed
only for the rows asked for, so that an eval of the test split never extracts the training rows. A box
is a function of pixels only: it never reaches a prompt, and it is not a metadata column (the audit
does not read it).
"""

from __future__ import annotations

import json
import os
import warnings
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from astroreason.data.base import Sample, SampleSource, cache_home
from astroreason.errors import DataError

CACHE_VERSION = 1


@dataclass(frozen=True)
class BoxConfig:
    """Settings of the source extraction (see the module docstring)."""

    nsigma: float = 5.0
    """Detection threshold in noise sigmas above the sky (on the smoothed image)."""
    npixels: int = 12
    """Least connected pixels of a source."""
    smooth_fwhm: float = 2.5
    """FWHM in pixels of the Gaussian the image is smoothed with before detection."""
    nlevels: int = 32
    """Deblending thresholds between a segment's minimum and maximum."""
    contrast: float = 0.005
    """Least flux fraction of a deblended component."""
    companion_flux: float = 0.1
    """Deblended pieces of the target's parent at least this fraction of its flux join the box."""
    centre_scale: float = 0.15
    """Off-centre segments are ranked by flux / (1 + (distance / (this x side))^2)."""
    fallback_fraction: float = 0.5
    """Side of the central fallback square, as a fraction of the cutout side."""


@dataclass(frozen=True)
class TargetBox:
    """The central object of one cutout.

    Attributes:
        bbox: ``x0, y0, x1, y1`` in source pixels (x1, y1 exclusive).
        r_half: Half-light radius in pixels of the target's pixels (sky subtracted).
        method: ``photutils`` (detected) or ``centre`` (nothing detected: the central fallback square).
        n_sources: Deblended sources found in the whole cutout.
    """

    bbox: tuple[float, float, float, float]
    r_half: float
    method: str
    n_sources: int

    def to_list(self) -> list[Any]:
        """The JSON row of the cache: ``[x0, y0, x1, y1, r_half, method, n_sources]``."""
        return [*map(float, self.bbox), float(self.r_half), self.method, self.n_sources]

    @classmethod
    def from_list(cls, row: list[Any]) -> TargetBox:
        """Inverse of :meth:`to_list`."""
        return cls(tuple(float(v) for v in row[:4]), float(row[4]), str(row[5]), int(row[6]))


def luminance(image: np.ndarray) -> np.ndarray:
    """An HxW float image from HxW or HxWxC pixels (the mean over channels)."""
    arr = np.asarray(image, dtype=np.float64)
    return arr.mean(axis=2) if arr.ndim == 3 else arr


def find_target(image: np.ndarray, cfg: BoxConfig | None = None) -> TargetBox:
    """The central object of a cutout (see the module docstring)."""
    from astropy.convolution import Gaussian2DKernel, convolve
    from astropy.stats import sigma_clipped_stats
    from photutils.segmentation import deblend_sources, detect_sources

    cfg = cfg or BoxConfig()
    lum = luminance(image)
    h, w = lum.shape
    _, sky, sd = sigma_clipped_stats(lum, sigma=3.0, maxiters=5)
    sd = float(sd) if np.isfinite(sd) and sd > 0 else max(float(np.std(lum)), 1e-6)
    data = lum - float(sky)
    kernel = Gaussian2DKernel(cfg.smooth_fwhm / 2.3548)
    smooth = convolve(data, kernel, normalize_kernel=True, boundary="extend")
    # The smoothed noise is smaller than the raw one: threshold in units of the smoothed sky's own sd.
    _, _, sd_s = sigma_clipped_stats(smooth, sigma=3.0, maxiters=5)
    sd_s = float(sd_s) if np.isfinite(sd_s) and sd_s > 0 else sd
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "no sources found" and deblending warnings
        segm = detect_sources(smooth, cfg.nsigma * sd_s, n_pixels=cfg.npixels)
        if segm is None:
            return _fallback(h, w, cfg, 0)
        parents = segm.data.copy()
        deb = deblend_sources(
            smooth,
            segm,
            n_pixels=cfg.npixels,
            n_levels=cfg.nlevels,
            contrast=cfg.contrast,
            progress_bar=False,
        )
    labels = deb.data
    ids = np.unique(labels[labels > 0])
    pos = np.clip(data, 0.0, None)
    flux = {int(k): float(pos[labels == k].sum()) for k in ids}
    target = _central(labels, ids, flux, cfg)
    if target == 0:
        return _fallback(h, w, cfg, int(ids.size))
    parent = parents[labels == target][0]
    members = [
        int(k)
        for k in ids
        if int(k) == target
        or (parents[labels == k][0] == parent and flux[int(k)] >= cfg.companion_flux * flux[target])
    ]
    mask = np.isin(labels, members)
    rows, cols = np.flatnonzero(mask.any(axis=1)), np.flatnonzero(mask.any(axis=0))
    bbox = (float(cols[0]), float(rows[0]), float(cols[-1] + 1), float(rows[-1] + 1))
    r_half = round(half_light_radius(pos, labels == target), 3)
    return TargetBox(bbox, r_half, "photutils", int(ids.size))


def _central(labels: np.ndarray, ids: np.ndarray, flux: dict[int, float], cfg: BoxConfig) -> int:
    """The segment under the centre pixel, else the brightest by flux over distance from the centre."""
    h, w = labels.shape
    under = int(labels[h // 2, w // 2])
    if under:
        return under
    ys, xs = np.indices(labels.shape)
    scale = cfg.centre_scale * min(h, w)
    best, best_score = 0, 0.0
    for k in ids:
        m = labels == k
        d = float(np.hypot(xs[m].mean() - (w - 1) / 2.0, ys[m].mean() - (h - 1) / 2.0))
        score = flux[int(k)] / (1.0 + (d / scale) ** 2)
        if score > best_score:
            best, best_score = int(k), score
    return best


def half_light_radius(flux: np.ndarray, mask: np.ndarray) -> float:
    """Radius around the flux-weighted centre that holds half the flux of the masked pixels."""
    ys, xs = np.nonzero(mask)
    f = flux[ys, xs]
    total = float(f.sum())
    if total <= 0:
        return float(np.sqrt(mask.sum() / np.pi))
    x0, y0 = float((xs * f).sum() / total), float((ys * f).sum() / total)
    r = np.hypot(xs - x0, ys - y0)
    order = np.argsort(r)
    k = int(np.searchsorted(np.cumsum(f[order]), 0.5 * total))
    return float(r[order][min(k, r.size - 1)])


def _fallback(h: int, w: int, cfg: BoxConfig, n: int) -> TargetBox:
    fw, fh = w * cfg.fallback_fraction, h * cfg.fallback_fraction
    box = ((w - fw) / 2.0, (h - fh) / 2.0, (w + fw) / 2.0, (h + fh) / 2.0)
    return TargetBox(box, round(0.25 * min(fw, fh), 3), "centre", n)


# --------------------------------------------------------------------------- the cache


def boxes_path(source: SampleSource) -> Path:
    """Where a source's boxes live beside the data: ``<file>.boxes.json`` (folders: beside the folder)."""
    p = Path(source.path)
    return p.parent / f"{p.name}.boxes.json"


def fallback_boxes_path(fingerprint: str) -> Path:
    """Where the boxes live when the data's folder is not writable."""
    return cache_home() / "boxes" / f"{fingerprint}.json"


def has_own_boxes(source: SampleSource, row: int = 0) -> bool:
    """Whether the source's samples carry a ``bbox`` (the synthetic set does; Galaxy10 does not)."""
    return len(source) > 0 and source[row].meta.get("bbox") is not None


class BoxCache:
    """The target boxes of one source, persisted and filled in on demand.

    Args:
        source: An image source.
        cfg: Extraction settings; a cache made with others is recomputed.
    """

    def __init__(self, source: SampleSource, cfg: BoxConfig | None = None):
        self.source = source
        self.cfg = cfg or BoxConfig()
        self.fingerprint = source.fingerprint()
        self.rows: dict[int, TargetBox] = {}
        self.path = boxes_path(source)
        for cand in (self.path, fallback_boxes_path(self.fingerprint)):
            if cand.is_file() and self._read(cand):
                break

    def _read(self, path: Path) -> bool:
        """Load a cache file; False when it is for other data or settings (it is then replaced)."""
        try:
            doc = json.loads(path.read_text())
        except (OSError, ValueError) as err:
            raise DataError(
                path, f"cannot read the box cache ({err}); delete it to recompute"
            ) from None
        if not isinstance(doc, dict) or doc.get("version") != CACHE_VERSION:
            return False
        if doc.get("fingerprint") != self.fingerprint or doc.get("config") != asdict(self.cfg):
            return False
        try:
            self.rows = {int(k): TargetBox.from_list(v) for k, v in doc.get("rows", {}).items()}
        except (TypeError, ValueError, IndexError):
            raise DataError(path, "malformed box cache; delete it to recompute") from None
        self.path = path
        return True

    def ensure(self, rows, progress: bool | None = None) -> None:
        """Compute (and save) the boxes of ``rows`` not yet cached; a progress bar for many rows."""
        todo = [int(r) for r in rows if int(r) not in self.rows]
        if not todo:
            return
        from rich.console import Console
        from rich.progress import track

        console = Console(stderr=True)
        show = progress if progress is not None else len(todo) > 200
        it = track(
            todo,
            description=f"finding target boxes in {len(todo)} images",
            console=console,
            transient=True,
            disable=not (show and console.is_terminal),
        )
        for k, r in enumerate(it, 1):
            self.rows[r] = find_target(self.source[r].image, self.cfg)
            if k % 1000 == 0:
                self.save()  # a killed run keeps what it found
        self.save()

    def box(self, row: int) -> TargetBox:
        """The box of one row (computed now when missing)."""
        if int(row) not in self.rows:
            self.ensure([row], progress=False)
        return self.rows[int(row)]

    def save(self) -> None:
        """Write the cache atomically beside the data, else under ``$ASTROREASON_HOME/boxes``."""
        doc = {
            "version": CACHE_VERSION,
            "source": str(self.source.path),
            "fingerprint": self.fingerprint,
            "n": len(self.source),
            "config": asdict(self.cfg),
            "rows": {str(k): v.to_list() for k, v in sorted(self.rows.items())},
        }
        text = json.dumps(doc, separators=(",", ":"))
        problems = []
        for cand in dict.fromkeys(
            (self.path, boxes_path(self.source), fallback_boxes_path(self.fingerprint))
        ):
            try:
                cand.parent.mkdir(parents=True, exist_ok=True)
                tmp = cand.with_name(f"{cand.name}.{os.getpid()}.tmp")
                tmp.write_text(text)
                os.replace(tmp, cand)
                self.path = cand
                return
            except OSError as err:
                problems.append(f"{cand}: {err.strerror or err}")
        raise DataError(self.path, "cannot write the box cache (" + "; ".join(problems) + ")")

    def summary(self) -> dict[str, Any]:
        """Counts by method, and the median half-light radius, of the cached rows."""
        methods = [b.method for b in self.rows.values()]
        radii = [b.r_half for b in self.rows.values() if b.method == "photutils"]
        return {
            "rows": len(self.rows),
            "photutils": methods.count("photutils"),
            "centre_fallback": methods.count("centre"),
            "median_r_half": round(float(np.median(radii)), 2) if radii else None,
            "path": str(self.path),
        }


class BoxedSource(SampleSource):
    """A source whose samples gain ``bbox``, ``r_half`` and ``bbox_method`` from a :class:`BoxCache`.

    Everything else (labels, metadata, fingerprint, path) is the wrapped source's: the boxes are not a
    metadata column, and splits and the audit see the same data.
    """

    def __init__(self, source: SampleSource, cache: BoxCache):
        self.inner = source
        self.cache = cache
        self.path = source.path
        self.kind = source.kind
        self.class_names = source.class_names

    def __len__(self) -> int:
        """Rows of the wrapped source."""
        return len(self.inner)

    def _load(self, i: int) -> Sample:
        s = self.inner[i]
        b = self.cache.box(i)
        meta = {**s.meta, "bbox": b.bbox, "r_half": b.r_half, "bbox_method": b.method}
        return Sample(row_id=s.row_id, label=s.label, image=s.image, spectrum=s.spectrum, meta=meta)

    def labels(self) -> np.ndarray:
        """The wrapped source's labels."""
        return self.inner.labels()

    def metadata(self) -> dict[str, np.ndarray]:
        """The wrapped source's metadata (no box columns)."""
        return self.inner.metadata()

    def pixel_hashes(self) -> list[str]:
        """The wrapped source's hashes."""
        return self.inner.pixel_hashes()

    def fingerprint(self) -> str:
        """The wrapped source's fingerprint."""
        return self.inner.fingerprint()


_SHARED: dict[tuple[str, str, str], BoxCache] = {}


def shared_cache(source: SampleSource, cfg: BoxConfig | None = None) -> BoxCache:
    """One :class:`BoxCache` per file, fingerprint and settings in this process (envs share it)."""
    cfg = cfg or BoxConfig()
    key = (str(Path(source.path).resolve()), source.fingerprint(), repr(cfg))
    if key not in _SHARED:
        _SHARED[key] = BoxCache(source, cfg)
    return _SHARED[key]


def with_target_boxes(
    source: SampleSource, rows=None, cfg: BoxConfig | None = None, progress: bool | None = None
) -> SampleSource:
    """``source`` itself when its samples carry boxes, else a :class:`BoxedSource` with ``rows`` ready."""
    if source.kind != "image" or isinstance(source, BoxedSource) or has_own_boxes(source):
        return source
    cache = shared_cache(source, cfg)
    cache.ensure(range(len(source)) if rows is None else rows, progress=progress)
    return BoxedSource(source, cache)
