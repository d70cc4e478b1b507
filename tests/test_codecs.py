"""Image codecs: the shipped tiny-vq (shapes, ids, round trip, its card's numbers), open_codec's
specs and errors, the training command on a tiny budget, and the AION adapter where it imports."""

import json
import time
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from astroreason.cli import app, main
from astroreason.codecs import (
    TINY_VQ,
    VQCodec,
    open_codec,
    parse_tokens_text,
    tokens_text,
)
from astroreason.codecs.train import FRAMINGS, framed_views, galaxy_file, measure
from astroreason.codecs.vq import CODEBOOK_FILE, CODEC_FILE
from astroreason.errors import ConfigError


@pytest.fixture(scope="module")
def codec():
    return open_codec("tiny-vq")


@pytest.fixture(scope="module")
def info():
    return json.loads((TINY_VQ / CODEC_FILE).read_text())


@pytest.fixture(scope="module")
def held_out(tmp_path_factory, info):
    """The card's held-out views, rebuilt: same seed, count and framings (a few seconds)."""
    h = info["held_out"]
    work = tmp_path_factory.mktemp("codec-held-out")
    return framed_views(galaxy_file(work, h["n_galaxies"], h["seed"]), 64, h["seed"])


def test_shipped_codec_contract(codec, info, held_out):
    assert (codec.name, codec.vocab_size, codec.patch) == ("tiny-vq", 256, 8)
    assert codec.describe()["vocab_size"] == 256 and info["vocab_size"] == 256
    for framing in FRAMINGS:
        view = held_out[framing][0]
        ids = codec.encode(view)
        assert ids.shape == (8, 8) and ids.dtype == np.int64
        assert 0 <= ids.min() and ids.max() < 256
        rec = codec.decode(ids)
        assert rec.shape == view.shape and rec.dtype == np.uint8
        assert np.array_equal(codec.encode(view), ids)  # deterministic
        assert np.array_equal(codec.encode(rec), ids)  # a decoded image is a fixed point
    # another side that is a multiple of the patch: the 96 px matched overview
    assert codec.encode(np.zeros((96, 96, 3), np.uint8)).shape == (12, 12)


def test_round_trip_beats_grey_and_reproduces_the_card(codec, info, held_out):
    grey = np.asarray(info["recipe"]["grey_baseline_rgb"])
    q = measure(codec, held_out, grey)
    card = info["quality"]
    for framing in FRAMINGS:
        m, c = q["framings"][framing], card["framings"][framing]
        assert m["mse_codec"] < 0.5 * m["mse_grey"], (framing, m)
        assert m["mse_codec"] < m["mse_patch_mean"], (framing, m)
        assert m["psnr_codec"] == pytest.approx(c["psnr_codec"], abs=0.05), framing
        assert m["psnr_galaxy"] == pytest.approx(c["psnr_galaxy"], abs=0.05), framing
    assert q["usage"] == pytest.approx(card["usage"], abs=0.01)
    assert q["usage"] > 0.9


def test_encoding_a_view_is_fast(codec, held_out):
    views = held_out["overview"][:50]
    times = []
    for v in views:
        t0 = time.perf_counter()
        codec.encode(v)
        times.append(time.perf_counter() - t0)
    assert np.median(times) < 0.005


def test_tokens_text_round_trip(codec, held_out):
    ids = codec.encode(held_out["zoom2"][3])
    text = tokens_text(ids)
    assert text.startswith("<v") and text.count("<v") == 64
    assert np.array_equal(parse_tokens_text(text, ids.shape), ids)
    with pytest.raises(ValueError, match="expected 64"):
        parse_tokens_text(text[: -len(f"<v{int(ids.ravel()[-1])}>")], ids.shape)
    with pytest.raises(ValueError, match="<vN>"):
        parse_tokens_text("[1, 2, 3]", (1, 3))


