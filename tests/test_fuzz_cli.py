"""Fuzz the CLI: any option value, any broken file gives exit 0 or a one-line error (exit 2).

No traceback, and nothing written outside ``--out``.
"""

import contextlib
import io
import math
import resource
from pathlib import Path

import h5py
import numpy as np
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from astroreason.cli import main

COUNTS = st.one_of(st.integers(-3, 4), st.sampled_from([10**6, -(10**6)]))
SIZES = st.one_of(st.integers(-2, 96), st.sampled_from([0, 100000, 10**9]))
FLOATS = st.one_of(
    st.floats(-3, 5), st.sampled_from([math.nan, math.inf, -math.inf, 0.0, 2.0, 2.0001])
)


@contextlib.contextmanager
def _memory_cap(extra_bytes: int = 4 * 2**30):
    """Cap this process's data segment at its present size plus ``extra_bytes``.

    A call that would eat the machine then fails with MemoryError (a failing example that
    hypothesis reports) instead of waking the OOM killer, which ends the whole test run silently.
    """
    with open("/proc/self/status") as f:
        vm_data = next(int(line.split()[1]) * 1024 for line in f if line.startswith("VmData:"))
    soft, hard = resource.getrlimit(resource.RLIMIT_DATA)
    cap = vm_data + extra_bytes
    limit = cap if hard == resource.RLIM_INFINITY else min(cap, hard)
    resource.setrlimit(resource.RLIMIT_DATA, (limit, hard))
    try:
        yield
    finally:
        resource.setrlimit(resource.RLIMIT_DATA, (soft, hard))


def _run(args: list[str]) -> tuple[int, str]:
    """Exit status and stderr of one in-process CLI call, under a memory cap."""
    err = io.StringIO()
    code = 0
    redirect = contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO())
    with redirect[0], redirect[1], _memory_cap():
        try:
            main(args)
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else 1
    return code, err.getvalue()


def _assert_clean(code: int, err: str, args: list[str]) -> None:
    assert "Traceback" not in err, (args, err)
    assert code in (0, 2), (args, code, err)
    if code == 2:
        lines = [x for x in err.splitlines() if x.startswith("error:")]
        assert len(lines) == 1, (args, err)


def _tree(root: Path) -> set[Path]:
    return {p for p in root.rglob("*")}


@settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck))
@given(
    episodes=COUNTS,
    concurrency=COUNTS,
    max_turns=COUNTS,
    max_tool_calls=COUNTS,
    view_size=SIZES,
    max_tokens=COUNTS,
    temperature=FLOATS,
    command=st.sampled_from(["rollout", "eval"]),
)
# once killed CI by memory: an environment per slot of a million-wide concurrency
@example(10**6, 10**6, 1, 1, 32, 8, 0.0, "rollout")
@example(10**6, 1024, 1, 1, 32, 8, 0.0, "eval")
def test_option_values(
    galaxy_file, tmp_path_factory, episodes, concurrency, max_turns, max_tool_calls, view_size,
    max_tokens, temperature, command,
):  # fmt: skip
    root = tmp_path_factory.mktemp("fuzz")
    out = root / "out"
    args = [command, "--data", str(galaxy_file), "--policy", "random", "--out", str(out)]
    args += ["--episodes", str(episodes), "--concurrency", str(concurrency)]
    args += ["--max-turns", str(max_turns), "--max-tool-calls", str(max_tool_calls)]
    args += ["--view-size", str(view_size), "--max-tokens", str(max_tokens)]
    args += ["--temperature", str(temperature)]
    if command == "eval":
        args += ["--conditions", "tools,no-tools", "--no-audit"]
    code, err = _run(args)
    _assert_clean(code, err, args)
    assert _tree(root) <= {out} | {p for p in _tree(root) if out in p.parents}


def _broken_files(folder: Path, good: Path) -> dict[str, Path]:
    """A corpus of broken galaxy files, each made from the good one by one change."""
    folder.mkdir(parents=True, exist_ok=True)
    files: dict[str, Path] = {}
    with h5py.File(good) as f:
        images, labels = f["images"][:], f["ans"][:]

    def write(name: str, **datasets) -> None:
        path = folder / f"{name}.h5"
        with h5py.File(path, "w") as f:
            for key, value in datasets.items():
                f[key] = value
        files[name] = path

    write("no_labels", images=images)
    write("no_images", ans=labels)
    write("short_labels", images=images, ans=labels[:3])
    write("float_labels", images=images, ans=labels.astype(float) + 0.5)
    write("bad_class", images=images, ans=labels + 20)
    write("negative_class", images=images, ans=labels - 5)
    write("gray_images", images=images[..., 0], ans=labels)
    write("one_row", images=images[:1], ans=labels[:1])
    write("huge_side", images=np.zeros((4, 100000, 1, 3), np.uint8), ans=labels[:4])
    write("nan_images", images=np.full(images.shape, np.nan, np.float32), ans=labels)
    write("empty", images=images[:0], ans=labels[:0])
    bbox = np.full((len(labels), 2), 3.0)
    write("bbox_2_columns", images=images, ans=labels, bbox=bbox)
    (folder / "truncated.h5").write_bytes(good.read_bytes()[:2000])
    files["truncated"] = folder / "truncated.h5"
    (folder / "not_hdf5.h5").write_text("hello")
    files["not_hdf5"] = folder / "not_hdf5.h5"
    return files


@pytest.fixture(scope="module")
def broken(galaxy_file, tmp_path_factory):
    return _broken_files(tmp_path_factory.mktemp("broken"), Path(galaxy_file))


COMMANDS = [
    ["data", "info", "{f}"],
    ["data", "audit", "{f}"],
    ["data", "split", "{f}"],
    ["rollout", "--data", "{f}", "--policy", "oracle", "--episodes", "2", "--out", "{out}"],
    ["eval", "--data", "{f}", "--policy", "random", "--conditions", "tools", "--episodes", "2",
     "--out", "{out}"],
]  # fmt: skip


@pytest.mark.parametrize("command", COMMANDS, ids=lambda c: " ".join(c[:2]))
def test_broken_files(broken, tmp_path, command):
    for name, path in broken.items():
        out = tmp_path / name
        args = [a.format(f=path, out=out) for a in command]
        before = _tree(path.parent) - {p for p in _tree(path.parent) if p.name.startswith(".")}
        code, err = _run(args)
        _assert_clean(code, err, args)
        after = _tree(path.parent)
        # nothing new beside the data but the caches the program owns (split, boxes)
        new = {p for p in after - before if not p.name.startswith(path.stem)}
        assert not new, (name, new)
