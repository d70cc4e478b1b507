"""Real survey layouts, made at test time: SDSS DR17 spec files without the synthetic key window,
DESI coadd + Redrock files, LAMOST LRS files (both layouts); the teacher's window on them; masks.

Nothing here is a real survey file: the flux comes from the project's synthesiser, written in each
survey's documented layout (SDSS spec data model, DESI data model ``coadd``/``redrock``, LAMOST LRS
1-D FITS), so no licence question arises.
"""

from __future__ import annotations

import json
import math
import re
from pathlib import Path

import gymnasium
import numpy as np
import pytest
from astropy.io import fits

import astroreason.envs  # noqa: F401 - registers the ids
from astroreason.data import open_source
from astroreason.data.lines import (
    GALAXY_FEATURES,
    features_for,
    line_window,
    overlaps,
    redshift_window,
    running_median,
    star_features,
    strongest_line,
    teacher_window,
)
from astroreason.data.readers.desi import DESISpectraSource, merge_cameras
from astroreason.data.readers.lamost import LAMOSTSpectraSource
from astroreason.data.readers.sdss import SDSSSpectraSource, read_spectrum
from astroreason.data.synthesis.spectra import FAMILIES, SpectraSynthConfig, make_spectrum
from astroreason.envs import SPECTRUM_ID
from astroreason.errors import DataError
from astroreason.policies import OraclePolicy, RandomPolicy
from astroreason.sync import run_sync
from astroreason.tools import render_spectrum, spectrum_overview, spectrum_window, window_table

BRIGHTSKY = 1 << 23  # SDSS SPPIXMASK bit with ivar > 0
CFG = SpectraSynthConfig(n=160, seed=7)


# ------------------------------------------------------------------------------------------
# writers: the surveys' layouts
# ------------------------------------------------------------------------------------------
def sdss_dr17_hdulist(s, plate=271, mjd=51883, fiber=397, ra=123.45678, dec=-12.34567):
    """An SDSS DR17 ``spec-PLATE-MJD-FIBER.fits``: COADD, SPECOBJ, SPZLINE; no KEY_WMIN/KEY_WMAX."""
    n = s.flux.size
    primary = fits.PrimaryHDU()
    h = primary.header
    h["TELESCOP"] = "SDSS 2.5-M"
    h["PLATEID"], h["MJD"], h["FIBERID"] = plate, mjd, fiber
    h["PLUG_RA"], h["PLUG_DEC"] = ra, dec
    h["COEFF0"], h["COEFF1"] = float(s.loglam[0]), 1e-4
    h["RUN2D"] = "v5_13_2"
    and_mask = s.and_mask.copy()
    and_mask[100:110] |= BRIGHTSKY  # flagged, yet ivar > 0
    coadd = fits.BinTableHDU.from_columns(
        [
            fits.Column(name="flux", format="E", array=s.flux),
            fits.Column(name="loglam", format="E", array=s.loglam),
            fits.Column(name="ivar", format="E", array=s.ivar),
            fits.Column(name="and_mask", format="J", array=and_mask),
            fits.Column(name="or_mask", format="J", array=and_mask),
            fits.Column(name="wdisp", format="E", array=np.full(n, 1.1, np.float32)),
            fits.Column(name="sky", format="E", array=np.zeros(n, np.float32)),
            fits.Column(name="model", format="E", array=s.model),
        ],
        name="COADD",
    )

    def col(name, fmt, value):
        return fits.Column(name=name, format=fmt, array=np.array([value]))

    specobj = fits.BinTableHDU.from_columns(
        [
            col("PLATE", "J", plate),
            col("MJD", "J", mjd),
            col("FIBERID", "J", fiber),
            col("PLUG_RA", "D", ra),
            col("PLUG_DEC", "D", dec),
            col("SPECOBJID", "K", 305093817592686592),
            col("CLASS", "6A", s.cls),
            col("SUBCLASS", "21A", s.subclass),
            col("Z", "E", np.float32(s.z)),
            col("Z_ERR", "E", np.float32(1.3e-5)),
            col("ZWARNING", "J", 0),
            col("SN_MEDIAN_ALL", "E", np.float32(11.7)),
        ],
        name="SPECOBJ",
    )
    spzline = fits.BinTableHDU.from_columns(
        [
            fits.Column(name="LINENAME", format="13A", array=np.array(["H_alpha"])),
            fits.Column(name="LINEWAVE", format="D", array=np.array([6564.61])),
            fits.Column(name="LINEZ", format="E", array=np.array([s.z], np.float32)),
        ],
        name="SPZLINE",
    )
    return fits.HDUList([primary, coadd, specobj, spzline])


