"""The package installs as one distribution and its layers depend on each other one way only."""

import ast
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
LAYERS = {
    "tools": ROOT / "tools",
    "envs": ROOT / "envs",
    "training": ROOT / "training",
    "eval": ROOT / "eval",
}
FORBIDDEN = {
    "tools": ("astroreason",),  # only astroreason.tools itself
    "core": ("astroreason.envs", "astroreason.training", "astroreason.eval"),
    "envs": ("astroreason.training", "astroreason.eval"),
    "training": ("astroreason.eval",),
    "eval": ("astroreason.training",),
}


def imports_of(path: Path):
    tree = ast.parse(path.read_text())
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            yield from (a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            yield node.module


def layer_files(layer):
    if layer == "core":
        # the CLI and the demo pipeline it runs are where every layer meets
        wiring = {ROOT / "astroreason" / "cli.py", ROOT / "astroreason" / "demo.py"}
        return [p for p in (ROOT / "astroreason").rglob("*.py") if p not in wiring]
    return list(LAYERS[layer].rglob("*.py"))


@pytest.mark.parametrize("layer", list(FORBIDDEN))
def test_dependencies_flow_one_way(layer):
    bad = []
    for path in layer_files(layer):
        for mod in imports_of(path):
            if layer == "tools" and mod.startswith("astroreason.tools"):
                continue
            if any(mod == f or mod.startswith(f + ".") for f in FORBIDDEN[layer]):
                bad.append(f"{path.relative_to(ROOT)} imports {mod}")
    assert not bad, bad


def test_every_package_folder_is_installed():
    import tomllib

    cfg = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    listed = set(cfg["packages"])
    mapping = cfg["package-dir"]
    found = set()
    for top, pkg in (
        ("astroreason", "astroreason"),
        *((v, k) for k, v in mapping.items() if k != "astroreason"),
    ):
        for init in (ROOT / top).rglob("__init__.py"):
            rel = init.parent.relative_to(ROOT / top)
            found.add(".".join([pkg, *rel.parts]) if rel.parts else pkg)
    assert found <= listed, f"not installed: {sorted(found - listed)}"


def test_editable_install_imports_subpackages():
    code = "import astroreason.envs, astroreason.tools, astroreason.training, astroreason.eval; print('ok')"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd="/")
    assert out.stdout.strip() == "ok", out.stderr[-2000:]


@pytest.mark.slow
def test_wheel_holds_subpackages_and_installs(tmp_path):
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--no-build-isolation",
            "-q",
            "-w",
            str(tmp_path),
            str(ROOT),
        ],
        check=True,
    )
    wheel = next(tmp_path.glob("astroreason-*.whl"))
    names = zipfile.ZipFile(wheel).namelist()
    for sub in ("envs", "tools", "training", "eval"):
        assert f"astroreason/{sub}/__init__.py" in names
    target = tmp_path / "site"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "--no-deps",
            "-q",
            "--target",
            str(target),
            str(wheel),
        ],
        check=True,
    )
    code = (
        "import sys; sys.path.insert(0, sys.argv[1]); "
        "import astroreason.envs, astroreason.tools, astroreason.training, astroreason.eval, astroreason; "
        "assert astroreason.envs.__file__.startswith(sys.argv[1]), astroreason.envs.__file__; print('ok')"
    )
    out = subprocess.run(
        [sys.executable, "-c", code, str(target)], capture_output=True, text=True, cwd=str(tmp_path)
    )
    assert out.stdout.strip() == "ok", out.stderr[-2000:]
