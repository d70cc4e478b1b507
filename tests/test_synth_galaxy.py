"""The synthetic Galaxy10 generator: file layout, balance, shuffling, determinism, boxes, no leaks."""

import h5py
import numpy as np
import pytest

from astroreason.data import open_source
from astroreason.data.classes import GALAXY10_DECALS
from astroreason.data.synthesis.galaxy import (
    GalaxySynthConfig,
    class_sequence,
    render_galaxy,
    write_galaxy_file,
)
from astroreason.errors import ConfigError

N, SIZE = 40, 96


@pytest.fixture(scope="module")
def small_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("synth") / "g.h5"
    write_galaxy_file(path, GalaxySynthConfig(n=N, size=SIZE, seed=11), progress=False)
    return path


def test_keys_dtypes_shapes_and_layout(small_file):
    with h5py.File(small_file, "r") as f:
        assert set(f) == {"images", "ans", "ra", "dec", "redshift", "pxscale", "bbox"}
        images = f["images"]
        assert images.shape == (N, SIZE, SIZE, 3) and images.dtype == np.uint8
        assert images.chunks == (1, SIZE, SIZE, 3) and images.compression is None
        expected = {
            "ans": np.uint8,
            "ra": np.float64,
            "dec": np.float64,
            "redshift": np.float32,
            "pxscale": np.float32,
        }
        for key, dtype in expected.items():
            assert f[key].shape == (N,) and f[key].dtype == dtype, key
        assert f["bbox"].shape == (N, 4) and f["bbox"].dtype == np.float32
        assert np.all(f["pxscale"][:] == np.float32(0.262))
        assert np.all((f["ra"][:] >= 0) & (f["ra"][:] < 360))
        assert np.all(np.abs(f["dec"][:]) <= 90)
        # Real pixels, not blank frames: every image has a galaxy brighter than its sky.
        for img in images[:]:
            assert img.max() > np.median(img) + 40


def test_all_classes_balanced_and_not_sorted(small_file):
    with h5py.File(small_file, "r") as f:
        ans = f["ans"][:]
    counts = np.bincount(ans, minlength=len(GALAXY10_DECALS))
    assert len(counts) == len(GALAXY10_DECALS) and counts.min() == counts.max() == N // 10
    assert not np.all(np.diff(ans.astype(int)) >= 0)  # not sorted by class
    assert np.mean(np.diff(ans.astype(int)) == 0) < 0.5  # not in long runs of one class


def test_class_sequence_balanced_for_uneven_n():
    labels = class_sequence(GalaxySynthConfig(n=23, seed=1))
    counts = np.bincount(labels, minlength=10)
    assert counts.sum() == 23 and counts.max() - counts.min() <= 1


def test_same_seed_same_bytes_other_seed_differs(tmp_path):
    paths = []
    for name, seed in (("a", 5), ("b", 5), ("c", 6)):
        p = tmp_path / f"{name}.h5"
        write_galaxy_file(p, GalaxySynthConfig(n=10, size=64, seed=seed), progress=False)
        paths.append(p)
    a, b, c = (p.read_bytes() for p in paths)
    assert a == b
    assert a != c
    assert not list(tmp_path.glob("*.tmp"))  # the temporary file was renamed away


def test_render_galaxy_is_a_function_of_the_rng():
    cfg = GalaxySynthConfig(size=96)
    a, ma = render_galaxy(5, np.random.default_rng([1, 2]), cfg)
    b, mb = render_galaxy(5, np.random.default_rng([1, 2]), cfg)
    c, _ = render_galaxy(5, np.random.default_rng([1, 3]), cfg)
    assert a.shape == (96, 96, 3) and a.dtype == np.uint8
    assert np.array_equal(a, b) and ma["bbox"] == mb["bbox"]
    assert not np.array_equal(a, c)


