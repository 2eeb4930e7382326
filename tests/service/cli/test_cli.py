"""The `counterfeit` CLI as a user runs it (real subprocesses)."""

from __future__ import annotations

import json
import subprocess
import sys
import time

from tests.helpers import ThreadedServer, cli_env, product_photo, resized_jpeg_copy, sql


def run_cli(settings, *args: str, extra_env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    env = cli_env(settings, **(extra_env or {}))
    return subprocess.run(
        [sys.executable, "-m", "service", *args], env=env, capture_output=True, text=True, timeout=300
    )


def test_keys_create_prints_only_the_key_and_stores_only_its_hash(settings):
    if settings.database_url is None:  # SQLite in a folder (on PostgreSQL the server holds the database)
        elsewhere = run_cli(
            settings, "keys", "create", "--role", "admin"
        )  # no database here: the wrong folder
        assert elsewhere.returncode == 2 and "No database" in elsewhere.stderr and elsewhere.stdout == ""
        assert not settings.data_dir.exists()  # and nothing was created
    assert run_cli(settings, "db", "upgrade").returncode == 0  # a new deployment starts here
    created = run_cli(settings, "keys", "create", "--role", "brand", "--brand", "acme")
    assert created.returncode == 0, created.stderr
    token = created.stdout.strip()
    assert token.startswith("cfk_") and "\n" not in token
    assert "brand" in created.stderr
    listed = run_cli(settings, "keys", "list")
    header, row = listed.stdout.splitlines()
    assert header.split("\t")[:5] == [
        "id",
        "role",
        "brand",
        "platform",
        "state",
    ]  # a header names the columns
    key_id = row.split("\t")[0]
    assert "acme" in listed.stdout and token not in listed.stdout
    assert token not in str(sql(settings, "SELECT * FROM api_keys"))
    assert run_cli(settings, "keys", "revoke", key_id).returncode == 0
    assert "revoked" in run_cli(settings, "keys", "list").stdout
    bad = run_cli(settings, "keys", "create", "--role", "brand")
    assert bad.returncode == 2 and bad.stdout == ""
    version = run_cli(settings, "--version")
    assert version.returncode == 0 and version.stdout.startswith("counterfeit-check ")


def test_bulk_register_continues_past_bad_files_and_running_server_sees_it(settings, keys, tmp_path):
    folder = tmp_path / "fakes"
    folder.mkdir()
    for seed in (1, 4, 7):
        (folder / f"photo-{seed}.png").write_bytes(product_photo(seed))
    (folder / "broken.jpg").write_bytes(b"not really a jpeg")
    server = ThreadedServer(settings).start()
    try:
        result = run_cli(settings, "register", str(folder), "--brand", "acme", "--label", "counterfeit")
        assert result.returncode == 1  # some files failed
        assert (
            "3 registered" in result.stderr
            and "broken.jpg" in result.stderr
            and "not_an_image" in result.stderr
        )
        # The running server tails the change log and picks the import up without a restart.
        with server.client(keys.platform) as platform:
            for _ in range(50):
                evidence = platform.post(
                    "/v1/check", files={"image": ("q.jpg", resized_jpeg_copy(4), "image/jpeg")}
                ).json()
                if evidence["verdict"] == "likely_counterfeit":
                    break
                time.sleep(0.1)
        assert evidence["verdict"] == "likely_counterfeit"
    finally:
        server.stop()
    again = run_cli(settings, "register", str(folder), "--brand", "acme", "--label", "counterfeit")
    assert "0 registered, 3 already present" in again.stderr

    query = tmp_path / "query.jpg"
    query.write_bytes(resized_jpeg_copy(7))
    checked = run_cli(settings, "check", str(query))
    assert checked.returncode == 0, checked.stderr
    assert json.loads(checked.stdout)["verdict"] == "likely_counterfeit"


def test_a_domain_refusal_exits_with_its_kinds_code_and_says_why(settings):
    """Domain errors reach the CLI as one line (code: message) and an exit code by kind: not found is 3."""
    missing = run_cli(settings, "keys", "rotate", "key_does_not_exist")
    assert missing.returncode == 3, missing.stderr
    assert "not_found" in missing.stderr and missing.stdout == ""
    bad = run_cli(settings, "keys", "create", "--role", "brand", "--brand", "Not A Brand")
    assert bad.returncode == 2 and "invalid_brand" in bad.stderr, bad.stderr


def test_index_list_marks_the_generation_being_served(settings):
    from tests.helpers import running

    with running(settings) as server, server.client() as client:  # a first start builds generation 1
        assert client.get("/readyz").status_code == 200
    listed = run_cli(settings, "index", "list")
    assert listed.returncode == 0, listed.stderr
    lines = listed.stdout.strip().splitlines()
    assert lines and lines[-1].startswith("* ") and settings.model in lines[-1], listed.stdout
