"""Bad data and bad env settings end in one line naming the file, the field and the problem.

Each case here was a traceback (or a 28 GiB allocation) before: boxes of the wrong shape or NaN,
linear or nm wavelengths, one-pixel spectra, symlink loops, dangling HDF5 links, a galaxy file in the
spectrum env (and back), oversized images and views, ``--out`` of the wrong kind, an unknown
compression.
"""

from __future__ import annotations

import io
import os
import shutil
import subprocess
import sys
import warnings
from pathlib import Path

import gymnasium
import h5py
import numpy as np
import pytest
from astropy.io import fits
from PIL import Image
from test_real_spectra import (
    CFG,
    desi_coadd_hdulist,
    lamost_image_hdulist,
    lamost_table_hdulist,
    redrock_hdulist,
)
from test_spectra_data import _good, _with_coadd, _write

import astroreason.envs  # noqa: F401 - registers the ids
from astroreason.cli import main
from astroreason.data import open_source, source_kind
from astroreason.data.base import MAX_IMAGE_SIDE, check_wavelength, file_fingerprint
from astroreason.data.quality.boxes import has_own_boxes, with_target_boxes
from astroreason.data.readers.desi import DESISpectraSource
from astroreason.data.readers.fits_folder import FitsFolderSource
from astroreason.data.readers.folder import ImageFolderSource
from astroreason.data.readers.galaxy10 import Galaxy10Source, repack
from astroreason.data.readers.hf_dataset import decode_image
from astroreason.data.readers.lamost import LAMOSTSpectraSource
from astroreason.data.readers.sdss import SDSSSpectraSource
from astroreason.data.synthesis.galaxy import GalaxySynthConfig, write_galaxy_file
from astroreason.data.synthesis.spectra import SpectraSynthConfig, make_spectrum, write_spectra_dir
from astroreason.envs import GALAXY_ID, SPECTRUM_ID, GalaxyEnvConfig, SpectrumEnvConfig
from astroreason.errors import ConfigError, DataError
from astroreason.traces import read_traces


@pytest.fixture(scope="module")
def gfile(tmp_path_factory) -> Path:
    """A small synthetic galaxy file (20 rows, 32 px, with ground-truth boxes)."""
    path = tmp_path_factory.mktemp("hard") / "G.h5"
    return write_galaxy_file(path, GalaxySynthConfig(n=20, size=32, seed=1), progress=False)


def copy_of(gfile: Path, tmp_path: Path, name: str = "G.h5") -> Path:
    out = tmp_path / name
    shutil.copy(gfile, out)
    return out


def cli_error(args: list[str], capsys) -> str:
    """Run the CLI, expect exit status 2 and one ``error:`` line; return that line."""
    with pytest.raises(SystemExit) as excinfo:
        main([str(a) for a in args])
    assert excinfo.value.code == 2
    out, err = capsys.readouterr()
    assert "Traceback" not in out + err
    lines = [ln for ln in err.strip().splitlines() if ln.strip()]
    assert len(lines) == 1, err
    assert lines[0].startswith("error: ")
    return lines[0]


def cli_ok(args: list[str]) -> None:
    try:
        main([str(a) for a in args])
    except SystemExit as exc:
        assert exc.code in (0, None)


# ----------------------------------------------------------------------------- 1. boxes
def test_bbox_with_two_columns_is_one_error_line(gfile, tmp_path, capsys):
    f = copy_of(gfile, tmp_path)
    with h5py.File(f, "a") as h:
        del h["bbox"]
        h["bbox"] = np.zeros((20, 2), np.float32)
    with pytest.raises(DataError, match=r"G.h5: bbox: shape \(20, 2\).*expected \(N, 4\)"):
        Galaxy10Source(f)
    line = cli_error(
        ["rollout", "--data", f, "--policy", "oracle", "--episodes", 2, "--out", tmp_path / "D"],
        capsys,
    )
    assert "G.h5: bbox: shape (20, 2)" in line


def test_bbox_nan_in_some_rows_is_an_error(gfile, tmp_path):
    f = copy_of(gfile, tmp_path)
    with h5py.File(f, "a") as h:
        h["bbox"][3] = np.nan
    with pytest.raises(DataError, match=r"G.h5: bbox: non-finite box .* at row 3 \(1 of 20"):
        Galaxy10Source(f)