def write_sdss_folder(folder: Path, indices) -> dict[str, object]:
    folder.mkdir()
    truth = {}
    for k, i in enumerate(indices):
        s = make_spectrum(i, CFG)
        name = f"spec-{271 + k:04d}-{51883 + k:05d}-{397 + k:04d}.fits"
        sdss_dr17_hdulist(s, plate=271 + k, mjd=51883 + k, fiber=397 + k).writeto(folder / name)
        truth[name] = s
    return truth


def _resample(s, grid):
    """The synthetic spectrum on another grid; pixels outside its coverage get ivar 0."""
    wl = 10.0 ** s.loglam.astype(np.float64)
    flux = np.interp(grid, wl, s.flux).astype(np.float32)
    ivar = np.interp(grid, wl, s.ivar).astype(np.float32)
    ivar[(grid < wl[0]) | (grid > wl[-1])] = 0
    flux[ivar == 0] = 0
    return flux, ivar


DESI_GRIDS = {
    "B": 3600.0 + 0.8 * np.arange(2751),
    "R": 5760.0 + 0.8 * np.arange(2326),
    "Z": 7520.0 + 0.8 * np.arange(2881),
}


def desi_coadd_hdulist(spectra, tids, objtypes, mask_rows=None):
    """A ``coadd-*.fits`` in the DESI data model's layout (FIBERMAP, per-camera HDUs, SCORES)."""
    nspec = len(spectra)
    fibermap = fits.BinTableHDU.from_columns(
        [
            fits.Column(name="TARGETID", format="K", array=np.array(tids, np.int64)),
            fits.Column(name="COADD_FIBERSTATUS", format="J", array=np.zeros(nspec, np.int32)),
            fits.Column(name="TARGET_RA", format="D", array=150.0 + 0.01 * np.arange(nspec)),
            fits.Column(name="TARGET_DEC", format="D", array=2.0 + 0.01 * np.arange(nspec)),
            fits.Column(name="OBJTYPE", format="3A", array=np.array(objtypes)),
            fits.Column(name="FLUX_R", format="E", array=np.ones(nspec, np.float32)),
        ],
        name="FIBERMAP",
    )
    hdus = [fits.PrimaryHDU(), fibermap]
    hdus[0].header["HPXPIXEL"] = 38863
    for cam, grid in DESI_GRIDS.items():
        flux = np.zeros((nspec, grid.size), np.float32)
        ivar = np.zeros((nspec, grid.size), np.float32)
        for k, s in enumerate(spectra):
            if s is not None:
                flux[k], ivar[k] = _resample(s, grid)
        mask = np.zeros((nspec, grid.size), np.int32)
        if mask_rows:
            for row, (lo, hi) in mask_rows.items():
                mask[row, (grid >= lo) & (grid <= hi)] = 1 << 3
        wave = fits.ImageHDU(grid, name=f"{cam}_WAVELENGTH")
        wave.header["BUNIT"] = "Angstrom"
        hdus += [
            wave,
            fits.ImageHDU(flux, name=f"{cam}_FLUX"),
            fits.ImageHDU(ivar, name=f"{cam}_IVAR"),
            fits.CompImageHDU(mask, name=f"{cam}_MASK"),
            fits.ImageHDU(np.zeros((nspec, 11, grid.size), np.float32), name=f"{cam}_RESOLUTION"),
        ]
    hdus.append(
        fits.BinTableHDU.from_columns(
            [fits.Column(name="TARGETID", format="K", array=np.array(tids, np.int64))],
            name="SCORES",
        )
    )
    return fits.HDUList(hdus)


