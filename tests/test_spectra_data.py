"""SDSS spectrum reader and synthetic spectra writer: round trips, labels, determinism, bad input."""

from __future__ import annotations

import io
import os
import pickle
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from astropy.io import fits

from astroreason.data import open_source
from astroreason.data.classes import SPECTRUM_CLASSES, SPECTRUM_SUBCLASSES
from astroreason.data.readers import sdss as sdss_module
from astroreason.data.readers.sdss import SDSSSpectraSource, subclass_family
from astroreason.data.synthesis.spectra import (
    H_ALPHA,
    NII,
    SpectraSynthConfig,
    make_spectrum,
    spectrum_bytes,
    spectrum_hdulist,
    write_spectra_dir,
)
from astroreason.errors import ConfigError, DataError


def _hdu2(path: Path) -> tuple[str, str, float]:
    with fits.open(path) as hdul:
        row = hdul[2].data[0]
        return str(row["CLASS"]).strip(), str(row["SUBCLASS"]).strip(), float(row["Z"])


def _files(folder: Path) -> list[Path]:
    return sorted(folder.glob("spec-*.fits"))


# ----------------------------------------------------------------------------- round trips


def test_class_task_labels_match_hdu2(spectra_dir):
    src = open_source(spectra_dir, task="class")
    assert isinstance(src, SDSSSpectraSource)
    assert src.kind == "spectrum"
    assert src.class_names == SPECTRUM_CLASSES
    files = _files(spectra_dir)
    assert len(src) == len(files) == 32
    labels = src.labels()
    assert labels.dtype == np.int64
    for i, f in enumerate(files):
        cls, _, _ = _hdu2(f)
        assert src.class_names[labels[i]] == cls
        assert src[i].meta["file_name"] == f.name
        assert src[i].meta["class"] == cls
    assert set(labels.tolist()) == {0, 1, 2}
    # STAR : GALAXY : QSO = 1 : 2 : 1
    assert src.class_counts().tolist() == [8, 16, 8]


def test_subclass_task_labels_are_balanced_families(spectra_dir):
    src = open_source(spectra_dir, task="subclass")
    assert src.class_names == SPECTRUM_SUBCLASSES
    labels = src.labels()
    for i, f in enumerate(_files(spectra_dir)):
        cls, sub, _ = _hdu2(f)
        assert src.class_names[labels[i]] == subclass_family(cls, sub)
        if cls == "GALAXY":
            assert (
                src.class_names[labels[i]] == f"GALAXY {'AGN' if sub == 'AGN' else 'STARFORMING'}"
            )
    assert src.class_counts().tolist() == [8, 8, 8, 8]
    # file names are random ids, so sorted order is not sorted by class
    assert np.any(np.diff(labels) < 0) and np.any(np.diff(labels) > 0)


def test_spectra_grid_mask_and_meta(spectra_dir):
    src = open_source(spectra_dir, task="subclass")
    n_bad = 0
    for i in range(len(src)):
        s = src[i]
        sp = s.spectrum
        assert s.image is None and s.row_id == i
        assert sp.wavelength.dtype == np.float64
        assert sp.flux.dtype == np.float32 and sp.ivar.dtype == np.float32
        assert 3790 < sp.wavelength[0] < 3800 and 9190 < sp.wavelength[-1] < 9210
        assert np.all(np.diff(sp.wavelength) > 0)
        # loglam is float32 (as in SDSS files): steps of 1e-4 to within its rounding
        np.testing.assert_allclose(np.diff(np.log10(sp.wavelength)), 1e-4, rtol=5e-3)
        np.testing.assert_array_equal(sp.mask, sp.ivar == 0)
        assert 2 <= sp.mask.sum() < 40  # a few bad pixels, never many
        n_bad += int(sp.mask.sum())
        assert np.all(np.isfinite(sp.flux))
        m = s.meta
        wmin, wmax = m["key_window"]
        assert sp.wavelength[0] <= wmin < wmax <= sp.wavelength[-1]
        assert 40 < wmax - wmin < 600
        name = f"spec-{m['plate']:04d}-{m['mjd']:05d}-{m['fiber']:04d}.fits"
        assert m["file_name"] == name
        assert m["zwarning"] == 0
        family = src.class_names[s.label]
        if family.startswith("GALAXY"):
            assert 0.02 <= m["z"] <= 0.25
            # the key window holds H-alpha and both [N II] lines at the galaxy's redshift
            assert wmin < NII[0] * (1 + m["z"]) and NII[1] * (1 + m["z"]) < wmax
        elif family == "QSO BROADLINE":
            assert 0.3 <= m["z"] <= 2.5
        else:
            assert abs(m["z"]) < 0.001
            assert m["subclass"] in ("A0", "F5", "G2", "K5", "M2")
    assert n_bad > 0
    meta = src.metadata()
    assert set(meta) == {"z", "zwarning", "plate", "mjd", "fiber", "file_name"}
    assert meta["file_name"].dtype == object
    assert all(len(v) == len(src) for v in meta.values())
    assert meta["z"].dtype == np.float64 and meta["plate"].dtype == np.int64


