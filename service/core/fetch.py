"""Fetch an image from a URL a client gave, without letting the URL reach what the service can reach.

A URL is attacker-chosen input (SSRF): it could name the cloud metadata endpoint, a database on the
private network, or a host whose DNS answers a public address first and ``127.0.0.1`` the second
time (DNS rebinding). So:

* ``http``/``https`` only, no credentials in the URL, default ports or any port the caller allows;
* the host is resolved **once**; every address it resolves to must be public (not private,
  loopback, link-local — the metadata range —, multicast, reserved, unspecified, CGNAT, or an
  IPv4-mapped/6to4 form of those), and the connection goes to that checked address (TLS still
  verifies the certificate for the host name: SNI and the Host header carry it);
* redirects are followed by hand, at most ``max_redirects``, each target checked the same way;
* the body is read up to ``max_bytes`` (more: 413) within ``timeout`` seconds in total (408);
* the bytes must *be* an image (its own header, not the server's Content-Type).

``allow_loopback`` exists for tests (a local test server); its setting is named
``COUNTERFEIT_UNSAFE_FETCH_ALLOW_LOOPBACK_FOR_TESTS`` so nobody enables it by accident. It allows
loopback addresses only — never private ranges or metadata.
"""

from __future__ import annotations

import ipaddress
import socket
import ssl
import time
from dataclasses import dataclass
from urllib.parse import urljoin, urlsplit

import certifi
import httpx

from index.images import media_type_of
from service.core.errors import InvalidInput, TimedOut, TooLarge

_CGNAT = ipaddress.ip_network("100.64.0.0/10")
_REDIRECTS = {301, 302, 303, 307, 308}


class FetchRefused(InvalidInput):
    """The URL may not be fetched, or what it returned is not an acceptable image."""


def refused_address(address: str, allow_loopback: bool = False) -> str | None:
    """Why this IP may not be fetched from, or None if it is a public address."""
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address):
        for embedded in (ip.ipv4_mapped, ip.sixtofour, (ip.teredo or (None, None))[1]):
            if embedded is not None:
                return refused_address(str(embedded), allow_loopback)
    if ip.is_loopback:
        return None if allow_loopback else "a loopback address"
    for name, bad in (
        ("a link-local (cloud metadata) address", ip.is_link_local),
        ("a private address", ip.is_private),
        ("a multicast address", ip.is_multicast),
        ("a reserved address", ip.is_reserved),
        ("an unspecified address", ip.is_unspecified),
        ("a shared (CGNAT) address", isinstance(ip, ipaddress.IPv4Address) and ip in _CGNAT),
    ):
        if bad:
            return name
    return None if ip.is_global else "a non-public address"


@dataclass(frozen=True)
class Fetched:
    url: str  # the final URL, after redirects
    data: bytes
    media_type: str

    @property
    def name(self) -> str:
        """The file name the URL ends with (what a listing's photo is called in its results)."""
        return self.url.rsplit("/", 1)[-1][:200]


def _check_host_name(host: str) -> None:
    """Refuse a host no resolver can look up (empty or over-long labels: ``a..b``, ``.x``, a 64-character label)
    before the resolver's IDNA encoding raises UnicodeError on it. IP literals pass as they are."""
    if host.startswith("[") or host.replace(".", "").isdigit() or ":" in host:
        return
    try:
        encoded = host.rstrip(".").encode("idna")
    except UnicodeError as exc:
        raise FetchRefused("invalid_url", f"The URL's host name is invalid ({exc}).") from None
    if not encoded or len(encoded) > 253 or any(not 1 <= len(label) <= 63 for label in encoded.split(b".")):
        raise FetchRefused("invalid_url", "The URL's host name is invalid (an empty or over-long label).")


