"""AION-1's Legacy Survey image codec (``polymathic-aion``) behind our :class:`ImageCodec` interface.

Offline only: the weights come from a local folder laid out like the ``polymathic-ai/aion-base``
repository (``codecs/image/config.json`` and ``codecs/image/model.safetensors``, e.g. a snapshot
folder of the Hugging Face cache); they are read directly, no hub code runs, nothing is fetched.
The package is imported here only, so the rest of AstroReason works without it
(``pip install 'astroreason[aion]'``; its ``jaxtyping`` dependency is not in our CPU lock, so a
fresh ``make setup`` has no AION).

What AION's codec reads (``aion.codecs.ImageCodec`` 0.0.2): an ``Image(flux, bands)`` of fluxes in
nanomaggies (zero point 22.5), ``(batch, bands, H, W)`` with ``H, W >= 96``, centre-cropped to 96x96,
bands among ``DES-G DES-R DES-I DES-Z`` (Legacy Survey = DECam filters; a subset is allowed: the
missing bands are masked in its first layer), clamped, range-compressed by ``arcsinh``; it returns
576 ids, a 24x24 grid (one id per 4x4 pixels), from a finite scalar quantiser
(``quantizer.codebook_size`` ids).

Our mapping, RGB view -> AION input, and what it loses:

1. Undo our asinh stretch (:func:`astroreason.data.stretch.asinh_rgb`, R, G, B = z, r, g):
   ``sigma = softening * sinh(v * asinh(max / softening) / 255)``. Pixels at 0 were every value
   <= 0 before the stretch: the negative half of the sky noise is gone (the sky comes back with a
   positive bias), values above ``maximum`` (800 sigma) are clipped, and the uint8 steps are ~0.04
   sigma near zero, ~3% of the value above 10 sigma.
2. Noise units -> nanomaggies: ``flux = sigma * noise_nmgy[band]``. Our images are in units of the
   sky noise, not calibrated fluxes; ``noise_nmgy`` is an *assumed* per-pixel sky noise of a Legacy
   Survey coadd (order of magnitude, not a calibration), so absolute brightness is a guess.
3. Bands: g, r, z are passed as ``DES-G, DES-R, DES-Z``; there is no i band (AION masks it, as for
   Legacy Survey areas without i).
4. Size: AION reads 96x96; a view of side <= 96 (a multiple of 4) is placed in a zero-flux (empty
   sky) 96x96 field, on the 4-pixel token grid, and only the tokens over the view are returned
   (patch 4: a 64 px view is a 16x16 grid, 256 ids). The encoder's receptive field reaches into the
   empty margin, so edge tokens differ from those of a real, larger cutout. Pixel scale is not
   matched: AION was trained at 0.262"/px; our zooms x4 are at the source's 0.262"/px, the
   overview at 4x coarser pixels.

Decoding puts the grid back into the tokens of an empty field, decodes g, r, z and applies our
stretch again, for the trace viewer.

Tested here with AION's codec class built with random weights (``tests/test_codecs.py``): ids in
range on the expected grid, decode shapes, the offline folder round trip. The released weights
were not available on this machine (no hub access), so the quality of the mapping with the real
codec is unmeasured.
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import Any

import numpy as np

from astroreason.codecs.base import ImageCodec
from astroreason.data.stretch import STRETCH_MAX, STRETCH_SOFTENING, asinh_rgb
from astroreason.errors import ConfigError

AION_SIDE = 96
"""AION's image codec centre-crops its input to this side."""
AION_PATCH = 4
"""Pixels per token along a side (two 2x compressions): 96 px -> 24x24 ids."""
BANDS = ("DES-G", "DES-R", "DES-Z")
"""AION band names for our g, r, z (Legacy Survey images are DECam's filters)."""
NOISE_NMGY = (0.004, 0.006, 0.015)
"""Assumed per-pixel sky noise (nanomaggies) in g, r, z: our noise units -> AION's flux units."""
WEIGHTS = "codecs/image/model.safetensors"
CONFIG = "codecs/image/config.json"


