"""FITS cutout folders: both layouts, band order, the synthetic data's stretch, bad files, an env."""

from __future__ import annotations

import asyncio
from pathlib import Path

import gymnasium
import numpy as np
import pytest
from astropy.io import fits

import astroreason.data.synthesis.galaxy as synth
import astroreason.envs  # noqa: F401 - registers the ids
from astroreason.data import open_source
from astroreason.data.readers.fits_folder import FitsFolderSource, read_grz
from astroreason.data.stretch import asinh_rgb, sky_stats, to_noise_units
from astroreason.envs import GALAXY_ID
from astroreason.errors import DataError
from astroreason.policies import OraclePolicy, RandomPolicy

SIDE = 48


def grz_cube(seed: int = 0, side: int = SIDE) -> np.ndarray:
    """(3, side, side) in sky sigmas: unit noise plus a bright blob at a different place per band."""
    rng = np.random.default_rng(seed)
    cube = rng.standard_normal((3, side, side))
    yy, xx = np.mgrid[0:side, 0:side]
    for k, x in enumerate((0.25, 0.5, 0.75)):  # g left, r centre, z right
        cube[k] += 300 * np.exp(-((xx - x * side) ** 2 + (yy - side / 2) ** 2) / 8.0)
    return cube


def flux(cube: np.ndarray) -> np.ndarray:
    """The cube in 'flux units': scaled and offset by powers of two (exact in float64)."""
    return np.asarray(cube, np.float64) * 4.0 + 1024.0


def write_cube(path: Path, cube: np.ndarray, bands: str | None = "grz", **header) -> Path:
    """One (3, H, W) cube in the primary HDU; ``bands`` are written as BAND0..BAND2 in that order."""
    data = np.asarray(cube)
    hdu = fits.PrimaryHDU(data)
    if bands:
        for k, b in enumerate(bands):
            hdu.header[f"BAND{k}"] = b
    for k, v in header.items():
        hdu.header[k] = v
    path.parent.mkdir(parents=True, exist_ok=True)
    hdu.writeto(path, overwrite=True)
    return path


def write_hdus(path: Path, planes: list[np.ndarray], filters: list[str] | None) -> Path:
    """An empty primary HDU and one 2-D image HDU per plane, with FILTER when given."""
    hdus = [fits.PrimaryHDU()]
    for k, plane in enumerate(planes):
        h = fits.ImageHDU(np.asarray(plane))
        if filters:
            h.header["FILTER"] = filters[k]
        hdus.append(h)
    path.parent.mkdir(parents=True, exist_ok=True)
    fits.HDUList(hdus).writeto(path, overwrite=True)
    return path


def expected_image(cube_flux: np.ndarray) -> np.ndarray:
    """What the reader must return: each band in sky sigmas, then the shared stretch."""
    return asinh_rgb(np.stack([to_noise_units(b, *sky_stats(b)) for b in cube_flux]))


def assert_data_error(excinfo, *needles: str) -> None:
    msg = str(excinfo.value)
    assert "\n" not in msg, msg
    for needle in needles:
        assert needle in msg, f"{needle!r} not in {msg!r}"


def make_folder(root: Path, per_class: int = 3, classes=("Merging", "Disturbed")) -> Path:
    for c, name in enumerate(classes):
        for j in range(per_class):
            seed = 10 * c + j
            write_cube(root / name / f"cut{j:02d}.fits", flux(grz_cube(seed)), RA=150.0 + seed)
    return root


# ----------------------------------------------------------------------------- layouts