def test_single_file_and_pickle(spectra_dir):
    f = _files(spectra_dir)[3]
    one = open_source(f, task="subclass")
    assert len(one) == 1
    folder = open_source(spectra_dir, task="subclass")
    np.testing.assert_array_equal(one[0].spectrum.flux, folder[3].spectrum.flux)
    back = pickle.loads(pickle.dumps(folder))
    np.testing.assert_array_equal(back.labels(), folder.labels())
    np.testing.assert_array_equal(back[5].spectrum.flux, folder[5].spectrum.flux)
    assert back[5].meta == folder[5].meta


def test_labels_are_read_without_loading_spectra(spectra_dir, monkeypatch):
    def boom(path):
        raise AssertionError(f"spectrum of {path} read eagerly")

    monkeypatch.setattr(sdss_module, "read_spectrum", boom)
    src = SDSSSpectraSource(spectra_dir, task="subclass")
    assert len(src.labels()) == 32 and len(src.metadata()["z"]) == 32
    with pytest.raises(AssertionError, match="read eagerly"):
        src[0]


def test_subclass_family_mapping():
    assert subclass_family("STAR", "K5 (100450)") == "STAR"
    assert subclass_family("galaxy", "STARBURST BROADLINE") == "GALAXY STARFORMING"
    assert subclass_family("GALAXY", "STARFORMING") == "GALAXY STARFORMING"
    assert subclass_family("GALAXY", "AGN BROADLINE") == "GALAXY AGN"
    assert subclass_family("QSO", "BROADLINE") == "QSO BROADLINE"
    assert subclass_family("GALAXY", "") is None
    assert subclass_family("QSO", "") is None
    assert subclass_family("UNKNOWN", "AGN") is None


# ----------------------------------------------------------------------------- the synthetic physics


def _peak(wave, model, center):
    sel = np.abs(wave - center) < 3
    return float(model[sel].max())


def test_star_forming_and_agn_differ_only_in_narrow_line_ratios():
    """[N II]/H-alpha splits the classes; the lines are narrow and 21 A apart."""
    cfg = SpectraSynthConfig(n=40, seed=11)
    ratios = {"GALAXY STARFORMING": [], "GALAXY AGN": []}
    zs = {"GALAXY STARFORMING": [], "GALAXY AGN": []}
    for i in range(cfg.n):
        s = make_spectrum(i, cfg)
        if s.family not in ratios:
            continue
        wave = 10 ** s.loglam.astype(np.float64)
        cont = np.median(s.model[np.abs(wave - 6630 * (1 + s.z)) < 20])
        ha = _peak(wave, s.model, H_ALPHA * (1 + s.z)) - cont
        nii = _peak(wave, s.model, NII[1] * (1 + s.z)) - cont
        ratios[s.family].append(nii / ha)
        zs[s.family].append(s.z)
        # narrow: resolved at full resolution, the flux falls back between H-alpha and [N II]
        valley = _peak(wave, s.model, (H_ALPHA + NII[1]) / 2 * (1 + s.z)) - cont
        assert valley < 0.25 * min(ha, nii)
    sf, agn = np.array(ratios["GALAXY STARFORMING"]), np.array(ratios["GALAXY AGN"])
    assert len(sf) == len(agn) == 10
    assert sf.max() < 0.6 and agn.min() > 0.8
    assert all(0.02 <= z <= 0.25 for z in zs["GALAXY STARFORMING"] + zs["GALAXY AGN"])


def test_m_stars_have_tio_steps_and_a_stars_balmer_lines():
    cfg = SpectraSynthConfig(n=40, seed=2)
    seen = set()
    for i in range(cfg.n):
        s = make_spectrum(i, cfg)
        wave = 10 ** s.loglam.astype(np.float64)

        def mean(lo, hi, model=s.model, wave=wave):
            return float(model[(wave > lo) & (wave < hi)].mean())

        if s.subclass == "M2":
            assert mean(7060, 7090) < 0.85 * mean(7020, 7050)  # the TiO band head at 7054
            seen.add("M2")
        if s.subclass == "A0":
            assert mean(4857, 4868) < 0.7 * mean(4930, 4960)  # deep, broad H-beta
            seen.add("A0")
    assert seen == {"M2", "A0"}


# ----------------------------------------------------------------------------- writer


