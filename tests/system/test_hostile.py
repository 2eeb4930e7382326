"""Issue 9: hostile and careless input. Each case answers a clear 4xx (never a 5xx) and a rejected
request changes nothing; stored rows can always be listed again."""

from __future__ import annotations

import json
import threading
import time

import httpx
import pytest
from PIL import Image
from sqlalchemy import text, update

from index.images import DecodeBudget, DecodeBusy, decode_image
from service.db.models import Reference
from service.db.session import make_engine, make_session_factory
from tests.helpers import make_settings, png_bytes, product_photo, running
from tests.service.api.test_bad_input import _state

MB = 1 << 20


def _register(client, seed=1, **fields):
    data = {"brand": "acme", "label": "counterfeit", **fields}
    return client.post(
        "/v1/references", files={"image": ("r.png", product_photo(seed), "image/png")}, data=data
    )


BAD_METADATA = [
    ("NaN", '{"x": NaN}'),
    ("Infinity", '{"x": Infinity}'),
    ("-Infinity", '{"x": [-Infinity]}'),
    ("overflowing number", '{"x": 1e999}'),
    ("deep nesting", "[" * 100_000 + "]" * 100_000),
    ("nesting just over the limit", '{"a":' * 9 + "1" + "}" * 9),
    ("over 16 KiB", json.dumps({"x": "y" * 17_000})),
    ("not an object", "[1, 2]"),
    ("an unpaired surrogate", '{"a": "\\ud800"}'),
    ("an unpaired surrogate in a key", '{"\\udfff": 1}'),
    ("a reversed surrogate pair", '{"a": ["ok", "\\udc00\\ud800"]}'),
    ("NUL inside a string", '{"a": "x\\u0000y"}'),
]


@pytest.mark.parametrize("case", BAD_METADATA, ids=[c[0] for c in BAD_METADATA])
def test_bad_metadata_is_refused_before_anything_is_written(server, admin, case):
    _register(admin, 1)
    before = _state(server, admin)
    response = _register(admin, 2, metadata=case[1])
    assert response.status_code == 422, response.text
    assert response.json()["error"]["code"] in ("invalid_metadata", "invalid_request")
    assert _state(server, admin) == before
    assert admin.get("/v1/references").status_code == 200


def test_metadata_at_the_limits_is_accepted(admin):
    nested = '{"a":' * 8 + "1" + "}" * 8
    response = _register(admin, 3, metadata=nested)
    assert response.status_code == 201, response.text
    assert admin.get(f"/v1/references/{response.json()['id']}").json()["metadata"] == json.loads(nested)


def test_a_stored_non_finite_number_never_breaks_a_listing(server, admin, keys):
    """Rows written before validation existed (or by hand) still render: non-finite numbers as null."""
    if server.settings.database_url:
        pytest.skip("PostgreSQL's json type refuses NaN, so such a row cannot exist there")
    reference_id = _register(admin, 4).json()["id"]
    engine = make_engine(server.settings.resolved_database_url)
    with make_session_factory(engine)() as session:
        session.execute(
            update(Reference).where(Reference.id == reference_id).values(extra={"x": float("nan")})
        )
        session.commit()
    engine.dispose()
    for key in (keys.admin, keys.brand_a):
        with server.client(key) as client:
            listing = client.get("/v1/references")
            assert listing.status_code == 200, listing.text
            assert listing.json()["items"][0]["metadata"] == {"x": None}