def redrock_hdulist(tids, classes, subtypes, zs):
    n = len(tids)
    red = fits.BinTableHDU.from_columns(
        [
            fits.Column(name="TARGETID", format="K", array=np.array(tids, np.int64)),
            fits.Column(name="CHI2", format="D", array=np.ones(n)),
            fits.Column(name="COEFF", format="10D", array=np.zeros((n, 10))),
            fits.Column(name="Z", format="D", array=np.array(zs, np.float64)),
            fits.Column(name="ZERR", format="D", array=np.full(n, 1e-5)),
            fits.Column(name="ZWARN", format="K", array=np.zeros(n, np.int64)),
            fits.Column(name="NPIXELS", format="K", array=np.full(n, 7000, np.int64)),
            fits.Column(name="SPECTYPE", format="6A", array=np.array(classes)),
            fits.Column(name="SUBTYPE", format="20A", array=np.array(subtypes)),
            fits.Column(name="NCOEFF", format="K", array=np.full(n, 10, np.int64)),
            fits.Column(name="DELTACHI2", format="D", array=np.full(n, 100.0)),
        ],
        name="REDSHIFTS",
    )
    primary = fits.PrimaryHDU()
    primary.header["RRVER"] = "0.15.0"
    fm = fits.BinTableHDU.from_columns(
        [fits.Column(name="TARGETID", format="K", array=np.array(tids, np.int64))],
        name="FIBERMAP",
    )
    return fits.HDUList([primary, red, fm])


LAMOST_GRID = 10 ** (3.5682 + 1e-4 * np.arange(3909))


def lamost_header(s, obsid=677503031):
    h = fits.Header()
    h["FILENAME"] = "spec-58397-EG014118N254444M01_sp03-031.fits"
    h["OBSID"] = obsid
    h["DATA_V"] = "LAMOST DR7"
    h["EXTEN0"] = "Flux, Inverse, Wavelength, Andmask, Ormask"
    h["TELESCOP"] = "LAMOST"
    h["LMJD"], h["MJD"] = 58397, 58396
    h["PLANID"] = "EG014118N254444M01"
    h["RA"], h["DEC"] = 24.376852, 25.427147
    h["FIBERID"], h["SPID"] = 31, 3
    h["VACUUM"] = True
    h["COEFF0"], h["COEFF1"] = 3.5682, 1e-4
    h["CLASS"] = s.cls
    h["SUBCLASS"] = s.subclass
    h["Z"] = float(s.z)
    h["Z_ERR"] = 1.381e-05
    return h


def lamost_image_hdulist(s, obsid=677503031):
    """LAMOST LRS (DR1-DR7): a 5 x n primary image: flux, ivar, wavelength, andmask, ormask."""
    flux, ivar = _resample(s, LAMOST_GRID)
    andmask = np.zeros(LAMOST_GRID.size, np.float32)
    andmask[500:520] = 2.0  # flagged, yet ivar > 0
    data = np.stack([flux, ivar, LAMOST_GRID.astype(np.float32), andmask, andmask]).astype(
        np.float32
    )
    primary = fits.PrimaryHDU(data, header=lamost_header(s, obsid))
    primary.header["EXTNAME"] = "Flux"
    return fits.HDUList([primary])


def lamost_table_hdulist(s, obsid=977503031):
    """LAMOST LRS (later releases): HDU1 one-row table of array columns FLUX, IVAR, WAVELENGTH, ..."""
    flux, ivar = _resample(s, LAMOST_GRID)
    n = LAMOST_GRID.size
    andmask = np.zeros(n, np.float32)
    andmask[500:520] = 2.0
    cols = [
        fits.Column(name=name, format=f"{n}E", array=arr[None, :].astype(np.float32))
        for name, arr in (
            ("FLUX", flux),
            ("IVAR", ivar),
            ("WAVELENGTH", LAMOST_GRID),
            ("ANDMASK", andmask),
            ("ORMASK", andmask),
            ("NORMALIZATION", np.ones(n)),
        )
    ]
    primary = fits.PrimaryHDU(header=lamost_header(s, obsid))
    return fits.HDUList([primary, fits.BinTableHDU.from_columns(cols, name="COADD")])


