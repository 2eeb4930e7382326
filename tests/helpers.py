"""Test images and a real uvicorn server running the real app on a real socket."""
from __future__ import annotations

import contextlib
import io
import socket
import threading
import time
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Iterator

import httpx
import uvicorn
from PIL import Image

from index.synthetic import synthetic_image
from service.app import create_app
from service.auth import create_key
from service.db.models import Role
from service.db.session import make_engine, make_session_factory
from service.settings import Settings

TEST_MODEL = "open_clip:tiny-random"


def png_bytes(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, "PNG")
    return buffer.getvalue()


def jpeg_bytes(image: Image.Image, quality: int = 90) -> bytes:
    buffer = io.BytesIO()
    image.convert("RGB").save(buffer, "JPEG", quality=quality)
    return buffer.getvalue()


def product_photo(seed: int) -> bytes:
    return png_bytes(synthetic_image(seed))


def resized_jpeg_copy(seed: int, size: int = 200, quality: int = 70) -> bytes:
    """What a re-upload of a listing photo looks like: resized and re-compressed."""
    return jpeg_bytes(synthetic_image(seed).resize((size, size), Image.BILINEAR), quality=quality)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def make_settings(data_dir: Path, **overrides) -> Settings:
    values = {"data_dir": data_dir, "model": TEST_MODEL, "change_poll_seconds": 0.2, "torch_threads": 1, **overrides}
    return Settings(**values)


def create_api_key(settings: Settings, role: Role, brand: str | None = None, expires_at: datetime | None = None) -> str:
    engine = make_engine(settings.resolved_database_url)
    try:
        with make_session_factory(engine)() as session:
            return create_key(session, role, brand, expires_at=expires_at)[1]
    finally:
        engine.dispose()


@dataclass
class Keys:
    admin: str
    platform: str
    brand_a: str
    brand_b: str


class ThreadedServer:
    """The real FastAPI app under uvicorn, in a thread of the test process."""

    def __init__(self, settings: Settings):
        self.settings = settings
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        config = uvicorn.Config(create_app(settings), host="127.0.0.1", port=self.port, log_level="warning")
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def start(self) -> "ThreadedServer":
        self.thread.start()
        deadline = time.monotonic() + 120
        while not self.server.started:
            if not self.thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("server did not start")
            time.sleep(0.05)
        return self

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=60)

    def client(self, key: str | None = None) -> httpx.Client:
        headers = {"Authorization": f"Bearer {key}"} if key else {}
        return httpx.Client(base_url=self.url, headers=headers, timeout=60)


@contextlib.contextmanager
def running(settings: Settings) -> Iterator[ThreadedServer]:
    """A server with these settings for the length of a ``with`` block."""
    server = ThreadedServer(settings).start()
    try:
        yield server
    finally:
        server.stop()