def test_same_seed_same_bytes_and_fast_writer_matches_astropy(tmp_path):
    cfg = SpectraSynthConfig(n=12, seed=4)
    a = write_spectra_dir(tmp_path / "a", cfg, progress=False)
    b = write_spectra_dir(tmp_path / "b", cfg, progress=False)
    c = write_spectra_dir(tmp_path / "c", replace(cfg, seed=5), progress=False)
    names = [f.name for f in _files(a)]
    assert len(names) == 12 and names == [f.name for f in _files(b)]
    for name in names:
        assert (a / name).read_bytes() == (b / name).read_bytes()
    assert names != [f.name for f in _files(c)]
    # no temporary folders left behind
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a", "b", "c"]
    # the direct byte writer produces exactly what astropy writes
    for i in range(4):
        s = make_spectrum(i, cfg)
        buf = io.BytesIO()
        spectrum_hdulist(s).writeto(buf)
        assert spectrum_bytes(s) == buf.getvalue()
    with fits.open(a / names[0]) as hdul:
        assert hdul[1].name == "COADD" and hdul[2].name == "SPALL"
        assert {"flux", "loglam", "ivar", "and_mask", "model"} <= set(hdul[1].columns.names)
        assert "DATE" not in hdul[0].header and "CHECKSUM" not in hdul[0].header
        np.testing.assert_array_equal(hdul[1].data["and_mask"] != 0, hdul[1].data["ivar"] == 0)


def test_writer_refuses_non_empty_folder_unless_overwrite(tmp_path):
    out = tmp_path / "spec"
    out.mkdir()
    (out / "keep.txt").write_text("mine")
    with pytest.raises(DataError, match="not empty"):
        write_spectra_dir(out, SpectraSynthConfig(n=4), progress=False)
    assert (out / "keep.txt").exists()
    write_spectra_dir(out, SpectraSynthConfig(n=4), progress=False, overwrite=True)
    assert not (out / "keep.txt").exists() and len(_files(out)) == 4
    assert sorted(p.name for p in tmp_path.iterdir()) == ["spec"]
    empty = tmp_path / "empty"
    empty.mkdir()
    write_spectra_dir(empty, SpectraSynthConfig(n=4), progress=False)
    assert len(_files(empty)) == 4


@pytest.mark.parametrize(
    "kwargs",
    [
        {"n": 0},
        {"seed": -1},
        {"z_galaxy": (0.3, 0.1)},
        {"z_galaxy": (0.02, 0.5)},  # [N II] would leave the grid
        {"snr": (0.0, 5.0)},
        {"nii_ha_agn": (1.0,)},
        {"bad_pixels": (2.5, 4)},
    ],
)
def test_bad_config_raises_config_error(kwargs):
    with pytest.raises(ConfigError):
        SpectraSynthConfig(**kwargs)


def test_bad_task_raises_config_error(spectra_dir):
    with pytest.raises(ConfigError, match="task"):
        SDSSSpectraSource(spectra_dir, task="type")


# ----------------------------------------------------------------------------- bad input


def _write(path: Path, hdul: fits.HDUList) -> Path:
    hdul.writeto(path)
    return path


def _good(i: int = 0):
    return make_spectrum(i, SpectraSynthConfig(n=8, seed=1))


def _with_coadd(s, **columns) -> fits.HDUList:
    hdul = spectrum_hdulist(s)
    cols = {c.name: c for c in hdul[1].columns}
    for name, col in columns.items():
        if col is None:
            cols.pop(name)
        else:
            cols[name] = col
    hdul[1] = fits.BinTableHDU.from_columns(list(cols.values()), name="COADD")
    return hdul


def _with_info(s, drop: str | None = None, **values) -> fits.HDUList:
    hdul = spectrum_hdulist(s)
    cols = []
    for c in hdul[2].columns:
        if c.name == drop:
            continue
        if c.name in values:
            cols.append(fits.Column(name=c.name, format="21A", array=np.array([values[c.name]])))
        else:
            cols.append(c)
    hdul[2] = fits.BinTableHDU.from_columns(cols, name="SPALL")
    return hdul


def test_missing_path_and_empty_folder(tmp_path):
    with pytest.raises(DataError, match="nope"):
        open_source(tmp_path / "nope")
    with pytest.raises(DataError, match="nope"):
        SDSSSpectraSource(tmp_path / "nope")
    folder = tmp_path / "folder"
    folder.mkdir()
    (folder / "notes.fits").write_text("not a spectrum")
    with pytest.raises(DataError, match=r"folder.*no spec-\*\.fits"):
        open_source(folder)


def test_not_fits_and_truncated(tmp_path):
    bad = tmp_path / "spec-0001-50000-0001.fits"
    bad.write_text("SIMPLE? no, this is a text file\n" * 10)
    with pytest.raises(DataError, match="spec-0001-50000-0001.fits.*not a readable FITS"):
        open_source(bad)
    data = spectrum_bytes(_good())
    for cut in (100, 2880 * 2 + 500, len(data) - 2880, len(data) - 2880 + 20):
        f = tmp_path / f"spec-0002-50000-{cut:04d}.fits"
        f.write_bytes(data[:cut])
        with pytest.raises(DataError, match=f"spec-0002-50000-{cut:04d}.fits.*truncated"):
            SDSSSpectraSource(f)