class AionImageCodec(ImageCodec):
    """AION-1's image codec on our RGB views (see the module docstring for the mapping).

    Args:
        model: An ``aion.codecs.ImageCodec`` (loaded with :meth:`from_folder`, or built by a test).
        noise_nmgy: Assumed sky noise per pixel in g, r, z (nanomaggies).
        softening: The asinh softening our views were stretched with (noise sigmas).
        maximum: The value (noise sigmas) our stretch maps to 255.
    """

    name = "aion-legacysurvey"
    patch = AION_PATCH

    def __init__(
        self,
        model: Any,
        noise_nmgy: tuple[float, float, float] = NOISE_NMGY,
        softening: float = STRETCH_SOFTENING,
        maximum: float = STRETCH_MAX,
    ):
        self.model = model.eval()
        self.vocab_size = int(model.quantizer.codebook_size)
        self.noise = np.asarray(noise_nmgy, np.float32).reshape(3, 1, 1)
        self.softening, self.maximum = float(softening), float(maximum)
        self._sky: np.ndarray | None = None

    @classmethod
    def from_folder(cls, folder: str | os.PathLike, **kwargs: Any) -> AionImageCodec:
        """Load the codec from a local copy of ``polymathic-ai/aion-base`` (no download).

        Raises:
            ConfigError: The folder or its codec files are missing, ``polymathic-aion`` is not
                installed, or the weights do not load.
        """
        root = Path(folder).expanduser()
        for rel in ("", CONFIG, WEIGHTS):
            if not (root / rel).exists():
                raise ConfigError(f"codec: aion:{folder}: {root / rel} does not exist")
        try:
            from aion.codecs import ImageCodec as AionCodec
            from safetensors.torch import load_file
        except ImportError as err:
            raise ConfigError(
                f"codec: aion:{folder}: polymathic-aion is not importable ({err}); "
                "pip install 'astroreason[aion]'"
            ) from None
        # Built from the folder's files directly: polymathic-aion 0.0.2's from_pretrained looks for
        # "codecs/image/config.json" with os.listdir(folder) under huggingface_hub 2.x, never finds
        # it in a local folder, and builds the codec without its config.
        try:
            config = json.loads((root / CONFIG).read_text())
            model = AionCodec(**config)
            model.load_state_dict(load_file(str(root / WEIGHTS)), strict=True)
        except Exception as err:  # any failure here means a bad folder for the user
            msg = str(err).splitlines()[0] if str(err) else ""
            raise ConfigError(
                f"codec: aion:{folder}: cannot load ({type(err).__name__}: {msg})"
            ) from None
        return cls(model, **kwargs)

    # -------------------------------------------------------------- RGB <-> AION flux
    def to_flux(self, image: np.ndarray) -> np.ndarray:
        """``(3, H, W)`` g, r, z flux in nanomaggies of an RGB uint8 view (stretch undone)."""
        a = np.asarray(image, np.float32)[..., ::-1].transpose(2, 0, 1)  # B, G, R = g, r, z
        scale = math.asinh(self.maximum / self.softening) / 255.0
        return np.sinh(a * np.float32(scale)) * np.float32(self.softening) * self.noise

    def to_rgb(self, flux: np.ndarray) -> np.ndarray:
        """Our RGB view of ``(3, H, W)`` g, r, z nanomaggies (the stretch applied again)."""
        return asinh_rgb(np.asarray(flux, np.float32) / self.noise, self.softening, self.maximum)

    def _place(self, h: int, w: int) -> tuple[int, int]:
        if h > AION_SIDE or w > AION_SIDE:
            raise ValueError(f"{self.name}: views up to {AION_SIDE} px are supported, got {h}x{w}")
        return (AION_SIDE - h) // 8 * 4, (AION_SIDE - w) // 8 * 4

    def _encode_flux(self, flux: np.ndarray) -> np.ndarray:
        import torch
        from aion.modalities import LegacySurveyImage

        x = torch.from_numpy(np.ascontiguousarray(flux[None], dtype=np.float32))
        with torch.no_grad():
            ids = self.model.encode(LegacySurveyImage(flux=x, bands=list(BANDS)))
        side = AION_SIDE // AION_PATCH
        return ids.reshape(side, side).numpy().astype(np.int64)

    def _sky_tokens(self) -> np.ndarray:
        if self._sky is None:
            self._sky = self._encode_flux(np.zeros((3, AION_SIDE, AION_SIDE), np.float32))
        return self._sky

    def encode(self, image: np.ndarray) -> np.ndarray:
        """AION ids over the view: ``(H // 4, W // 4)``, the view placed in an empty 96 px field."""
        a = self.check_image(image)
        h, w = a.shape[:2]
        oy, ox = self._place(h, w)
        field = np.zeros((3, AION_SIDE, AION_SIDE), np.float32)
        field[:, oy : oy + h, ox : ox + w] = self.to_flux(a)
        p = AION_PATCH
        return self._encode_flux(field)[oy // p : (oy + h) // p, ox // p : (ox + w) // p].copy()

    def decode(self, tokens: np.ndarray) -> np.ndarray:
        """The RGB view of a grid: inside an empty field's tokens, decoded, cropped, stretched."""
        import torch

        t = np.asarray(tokens)
        if t.ndim != 2 or not np.issubdtype(t.dtype, np.integer):
            raise ValueError(
                f"{self.name}: expected a 2-D integer token grid, got {t.shape} {t.dtype}"
            )
        if t.size and (t.min() < 0 or t.max() >= self.vocab_size):
            raise ValueError(f"{self.name}: token ids must be in [0, {self.vocab_size})")
        p = AION_PATCH
        h, w = t.shape[0] * p, t.shape[1] * p
        oy, ox = self._place(h, w)
        grid = self._sky_tokens().copy()
        grid[oy // p : (oy + h) // p, ox // p : (ox + w) // p] = t
        with torch.no_grad():
            out = self.model.decode(torch.from_numpy(grid.reshape(1, -1)), bands=list(BANDS))
        flux = out.flux[0].numpy()[:, oy : oy + h, ox : ox + w]
        return self.to_rgb(flux)

    def describe(self) -> dict[str, Any]:
        """Name, ids, patch and the mapping's assumptions."""
        return super().describe() | {
            "kind": "aion",
            "bands": list(BANDS),
            "noise_nmgy": [float(v) for v in self.noise.ravel()],
            "input": f"view in an empty {AION_SIDE} px field",
        }
