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
CLI = ROOT / "astroreason" / "cli"
MAIN = ROOT / "astroreason" / "__main__.py"  # ``python -m astroreason``: the CLI's entry


def is_cli(path: Path) -> bool:
    return CLI in path.parents or path == MAIN


FORBIDDEN = {
    "tools": ("astroreason",),  # only astroreason.tools itself
    "core": ("astroreason.envs", "astroreason.training", "astroreason.eval", "astroreason.cli"),
    "envs": ("astroreason.training", "astroreason.eval", "astroreason.cli"),
    "training": ("astroreason.eval", "astroreason.cli"),
    "eval": ("astroreason.training", "astroreason.cli"),
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
        # every module of astroreason/ but the CLI package (where every layer meets)
        return [p for p in (ROOT / "astroreason").rglob("*.py") if not is_cli(p)]
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


def test_only_the_cli_is_exempt_and_nothing_imports_it():
    """The CLI package is the one place that may import every layer; no installed module imports it."""
    every = [p for top in (ROOT / "astroreason", *LAYERS.values()) for p in top.rglob("*.py")]
    covered = {p for layer in FORBIDDEN for p in layer_files(layer)}
    assert {p for p in every if not is_cli(p)} == covered  # no other file exempt
    importers = [
        f"{p.relative_to(ROOT)} imports {m}"
        for p in every
        if not is_cli(p)
        for m in imports_of(p)
        if m == "astroreason.cli" or m.startswith("astroreason.cli.")
    ]
    assert not importers, importers


def test_no_import_cycles_counting_imports_inside_functions():
    """The package's modules import each other without a cycle (function-level imports count)."""
    import graphlib

    def module_of(path: Path) -> str:
        for top, pkg in (
            ("tools", "tools"),
            ("envs", "envs"),
            ("training", "training"),
            ("eval", "eval"),
        ):
            if LAYERS[top] in path.parents:
                rel = path.relative_to(LAYERS[top]).with_suffix("")
                return ".".join(["astroreason", pkg, *rel.parts]).removesuffix(".__init__")
        rel = path.relative_to(ROOT).with_suffix("")
        return ".".join(rel.parts).removesuffix(".__init__")

    files = [p for top in (ROOT / "astroreason", *LAYERS.values()) for p in top.rglob("*.py")]
    modules = {module_of(p): p for p in files}
    graph = {}
    for name, path in modules.items():
        deps = set()
        for m in imports_of(path):
            # "from astroreason.tools import TOOLS" is an import of the package; a submodule
            # import also runs the packages above it, but those edges are not the module's own
            while m and m not in modules:
                m = m.rpartition(".")[0]
            if m and m != name and not name.startswith(m + "."):
                deps.add(m)
        graph[name] = deps
    try:
        list(graphlib.TopologicalSorter(graph).static_order())
    except graphlib.CycleError as e:
        pytest.fail(f"import cycle: {' -> '.join(e.args[1])}")


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