def test_bbox_all_nan_falls_back_to_detected_boxes(gfile, tmp_path):
    f = copy_of(gfile, tmp_path)
    with h5py.File(f, "a") as h:
        h["bbox"][...] = np.nan
    with pytest.warns(UserWarning, match="bbox: no finite box in any row"):
        src = Galaxy10Source(f)
    assert "bbox" not in src[0].meta and not has_own_boxes(src)
    boxed = with_target_boxes(src, rows=[0, 1], progress=False)
    assert len(boxed[0].meta["bbox"]) == 4 and np.isfinite(boxed[0].meta["bbox"]).all()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        cli_ok(
            ["rollout", "--data", f, "--policy", "oracle", "--split", "all"]
            + ["--episodes", 2, "--out", tmp_path / "D"]
        )
    recs = list(read_traces(tmp_path / "D"))
    assert len(recs) == 2
    assert all(r["ground_truth"]["bbox_method"] in ("photutils", "centre") for r in recs)


# ----------------------------------------------------------------------------- 2, 3. spectra
def sdss_with_loglam(tmp_path: Path, name: str, loglam: np.ndarray) -> Path:
    s = _good()
    n = loglam.size
    hdul = _with_coadd(s)
    hdul[1] = fits.BinTableHDU.from_columns(
        [
            fits.Column(name="flux", format="E", array=np.ones(n, np.float32)),
            fits.Column(name="loglam", format="E", array=loglam.astype(np.float32)),
            fits.Column(name="ivar", format="E", array=np.ones(n, np.float32)),
        ],
        name="COADD",
    )
    folder = tmp_path / name
    folder.mkdir()
    return _write(folder / "spec-0001-50000-0001.fits", hdul).parent


def test_sdss_linear_loglam_names_the_file(tmp_path):
    s = _good()
    folder = sdss_with_loglam(tmp_path, "lin", 10.0 ** s.loglam.astype(np.float64))
    src = SDSSSpectraSource(folder)
    with pytest.raises(
        DataError, match=r"spec-0001-50000-0001.fits: COADD.loglam: .*loglam holds linear wave"
    ) as excinfo:
        src[0]
    assert "\n" not in str(excinfo.value)
    # through the env, as a rollout meets it
    env = gymnasium.make(SPECTRUM_ID, data=str(folder), split="all")
    with pytest.raises(DataError, match="spec-0001-50000-0001.fits"):
        env.reset(seed=0)


def test_sdss_one_pixel_spectrum_is_too_short(tmp_path, capsys):
    folder = sdss_with_loglam(tmp_path, "one", np.array([3.6]))
    with pytest.raises(
        DataError, match=r"spec-0001-50000-0001.fits: COADD.loglam: too short: 1 pix"
    ):
        SDSSSpectraSource(folder)[0]
    with pytest.raises(SystemExit) as excinfo:
        main(
            ["rollout", "--data", str(folder), "--env", "spectrum", "--split", "all"]
            + ["--policy", "oracle", "--episodes", "1", "--out", str(tmp_path / "D")]
        )
    assert excinfo.value.code == 2
    out, err = capsys.readouterr()
    assert "Traceback" not in out + err
    assert err.strip().splitlines()[-1].startswith("error: ")
    assert "spec-0001-50000-0001.fits: COADD.loglam: too short" in err


def test_sdss_loglam_of_nm_is_refused(tmp_path):
    s = _good()
    folder = sdss_with_loglam(tmp_path, "nm", s.loglam.astype(np.float64) - 1.0)
    with pytest.raises(DataError, match=r"COADD.loglam: median wavelength .* looks like nm"):
        SDSSSpectraSource(folder)[0]


def test_check_wavelength_names_the_unit():
    grid = np.linspace(3800.0, 9200.0, 100)
    assert check_wavelength("f", grid, "w") is not None
    for scale, unit in ((0.1, "nm"), (1e-4, "micron")):
        with pytest.raises(DataError, match=rf"f: w: median wavelength .* looks like {unit}"):
            check_wavelength("f", grid * scale, "w")
    with pytest.raises(DataError, match="looks like log10"):
        check_wavelength("f", np.log10(grid), "w")
    with pytest.raises(DataError, match="too short: 15 pixels"):
        check_wavelength("f", grid[:15], "w")
    with pytest.raises(DataError, match="strictly increasing"):
        check_wavelength("f", grid[::-1], "w")