def test_missing_coadd_and_columns(tmp_path):
    s = _good()
    only_primary = _write(tmp_path / "spec-0003-50000-0001.fits", fits.HDUList([fits.PrimaryHDU()]))
    with pytest.raises(DataError, match="spec-0003-50000-0001.fits: COADD"):
        SDSSSpectraSource(only_primary)
    hdul = spectrum_hdulist(s)
    hdul[1] = fits.ImageHDU(np.zeros(10, np.float32), name="COADD")
    image = _write(tmp_path / "spec-0003-50000-0002.fits", hdul)
    with pytest.raises(DataError, match="spec-0003-50000-0002.fits: COADD: .*binary table"):
        SDSSSpectraSource(image)
    no_ivar = _write(tmp_path / "spec-0003-50000-0003.fits", _with_coadd(s, ivar=None))
    with pytest.raises(DataError, match="spec-0003-50000-0003.fits: COADD: missing column 'ivar'"):
        SDSSSpectraSource(no_ivar)
    no_hdu2 = _write(tmp_path / "spec-0003-50000-0004.fits", fits.HDUList(spectrum_hdulist(s)[:2]))
    with pytest.raises(DataError, match="spec-0003-50000-0004.fits: HDU2"):
        SDSSSpectraSource(no_hdu2)


def test_missing_class_and_labels_outside_the_task(tmp_path):
    s = _good()
    no_class = _write(tmp_path / "spec-0004-50000-0001.fits", _with_info(s, drop="CLASS"))
    with pytest.raises(DataError, match="spec-0004-50000-0001.fits: CLASS: missing column"):
        SDSSSpectraSource(no_class)
    odd = _write(tmp_path / "spec-0004-50000-0002.fits", _with_info(s, CLASS="BLAZAR"))
    with pytest.raises(DataError, match="spec-0004-50000-0002.fits: CLASS: .*'BLAZAR'"):
        SDSSSpectraSource(odd)
    plain = _with_info(s, CLASS="GALAXY", SUBCLASS="")
    plain_gal = _write(tmp_path / "spec-0004-50000-0003.fits", plain)
    assert SDSSSpectraSource(plain_gal, task="class").labels().tolist() == [1]
    with pytest.raises(DataError, match=r"spec-0004-50000-0003.fits: SUBCLASS: .*task='class'"):
        SDSSSpectraSource(plain_gal, task="subclass")
    # one bad file in a folder fails the folder, naming that file
    folder = tmp_path / "mixed"
    folder.mkdir()
    (folder / "spec-0001-50000-0001.fits").write_bytes(spectrum_bytes(_good(1)))
    os.replace(odd, folder / odd.name)
    with pytest.raises(DataError, match=odd.name):
        open_source(folder)


def test_no_valid_pixels_and_length_mismatch(tmp_path):
    s = _good()
    zero = fits.Column(name="ivar", format="E", array=np.zeros(s.flux.size, np.float32))
    dead = _write(tmp_path / "spec-0005-50000-0001.fits", _with_coadd(s, ivar=zero))
    src = SDSSSpectraSource(dead)  # labels are fine: the file is only known bad when loaded
    assert len(src) == 1
    with pytest.raises(DataError, match="spec-0005-50000-0001.fits: COADD.ivar: no valid pixels"):
        src[0]
    n = 100
    hdul = spectrum_hdulist(s)
    hdul[1] = fits.BinTableHDU.from_columns(
        [
            fits.Column(name="flux", format=f"{n}E", array=np.ones((1, n), np.float32)),
            fits.Column(name="loglam", format=f"{n - 1}E", array=np.ones((1, n - 1), np.float32)),
            fits.Column(name="ivar", format=f"{n}E", array=np.ones((1, n), np.float32)),
        ],
        name="COADD",
    )
    mismatch = _write(tmp_path / "spec-0005-50000-0002.fits", hdul)
    with pytest.raises(DataError, match="spec-0005-50000-0002.fits: COADD.flux: 100 values"):
        SDSSSpectraSource(mismatch)[0]


def test_ids_from_header_when_the_name_is_not_sdss(tmp_path):
    s = _good(2)
    f = tmp_path / "my_spectrum.fits"
    f.write_bytes(spectrum_bytes(s))
    m = SDSSSpectraSource(f)[0].meta
    assert (m["plate"], m["mjd"], m["fiber"]) == (s.plate, s.mjd, s.fiber)
    assert m["file_name"] == "my_spectrum.fits"
    assert m["key_window"] == pytest.approx(s.key_window)
