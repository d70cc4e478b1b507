"""The leakage audit: it must fire on the shortcuts that fooled us, and stay quiet on clean data."""

from __future__ import annotations

import io
import json

import numpy as np
import pytest
from fakesources import (
    FakeImageSource,
    clustered_labels,
    fake_images,
    scaled_galaxy10_counts,
    shuffled_labels,
    sorted_labels,
    write_galaxy10_h5,
)
from rich.console import Console

from astroreason.data.quality.audit import (
    AuditReport,
    audit_source,
    beats_baseline,
    is_id_like,
    print_report,
)

GALAXY10_LIKE = scaled_galaxy10_counts(2000)


def severities(report: AuditReport, code: str) -> list[str]:
    return [f.severity for f in report.by_code(code)]


def serious(report: AuditReport) -> list[str]:
    return [
        f"{f.severity} {f.code}: {f.sentence}"
        for f in report.findings
        if f.severity in ("high", "medium")
    ]


def random_metadata(n: int, rng: np.random.Generator) -> dict[str, np.ndarray]:
    """Realistic columns that carry no information about the label."""
    return {
        "object_id": rng.permutation(n).astype(np.int64) + 10_000,
        "ra": rng.uniform(0, 360, n),
        "dec": rng.uniform(-30, 30, n),
        "redshift": np.where(rng.random(n) < 0.1, np.nan, rng.uniform(0.01, 0.2, n)),
        "pxscale": rng.choice([0.262, 0.524], n, p=[0.85, 0.15]),
        "file_name": np.array([f"gal_{i:06d}.png" for i in rng.permutation(n)], dtype=object),
    }


# ----------------------------------------------------------------------------- row order


def test_class_sorted_rows_are_high():
    report = audit_source(FakeImageSource(sorted_labels(GALAXY10_LIKE)))
    (f,) = report.by_code("row_order")
    assert f.severity == "high", f.sentence
    assert report.has_high
    assert f.details["index_knn_accuracy"] > 0.95
    assert f.details["adjacent_same_label"] > 0.95
    assert "row index predicts the label" in f.sentence


def test_clustered_rows_are_high():
    # blocks of 15 rows per class, cycling through 10 classes 12 times
    report = audit_source(FakeImageSource(clustered_labels(10, 15, 12)), pixels=False)
    (f,) = report.by_code("row_order")
    assert f.severity == "high", f.sentence
    assert f.details["index_knn_accuracy"] > f.details["majority_baseline"] + 0.5


def test_round_robin_rows_are_high():
    report = audit_source(FakeImageSource(np.arange(500) % 5), pixels=False)
    (f,) = report.by_code("row_order")
    assert f.severity == "high"
    assert "repeating pattern" in f.sentence
    assert f.details["adjacent_same_label"] == 0.0


def test_sorted_rows_found_on_a_subsample():
    report = audit_source(FakeImageSource(sorted_labels(GALAXY10_LIKE)), max_rows=300, pixels=False)
    assert report.n_checked == 300 and report.n == sum(GALAXY10_LIKE)
    assert severities(report, "row_order") == ["high"]
    assert report.by_code("row_order")[0].details["rows_checked"] == 300


@pytest.mark.parametrize("seed", range(6))
def test_shuffled_source_with_random_metadata_is_quiet(seed):
    rng = np.random.default_rng(100 + seed)
    labels = shuffled_labels(GALAXY10_LIKE if seed % 2 else [40, 70, 55], seed)
    src = FakeImageSource(labels, random_metadata(labels.size, rng), seed=seed)
    report = audit_source(src, seed=seed)
    assert serious(report) == []
    assert not report.has_high
    # every check still reported what it measured
    assert severities(report, "row_order") == ["info"]
    assert {f.details["column"] for f in report.by_code("id_column")} == {"object_id", "file_name"}
    assert {f.details["column"] for f in report.by_code("metadata_column")} == {
        "ra",
        "dec",
        "redshift",
        "pxscale",
    }


# ----------------------------------------------------------------------------- id columns


def test_object_id_that_is_the_sorted_row_number_is_high():
    # the Hugging Face export: rows shuffled, but object_id is the row in the class-sorted file
    sorted_y = sorted_labels(GALAXY10_LIKE)
    perm = np.random.default_rng(0).permutation(sorted_y.size)
    src = FakeImageSource(sorted_y[perm], {"object_id": perm.astype(np.int64)})
    report = audit_source(src, pixels=False)
    assert severities(report, "row_order") == ["info"], "rows were shuffled"
    (f,) = report.by_code("id_column")
    assert f.severity == "high"
    assert "'object_id'" in f.sentence and f.details["column"] == "object_id"
    assert f.details["accuracy"] > 0.95


