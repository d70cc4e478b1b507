"""``AstroReason/Spectrum-v0``: classify a 1-D spectrum, opening wavelength windows at full resolution.

Description:
    One episode shows one spectrum (SDSS ``spec-*.fits`` files, real or synthetic). The model first
    sees the whole spectrum plotted at the view size, where narrow lines (1-3 A) are unresolved;
    ``spectrum_window(lambda_min, lambda_max)`` plots an observed-frame window (Angstrom) at full
    resolution with labelled wavelength ticks.

Action Space:
    ``Text``: the model's raw reply (one ``<tool_call>`` or one ``<answer>``).

Observation Space:
    ``Dict(image=Box(0, 255, (view_height, view_width, 3), uint8), text=Text)``.

Rewards:
    As for the galaxy environment (``RewardConfig``).

Episode End:
    Terminated on a valid answer; truncated (``over_turn``) after ``max_turns`` replies.

Placebos:
    ``reinput`` shows the overview plot again; ``random-view`` plots a window of the width the real
    call would have shown (after clipping to the data) at a uniformly random place inside the data,
    drawn with the env's RNG. The caption's first line is the real call's; with ``table`` the
    table is of the window shown, so no number of the requested window leaks through the text.

Arguments:
    ``gymnasium.make("AstroReason/Spectrum-v0", data=PATH, split="test", task="class", ...)``. ``task``
    is ``class`` (SDSS CLASS: STAR, GALAXY, QSO; any real SDSS file) or ``subclass`` (STAR,
    GALAXY STARFORMING, GALAXY AGN, QSO BROADLINE: the synthetic families, where narrow-line ratios
    decide). A sample outside the task's classes is an error when the data loads.

Version History:
    * v0: first version (spectrum_window; conditions as for galaxies; ``no-tools-matched`` plots the
      whole spectrum at the width a tool run may see in all); later, without changing any existing
      condition, the placebos ``reinput`` (each window is the overview plot again) and
      ``random-view`` (a window of the shown width at a random place inside the data).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from astroreason.conditions import condition_spec
from astroreason.data import SampleSource
from astroreason.data.lines import teacher_window
from astroreason.envs.base import EnvConfig, ToolEnv, check_view_side, make_config
from astroreason.errors import ConfigError
from astroreason.tools import (
    SpectralWindow,
    SpectrumState,
    render_spectrum,
    spectrum_overview,
    tools_for,
    window_table,
)

MAX_MATCHED_WIDTH = 16384
"""Widest ``no-tools-matched`` plot in pixels."""


@dataclass(frozen=True)
class SpectrumEnvConfig(EnvConfig):
    """Spectrum environment settings (plus those of :class:`EnvConfig`).

    Attributes:
        task: ``class`` or ``subclass`` (see the module docstring).
        view_width: Plot width in pixels, 64 .. ``VIEW_SIDE_RANGE[1]``.
        view_height: Plot height in pixels, 48 .. ``VIEW_SIDE_RANGE[1]``
            (:data:`~astroreason.envs.base.VIEW_SIDE_RANGE`).
        table: Add a compact numeric table (binned wavelength/flux) to each window's caption.
    """

    task: str = "class"
    view_width: int = 512
    view_height: int = 256
    table: bool = False

    def __post_init__(self) -> None:
        check_view_side("view_width", self.view_width, low=64)
        check_view_side("view_height", self.view_height, low=48)


class SpectrumEnv(ToolEnv):
    """Multi-turn spectrum classification with a wavelength-window tool."""

    env_name = "spectrum"
    data_kind = "spectrum"
    tool_names = tools_for("spectrum")

    def __init__(
        self,
        data: Any,
        split: str = "test",
        config: SpectrumEnvConfig | None = None,
        render_mode: str | None = "rgb_array",
        **overrides: Any,
    ):
        cfg = make_config(SpectrumEnvConfig, config, overrides)
        if cfg.task not in ("class", "subclass"):
            raise ConfigError(f"task: unknown {cfg.task!r}; choose class or subclass")
        self._width = cfg.view_width
        if condition_spec(cfg.condition).matched_pixels:
            self._width = int(round(cfg.view_width * (1 + cfg.max_tool_calls) / 32) * 32)
            if self._width > MAX_MATCHED_WIDTH:
                raise ConfigError(
                    f"max_tool_calls: no-tools-matched would plot {self._width} pixels wide "
                    f"(view_width x (1 + max_tool_calls)), over {MAX_MATCHED_WIDTH}"
                )
        kwargs = {} if isinstance(data, SampleSource) else {"task": cfg.task}
        super().__init__(data, split, cfg, source_kwargs=kwargs)

    def _image_shape(self) -> tuple[int, int]:
        return self.cfg.view_height, self._width

    def _first_view(self, sample):
        if self.condition.blind:
            return None, None
        sp = sample.spectrum
        self._spectrum = sp
        image, window = spectrum_overview(
            sp.wavelength, sp.flux, sp.mask, self._width, self.cfg.view_height
        )
        return image, window

    def _tool_state(self) -> SpectrumState:
        sp = self._spectrum
        return SpectrumState(
            sp.wavelength,
            sp.flux,
            sp.mask,
            self.cfg.view_width,
            self.cfg.view_height,
            table=self.cfg.table,
        )

    def _placebo_view(self, name, args, view, footprint, caption):
        sp = self._spectrum
        if self.condition.placebo == "random-view":
            d0, d1 = float(sp.wavelength[0]), float(sp.wavelength[-1])
            width = footprint.lambda_max - footprint.lambda_min
            lo = d0 if width >= d1 - d0 else float(self.np_random.uniform(d0, d1 - width))
            window = SpectralWindow(lo, min(lo + width, d1))
            view = render_spectrum(
                sp.wavelength,
                sp.flux,
                sp.mask,
                window.lambda_min,
                window.lambda_max,
                self.cfg.view_width,
                self.cfg.view_height,
            )
        else:
            view, window, caption = super()._placebo_view(name, args, view, footprint, caption)
        if self.cfg.table:
            lo, hi = window.as_tuple()
            table = window_table(sp.wavelength, sp.flux, sp.mask, lo, hi)
            caption = caption.split("\n", 1)[0] + "\n" + table
        return view, window, caption

    def _ground_truth(self, sample) -> dict[str, Any]:
        """What the teacher and the metrics may read (never rendered into a message).

        ``key_window`` is the file's stored window (synthetic files), else the window
        :func:`~astroreason.data.lines.teacher_window` finds from the pipeline redshift and CLASS,
        else from the strongest line in the flux; ``key_window_source`` says which (``file``,
        ``redshift``, ``emission``, ``absorption``) and is None with no window. Computed once per
        sample: ``_info`` asks for it after every step.
        """
        cached = getattr(self, "_gt_window", None)
        if cached is not None and cached[0] is sample:
            window = cached[1]
        else:
            sp = sample.spectrum
            window = teacher_window(sp.wavelength, sp.flux, sp.mask, sp.ivar, sample.meta)
            self._gt_window = (sample, window)
        wl = sample.spectrum.wavelength
        return {
            "label": int(sample.label),
            "class_name": self.class_names[sample.label],
            "class_names": list(self.class_names),
            "key_window": window.as_list() if window is not None else None,
            "key_window_source": window.source if window is not None else None,
            "wavelength_range": [float(np.min(wl)), float(np.max(wl))],
        }
