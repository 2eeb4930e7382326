"""Our PDQ (numpy, and tensor ops for the model's device) gives the reference implementation's hashes (pdqhash)."""

from __future__ import annotations

import time

import numpy as np
import torch
from PIL import Image

from index.pdq import PdqHash, compute_pdq
from index.pdq_tensor import pdq_of_rgb
from index.photos import packaged_photos


def reference_pdq(image: Image.Image) -> PdqHash:
    """Meta's C++ PDQ through the pdqhash binding, as another deployment would compute it."""
    import pdqhash

    bits, quality = pdqhash.compute(np.asarray(image.convert("RGB"), dtype=np.uint8))
    return PdqHash(np.packbits(bits.astype(np.uint8)).tobytes(), int(quality))


def test_our_pdq_matches_the_reference_on_varied_sizes():
    distances, quality_gaps = [], []
    for name, photo in packaged_photos().items():
        if name == "checkerboard":
            # Its DCT has many coefficients exactly equal to the median: which of them count as "above"
            # is float noise in any two implementations (measured 72-90 bits at two of five sizes).
            continue
        for size in ((640, 480), (512, 768), (1500, 1000), (333, 517), (64, 64), (40, 30), (2000, 1999)):
            image = photo.convert("RGB").resize(size)
            reference = reference_pdq(image)
            for ours in (compute_pdq(image), pdq_of_rgb(torch.from_numpy(np.array(image)).permute(2, 0, 1))):
                distances.append(reference.distance(ours))
                quality_gaps.append(abs(reference.quality - ours.quality))
    distances = np.array(distances)
    # Float rounding could flip a coefficient sitting at the median; measured: 0 bits everywhere.
    assert (distances == 0).mean() >= 0.95 and distances.max() <= 4, distances
    assert max(quality_gaps) <= 1


def test_dihedral_variants_are_the_references_and_find_rotated_and_mirrored_copies():
    """The 7 variants, computed from the DCT alone, are pdqhash's dihedral hashes; a rotated or mirrored
    re-upload is far from the original hash but within the match distance of one variant."""
    import pdqhash

    from index.pdq import DEFAULT_MAX_DISTANCE, PdqIndex

    for name, photo in packaged_photos().items():
        if name == "checkerboard":  # median ties (see above)
            continue
        image = photo.convert("RGB").resize((517, 333))
        ours = compute_pdq(image)
        reference_bits, _ = pdqhash.compute_dihedral(np.asarray(image, dtype=np.uint8))
        reference = {np.packbits(np.asarray(b, dtype=np.uint8)).tobytes() for b in reference_bits}
        assert {ours.bits, *ours.variants} == reference, name
        tensor = pdq_of_rgb(torch.from_numpy(np.array(image)).permute(2, 0, 1))
        assert {tensor.bits, *tensor.variants} == reference, name

        if not ours.usable:  # too flat to match on at all (clock: quality 34)
            continue
        index = PdqIndex()
        index.add([7], [ours])
        for transpose in Image.Transpose:
            turned = compute_pdq(image.transpose(transpose))
            assert turned.distance(ours) > DEFAULT_MAX_DISTANCE, (name, transpose)  # PDQ alone misses it ...
            assert [i for i, _ in index.search(turned)] == [7], (name, transpose)  # ... its variants do not
        assert index.search(PdqHash(ours.bits, ours.quality)) == [(7, 0)]  # a bare stored hash still matches


def test_tensor_pdq_of_a_flat_image_is_low_quality():
    flat = torch.full((3, 300, 200), 128, dtype=torch.uint8)
    blank = Image.new("RGB", (200, 300), (128, 128, 128))
    assert pdq_of_rgb(flat).quality == compute_pdq(blank).quality == reference_pdq(blank).quality == 0


def _reference_from_bytes(data: bytes) -> PdqHash:
    """The reference's own path from bytes: open, a plain convert to RGB (greyscale stacked), no EXIF rotation."""
    import io

    image = Image.open(io.BytesIO(data))
    array = np.asarray(image)
    if array.ndim == 2 and image.mode == "L":
        array = np.stack([array] * 3, axis=2)
    else:
        array = np.asarray(image.convert("RGB"))
    return reference_pdq(Image.fromarray(array))