def test_a_stored_unpaired_surrogate_never_breaks_a_listing_or_a_read(server, admin, keys):
    """A row written before text was validated (it answered 500 and broke the brand's listing for good) now
    reads back with U+FFFD in place of the surrogate; a valid pair next to it is kept."""
    reference_id = _register(admin, 4).json()["id"]
    engine = make_engine(server.settings.resolved_database_url)
    stored = '{"a": "\\ud800", "ok": "\\ud83d\\ude00"}'
    try:
        with engine.begin() as connection:
            value = "CAST(:m AS JSON)" if engine.dialect.name == "postgresql" else ":m"
            connection.execute(
                text(f"UPDATE reference_images SET metadata = {value} WHERE id = :i"),
                {"m": stored, "i": reference_id},
            )
    except Exception as exc:  # PostgreSQL may refuse such text itself: then no such row can exist there
        pytest.skip(f"the database refuses the row: {exc}")
    finally:
        engine.dispose()
    for key in (keys.admin, keys.brand_a):
        with server.client(key) as client:
            for path in ("/v1/references", f"/v1/references/{reference_id}"):
                response = client.get(path)
                assert response.status_code == 200, response.text
                body = response.json()
                metadata = body["items"][0]["metadata"] if "items" in body else body["metadata"]
                assert metadata == {"a": "\ufffd", "ok": "\U0001f600"}


@pytest.mark.parametrize("spelling", ["+{id}", "%20{id}", "0{id}", "{id}.0", "{id}%20", "%2B{id}"])
def test_ids_are_plain_digits_and_other_spellings_name_no_row(server, admin, spelling):
    """`DELETE /v1/references/+5` deleted reference 5: int() takes a sign, spaces and leading zeros."""
    reference_id = _register(admin, 5).json()["id"]
    before = _state(server, admin)
    for method in ("GET", "DELETE"):
        response = admin.request(method, "/v1/references/" + spelling.format(id=reference_id))
        assert response.status_code == 422 and response.json()["error"]["code"] == "invalid_request", (
            response.text
        )
    assert _state(server, admin) == before
    assert admin.get(f"/v1/references/{reference_id}").status_code == 200


@pytest.mark.parametrize(
    "path",
    [
        "/v1/references/9223372036854775808",
        "/v1/references/-1",
        "/v1/references/99999999999999999999999999/image",
        "/v1/references/0",
    ],
)
def test_ids_outside_the_id_range_are_422(admin, path):
    for method in ("GET",) if path.endswith("/image") else ("GET", "DELETE"):
        response = admin.request(method, path)
        assert response.status_code == 422 and response.json()["error"]["code"] == "invalid_request", (
            response.text
        )


@pytest.mark.parametrize("cursor", ["OTIyMzM3MjAzNjg1NDc3NTgwOA", "LTE", "%%%", "9" * 60])
def test_cursors_outside_the_id_range_are_422(admin, cursor):
    response = admin.get("/v1/references", params={"cursor": cursor})
    assert response.status_code == 422 and response.json()["error"]["code"] in (
        "invalid_cursor",
        "invalid_request",
    )


def test_image_download_has_the_sniffed_type_and_nosniff(admin):
    response = admin.post(
        "/v1/references",
        files={"image": ("x.html", product_photo(5), "text/html")},
        data={"brand": "acme", "label": "authentic"},
    )
    assert response.status_code == 201 and response.json()["content_type"] == "image/png"
    image = admin.get(f"/v1/references/{response.json()['id']}/image")
    assert image.headers["content-type"] == "image/png"
    assert image.headers["x-content-type-options"] == "nosniff"
    assert image.headers["content-disposition"] == "attachment"
    assert image.content == product_photo(5)


def test_metrics_need_a_token_or_an_admin_key(tmp_path, keys_for):
    settings = make_settings(tmp_path / "data", metrics_token="scrape-secret")
    keys = keys_for(settings)
    with running(settings) as server:
        expected = {
            None: 401,
            "wrong": 401,
            keys.brand_a: 403,
            keys.platform: 403,
            keys.admin: 200,
            "scrape-secret": 200,
        }
        for key, status in expected.items():
            with server.client(key) as client:
                response = client.get("/metrics")
            assert response.status_code == status, (key, response.text[:200])
        with server.client("scrape-secret") as client:
            text = client.get("/metrics").text
        assert "counterfeit_http_requests_total" in text and "acme" not in text  # no tenant labels


def _chunks(total: int, size: int = MB, pause: float = 0.0):
    """A chunked multipart upload (no Content-Length) whose image part goes on for ``total`` bytes."""
    yield (
        b'--xyz\r\nContent-Disposition: form-data; name="image"; filename="a.jpg"\r\n'
        b"Content-Type: image/jpeg\r\n\r\n"
    )
    sent = 0
    while sent < total:
        if pause:
            time.sleep(pause)
        yield b"\0" * size
        sent += size


