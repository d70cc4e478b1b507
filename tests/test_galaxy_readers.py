"""Galaxy10 HDF5, parquet and image-folder readers: round trips, laziness, pickling, bad input."""

from __future__ import annotations

import io
import pickle
import warnings
from pathlib import Path

import h5py
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from PIL import Image

from astroreason.data import open_source
from astroreason.data.classes import GALAXY10_DECALS, GALAXY10_SDSS
from astroreason.data.readers.folder import ImageFolderSource, pil_to_rgb_array
from astroreason.data.readers.galaxy10 import Galaxy10Source, repack
from astroreason.data.readers.parquet import ParquetGalaxySource
from astroreason.errors import ConfigError, DataError

# ----------------------------------------------------------------------------- helpers


def _images(n: int, side: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (n, side, side, 3), dtype=np.uint8)


def write_h5(path: Path, n: int = 12, side: int = 16, **overrides) -> dict[str, np.ndarray]:
    """Write a Galaxy10-format file; ``overrides`` replace or add datasets (None drops one)."""
    rng = np.random.default_rng(1)
    data: dict[str, object] = {
        "images": _images(n, side),
        "ans": (np.arange(n) % 10).astype(np.uint8),
        "ra": rng.uniform(0, 360, n),
        "dec": rng.uniform(-30, 30, n),
        "redshift": np.where(np.arange(n) == 3, np.nan, rng.uniform(0, 0.2, n)),
        "pxscale": np.full(n, 0.262),
    }
    data.update(overrides)
    with h5py.File(path, "w") as f:
        for k, v in data.items():
            if v is None:
                continue
            if k == "images":
                arr = np.asarray(v)
                chunks = (1, *arr.shape[1:]) if arr.ndim == 4 and arr.shape[0] else None
                f.create_dataset(k, data=arr, chunks=chunks)
            else:
                f.create_dataset(k, data=v)
    return {k: v for k, v in data.items() if v is not None}  # type: ignore[misc]


def png_bytes(arr: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, format="PNG")
    return buf.getvalue()


IMAGE_STRUCT = pa.struct([("bytes", pa.binary()), ("path", pa.string())])


def write_parquet(path: Path, table: pa.Table) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(table, path)
    return path


def image_column(images: np.ndarray) -> pa.Array:
    return pa.array([{"bytes": png_bytes(a), "path": None} for a in images], IMAGE_STRUCT)


def open_pq(path: Path, tmp_path: Path) -> ParquetGalaxySource:
    return ParquetGalaxySource(path, cache_dir=tmp_path / "hf-cache")


def assert_data_error(excinfo: pytest.ExceptionInfo, *needles: str) -> None:
    msg = str(excinfo.value)
    assert "\n" not in msg, msg
    for needle in needles:
        assert needle in msg, f"{needle!r} not in {msg!r}"


# ----------------------------------------------------------------------------- Galaxy10 HDF5


def test_decals_round_trip(tmp_path):
    f = tmp_path / "Galaxy10_DECals.h5"
    data = write_h5(f, n=12, side=16, object_id=np.arange(100, 112), bbox=np.ones((12, 4)))
    with Galaxy10Source(f) as src:
        assert src.kind == "image" and src.variant == "decals"
        assert src.class_names == GALAXY10_DECALS
        assert len(src) == 12
        np.testing.assert_array_equal(src.labels(), np.arange(12) % 10)
        assert src.labels().dtype == np.int64
        for i in (0, 5, 11, -1):
            s = src[i]
            row = i % 12
            assert s.row_id == row and s.label == row % 10
            np.testing.assert_array_equal(s.image, data["images"][row])
            assert s.image.dtype == np.uint8 and s.image.shape == (16, 16, 3)
        s = src[3]
        assert set(s.meta) == {"ra", "dec", "redshift", "pxscale", "object_id", "bbox"}
        assert np.isnan(s.meta["redshift"])  # NaN redshift is allowed, as in the real file
        assert s.meta["object_id"] == 103 and isinstance(s.meta["object_id"], int)
        np.testing.assert_array_equal(s.meta["bbox"], np.ones(4))
        meta = src.metadata()
        assert set(meta) == {"ra", "dec", "redshift", "pxscale", "object_id"}  # bbox is 2-D
        np.testing.assert_allclose(meta["ra"], data["ra"])
        np.testing.assert_array_equal(meta["object_id"], np.arange(100, 112))
        np.testing.assert_array_equal(src.class_counts()[:2], [2, 2])


