"""The command line's help, version and `authpipe dev`'s options."""

from __future__ import annotations

import argparse
import os
import subprocess
import time
import tomllib
from pathlib import Path
from typing import Any, Iterator

import httpx
import pytest

import authpipe_server
from authpipe_server import cli
from tests.processes import CLI, free_port
from tests.test_cli import one_line_error, run

PYPROJECT = Path(__file__).resolve().parents[1] / "pyproject.toml"


def every_parser(parser: argparse.ArgumentParser) -> Iterator[argparse.ArgumentParser]:
    yield parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for child in action.choices.values():
                yield from every_parser(child)


def test_every_command_and_subcommand_has_an_example() -> None:
    parsers = list(every_parser(cli.build_parser()))
    names = {parser.prog for parser in parsers}
    assert {"authpipe", "authpipe keys list", "authpipe doctor", "authpipe dev", "authpipe vault rotate"} <= names
    for parser in parsers:
        help_text = parser.format_help()
        examples = help_text.partition("\nexamples:\n")[2].splitlines()
        assert any(parser.prog in line for line in examples), f"{parser.prog}: no example of it\n{help_text}"


def test_help_as_a_user_runs_it() -> None:
    shown = run("keys", "list", "--help")
    assert shown.returncode == 0
    assert "examples:\n  authpipe keys list --project acme" in shown.stdout


def test_version_is_the_package_version() -> None:
    shown = run("--version")
    assert shown.returncode == 0 and shown.stdout == f"authpipe {authpipe_server.__version__}\n"


def test_package_version_matches_pyproject() -> None:
    assert authpipe_server.__version__ == tomllib.loads(PYPROJECT.read_text())["project"]["version"]


# -- authpipe dev --host/--port -------------------------------------------------------------


@pytest.mark.parametrize("port", ["0", "65536", "-1", "eighty", "80.5", ""])
def test_dev_refuses_a_bad_port_in_one_line(port: str) -> None:
    line = one_line_error(run("dev", "--port", port))
    assert "--port" in line and "1 to 65535" in line and "authpipe dev --help" in line


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["dev"], {"host": None, "port": None}),
        (["dev", "--port", "8081"], {"host": None, "port": 8081}),
        (["dev", "--host", "0.0.0.0", "--port", "65535"], {"host": "0.0.0.0", "port": 65535}),
        (["dev", "--port", "1"], {"host": None, "port": 1}),
    ],
)
def test_dev_passes_host_and_port_to_the_sandbox(monkeypatch: pytest.MonkeyPatch, argv: list[str], expected: dict[str, Any]) -> None:
    from authpipe_server.sandbox import run as sandbox_run

    calls: list[dict[str, Any]] = []
    monkeypatch.setattr(sandbox_run, "run_sandbox", lambda **kwargs: calls.append(kwargs))
    cli.main(argv)
    assert calls == [expected]


def test_dev_serves_on_the_port_given(tmp_path: Path) -> None:
    """--port wins over AUTHPIPE_PORT, and the public URL follows it."""
    port, ignored = free_port(), free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("AUTHPIPE_")} | {"AUTHPIPE_PORT": str(ignored)}
    process = subprocess.Popen([*CLI, "dev", "--port", str(port)], env=env, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.monotonic() + 30
        while True:
            assert process.poll() is None, process.communicate()[0]
            assert time.monotonic() < deadline, "the sandbox did not start"
            try:
                if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.1)
    finally:
        process.terminate()
        output = process.communicate(timeout=20)[0]
    assert f"http://127.0.0.1:{port}/" in output