def test_cube_folder_round_trip_and_dispatch(tmp_path):
    root = make_folder(tmp_path / "cutouts")
    (root / "Merging" / "notes.txt").write_text("ignored")
    (root / "Merging" / ".hidden.fits").write_bytes(b"ignored")
    (root / ".cache").mkdir()
    write_cube(root / "Merging" / "late.fits.gz", flux(grz_cube(99)))
    src = open_source(root)
    assert isinstance(src, FitsFolderSource) and src.kind == "image"
    assert src.class_names == ("Disturbed", "Merging")  # sorted folder names
    assert len(src) == 7
    np.testing.assert_array_equal(src.labels(), [0, 0, 0, 1, 1, 1, 1])
    s = src[3]
    assert s.image.dtype == np.uint8 and s.image.shape == (SIDE, SIDE, 3)
    np.testing.assert_array_equal(s.image, expected_image(flux(grz_cube(0))))
    assert s.meta["file_name"] == "cut00" and s.meta["layout"] == "cube"
    assert s.meta["path"] == str(Path("Merging") / "cut00.fits") and s.meta["ra"] == 150.0
    assert s.meta["sigma_g"] == pytest.approx(4.0, rel=0.1)  # the flux-unit noise
    assert s.meta["sky_r"] == pytest.approx(1024.0, abs=0.5)
    meta = src.metadata()
    assert list(meta["file_name"]) == ["cut00", "cut01", "cut02", "cut00", "cut01", "cut02", "late"]
    assert not any("Merging" in n for n in meta["file_name"])
    np.testing.assert_allclose(meta["ra"][:6], [160, 161, 162, 150, 151, 152])
    assert np.isnan(meta["ra"][6])  # the last file has no RA
    # g left -> blue channel bright on the left; z right -> red channel bright on the right
    img = s.image.astype(int)
    mid = SIDE // 2
    assert img[mid, SIDE // 4, 2] > 200 and img[mid, SIDE // 4, 0] < 100
    assert img[mid, 3 * SIDE // 4, 0] > 200 and img[mid, 3 * SIDE // 4, 2] < 100


def test_classes_txt_sets_order(tmp_path):
    root = make_folder(tmp_path / "cutouts", per_class=1)
    (root / "classes.txt").write_text("Merging\nDisturbed\n")
    src = FitsFolderSource(root)
    assert src.class_names == ("Merging", "Disturbed")
    np.testing.assert_array_equal(src.labels(), [0, 1])


def test_cube_band_keywords_reorder_planes(tmp_path):
    cube = flux(grz_cube(3))
    plain = read_grz(write_cube(tmp_path / "grz.fits", cube, bands=None))
    shuffled = read_grz(write_cube(tmp_path / "zgr.fits", cube[[2, 0, 1]], bands="zgr"))
    np.testing.assert_array_equal(plain.bands, shuffled.bands)
    assert plain.band_names == shuffled.band_names == ("g", "r", "z")
    four = read_grz(
        write_cube(tmp_path / "griz.fits", np.stack([*cube[:2], cube[0], cube[2]]), bands="griz")
    )
    np.testing.assert_array_equal(four.bands, cube)  # i dropped


def test_band_hdus_by_filter_equal_cube(tmp_path):
    cube = flux(grz_cube(5))
    root = tmp_path / "hdus"
    write_cube(root / "A" / "cube.fits", cube)
    # stored r, z, g with DECam-style FILTER values: reordered to g, r, z
    write_hdus(
        root / "A" / "filters.fits",
        [cube[1], cube[2], cube[0]],
        ["r DECam SDSS c0002", "z DECam SDSS c0004", "g DECam SDSS c0001"],
    )
    write_hdus(root / "A" / "plain.fits", list(cube), None)  # no keywords: HDU order
    src = open_source(root)
    assert isinstance(src, FitsFolderSource)
    by_cube, by_filter, plain = (src[i] for i in range(3))
    assert by_cube.meta["file_name"] == "cube" and by_filter.meta["layout"] == "hdus"
    np.testing.assert_array_equal(by_filter.image, by_cube.image)
    np.testing.assert_array_equal(plain.image, by_cube.image)
    assert by_filter.meta["bands"] == "g,r,z"


# ----------------------------------------------------------------------------- the stretch


def test_synthetic_renderer_uses_the_shared_stretch(monkeypatch):
    seen = []
    real = synth.asinh_rgb

    def spy(bands, softening, maximum):
        seen.append((np.array(bands), softening, maximum))
        return real(bands, softening, maximum)

    monkeypatch.setattr(synth, "asinh_rgb", spy)
    cfg = synth.GalaxySynthConfig(n=10, size=64, seed=4)
    image, _ = synth.render_galaxy(5, np.random.default_rng([4, 0]), cfg)
    ((bands, s, m),) = seen
    assert (s, m) == (cfg.stretch_softening, cfg.stretch_max)
    np.testing.assert_array_equal(image, asinh_rgb(bands, s, m))
    src_defaults = FitsFolderSource.__init__.__defaults__
    assert src_defaults == (cfg.stretch_softening, cfg.stretch_max)


def test_synthetic_noise_unit_cube_gives_the_same_bytes_through_fits(tmp_path, monkeypatch):
    seen = []
    real = synth.asinh_rgb
    monkeypatch.setattr(
        synth, "asinh_rgb", lambda b, s, m: seen.append(np.array(b)) or real(b, s, m)
    )
    cfg = synth.GalaxySynthConfig(n=10, size=64, seed=1)
    rendered, _ = synth.render_galaxy(9, np.random.default_rng([1, 2]), cfg)
    units = seen[0]  # the synthetic bands in noise sigmas, sky 0
    root = tmp_path / "synth"
    write_cube(root / "Edge-on with Bulge" / "g.fits", flux(units))
    got = open_source(root)[0].image
    # exactly: the noise-unit bands re-estimated from the flux file, through the same stretch
    np.testing.assert_array_equal(
        got, asinh_rgb(np.stack([to_noise_units(b, *sky_stats(b)) for b in units]))
    )
    # and close to the synthetic image itself (only the per-galaxy sky noise estimate differs)
    diff = np.abs(got.astype(int) - rendered.astype(int))
    assert np.median(diff) <= 1 and np.percentile(diff, 99) <= 6, (np.median(diff), diff.max())


def test_nan_pixels_become_sky(tmp_path):
    cube = flux(grz_cube(7))
    cube[:, 0, :5] = np.nan
    cube[1, 10, 10] = np.inf
    clean = flux(grz_cube(7))
    write_cube(tmp_path / "A" / "nan.fits", cube)
    s = FitsFolderSource(tmp_path)[0]
    assert all(np.isfinite(s.meta[k]) for k in ("sky_g", "sigma_g", "sky_r", "sigma_r"))
    assert s.meta["sky_r"] == pytest.approx(sky_stats(clean[1])[0], abs=0.05)
    img = s.image
    assert (img[0, :5] == 0).all() and img[10, 10, 1] == 0
    units = to_noise_units(cube[1], *sky_stats(cube[1]))
    assert units[10, 10] == 0.0 and (units[0, :5] == 0.0).all() and np.isfinite(units).all()
    ref = expected_image(clean)
    keep = np.ones((SIDE, SIDE), bool)
    keep[0, :5] = keep[10, 10] = False
    assert np.abs(img[keep].astype(int) - ref[keep].astype(int)).max() <= 1  # others unchanged


# ----------------------------------------------------------------------------- bad input


@pytest.mark.parametrize(
    ("name", "writer", "needles"),
    [
        ("four.fits", lambda p: write_cube(p, np.ones((4, 8, 8)), bands=None), ["(4, 8, 8)"]),
        (
            "flat.fits",
            lambda p: write_cube(p, np.ones((8, 8)), bands=None),
            ["1 2-D image HDU", "expected"],
        ),
        (
            "table.fits",
            lambda p: fits.HDUList(
                [
                    fits.PrimaryHDU(),
                    fits.BinTableHDU.from_columns(
                        [fits.Column(name="x", format="E", array=np.ones(3))]
                    ),
                ]
            ).writeto(p),
            ["no image HDU"],
        ),
        ("nan.fits", lambda p: write_cube(p, np.full((3, 8, 8), np.nan)), ["band g", "NaN only"]),
        ("const.fits", lambda p: write_cube(p, np.ones((3, 8, 8))), ["band g", "constant"]),
        ("junk.fits", lambda p: p.write_bytes(b"SIMPLE  = nonsense" * 10), ["cannot read FITS"]),
        (
            "shapes.fits",
            lambda p: write_hdus(p, [np.ones((8, 8)), np.ones((8, 8)), np.ones((6, 8))], None),
            ["differ in shape"],
        ),
        (
            "gri.fits",
            lambda p: write_hdus(p, [np.ones((8, 8))] * 4, ["g", "r", "i", "y"]),
            ["no z band"],
        ),
    ],
)
def test_bad_files_name_file_and_problem(tmp_path, name, writer, needles):
    root = tmp_path / "bad"
    (root / "A").mkdir(parents=True)
    writer(root / "A" / name)
    src = open_source(root)  # listing does not open files
    with pytest.raises(DataError) as excinfo:
        src[0]
    assert_data_error(excinfo, name, *needles)


def test_bad_folders(tmp_path):
    root = tmp_path / "nofits"
    (root / "A").mkdir(parents=True)
    (root / "A" / "x.fits").write_bytes(b"")
    (root / "B").mkdir()
    (root / "B" / "readme.txt").write_text("no cutouts")
    with pytest.raises(DataError) as excinfo:
        FitsFolderSource(root)
    assert_data_error(excinfo, "B", "no FITS files")
    with pytest.raises(DataError) as excinfo:
        FitsFolderSource(tmp_path / "missing")
    assert_data_error(excinfo, "missing", "no such folder")


def test_spectra_folder_still_goes_to_the_spectra_reader(spectra_dir):
    src = open_source(spectra_dir, task="class")
    assert src.kind == "spectrum" and not isinstance(src, FitsFolderSource)


# ----------------------------------------------------------------------------- environment


def test_galaxy_env_runs_on_a_fits_folder(tmp_path):
    root = make_folder(tmp_path / "cutouts", per_class=2)
    env = gymnasium.make(GALAXY_ID, data=str(root), split="all", view_size=32)
    for policy in (OraclePolicy(), RandomPolicy(seed=0, tool_prob=1.0)):
        for index in range(2):
            obs, info = env.reset(seed=index, options={"index": index})
            assert obs["image"].shape == (32, 32, 3)
            assert "cut0" not in str(info["messages"]) and "150." not in str(info["messages"])
            done = False
            while not done:
                reply = asyncio.run(policy.act(info))
                obs, reward, term, trunc, info = env.step(reply.text)
                done = term or trunc
            if isinstance(policy, OraclePolicy):
                assert info["correct"]
