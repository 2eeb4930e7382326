"""Schemathesis over the OpenAPI, as admin, brand and platform keys, against the real server.

Every check runs (schemathesis enables all of them unless told otherwise: no server errors, status
codes, content types, headers and bodies as documented, schema-valid input accepted, schema-invalid
input refused, stateful links). ``--checks all`` is not passed because command-line options outrank
the per-operation relaxations in tests/fuzz/schemathesis.toml, each of which states its reason.
Bounded in time; a failure prints schemathesis's report with a curl line to reproduce it.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers import ThreadedServer, make_settings, product_photo

CONFIG = Path(__file__).parent / "fuzz" / "schemathesis.toml"
SECONDS_PER_ROLE = int(os.environ.get("COUNTERFEIT_FUZZ_SECONDS", "45"))


@pytest.fixture(scope="module")
def fuzz_server(tmp_path_factory):
    from tests.conftest import _make_keys

    settings = make_settings(
        tmp_path_factory.mktemp("fuzz") / "data",
        rate_limit_admin=0,
        rate_limit_brand=0,
        rate_limit_platform=0,
    )
    keys = _make_keys(settings)
    server = ThreadedServer(settings).start()
    with server.client(keys.admin) as admin:  # something to find, so lookups are not all 404s
        for seed, brand in ((1, "acme"), (2, "acme"), (3, "globex")):
            admin.post(
                "/v1/references",
                files={"image": ("r.png", product_photo(seed), "image/png")},
                data={"brand": brand, "label": "counterfeit"},
            )
    yield server, keys
    server.stop()


@pytest.mark.slow
@pytest.mark.parametrize("role", ["admin", "brand_a", "platform"])
def test_schemathesis_finds_no_server_error_and_no_contract_violation(fuzz_server, role, tmp_path):
    server, keys = fuzz_server
    executable = shutil.which("schemathesis") or str(Path(sys.executable).with_name("schemathesis"))
    command = [
        executable,
        "--config-file",
        str(CONFIG),
        "run",
        f"{server.url}/openapi.json",
        "-H",
        f"Authorization: Bearer {getattr(keys, role)}",
        "--max-time",
        str(SECONDS_PER_ROLE),
        "--exclude-path",
        "/v1/keys/rotate",  # would retire the key mid-run; tests/service/api/test_api_controls.py covers it
        "--no-color",
        "--report-dir",
        str(tmp_path),
    ]
    result = subprocess.run(
        command, capture_output=True, text=True, timeout=SECONDS_PER_ROLE + 120, cwd=tmp_path
    )
    report = result.stdout[-12000:] + result.stderr[-3000:]
    assert result.returncode == 0, report
    assert " passed" in result.stdout and "generated" in result.stdout, report
