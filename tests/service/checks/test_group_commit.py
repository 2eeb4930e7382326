"""Check rows are group-committed, and an answered check is durable: kill -9 after a burst loses no returned id."""

from __future__ import annotations

import asyncio
import re
import signal
import threading
import time
from pathlib import Path

import httpx
import pytest

from service.db.models import Role
from tests.helpers import ThreadedServer, create_api_key, free_port, make_settings, product_photo, sql
from tests.system.test_durability import _start_process


def _children(pid: int) -> set[int]:
    found = set()
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == pid:
                found.add(int(entry.name))
    return found


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


@pytest.mark.slow  # starts and kills a server process
def test_kill_9_after_a_burst_of_checks_loses_no_returned_check_id(tmp_path):
    settings = make_settings(tmp_path / "data", cpu_workers=2)
    key = create_api_key(settings, Role.platform)
    port = free_port()
    process = _start_process(settings, port)
    returned: list[str] = []
    stop = threading.Event()

    def burst(offset: int) -> None:
        with httpx.Client(
            base_url=f"http://127.0.0.1:{port}", headers={"Authorization": f"Bearer {key}"}, timeout=10
        ) as client:
            seed = offset
            while not stop.is_set():
                try:
                    response = client.post(
                        "/v1/check", files={"image": ("q.png", product_photo(seed % 40), "image/png")}
                    )
                except httpx.TransportError:
                    return  # the server died under us: never answered
                if response.status_code == 200:
                    returned.append(response.json()["check_id"])
                seed += 8

    threads = [threading.Thread(target=burst, args=(i,)) for i in range(8)]
    for thread in threads:
        thread.start()
    deadline = time.monotonic() + 90
    while len(returned) < 60 and time.monotonic() < deadline:
        time.sleep(0.02)
    workers = _children(process.pid)  # the CPU workers (and multiprocessing's resource tracker)
    process.send_signal(signal.SIGKILL)  # requests are in flight, some rows queued for the next commit
    process.wait()
    stop.set()
    for thread in threads:
        thread.join()
    assert len(returned) >= 60
    stored = {row[0] for row in sql(settings, "SELECT id FROM checks")}
    missing = set(returned) - stored
    assert not missing, f"{len(missing)} of {len(returned)} returned check ids are not in the checks table"
    # The CPU worker processes do not outlive the server.
    assert len(workers) >= 2, workers
    deadline = time.monotonic() + 20
    while any(_alive(pid) for pid in workers) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not any(_alive(pid) for pid in workers), "worker processes outlived a killed server"


def test_concurrent_checks_share_commits(tmp_path, keys_for):
    settings = make_settings(tmp_path / "data")
    keys = keys_for(settings)
    server = ThreadedServer(settings).start()
    try:

        async def many() -> list[httpx.Response]:
            async with httpx.AsyncClient(
                base_url=server.url, headers={"Authorization": f"Bearer {keys.platform}"}, timeout=60
            ) as client:
                return await asyncio.gather(
                    *(
                        client.post("/v1/check", files={"image": ("q.png", product_photo(s), "image/png")})
                        for s in range(48)
                    )
                )

        responses = asyncio.run(many())
        assert all(r.status_code == 200 for r in responses)
        with server.client(keys.admin) as admin:
            text = admin.get("/metrics").text
    finally:
        server.stop()
    rows = float(re.search(r"^counterfeit_check_commit_rows_sum ([0-9.e+]+)$", text, re.M).group(1))
    commits = float(re.search(r"^counterfeit_check_commit_rows_count ([0-9.e+]+)$", text, re.M).group(1))
    assert rows == 48
    assert commits < rows, "every check row had its own commit"
    assert len({row[0] for row in sql(settings, "SELECT id FROM checks")}) == 48
    assert {r.json()["check_id"] for r in responses} == {
        row[0] for row in sql(settings, "SELECT id FROM checks")
    }


def test_a_check_recorded_again_under_its_id_is_written_and_announced_once(settings):
    """A scan redoing a listing after a crash checks its photos again under the same ids: the second time
    writes no row (no second review item) and queues no second webhook delivery."""
    from service.checks.check_log import CheckWriter
    from service.db.models import Check, Webhook
    from service.db.session import make_engine, make_session_factory

    engine = make_engine(settings.resolved_database_url)
    sessions = make_session_factory(engine)
    with sessions() as session:
        session.add(
            Webhook(
                id="whk_0000000000000001",
                url="https://example.com/h",
                events=["check.likely_counterfeit"],
                secret="whsec_x",
            )
        )
        session.commit()
    writer = CheckWriter(sessions)
    try:

        def check(check_id: str) -> Check:
            return Check(
                id=check_id,
                image_sha256="0" * 64,
                verdict="likely_counterfeit",
                probability=0.99,
                model_fingerprint="f",
                scorer="s",
                brand="acme",
            )

        assert writer.write(check("chk_scan_a")).result(timeout=30) == "chk_scan_a"
        assert (
            writer.write(check("chk_scan_a")).result(timeout=30) == "chk_scan_a"
        )  # the redo: answered, not rewritten
        futures = [
            writer.write(check(i)) for i in ("chk_scan_b", "chk_scan_a", "chk_scan_b")
        ]  # in one group, too
        assert [f.result(timeout=30) for f in futures] == ["chk_scan_b", "chk_scan_a", "chk_scan_b"]
    finally:
        writer.close()
        engine.dispose()
    assert sql(settings, "SELECT id FROM checks ORDER BY id") == [("chk_scan_a",), ("chk_scan_b",)]
    assert sql(settings, "SELECT count(*) FROM webhook_deliveries") == [(2,)]
