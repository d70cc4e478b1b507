"""``astroreason data info``: what a user must know before a run, leaks included."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest
from astropy.io import fits
from fakesources import scaled_galaxy10_counts, shuffled_labels, sorted_labels, write_galaxy10_h5

from astroreason.cli import main
from astroreason.data.classes import GALAXY10_DECALS
from astroreason.data.quality.info import DataInfo, describe


def run_cli(args, capsys, monkeypatch) -> str:
    monkeypatch.setenv("COLUMNS", "220")  # rich wraps to the terminal: keep sentences on one line
    try:
        main(args)
    except SystemExit as exc:
        assert exc.code in (0, None)
    out, err = capsys.readouterr()
    assert "Traceback" not in out + err
    return out


@pytest.fixture
def sorted_file(tmp_path):
    """A class-sorted Galaxy10-format file whose ``object_id`` is the row number."""
    labels = sorted_labels(scaled_galaxy10_counts(1500))
    n = labels.size
    rng = np.random.default_rng(1)
    return write_galaxy10_h5(
        tmp_path / "sorted.h5",
        labels,
        side=16,
        object_id=np.arange(n),
        uid=rng.permutation(n) + 5000,  # an id that carries nothing
    )


def column(info: DataInfo, name: str):
    return next(c for c in info.columns if c.name == name)


def test_cli_info_flags_the_row_number_id_and_prints_what_matters(sorted_file, capsys, monkeypatch):
    out = run_cli(["data", "info", str(sorted_file)], capsys, monkeypatch)
    n = sum(scaled_galaxy10_counts(1500))
    assert "Galaxy10Source" in out and f"{n} samples" in out
    counts = np.bincount(sorted_labels(scaled_galaxy10_counts(1500)))
    for name, c in zip(GALAXY10_DECALS, counts, strict=True):
        assert any(name in line and f" {c} " in line for line in out.splitlines()), name
    assert "16x16" in out
    assert "0 .. 255" in out and "uint8" in out  # the fake images hold 0..199 plus a 255 row
    assert "RGB from g, r, z" in out
    line = next(ln for ln in out.splitlines() if "object_id" in ln)
    assert "could leak: predicts the label (HIGH" in line and "majority" in line
    assert "id-like, keep out of prompts" in next(ln for ln in out.splitlines() if "uid" in ln)
    assert re.search(r"│ ra\s+│[^│]+│[^│]+│ no\s+│", out), out
    assert "could leak: the row index predicts the label" in out
    assert "Could leak the label: object_id" in out


def test_cli_info_json(sorted_file, capsys, monkeypatch):
    doc = json.loads(run_cli(["data", "info", "--json", str(sorted_file)], capsys, monkeypatch))
    assert doc["rows"] == sum(scaled_galaxy10_counts(1500))
    assert doc["class_names"] == list(GALAXY10_DECALS) and doc["sample_rows"] == 64
    assert doc["sizes"] == ["16x16"] and doc["value_dtype"] == "uint8"
    lo, hi = doc["value_range"]
    assert lo == 0 and hi == 255
    cols = {c["name"]: c for c in doc["columns"]}
    assert cols["object_id"]["severity"] == "high"
    assert cols["object_id"]["leak"].startswith("could leak: predicts the label (HIGH, 9")
    assert cols["uid"]["leak"] == "id-like, keep out of prompts"
    assert cols["pxscale"]["leak"] == "no (constant)"
    assert cols["ra"]["leak"] == "no" and cols["ra"]["dtype"] == "float64"
    assert doc["row_order"].startswith("could leak")


def test_shuffled_file_leaks_nothing(tmp_path):
    labels = shuffled_labels(scaled_galaxy10_counts(600), seed=2)
    f = write_galaxy10_h5(tmp_path / "clean.h5", labels, side=8)
    info = describe(f, sample_rows=16, seed=3)
    assert info.row_order == "no" and info.leaks == ()
    assert info.sample_rows == 16 and info.audit_rows == labels.size
    assert info.seconds < 20


def test_describe_fits_folder_bands_and_unreadable_rows(tmp_path):
    rng = np.random.default_rng(0)
    for c in ("A", "B"):
        (tmp_path / c).mkdir()
        for j in range(6):
            hdu = fits.PrimaryHDU(rng.normal(5.0, 0.1, (3, 20, 24)))
            hdu.header["RA"] = float(rng.uniform(0, 360))
            hdu.writeto(tmp_path / c / f"{j}.fits")
    (tmp_path / "B" / "9_junk.fits").write_bytes(b"not fits at all")
    info = describe(tmp_path, sample_rows=64)
    assert info.reader == "FitsFolderSource" and info.rows == 13
    assert info.sizes == ("20x24",) and "g, r, z" in info.bands
    assert info.sample_rows == 12  # the junk file is counted in a note, not a crash
    assert any(
        "1 of 13 sampled rows could not be read" in n and "9_junk.fits" in n for n in info.notes
    )
    assert {c.name for c in info.columns} == {"file_name", "ra"}


def test_describe_spectra(spectra_dir):
    info = describe(spectra_dir, sample_rows=8)
    assert info.kind == "spectrum" and info.rows == 32 and info.sample_rows == 8
    lo, hi = info.wavelength_range
    assert 3500 < lo < 4000 and 9000 < hi < 10500
    assert all(s.endswith("pixels") for s in info.sizes)
    assert info.value_dtype == "float32" and info.value_range[0] < info.value_range[1]


def test_info_lists_each_column_of_2d_and_nested_datasets(tmp_path, capsys, monkeypatch):
    import h5py

    labels = shuffled_labels([20] * 10, 4)
    n = labels.size
    rng = np.random.default_rng(4)
    features = rng.normal(size=(n, 5))
    features[:, 3] = labels
    path = write_galaxy10_h5(tmp_path / "f.h5", labels, side=8, features=features)
    with h5py.File(path, "a") as f:
        f.create_dataset("meta/redshift", data=labels * 0.02 + rng.normal(0, 1e-4, n))
    info = describe(path, sample_rows=8)
    assert column(info, "features[:,3]").severity == "high"
    assert column(info, "features[:,3]").leak.startswith("could leak: predicts the label (HIGH")
    assert column(info, "features[:,0]").leak == "no"
    assert column(info, "meta/redshift").severity == "high"
    assert column(info, "meta/redshift").dtype == "float64"
    assert {"features[:,3]", "meta/redshift"} <= set(info.leaks)
    assert sorted(c.name for c in info.columns if c.severity == "high") == [
        "features[:,3]",
        "meta/redshift",
    ]
    out = run_cli(["data", "info", str(path)], capsys, monkeypatch)
    assert "features[:,3]" in out and "meta/redshift" in out
    leak_line = next(line for line in out.splitlines() if "Could leak the label:" in line)
    assert "features[:,3]" in leak_line and "meta/redshift" in leak_line, out


def test_info_row_order_modulo_and_placeholder_coordinates(tmp_path):
    labels = np.arange(60) % 10
    path = write_galaxy10_h5(tmp_path / "m.h5", labels, side=8, ra=np.zeros(60), dec=np.zeros(60))
    info = describe(path, sample_rows=8)
    assert info.row_order.startswith("could leak: the row index predicts the label (HIGH, 100%")
    assert "row index modulo 10" in info.row_order
    assert any("placeholders" in note for note in info.notes), info.notes


def test_class_names_from_the_files_are_printed_literally(tmp_path, capsys, monkeypatch):
    import io

    from PIL import Image
    from rich.console import Console

    from astroreason.data.quality.info import print_info

    rng = np.random.default_rng(5)
    for c in ("[red]X", "B"):
        (tmp_path / c).mkdir()
        for j in range(4):
            img = rng.integers(0, 255, (8, 8, 3), dtype=np.uint8)
            Image.fromarray(img).save(tmp_path / c / f"[bold]{j}.png")
    info = describe(tmp_path, sample_rows=8)
    assert info.class_names == ("B", "[red]X") or info.class_names == ("[red]X", "B")
    buf = io.StringIO()
    print_info(info, Console(file=buf, width=220, color_system=None))
    text = buf.getvalue()
    assert "[red]X" in text and "[bold]0" in text
    out = run_cli(["data", "info", str(tmp_path)], capsys, monkeypatch)
    assert "[red]X" in out
