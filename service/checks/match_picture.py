"""The keypoint matches between a checked photo and a reference, drawn side by side for a reviewer.

The check stores only how many keypoints agreed; the picture is made again from the two stored images
with the same detector, ratio test and RANSAC fit as the verification (index/local_features.py), so what
the reviewer sees is what the check counted. Inliers are drawn as green lines, the other ratio-test
matches faintly in red; a mirrored match shows the reference mirrored.
"""

from __future__ import annotations

import io

import numpy as np
from PIL import Image, ImageDraw, ImageOps

from index.local_features import detect, fit, keypoint_image

GAP = 12  # pixels between the two pictures
MAX_LINES = 300


def _panel(image: Image.Image) -> tuple[Image.Image, np.ndarray]:
    """The image at the size keypoints are detected on (colour, for the reviewer) and its grayscale."""
    gray = keypoint_image(image)
    shown = image.convert("RGB").resize((gray.shape[1], gray.shape[0]), Image.BILINEAR)
    return shown, gray


def match_picture(query: Image.Image, reference: Image.Image) -> tuple[bytes, int]:
    """A PNG of the two images side by side with their matches drawn, and the number of inliers."""
    query_shown, query_gray = _panel(ImageOps.exif_transpose(query))
    reference_shown, reference_gray = _panel(ImageOps.exif_transpose(reference))
    query_points = detect(query_gray)
    plain = fit(query_points, detect(reference_gray))
    mirrored = fit(query_points, detect(np.ascontiguousarray(reference_gray[:, ::-1])))
    best = max(
        (f for f in (plain, mirrored) if f is not None), key=lambda f: int(f.inliers.sum()), default=None
    )
    if best is not None and best is mirrored:
        reference_shown = ImageOps.mirror(reference_shown)
    width = query_shown.width + GAP + reference_shown.width
    canvas = Image.new("RGB", (width, max(query_shown.height, reference_shown.height)), "white")
    canvas.paste(query_shown, (0, 0))
    offset = query_shown.width + GAP
    canvas.paste(reference_shown, (offset, 0))
    inliers = 0
    if best is not None:
        inliers = int(best.inliers.sum())
        draw = ImageDraw.Draw(canvas, "RGBA")
        order = np.argsort(best.inliers)  # outliers first, so the inliers are drawn on top
        for index in order[-MAX_LINES:]:
            (qx, qy), (rx, ry) = best.query_points[index], best.reference_points[index]
            good = bool(best.inliers[index])
            colour = (22, 163, 74, 230) if good else (220, 38, 38, 70)
            draw.line([(qx, qy), (rx + offset, ry)], fill=colour, width=2 if good else 1)
            if good:
                for x, y in ((qx, qy), (rx + offset, ry)):
                    draw.ellipse([x - 3, y - 3, x + 3, y + 3], outline=colour, width=2)
    out = io.BytesIO()
    canvas.save(out, "PNG")
    return out.getvalue(), inliers