def first_of(family, start=0):
    for i in range(start, CFG.n):
        if make_spectrum(i, CFG).family == family:
            return i
    raise AssertionError(family)


def one_per_family():
    return [first_of(f) for f in FAMILIES]


def run_oracle(env, index):
    obs, info = env.reset(seed=index, options={"index": index})
    pol, done = OraclePolicy(), False
    while not done:
        reply = run_sync(pol.act(info))
        obs, reward, term, trunc, info = env.step(reply.text)
        done = term or trunc
    return info


# ------------------------------------------------------------------------------------------
# the line module
# ------------------------------------------------------------------------------------------
def test_teacher_window_overlaps_the_synthetic_key_window_40_per_family():
    """The measured rate the report quotes (run with ``-s`` to print it)."""
    hits = {(f, m): 0 for f in FAMILIES for m in ("redshift", "flux")}
    counts = dict.fromkeys(FAMILIES, 0)
    for i in range(CFG.n):
        s = make_spectrum(i, CFG)
        wl = 10.0 ** s.loglam.astype(np.float64)
        mask = (s.ivar == 0) | (s.and_mask != 0)
        counts[s.family] += 1
        # a real file: no KEY_WMIN/KEY_WMAX; with the pipeline redshift, then without it
        with_z = {"z": s.z, "class": s.cls, "subclass": s.subclass}
        for mode, meta in (("redshift", with_z), ("flux", {})):
            w = teacher_window(wl, s.flux, mask, s.ivar, meta)
            hits[(s.family, mode)] += bool(w is not None and overlaps(w.as_list(), s.key_window))
    assert all(c == 40 for c in counts.values()), counts
    rates = {k: v / counts[k[0]] for k, v in hits.items()}
    print(
        "overlap with the true key window, 40 per family:",
        json.dumps({f"{a}|{b}": r for (a, b), r in rates.items()}),
    )
    for f in ("STAR", "GALAXY STARFORMING", "GALAXY AGN"):
        assert rates[(f, "redshift")] >= 0.95, rates
    assert rates[("QSO BROADLINE", "redshift")] >= 0.7, rates
    assert rates[("GALAXY STARFORMING", "flux")] >= 0.85, rates
    assert rates[("GALAXY AGN", "flux")] >= 0.85, rates
    assert rates[("QSO BROADLINE", "flux")] >= 0.6, rates


def test_running_median_and_strongest_line_ignore_masked_pixels():
    wl = np.linspace(6000.0, 7000.0, 1001)
    flux = np.full(wl.size, 10.0)
    flux += 8.0 * np.exp(-0.5 * ((wl - 6400.0) / 2.0) ** 2)  # a real line
    mask = np.zeros(wl.size, bool)
    mask[700:705] = True
    flux[700:705] = 1e4  # a huge bad spike: must be ignored
    ivar = np.full(wl.size, 4.0)
    cont = running_median(flux, ~mask, 101)
    assert np.allclose(cont[650:750], 10.0, atol=0.5)
    hit = strongest_line(wl, flux, mask, ivar)
    assert abs(hit.wavelength - 6400.0) < 3.0 and hit.snr > 20
    w = line_window(wl, flux, mask, ivar)
    assert w.source == "emission" and w.lambda_min < 6400 < w.lambda_max
    # without the mask the spike wins: the mask is what keeps it out
    assert abs(strongest_line(wl, flux, None, ivar).wavelength - 6400.0) > 100
    # absorption only: the strongest absorption line
    absorbed = 10.0 - 5.0 * np.exp(-0.5 * ((wl - 6600.0) / 3.0) ** 2)
    w = line_window(wl, absorbed, None, ivar)
    assert w.source == "absorption" and w.lambda_min < 6600 < w.lambda_max
    assert line_window(wl, np.full(wl.size, 10.0), None, ivar) is None  # nothing to find


