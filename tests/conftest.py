"""Shared fixtures: small synthetic data sets written once per test session."""

import os

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")


@pytest.fixture(scope="session")
def galaxy_file(tmp_path_factory):
    """A synthetic Galaxy10-format file: 60 galaxies, 128 px, all ten classes."""
    from astroreason.data.synthesis.galaxy import GalaxySynthConfig, write_galaxy_file

    path = tmp_path_factory.mktemp("galaxy") / "synth.h5"
    write_galaxy_file(path, GalaxySynthConfig(n=60, size=128, seed=3), progress=False)
    return path


@pytest.fixture(scope="session")
def spectra_dir(tmp_path_factory):
    """A folder of 32 synthetic SDSS-format spectra, classes balanced."""
    from astroreason.data.synthesis.spectra import SpectraSynthConfig, write_spectra_dir

    path = tmp_path_factory.mktemp("spectra") / "spectra_set"
    write_spectra_dir(path, SpectraSynthConfig(n=32, seed=5), progress=False)
    return path


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory):
    """The tiny Qwen3-VL, built offline once per session."""
    from astroreason.models.tiny import build_tiny_model

    return build_tiny_model(tmp_path_factory.mktemp("tiny") / "model")


@pytest.fixture(scope="session")
def vllm_server(tiny_model_dir, tmp_path_factory):
    """A real vLLM CPU server for the tiny model, started once per session and stopped at the end."""
    from astroreason.models.serving import ServeConfig, VLLMServer

    log = tmp_path_factory.mktemp("vllm") / "server.log"
    cfg = ServeConfig(
        model=str(tiny_model_dir),
        served_model_name="tiny",
        max_model_len=4096,
        enforce_eager=True,
        log_path=str(log),
    )
    with VLLMServer(cfg) as server:
        yield server
