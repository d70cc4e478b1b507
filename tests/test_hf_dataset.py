"""Local Hugging Face datasets: save_to_disk folders, repo folders and parquet, offline."""

from __future__ import annotations

import os
import pickle
import socket
from pathlib import Path

import datasets
import numpy as np
import pytest
from PIL import Image

from astroreason.data import open_source
from astroreason.data.classes import GALAXY10_DECALS
from astroreason.data.readers.hf_dataset import HFDatasetSource, hf_offline
from astroreason.data.readers.parquet import ParquetGalaxySource
from astroreason.errors import DataError


def images(n: int, side: int = 8, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (n, side, side, 3), dtype=np.uint8)


def dataset(imgs: np.ndarray, labels, label_feature=None, **columns) -> datasets.Dataset:
    features = {"image": datasets.Image(), "label": label_feature or datasets.Value("int64")}
    for k, v in columns.items():
        features[k] = datasets.Value("string" if isinstance(v[0], str) else "float64")
    return datasets.Dataset.from_dict(
        {"image": [Image.fromarray(a) for a in imgs], "label": list(labels), **columns},
        features=datasets.Features(features),
    )


def assert_data_error(excinfo, *needles: str) -> None:
    msg = str(excinfo.value)
    assert "\n" not in msg, msg
    for needle in needles:
        assert needle in msg, f"{needle!r} not in {msg!r}"


@pytest.fixture
def no_network(monkeypatch):
    """Any socket connection fails, and the environment does not ask for offline mode."""

    def refuse(*args, **kwargs):
        raise AssertionError(f"network access attempted: {args}")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setenv("HF_HUB_OFFLINE", "0")
    monkeypatch.delenv("HF_DATASETS_OFFLINE", raising=False)
    monkeypatch.setattr(datasets.config, "HF_HUB_OFFLINE", False)


def test_save_to_disk_folder_with_classlabel(tmp_path, no_network):
    imgs = images(6, seed=1)
    feature = datasets.ClassLabel(names=["star", "galaxy", "qso"])
    ds = dataset(imgs, [2, 0, 1, 1, 0, 2], feature, ra=[1.0, 2.0, 3.0, 4.0, 5.0, 6.0])
    ds.save_to_disk(str(tmp_path / "saved"))
    src = open_source(tmp_path / "saved")
    assert isinstance(src, HFDatasetSource) and not isinstance(src, ParquetGalaxySource)
    assert src.class_names == ("star", "galaxy", "qso") and src.class_source == "ClassLabel"
    np.testing.assert_array_equal(src.labels(), [2, 0, 1, 1, 0, 2])
    assert len(src) == 6 and src.image_column == "image" and src.label_column == "label"
    for i in (0, 5):
        np.testing.assert_array_equal(src[i].image, imgs[i])
    assert src[3].meta == {"ra": 4.0}
    np.testing.assert_allclose(src.metadata()["ra"], [1, 2, 3, 4, 5, 6])
    clone = pickle.loads(pickle.dumps(src))
    np.testing.assert_array_equal(clone[2].image, imgs[2])
    assert datasets.config.HF_HUB_OFFLINE is False  # restored after loading
    assert os.environ["HF_HUB_OFFLINE"] == "0"


def test_dataset_dict_split_choice(tmp_path):
    imgs = images(5, seed=2)
    feature = datasets.ClassLabel(names=["a", "b"])
    dd = datasets.DatasetDict(
        {
            "train": dataset(imgs[:3], [0, 1, 0], feature),
            "test": dataset(imgs[3:], [1, 1], feature),
        }
    )
    dd.save_to_disk(str(tmp_path / "dd"))
    train = open_source(tmp_path / "dd")
    assert train.hf_split == "train" and len(train) == 3
    test = open_source(tmp_path / "dd", hf_split="test")
    assert len(test) == 2 and test.labels().tolist() == [1, 1]
    np.testing.assert_array_equal(test[1].image, imgs[4])
    assert test.fingerprint() != train.fingerprint()  # one folder, two data sets
    with pytest.raises(DataError) as excinfo:
        open_source(tmp_path / "dd", hf_split="validation")
    assert_data_error(excinfo, "dd", "hf_split", "no split 'validation'", "train, test")


def test_repo_folder_parquet_string_labels(tmp_path, no_network):
    repo = tmp_path / "repo"
    (repo / "data").mkdir(parents=True)
    (repo / "README.md").write_text("---\nlicense: cc-by-4.0\n---\n# galaxies\n")
    imgs = images(7, seed=3)
    names = ["spiral", "elliptical", "spiral", "merger", "elliptical", "spiral", "merger"]
    ids = [f"obj{i}" for i in range(7)]
    dataset(imgs[:5], names[:5], datasets.Value("string"), object_id=ids[:5]).to_parquet(
        str(repo / "data" / "train-00000-of-00001.parquet")
    )
    dataset(imgs[5:], names[5:], datasets.Value("string"), object_id=ids[5:]).to_parquet(
        str(repo / "data" / "test-00000-of-00001.parquet")
    )
    cache = tmp_path / "hf-cache"
    src = open_source(repo, cache_dir=cache)
    assert isinstance(src, HFDatasetSource) and not isinstance(src, ParquetGalaxySource)
    assert src.hf_split == "train" and sorted(src.split_names) == ["test", "train"]
    assert src.class_names == ("elliptical", "merger", "spiral")  # sorted unique strings
    assert src.class_source == "sorted string labels"
    np.testing.assert_array_equal(src.labels(), [2, 0, 2, 1, 0])
    np.testing.assert_array_equal(src[4].image, imgs[4])
    assert list(src.metadata()["object_id"]) == ids[:5]
    test = open_source(repo, hf_split="test", cache_dir=cache)
    assert len(test) == 2 and test.class_names == ("merger", "spiral")  # its own labels
    np.testing.assert_array_equal(test[0].image, imgs[5])