@pytest.mark.parametrize("class_id", range(10))
def test_bbox_inside_image_and_holds_most_light(class_id):
    cfg = GalaxySynthConfig(size=128)
    for j in range(2):
        img, meta = render_galaxy(class_id, np.random.default_rng([21, class_id, j]), cfg)
        x0, y0, x1, y1 = meta["bbox"]
        assert 0 <= x0 < x1 <= 128 and 0 <= y0 < y1 <= 128
        # The galaxy is small in the field: the box covers well under half of the side.
        assert max(x1 - x0, y1 - y0) < 0.6 * 128
        flux = img.astype(float).sum(axis=2)
        sky = np.median(flux)
        sigma = 1.4826 * np.median(np.abs(flux - sky))
        smooth = sum(np.roll(flux, (dy, dx), (0, 1)) for dy in (-1, 0, 1) for dx in (-1, 0, 1)) / 9
        light = np.where(smooth > sky + 1.5 * sigma, flux - sky, 0.0)  # galaxy pixels
        inside = light[int(y0) : int(np.ceil(y1)), int(x0) : int(np.ceil(x1))].sum()
        assert inside / light.sum() > 0.85, (class_id, inside / light.sum())


def test_galaxy_not_always_at_the_centre():
    cfg = GalaxySynthConfig(size=128)
    centres = []
    for j in range(12):
        _, meta = render_galaxy(j % 10, np.random.default_rng([4, j]), cfg)
        x0, y0, x1, y1 = meta["bbox"]
        centres.append(((x0 + x1) / 2, (y0 + y1) / 2))
    centres = np.array(centres)
    assert centres.std(axis=0).min() > 8  # spread over the field, not pinned to the middle


def test_metadata_does_not_predict_label(tmp_path):
    p = tmp_path / "m.h5"
    write_galaxy_file(p, GalaxySynthConfig(n=200, size=32, seed=2), progress=False)
    with h5py.File(p, "r") as f:
        ans, z = f["ans"][:].astype(int), f["redshift"][:].astype(float)
        assert np.unique(f["pxscale"][:]).size == 1
    assert abs(np.corrcoef(ans, z)[0, 1]) < 0.2
    # Per-class mean redshift: the spread between classes is within sampling noise.
    means = np.array([z[ans == c].mean() for c in range(10)])
    sem = z.std() / np.sqrt(20)
    assert means.std() < 2.5 * sem


@pytest.mark.parametrize(
    "kwargs",
    [
        {"n": 9},
        {"size": 31},
        {"seed": -1},
        {"extent": (0.4, 0.2)},
        {"psf_fwhm": (0.0, 2.0)},
        {"read_noise": 0.0, "sky_level": 0.0},
    ],
)
def test_bad_config_raises(kwargs):
    with pytest.raises(ConfigError):
        GalaxySynthConfig(**kwargs)


def test_bad_class_and_missing_folder_raise(tmp_path):
    with pytest.raises(ConfigError):
        render_galaxy(10, np.random.default_rng(0), GalaxySynthConfig(size=64))
    with pytest.raises(ConfigError):
        write_galaxy_file(tmp_path / "nope" / "g.h5", GalaxySynthConfig(n=10, size=64))


def test_opens_as_galaxy10_source_with_bbox(small_file):
    src = open_source(small_file)
    assert len(src) == N and tuple(src.class_names) == GALAXY10_DECALS
    with h5py.File(small_file, "r") as f:
        ans, bbox = f["ans"][:], f["bbox"][:]
    assert np.array_equal(src.labels(), ans.astype(np.int64))
    s = src[3]
    assert s.image.shape == (SIZE, SIZE, 3) and s.label == int(ans[3])
    assert np.allclose(np.asarray(s.meta["bbox"], float), bbox[3])
    assert "bbox" not in src.metadata()  # 2-D ground truth stays out of the audited columns


def test_the_cli_makes_the_output_folder(tmp_path):
    """The README's first command writes data/galaxies.h5 in a fresh clone (no data/ folder)."""
    from astroreason.cli import main

    out = tmp_path / "data" / "new" / "g.h5"
    main(["data", "synth", "galaxy", "--n", "10", "--size", "64", "--out", str(out)])
    assert len(open_source(out)) == 10
