"""Nothing acknowledged is lost: across clean restarts and across kill -9."""

from __future__ import annotations

import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import pytest

from service.db.models import Role
from tests.helpers import ThreadedServer, cli_env, create_api_key, free_port, product_photo


def _register(client, seed: int, brand: str = "acme", label: str = "counterfeit") -> httpx.Response:
    return client.post(
        "/v1/references",
        files={"image": ("r.png", product_photo(seed), "image/png")},
        data={"brand": brand, "label": label},
    )


def _top_evidence(client, seed: int) -> int:
    response = client.post(
        "/v1/check", files={"image": ("q.png", product_photo(seed), "image/png")}, data={"k": "3"}
    )
    assert response.status_code == 200, response.text
    return response.json()["evidence"][0]["reference_id"]


def test_references_survive_restart_and_changes_while_down(settings, keys):
    server = ThreadedServer(settings).start()
    with server.client(keys.admin) as admin:
        before = {seed: _register(admin, seed).json()["id"] for seed in range(40, 45)}
        admin.delete(f"/v1/references/{before.pop(44)}")
    server.stop()  # writes a snapshot on shutdown
    assert (settings.index_dir / "generations" / "1" / "index.npz").exists()

    server = ThreadedServer(settings).start()
    with server.client(keys.admin) as admin:
        assert admin.get("/v1/info").json()["index"]["size"] == 4
        for seed, reference_id in before.items():
            assert _top_evidence(admin, seed) == reference_id
        after = _register(admin, 50).json()["id"]
    server.stop()
    server = ThreadedServer(settings).start()
    with server.client(keys.admin) as admin:
        assert _top_evidence(admin, 50) == after
        assert admin.get("/v1/info").json()["index"]["size"] == 5
    server.stop()


def _start_process(settings, port: int, log: Path | None = None, **extra_env: str) -> subprocess.Popen:
    """A `counterfeit serve` process, once ready; its output goes to ``log`` if given (else stderr is kept)."""
    env = cli_env(settings, **extra_env)
    output = (
        dict(stdout=log.open("wb"), stderr=subprocess.STDOUT)
        if log
        else dict(stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    )
    process = subprocess.Popen(
        [sys.executable, "-m", "service", "serve", "--port", str(port)], env=env, **output
    )
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=1).status_code == 200:
                return process
        except httpx.TransportError:
            pass
        assert process.poll() is None, (
            log.read_text()[-3000:] if log else process.stderr.read().decode()[-3000:]
        )
        time.sleep(0.2)
    raise RuntimeError("server process did not become ready")


@pytest.mark.slow  # starts and kills a server process
def test_kill_9_mid_burst_loses_no_acknowledged_reference(settings):
    admin_key = create_api_key(settings, Role.admin)
    headers = {"Authorization": f"Bearer {admin_key}"}
    port = free_port()
    process = _start_process(settings, port)
    acknowledged: dict[int, int] = {}
    stop = threading.Event()

    def burst(offset: int) -> None:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", headers=headers, timeout=10) as client:
            seed = 1000 + offset
            while not stop.is_set():
                try:
                    response = _register(client, seed)
                except httpx.TransportError:
                    return  # the server died under us: this one was never acknowledged
                if response.status_code == 201:
                    acknowledged[seed] = response.json()["id"]
                seed += 4

    threads = [threading.Thread(target=burst, args=(i,)) for i in range(4)]
    for thread in threads:
        thread.start()
    deadline = time.monotonic() + 60
    while len(acknowledged) < 30 and time.monotonic() < deadline:
        time.sleep(0.05)
    process.send_signal(signal.SIGKILL)  # mid-burst: requests are in flight
    process.wait()
    stop.set()
    for thread in threads:
        thread.join()
    assert len(acknowledged) >= 30

    process = _start_process(settings, port)
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", headers=headers, timeout=30) as client:
            listed = set()
            cursor = None
            while True:
                page = client.get(
                    "/v1/references", params={"limit": 500, **({"cursor": cursor} if cursor else {})}
                ).json()
                listed |= {item["id"] for item in page["items"]}
                if not (cursor := page["next_cursor"]):
                    break
            assert set(acknowledged.values()) <= listed
            assert client.get("/v1/info").json()["index"]["size"] == len(listed)
            for seed, reference_id in acknowledged.items():
                assert _top_evidence(client, seed) == reference_id
    finally:
        process.terminate()
        process.wait(timeout=30)
