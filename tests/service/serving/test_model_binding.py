"""An index is bound to the model that built it; another model is refused with the reindex message."""

from __future__ import annotations

import pytest

from index.models import load_embedder
from service.runtime import Runtime
from service.serving.index_sync import IndexModelMismatch
from tests.helpers import make_settings
from tests.service.cli.test_cli import run_cli


def test_tiny_model_is_seeded_and_reported_as_test_only():
    first, second = load_embedder("open_clip:tiny-random"), load_embedder("open_clip:tiny-random")
    assert first.info.fingerprint() == second.info.fingerprint()
    assert first.info.is_test_only and "TEST ONLY" in first.info.weights_kind
    other = load_embedder("open_clip:tiny-random-b")
    assert other.dimension == 48 and other.info.fingerprint() != first.info.fingerprint()


def test_other_model_on_existing_index_is_refused(tmp_path):
    Runtime(make_settings(tmp_path / "data")).close()
    with pytest.raises(IndexModelMismatch, match="reindex"):
        Runtime(make_settings(tmp_path / "data", model="open_clip:tiny-random-b"))
    settings = make_settings(tmp_path / "data", model="open_clip:tiny-random-b")
    result = run_cli(settings, "serve", "--port", "1")
    assert result.returncode != 0
    assert "Run a reindex" in result.stderr