def test_lamost_wavelength_in_nm_is_refused(tmp_path):
    s = make_spectrum(0, CFG)
    table = lamost_table_hdulist(s)
    cols = [
        fits.Column(name=c.name, format=c.format, array=c.array / 10.0)
        if c.name == "WAVELENGTH"
        else c
        for c in table[1].columns
    ]
    table[1] = fits.BinTableHDU.from_columns(cols, name="COADD")
    table.writeto(tmp_path / "spec-1-a_sp01-001.fits")
    src = LAMOSTSpectraSource(tmp_path / "spec-1-a_sp01-001.fits")
    with pytest.raises(
        DataError, match=r"spec-1-a_sp01-001.fits: HDU1.wavelength: .* looks like nm; expected Ang"
    ):
        src[0]
    image = lamost_image_hdulist(s)
    image[0].data = image[0].data[:, :10]
    image.writeto(tmp_path / "spec-1-a_sp01-002.fits")
    with pytest.raises(DataError, match=r"PRIMARY.wavelength: too short: 10 pixels"):
        LAMOSTSpectraSource(tmp_path / "spec-1-a_sp01-002.fits")[0]


def test_desi_wavelength_in_nm_is_refused(tmp_path):
    s = make_spectrum(0, CFG)
    tid = [39627000000000001]
    coadd = desi_coadd_hdulist([s], tid, ["TGT"])
    for cam in "BRZ":
        coadd[f"{cam}_WAVELENGTH"].data = coadd[f"{cam}_WAVELENGTH"].data / 10.0
    coadd.writeto(tmp_path / "coadd-main-dark-1.fits")
    redrock_hdulist(tid, [s.cls], [""], [s.z]).writeto(tmp_path / "redrock-main-dark-1.fits")
    src = DESISpectraSource(tmp_path / "coadd-main-dark-1.fits")
    with pytest.raises(DataError, match=r"coadd-main-dark-1.fits: B_WAVELENGTH/.*looks like nm"):
        src[0]


# ----------------------------------------------------------------------------- 4. symlink loops
def image_folder(root: Path) -> Path:
    rng = np.random.default_rng(0)
    for cls in ("a", "b"):
        (root / cls).mkdir(parents=True)
        for i in range(3):
            Image.fromarray(rng.integers(0, 255, (16, 16, 3), dtype=np.uint8)).save(
                root / cls / f"{i}.png"
            )
    return root


def test_symlink_loop_in_an_image_folder_is_skipped_with_a_warning(tmp_path):
    root = image_folder(tmp_path / "img")
    os.symlink("loop2.png", root / "a" / "loop1.png")
    os.symlink("loop1.png", root / "a" / "loop2.png")
    os.symlink("gone.png", root / "b" / "dangling.png")
    os.symlink("c", root / "c")  # a class folder that loops
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        src = ImageFolderSource(root)
    messages = sorted(str(w.message) for w in record)
    assert len(messages) == 4, messages
    assert any("loop1.png: skipped: is a symlink loop" in m for m in messages)
    assert any("dangling.png: skipped: is a dangling symlink" in m for m in messages)
    assert any(m.endswith("/c: skipped: is a symlink loop") for m in messages)
    assert len(src) == 6 and src.class_names == ("a", "b")
    assert len(file_fingerprint(root)) == 16  # the fingerprint skips them too
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        cli_ok(
            ["rollout", "--data", root, "--policy", "random", "--split", "all"]
            + ["--episodes", 1, "--out", tmp_path / "D"]
        )