def test_redshift_window_takes_the_first_feature_inside_and_unmasked():
    wl = 10 ** (3.5793 + 1e-4 * np.arange(3846))  # 3796-9200 A
    w = redshift_window(wl, None, 0.1, "GALAXY")
    assert w.feature == "H-alpha + [N II]"
    assert w.lambda_min == pytest.approx(GALAXY_FEATURES[0].rest_min * 1.1)
    w = redshift_window(wl, None, 0.5, "GALAXY")  # H-alpha at 9847 A: outside
    assert w.feature == "H-beta + [O III]"
    lo, hi = GALAXY_FEATURES[0].observed(0.1)
    mask = (wl > lo) & (wl < hi)  # H-alpha masked: the next feature
    assert redshift_window(wl, mask, 0.1, "GALAXY").feature == "H-beta + [O III]"
    assert redshift_window(wl, None, 2.5, "QSO").feature == "Ly-alpha"
    assert redshift_window(wl, None, 1.0, "QSO").feature in {"Mg II", "C III]"}
    assert redshift_window(wl, None, math.nan, "GALAXY") is None
    assert redshift_window(wl, None, 0.1, "BLAZAR") is None
    assert features_for("star", "K5 (100981)")[0].name == "Na D"
    assert star_features("dM0")[0].name == "TiO 7054"
    assert star_features("A0")[0].name == "H-beta"
    assert star_features("CV")[0].name == "H-alpha"


def test_stored_window_wins_and_is_unchanged():
    s = make_spectrum(0, CFG)
    wl = 10.0 ** s.loglam.astype(np.float64)
    w = teacher_window(wl, s.flux, None, s.ivar, {"key_wmin": 1.0, "key_wmax": 2.0, "z": 0.1})
    assert (w.source, w.as_list()) == ("file", [1.0, 2.0])


# ------------------------------------------------------------------------------------------
# SDSS DR17 layout, end to end
# ------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def sdss_real(tmp_path_factory):
    folder = tmp_path_factory.mktemp("sdss") / "dr17"
    return folder, write_sdss_folder(folder, one_per_family() + [first_of("GALAXY AGN", 10)])


