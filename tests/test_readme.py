"""The README's commands, run as a newcomer runs them: its shell examples against the application
served on 127.0.0.1 (a fresh SQLite database with the demo plan), and every command of its
command lists answering ``--help``.

What changes from the README's text is only where things are: the port the test serves on,
the partner's webhook address (a receiver on 127.0.0.1, never the outside world), and the
virtual environment (``.venv`` is a link to the one running the tests).
"""
from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from scheduler import ROOT

README = (ROOT / "README.md").read_text(encoding="utf-8")
README_BASE = "http://127.0.0.1:5000"
PARTNER = "https://partner.example.org/hooks"
#: Every curl of the examples fails on an HTTP error (the README's `curl -s` would print it and go on).
PREAMBLE = 'curl() { command curl --fail-with-body --silent --show-error --max-time 20 "$@"; }\n'

pytestmark = pytest.mark.skipif(shutil.which("curl") is None or shutil.which("bash") is None,
                                reason="the README's examples need bash and curl")


def shell_blocks() -> list[tuple[int, str]]:
    """Each ```sh block of the README: (its first line's number, its text)."""
    blocks = []
    for match in re.finditer(r"^```(?:sh|bash)\n(.*?)^```", README, flags=re.S | re.M):
        blocks.append((README[: match.start()].count("\n") + 2, match.group(1)))
    return blocks


def examples() -> list[tuple[int, str]]:
    """The blocks that talk to the served application."""
    return [(line, text) for line, text in shell_blocks() if f"curl -s '{README_BASE}" in text or f"curl -s {README_BASE}" in text]


def listed_commands() -> list[list[str]]:
    """Every ``flask …`` command the README lists: its words before the first argument or option."""
    found: dict[str, list[str]] = {}
    for _line, text in shell_blocks():
        for part in re.split(r"\n|·", text):
            command = part.split("#", 1)[0].strip()
            words = command.split()
            if "flask" not in words:
                continue
            words = words[words.index("flask") + 1:]
            name = []
            for word in words:
                if not re.fullmatch(r"[a-z][a-z-]*", word):
                    break
                name.append(word)
            if name:
                found[" ".join(name)] = name
    return list(found.values())


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture(scope="module")
def newcomer(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    """A working directory with ``.venv``, a database with the demo plan, and the application served."""
    home = tmp_path_factory.mktemp("readme")
    (home / ".venv").symlink_to(Path(sys.prefix))  # the virtual environment running the tests (make test's)
    if not (home / ".venv" / "bin" / "flask").exists():
        pytest.skip(f"the README's examples need the flask command of a virtual environment ({sys.prefix} has none)")
    port = _free_port()
    env = {
        **os.environ, "PYTHONPATH": str(ROOT), "FLASK_APP": "scheduler", "DATABASE_URL": f"sqlite:///{home / 'readme.db'}",
        "SECRET_KEY": "readme-test", "SCHEDULER_MODE": "off", "RATELIMIT_STORAGE_URI": "memory://",
        "PASSWORD_HASH_METHOD": "pbkdf2:sha256:1000", "BASE_URL": f"http://127.0.0.1:{port}",
        "OUTBOUND_ALLOWLIST": "127.0.0.1/32",  # the partner's address becomes one on this machine
    }
    flask = str(home / ".venv" / "bin" / "flask")
    for command in (["db", "upgrade"], ["seed-demo"]):
        subprocess.run([flask, *command], cwd=home, env=env, check=True, capture_output=True, timeout=120)
    server = subprocess.Popen([flask, "serve", "--port", str(port)], cwd=home, env=env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:  # the server's start, not a scheduler: bounded, and over as soon as it answers
            try:
                with urllib.request.urlopen(base + "/healthz", timeout=2):
                    break
            except OSError:
                if time.monotonic() > deadline or server.poll() is not None:
                    raise
                time.sleep(0.2)
        yield {"home": str(home), "base": base, **env}
    finally:
        server.terminate()
        server.wait(timeout=10)
        if server.stderr:
            server.stderr.close()


@pytest.mark.parametrize(("line", "block"), examples(), ids=[f"README line {line}" for line, _ in examples()])
def test_each_example_runs_against_the_served_application(newcomer: dict[str, str], line: int, block: str) -> None:
    script = block.replace(README_BASE, newcomer["base"]).replace(PARTNER, f"{newcomer['base']}/healthz")
    env = {key: value for key, value in newcomer.items() if key not in ("home", "base")}
    result = subprocess.run(["bash", "-euo", "pipefail", "-c", PREAMBLE + script], cwd=newcomer["home"], env=env,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, f"README line {line}:\n{script}\n--- stdout\n{result.stdout}\n--- stderr\n{result.stderr}"
    if "/api/v1/webhooks" in block:
        assert '"secret":"whsec_' in result.stdout.replace(" ", ""), result.stdout


def test_the_examples_cover_the_first_hour() -> None:
    text = "\n".join(block for _line, block in examples())
    assert "/api/v1/progress" in text and "/api/v1/webhooks" in text and "flask token create" in text


@pytest.mark.parametrize("command", listed_commands(), ids=lambda words: " ".join(words))
def test_every_listed_command_exists(runner, command: list[str]) -> None:
    result = runner.invoke(args=[*command, "--help"])
    assert result.exit_code == 0, result.output