def test_file_names_numbered_in_sorted_order_are_high():
    sorted_y = sorted_labels([60, 60, 60, 60])
    perm = np.random.default_rng(1).permutation(sorted_y.size)
    names = np.array([f"galaxy-{i}.png" for i in perm], dtype=object)  # no zero padding
    report = audit_source(FakeImageSource(sorted_y[perm], {"filename": names}), pixels=False)
    (f,) = report.by_code("id_column")
    assert f.severity == "high", f.sentence
    assert f.details["feature"] in ("digits", "string order")


def test_unique_integer_column_is_treated_as_an_id_whatever_its_name():
    sorted_y = sorted_labels([50, 50, 50])
    perm = np.random.default_rng(2).permutation(sorted_y.size)
    report = audit_source(FakeImageSource(sorted_y[perm], {"seq": perm * 7 + 3}), pixels=False)
    assert severities(report, "id_column") == ["high"]


def test_id_like_names():
    n = 5
    floats = np.linspace(0, 1, n)
    for name in (
        "id",
        "object_id",
        "objid",
        "dr7objid",
        "index",
        "idx",
        "row",
        "file_name",
        "path",
    ):
        assert is_id_like(name, floats), name
    for name in ("ra", "redshift", "pxscale", "valid", "grid"):
        assert not is_id_like(name, floats), name
    assert is_id_like("anything", np.array(["a", "b", "c"], dtype=object))
    assert not is_id_like("survey", np.array(["a", "b", "a"], dtype=object))


# ----------------------------------------------------------------------------- other metadata


def test_pixel_scale_correlated_with_class_is_flagged():
    rng = np.random.default_rng(3)
    labels = shuffled_labels(GALAXY10_LIKE, 3)
    # large galaxies (class 2 here) were cut out at the coarser scale more often
    px = np.where(rng.random(labels.size) < np.where(labels == 2, 0.6, 0.1), 0.524, 0.262)
    report = audit_source(FakeImageSource(labels, {"pxscale": px}), pixels=False)
    (f,) = report.by_code("metadata_column")
    assert f.severity in ("medium", "high"), f.sentence
    assert "'pxscale'" in f.sentence and "never put it in a prompt" in f.sentence
    assert f"{100 * f.details['majority_baseline']:.1f}%" in f.sentence


def test_weak_redshift_shift_with_nans_is_medium():
    rng = np.random.default_rng(4)
    labels = shuffled_labels(GALAXY10_LIKE, 4)
    z = rng.uniform(0.01, 0.2, labels.size) + 0.05 * (labels == 2)
    z[rng.random(labels.size) < 0.2] = np.nan
    report = audit_source(FakeImageSource(labels, {"redshift": z}), pixels=False)
    (f,) = report.by_code("metadata_column")
    assert f.severity == "medium", f.sentence
    assert f.details["missing_fraction"] == pytest.approx(0.2, abs=0.03)


def test_missingness_alone_can_leak():
    rng = np.random.default_rng(5)
    labels = shuffled_labels([300, 300], 5)
    z = rng.uniform(0, 0.2, labels.size)
    z[labels == 0] = np.nan  # only class 0 lacks a redshift
    report = audit_source(FakeImageSource(labels, {"redshift": z}), pixels=False)
    (f,) = report.by_code("metadata_column")
    assert f.severity == "high", f.sentence


def test_near_deterministic_column_is_high():
    rng = np.random.default_rng(6)
    labels = shuffled_labels([100, 100, 100, 100], 6)
    size = labels * 10.0 + rng.normal(0, 1, labels.size)
    report = audit_source(FakeImageSource(labels, {"petro_radius": size}), pixels=False)
    (f,) = report.by_code("metadata_column")
    assert f.severity == "high" and "nearly determines" in f.sentence
    assert f.details["accuracy"] > 0.9


def test_string_category_column():
    labels = shuffled_labels([100, 100, 100], 7)
    tag = np.array(["spiral" if y == 0 else "other" for y in labels], dtype=object)
    report = audit_source(FakeImageSource(labels, {"morph_tag": tag}), pixels=False)
    (f,) = report.by_code("metadata_column")
    assert f.severity in ("medium", "high"), f.sentence


def test_constant_column_is_ignored():
    labels = shuffled_labels([50, 50], 8)
    report = audit_source(FakeImageSource(labels, {"pxscale": np.full(100, 0.262)}), pixels=False)
    assert report.by_code("metadata_column") == []


# ----------------------------------------------------------------------------- duplicates