def test_sdss_variant_auto_and_override(tmp_path):
    f = tmp_path / "Galaxy10.h5"
    data = write_h5(f, n=5, side=69, ra=None, dec=None, redshift=None, pxscale=None)
    src = Galaxy10Source(f)
    assert src.variant == "sdss" and src.class_names == GALAXY10_SDSS
    assert src.metadata() == {}
    np.testing.assert_array_equal(src[4].image, data["images"][4])
    assert Galaxy10Source(f, variant="decals").class_names == GALAXY10_DECALS
    with pytest.raises(ConfigError, match="variant"):
        Galaxy10Source(f, variant="hubble")  # type: ignore[arg-type]


def test_string_metadata_columns_are_decoded(tmp_path):
    f = tmp_path / "g.h5"
    ids = np.array([f"J{i:04d}".encode() for i in range(6)])
    write_h5(f, n=6, object_id=ids, name=np.array(["a", "b", "c", "d", "e", "f"], dtype=object))
    src = Galaxy10Source(f)
    assert list(src.metadata()["object_id"]) == [f"J{i:04d}" for i in range(6)]
    assert src[2].meta["name"] == "c"


def test_load_reads_one_row_not_the_whole_array(tmp_path, monkeypatch):
    f = tmp_path / "g.h5"
    data = write_h5(f, n=40, side=32)
    src = Galaxy10Source(f)
    requested = []
    real_getitem = h5py.Dataset.__getitem__

    def spy(self, key, *args, **kwargs):
        if self.name == "/images":
            requested.append(key)
        return real_getitem(self, key, *args, **kwargs)

    monkeypatch.setattr(h5py.Dataset, "__getitem__", spy)
    s = src[17]
    np.testing.assert_array_equal(s.image, data["images"][17])
    src.labels()
    src.metadata()
    assert requested == [17], requested  # one integer row, no slice, no ()


def test_pickle_round_trip_reopens_file(tmp_path):
    f = tmp_path / "g.h5"
    data = write_h5(f, n=8)
    src = Galaxy10Source(f)
    src[0]  # the handle is open
    clone = pickle.loads(pickle.dumps(src))
    assert clone._file is None
    np.testing.assert_array_equal(clone[6].image, data["images"][6])
    np.testing.assert_array_equal(clone.labels(), src.labels())
    assert clone.variant == src.variant and len(clone) == 8


def test_after_fork_a_new_handle_is_opened(tmp_path, monkeypatch):
    f = tmp_path / "g.h5"
    data = write_h5(f, n=4)
    src = Galaxy10Source(f)
    parent_handle = src._file
    monkeypatch.setattr("os.getpid", lambda: -12345)  # as if in a forked worker
    np.testing.assert_array_equal(src[2].image, data["images"][2])
    assert src._file is not parent_handle
    assert parent_handle.id.valid  # the inherited handle is left alone


def test_file_shrunk_on_disk_is_reported(tmp_path):
    f = tmp_path / "g.h5"
    write_h5(f, n=6)
    src = pickle.loads(pickle.dumps(Galaxy10Source(f)))
    write_h5(f, n=3)
    with pytest.raises(DataError) as excinfo:
        src[0]
    assert_data_error(excinfo, "g.h5", "images", "changed on disk", "now (3, 16, 16, 3)")


def test_close_then_read_reopens(tmp_path):
    f = tmp_path / "g.h5"
    data = write_h5(f, n=4)
    src = Galaxy10Source(f)
    src.close()
    assert src._file is None
    np.testing.assert_array_equal(src[1].image, data["images"][1])
    src.close()


