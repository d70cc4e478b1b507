import ast
import json
import math
from pathlib import Path

import jsonschema
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from astroreason.tools import (
    MAX_WINDOW_A,
    MAX_ZOOM,
    MIN_SIDE,
    MIN_WINDOW_A,
    TOOL_SCHEMAS,
    TOOLS,
    Footprint,
    SpectralWindow,
    ToolError,
    crop,
    overview,
    render_spectrum,
    spectrum_overview,
    spectrum_window,
    stretch,
    validate_arguments,
    zoom,
)

TOOLS_DIR = Path(__file__).resolve().parents[1] / "tools"


# ------------------------------------------------------------------------------------------
# fixtures: sources whose pixels say where they are, and an SDSS-like spectrum
# ------------------------------------------------------------------------------------------
def coord_source(size: int, per: int = 1) -> np.ndarray:
    """R = x // per, G = y // per, B = 0."""
    y, x = np.mgrid[0:size, 0:size]
    return np.stack([x // per, y // per, np.zeros_like(x)], axis=-1).astype(np.uint8)


def checkerboard(size: int) -> np.ndarray:
    y, x = np.mgrid[0:size, 0:size]
    board = ((x + y) % 2 * 255).astype(np.uint8)
    return np.repeat(board[:, :, None], 3, axis=2)


SDSS_WL = 10 ** (3.5793 + 1e-4 * np.arange(3900))  # 3796-9315 A, ~1.5 A per sample at 6563


def spectrum_with_line(center=6563.0, sigma=1.0, amp=40.0, noise=0.0, seed=0):
    flux = 10.0 + amp * np.exp(-0.5 * ((SDSS_WL - center) / sigma) ** 2)
    if noise:
        flux = flux + np.random.default_rng(seed).normal(0, noise, SDSS_WL.size)
    return SDSS_WL, flux


# ------------------------------------------------------------------------------------------
# footprints and views
# ------------------------------------------------------------------------------------------
def test_overview_at_native_size_is_the_source():
    src = coord_source(256)
    view, fp = overview(src, 256)
    assert fp.as_tuple() == (0.0, 0.0, 256.0, 256.0)
    assert view.shape == (256, 256, 3) and view.dtype == np.uint8
    np.testing.assert_array_equal(view, src)


def test_overview_of_non_square_source_is_padded_not_distorted():
    src = np.full((100, 200, 3), 200, np.uint8)
    view, fp = overview(src, 100)
    assert fp.as_tuple() == (0.0, -50.0, 200.0, 150.0)
    assert view[:25].max() == 0 and view[75:].max() == 0  # black margins above and below
    assert (view[26:74] == 200).all()


def test_grayscale_source_gives_rgb_views():
    src = np.arange(64 * 64, dtype=np.uint32).reshape(64, 64).astype(np.uint8)
    view, _ = overview(src, 32)
    assert view.shape == (32, 32, 3)
    np.testing.assert_array_equal(view[..., 0], view[..., 2])


def test_nested_zoom_maps_to_the_right_source_region():
    src = coord_source(256)
    _, fp0 = overview(src, 256)
    _, fp1 = zoom(src, fp0, [250, 250], 2, 256)
    assert fp1.as_tuple() == (0.0, 0.0, 128.0, 128.0)
    view2, fp2 = zoom(src, fp1, [750, 750], 4, 256)
    # the point 750/1000 of fp1 is source pixel 96; a quarter of 128 px is 32 px around it
    assert fp2.as_tuple() == (80.0, 80.0, 112.0, 112.0)
    cols = np.arange(256)
    expected = np.floor(80 + (cols + 0.5) * 32 / 256)
    np.testing.assert_array_equal(view2[0, :, 0], expected)  # R encodes source x
    np.testing.assert_array_equal(view2[:, 0, 1], expected)  # G encodes source y


def test_downsampled_views_keep_geometry():
    src = coord_source(1024, per=4)  # R = x // 4
    view0, fp0 = overview(src, 256)
    assert np.abs(view0[5, :, 0].astype(int) - np.arange(256)).max() <= 1
    view1, fp1 = zoom(src, fp0, [500, 500], 2, 256)
    assert fp1.as_tuple() == (256.0, 256.0, 768.0, 768.0)
    expected = 64 + np.arange(256) / 2  # source x = 256 + 2c .. 256 + 2c + 2, R = x / 4
    assert np.abs(view1[100, :, 0] - expected).max() <= 1.0
    assert np.abs(view1[:, 100, 1] - expected).max() <= 1.0


def test_crop_reads_full_resolution_pixels():
    src = checkerboard(1024)
    view0, fp0 = overview(src, 128)
    assert view0.std() < 2, "a 1-pixel checkerboard must average to flat grey in the overview"
    view1, fp1 = crop(src, fp0, [500, 500, 550, 550], 128)
    assert fp1.side == pytest.approx(51.2)
    assert view1.std() > 100, "the crop must show the checkerboard the overview could not"
    assert set(np.unique(view1)) == {0, 255}


def test_zoom_and_crop_compose_through_any_parent():
    src = coord_source(256)
    _, fp0 = overview(src, 128)
    _, fpz = zoom(src, fp0, [500, 500], 2, 128)  # (64, 64, 192, 192)
    view, fpc = crop(src, fpz, [0, 0, 500, 500], 64)  # top-left quarter of the zoom
    assert fpc.as_tuple() == (64.0, 64.0, 128.0, 128.0)
    assert view[0, 0, 0] == 64 and view[-1, -1, 1] == 127


def test_views_slide_inside_the_source_at_edges():
    src = coord_source(256)
    _, fp0 = overview(src, 64)
    assert zoom(src, fp0, [0, 0], 2, 64)[1].as_tuple() == (0.0, 0.0, 128.0, 128.0)
    assert zoom(src, fp0, [1000, 1000], 2, 64)[1].as_tuple() == (128.0, 128.0, 256.0, 256.0)
    assert zoom(src, fp0, [1000, 0], 4, 64)[1].as_tuple() == (192.0, 0.0, 256.0, 64.0)
    # a box at the edge keeps its size and slides in
    assert crop(src, fp0, [950, 950, 1000, 1000], 64)[1].side == pytest.approx(12.8)


def test_non_square_box_becomes_a_square_containing_it():
    src = np.zeros((1000, 1000, 3), np.uint8)
    _, fp0 = overview(src, 100)
    view, fp = crop(src, fp0, [100, 100, 500, 300], 100)
    assert view.shape == (100, 100, 3)
    assert fp.width == pytest.approx(fp.height) == pytest.approx(400)
    # centred on (300, 200) and slid down to the top edge; the whole box is inside
    assert fp.as_tuple() == pytest.approx((100.0, 0.0, 500.0, 400.0))


@settings(max_examples=150, deadline=None)
@given(
    st.floats(0, 1000),
    st.floats(0, 1000),
    st.floats(1.0001, MAX_ZOOM),
    st.sampled_from([(64, 64), (40, 90), (90, 40)]),
)
def test_footprints_are_square_and_inside_the_source(x, y, factor, shape):
    src = np.zeros(shape + (3,), np.uint8)
    _, fp0 = overview(src, 32)
    try:
        view, fp = zoom(src, fp0, [x, y], factor, 32)
    except ToolError as e:
        assert "native resolution" in str(e)
        return
    assert fp.width == pytest.approx(fp.height)
    h, w = shape
    for lo, hi, extent in ((fp.x0, fp.x1, w), (fp.y0, fp.y1, h)):
        if hi - lo <= extent:
            assert -1e-9 <= lo and hi <= extent + 1e-9
    assert view.shape == (32, 32, 3)


def test_zooming_past_native_resolution_is_an_error_that_says_so():
    src = coord_source(64)
    _, fp0 = overview(src, 64)
    _, fp1 = zoom(src, fp0, [500, 500], 16, 64)
    assert fp1.side == pytest.approx(MIN_SIDE)
    with pytest.raises(ToolError, match="cannot be magnified further"):
        zoom(src, fp1, [500, 500], 2, 64)
    _, fp2 = zoom(src, fp0, [500, 500], 8, 64)  # 8 px across: at most 2x more
    with pytest.raises(ToolError, match=r"native resolution.*largest factor on this image is 2"):
        zoom(src, fp2, [500, 500], 3, 64)
    with pytest.raises(ToolError, match="at least 63 units"):
        crop(src, fp0, [0, 0, 50, 50], 64)


def test_zoom_factor_limits_explain_why():
    src = coord_source(64)
    _, fp0 = overview(src, 64)
    with pytest.raises(ToolError, match="zoom again on the new image"):
        zoom(src, fp0, [500, 500], MAX_ZOOM + 0.5, 64)
    with pytest.raises(ToolError, match="zooming out is not possible"):
        zoom(src, fp0, [500, 500], 1, 64)


def test_caller_mistakes_are_not_tool_errors():
    src = coord_source(64)
    fp0 = Footprint.full(64, 64)
    with pytest.raises(TypeError):
        zoom(src.astype(np.float32), fp0, [500, 500], 2, 64)
    with pytest.raises(ValueError) as e:
        zoom(src, fp0, [500, 500], 2, 0)
    assert not isinstance(e.value, ToolError)
    with pytest.raises(TypeError):
        crop(src, (0, 0, 64, 64), [0, 0, 500, 500], 64)


def test_footprint_round_trip():
    fp = Footprint(10.0, 20.0, 110.0, 120.0)
    assert fp.to_source(500, 250) == (60.0, 45.0)
    assert fp.from_source(*fp.to_source(123, 877)) == pytest.approx((123, 877))
    with pytest.raises(ValueError):
        Footprint(0, 0, 0, 10)


def test_stretch_brightens_faint_structure_and_keeps_shape():
    view = np.full((64, 64, 3), 5, np.uint8)
    view[20:30, 20:30] = 12  # faint feature
    view[40:50, 40:50] = 250  # bright core
    out = stretch(view, "asinh")
    assert out.shape == view.shape and out.dtype == np.uint8
    lin = stretch(view, "linear")
    faint_asinh, faint_linear = int(out[25, 25, 0]), int(lin[25, 25, 0])
    assert faint_asinh > faint_linear + 20, (faint_asinh, faint_linear)
    assert out[41, 41, 0] == 255 and out[0, 0, 0] == 0
    flat = np.full((8, 8, 3), 7, np.uint8)
    np.testing.assert_array_equal(stretch(flat, "asinh"), flat)
    with pytest.raises(ToolError, match="'asinh', 'linear'"):
        stretch(view, "log")


# ------------------------------------------------------------------------------------------
# spectrum rendering
# ------------------------------------------------------------------------------------------
def _ink_columns_above(img: np.ndarray, frac: float) -> int:
    """Columns of the plot area whose topmost black pixel lies ``frac`` of the height above the
    typical (median) top of the curve."""
    h, w = img.shape[:2]
    area = img[6 : h - 26, 6 : w - 6, 0] == 0
    has = area.any(axis=0)
    top = np.where(has, area.argmax(axis=0), area.shape[0])
    base = np.median(top[has])
    return int(np.sum(top < base - frac * area.shape[0]))


def test_narrow_line_is_a_spike_in_the_overview_and_resolved_in_a_window():
    wl, flux = spectrum_with_line(sigma=0.85)  # FWHM 2 A
    over, win = spectrum_overview(wl, flux, None, 256, 128)
    assert win.as_tuple() == pytest.approx((SDSS_WL[0], SDSS_WL[-1]))
    n_over = _ink_columns_above(over, 0.3)
    assert 1 <= n_over <= 2, n_over  # present (not aliased away) but unresolved
    img, win, _ = spectrum_window(wl, flux, None, 6533, 6593, 256, 128)
    assert win == SpectralWindow(6533.0, 6593.0)
    n_win = _ink_columns_above(img, 0.3)
    assert n_win >= 5, n_win


def test_line_peak_is_not_clipped_in_a_window():
    wl, flux = spectrum_with_line(sigma=1.5, amp=80, noise=0.3)
    img, _, _ = spectrum_window(wl, flux, None, 6500, 6620, 256, 128)
    area = img[5 : 128 - 17, 5:-5, 0] == 0  # the plot area (box excluded)
    first_row = np.flatnonzero(area.any(axis=1))[0]
    assert first_row >= 3, "the line peak must sit below the top edge, with padding"


def test_plot_has_axis_box_and_tick_labels():
    wl, flux = spectrum_with_line(noise=0.5)
    img, _, _ = spectrum_window(wl, flux, None, 6500, 6620, 512, 256)
    assert img.shape == (256, 512, 3) and img.dtype == np.uint8
    bottom = img[256 - 16 :, :, 0] < 128
    cols = np.flatnonzero(bottom.any(axis=0))
    groups = 1 + int(np.sum(np.diff(cols) > 8))  # separate labels
    assert groups >= 4, groups
    assert img[255 - 14, 0, 0] == 255  # background is white
    assert (img[4, 10:500, 0] == 110).all()  # top edge of the axis box


def test_masked_samples_are_gaps_over_a_grey_band():
    wl, flux = spectrum_with_line(noise=0.5)
    mask = (wl > 6540) & (wl < 6560)
    flux = flux.copy()
    flux[(wl > 6570) & (wl < 6580)] = np.nan  # non-finite flux is treated as masked too
    img, _, _ = spectrum_window(wl, flux, mask, 6500, 6620, 240 + 10, 128)
    plot = img[5 : 128 - 16, 5:-5, 0]
    xs = (np.arange(240) + 0.5) / 240 * 120 + 6500
    for lo, hi in ((6542, 6558), (6572, 6578)):
        cols = (xs > lo) & (xs < hi)
        assert (plot[:, cols] == 220).any(axis=0).all()
        assert not (plot[:, cols] == 0).any(), "no curve is drawn across bad samples"
    good = (xs > 6600) & (xs < 6615)
    assert (plot[:, good] == 0).any(axis=0).all()


def test_render_spectrum_with_few_samples_and_all_masked():
    wl = np.array([5000.0, 5001.5, 5003.0])
    img = render_spectrum(wl, np.array([1.0, 2.0, 1.0]), None, 4999, 5004, 64, 48)
    assert (img[5:30, 5:-5, 0] == 0).any()
    img = render_spectrum(wl, np.ones(3), np.ones(3, bool), 4999, 5004, 64, 48)
    assert not (img[5:30, 5:-5, 0] == 0).any()


def test_window_clipping_and_errors_name_the_data_range():
    wl, flux = spectrum_with_line()
    _, win, text = spectrum_window(wl, flux, None, 9000, 9900, 256, 128)
    assert win.lambda_max == pytest.approx(SDSS_WL[-1])
    assert "clipped" in text and "3795.8-9315.4" in text
    cases = [
        ((10000, 10100), "misses the data; the data covers 3795.8-9315.4 A"),
        ((9313, 9400), "overlaps the data by only"),
        ((6600, 6500), "lambda_min must be less than lambda_max"),
        ((6500, 6502), f"at least {MIN_WINDOW_A:g} A"),
        ((3800, 9000), f"at most {MAX_WINDOW_A:g} A"),
        ((-5, 6500), "lambda_min must be a number with 0 < lambda_min"),
        (("6500", 6600), "(text)"),
        ((True, 6600), "bool"),
    ]
    for (a, b), why in cases:
        with pytest.raises(ToolError) as e:
            spectrum_window(wl, flux, None, a, b, 256, 128)
        assert why in str(e.value), (a, b, str(e.value))


def test_window_table_reports_binned_flux():
    wl, _ = spectrum_with_line()
    flux = np.full(wl.size, 3.5)
    mask = (wl > 6500) & (wl < 6512)
    _, _, text = spectrum_window(wl, flux, mask, 6500, 6620, 256, 128, table=True)
    lines = text.splitlines()
    assert lines[0] == "spectrum 6500.0-6620.0 A"
    assert lines[1] == "wavelength_A flux" and len(lines) == 12
    assert lines[2] == "6506.0 masked"
    assert all(line.split()[1] == "3.5" for line in lines[3:]), lines


# ------------------------------------------------------------------------------------------
# schemas and argument validation
# ------------------------------------------------------------------------------------------
def test_schemas_are_function_calling_json_schemas():
    assert set(TOOL_SCHEMAS) == {"zoom", "crop", "spectrum_window", "stretch"}
    for name, schema in TOOL_SCHEMAS.items():
        assert json.loads(json.dumps(schema)) == schema
        assert schema["type"] == "function"
        fn = schema["function"]
        assert fn["name"] == name and len(fn["description"]) > 40
        params = fn["parameters"]
        jsonschema.Draft202012Validator.check_schema(params)
        assert params["additionalProperties"] is False
        for pname, prop in params["properties"].items():
            assert prop["description"] and "{" not in prop["description"], (name, pname)
        assert "{" not in fn["description"]
        # the example quoted in error messages is valid by both checks
        jsonschema.validate(TOOLS[name].example, params)
        validate_arguments(name, TOOLS[name].example)


def test_schema_text_carries_the_limits():
    zoom_props = TOOL_SCHEMAS["zoom"]["function"]["parameters"]["properties"]
    assert f"factor <= {MAX_ZOOM:g}" in zoom_props["factor"]["description"]
    assert zoom_props["factor"]["maximum"] == MAX_ZOOM
    assert zoom_props["image_index"]["default"] == 0
    win = TOOL_SCHEMAS["spectrum_window"]["function"]["parameters"]["properties"]
    assert f"{MIN_WINDOW_A:g} to {MAX_WINDOW_A:g} Angstrom" in win["lambda_max"]["description"]


def test_validate_arguments_coerces_and_fills_defaults():
    out = validate_arguments("zoom", {"center": [500, 250], "factor": 2})
    assert out == {"center": [500.0, 250.0], "factor": 2.0, "image_index": 0}
    assert isinstance(out["factor"], float) and isinstance(out["image_index"], int)
    out = validate_arguments("crop", {"bbox_2d": [1, 2, 3.5, 4], "image_index": 2.0})
    assert out["image_index"] == 2 and isinstance(out["image_index"], int)
    assert validate_arguments("spectrum_window", {"lambda_min": 6500, "lambda_max": 6600.5}) == {
        "lambda_min": 6500.0,
        "lambda_max": 6600.5,
    }


BAD_CALLS = [
    ("pan", {}, "unknown tool 'pan'; available: zoom, crop"),
    ("zoom", [500, 500], "arguments must be a JSON object like"),
    ("zoom", {"center": [500, 500]}, "missing required argument(s) factor"),
    ("zoom", {"center": [5, 5], "factor": 2, "scale": 3}, "unexpected argument(s) 'scale'"),
    ("zoom", {"center": [500, 500], "factor": True}, "factor must be a number"),
    ("zoom", {"center": [500, 500], "factor": "2"}, "got '2' (text)"),
    ("zoom", {"center": [500, 500], "factor": None}, "(null)"),
    ("zoom", {"center": [500, 500], "factor": float("nan")}, "got nan"),
    ("zoom", {"center": [500, 500], "factor": float("inf")}, "got inf"),
    ("zoom", {"center": [500, 500], "factor": 10**400}, "digits"),
    ("zoom", {"center": [500, 500, 1], "factor": 2}, "3 entries, not 2"),
    ("zoom", {"center": [[500], 500], "factor": 2}, "x is not a finite number"),
    ("zoom", {"center": "500, 500", "factor": 2}, "text, not a list"),
    ("zoom", {"center": [500, 1200], "factor": 2}, "y is out of range"),
    ("zoom", {"center": [500, 500], "factor": 2, "image_index": -1}, "0 <= image_index"),
    ("zoom", {"center": [500, 500], "factor": 2, "image_index": 1.5}, "whole number"),
    ("crop", {"bbox_2d": [500, 10, 400, 20]}, "x1 must be less than x2"),
    ("crop", {"bbox_2d": [10, 20, 400, 20]}, "y1 must be less than y2"),
    ("crop", {"bbox_2d": [10, 20, 400]}, "[x1, y1, x2, y2], 4 numbers from 0 to 1000"),
    ("spectrum_window", {"lambda_min": 0, "lambda_max": 10}, "0 < lambda_min"),
    ("stretch", {"mode": "log"}, "mode must be one of 'asinh', 'linear'; got 'log'"),
]


@pytest.mark.parametrize("name,args,why", BAD_CALLS)
def test_bad_arguments_get_a_helpful_tool_error(name, args, why):
    with pytest.raises(ToolError) as e:
        validate_arguments(name, args)
    assert why in str(e.value), str(e.value)
    assert len(str(e.value)) < 400


def test_message_shows_the_value_for_the_brief_example():
    with pytest.raises(ToolError) as e:
        validate_arguments("crop", {"bbox_2d": [500, 10, 400, 20]})
    msg = str(e.value)
    assert msg.startswith("crop: bbox_2d must be [x1, y1, x2, y2]") and "[500, 10, 400, 20]" in msg


json_scalars = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.just(10**400)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.floats(-50, 1100)
    | st.text(max_size=8)
)
json_like = st.recursive(
    json_scalars,
    lambda inner: (
        st.lists(inner, max_size=5) | st.dictionaries(st.text(max_size=4), inner, max_size=3)
    ),
    max_leaves=12,
)
near_valid = (
    st.lists(st.floats(-10, 1010) | st.integers(-5, 1005), min_size=0, max_size=5)
    | st.floats(0, 20)
    | st.integers(-2, 20)
    | st.sampled_from(["asinh", "linear", "log", "2"])
)
values = json_like | near_valid
coord = st.integers(0, 1000) | st.floats(0, 1000)
VALID_ISH = {
    "center": st.lists(coord, min_size=2, max_size=2),
    "bbox_2d": st.lists(coord, min_size=4, max_size=4),
    "factor": st.floats(1, MAX_ZOOM + 1) | st.integers(1, 20),
    "image_index": st.integers(0, 5) | st.just(2.0),
    "lambda_min": st.floats(3000, 10000) | st.integers(3000, 10000),  # data: 3796-9315 A
    "lambda_max": st.floats(3000, 10000) | st.integers(3000, 10000),
    "mode": st.sampled_from(["asinh", "linear", "log"]),
}
arg_names = st.sampled_from(sorted(VALID_ISH) + ["zoom", ""])


@st.composite
def tool_calls(draw, name=None):
    """A tool name and arguments: mostly well-formed (so valid calls happen), sometimes garbage."""
    name = name or draw(st.sampled_from(list(TOOLS)))
    args = {}
    for p in TOOLS[name].specs:
        if draw(st.integers(0, 9)) > 0:  # present; then well-formed 4 times in 5
            args[p] = draw(VALID_ISH[p] if draw(st.integers(0, 4)) else values)
    lo = args.get("lambda_min")
    if isinstance(lo, float) and 0 < lo < 1e5 and draw(st.booleans()):  # mostly sensible widths
        args["lambda_max"] = lo + draw(st.floats(-10, MAX_WINDOW_A + 100))
    if draw(st.integers(0, 9)) == 0:
        args[draw(arg_names)] = draw(values)
    return name, args


@settings(max_examples=300, deadline=None)
@given(tool_calls() | st.tuples(st.text(max_size=5) | json_like, json_like))
def test_validate_arguments_raises_only_tool_errors(call):
    name, args = call
    try:
        out = validate_arguments(name, args)
    except ToolError as e:
        assert str(e)
        return
    assert set(out) == set(TOOL_SCHEMAS[name]["function"]["parameters"]["properties"])


def _finite(value) -> bool:
    if isinstance(value, float):
        return math.isfinite(value)
    if isinstance(value, list):
        return all(_finite(v) for v in value)
    if isinstance(value, dict):
        return all(_finite(v) for v in value.values())
    return True


@settings(max_examples=300, deadline=None)
@given(tool_calls())
def test_validate_arguments_agrees_with_the_json_schema(call):
    name, args = call
    if not _finite(args):  # NaN/inf cannot travel as JSON; JSON schema bounds ignore them
        return
    schema_ok = jsonschema.Draft202012Validator(
        TOOL_SCHEMAS[name]["function"]["parameters"]
    ).is_valid(args)
    try:
        validate_arguments(name, args)
        ours_ok = True
    except ToolError:
        ours_ok = False
    if ours_ok:
        assert schema_ok, args
    elif name != "crop":  # crop also requires x1 < x2, y1 < y2, which JSON schema cannot say
        assert not schema_ok, args


SRC = coord_source(256)
FP0 = Footprint.full(256, 256)
WL, FLUX = spectrum_with_line(noise=0.5)


def run_tool(name, args):
    """Call the pure tool with the raw arguments, as if validation had been skipped."""
    get = args.get
    if name == "zoom":
        return zoom(SRC, FP0, get("center"), get("factor"), 32)
    if name == "crop":
        return crop(SRC, FP0, get("bbox_2d"), 32)
    if name == "spectrum_window":
        return spectrum_window(WL, FLUX, None, get("lambda_min"), get("lambda_max"), 64, 48)
    return stretch(SRC, get("mode"))


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(tool_calls())
def test_tools_raise_only_tool_errors(call):
    name, args = call
    try:
        run_tool(name, args)
    except ToolError as e:
        assert str(e).startswith(name + ":"), str(e)


def test_fuzzed_calls_reach_valid_calls_too():
    """The fuzz strategies are only meaningful if they produce successful calls as well."""
    from hypothesis import Phase, find

    for tool in TOOLS:
        find(
            tool_calls(tool),
            _succeeds,
            settings=settings(max_examples=300, database=None, phases=[Phase.generate]),
        )


def _succeeds(call) -> bool:
    try:
        run_tool(*call)
        validate_arguments(*call)
    except ToolError:
        return False
    return True


# ------------------------------------------------------------------------------------------
# layering: tools/ knows only numpy, PIL and the standard library
# ------------------------------------------------------------------------------------------
def test_tools_import_only_numpy_pil_and_stdlib():
    import sys

    allowed = {"numpy", "PIL", "__future__"} | set(sys.stdlib_module_names)
    for path in sorted(TOOLS_DIR.glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                names = [node.module or ""]
            else:
                continue
            for n in names:
                if n.startswith("astroreason."):
                    assert n.startswith("astroreason.tools"), (path.name, n)
                else:
                    assert n.split(".")[0] in allowed, (path.name, n)