def test_tiny_tokenizer_reads_one_token_per_id(codec, held_out):
    """The tiny Qwen3-VL holds every tiny-vq id as one token (digits cost about 3.6 a id)."""
    from astroreason.models.tiny import TinyModelConfig, build_tokenizer

    tok = build_tokenizer(TinyModelConfig())
    ids = codec.encode(held_out["crop"][0])
    text = tokens_text(ids)
    enc = tok(text, add_special_tokens=False)["input_ids"]
    assert len(enc) == ids.size
    assert tok.decode(enc) == text
    digits = "[" + ", ".join(str(int(t)) for t in ids.ravel()) + "]"
    assert len(tok(digits, add_special_tokens=False)["input_ids"]) > 3 * ids.size


@pytest.mark.parametrize(
    "image",
    [
        np.zeros((64, 64, 3), np.float32),
        np.zeros((64, 64), np.uint8),
        np.zeros((64, 64, 4), np.uint8),
        np.zeros((60, 64, 3), np.uint8),
    ],
    ids=["float", "grey", "rgba", "side-60"],
)
def test_bad_images_raise(codec, image):
    with pytest.raises(ValueError, match="tiny-vq"):
        codec.encode(image)


@pytest.mark.parametrize(
    "tokens", [np.full((2, 2), 256), np.full((2, 2), -1), np.zeros(4, int), np.zeros((2, 2))]
)
def test_bad_token_grids_raise(codec, tokens):
    with pytest.raises(ValueError):
        codec.decode(tokens)


def _write(folder: Path, codebook=None, **info) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    cb = np.zeros((4, 12), np.float32) if codebook is None else codebook
    np.save(folder / CODEBOOK_FILE, cb)
    (folder / CODEC_FILE).write_text(json.dumps({"kind": "vq", "patch": 2, "vocab_size": 4} | info))
    return folder


def test_open_codec_reads_a_folder(tmp_path):
    cb = np.arange(48, dtype=np.float32).reshape(4, 12) * 5
    c = open_codec(str(_write(tmp_path / "c", cb, name="mine")))
    assert (c.name, c.vocab_size, c.patch) == ("mine", 4, 2)
    img = VQCodec(cb, 2).decode(np.array([[0, 3], [2, 1]]))
    assert np.array_equal(c.encode(img), [[0, 3], [2, 1]])
    again = c.save(tmp_path / "copy")
    assert np.array_equal(open_codec(str(again)).codebook, c.codebook)


@pytest.mark.parametrize(
    "make, match",
    [
        (lambda p: "", "expected a name"),
        (lambda p: "no-such-codec", "neither a built-in codec"),
        (lambda p: str(p), "has no codec.json"),
        (lambda p: (p / CODEC_FILE).write_text("{oops") and str(p), "not readable JSON"),
        (lambda p: str(_write(p, vocab_size=5)), "4 codewords, codec.json says 5"),
        (lambda p: str(_write(p, kind="other")), "unknown codec kind"),
        (lambda p: str(_write(p, patch="x")), "bad or missing field"),
        (lambda p: str(_write(p, np.zeros((4, 7), np.float32))), "codebook must be"),
        (lambda p: "aion:", "needs a folder"),
        (lambda p: f"aion:{p}/missing", "does not exist"),
        (lambda p: f"aion:{p}", "codecs/image/config.json does not exist"),
    ],
)
def test_bad_specs_raise_one_line_config_errors(tmp_path, make, match):
    with pytest.raises(ConfigError, match=match) as err:
        open_codec(make(tmp_path))
    assert "\n" not in str(err.value)


def test_cli_trains_a_codec_on_a_tiny_budget(tmp_path):
    out = tmp_path / "vq"
    args = ["model", "codec", "--out", str(out), "--work", str(tmp_path / "work")]
    args += ["--n", "10", "--n-eval", "10", "--vocab", "16", "--compare", "8"]
    res = CliRunner().invoke(app, args)
    assert res.exit_code == 0, res.output
    assert "held-out PSNR" in res.output
    c = open_codec(str(out))
    assert (c.vocab_size, c.patch) == (16, 8)
    info = json.loads((out / CODEC_FILE).read_text())
    assert info["recipe"]["seed"] == 9003 and info["held_out"]["seed"] == 9004
    assert set(info["quality"]["framings"]) == set(FRAMINGS)
    assert set(info["vocab_comparison"]) == {"8", "16"}
    card = (out / "README.md").read_text()
    assert "astroreason model codec" in card and "| zoom4 |" in card
    assert (out / "examples.png").stat().st_size > 0