class SafeFetcher:
    def __init__(
        self,
        max_bytes: int,
        timeout: float = 10.0,
        max_redirects: int = 3,
        allow_loopback: bool = False,
        user_agent: str = "counterfeit-check/1 (+image fetch)",
    ):
        self.max_bytes = max_bytes
        self.timeout = timeout
        self.max_redirects = max_redirects
        self.allow_loopback = allow_loopback
        self.user_agent = user_agent
        # One TLS context for every fetch: building one (loading the CA bundle) per client cost more CPU than
        # the download itself (measured: 60 % of a loopback fetch's time in a scan).
        self._tls = ssl.create_default_context(cafile=certifi.where())

    def fetch(self, url: str) -> Fetched:
        deadline = time.monotonic() + self.timeout
        with httpx.Client(
            follow_redirects=False, trust_env=False, verify=self._tls
        ) as client:  # no proxies from env
            for _ in range(self.max_redirects + 1):
                host, port, scheme = self._check_url(url)
                address = self._resolve(host, port)
                response = self._get(client, url, scheme, host, port, address, deadline)
                if isinstance(response, str):  # a redirect: check the next hop like the first
                    url = response
                    continue
                return response
        raise FetchRefused("too_many_redirects", f"More than {self.max_redirects} redirects.")

    def check_target(self, url: str) -> None:
        """Refuse a URL this fetcher would refuse to connect to (e.g. a webhook target, when registered)."""
        host, port, _ = self._check_url(url)
        self._resolve(host, port)

    def post(self, url: str, body: bytes, headers: dict[str, str], timeout: float) -> int:
        """POST to a checked, pinned address; redirects are not followed. The response status."""
        host, port, scheme = self._check_url(url)
        pinned, base, extensions = self._pin(url, scheme, host, port, self._resolve(host, port))
        with httpx.Client(follow_redirects=False, trust_env=False, verify=self._tls) as client:
            return client.post(
                pinned, content=body, headers={**base, **headers}, extensions=extensions, timeout=timeout
            ).status_code

    def _pin(
        self, url: str, scheme: str, host: str, port: int, address: str
    ) -> tuple[str, dict[str, str], dict]:
        """The URL with the checked address in place of the name (the connection goes there, nowhere else);
        the Host header and TLS SNI keep the name, so virtual hosting and certificate checks still work."""
        parts = urlsplit(url)
        literal = f"[{address}]" if ":" in address else address
        headers = {"Host": parts.netloc.rsplit("@", 1)[-1], "User-Agent": self.user_agent}
        return (
            parts._replace(netloc=f"{literal}:{port}").geturl(),
            headers,
            {"sni_hostname": host} if scheme == "https" else {},
        )

    def _check_url(self, url: str) -> tuple[str, int, str]:
        try:
            parts = urlsplit(url)
            port = parts.port
        except ValueError as exc:
            raise FetchRefused("invalid_url", f"Not a URL: {exc}") from None
        if parts.scheme not in ("http", "https"):
            raise FetchRefused("invalid_url", "Only http and https URLs are fetched.")
        if not parts.hostname:
            raise FetchRefused("invalid_url", "The URL has no host.")
        if parts.username or parts.password:
            raise FetchRefused("invalid_url", "URLs with credentials are not fetched.")
        _check_host_name(parts.hostname)
        return parts.hostname, port or (443 if parts.scheme == "https" else 80), parts.scheme

    def _resolve(self, host: str, port: int) -> str:
        """One resolution; every address must be allowed (a name with one private address is refused)."""
        try:
            infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        except (socket.gaierror, UnicodeError):  # UnicodeError: a name IDNA cannot encode
            raise FetchRefused("unresolvable_host", f"Cannot resolve {host}.") from None
        addresses = list(dict.fromkeys(info[4][0] for info in infos))
        for address in addresses:
            reason = refused_address(address, self.allow_loopback)
            if reason:
                raise FetchRefused(
                    "forbidden_address", f"{host} resolves to {reason}; only public hosts are fetched."
                )
        return addresses[0]

    def _get(
        self, client: httpx.Client, url: str, scheme: str, host: str, port: int, address: str, deadline: float
    ) -> Fetched | str:
        pinned, headers, extensions = self._pin(url, scheme, host, port, address)
        headers["Accept"] = "image/*"
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise TimedOut("fetch_timeout", f"Fetching took longer than {self.timeout:g} s.")
        try:
            with client.stream(
                "GET", pinned, headers=headers, extensions=extensions, timeout=httpx.Timeout(remaining)
            ) as response:
                if response.status_code in _REDIRECTS:
                    location = response.headers.get("location")
                    if not location:
                        raise FetchRefused("fetch_failed", "A redirect without a Location.")
                    return urljoin(url, location)
                if response.status_code != 200:
                    raise FetchRefused("fetch_failed", f"The image URL answered HTTP {response.status_code}.")
                declared = response.headers.get("content-length")
                if declared and declared.isdigit() and int(declared) > self.max_bytes:
                    raise TooLarge("image_too_large", f"The image is over {self.max_bytes} bytes.")
                body = bytearray()
                for chunk in response.iter_bytes():
                    body += chunk
                    if len(body) > self.max_bytes:
                        raise TooLarge("image_too_large", f"The image is over {self.max_bytes} bytes.")
                    if time.monotonic() > deadline:
                        raise TimedOut("fetch_timeout", f"Fetching took longer than {self.timeout:g} s.")
        except httpx.TimeoutException:
            raise TimedOut("fetch_timeout", f"Fetching took longer than {self.timeout:g} s.") from None
        except httpx.HTTPError as exc:
            raise FetchRefused("fetch_failed", f"Could not fetch the image: {type(exc).__name__}.") from None
        data = bytes(body)
        media_type = media_type_of(data)
        if not media_type.startswith(
            "image/"
        ):  # sniffed from the bytes; the server's Content-Type is not trusted
            raise FetchRefused("not_an_image", "The URL did not return an image.")
        return Fetched(url, data, media_type)