def test_chunked_upload_is_stopped_at_the_limit(server, keys, admin):
    before = _state(server, admin)
    limit = server.settings.max_image_bytes + MB
    headers = {"Content-Type": "multipart/form-data; boundary=xyz"}
    with server.client(keys.platform) as client:
        response = client.post("/v1/check", content=_chunks(limit + 8 * MB), headers=headers)
    assert response.status_code == 413 and response.json()["error"]["code"] == "body_too_large"
    assert _state(server, admin) == before


def test_slow_uploads_time_out(tmp_path, keys_for):
    settings = make_settings(tmp_path / "data", body_idle_timeout_seconds=0.5)
    keys = keys_for(settings)
    with running(settings) as server:
        headers = {"Content-Type": "multipart/form-data; boundary=xyz"}
        started = time.monotonic()
        with server.client(keys.platform) as client:
            try:
                response = client.post(
                    "/v1/check", content=_chunks(4 * 1024, size=1024, pause=1.5), headers=headers
                )
                assert response.status_code == 408 and response.json()["error"]["code"] == "request_timeout"
            except httpx.HTTPError:
                pass  # the server may close the connection while the client is still sending
        assert time.monotonic() - started < 10


def test_full_admission_answers_503_before_reading_the_body(tmp_path, keys_for):
    settings = make_settings(tmp_path / "data", max_inflight_checks=1, body_idle_timeout_seconds=30)
    keys = keys_for(settings)
    with running(settings) as server:
        headers = {
            "Content-Type": "multipart/form-data; boundary=xyz",
            "Authorization": f"Bearer {keys.platform}",
        }
        slow = threading.Thread(
            target=lambda: httpx.post(
                server.url + "/v1/check",
                headers=headers,
                timeout=30,
                content=_chunks(6 * 1024, size=1024, pause=0.5),
            )
        )
        slow.start()
        time.sleep(1.0)  # the slow upload now holds the only slot
        with server.client(keys.platform) as client:
            started = time.monotonic()
            response = client.post("/v1/check", files={"image": ("q.png", product_photo(1), "image/png")})
            assert response.status_code == 503 and response.headers["retry-after"] == "1"
            assert time.monotonic() - started < 1.0
            assert client.get("/healthz").status_code == 200
        slow.join(timeout=30)
        with server.client(keys.platform) as client:
            assert (
                client.post(
                    "/v1/check", files={"image": ("q.png", product_photo(1), "image/png")}
                ).status_code
                == 200
            )
        with server.client(keys.admin) as admin:
            assert "counterfeit_admission_rejected_total 1.0" in admin.get("/metrics").text


def _one_bit_bomb(side: int = 7071) -> bytes:
    return png_bytes(Image.new("1", (side, side)))


def test_a_tiny_file_that_decodes_to_50_megapixels_is_decoded_reduced():
    data = _one_bit_bomb()
    assert len(data) < 100_000
    image = decode_image(data, 20 * MB, 50_000_000, draft_size=(224, 224), budget=DecodeBudget(512 * MB))
    assert image.info["source_size"] == (7071, 7071) and image.mode == "RGB"
    assert 448 <= image.width < 1000  # reduced right after loading: every later copy is small


def test_decode_budget_makes_excess_wait_then_gives_up():
    budget = DecodeBudget(300 * MB, wait_seconds=0.3)
    with budget.reserve(200 * MB):
        with pytest.raises(DecodeBusy):
            with budget.reserve(200 * MB):
                pass
    first = budget.reserve(200 * MB)
    first.__enter__()
    threading.Timer(0.1, lambda: first.__exit__(None, None, None)).start()
    with budget.reserve(200 * MB):  # waited for the first to finish instead of failing
        assert budget.in_use == 200 * MB
    assert budget.in_use == 0


