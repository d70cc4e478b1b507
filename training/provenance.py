"""Provenance of a training run for the experiment log: git commit, data hash, the split's sizes."""

from __future__ import annotations

import hashlib
import subprocess
from pathlib import Path

from astroreason.training.config import TrainConfig


def git_commit() -> str:
    """HEAD of the repository holding this file, with ``+dirty`` when the tree has changes."""
    root = Path(__file__).resolve().parents[1]
    try:
        head = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True, timeout=10
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain"], cwd=root, capture_output=True, text=True, timeout=10
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return (head or "unknown") + ("+dirty" if dirty else "")


def data_hash(data: str | Path) -> str:
    """sha256 of a data file, or of a folder's files (names and bytes, sorted); first 16 hex."""
    p = Path(data)
    h = hashlib.sha256()
    files = sorted(x for x in p.rglob("*") if x.is_file()) if p.is_dir() else [p]
    for f in files:
        if not f.exists():
            return "missing"
        h.update(str(f.relative_to(p) if p.is_dir() else f.name).encode())
        with open(f, "rb") as fh:
            for chunk in iter(lambda: fh.read(1 << 20), b""):
                h.update(chunk)
    return h.hexdigest()[:16]


def split_summary(cfg: TrainConfig) -> str:
    """``split seed S: train N / val M / test K rows`` of the persisted split."""
    try:
        from astroreason.data.quality.splits import split_for
        from astroreason.training.env_adapter import open_config_source

        sp = split_for(open_config_source(cfg), cfg.split_seed)
        sizes = " / ".join(f"{n} {len(sp.rows(n))}" for n in ("train", "val", "test"))
    except Exception as e:  # the log must still be written
        return f"split unavailable ({type(e).__name__}: {e})"
    return f"split seed {cfg.split_seed}: {sizes} rows"