def test_duplicates_with_conflicting_labels_are_high():
    labels = shuffled_labels([60, 60, 60], 9)
    images = fake_images(labels, 9)
    a, b = np.flatnonzero(labels == 0)[0], np.flatnonzero(labels == 1)[0]
    images[b] = images[a]
    c, d = np.flatnonzero(labels == 2)[:2]
    images[d] = images[c]  # a plain duplicate too
    report = audit_source(FakeImageSource(labels, images=images))
    (conflict,) = report.by_code("duplicate_conflict")
    assert conflict.severity == "high" and conflict.details["groups"] == 1
    assert sorted(conflict.details["example_rows"]) == sorted([int(a), int(b)])
    (dups,) = report.by_code("duplicates")
    assert dups.severity == "medium" and dups.details == {"groups": 2, "rows": 4}


def test_plain_duplicates_are_medium_only():
    labels = shuffled_labels([60, 60, 60], 10)
    images = fake_images(labels, 10)
    c, d, e = np.flatnonzero(labels == 2)[:3]
    images[d] = images[c]
    images[e] = images[c]
    report = audit_source(FakeImageSource(labels, images=images))
    assert report.by_code("duplicate_conflict") == []
    assert severities(report, "duplicates") == ["medium"]
    assert report.by_code("duplicates")[0].details == {"groups": 1, "rows": 3}
    assert not report.has_high


def test_sky_neighbours_are_medium():
    rng = np.random.default_rng(11)
    labels = shuffled_labels([60, 60, 60], 11)
    ra, dec = rng.uniform(0, 360, 180), rng.uniform(-30, 30, 180)
    ra[1], dec[1] = ra[0], dec[0] + 0.4 / 3600
    report = audit_source(FakeImageSource(labels, {"ra": ra, "dec": dec}))
    (f,) = report.by_code("sky_neighbours")
    assert f.severity == "medium" and f.details["pairs"] == 1


# ----------------------------------------------------------------------------- classes


def test_imbalance_is_medium():
    report = audit_source(FakeImageSource(shuffled_labels([500, 30, 40], 12)), pixels=False)
    (f,) = report.by_code("imbalance")
    assert f.severity == "medium" and f.details["ratio"] == pytest.approx(500 / 30)
    assert report.by_code("class_counts") == []


def test_empty_class_is_medium():
    labels = shuffled_labels([50, 0, 50], 13)
    report = audit_source(FakeImageSource(labels, n_classes=3), pixels=False)
    (f,) = report.by_code("empty_class")
    assert f.severity == "medium" and f.details["empty"] == [1]


def test_balanced_classes_are_info():
    report = audit_source(FakeImageSource(shuffled_labels([50, 60, 70], 14)), pixels=False)
    assert severities(report, "class_counts") == ["info"]
    assert report.by_code("imbalance") == []


def test_too_few_rows_skips_the_classifier_checks():
    report = audit_source(FakeImageSource([0, 1, 0, 1]), pixels=False)
    assert severities(report, "skipped") == ["info"]
    assert report.by_code("row_order") == []


def test_margin_accounts_for_sample_size():
    assert beats_baseline(0.30, 0.20, 10_000)
    assert not beats_baseline(0.30, 0.20, 30)  # 3 standard errors at n=30 is 0.22
    assert not beats_baseline(0.24, 0.20, 10_000)  # below the 0.05 floor
    assert beats_baseline(0.99, 0.95, 10_000)  # the floor shrinks near a high baseline


# ----------------------------------------------------------------------------- output


def test_json_and_printed_report():
    report = audit_source(FakeImageSource(sorted_labels([40, 40, 40])))
    doc = json.loads(report.to_json())
    assert doc["has_high"] is True
    assert doc["findings"][0]["severity"] == "high"
    assert doc["findings"][0]["code"] == "row_order"
    buf = io.StringIO()
    print_report(report, Console(file=buf, width=200, color_system=None))
    text = buf.getvalue()
    assert "HIGH" in text and "row_order" in text and "NOT SAFE" in text

    clean = audit_source(FakeImageSource(shuffled_labels([40, 40, 40], 1)))
    buf = io.StringIO()
    print_report(clean, Console(file=buf, width=200, color_system=None))
    assert "Safe: no shortcut" in buf.getvalue()


# ----------------------------------------------------------------------------- CLI


def run_cli(args: list[str]) -> int:
    from astroreason.cli import main

    try:
        main(args)
    except SystemExit as exc:
        return int(exc.code or 0)
    return 0