def _encoded_in_every_mode() -> dict[str, bytes]:
    import io

    photo = packaged_photos()["coffee"].convert("RGB").resize((400, 300))
    alpha = Image.linear_gradient("L").resize(photo.size)
    out = {}

    def save(name: str, image: Image.Image, fmt: str = "PNG", **options) -> None:
        buffer = io.BytesIO()
        image.save(buffer, fmt, **options)
        out[name] = buffer.getvalue()

    save("RGB png", photo)
    save("RGB jpeg", photo, "JPEG", quality=90)
    save("L png", photo.convert("L"))
    rgba = photo.copy()
    rgba.putalpha(alpha)
    save("RGBA png (transparent logo)", rgba)
    la = photo.convert("L")
    la.putalpha(alpha)
    save("LA png", la)
    save("P png with transparency", photo.convert("P", palette=Image.ADAPTIVE), transparency=0)
    save("1-bit png", photo.convert("1"))
    save("I;16 png", Image.fromarray((np.asarray(photo.convert("L"), dtype=np.uint16) * 257)))
    save("CMYK jpeg", photo.convert("CMYK"), "JPEG", quality=90)
    exif = Image.Exif()
    exif[0x0112] = 6
    save("EXIF-rotated jpeg", photo, "JPEG", quality=90, exif=exif.tobytes())
    big = photo.resize((2400, 1800))
    big_rgba = big.copy()
    big_rgba.putalpha(alpha.resize(big.size))
    save("RGBA png 2400x1800 (reduced before hashing)", big_rgba)
    return out


def test_stored_and_matched_hashes_are_the_reference_hashers_in_every_mode():
    """Hashes we store and match (worker decode + our PDQ) equal hashes computed the reference way, mode by mode."""
    from index.images import decode_image, pdq_source
    from index.prepare import PrepareSpec, prepare

    spec = PrepareSpec(draft_size=(512, 512), pixels=None, want_model_input=False)
    for name, data in _encoded_in_every_mode().items():
        reference = _reference_from_bytes(data)
        stored = compute_pdq(pdq_source(decode_image(data, 1 << 40, 1 << 40, draft_size=(512, 512))))
        worker = prepare(data, spec).pdq
        assert worker == stored, name
        limit = 12 if "reduced" in name else 0  # a 2400 px image is hashed from its 1200 px reduction
        assert reference.distance(stored) <= limit, (
            f"{name}: {reference.distance(stored)} bits from the reference"
        )
        assert abs(reference.quality - stored.quality) <= (5 if limit else 0), name


def test_rehash_pdq_updates_legacy_hashes_and_replicas_follow(tmp_path, keys_for):
    """A reference stored with an old-style hash (composited alpha) is re-hashed by `counterfeit rehash-pdq`;
    the running server picks the new hash up from the change log, and the next check matches it by PDQ."""
    from index.images import decode_image
    from tests.helpers import ThreadedServer, make_settings, sql
    from tests.service.cli.test_cli import run_cli

    logo = _encoded_in_every_mode()["RGBA png (transparent logo)"]
    settings = make_settings(tmp_path / "data")
    keys = keys_for(settings)
    server = ThreadedServer(settings).start()
    try:
        with server.client(keys.admin) as admin:
            reference_id = admin.post(
                "/v1/references",
                files={"image": ("logo.png", logo, "image/png")},
                data={"brand": "acme", "label": "counterfeit"},
            ).json()["id"]
            legacy = compute_pdq(
                decode_image(logo, 1 << 40, 1 << 40, draft_size=(512, 512))
            )  # the old conversion
            assert legacy.distance(_reference_from_bytes(logo)) > 31
            sql(
                settings,
                "UPDATE reference_images SET pdq_hash = :h, pdq_quality = :q WHERE id = :i",
                h=legacy.hex,
                q=legacy.quality,
                i=reference_id,
            )
            done = run_cli(settings, "rehash-pdq")
            assert done.returncode == 0, done.stderr
            assert "1 PDQ hashes updated" in done.stderr
            [(stored,)] = sql(settings, "SELECT pdq_hash FROM reference_images WHERE id = :i", i=reference_id)
            assert stored == _reference_from_bytes(logo).hex
            again = run_cli(settings, "rehash-pdq")
            assert "0 PDQ hashes updated" in again.stderr
            deadline = time.monotonic() + 20
            while time.monotonic() < deadline:  # the server tails the change log
                evidence = admin.post("/v1/check", files={"image": ("q.png", logo, "image/png")}).json()[
                    "evidence"
                ]
                if evidence and evidence[0]["pdq_distance"] == 0:
                    break
                time.sleep(0.2)
            assert evidence[0]["reference_id"] == reference_id and evidence[0]["pdq_distance"] == 0
    finally:
        server.stop()
