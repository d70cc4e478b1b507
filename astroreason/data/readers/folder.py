"""A folder of labelled images: ``root/class_name/*.png`` (also jpg, jpeg, tif, tiff, bmp, webp).

Class names are the sorted subfolder names, or the lines of an optional ``root/classes.txt`` (that
order sets the label indices). Files are sorted within each class and row ids are positions in that
listing, so **row order is sorted by class**: harmless because splits always shuffle, but a row id
predicts the label and must never reach a model. Images are decoded one at a time with PIL and converted
to HxWx3 uint8 RGB (16-bit images scaled by 1/257, grayscale repeated over three channels).
"""

from __future__ import annotations

import errno
import os
import warnings
from pathlib import Path

import numpy as np
from PIL import Image

from astroreason.data.base import Sample, SampleSource, check_image_size
from astroreason.errors import AstroReasonWarning, DataError

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp", ".webp")
CLASSES_FILE = "classes.txt"


class ImageFolderSource(SampleSource):
    """Images sorted into one subfolder per class.

    Args:
        path: The root folder. Hidden entries (names starting with ``.``) are ignored, as are files that
            are not images.

    :meth:`metadata` has one column, ``file_name``: the bare file stem (never the class folder, which is
    the label). ``Sample.meta`` also holds ``path``, relative to the root.

    Symlinks that loop or point nowhere are skipped with a warning.

    Raises:
        DataError: The folder is missing or empty, has no class subfolders, a class folder has no images,
            ``classes.txt`` disagrees with the subfolders; at read time, an image cannot be decoded
            or has a side over :data:`~astroreason.data.base.MAX_IMAGE_SIDE` (checked before decoding).
    """

    kind = "image"

    def __init__(self, path: str | os.PathLike):
        root = Path(path)
        self.path = str(root)
        self.class_names, self._files, self._labels = list_class_files(
            root,
            lambda name: name.lower().endswith(IMAGE_SUFFIXES),
            "images (" + ", ".join(IMAGE_SUFFIXES) + ")",
            example="Merging/001.png",
        )
        self._root = root

    def __len__(self) -> int:
        """Number of image files."""
        return len(self._files)

    def _load(self, i: int) -> Sample:
        f = self._files[i]
        image = read_image_file(f)
        meta = {"file_name": f.stem, "path": str(f.relative_to(self._root))}
        return Sample(row_id=i, label=int(self._labels[i]), image=image, meta=meta)

    def labels(self) -> np.ndarray:
        """Labels from the class folders, in row order."""
        return self._labels.copy()

    def metadata(self) -> dict[str, np.ndarray]:
        """``file_name``: each file's stem, without the class folder."""
        return {"file_name": np.array([f.stem for f in self._files], dtype=object)}


def read_image_file(f: Path) -> np.ndarray:
    """Decode one image file to HxWx3 uint8 after checking its size from the header.

    Raises:
        DataError: naming ``f``: unreadable, undecodable, or a side outside the size limits.
    """
    try:
        with Image.open(f) as im:
            check_image_size(f, im.height, im.width)
            return pil_to_rgb_array(im)
    except (OSError, ValueError, SyntaxError, Image.DecompressionBombError) as err:
        # PIL raises all of these on bad files (a bomb: far over the size limit)
        raise DataError(f, f"cannot read image: {err}") from None


def pil_to_rgb_array(im: Image.Image) -> np.ndarray:
    """Convert a PIL image (any mode, first frame) to HxWx3 uint8 RGB.

    16-bit integer images are scaled by 1/257 (32-bit ``I`` images too when their maximum exceeds 255);
    float images in 0..1 are scaled by 255, others clipped to 0..255; NaN becomes 0.
    """
    mode = im.mode
    if mode.startswith("I") or mode == "F":
        arr = np.asarray(im, dtype=np.float64)
        if arr.ndim == 3:  # multi-band high-depth image: keep the first three bands
            arr = arr[..., :3]
        arr = np.nan_to_num(arr, nan=0.0, posinf=0.0, neginf=0.0)
        peak = float(arr.max()) if arr.size else 0.0
        if mode.startswith("I;16") or (mode == "I" and peak > 255):
            arr = arr / 257.0
        elif mode == "F" and peak <= 1.0:
            arr = arr * 255.0
        gray = np.clip(np.rint(arr), 0, 255).astype(np.uint8)
        if gray.ndim == 2:
            gray = np.repeat(gray[:, :, None], 3, axis=2)
        return np.ascontiguousarray(gray)
    if mode != "RGB":
        im = im.convert("RGB")
    return np.asarray(im, dtype=np.uint8).copy()


def list_class_files(
    root: Path, accept, what: str, example: str = ""
) -> tuple[tuple[str, ...], list[Path], np.ndarray]:
    """Class names, files (sorted per class) and labels of a ``root/class_name/file`` folder.

    Shared by the image and FITS folder readers. ``accept(name)`` picks the files; ``what`` names
    them in errors (``example``, e.g. ``Merging/001.png``, is added to the no-subfolder one).
    Hidden entries are ignored, and so (with a warning) are symlinks that loop or point nowhere;
    ``root/classes.txt`` (one name a line) sets the class order.
    """
    if not root.exists():
        raise DataError(root, "no such folder")
    if not root.is_dir():
        raise DataError(root, f"is a file, expected a folder of class_name/ {what}")
    entries = [e for e in root.iterdir() if not e.name.startswith(".") and not _broken_link(e)]
    if not entries:
        raise DataError(root, f"empty folder: expected class_name/ {what}")
    dirs = sorted(e.name for e in entries if e.is_dir())
    if not dirs:
        eg = f" (e.g. {example})" if example else ""
        raise DataError(root, f"no class subfolders: expected class_name/ {what}{eg}")
    classes_file = root / CLASSES_FILE
    names = dirs
    if classes_file.is_file():
        names = [ln.strip() for ln in classes_file.read_text().splitlines() if ln.strip()]
        if not names:
            raise DataError(classes_file, "lists no class names")
        if len(set(names)) != len(names):
            raise DataError(
                classes_file, f"class {next(n for n in names if names.count(n) > 1)!r} listed twice"
            )
        missing = [n for n in names if n not in dirs]
        if missing:
            raise DataError(classes_file, f"class {missing[0]!r} has no subfolder in {root}")
        extra = [d for d in dirs if d not in names]
        if extra:
            raise DataError(classes_file, f"subfolder {extra[0]!r} is not listed")
    files: list[Path] = []
    labels: list[int] = []
    for k, name in enumerate(names):
        found = sorted(
            f
            for f in (root / name).iterdir()
            if not f.name.startswith(".") and accept(f.name) and not _broken_link(f) and f.is_file()
        )
        if not found:
            raise DataError(root / name, f"class folder has no {what}")
        files += found
        labels += [k] * len(found)
    return tuple(names), files, np.asarray(labels, dtype=np.int64)


def _broken_link(p: Path) -> bool:
    """True, with a warning, for a symlink that loops or points to nothing (it is skipped)."""
    if not p.is_symlink() or p.exists():
        return False
    try:
        os.stat(p)
        why = "cannot be followed"
    except OSError as err:
        why = "is a symlink loop" if err.errno == errno.ELOOP else "is a dangling symlink"
    warnings.warn(f"{p}: skipped: {why}", AstroReasonWarning, stacklevel=4)
    return True