def test_row_spanning_chunks_warn_and_repack_fixes_them(tmp_path, monkeypatch):
    f = tmp_path / "auto.h5"
    imgs = _images(40, 32, seed=9)
    with h5py.File(f, "w") as h:
        h.create_dataset("images", data=imgs, chunks=(20, 8, 8, 1), compression="gzip")
        h.create_dataset("ans", data=(np.arange(40) % 10).astype(np.uint8))
        h.create_dataset("ra", data=np.linspace(0, 10, 40))
        h.attrs["note"] = "kept"
    monkeypatch.setattr("astroreason.data.readers.galaxy10._CHUNK_CACHE_BYTES", 1000)
    with pytest.warns(UserWarning, match=r"chunks of \(20, 8, 8, 1\) compressed with gzip"):
        src = Galaxy10Source(f)
    row_bytes = 20 * 32 * 32 * 3  # 48 chunks of 20x8x8x1 hold one row
    assert src._bytes_per_read == row_bytes
    # the cache holds one row's chunks, with a prime number of slots >= 20 per chunk
    assert src._cache == {"rdcc_nbytes": row_bytes + row_bytes // 16, "rdcc_nslots": 967}
    assert src._file.id.get_access_plist().get_cache()[2] == row_bytes + row_bytes // 16
    np.testing.assert_array_equal(src[33].image, imgs[33])

    out = repack(f, tmp_path / "fast.h5")
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no layout warning any more
        fast = Galaxy10Source(out)
    with h5py.File(out) as h:
        assert h["images"].chunks == (1, 32, 32, 3) and h.attrs["note"] == "kept"
    for i in (0, 19, 20, 39):
        np.testing.assert_array_equal(fast[i].image, imgs[i])
    np.testing.assert_array_equal(fast.labels(), src.labels())
    np.testing.assert_allclose(fast.metadata()["ra"], np.linspace(0, 10, 40))
    with pytest.raises(DataError) as excinfo:
        repack(f, out)
    assert_data_error(excinfo, "fast.h5", "already exists")
    assert repack(f, out, compression="lzf", overwrite=True) == out
    np.testing.assert_array_equal(Galaxy10Source(out)[5].image, imgs[5])


def test_open_source_dispatches_h5(tmp_path):
    f = tmp_path / "g.hdf5"
    write_h5(f, n=3)
    assert isinstance(open_source(f), Galaxy10Source)


@pytest.mark.parametrize(
    ("overrides", "needles"),
    [
        ({"images": None}, ["images", "missing dataset", "ans"]),
        ({"ans": None}, ["ans", "missing dataset"]),
        ({"images": _images(4, 8)[..., 0]}, ["images", "shape (4, 8, 8)", "(N, H, W, 3)"]),
        ({"images": np.zeros((4, 8, 8, 4), np.uint8)}, ["images", "(N, H, W, 3)"]),
        ({"images": np.zeros((4, 8, 8, 3), np.float32)}, ["images", "float32", "uint8"]),
        ({"images": np.zeros((0, 8, 8, 3), np.uint8), "ans": np.zeros(0, np.uint8)}, ["no rows"]),
        ({"ans": np.zeros(12, np.float32)}, ["ans", "float32", "integer"]),
        ({"ans": np.zeros((12, 1), np.uint8)}, ["ans", "shape (12, 1)"]),
        ({"ans": np.zeros(11, np.uint8)}, ["ans", "11 labels but 12 images"]),
        ({"ra": np.zeros(10)}, ["ra", "10 rows but 12 images"]),
        ({"object_id": np.arange(13)}, ["object_id", "13 rows but 12 images"]),
        (
            {"ans": np.array([0, 1, 2, 3, 4, 10, 6, 7, 8, 9, 12, 0], np.uint8)},
            ["ans", "label 10 at row 5", "0..9", "2 of 12 rows bad"],
        ),
        ({"ans": np.array([-1] + [0] * 11, np.int16)}, ["ans", "label -1 at row 0"]),
        ({"ra": np.where(np.arange(12) == 7, np.nan, 1.0)}, ["ra", "row 7", "nan"]),
        ({"dec": np.where(np.arange(12) == 2, np.inf, 1.0)}, ["dec", "row 2"]),
        ({"pxscale": np.where(np.arange(12) == 0, np.nan, 0.262)}, ["pxscale", "row 0"]),
    ],
)
def test_bad_h5_raises_one_line_data_error(tmp_path, overrides, needles):
    f = tmp_path / "bad_galaxy10.h5"
    write_h5(f, n=12, side=8, **overrides)
    with pytest.raises(DataError) as excinfo:
        Galaxy10Source(f)
    assert_data_error(excinfo, "bad_galaxy10.h5", *needles)


def test_images_group_instead_of_dataset(tmp_path):
    f = tmp_path / "grp.h5"
    with h5py.File(f, "w") as h:
        h.create_group("images")
        h.create_dataset("ans", data=np.zeros(3, np.uint8))
    with pytest.raises(DataError) as excinfo:
        Galaxy10Source(f)
    assert_data_error(excinfo, "grp.h5", "images", "group")


def test_missing_not_hdf5_truncated_and_folder(tmp_path):
    with pytest.raises(DataError) as excinfo:
        Galaxy10Source(tmp_path / "nope.h5")
    assert_data_error(excinfo, "nope.h5", "no such file")

    junk = tmp_path / "junk.h5"
    junk.write_bytes(b"this is not hdf5" * 100)
    with pytest.raises(DataError) as excinfo:
        Galaxy10Source(junk)
    assert_data_error(excinfo, "junk.h5", "not a readable HDF5 file")

    good = tmp_path / "good.h5"
    write_h5(good, n=50, side=32)
    cut = tmp_path / "cut.h5"
    cut.write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    with pytest.raises(DataError) as excinfo:
        Galaxy10Source(cut)
    assert_data_error(excinfo, "cut.h5", "truncated")

    with pytest.raises(DataError) as excinfo:
        Galaxy10Source(tmp_path)
    assert_data_error(excinfo, str(tmp_path), "folder")


def test_cli_info_bad_file_prints_one_error_line(tmp_path, capsys):
    from astroreason.cli import main

    f = tmp_path / "broken.h5"
    write_h5(f, n=12, side=8, ans=np.full(12, 42, np.uint8))
    with pytest.raises(SystemExit) as excinfo:
        main(["data", "info", str(f)])
    assert excinfo.value.code == 2
    out, err = capsys.readouterr()
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("error: ") and "broken.h5" in lines[0] and "label 42" in lines[0]
    assert "Traceback" not in out + err


def test_cli_info_good_file(tmp_path, capsys):
    from astroreason.cli import main

    f = tmp_path / "ok.h5"
    write_h5(f, n=12, side=8)
    try:
        main(["data", "info", str(f)])
    except SystemExit as exc:  # typer may exit 0 after a command
        assert exc.code in (0, None)
    out = capsys.readouterr().out
    assert "Galaxy10Source" in out and "Barred Spiral" in out


# ----------------------------------------------------------------------------- parquet


def test_parquet_image_label_schema(tmp_path):
    imgs = _images(6, 12, seed=3)
    f = write_parquet(
        tmp_path / "train.parquet",
        pa.table({"image": image_column(imgs), "label": pa.array([0, 1, 2, 3, 9, 5], pa.int64())}),
    )
    src = open_pq(f, tmp_path)
    assert src.class_names == GALAXY10_DECALS and len(src) == 6
    np.testing.assert_array_equal(src.labels(), [0, 1, 2, 3, 9, 5])
    for i in range(6):
        np.testing.assert_array_equal(src[i].image, imgs[i])
    assert src.metadata() == {} and src[0].meta == {}
    assert src.image_column == "image" and src.label_column == "label"


def test_parquet_gz10_schema_folder_with_nulls_and_gray(tmp_path):
    imgs = _images(4, 10, seed=4)
    gray = imgs[3, :, :, 0]
    cells = [{"bytes": png_bytes(a), "path": None} for a in imgs[:3]]
    cells.append({"bytes": png_bytes(gray), "path": None})  # grayscale PNG -> RGB
    folder = tmp_path / "gz10"

    def part(rows):
        return pa.table(
            {
                "gz10_label": pa.array([[7, 8, 1, 1][r] for r in rows], pa.int32()),
                "ra": pa.array([10.0 + r for r in rows], pa.float32()),
                "dec": pa.array([-1.0 * r for r in rows], pa.float32()),
                "redshift": pa.array([None if r == 1 else 0.1 for r in rows], pa.float32()),
                "object_id": pa.array([str(12000 + r) for r in rows], pa.string()),
                "rgb_image": pa.array([cells[r] for r in rows], IMAGE_STRUCT),
                "rgb_pixel_scale": pa.array([0.262] * len(rows), pa.float32()),
                "tags": pa.array([[1]] * len(rows), pa.list_(pa.int64())),  # not scalar: skipped
            }
        )

    write_parquet(folder / "data" / "train-00000-of-00002.parquet", part([0, 1]))
    write_parquet(folder / "data" / "train-00001-of-00002.parquet", part([2, 3]))
    src = open_source(folder, cache_dir=tmp_path / "hf-cache")
    assert isinstance(src, ParquetGalaxySource) and len(src) == 4
    np.testing.assert_array_equal(src.labels(), [7, 8, 1, 1])
    np.testing.assert_array_equal(src[2].image, imgs[2])
    np.testing.assert_array_equal(src[3].image, np.repeat(gray[:, :, None], 3, axis=2))
    meta = src.metadata()
    assert set(meta) == {"ra", "dec", "redshift", "object_id", "rgb_pixel_scale"}
    assert list(meta["object_id"]) == ["12000", "12001", "12002", "12003"]
    assert np.isnan(meta["redshift"][1]) and meta["redshift"][0] == pytest.approx(0.1)
    s = src[1]
    assert s.meta["object_id"] == "12001" and s.meta["ra"] == pytest.approx(11.0)
    assert isinstance(s.meta["ra"], float)
    clone = pickle.loads(pickle.dumps(src))
    np.testing.assert_array_equal(clone[0].image, imgs[0])


def test_parquet_raw_binary_image_column(tmp_path):
    imgs = _images(2, 8, seed=5)
    f = write_parquet(
        tmp_path / "raw.parquet",
        pa.table({"image": pa.array([png_bytes(a) for a in imgs]), "label": [4, 2]}),
    )
    np.testing.assert_array_equal(open_pq(f, tmp_path)[1].image, imgs[1])


def test_parquet_bad_inputs(tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "README.md").write_text("nothing")
    with pytest.raises(DataError) as excinfo:
        open_pq(empty, tmp_path)
    assert_data_error(excinfo, "empty", "no .parquet files")

    f = write_parquet(
        tmp_path / "nolabel.parquet", pa.table({"image": image_column(_images(2, 4))})
    )
    with pytest.raises(DataError) as excinfo:
        open_pq(f, tmp_path)
    assert_data_error(excinfo, "nolabel.parquet", "no label column", "found image")

    f = write_parquet(tmp_path / "noimage.parquet", pa.table({"pixels": [1, 2], "label": [0, 1]}))
    with pytest.raises(DataError) as excinfo:
        open_pq(f, tmp_path)
    assert_data_error(excinfo, "noimage.parquet", "no image column", "found pixels, label")

    f = write_parquet(
        tmp_path / "range.parquet",
        pa.table({"image": image_column(_images(3, 4)), "label": [0, 11, 3]}),
    )
    with pytest.raises(DataError) as excinfo:
        open_pq(f, tmp_path)
    assert_data_error(excinfo, "range.parquet", "label", "label 11 at row 1", "0..9")

    f = write_parquet(
        tmp_path / "nulls.parquet",
        pa.table({"image": image_column(_images(2, 4)), "label": pa.array([1, None], pa.int64())}),
    )
    with pytest.raises(DataError) as excinfo:
        open_pq(f, tmp_path)
    assert_data_error(excinfo, "nulls.parquet", "null label at row 1")

    f = write_parquet(
        tmp_path / "strlabel.parquet",
        pa.table({"image": image_column(_images(2, 4)), "label": ["Merging", "Disturbed"]}),
    )
    with pytest.raises(DataError) as excinfo:
        open_pq(f, tmp_path)
    assert_data_error(excinfo, "strlabel.parquet", "label", "expected integers")

    junk = tmp_path / "junk.parquet"
    junk.write_bytes(b"definitely not parquet")
    with pytest.raises(DataError) as excinfo:
        open_pq(junk, tmp_path)
    assert_data_error(excinfo, "junk.parquet", "not readable as parquet")


def test_parquet_undecodable_image_names_row(tmp_path):
    cells = [
        {"bytes": png_bytes(_images(1, 4)[0]), "path": None},
        {"bytes": b"garbage", "path": None},
    ]
    f = write_parquet(
        tmp_path / "badimg.parquet",
        pa.table({"image": pa.array(cells, IMAGE_STRUCT), "label": [0, 1]}),
    )
    src = open_pq(f, tmp_path)  # construction does not decode pixels
    assert src[0].image.shape == (4, 4, 3)
    with pytest.raises(DataError) as excinfo:
        src[1]
    assert_data_error(excinfo, "badimg.parquet", "image", "row 1", "cannot decode")


# ----------------------------------------------------------------------------- image folder


def make_folder(root: Path, classes: dict[str, int], side: int = 6) -> dict[str, list[np.ndarray]]:
    out: dict[str, list[np.ndarray]] = {}
    rng = np.random.default_rng(7)
    for name, n in classes.items():
        (root / name).mkdir(parents=True)
        out[name] = []
        for j in range(n):
            arr = rng.integers(0, 256, (side, side, 3), dtype=np.uint8)
            Image.fromarray(arr).save(root / name / f"g{j:03d}.png")
            out[name].append(arr)
    return out


def test_folder_round_trip_sorted(tmp_path):
    root = tmp_path / "imgs"
    pix = make_folder(root, {"Merging": 2, "Disturbed": 3})
    (root / "Merging" / "notes.txt").write_text("ignored")
    (root / ".hidden").mkdir()
    src = open_source(root)
    assert isinstance(src, ImageFolderSource)
    assert src.class_names == ("Disturbed", "Merging")  # sorted folder names
    assert len(src) == 5
    np.testing.assert_array_equal(src.labels(), [0, 0, 0, 1, 1])  # listing is sorted by class
    s = src[3]
    assert s.label == 1 and s.row_id == 3
    np.testing.assert_array_equal(s.image, pix["Merging"][0])
    assert s.meta == {"file_name": "g000", "path": str(Path("Merging") / "g000.png")}
    names = src.metadata()["file_name"]
    assert list(names) == ["g000", "g001", "g002", "g000", "g001"]
    assert not any("Merging" in n or "Disturbed" in n for n in names)


def test_folder_classes_txt_sets_order(tmp_path):
    root = tmp_path / "imgs"
    make_folder(root, {"a": 1, "b": 2})
    (root / "classes.txt").write_text("b\na\n\n")
    src = ImageFolderSource(root)
    assert src.class_names == ("b", "a")
    np.testing.assert_array_equal(src.labels(), [0, 0, 1])

    (root / "classes.txt").write_text("b\na\nc\n")
    with pytest.raises(DataError) as excinfo:
        ImageFolderSource(root)
    assert_data_error(excinfo, "classes.txt", "'c'", "no subfolder")

    (root / "classes.txt").write_text("b\n")
    with pytest.raises(DataError) as excinfo:
        ImageFolderSource(root)
    assert_data_error(excinfo, "classes.txt", "'a'", "not listed")


def test_folder_16bit_gray_jpeg_and_rgba(tmp_path):
    root = tmp_path / "imgs"
    (root / "x").mkdir(parents=True)
    a16 = np.array([[0, 257 * 10], [65535, 257 * 200]], dtype=np.uint16)
    Image.fromarray(a16).save(root / "x" / "a16.png")
    Image.fromarray(np.full((3, 3, 4), 90, np.uint8), "RGBA").save(root / "x" / "b.png")
    Image.fromarray(np.full((8, 8, 3), 128, np.uint8)).save(root / "x" / "c.JPG")
    Image.fromarray(np.full((2, 2), 77, np.uint8)).save(root / "x" / "d.tif")
    src = ImageFolderSource(root)
    assert len(src) == 4
    img = src[0].image
    assert img.dtype == np.uint8 and img.shape == (2, 2, 3)
    np.testing.assert_array_equal(img[..., 0], [[0, 10], [255, 200]])
    np.testing.assert_array_equal(img[..., 0], img[..., 2])
    assert src[1].image.shape == (3, 3, 3) and (src[1].image == 90).all()
    assert abs(int(src[2].image.mean()) - 128) <= 2
    assert (src[3].image == 77).all()


def test_pil_float_image_scaled():
    im = Image.fromarray(np.array([[0.0, 0.5], [1.0, np.nan]], np.float32), "F")
    np.testing.assert_array_equal(pil_to_rgb_array(im)[..., 1], [[0, 128], [255, 0]])


def test_folder_bad_inputs(tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(DataError) as excinfo:
        ImageFolderSource(empty)
    assert_data_error(excinfo, "empty", "empty folder")

    flat = tmp_path / "flat"
    flat.mkdir()
    Image.fromarray(np.zeros((2, 2, 3), np.uint8)).save(flat / "a.png")
    with pytest.raises(DataError) as excinfo:
        ImageFolderSource(flat)
    assert_data_error(excinfo, "flat", "no class subfolders")

    root = tmp_path / "imgs"
    make_folder(root, {"Merging": 1})
    (root / "Disturbed").mkdir()
    (root / "Disturbed" / "readme.txt").write_text("no images here")
    with pytest.raises(DataError) as excinfo:
        ImageFolderSource(root)
    assert_data_error(excinfo, "Disturbed", "class folder has no images")

    root2 = tmp_path / "imgs2"
    make_folder(root2, {"Merging": 1})
    (root2 / "Merging" / "broken.png").write_bytes(b"not a png at all")
    src = ImageFolderSource(root2)
    with pytest.raises(DataError) as excinfo:
        src[0]  # broken.png sorts first
    assert_data_error(excinfo, "broken.png", "cannot read image")
    assert src[1].image.shape == (6, 6, 3)

    with pytest.raises(DataError) as excinfo:
        ImageFolderSource(tmp_path / "missing")
    assert_data_error(excinfo, "missing", "no such folder")


def test_parquet_written_by_datasets_with_image_feature(tmp_path):
    import datasets

    imgs = _images(3, 8, seed=11)
    features = datasets.Features(
        {"image": datasets.Image(), "label": datasets.ClassLabel(names=list(GALAXY10_DECALS))}
    )
    ds = datasets.Dataset.from_dict(
        {"image": [Image.fromarray(a) for a in imgs], "label": [9, 0, 4]}, features=features
    )
    f = tmp_path / "hf" / "data" / "train-00000-of-00001.parquet"
    f.parent.mkdir(parents=True)
    ds.to_parquet(str(f))
    src = open_source(tmp_path / "hf", cache_dir=tmp_path / "hf-cache")
    np.testing.assert_array_equal(src.labels(), [9, 0, 4])
    np.testing.assert_array_equal(src[2].image, imgs[2])
    assert src.class_names == GALAXY10_DECALS  # our names, not the export's
