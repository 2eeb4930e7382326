"""The README's shell blocks marked ``runnable`` are run as a user runs them: in order, in one shell, against a
started service, with the `counterfeit` command of this environment and real photos as the files they name."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

from index.photos import packaged_photos
from tests.helpers import REPO_ROOT, cli_env, running, sql

ROOT = REPO_ROOT
RUNNABLE = re.compile(r"^```bash runnable\n(.*?)^```", re.S | re.M)
# curl's own failures (connection refused) and HTTP errors (--fail-with-body) fail the block, as `set -e` wants.
PRELUDE = 'set -euo pipefail\ncurl() { command curl -sS --fail-with-body "$@"; }\n'


def runnable_blocks(markdown: str) -> list[str]:
    return RUNNABLE.findall(markdown)


def test_the_block_finder_takes_only_runnable_blocks():
    text = "```bash\nmake serve\n```\n\n```bash runnable\necho one\n```\n\n```json\n{}\n```\n"
    assert runnable_blocks(text) == ["echo one\n"]


def test_the_readmes_worked_example_runs_against_a_started_service(settings, tmp_path):
    blocks = runnable_blocks((ROOT / "README.md").read_text())
    assert len(blocks) >= 3, "the keys, register → check, and review blocks"
    fake, genuine = list(packaged_photos().values())[:2]
    fake.save(tmp_path / "fake.jpg", quality=92)
    genuine.save(tmp_path / "genuine.jpg", quality=92)
    fake.save(tmp_path / "listing.jpg", quality=85)  # the fake re-uploaded by a seller
    with running(settings) as server:
        script = PRELUDE + "\n".join(blocks).replace("http://127.0.0.1:8000", server.url)
        env = {**cli_env(settings), "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
        done = subprocess.run(
            ["bash", "-c", script], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300
        )
        assert done.returncode == 0, done.stdout + done.stderr
    check = json.loads((tmp_path / "check.json").read_text())
    assert check["verdict"] == "likely_counterfeit" and check["evidence"][0]["label"] == "counterfeit"
    assert sql(settings, "SELECT label FROM reviews") == [("counterfeit",)]
    assert len(sql(settings, "SELECT id FROM api_keys")) == 3


FENCE = re.compile(r"^```[a-z ]*\n(.*?)^```", re.S | re.M)


def documented_commands() -> list[tuple[str, str]]:
    """(file, command line) for every `counterfeit …` in a fenced block of the README and docs/."""
    found = []
    for path in [ROOT / "README.md", *sorted(ROOT.glob("docs/*.md"))]:
        for block in FENCE.findall(path.read_text()):
            for line in block.splitlines():
                for command in line.split("#", 1)[0].split(" | "):
                    words = command.strip().removeprefix("$(").split()
                    if words and words[0] == "counterfeit":
                        found.append((path.name, " ".join(words)))
    return found


def test_every_documented_command_and_option_exists():
    """Each `counterfeit …` line in the README and docs/ names a real command, and every option it shows is one
    that command takes (a renamed or removed option makes the docs lie, and this fails)."""
    import typer

    from service.cli import app

    root = typer.main.get_command(app)
    commands = documented_commands()
    assert len(commands) >= 25
    wrong = []
    for source, line in commands:
        command, words = root, line.split()[1:]
        while words and hasattr(command, "commands") and words[0] in command.commands:
            command = command.commands[words.pop(0)]
        if hasattr(command, "commands"):  # a group (Typer's own, not click's class): no command named
            wrong.append(f"{source}: {line!r} names no command")
            continue
        known = {opt for param in command.params for opt in (*param.opts, *param.secondary_opts)}
        for word in words:
            option = word.strip("[]").split("=", 1)[0]
            if option.startswith("--") and option not in known:
                wrong.append(f"{source}: {line!r}: {command.name} has no {option}")
    assert wrong == []


def command_path(root, words: list[str]) -> tuple[str, ...]:
    """The longest run of ``words`` that names a command (group by group) of the `counterfeit` CLI."""
    command, path = root, []
    while words and hasattr(command, "commands") and words[0] in command.commands:
        path.append(words[0])
        command = command.commands[words.pop(0)]
    return tuple(path)


def commands_tests_run(root) -> set[tuple[str, ...]]:
    """Command paths that appear as consecutive string arguments in the tests (``run_cli(settings, "keys",
    "create", …)``, ``[sys.executable, "-m", "service", "serve", …]``)."""
    import ast

    found = set()
    for path in (ROOT / "tests").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if not isinstance(node, (ast.Call, ast.List, ast.Tuple)):
                continue
            strings = []
            for element in node.args if isinstance(node, ast.Call) else node.elts:
                if isinstance(element, ast.Constant) and isinstance(element.value, str):
                    strings.append(element.value)
                elif strings:
                    break
            found |= {command_path(root, strings[start:]) for start in range(len(strings))} - {()}
    return found


def test_every_documented_command_is_run_by_a_test():
    import typer

    from service.cli import app

    root = typer.main.get_command(app)
    documented = {command_path(root, line.split()[1:]) for _, line in documented_commands()}
    assert len(documented) >= 20
    assert sorted(documented - commands_tests_run(root)) == []