def test_the_cli_prints_a_skipped_file_as_one_warning_line(tmp_path):
    root = image_folder(tmp_path / "img")
    os.symlink("gone.png", root / "b" / "dangling.png")
    cmd = [sys.executable, "-m", "astroreason", "data", "info", str(root)]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    line = f"warning: {root / 'b' / 'dangling.png'}: skipped: is a dangling symlink"
    assert done.stderr.splitlines() == [line]
    debug = [*cmd[:3], "--debug", *cmd[3:]]
    debug = subprocess.run(debug, capture_output=True, text=True, timeout=120)
    assert "AstroReasonWarning: " in debug.stderr  # --debug keeps Python's form


# ----------------------------------------------------------------------------- 5. HDF5 links
@pytest.mark.parametrize("key", ["extra", "ra", "images"])
def test_external_link_to_a_missing_file_is_one_error_line(gfile, tmp_path, capsys, key):
    f = copy_of(gfile, tmp_path)
    with h5py.File(f, "a") as h:
        if key in h:
            del h[key]
        h[key] = h5py.ExternalLink("missing.h5", "/x")
    with pytest.raises(DataError, match=rf"G.h5: {key}: external link to missing.h5:/x cannot be"):
        Galaxy10Source(f)
    line = cli_error(["data", "info", f], capsys)
    assert f"G.h5: {key}: external link to missing.h5" in line


# ----------------------------------------------------------------------------- 6. env vs data
def test_spectrum_env_on_a_galaxy_file_and_back(gfile, spectra_dir, tmp_path, capsys):
    line = cli_error(
        ["rollout", "--data", gfile, "--env", "spectrum", "--policy", "random"]
        + ["--episodes", 2, "--out", tmp_path / "D1"],
        capsys,
    )
    assert "G.h5 holds images; --env spectrum" in line and "needs spectra" in line
    line = cli_error(
        ["rollout", "--data", spectra_dir, "--env", "galaxy", "--policy", "random"]
        + ["--episodes", 2, "--out", tmp_path / "D2"],
        capsys,
    )
    assert "holds spectra; --env galaxy" in line and "needs images" in line
    assert not (tmp_path / "D1").exists()
    with pytest.raises(ConfigError, match="holds images"):
        gymnasium.make(SPECTRUM_ID, data=open_source(gfile))
    assert source_kind(gfile) == "image" and source_kind(spectra_dir) == "spectrum"
    with pytest.raises(DataError, match=r"G.h5: holds images \(Galaxy10Source\).*no option 'task'"):
        open_source(gfile, task="class")


# ----------------------------------------------------------------------------- 7. sizes
def test_oversized_images_are_refused_before_pixels_are_read(tmp_path, capsys):
    f = tmp_path / "tall.h5"
    with h5py.File(f, "w") as h:
        h.create_dataset("images", shape=(3, MAX_IMAGE_SIDE + 1, 1, 3), dtype=np.uint8)
        h["ans"] = np.arange(3, dtype=np.uint8)
    with pytest.raises(DataError, match=rf"tall.h5: images: images of {MAX_IMAGE_SIDE + 1} x 1"):
        Galaxy10Source(f)
    line = cli_error(["data", "info", f], capsys)
    assert "over the limit of 4096 pixels a side" in line

    wide = np.zeros((2, MAX_IMAGE_SIDE + 1, 3), np.uint8)
    root = image_folder(tmp_path / "img")
    Image.fromarray(wide).save(root / "a" / "wide.png")
    src = ImageFolderSource(root)
    with pytest.raises(DataError, match=r"wide.png: images of 2 x 4097 pixels: over the limit"):
        src[src.metadata()["file_name"].tolist().index("wide")]

    buf = io.BytesIO()
    Image.fromarray(wide).save(buf, format="PNG")
    with pytest.raises(DataError, match=r"data.parquet: image \(row 7\): images of 2 x 4097"):
        decode_image(buf.getvalue(), "data.parquet", "image", 7, [])

    fits_root = tmp_path / "cutouts"
    (fits_root / "Merging").mkdir(parents=True)
    cube = fits.PrimaryHDU(np.zeros((3, 2, MAX_IMAGE_SIDE + 1), np.float32))
    cube.writeto(fits_root / "Merging" / "big.fits")
    with pytest.raises(DataError, match=r"big.fits: images of 2 x 4097 pixels"):
        FitsFolderSource(fits_root)[0]