def test_cli_audit_strict_exits_1_on_a_class_sorted_file(tmp_path, capsys):
    path = write_galaxy10_h5(tmp_path / "sorted.h5", sorted_labels([15] * 10))
    assert run_cli(["data", "audit", str(path), "--strict"]) == 1
    out = capsys.readouterr().out
    assert "row_order" in out and "NOT SAFE" in out
    assert run_cli(["data", "audit", str(path)]) == 0  # not strict: report only
    capsys.readouterr()
    assert run_cli(["data", "audit", str(path), "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["has_high"] and doc["n"] == 150
    codes = {f["code"] for f in doc["findings"] if f["severity"] == "high"}
    assert codes == {"row_order"}


def test_cli_audit_strict_passes_a_shuffled_file(tmp_path, capsys):
    path = write_galaxy10_h5(tmp_path / "shuffled.h5", shuffled_labels([15] * 10, 0))
    assert run_cli(["data", "audit", str(path), "--strict"]) == 0
    assert "NOT SAFE" not in capsys.readouterr().out


def test_object_column_of_numbers_is_tested_as_numbers():
    sorted_y = sorted_labels([50, 50, 50])
    perm = np.random.default_rng(3).permutation(sorted_y.size)
    ids = np.array([int(v) for v in perm], dtype=object)
    ids[5] = None
    report = audit_source(FakeImageSource(sorted_y[perm], {"object_id": ids}), pixels=False)
    (f,) = report.by_code("id_column")
    assert f.severity == "high" and f.details["feature"] == "value"


# ----------------------------------------------------------------------------- every column


def column_finding(report: AuditReport, name: str):
    (f,) = [f for f in report.findings if f.details.get("column") == name]
    return f


def test_column_of_a_2d_dataset_that_equals_the_label_is_high(tmp_path):
    from astroreason.data import open_source

    labels = shuffled_labels([20] * 10, 21)
    rng = np.random.default_rng(21)
    features = rng.normal(size=(labels.size, 5))
    features[:, 3] = labels
    path = write_galaxy10_h5(tmp_path / "f.h5", labels, features=features)
    report = audit_source(open_source(path), pixels=False)
    f = column_finding(report, "features[:,3]")
    assert f.severity == "high" and f.code == "metadata_column", f.sentence
    assert "'features[:,3]'" in f.sentence and report.has_high
    for j in (0, 1, 2, 4):  # every column is tested on its own
        assert column_finding(report, f"features[:,{j}]").severity != "high"
    buf = io.StringIO()
    print_report(report, Console(file=buf, width=300, color_system=None))
    assert "NOT SAFE" in buf.getvalue() and "Safe: no shortcut" not in buf.getvalue()


def test_2d_metadata_of_any_source_is_tested_column_by_column():
    labels = shuffled_labels([40, 40, 40], 22)
    box = np.random.default_rng(22).normal(size=(labels.size, 3))
    box[:, 1] = labels * 10.0 + 1
    report = audit_source(FakeImageSource(labels, {"box": box}), pixels=False)
    assert column_finding(report, "box[:,1]").severity == "high"
    assert column_finding(report, "box[:,0]").severity == "info"


def test_datasets_inside_hdf5_groups_are_audited(tmp_path):
    import h5py

    from astroreason.data import open_source

    labels = shuffled_labels([20] * 10, 23)
    n = labels.size
    rng = np.random.default_rng(23)
    path = write_galaxy10_h5(tmp_path / "g.h5", labels)
    with h5py.File(path, "a") as f:
        f.create_dataset("meta/redshift", data=labels * 0.02 + rng.normal(0, 1e-4, n))
        f.create_dataset("meta/deep/flags", data=rng.integers(0, 2, (n, 2)))
        f.create_dataset("meta/object_id", data=rng.permutation(n) + 1000)
        f.create_dataset("meta/short", data=np.arange(5))  # not one row per sample: ignored
    report = audit_source(open_source(path), pixels=False)
    assert column_finding(report, "meta/redshift").severity == "high"
    assert column_finding(report, "meta/object_id").code == "id_column"
    assert column_finding(report, "meta/deep/flags[:,1]").severity == "info"
    assert not [f for f in report.findings if f.details.get("column") == "meta/short"]
    assert not [f for f in report.findings if f.details.get("column") in ("images", "ans")]


def test_wide_dataset_is_screened_and_its_leaking_column_found():
    labels = shuffled_labels([50, 50, 50, 50], 24)
    wide = np.random.default_rng(24).normal(size=(labels.size, 100))
    wide[:, 77] = labels + np.random.default_rng(0).normal(0, 0.01, labels.size)
    report = audit_source(FakeImageSource(labels, {"spec": wide}), pixels=False)
    assert column_finding(report, "spec[:,77]").severity == "high"
    rest = column_finding(report, "spec[:,*]")
    assert rest.severity == "info" and rest.details["width"] == 100
    tested = [f for f in report.by_code("metadata_column") if "spec[:," in f.details["column"]]
    assert len(tested) == 8 + 1  # the 8 most associated columns, and the rest summed up


# ----------------------------------------------------------------------------- row-order patterns


def test_label_equal_to_row_modulo_10_is_high(tmp_path):
    from astroreason.data import open_source

    path = write_galaxy10_h5(tmp_path / "mod.h5", np.arange(60) % 10)
    report = audit_source(open_source(path))
    (f,) = report.by_code("row_order")
    assert f.severity == "high", f.sentence
    assert "repeating pattern" in f.sentence
    assert f.details["pattern"] == "row index modulo 10" and f.details["pattern_accuracy"] == 1.0


@pytest.mark.parametrize(
    "labels",
    [
        (np.arange(240) // 3) % 4,  # blocks of 3 rows cycling through 4 classes: period 12
        np.arange(300) % 7 % 3,  # an uneven periodic map
        np.array([0, 1, 0, 2, 1, 0] * 40),
    ],
)
def test_other_periodic_orders_are_high(labels):
    report = audit_source(FakeImageSource(labels), pixels=False)
    assert severities(report, "row_order") == ["high"]


def test_class_mix_drifting_along_the_file_is_high():
    rng = np.random.default_rng(25)
    n = 600
    drift = np.arange(n) * 3 // n  # three thirds, each dominated by one class
    labels = np.where(rng.random(n) < 0.6, drift, rng.integers(0, 3, n))
    report = audit_source(FakeImageSource(labels), pixels=False)
    (f,) = report.by_code("row_order")
    assert f.severity == "high", f.sentence


def test_row_patterns_stay_quiet_on_shuffled_rows():
    from astroreason.data.quality.audit import _CV, best_pattern, pattern_margin

    for counts in ([6] * 10, [20] * 10, [30, 30], [40, 70, 55]):
        for seed in range(150):
            y = shuffled_labels(counts, seed)
            cv = _CV(y, 5, seed)
            acc, what = best_pattern(np.arange(y.size), y.size, cv)
            assert acc - cv.majority <= pattern_margin(cv.majority, cv.n), (counts, seed, what)


def test_honest_synthetic_galaxy_file_is_not_flagged(tmp_path):
    from astroreason.data import open_source
    from astroreason.data.synthesis.galaxy import GalaxySynthConfig, write_galaxy_file

    path = write_galaxy_file(
        tmp_path / "g.h5", GalaxySynthConfig(n=120, size=32, seed=5), progress=False
    )
    report = audit_source(open_source(path))
    assert severities(report, "row_order") == ["info"], report.by_code("row_order")[0].sentence
    assert not report.has_high, serious(report)


def test_integer_id_equal_to_the_label_modulo_10_is_high():
    n = 200
    ids = np.random.default_rng(26).permutation(n) + 5000
    report = audit_source(FakeImageSource(ids % 10, {"object_id": ids}), pixels=False)
    f = column_finding(report, "object_id")
    assert f.severity == "high" and f.details["feature"] == "value modulo 10", f.sentence


# ----------------------------------------------------------------------------- coordinates, markup


def test_degenerate_coordinates_are_a_finding():
    labels = shuffled_labels([300, 300, 300], 27)
    n = labels.size
    src = FakeImageSource(labels, {"ra": np.zeros(n), "dec": np.zeros(n)})
    report = audit_source(src, pixels=False)
    (f,) = report.by_code("sky_coordinates")
    assert f.severity == "medium" and f.details["largest_sky_group"] == n
    assert "placeholders" in f.sentence and "splits ignore sky positions" in f.sentence
    assert report.by_code("sky_neighbours") == []  # not n^2 / 2 pairs
    clean = audit_source(
        FakeImageSource(labels, random_metadata(n, np.random.default_rng(1))), pixels=False
    )
    assert clean.by_code("sky_coordinates") == []


def test_print_report_never_reads_file_strings_as_markup():
    from astroreason.data.quality.audit import Finding

    report = AuditReport(
        "data/[bold]odd.h5",
        10,
        10,
        ("[red]X", "B"),
        (Finding("medium", "imbalance", "Classes are imbalanced: '[red]X' has 9 samples.", {}),),
    )
    buf = io.StringIO()
    print_report(report, Console(file=buf, width=300, color_system=None))
    text = buf.getvalue()
    assert "'[red]X' has 9" in text and "data/[bold]odd.h5" in text