def test_cli_user_errors_are_one_line(capsys):
    for args, text in ((["--compare", "a,b"], "--compare"), (["--vocab", "1"], "--vocab")):
        with pytest.raises(SystemExit) as exc:
            main(["model", "codec", *args])
        assert exc.value.code == 2
        err = capsys.readouterr().err
        assert err.startswith("error: ") and text in err and err.count("\n") == 1


def test_shipped_folder_is_small_and_has_its_card():
    size = sum(p.stat().st_size for p in TINY_VQ.iterdir())
    assert size < 2_000_000
    card = (TINY_VQ / "README.md").read_text()
    for text in ("seed 9003", "seed 9004", "astroreason model codec", "examples.png", "PSNR"):
        assert text in card


# ------------------------------------------------------------------ the AION adapter
class _StubModel:
    """Just enough of an AION codec to build the adapter (the stretch inversion needs no torch)."""

    class quantizer:  # noqa: N801
        codebook_size = 4375

    def eval(self):
        return self


def test_aion_stretch_inversion_is_exact_on_uint8():
    from astroreason.codecs.aion import AionImageCodec

    c = AionImageCodec(_StubModel())
    img = np.random.default_rng(1).integers(0, 256, (64, 64, 3), dtype=np.uint8)
    flux = c.to_flux(img)
    assert flux.shape == (3, 64, 64) and (flux >= 0).all()
    assert np.array_equal(c.to_rgb(flux), img)
    # band order: our R, G, B are z, r, g; AION gets g, r, z
    assert np.array_equal(np.argsort(flux[:, 0, 0] / c.noise[:, 0, 0]), np.argsort(img[0, 0, ::-1]))


@pytest.fixture(scope="module")
def aion_codec():
    import torch  # polymathic-aion is in the CPU lock (requirements/cpu.txt), so this always runs
    from aion.codecs import ImageCodec

    torch.manual_seed(0)
    return ImageCodec(
        quantizer_levels=[7, 5, 5, 5, 5],
        hidden_dims=16,
        multisurvey_projection_dims=12,
        n_compressions=2,
        num_consecutive=1,
        embedding_dim=5,
    )


def test_aion_adapter_with_random_weights(aion_codec, held_out, tmp_path):
    from aion.modalities import LegacySurveyImage

    from astroreason.codecs.aion import AionImageCodec

    c = AionImageCodec(aion_codec)
    assert (c.vocab_size, c.patch) == (7 * 5 * 5 * 5 * 5, 4)
    view = held_out["zoom4"][0]
    ids = c.encode(view)
    assert ids.shape == (16, 16) and ids.dtype == np.int64
    assert 0 <= ids.min() and ids.max() < c.vocab_size
    assert np.array_equal(c.encode(view), ids)
    rec = c.decode(ids)
    assert rec.shape == (64, 64, 3) and rec.dtype == np.uint8
    assert c.encode(np.zeros((96, 96, 3), np.uint8)).shape == (24, 24)
    with pytest.raises(ValueError, match="up to 96"):
        c.encode(np.zeros((128, 128, 3), np.uint8))
    # the offline folder: AION's own layout, loaded without any hub call
    aion_codec.save_pretrained(tmp_path, modality=LegacySurveyImage)
    loaded = open_codec(f"aion:{tmp_path}")
    assert np.array_equal(loaded.encode(view), ids)
    (tmp_path / "codecs/image/model.safetensors").write_bytes(b"not weights")
    with pytest.raises(ConfigError, match="cannot load"):
        open_codec(f"aion:{tmp_path}")
