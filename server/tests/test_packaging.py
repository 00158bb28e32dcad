"""The wheels users install, built and used the way a user would.

`python -m build --wheel` makes the wheels of the server (`authpipe-server`) and of the Python SDK
(`authpipe`); each is installed into a scratch virtual environment, imported there, and the
server's `authpipe` command is run from it. What the wheel lacks (a template, a migration, the
provider catalog, the console script) fails here, even though the editable install the other tests
use reads those files straight from the source tree.

Offline and fast: the builds run without build isolation (`--no-isolation`: the test environment's
setuptools, no download), and the wheels are installed with `--no-deps --no-index`; their
dependencies come from the test environment through a `.pth` file (see `scratch_venv`).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import sysconfig
import tomllib
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from email.parser import HeaderParser
from pathlib import Path
from typing import Any

import pytest

import authpipe_server
from authpipe_server.providers.catalog import CATALOG_DIR
from authpipe_server.store.db import head_revision

REPO = Path(__file__).resolve().parents[2]
SERVER = REPO / "server"
SDK = REPO / "sdk" / "python"

# Build output and caches never go into a wheel, and never into the copy a wheel is built from.
_SKIP_ANYWHERE = {"__pycache__", ".pytest_cache", ".mypy_cache", ".ruff_cache"}
_SKIP_AT_ROOT = {"build", "dist", "tests", ".authpipe", ".venv"}


@dataclass(frozen=True)
class Built:
    """One built wheel and the project it came from."""

    project: Path
    wheel: Path

    def names(self) -> set[str]:
        with zipfile.ZipFile(self.wheel) as archive:
            return set(archive.namelist())

    def read(self, suffix: str) -> str:
        with zipfile.ZipFile(self.wheel) as archive:
            (name,) = [n for n in archive.namelist() if n.endswith(suffix)]
            return archive.read(name).decode()


def _clean_env() -> dict[str, str]:
    """The environment for child processes, without anything that would add paths to sys.path."""
    return {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "VIRTUAL_ENV", "AUTHPIPE_"))}


def _run(args: list[str | Path], cwd: Path) -> subprocess.CompletedProcess[str]:
    result = subprocess.run([str(a) for a in args], cwd=cwd, env=_clean_env(), capture_output=True, text=True, timeout=120)
    command = " ".join(map(str, args))
    assert result.returncode == 0, f"{command} exited {result.returncode}:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
    return result


def _ignore(root: Path) -> Callable[[str, list[str]], set[str]]:
    def ignore(directory: str, names: list[str]) -> set[str]:
        skipped = {n for n in names if n in _SKIP_ANYWHERE or n.endswith((".egg-info", ".pyc"))}
        if Path(directory) == root:
            skipped |= _SKIP_AT_ROOT & set(names)
        return skipped

    return ignore


def _build(project: Path, tmp: Path) -> Built:
    # Built from a copy: building in place writes build/ and *.egg-info into the source tree (which
    # other processes use), and a stale egg-info's SOURCES.txt there can put files in the wheel that
    # a fresh clone would not.
    source = tmp / "src" / project.name
    shutil.copytree(project, source, ignore=_ignore(project))
    out = tmp / "wheels"
    result = subprocess.run(
        [sys.executable, "-m", "build", "--wheel", "--no-isolation", "--outdir", str(out), str(source)],
        cwd=tmp,
        env=_clean_env(),
        capture_output=True,
        text=True,
        timeout=300,
    )
    if result.returncode != 0:
        pytest.fail(
            f"building the wheel of {project.relative_to(REPO)} failed. This test needs `build` and the setuptools "
            f"that pyproject.toml's [build-system] asks for in the test environment (the server's `test` extra).\n"
            f"{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
        )
    (wheel,) = [w for w in out.glob("*.whl") if w.name.startswith(_wheel_prefix(project))]
    return Built(project, wheel)


def _project(project: Path) -> dict[str, Any]:
    return tomllib.loads((project / "pyproject.toml").read_text())["project"]


def _wheel_prefix(project: Path) -> str:
    return _project(project)["name"].replace("-", "_") + "-"


@pytest.fixture(scope="module")
def wheels(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Built]:
    return {
        "server": _build(SERVER, tmp_path_factory.mktemp("server-wheel")),
        "sdk": _build(SDK, tmp_path_factory.mktemp("sdk-wheel")),
    }


@pytest.fixture(scope="module")
def scratch_venv(tmp_path_factory: pytest.TempPathFactory, wheels: dict[str, Built]) -> Path:
    """A fresh virtual environment holding the two wheels (installed, not editable)."""
    venv = tmp_path_factory.mktemp("scratch") / "venv"
    _run([sys.executable, "-m", "venv", "--without-pip", venv], cwd=venv.parent)
    python = venv / "bin" / "python"
    _run(
        [sys.executable, "-m", "pip", "--disable-pip-version-check", "--python", python, "install", "--no-deps", "--no-index",
         "--no-compile", *(built.wheel for built in wheels.values())],
        cwd=venv.parent,
    )
    # The wheels' dependencies (fastapi, sqlalchemy, httpx, …) are not installed again, which would
    # need the network: a .pth file puts the test environment's site-packages on the scratch
    # environment's sys.path. A plain path line is appended after the scratch site-packages (the
    # wheels' copies come first), and the .pth files inside that directory are not run, so the
    # test environment's editable install of authpipe_server (a .pth plus an import finder there)
    # stays switched off. Not `--system-site-packages`: that exposes the base interpreter's
    # site-packages, not this virtual environment's, where the dependencies are.
    purelib = Path(_run([python, "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"], cwd=venv.parent).stdout.strip())
    ours = dict.fromkeys([sysconfig.get_path("purelib"), sysconfig.get_path("platlib")])
    (purelib / "zz_authpipe_test_dependencies.pth").write_text("".join(f"{path}\n" for path in ours))
    return venv


def test_pyprojects_say_apache_2(wheels: dict[str, Built]) -> None:
    for name, built in wheels.items():
        license_ = _project(built.project)["license"]
        assert license_ == "Apache-2.0", (name, license_)
        metadata = HeaderParser().parsestr(built.read(".dist-info/METADATA"))
        assert metadata.get("License-Expression") == "Apache-2.0", name
        # Each package carries the repository's LICENSE (a copy: setuptools reads files inside
        # the project folder only), and the wheel ships it.
        assert (built.project / "LICENSE").read_text() == (REPO / "LICENSE").read_text(), name
        assert any(n.endswith(".dist-info/licenses/LICENSE") for n in built.names()), name
    assert (REPO / "LICENSE").read_text().lstrip().startswith("Apache License")


def test_server_wheel_holds_its_package_data(wheels: dict[str, Built]) -> None:
    names = wheels["server"].names()
    for key in (
        "authpipe_server/__init__.py",
        "authpipe_server/cli.py",
        "authpipe_server/web/templates/base.html",
        "authpipe_server/web/templates/connect/choose.html",
        "authpipe_server/web/templates/connect/result.html",
        "authpipe_server/web/templates/connect/app_password.html",
        "authpipe_server/web/static/authpipe.css",
        "authpipe_server/web/static/connect-result.js",
        "authpipe_server/emulators/templates/consent.html",
        "authpipe_server/providers/catalog/spotify.yaml",
        "authpipe_server/providers/catalog/bluesky.yaml",
        "authpipe_server/store/migrations/env.py",
        "authpipe_server/store/migrations/script.py.mako",
        "authpipe_server/store/migrations/versions/0001_initial_schema.py",
    ):
        assert key in names, f"{key} is not in {wheels['server'].wheel.name}"
    # Every file of the package in the source tree, code or data, is in the wheel.
    package = SERVER / "authpipe_server"
    in_tree = {
        f"authpipe_server/{path.relative_to(package).as_posix()}"
        for path in package.rglob("*")
        if path.is_file() and "__pycache__" not in path.parts and path.suffix != ".pyc"
    }
    assert sorted(in_tree - names) == []
    assert not [n for n in names if n.startswith("tests/") or "__pycache__" in n]
    assert "authpipe = authpipe_server.cli:main" in wheels["server"].read(".dist-info/entry_points.txt")


def test_sdk_wheel_is_typed_and_pure(wheels: dict[str, Built]) -> None:
    built = wheels["sdk"]
    names = built.names()
    assert {"authpipe/__init__.py", "authpipe/py.typed", "authpipe/_client.py"} <= names
    assert built.wheel.name.endswith("-py3-none-any.whl")
    metadata = HeaderParser().parsestr(built.read(".dist-info/METADATA"))
    # The SDK depends on httpx alone.
    assert [r.split(";")[0].strip() for r in metadata.get_all("Requires-Dist") or [] if "extra ==" not in r] == ["httpx>=0.27"]


def test_server_imports_from_the_wheel_with_its_data(scratch_venv: Path) -> None:
    script = (
        "import json, authpipe_server\n"
        "from authpipe_server.providers.catalog import catalog\n"
        "from authpipe_server.store.db import head_revision\n"
        "from authpipe_server.web.render import templates\n"
        "from authpipe_server.api.app import create_app\n"
        "print(json.dumps({'version': authpipe_server.__version__, 'file': authpipe_server.__file__,\n"
        "  'providers': sorted(catalog()), 'head': head_revision(),\n"
        "  'template': templates.env.get_template('connect/choose.html').filename}))\n"
    )
    facts = json.loads(_run([scratch_venv / "bin" / "python", "-c", script], cwd=scratch_venv.parent).stdout)
    assert facts["version"] == authpipe_server.__version__ == _project(SERVER)["version"]
    assert Path(facts["file"]).is_relative_to(scratch_venv), facts["file"]
    assert Path(facts["template"]).is_relative_to(scratch_venv), facts["template"]
    assert facts["providers"] == sorted(p.stem for p in CATALOG_DIR.glob("*.yaml")) and "spotify" in facts["providers"]
    assert facts["head"] == head_revision() is not None


def test_authpipe_command_runs_from_the_wheel(scratch_venv: Path) -> None:
    command = scratch_venv / "bin" / "authpipe"
    assert command.is_file(), "the wheel installs no `authpipe` console script"
    version = _run([command, "--version"], cwd=scratch_venv.parent).stdout.strip()
    assert version == f"authpipe {_project(SERVER)['version']}"
    help_text = _run([command, "--help"], cwd=scratch_venv.parent).stdout
    for subcommand in ("dev", "serve", "worker", "migrate"):
        assert subcommand in help_text
    # The script runs the scratch environment's interpreter, so the wheel's code.
    assert command.read_text().splitlines()[0] == f"#!{scratch_venv / 'bin' / 'python'}"


def test_sdk_imports_from_the_wheel(scratch_venv: Path) -> None:
    script = (
        "import json, authpipe\n"
        "from authpipe import Authpipe, AsyncAuthpipe, AuthpipeError, ConnectionNotFound, ConnectionRevoked\n"
        "client = Authpipe(secret_key='ap_sk_packaging_check', base_url='http://127.0.0.1:9')\n"
        "print(json.dumps({'version': authpipe.__version__, 'file': authpipe.__file__, 'repr': repr(client)}))\n"
        "client.close()\n"
    )
    facts = json.loads(_run([scratch_venv / "bin" / "python", "-c", script], cwd=scratch_venv.parent).stdout)
    assert facts["version"] == _project(SDK)["version"]
    assert Path(facts["file"]).is_relative_to(scratch_venv), facts["file"]
    assert "ap_sk_packaging_check" not in facts["repr"]