def test_sdss_reader_masks_and_mask_bits_and_keeps_no_key_window(sdss_real):
    folder, truth = sdss_real
    src = open_source(folder)
    assert isinstance(src, SDSSSpectraSource)
    for i, f in enumerate(src.files):
        s, sample = truth[f.name], src[i]
        assert "key_window" not in sample.meta
        assert sample.meta["z"] == pytest.approx(s.z, rel=1e-6)
        m = sample.spectrum.mask
        assert m[100:110].all() and (sample.spectrum.ivar[100:110] > 0).all()
        assert np.array_equal(
            m, (s.ivar == 0) | (s.and_mask != 0) | (np.arange(m.size) // 10 == 10)
        )


def test_oracle_opens_a_window_on_real_layout_files(sdss_real):
    folder, truth = sdss_real
    env = gymnasium.make(SPECTRUM_ID, data=str(folder), split="all", condition="tools")
    src = env.unwrapped.source
    for index in range(len(env.unwrapped.rows)):
        info = run_oracle(env, index)
        sample = src[info["episode"]["row_id"]]
        s = truth[sample.meta["file_name"]]
        calls = [c for c in info["tool_calls"] if c.get("ok")]
        assert len(calls) == 1 and calls[0]["name"] == "spectrum_window", info["tool_calls"]
        assert info["ground_truth"]["key_window_source"] == "redshift"
        if s.family != "QSO BROADLINE":  # quasars: any broad line will do (see the rate test)
            assert overlaps(info["ground_truth"]["key_window"], s.key_window), (s.family, s.z)
        assert info["correct"]


def _forbidden(sample, folder) -> set[str]:
    m = sample.meta
    out = {str(folder), m["file_name"], "123.45678", "-12.34567", "305093817592686592", "51883"}
    z = float(m["z"])
    out |= {f"{z:.5f}", f"{z:.6g}", repr(z), f"{z:.4e}"}
    for key in ("subclass",):
        if len(str(m[key])) >= 5:
            out.add(str(m[key]))
    return out


@pytest.mark.parametrize("table", [False, True])
def test_no_header_value_or_redshift_reaches_any_message(sdss_real, table):
    folder, _ = sdss_real
    env = gymnasium.make(
        SPECTRUM_ID,
        data=str(folder),
        split="all",
        condition="tools",
        table=table,
        view_width=128,
        view_height=64,
    )
    src = env.unwrapped.source
    for index in range(len(env.unwrapped.rows)):
        for pol in (OraclePolicy(), RandomPolicy(seed=3, tool_prob=1.0)):
            obs, info = env.reset(seed=index, options={"index": index})
            done = False
            while not done:
                obs, _, term, trunc, info = env.step(run_sync(pol.act(info)).text)
                done = term or trunc
            sample = src[info["episode"]["row_id"]]
            text = json.dumps(info["messages"], default=lambda o: "<image>") + json.dumps(
                info["tools"]
            )
            for bad in _forbidden(sample, folder):
                assert not re.search(r"(?<![\d.])" + re.escape(bad) + r"(?![\d])", text), bad


# ------------------------------------------------------------------------------------------
# masks are visible
# ------------------------------------------------------------------------------------------
def test_masked_stretch_renders_differently_and_the_table_says_so():
    s = make_spectrum(first_of("GALAXY AGN"), CFG)
    wl = 10.0 ** s.loglam.astype(np.float64)
    flux = s.flux.copy()
    clean = np.zeros(wl.size, bool)
    masked = clean.copy()
    stretch = (wl > 5000) & (wl < 5100)
    masked[stretch] = True
    a, _ = spectrum_overview(wl, flux, clean, 512, 128)
    b, _ = spectrum_overview(wl, flux, masked, 512, 128)
    x = 5 + (np.array([5000.0, 5100.0]) - wl[0]) / (wl[-1] - wl[0]) * (512 - 10)
    inside = slice(int(x[0]) + 2, int(x[1]) - 1)
    assert (a[5:100, inside] != b[5:100, inside]).any(axis=(0, 2)).all()
    assert (b[5:100, inside, 0] == 220).any(axis=0).all()  # the grey band
    outside = slice(int(x[1]) + 3, 480)
    assert not (b[5:100, outside, 0] == 220).any()  # the band only where the mask is
    a, _, _ = spectrum_window(wl, flux, clean, 4950, 5150, 256, 128)
    b, _, text = spectrum_window(wl, flux, masked, 4950, 5150, 256, 128, table=True)
    assert not np.array_equal(a, b)
    rows = text.splitlines()[2:]
    assert any(r.endswith(" masked") for r in rows)  # a bin with only bad pixels
    assert any("masked)" in r for r in rows)  # a bin with some
    assert not any("masked" in r for r in rows[:1] + rows[-1:])
    assert "masked" not in window_table(wl, flux, clean, 4950, 5150)
    # one isolated bad pixel still shades its column of a whole-spectrum overview
    one = clean.copy()
    one[2000] = True
    c = render_spectrum(wl, flux, one, wl[0], wl[-1], 512, 128)
    assert (c[5:100, :, 0] == 220).any(axis=0).sum() >= 1


# ------------------------------------------------------------------------------------------
# DESI coadd + Redrock
# ------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def desi_folder(tmp_path_factory):
    folder = tmp_path_factory.mktemp("desi") / "healpix"
    folder.mkdir()
    idx = one_per_family()
    spectra = [make_spectrum(i, CFG) for i in idx]
    tids = [39627000000000001 + k for k in range(len(spectra))] + [39627000000009999]
    objtypes = ["TGT"] * len(spectra) + ["SKY"]
    coadd = desi_coadd_hdulist(spectra + [None], tids, objtypes, mask_rows={1: (6000.0, 6050.0)})
    coadd.writeto(folder / "coadd-main-dark-10032.fits")
    redrock_hdulist(
        tids[:-1],
        [s.cls for s in spectra],
        [s.subclass if s.cls == "STAR" else "" for s in spectra],
        [s.z for s in spectra],
    ).writeto(folder / "redrock-main-dark-10032.fits")
    return folder, spectra, tids


def test_desi_reader_pairs_redrock_and_merges_cameras(desi_folder):
    folder, spectra, tids = desi_folder
    src = open_source(folder)
    assert isinstance(src, DESISpectraSource)
    assert len(src) == len(spectra)  # the sky fibre is skipped
    assert src.labels().tolist() == [src.class_names.index(s.cls) for s in spectra]
    meta = src.metadata()
    assert meta["targetid"].tolist() == tids[:-1]
    sp = src[1].spectrum
    assert np.all(np.diff(sp.wavelength) > 0)
    assert sp.wavelength[0] == pytest.approx(3600.0) and sp.wavelength[-1] == pytest.approx(9824.0)
    assert np.allclose(np.diff(sp.wavelength), 0.8, atol=1e-3)
    assert sp.mask[(sp.wavelength >= 6000) & (sp.wavelength <= 6050)].all()  # MASK bits
    assert sp.mask[sp.wavelength < 3790].all()  # no data there (ivar 0)
    assert sp.wavelength.size == 7781  # DESI's merged b+r+z grid
    sel = (sp.wavelength > 4000) & (sp.wavelength < 9000)
    assert (~sp.mask[sel]).mean() > 0.95
    # overlap of B and R: the ivar-weighted mean, ivar summed
    w, f, iv = merge_cameras(
        [np.array([1.0, 2.0]), np.array([2.0, 3.0])],
        [np.array([1.0, 2.0]), np.array([4.0, 5.0])],
        [np.array([1.0, 1.0]), np.array([3.0, 0.0])],
    )
    assert w.tolist() == [1.0, 2.0, 3.0] and f.tolist() == [1.0, 3.5, 5.0]
    assert iv.tolist() == [1.0, 4.0, 0.0]


def test_oracle_on_desi_files(desi_folder):
    folder, spectra, _ = desi_folder
    env = gymnasium.make(SPECTRUM_ID, data=str(folder), split="all", condition="tools")
    for index in range(len(env.unwrapped.rows)):
        info = run_oracle(env, index)
        assert [c["name"] for c in info["tool_calls"] if c.get("ok")] == ["spectrum_window"]
        assert info["ground_truth"]["key_window_source"] == "redshift" and info["correct"]


def test_desi_errors_name_file_and_field(desi_folder, tmp_path):
    folder, spectra, tids = desi_folder
    lone = tmp_path / "coadd-main-dark-1.fits"
    lone.write_bytes((folder / "coadd-main-dark-10032.fits").read_bytes())
    with pytest.raises(
        DataError, match=r"coadd-main-dark-1.fits: SPECTYPE: no REDSHIFTS.*redrock-"
    ):
        open_source(lone)
    redrock_hdulist(tids[:2], ["GALAXY", "QSO"], ["", ""], [0.1, 1.0]).writeto(
        tmp_path / "redrock-main-dark-1.fits"
    )
    with pytest.raises(DataError, match=r"redrock-main-dark-1.fits: TARGETID: no redshift row"):
        open_source(lone)
    bad = desi_coadd_hdulist([spectra[0]], tids[:1], ["TGT"])
    bad["R_IVAR"] = fits.ImageHDU(np.zeros((1, 10), np.float32), name="R_IVAR")
    bad.writeto(tmp_path / "coadd-x-y-2.fits")
    redrock_hdulist(tids[:1], ["GALAXY"], [""], [0.1]).writeto(tmp_path / "redrock-x-y-2.fits")
    with pytest.raises(DataError, match=r"coadd-x-y-2.fits: R_IVAR: shape 1 x 10"):
        DESISpectraSource(tmp_path / "coadd-x-y-2.fits")


# ------------------------------------------------------------------------------------------
# LAMOST LRS, both layouts
# ------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def lamost_folder(tmp_path_factory):
    folder = tmp_path_factory.mktemp("lamost") / "dr"
    folder.mkdir()
    spectra = []
    for k, i in enumerate(one_per_family()):
        s = make_spectrum(i, CFG)
        spectra.append(s)
        if k % 2:
            hdul, suffix = lamost_table_hdulist(s, 977503031 + k), ".fits"
        else:
            hdul, suffix = lamost_image_hdulist(s, 677503031 + k), ".fits.gz"
        hdul.writeto(folder / f"spec-58397-EG014118N254444M01_sp03-{31 + k:03d}{suffix}")
    return folder, spectra


def test_lamost_reader_reads_both_layouts(lamost_folder):
    folder, spectra = lamost_folder
    src = open_source(folder)
    assert isinstance(src, LAMOSTSpectraSource) and len(src) == len(spectra)
    assert src.labels().tolist() == [src.class_names.index(s.cls) for s in spectra]
    for i, s in enumerate(spectra):
        sample = src[i]
        sp = sample.spectrum
        assert sp.wavelength == pytest.approx(LAMOST_GRID, rel=1e-6)
        assert sp.mask[500:520].all() and (sp.ivar[500:520] > 0).all()  # andmask
        assert sample.meta["z"] == pytest.approx(s.z) and sample.meta["class"] == s.cls
    assert isinstance(open_source(src.files[0]), LAMOSTSpectraSource)  # one .fits.gz file


def test_oracle_on_lamost_files(lamost_folder):
    folder, _ = lamost_folder
    env = gymnasium.make(SPECTRUM_ID, data=str(folder), split="all", condition="tools")
    for index in range(len(env.unwrapped.rows)):
        info = run_oracle(env, index)
        assert [c["name"] for c in info["tool_calls"] if c.get("ok")] == ["spectrum_window"]
        assert info["correct"]


def test_lamost_errors_name_file_and_field(tmp_path):
    s = make_spectrum(0, CFG)
    hdul = lamost_image_hdulist(s)
    del hdul[0].header["CLASS"]
    hdul.writeto(tmp_path / "spec-1-a_sp01-001.fits")
    with pytest.raises(DataError, match=r"spec-1-a_sp01-001.fits: CLASS: missing"):
        LAMOSTSpectraSource(tmp_path / "spec-1-a_sp01-001.fits")
    hdul = lamost_image_hdulist(s)
    hdul[0].header["CLASS"] = "Unknown"
    hdul.writeto(tmp_path / "spec-1-a_sp01-002.fits")
    with pytest.raises(DataError, match=r"spec-1-a_sp01-002.fits: CLASS: value 'UNKNOWN'"):
        open_source(tmp_path / "spec-1-a_sp01-002.fits")
    table = lamost_table_hdulist(s)
    cols = [c for c in table[1].columns if c.name != "WAVELENGTH"]
    table[1] = fits.BinTableHDU.from_columns(cols, name="COADD")
    table.writeto(tmp_path / "spec-1-a_sp01-003.fits")
    with pytest.raises(
        DataError, match=r"spec-1-a_sp01-003.fits: HDU1: missing column 'WAVELENGTH'"
    ):
        LAMOSTSpectraSource(tmp_path / "spec-1-a_sp01-003.fits")


def test_sdss_read_spectrum_rejects_non_integer_and_mask(tmp_path):
    s = make_spectrum(0, CFG)
    hdul = sdss_dr17_hdulist(s)
    cols = [c for c in hdul[1].columns if c.name != "and_mask"]
    cols.append(fits.Column(name="and_mask", format="E", array=np.zeros(s.flux.size, np.float32)))
    hdul[1] = fits.BinTableHDU.from_columns(cols, name="COADD")
    hdul.writeto(tmp_path / "spec-0001-50000-0001.fits")
    with pytest.raises(DataError, match=r"0001.fits: COADD.and_mask: expected integer mask bits"):
        read_spectrum(tmp_path / "spec-0001-50000-0001.fits")


def test_real_sdss_dr18_files_from_an_installed_ppxf():
    """Real SDSS DR18 spectra that ppxf ships (read in place: their licence forbids copying them)."""
    import ppxf  # in the CPU lock (requirements/cpu.txt) for these files, so this always runs

    folder = Path(ppxf.__file__).parent / "spectra"
    files = sorted(folder.glob("*_SDSS_DR18.fits"))
    assert len(files) >= 2, f"ppxf {ppxf.__version__} ships no SDSS DR18 spectra in {folder}"
    for f in files:
        src = open_source(f)
        assert isinstance(src, SDSSSpectraSource)
        sample = src[0]
        sp = sample.spectrum
        assert "key_window" not in sample.meta and math.isfinite(sample.meta["z"])
        w = teacher_window(sp.wavelength, sp.flux, sp.mask, sp.ivar, sample.meta)
        assert w is not None and w.source == "redshift"
        assert sp.wavelength[0] <= w.lambda_min < w.lambda_max <= sp.wavelength[-1]