def test_single_parquet_file_through_load_dataset(tmp_path):
    imgs = images(4, seed=4)
    f = tmp_path / "cutouts.parquet"
    dataset(imgs, ["b", "a", "b", "a"], datasets.Value("string")).to_parquet(str(f))
    src = open_source(f, cache_dir=tmp_path / "hf-cache")
    assert isinstance(src, HFDatasetSource) and src.class_names == ("a", "b")
    np.testing.assert_array_equal(src.labels(), [1, 0, 1, 0])
    np.testing.assert_array_equal(src[3].image, imgs[3])
    with pytest.raises(DataError) as excinfo:
        open_source(f, hf_split="test", cache_dir=tmp_path / "hf-cache")
    assert_data_error(excinfo, "cutouts.parquet", "no split 'test'")


def test_integer_labels_galaxy10_names_or_numbers(tmp_path):
    imgs = images(10, seed=5)
    f = tmp_path / "g10.parquet"
    dataset(imgs, list(range(10))).to_parquet(str(f))
    old = open_source(f, cache_dir=tmp_path / "hf-cache")
    assert type(old) is ParquetGalaxySource  # the Galaxy10 export reader, as before
    new = open_source(f, hf_split="train", cache_dir=tmp_path / "hf-cache")
    assert type(new) is HFDatasetSource and new.class_names == GALAXY10_DECALS
    np.testing.assert_array_equal(new[7].image, old[7].image)

    three = tmp_path / "three.parquet"
    dataset(imgs[:4], [0, 2, 1, 2]).to_parquet(str(three))
    src = HFDatasetSource(three, cache_dir=tmp_path / "hf-cache")
    assert src.class_names == ("0", "1", "2") and src.labels().tolist() == [0, 2, 1, 2]


def test_classlabel_with_other_count_is_not_taken_for_galaxy10(tmp_path):
    f = tmp_path / "four.parquet"
    feature = datasets.ClassLabel(names=["w", "x", "y", "z"])
    dataset(images(4, seed=6), [3, 2, 1, 0], feature).to_parquet(str(f))
    src = open_source(f, cache_dir=tmp_path / "hf-cache")
    assert type(src) is HFDatasetSource and src.class_names == ("w", "x", "y", "z")


def test_bad_inputs(tmp_path):
    ds = datasets.Dataset.from_dict(
        {"image": [Image.fromarray(a) for a in images(2)], "kind": ["a", "b"]},
        features=datasets.Features({"image": datasets.Image(), "kind": datasets.Value("string")}),
    )
    ds.save_to_disk(str(tmp_path / "nolabel"))
    with pytest.raises(DataError) as excinfo:
        open_source(tmp_path / "nolabel")
    assert_data_error(excinfo, "nolabel", "no label column", "found image, kind")
    src = HFDatasetSource(tmp_path / "nolabel", label_column="kind")
    assert src.class_names == ("a", "b")

    dataset(images(2), [0, None]).save_to_disk(str(tmp_path / "nulls"))
    with pytest.raises(DataError) as excinfo:
        open_source(tmp_path / "nulls")
    assert_data_error(excinfo, "nulls", "label", "null label at row 1")

    broken = tmp_path / "broken"
    dataset(images(2), [0, 1]).save_to_disk(str(broken))
    (broken / "state.json").write_text("{ not json")
    with pytest.raises(DataError) as excinfo:
        open_source(broken)
    assert_data_error(excinfo, "broken", "not readable as a saved dataset")

    with pytest.raises(DataError) as excinfo:
        HFDatasetSource(tmp_path / "missing")
    assert_data_error(excinfo, "missing", "no such file")


def test_hf_offline_sets_and_restores(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "0")
    monkeypatch.delenv("HF_DATASETS_OFFLINE", raising=False)
    monkeypatch.setattr(datasets.config, "HF_HUB_OFFLINE", False)
    with hf_offline():
        assert os.environ["HF_HUB_OFFLINE"] == os.environ["HF_DATASETS_OFFLINE"] == "1"
        assert datasets.config.HF_HUB_OFFLINE is True
        assert datasets.utils.are_progress_bars_disabled()
    assert os.environ["HF_HUB_OFFLINE"] == "0" and "HF_DATASETS_OFFLINE" not in os.environ
    assert datasets.config.HF_HUB_OFFLINE is False


def test_undecodable_image_names_row(tmp_path):
    table = {"image": [{"bytes": b"garbage", "path": None}], "label": ["x"]}
    features = datasets.Features({"image": datasets.Image(), "label": datasets.Value("string")})
    datasets.Dataset.from_dict(table, features=features).save_to_disk(str(tmp_path / "bad"))
    src = open_source(tmp_path / "bad")
    with pytest.raises(DataError) as excinfo:
        src[0]
    assert_data_error(excinfo, "bad", "image", "row 0", "cannot decode")
    assert Path(src.path).name == "bad"