def test_an_image_over_the_whole_decode_budget_is_413(tmp_path, keys_for):
    settings = make_settings(tmp_path / "data", decode_memory_mb=64)
    keys = keys_for(settings)
    with running(settings) as server:
        with server.client(keys.platform) as client:
            response = client.post("/v1/check", files={"image": ("b.png", _one_bit_bomb(), "image/png")})
        assert response.status_code == 413 and response.json()["error"]["code"] == "too_many_pixels"


def test_unknown_and_coerced_fields_are_refused(server, admin, keys):
    before = _state(server, admin)
    cases = [
        admin.put(
            "/v1/brands/acme/policy",
            json={"auto_add_confirmed_counterfeits": True, "auto_add_confirmed_counterfeit": True},
        ),
        admin.put("/v1/brands/acme/policy", json={"auto_add_confirmed_counterfeits": 0}),
        admin.put("/v1/brands/acme/policy", json={"counterfeit_threshold": "0.9"}),
        admin.post("/v1/reindex", json={"index_type": "flat", "egnine": "ray"}),
        _register(admin, 6, share_signals="0"),
        _register(admin, 6, share_signals="yes"),
        _register(admin, 6, colour="red"),
        admin.get("/v1/references", params={"lable": "counterfeit"}),
        # duplicated fields (issue 25): which one would count?
        _register(admin, 6, label=["authentic", "counterfeit"]),
        admin.post(
            "/v1/references",
            data={"brand": "acme", "label": "authentic"},
            files=[
                ("image", ("a.png", product_photo(6), "image/png")),
                ("image", ("b.png", product_photo(7), "image/png")),
            ],
        ),
        admin.get("/v1/references", params=[("label", "counterfeit"), ("label", "authentic")]),
        admin.put(
            "/v1/brands/acme/policy",
            headers={"content-type": "application/json"},
            content=b'{"auto_add_confirmed_counterfeits": false, "auto_add_confirmed_counterfeits": true}',
        ),
    ]
    for response in cases:
        assert response.status_code == 422, response.text
        assert response.json()["error"]["code"] in ("invalid_request", "unknown_parameter")
    assert _state(server, admin) == before
    assert admin.get("/v1/brands/acme/policy").json()["auto_add_confirmed_counterfeits"] is False
    assert _register(admin, 6, share_signals="true").json()["share_signals"] is True


def test_form_text_that_is_not_utf8_is_refused_not_stored_as_mojibake(server, admin):
    """Starlette decoded invalid UTF-8 form text as Latin-1: 'caf\\xe9' was stored as 'café' nobody typed."""
    before = _state(server, admin)
    boundary = "xyzzy"
    for name, value, filename in (("product", b"caf\xe9 \xff", b"r.png"), ("product", b"ok", b"r\xff.png")):
        body = (
            (
                f'--{boundary}\r\nContent-Disposition: form-data; name="label"\r\n\r\ncounterfeit\r\n'
                f'--{boundary}\r\nContent-Disposition: form-data; name="brand"\r\n\r\nacme\r\n'
                f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n'
            ).encode()
            + value
            + (f'\r\n--{boundary}\r\nContent-Disposition: form-data; name="image"; filename="').encode()
            + filename
            + (
                b'"\r\nContent-Type: image/png\r\n\r\n'
                + product_photo(8)
                + f"\r\n--{boundary}--\r\n".encode()
            )
        )
        response = admin.post(
            "/v1/references",
            content=body,
            headers={"Content-Type": f"multipart/form-data; boundary={boundary}"},
        )
        assert response.status_code == 422 and "not valid utf-8" in response.json()["error"]["message"], (
            response.text
        )
    assert _state(server, admin) == before
    accepted = _register(admin, 8, product="café ☕")
    assert accepted.status_code == 201 and accepted.json()["product"] == "café ☕"


def test_a_form_part_over_1_mb_is_422(server, admin):
    before = _state(server, admin)
    response = _register(admin, 7, product="p" * (2 * MB))
    assert response.status_code == 422 and response.json()["error"]["code"] == "invalid_request"
    assert _state(server, admin) == before


