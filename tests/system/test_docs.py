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
