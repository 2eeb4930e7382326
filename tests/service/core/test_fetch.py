"""image_url: fetched only from public hosts (re-checked on every redirect), size and time capped, sniffed."""

from __future__ import annotations

import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from service.core.errors import DomainError
from service.core.fetch import SafeFetcher, refused_address
from tests.helpers import make_settings, product_photo, resized_jpeg_copy, running, sql

PHOTO = resized_jpeg_copy(1)


class _Handler(BaseHTTPRequestHandler):
    routes: dict = {}

    def do_GET(self):  # noqa: N802 (http.server's name)
        status, headers, body = self.routes.get(self.path, (404, {}, b""))
        if callable(body):
            body = body()
        self.send_response(status)
        for name, value in headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


@pytest.fixture
def origin():
    """A local web server: photos, a page pretending to be a JPEG, redirects, a big and a slow file."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    base = f"http://127.0.0.1:{server.server_address[1]}"
    _Handler.routes = {
        "/photo.jpg": (200, {"Content-Type": "image/jpeg"}, PHOTO),
        "/page.jpg": (200, {"Content-Type": "image/jpeg"}, b"<html>not a photo</html>"),
        "/big.jpg": (200, {"Content-Type": "image/jpeg"}, PHOTO + b"\0" * 300_000),
        "/slow.jpg": (200, {"Content-Type": "image/jpeg"}, lambda: time.sleep(3) or PHOTO),
        "/hop": (302, {"Location": "/photo.jpg"}, b""),
        "/to-metadata": (302, {"Location": "http://169.254.169.254/latest/meta-data/"}, b""),
        "/to-private": (301, {"Location": "http://10.20.30.40/photo.jpg"}, b""),
        **{f"/loop{i}": (302, {"Location": f"/loop{i + 1}"}, b"") for i in range(6)},
        "/missing": (404, {}, b""),
    }
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield base
    server.shutdown()


@pytest.mark.parametrize(
    "address, allowed",
    [
        ("8.8.8.8", True),
        ("2001:4860:4860::8888", True),
        ("127.0.0.1", False),
        ("::1", False),
        ("10.1.2.3", False),
        ("172.16.0.9", False),
        ("192.168.1.1", False),
        ("169.254.169.254", False),
        ("fe80::1", False),
        ("fd00::1", False),
        ("100.64.0.1", False),
        ("0.0.0.0", False),
        ("224.0.0.1", False),
        ("::ffff:127.0.0.1", False),
        ("::ffff:10.0.0.1", False),
        ("2002:7f00:1::", False),  # 6to4 of 127.0.0.1
    ],
)
def test_only_public_addresses_are_fetched_from(address, allowed):
    assert (refused_address(address) is None) is allowed


def test_redirects_are_checked_hop_by_hop_and_bodies_are_capped_and_sniffed(origin):
    fetcher = SafeFetcher(max_bytes=200_000, timeout=2.0, allow_loopback=True)
    fetched = fetcher.fetch(f"{origin}/hop")
    assert fetched.data == PHOTO and fetched.media_type == "image/jpeg" and fetched.url.endswith("/photo.jpg")
    cases = {
        "/to-metadata": (422, "forbidden_address"),
        "/to-private": (422, "forbidden_address"),
        "/loop0": (422, "too_many_redirects"),
        "/big.jpg": (413, "image_too_large"),
        "/page.jpg": (422, "not_an_image"),
        "/slow.jpg": (408, "fetch_timeout"),
        "/missing": (422, "fetch_failed"),
    }
    for path, (status, code) in cases.items():
        with pytest.raises(DomainError) as refused:
            fetcher.fetch(origin + path)
        assert (refused.value.status, refused.value.code) == (status, code), path
    strict = SafeFetcher(max_bytes=200_000, allow_loopback=False)
    for url in (
        f"{origin}/photo.jpg",
        "http://localhost:9/x.jpg",
        "ftp://example.com/x.jpg",
        "file:///etc/passwd",
        "http://user:pw@example.com/x.jpg",
        "http://[::1]/x.jpg",
    ):
        with pytest.raises(DomainError) as refused:
            strict.fetch(url)
        assert refused.value.status == 422, url


def test_check_by_image_url_over_http(tmp_path, keys_for, origin):
    settings = make_settings(tmp_path / "data", unsafe_fetch_allow_loopback_for_tests=True)
    keys = keys_for(settings)
    with (
        running(settings) as server,
        server.client(keys.admin) as admin,
        server.client(keys.platform) as platform,
    ):
        admin.post(
            "/v1/references",
            files={"image": ("f.png", product_photo(1), "image/png")},
            data={"brand": "acme", "label": "counterfeit"},
        )
        result = platform.post("/v1/check", data={"image_url": f"{origin}/hop"})
        assert result.status_code == 200, result.text
        assert result.json()["verdict"] == "likely_counterfeit"
        before = sql(settings, "SELECT count(*) FROM checks")[0][0]
        assert (
            platform.post("/v1/check", data={"image_url": f"{origin}/to-metadata"}).json()["error"]["code"]
            == "forbidden_address"
        )
        assert platform.post("/v1/check", data={"image_url": f"{origin}/page.jpg"}).status_code == 422
        both = platform.post(
            "/v1/check", data={"image_url": f"{origin}/hop"}, files={"image": ("q.jpg", PHOTO, "image/jpeg")}
        )
        assert both.status_code == 422 and both.json()["error"]["code"] == "image_or_url"
        assert platform.post("/v1/check", data={"brand": "acme"}).json()["error"]["code"] == "image_or_url"
        for url in (
            "http://a..b/x",
            "http://.x/",
            f"http://{'a' * 64}.com/",
            "http://-/",
        ):  # were UnicodeError 500s
            bad_host = platform.post("/v1/check", data={"image_url": url})
            assert bad_host.status_code == 422 and bad_host.json()["error"]["code"] in (
                "invalid_url",
                "unresolvable_host",
            )
        assert sql(settings, "SELECT count(*) FROM checks")[0][0] == before  # refusals write nothing
    # The default: loopback is refused like any private address.
    settings = make_settings(tmp_path / "data2")
    keys = keys_for(settings)
    with running(settings) as server, server.client(keys.platform) as platform:
        refused = platform.post("/v1/check", data={"image_url": f"{origin}/photo.jpg"})
        assert refused.status_code == 422 and refused.json()["error"]["code"] == "forbidden_address"
