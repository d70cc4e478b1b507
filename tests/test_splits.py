"""Splits: seeded, stratified, never file order, duplicates and sky neighbours together, persisted."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest
from fakesources import (
    FakeImageSource,
    fake_images,
    scaled_galaxy10_counts,
    shuffled_labels,
    sorted_labels,
    write_galaxy10_h5,
)

from astroreason.data import base
from astroreason.data.quality.splits import (
    Split,
    SplitConfig,
    fallback_split_path,
    load_or_create_split,
    make_split,
    row_groups,
    split_for,
    split_path,
)
from astroreason.errors import ConfigError, DataError


@pytest.fixture(autouse=True)
def _home(tmp_path, monkeypatch):
    """Keep split fallbacks and the fingerprint cache out of the real home folder."""
    monkeypatch.setenv("ASTROREASON_HOME", str(tmp_path / "home"))


def sorted_source(n: int = 600, **kw) -> FakeImageSource:
    return FakeImageSource(sorted_labels(scaled_galaxy10_counts(n)), **kw)


def assert_partition(sp: Split, n: int) -> None:
    parts = [sp.train, sp.val, sp.test]
    allrows = np.concatenate(parts)
    assert allrows.size == n, f"{allrows.size} rows in the splits, source has {n}"
    assert np.array_equal(np.sort(allrows), np.arange(n)), "splits do not cover every row once"
    for p in parts:
        assert np.all(np.diff(p) > 0), "row ids not sorted and unique"


def split_of(sp: Split) -> np.ndarray:
    where = np.empty(sp.n, dtype=object)
    for name in ("train", "val", "test"):
        where[sp.rows(name)] = name
    return where


# ----------------------------------------------------------------------------- making splits


def test_same_seed_same_rows_other_seed_other_rows():
    src = sorted_source()
    a, b = make_split(src, SplitConfig(seed=3)), make_split(src, SplitConfig(seed=3))
    c = make_split(src, SplitConfig(seed=4))
    for name in ("train", "val", "test"):
        assert np.array_equal(a.rows(name), b.rows(name))
    assert not np.array_equal(a.test, c.test), "a different seed gave the same test rows"


def test_disjoint_complete_and_stratified():
    labels = sorted_labels(scaled_galaxy10_counts(1000))
    src = FakeImageSource(labels)
    sp = make_split(src, SplitConfig(seed=0, val=0.1, test=0.2))
    assert_partition(sp, len(src))
    for c, n_c in enumerate(np.bincount(labels)):
        n_test = int(np.sum(labels[sp.test] == c))
        n_val = int(np.sum(labels[sp.val] == c))
        assert abs(n_test - 0.2 * n_c) <= 1, f"class {c}: {n_test} test of {n_c}"
        assert abs(n_val - 0.1 * n_c) <= 1, f"class {c}: {n_val} val of {n_c}"
        assert sp.class_counts["test"][c] == n_test


def test_not_file_order_on_a_class_sorted_source():
    labels = sorted_labels([200, 200, 200])
    sp = make_split(FakeImageSource(labels), SplitConfig(seed=0))
    gaps = np.diff(sp.test)
    assert (gaps > 1).sum() > 20, (
        "test rows form contiguous blocks: file order leaked into the split"
    )
    # within one class the test rows are spread across its whole block, not its first or last 20%
    t0 = sp.test[labels[sp.test] == 0]
    assert t0.min() < 40 and t0.max() > 160, f"class-0 test rows span only {t0.min()}..{t0.max()}"
    # and not the same positions in every class
    t1 = sp.test[labels[sp.test] == 1] - 200
    assert not np.array_equal(t0, t1)


def test_rows_all_and_seeded_order():
    sp = make_split(sorted_source(300))
    assert np.array_equal(sp.rows("all"), np.arange(sp.n))
    shuffled = sp.rows("test", seed=1)
    assert sorted(shuffled.tolist()) == sp.test.tolist()
    assert not np.array_equal(shuffled, sp.test)
    assert np.array_equal(shuffled, sp.rows("test", seed=1))
    with pytest.raises(ConfigError, match="unknown"):
        sp.rows("holdout")  # type: ignore[arg-type]
    assert not sp.test.flags.writeable


@pytest.mark.parametrize("seed", range(5))
def test_each_class_in_each_split_even_when_tiny(seed):
    labels = shuffled_labels([3, 3, 4, 5, 2, 100], seed)
    sp = make_split(FakeImageSource(labels), SplitConfig(seed=seed))
    for name in ("train", "val", "test"):
        present = set(labels[sp.rows(name)].tolist())
        for c in (0, 1, 2, 3, 5):
            assert c in present, f"class {c} missing from {name} (seed {seed})"
    # a class of 2 cannot be in three splits; it must still be somewhere, and train has one
    assert 4 in set(labels[sp.train].tolist())


def test_class_of_three_in_groups_still_reaches_every_split():
    # class 0: a duplicate pair plus three singles; the repair pass must still give val and test one
    labels = np.array([0, 0, 0, 0, 0] + [1] * 60)
    images = fake_images(labels)
    images[1] = images[0]
    for seed in range(10):
        sp = make_split(FakeImageSource(labels, images=images), SplitConfig(seed=seed))
        where = split_of(sp)
        assert where[0] == where[1]
        for name in ("train", "val", "test"):
            assert 0 in labels[sp.rows(name)], f"seed {seed}: class 0 missing from {name}"


def test_zero_val_fraction_gives_an_empty_val_split():
    sp = make_split(sorted_source(200), SplitConfig(val=0.0, test=0.25))
    assert sp.val.size == 0
    assert abs(sp.test.size - 50) <= 10


@pytest.mark.parametrize("seed", range(4))
def test_duplicates_land_on_one_side(seed):
    rng = np.random.default_rng(seed)
    labels = shuffled_labels([60, 60, 60], seed)
    images = fake_images(labels, seed)
    groups = rng.permutation(labels.size)[:45].reshape(15, 3)  # disjoint triples
    for g in groups:
        images[g[1:]] = images[g[0]]  # copies, possibly across classes (conflicting labels)
    sp = make_split(FakeImageSource(labels, images=images), SplitConfig(seed=seed))
    assert_partition(sp, labels.size)
    where = split_of(sp)
    assert sp.n_groups_merged >= 10
    for g in groups:
        # groups may chain together; every row of one group must share a side
        assert len(set(where[g])) == 1, f"duplicate rows {g.tolist()} split across {where[g]}"


def test_sky_neighbours_land_on_one_side_and_far_ones_do_not_join():
    n = 300
    rng = np.random.default_rng(0)
    ra = rng.uniform(10, 350, n)
    dec = rng.uniform(-60, 60, n)
    close = [(0, 1, 0.5), (2, 3, 0.9), (4, 5, 0.3), (6, 7, 0.2)]
    for a, b, arcsec in close:
        ra[b], dec[b] = ra[a], dec[a] + arcsec / 3600
    ra[4], ra[5] = 359.99999, 0.00001  # across RA = 0 (0.07 arcsec apart at dec ~ 0)
    dec[4], dec[5] = 0.0, 0.0
    ra[6], ra[7], dec[6], dec[7] = 10.0, 190.0, 89.99995, 89.99995  # across the pole: 0.36 arcsec
    ra[8], dec[8] = ra[9], dec[9] + 2.0 / 3600  # 2 arcsec: not neighbours
    redshift = rng.uniform(0, 0.2, n)
    labels = shuffled_labels([100, 100, 100], 1)
    src = FakeImageSource(labels, metadata={"ra": ra, "dec": dec, "redshift": redshift})
    groups = row_groups(src, 1.0)
    for a, b, _ in close:
        assert groups[a] == groups[b], f"rows {a} and {b} are < 1 arcsec apart but not grouped"
    assert groups[8] != groups[9], "rows 2 arcsec apart were grouped with a 1 arcsec radius"
    assert len(set(groups.tolist())) == n - len(close)
    for seed in range(5):
        where = split_of(make_split(src, SplitConfig(seed=seed)))
        for a, b, _ in close:
            assert where[a] == where[b]
    # sky grouping off: no groups
    assert len(set(row_groups(src, 0.0).tolist())) == n


def test_nan_coordinates_are_ignored_not_grouped():
    labels = shuffled_labels([20, 20], 0)
    ra = np.full(40, np.nan)
    dec = np.full(40, np.nan)
    src = FakeImageSource(labels, metadata={"ra": ra, "dec": dec})
    assert len(set(row_groups(src).tolist())) == 40


def test_config_is_validated():
    with pytest.raises(ConfigError, match="val \\+ test"):
        SplitConfig(val=0.5, test=0.5)
    with pytest.raises(ConfigError, match="test"):
        SplitConfig(test=-0.1)
    with pytest.raises(ConfigError, match="sky_radius"):
        SplitConfig(sky_radius_arcsec=-1)


def test_summary_lists_counts_per_split_and_class():
    src = sorted_source(300)
    sp = make_split(src)
    text = sp.summary()
    assert f"train {sp.train.size}, val {sp.val.size}, test {sp.test.size}" in text
    assert "0 class 0" in text and "9 class 9" in text
    line = next(x for x in text.splitlines() if x.startswith("4 class 4"))
    assert line.split()[-3:] == [
        str(v) for v in (sp.class_counts[s][4] for s in ("train", "val", "test"))
    ]


# ----------------------------------------------------------------------------- persistence


def test_json_round_trip():
    sp = make_split(sorted_source(200), SplitConfig(seed=2, val=0.15, test=0.25))
    back = Split.from_json(sp.to_json())
    for name in ("train", "val", "test"):
        assert np.array_equal(back.rows(name), sp.rows(name))
    assert back.config == sp.config
    assert back.fingerprint == sp.fingerprint and back.n == sp.n
    assert back.class_names == sp.class_names and dict(back.class_counts) == dict(sp.class_counts)


def test_saved_beside_the_file_and_loaded_back(tmp_path, monkeypatch):
    data = tmp_path / "gal.h5"
    src = sorted_source(200, path=data)
    sp = load_or_create_split(src, SplitConfig(seed=5))
    stored = tmp_path / "gal.h5.split-seed5.json"
    assert split_path(src, 5) == stored and stored.is_file()
    assert json.loads(stored.read_text())["fingerprint"] == src.fingerprint()

    import astroreason.data.quality.splits as splits

    def boom(*a, **k):
        raise AssertionError("the split was remade instead of loaded")

    monkeypatch.setattr(splits, "_make_split", boom)
    again = load_or_create_split(src, SplitConfig(seed=5))
    assert np.array_equal(again.test, sp.test) and np.array_equal(again.val, sp.val)


def test_folder_source_split_lives_beside_the_folder(tmp_path):
    folder = tmp_path / "images"
    folder.mkdir()
    src = sorted_source(100, path=folder)
    load_or_create_split(src)
    assert (tmp_path / "images.split-seed0.json").is_file()
    assert not any(folder.iterdir())


def test_unwritable_data_folder_falls_back_to_astroreason_home(tmp_path):
    src = sorted_source(100)  # its path's folder does not exist
    sp = load_or_create_split(src, SplitConfig(seed=1))
    fb = fallback_split_path(src.fingerprint(), 1)
    assert fb == tmp_path / "home" / "splits" / f"{src.fingerprint()}-seed1.json"
    assert fb.is_file()
    assert np.array_equal(load_or_create_split(src, SplitConfig(seed=1)).test, sp.test)


def test_failed_write_beside_the_data_falls_back(tmp_path, monkeypatch):
    import astroreason.data.quality.splits as splits

    real = splits._write_atomic

    def refuse_data_folder(path, text):
        if path.parent == tmp_path / "ro":
            raise PermissionError(13, "Permission denied")
        real(path, text)

    monkeypatch.setattr(splits, "_write_atomic", refuse_data_folder)
    (tmp_path / "ro").mkdir()
    src = sorted_source(100, path=tmp_path / "ro" / "gal.h5")
    sp = load_or_create_split(src)
    assert not (tmp_path / "ro" / "gal.h5.split-seed0.json").exists()
    assert fallback_split_path(src.fingerprint(), 0).is_file()
    assert np.array_equal(load_or_create_split(src).train, sp.train)


def test_changed_data_is_refused_with_the_file_and_the_fix(tmp_path):
    data = tmp_path / "gal.h5"
    load_or_create_split(sorted_source(200, path=data))
    changed = FakeImageSource(shuffled_labels(scaled_galaxy10_counts(200), 1), path=data)
    with pytest.raises(DataError) as err:
        load_or_create_split(changed)
    msg = str(err.value)
    assert "gal.h5.split-seed0.json" in msg
    assert f"astroreason data split {data} --force" in msg
    assert "fingerprint" in msg
    # --force (overwrite) replaces it, and then it loads
    new = load_or_create_split(changed, overwrite=True)
    assert new.fingerprint == changed.fingerprint()
    assert load_or_create_split(changed).fingerprint == changed.fingerprint()


def test_other_fractions_are_refused(tmp_path):
    src = sorted_source(200, path=tmp_path / "gal.h5")
    load_or_create_split(src, SplitConfig(val=0.1, test=0.2))
    with pytest.raises(DataError, match="val=0.1 test=0.2.*val=0.2 test=0.2.*--val 0.2 --force"):
        load_or_create_split(src, SplitConfig(val=0.2, test=0.2))


def test_split_for_uses_the_stored_fractions_else_the_defaults(tmp_path):
    src = sorted_source(200, path=tmp_path / "gal.h5")
    made = load_or_create_split(src, SplitConfig(val=0.25, test=0.3))
    got = split_for(src)
    assert got.config == made.config and len(got.rows("val")) == len(made.rows("val"))
    assert len(got.rows("test")) == len(made.rows("test")) > len(make_split(src).rows("test"))
    other = sorted_source(200, path=tmp_path / "other.h5")
    assert split_for(other, seed=3).config == SplitConfig(seed=3)
    assert (tmp_path / "other.h5.split-seed3.json").is_file()
    changed = FakeImageSource(shuffled_labels(scaled_galaxy10_counts(200), 1), path=src.path)
    with pytest.raises(DataError, match="fingerprint"):  # still checked
        split_for(changed)


def test_corrupt_split_file_is_a_data_error(tmp_path):
    src = sorted_source(100, path=tmp_path / "gal.h5")
    (tmp_path / "gal.h5.split-seed0.json").write_text("{not json")
    with pytest.raises(DataError, match="not a valid split file"):
        load_or_create_split(src)
    (tmp_path / "gal.h5.split-seed0.json").write_text(
        make_split(src).to_json().replace(f'"n": {len(src)}', f'"n": {len(src) + 1}')
    )
    with pytest.raises(DataError, match="partition"):
        load_or_create_split(src)


def test_explicit_split_path(tmp_path):
    src = sorted_source(100)
    target = tmp_path / "elsewhere" / "my.json"
    sp = load_or_create_split(src, path=target)
    assert target.is_file()
    assert np.array_equal(Split.from_json(target.read_text()).train, sp.train)


# ----------------------------------------------------------------------------- fingerprint cache


def test_file_fingerprint_is_cached_and_notices_changes(tmp_path, monkeypatch):
    f = tmp_path / "a.bin"
    f.write_bytes(b"x" * 1000)
    first = base.file_fingerprint(f)
    calls = []
    real = base._hash_file
    monkeypatch.setattr(base, "_hash_file", lambda *a: (calls.append(a), real(*a)))
    assert base.file_fingerprint(f) == first
    assert base.file_fingerprint(os.path.relpath(f)) == first
    assert calls == [], "an unchanged file was hashed again"
    f.write_bytes(b"y" * 1000)  # same size: the mtime (and here also the time) differs
    st = os.stat(f)
    os.utime(f, ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))
    assert base.file_fingerprint(f) != first
    assert len(calls) == 1


def test_large_file_fingerprints_persist_on_disk(tmp_path, monkeypatch):
    monkeypatch.setattr(base, "_DISK_CACHE_MIN_BYTES", 10)
    monkeypatch.setattr(base, "_FINGERPRINTS", {})
    f = tmp_path / "big.bin"
    f.write_bytes(os.urandom(100))
    fp = base.file_fingerprint(f)
    assert (tmp_path / "home" / "fingerprints.json").is_file()
    monkeypatch.setattr(base, "_FINGERPRINTS", {})  # a new process
    monkeypatch.setattr(base, "_hash_file", lambda *a: pytest.fail("re-read a cached file"))
    assert base.file_fingerprint(f) == fp


def test_folder_fingerprint_changes_when_a_file_changes(tmp_path):
    d = tmp_path / "d"
    d.mkdir()
    (d / "a.txt").write_text("one")
    fp = base.file_fingerprint(d)
    (d / "b.txt").write_text("two")
    assert base.file_fingerprint(d) != fp


# ----------------------------------------------------------------------------- CLI


def run_cli(args: list[str]) -> int:
    from astroreason.cli import main

    try:
        main(args)
    except SystemExit as exc:
        return int(exc.code or 0)
    return 0


def test_cli_split_creates_then_loads_then_refuses_changed_data(tmp_path, capsys):
    path = write_galaxy10_h5(tmp_path / "g.h5", shuffled_labels([12] * 10, 0))
    assert run_cli(["data", "split", str(path), "--seed", "1"]) == 0
    out = capsys.readouterr().out
    assert "train 90, val 10, test 20" in out, out
    stored = tmp_path / "g.h5.split-seed1.json"
    assert stored.is_file()
    assert run_cli(["data", "split", str(path), "--seed", "1"]) == 0
    assert "train 90, val 10, test 20" in capsys.readouterr().out
    write_galaxy10_h5(path, shuffled_labels([12] * 10, 1))  # the data changes
    assert run_cli(["data", "split", str(path), "--seed", "1"]) == 2
    err = capsys.readouterr().err
    assert str(stored) in err and "--seed 1 --force" in err
    assert run_cli(["data", "split", str(path), "--seed", "1", "--force"]) == 0


# ----------------------------------------------------------------------------- degenerate coordinates


def test_cli_split_with_every_row_at_ra_dec_0_falls_back_with_a_warning(tmp_path, capsys):
    labels = shuffled_labels([6] * 10, 0)
    n = labels.size
    path = write_galaxy10_h5(tmp_path / "z.h5", labels, ra=np.zeros(n), dec=np.zeros(n))
    with pytest.warns(UserWarning, match="placeholders"):
        assert run_cli(["data", "split", str(path)]) == 0
    out = capsys.readouterr().out
    assert "train 40, val 10, test 10" in out, out
    assert "warning:" in out and "ignores sky positions" in out
    # the note is stored with the split and shown again when it is loaded
    assert run_cli(["data", "split", str(path)]) == 0
    assert "ignores sky positions" in capsys.readouterr().out


def test_degenerate_sky_group_is_ignored_but_real_neighbours_still_group():
    n = 300
    rng = np.random.default_rng(3)
    labels = shuffled_labels([100, 100, 100], 3)
    ra, dec = rng.uniform(10, 350, n), rng.uniform(-60, 60, n)
    ra[:200], dec[:200] = 0.0, 0.0  # two thirds of the rows at a placeholder position
    src = FakeImageSource(labels, metadata={"ra": ra, "dec": dec})
    with pytest.warns(UserWarning, match="200 of 300 rows into one sky group"):
        sp = make_split(src, SplitConfig(seed=0))
    assert_partition(sp, n)
    assert sp.notes and "ignores sky positions" in sp.summary()
    for name, frac in (("train", 0.7), ("val", 0.1), ("test", 0.2)):
        assert abs(sp.rows(name).size - frac * n) <= 3, (name, sp.summary())
    assert Split.from_json(sp.to_json()).notes == sp.notes

    # a pile of rows under half the file is a real group (kept together), and no warning
    ra[:200] = rng.uniform(10, 350, 200)
    dec[:200] = rng.uniform(-60, 60, 200)
    ra[:20], dec[:20] = 0.0, 0.0
    src = FakeImageSource(labels, metadata={"ra": ra, "dec": dec})
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        groups = row_groups(src, 1.0)
        sp = make_split(src, SplitConfig(seed=0))
    assert len(set(groups[:20].tolist())) == 1 and not sp.notes
    assert len(set(split_of(sp)[:20].tolist())) == 1


def test_sky_groups_of_placeholder_coordinates_cost_linear_time():
    import time

    from astroreason.data.quality.splits import degenerate_sky, sky_groups

    n = 200_000
    meta = {"ra": np.zeros(n), "dec": np.zeros(n)}
    t0 = time.perf_counter()
    groups = sky_groups(meta, 1.0)
    assert time.perf_counter() - t0 < 5  # every pair would be 2e10 of them
    assert groups is not None and groups.max() == 0
    assert "all 200000 rows" in degenerate_sky(groups)
    assert sky_groups({"ra": np.zeros(3)}, 1.0) is None