def test_unexpected_errors_are_json_500s_with_the_request_id(server, admin, caplog):
    runtime = server.server.config.app.state.runtime

    def broken(*_args, **_kwargs):
        raise RuntimeError("boom")

    runtime.registry.list = broken
    response = admin.get("/v1/references", headers={"X-Request-ID": "trace-123"})
    assert response.status_code == 500
    assert response.json()["error"] == {
        "code": "internal_error",
        "request_id": "trace-123",
        "message": "Something went wrong on our side; it has been logged.",
    }
    assert response.headers["x-request-id"] == "trace-123"
    assert any("request_id=trace-123" in record.getMessage() for record in caplog.records)


def test_cors_is_off_by_default_and_configurable(server, tmp_path, keys_for):
    preflight = {"Origin": "https://brand.example", "Access-Control-Request-Method": "GET"}
    with server.client() as client:
        assert (
            "access-control-allow-origin" not in client.options("/v1/references", headers=preflight).headers
        )
    settings = make_settings(tmp_path / "cors", cors_allow_origins=["https://brand.example"])
    keys_for(settings)
    with running(settings) as cors:
        with cors.client() as client:
            response = client.options("/v1/references", headers=preflight)
            assert response.headers["access-control-allow-origin"] == "https://brand.example"
            other = client.options("/v1/references", headers={**preflight, "Origin": "https://evil.example"})
            assert "access-control-allow-origin" not in other.headers


def _rss_mb() -> float:
    for line in open("/proc/self/status"):
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS")


def test_concurrent_decompression_bombs_stay_within_the_memory_budget(server, keys):
    """Four 6 KB PNGs that decode to 50 MP each cost +6.9 GB before the budget; now the whole
    (server-in-this-process) RSS may rise at most 1 GB, and falls back afterwards."""
    bomb = _one_bit_bomb()
    with server.client(keys.platform) as client:
        client.post("/v1/check", files={"image": ("w.png", product_photo(1), "image/png")})  # warm up
    baseline, peak, done = _rss_mb(), 0.0, threading.Event()

    def sample():
        nonlocal peak
        while not done.is_set():
            peak = max(peak, _rss_mb())
            time.sleep(0.01)

    sampler = threading.Thread(target=sample)
    sampler.start()

    def check(_):
        with server.client(keys.platform) as client:
            return client.post("/v1/check", files={"image": ("b.png", bomb, "image/png")}).status_code

    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(4) as pool:
        statuses = list(pool.map(check, range(4)))
    done.set()
    sampler.join()
    assert statuses == [200] * 4
    assert peak - baseline < 1024, f"RSS rose {peak - baseline:.0f} MB"
    time.sleep(0.5)
    assert _rss_mb() - baseline < 150, f"RSS stayed {_rss_mb() - baseline:.0f} MB above the baseline"


def test_nul_characters_are_refused_everywhere_text_goes(server, admin, keys):
    """PostgreSQL can neither store nor compare NUL: found by the fuzzer as 500s on the PostgreSQL pass."""
    before = _state(server, admin)
    answers = [
        admin.get("/v1/references", params={"product": "a\x00b"}),
        admin.get("/v1/audit", params={"action": "x\x00"}),
        admin.get("/v1/jobs/job_%00"),
        admin.post("/v1/checks/chk_%00/review", json={"label": "authentic"}),
        admin.post("/v1/reindex", json={"model": "open_clip:tiny-random\x00"}),
        _register(admin, 8, product="p\x00"),
    ]
    for response in answers:
        assert response.status_code == 422, response.text
    assert _state(server, admin) == before


def test_ids_beyond_32_bits_are_ordinary_misses(admin):
    """On PostgreSQL ids were INTEGER, so 2^31 … 2^63-1 answered 500 (found by the fuzzer)."""
    for reference_id in (2**31, 2**40, 2**63 - 1):
        assert admin.get(f"/v1/references/{reference_id}").status_code == 404
        assert admin.delete(f"/v1/references/{reference_id}").status_code == 404
    assert admin.get("/v1/references", params={"cursor": str(10**17)}).json() == {
        "items": [],
        "next_cursor": None,
    }