def test_view_sizes_are_bounded(gfile, spectra_dir, tmp_path, capsys):
    line = cli_error(
        ["rollout", "--data", gfile, "--policy", "random", "--episodes", 1]
        + ["--view-size", 100000, "--out", tmp_path / "D"],
        capsys,
    )
    assert line == "error: view_size: must be 16..2048 pixels, got 100000"
    for flag in ("--view-width", "--view-height"):
        line = cli_error(
            ["rollout", "--data", spectra_dir, "--env", "spectrum", "--policy", "random"]
            + ["--episodes", 1, flag, 100000, "--out", tmp_path / "D"],
            capsys,
        )
        assert "must be" in line and "2048 pixels, got 100000" in line
    with pytest.raises(ConfigError, match="view_size: must be 16..2048"):
        GalaxyEnvConfig(view_size=8)
    with pytest.raises(ConfigError, match="view_size: must be an integer"):
        gymnasium.make(GALAXY_ID, data=str(gfile), view_size="big")
    with pytest.raises(ConfigError, match="view_height: must be 48..2048"):
        SpectrumEnvConfig(view_height=4000)
    with pytest.raises(ConfigError, match="no-tools-matched would plot"):
        gymnasium.make(
            SPECTRUM_ID, data=str(spectra_dir), condition="no-tools-matched", max_tool_calls=100
        )


# ----------------------------------------------------------------------------- 8. --out
def test_synth_out_of_the_wrong_kind(tmp_path, capsys):
    folder = tmp_path / "EXISTING_DIR"
    folder.mkdir()
    line = cli_error(["data", "synth", "galaxy", "--n", 10, "--size", 32, "--out", folder], capsys)
    assert "EXISTING_DIR: is a folder" in line
    file = tmp_path / "EXISTING_FILE"
    file.write_text("x")
    line = cli_error(["data", "synth", "spectra", "--n", 4, "--out", file], capsys)
    assert "EXISTING_FILE: exists and is a file" in line
    with pytest.raises(
        DataError, match=r"EXISTING_FILE/sub: cannot make this folder: .* is a file"
    ):
        write_spectra_dir(file / "sub", SpectraSynthConfig(n=4), progress=False)


# ----------------------------------------------------------------------------- 9. repack
def test_repack_unknown_compression_lists_the_choices(gfile, tmp_path, capsys):
    line = cli_error(
        ["data", "repack", gfile, tmp_path / "OUT.h5", "--compression", "zstd"], capsys
    )
    assert line == "error: compression: unknown 'zstd'; choose None, lzf or gzip"
    assert not (tmp_path / "OUT.h5").exists()
    out = repack(gfile, tmp_path / "plain.h5", compression="None")
    with h5py.File(out) as h:
        assert h["images"].compression is None
    with pytest.raises(DataError, match="is a folder"):
        repack(gfile, tmp_path, compression="gzip")


def test_datasets_inside_groups_are_read_as_columns(tmp_path):
    """``meta/redshift`` is a column like a top-level one; a group's non-row dataset is left alone."""
    import h5py
    import numpy as np

    from astroreason.data import open_source
    from astroreason.data.synthesis.galaxy import GalaxySynthConfig, write_galaxy_file

    path = tmp_path / "g.h5"
    write_galaxy_file(path, GalaxySynthConfig(n=20, size=64, seed=1), progress=False)
    with h5py.File(path, "a") as f:
        f["meta/redshift"] = np.linspace(0, 1, 20)
        f["meta/deep/flag"] = np.arange(20) % 2
        f["meta/config"] = np.arange(3)
    src = open_source(path)
    assert src[5].meta["meta/redshift"] == pytest.approx(5 / 19)
    assert src[5].meta["meta/deep/flag"] == 1 and "meta/config" not in src[5].meta


def test_a_spectrum_too_long_is_refused():
    import numpy as np

    from astroreason.data.base import MAX_SPECTRUM_PIXELS, check_wavelength
    from astroreason.errors import DataError

    wl = np.linspace(3800, 9200, MAX_SPECTRUM_PIXELS + 1)
    with pytest.raises(DataError, match="too long"):
        check_wavelength("s.fits", wl, "loglam")
    assert check_wavelength("s.fits", wl[:4600], "loglam").size == 4600
