"""Blobs in an S3-protocol bucket (COUNTERFEIT_BLOB_URL), against moto's standalone server on loopback.

Replicas with separate local data directories share one database and one bucket (no shared filesystem);
each local directory is only a cache. An unreachable store answers 503 with Retry-After and loses nothing
that was acknowledged.
"""

from __future__ import annotations

import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from service.db.models import Role
from tests.helpers import create_api_key, free_port, make_settings, product_photo, running

BUCKET = "counterfeit-test"


class S3Server:
    """moto's standalone S3 server in its own process (``moto_server``), so it can be killed like a real one."""

    def __init__(self, port: int):
        self.port = port
        self.url = f"http://127.0.0.1:{port}"
        self.process: subprocess.Popen | None = None

    def start(self) -> "S3Server":
        executable = Path(sys.executable).with_name("moto_server")
        self.process = subprocess.Popen(
            [str(executable), "-H", "127.0.0.1", "-p", str(self.port)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 30
        while True:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.5).close()
                break
            except OSError:
                assert time.monotonic() < deadline and self.process.poll() is None, (
                    "moto_server did not start"
                )
                time.sleep(0.1)
        self.client().create_bucket(Bucket=BUCKET)
        return self

    def kill(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        self.process.wait()

    def client(self):
        import boto3

        return boto3.client("s3", endpoint_url=self.url)

    def keys(self) -> list[str]:
        return [item["Key"] for item in self.client().list_objects_v2(Bucket=BUCKET).get("Contents", [])]


@pytest.fixture
def s3(monkeypatch):
    server = S3Server(free_port())
    for name, value in (
        ("AWS_ACCESS_KEY_ID", "test"),
        ("AWS_SECRET_ACCESS_KEY", "test"),
        ("AWS_DEFAULT_REGION", "us-east-1"),
        ("AWS_ENDPOINT_URL", server.url),
    ):
        monkeypatch.setenv(name, value)
    server.start()
    yield server
    if server.process.poll() is None:
        server.kill()


def _two_replicas(tmp_path, **overrides):
    first = make_settings(tmp_path / "a", blob_url=f"s3://{BUCKET}/blobs", **overrides)
    database = first.database_url or f"sqlite:///{tmp_path / 'shared.db'}"
    first = first.model_copy(update={"database_url": database})
    return first, first.model_copy(update={"data_dir": tmp_path / "b"})


def test_replicas_without_a_shared_filesystem_share_blobs_through_the_bucket(tmp_path, s3):
    settings_a, settings_b = _two_replicas(tmp_path)
    admin = create_api_key(settings_a, Role.admin)
    platform = create_api_key(settings_a, Role.platform)
    with running(settings_a) as a, a.client(admin) as on_a:
        registered = on_a.post(
            "/v1/references",
            data={"brand": "acme", "label": "counterfeit"},
            files={"image": ("r.png", product_photo(3), "image/png")},
        )
        assert registered.status_code == 201, registered.text
        reference = registered.json()
    assert f"blobs/{reference['sha256'][:2]}/{reference['sha256'][2:4]}/{reference['sha256']}" in s3.keys()
    assert not (settings_b.blob_dir).exists()  # replica B has never seen it
    with running(settings_b) as b, b.client(admin) as on_b, b.client(platform) as checker:
        image = on_b.get(f"/v1/references/{reference['id']}/image")
        assert image.status_code == 200 and image.content == product_photo(3)  # from the bucket
        check = checker.post("/v1/check", files={"image": ("q.png", product_photo(3), "image/png")}).json()
        assert check["evidence"][0]["reference_id"] == reference["id"]
    assert (
        settings_b.blob_dir / reference["sha256"][:2] / reference["sha256"][2:4] / reference["sha256"]
    ).exists()


def test_an_object_store_outage_answers_503_and_loses_nothing_acknowledged(tmp_path, s3):
    settings, _ = _two_replicas(tmp_path)
    admin = create_api_key(settings, Role.admin)
    acknowledged = {}
    with running(settings) as server, server.client(admin) as client:

        def register(seed: int) -> httpx.Response:
            return client.post(
                "/v1/references",
                data={"brand": "acme", "label": "counterfeit"},
                files={"image": ("r.png", product_photo(seed), "image/png")},
            )

        for seed in range(3):
            acknowledged[seed] = register(seed).json()["id"]
        s3.kill()  # kill -9 the store mid-traffic
        before = client.get("/v1/info").json()["references"]
        for seed in range(3, 6):
            refused = register(seed)
            assert refused.status_code == 503, refused.text
            assert refused.json()["error"]["code"] == "storage_unavailable" and refused.headers["retry-after"]
        assert client.get("/v1/info").json()["references"] == before  # nothing was committed
        s3.start()  # back (moto keeps nothing across a restart: only this replica's cache has the old bytes)
        for seed in range(3, 6):
            response = register(seed)
            assert response.status_code == 201, response.text
            acknowledged[seed] = response.json()["id"]
        listed = {item["id"] for item in client.get("/v1/references", params={"limit": 100}).json()["items"]}
        assert set(acknowledged.values()) <= listed
        for reference_id in acknowledged.values():
            assert client.get(f"/v1/references/{reference_id}/image").status_code == 200


@pytest.mark.slow  # three server processes
def test_a_fleet_of_three_replicas_with_separate_disks_one_database_and_one_bucket(tmp_path, s3):
    """The fleet of issue 27: three `counterfeit serve` processes, each with its own local data directory, one
    database, one bucket, no shared filesystem; the third runs torch's scalar kernels (another CPU generation).
    None refuses the index; what one writes the others serve; a store outage is 503s, then recovery; a reindex
    on one moves all three."""
    from tests.system.test_durability import _start_process

    settings_a, _ = _two_replicas(tmp_path, change_poll_seconds=0.2, generation_swap_jitter_seconds=0.0)
    fleet = [settings_a.model_copy(update={"data_dir": tmp_path / name}) for name in ("a", "b", "c")]
    admin = {"Authorization": f"Bearer {create_api_key(settings_a, Role.admin)}"}
    platform = {"Authorization": f"Bearer {create_api_key(settings_a, Role.platform)}"}
    ports = [free_port() for _ in fleet]
    processes = []
    try:
        logs = [tmp_path / f"replica-{name}.log" for name in "abc"]
        for settings, port, log, extra in zip(
            fleet, ports, logs, ({}, {}, {"ATEN_CPU_CAPABILITY": "default"})
        ):
            # Output to files: an unread stderr pipe fills during the store outage (each poll logs its failure)
            # and then blocks the replica on its next log line.
            processes.append(
                _start_process(settings, port, log, **extra)
            )  # ready: no "run a reindex" refusal
        a, b, c = (httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=60) for port in ports)
        assert (
            len(
                {client.get("/v1/info", headers=admin).json()["model"]["fingerprint"] for client in (a, b, c)}
            )
            == 1
        )

        def top(client, seed):
            evidence = client.post(
                "/v1/check", headers=platform, files={"image": ("q.png", product_photo(seed), "image/png")}
            ).json()["evidence"]
            return evidence[0]["reference_id"] if evidence else None

        def eventually(
            condition, what: str, seconds: float = 30.0
        ):  # generous: three servers share two cores
            deadline = time.monotonic() + seconds
            while not condition():
                if time.monotonic() >= deadline:
                    tails = "\n".join(f"{log.name}: {log.read_text()[-1500:]}" for log in logs)
                    raise AssertionError(f"{what}\n{tails}")
                time.sleep(0.05)

        reference = a.post(
            "/v1/references",
            headers=admin,
            data={"brand": "acme", "label": "counterfeit"},
            files={"image": ("r.png", product_photo(11), "image/png")},
        ).json()
        for client, name in ((b, "B"), (c, "C")):
            eventually(
                lambda client=client: top(client, 11) == reference["id"], f"replica {name} never found it"
            )
        image = c.get(f"/v1/references/{reference['id']}/image", headers=admin)
        assert image.status_code == 200 and image.content == product_photo(11)
        assert c.delete(f"/v1/references/{reference['id']}", headers=admin).status_code == 200
        eventually(lambda: top(a, 11) != reference["id"], "replica A still serves a reference deleted on C")

        acknowledged = []
        s3.kill()
        for seed in range(20, 23):
            refused = b.post(
                "/v1/references",
                headers=admin,
                data={"brand": "acme", "label": "counterfeit"},
                files={"image": ("r.png", product_photo(seed), "image/png")},
            )
            assert refused.status_code == 503 and refused.headers["retry-after"], refused.text
        s3.start()
        for seed in range(20, 23):
            registered = b.post(
                "/v1/references",
                headers=admin,
                data={"brand": "acme", "label": "counterfeit"},
                files={"image": ("r.png", product_photo(seed), "image/png")},
            )
            assert registered.status_code == 201, registered.text
            acknowledged.append(registered.json()["id"])
        for seed, reference_id in zip(range(20, 23), acknowledged):
            eventually(
                lambda seed=seed, rid=reference_id: top(a, seed) == rid and top(c, seed) == rid,
                f"reference {reference_id} missing on A or C",
            )

        # A reindex to another model on C: every replica, each on its own disk, swaps to it.
        job = c.post(
            "/v1/reindex", headers=admin, json={"model": "open_clip:tiny-random-b", "index_type": "flat"}
        )
        assert job.status_code == 202, job.text
        eventually(
            lambda: c.get(f"/v1/jobs/{job.json()['job_id']}", headers=admin).json()["state"] == "succeeded",
            "the reindex did not succeed",
            120,
        )
        for client, name in ((a, "A"), (b, "B"), (c, "C")):
            eventually(
                lambda client=client: (
                    client.get("/v1/info", headers=admin).json()["model"]["spec"] == "open_clip:tiny-random-b"
                ),
                f"replica {name} did not swap",
                60,
            )
        for client in (a, b, c):
            assert top(client, 21) == acknowledged[1]  # the new generation serves what was acknowledged
            client.close()
    finally:
        for process in processes:
            process.terminate()
            process.wait(timeout=30)


def test_a_reindex_on_one_disk_moves_every_replica_and_a_new_one_starts_from_the_shared_snapshot(
    tmp_path, s3, caplog
):
    """The current generation is the database's (index_pointer) and its snapshot is in the bucket: replica B,
    on its own disk, follows A's reindex to another model; replica C, started on an empty disk afterwards,
    fetches that generation's snapshot instead of building it."""
    import logging

    caplog.set_level(logging.INFO)
    settings_a, settings_b = _two_replicas(
        tmp_path, change_poll_seconds=0.2, generation_swap_jitter_seconds=0.0
    )
    # C names no model: it serves the deployment's (an explicitly configured other model is refused, as ever).
    settings_c = type(settings_a).model_validate(
        {**settings_a.model_dump(exclude={"model"}, exclude_unset=True), "data_dir": tmp_path / "c"}
    )
    admin = create_api_key(settings_a, Role.admin)
    with running(settings_a) as a, running(settings_b) as b, a.client(admin) as on_a, b.client(admin) as on_b:
        ids = [
            on_a.post(
                "/v1/references",
                data={"brand": "acme", "label": "counterfeit"},
                files={"image": ("r.png", product_photo(seed), "image/png")},
            ).json()["id"]
            for seed in range(4)
        ]
        job = on_a.post(
            "/v1/reindex", json={"model": "open_clip:tiny-random-b", "index_type": "flat"}
        ).json()["job_id"]
        deadline = time.monotonic() + 120
        while on_a.get(f"/v1/jobs/{job}").json()["state"] in ("queued", "running"):
            assert time.monotonic() < deadline
            time.sleep(0.2)
        assert on_a.get(f"/v1/jobs/{job}").json()["state"] == "succeeded"
        for client, name in ((on_a, "A"), (on_b, "B")):
            while client.get("/v1/info").json()["model"]["spec"] != "open_clip:tiny-random-b":
                assert time.monotonic() < deadline, f"replica {name} did not follow the reindex"
                time.sleep(0.2)
        generation = on_a.get("/v1/info").json()["index"]["generation"]
        assert on_b.get("/v1/info").json()["index"]["generation"] == generation
    assert any(key.startswith(f"blobs/files/generations/{generation}/") for key in s3.keys())
    caplog.clear()
    with running(settings_c) as c, c.client(admin) as on_c:
        info = on_c.get("/v1/info").json()
        assert (
            info["model"]["spec"] == "open_clip:tiny-random-b" and info["index"]["generation"] == generation
        )
        assert {item["id"] for item in on_c.get("/v1/references").json()["items"]} == set(ids)
    assert any("Fetched the snapshot of index generation" in r.getMessage() for r in caplog.records)
