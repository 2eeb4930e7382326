"""JPEG bytes → the model's input tensor, decoded and resized on the model's device.

On CUDA, ``torchvision.io.decode_jpeg`` decodes a whole list of JPEGs in one nvJPEG call; the
resize (bicubic with antialiasing, the libraries' eval filter), centre crop and normalisation
then run as tensor ops on the same device, so the pixels never visit the CPU. On CPU the same
code runs with libjpeg (that is how its tests run here), although Pillow's draft decoding
(index/prepare.py) is faster there: libjpeg's tensor decoder has no DCT scaling.

Anything this path does not take — not a JPEG, CMYK/YCCK, a decoder error, a batch decode that
fails — is returned as ``None`` for that image only, and the caller decodes it with Pillow.
EXIF orientation is applied here as tensor ops (nvJPEG does not apply it), the same way
Pillow's ``ImageOps.exif_transpose`` does.
"""

from __future__ import annotations

import io
import logging
import warnings
from typing import Callable, Sequence

import torch
import torch.nn.functional as F
from PIL import Image

from index.pdq import PdqHash
from index.pdq_tensor import filtered_luma, hashes_of
from index.preprocess import PreprocessConfig
from index.regions import WHOLE, Region

log = logging.getLogger(__name__)
DEVICE_DECODABLE_MODES = ("RGB", "L")  # what nvJPEG decodes to RGB reliably; CMYK/YCCK go to Pillow

# EXIF orientation → the tensor op that displays the image upright (as ImageOps.exif_transpose).
ORIENTATIONS: dict[int, Callable[[torch.Tensor], torch.Tensor]] = {
    1: lambda x: x,
    2: lambda x: x.flip(-1),  # FLIP_LEFT_RIGHT
    3: lambda x: x.rot90(2, (-2, -1)),  # ROTATE_180
    4: lambda x: x.flip(-2),  # FLIP_TOP_BOTTOM
    5: lambda x: x.transpose(-2, -1),  # TRANSPOSE
    6: lambda x: x.rot90(-1, (-2, -1)),  # ROTATE_270 (clockwise quarter turn)
    7: lambda x: x.transpose(-2, -1).flip(-1).flip(-2),  # TRANSVERSE
    8: lambda x: x.rot90(1, (-2, -1)),  # ROTATE_90
}


def jpeg_header(data: bytes) -> tuple[int, int] | None:
    """``(orientation, pixels)`` when ``data`` is a JPEG this path can decode; None sends it to Pillow."""
    try:
        with Image.open(io.BytesIO(data)) as image:
            if image.format != "JPEG" or image.mode not in DEVICE_DECODABLE_MODES:
                return None
            orientation = image.getexif().get(0x0112, 1)
            return (orientation if orientation in ORIENTATIONS else 1), image.width * image.height
    except Exception:
        return None


class TensorPreprocessor:
    def __init__(self, config: PreprocessConfig, device: torch.device | str):
        self.config = config
        self.device = torch.device(device)

    def decode(
        self,
        datas: Sequence[bytes],
        hashes: dict[int, PdqHash] | None = None,
        regions: Sequence[Region] | None = None,
    ) -> list[torch.Tensor | None]:
        """Per input: a ``3 × crop × crop`` float tensor of pixel values (0…255) on the device, or None.

        ``regions``: which region of its image each input is (default: all of it). Inputs that share
        one byte string (a query's regions) are decoded once and each region is cut from the upright
        pixels. With ``hashes``, each decoded image's PDQ is computed on the device too (from the full
        image as stored, before EXIF rotation, as the reference hasher does) and stored under the
        positions of its whole-image inputs."""
        regions = list(regions) if regions is not None else [WHOLE] * len(datas)
        first: dict[int, int] = {}  # id(bytes) -> its position among the distinct images
        distinct: list[bytes] = []
        for data in datas:
            if id(data) not in first:
                first[id(data)] = len(distinct)
                distinct.append(data)
        headers = [jpeg_header(data) for data in distinct]
        todo = [i for i, header in enumerate(headers) if header is not None]
        upright: dict[int, torch.Tensor] = {}
        smalls: dict[int, torch.Tensor] = {}
        for i, image in zip(todo, self._decode_jpegs([distinct[i] for i in todo])):
            if image is not None:
                if hashes is not None:  # as stored, like the reference hasher (index.images.reference_rgb)
                    smalls[i] = filtered_luma(image)
                upright[i] = ORIENTATIONS[headers[i][0]](image)  # type: ignore[index]
        if hashes is not None and smalls:
            by_image = dict(zip(smalls, hashes_of(list(smalls.values()))))
            hashes.update(
                {
                    position: by_image[first[id(data)]]
                    for position, (data, region) in enumerate(zip(datas, regions))
                    if region.is_whole and first[id(data)] in by_image
                }
            )
        out: list[torch.Tensor | None] = []
        for data, region in zip(datas, regions):
            image = upright.get(first[id(data)])
            out.append(None if image is None else self.resize_and_crop(region.crop_tensor(image)))
        return out

    def _decode_jpegs(self, datas: list[bytes]) -> list[torch.Tensor | None]:
        if not datas:
            return []
        from torchvision.io import ImageReadMode, decode_jpeg

        encoded = [torch.frombuffer(bytearray(data), dtype=torch.uint8) for data in datas]
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # torchvision's beta/deprecation notices, once per call
            try:
                return list(decode_jpeg(encoded, mode=ImageReadMode.RGB, device=self.device))
            except Exception as exc:  # one bad stream fails a batched decode: retry one by one
                log.debug("batched JPEG decode failed (%s); decoding one by one", exc)
            out: list[torch.Tensor | None] = []
            for tensor in encoded:
                try:
                    out.append(decode_jpeg(tensor, mode=ImageReadMode.RGB, device=self.device))
                except Exception:
                    out.append(None)
            return out

    def resize_and_crop(self, image: torch.Tensor) -> torch.Tensor:
        """``3 × H × W`` uint8 → resized (short side exact, bicubic + antialias) and centre-cropped, 0…255 float."""
        cfg = self.config
        height, width = int(image.shape[-2]), int(image.shape[-1])
        resized_w, resized_h = cfg.resized_size(width, height)
        left, top = cfg.crop_offsets(resized_w, resized_h)
        resized = F.interpolate(
            image.unsqueeze(0).float(),
            size=(resized_h, resized_w),
            mode=cfg.interpolation,
            antialias=cfg.interpolation in ("bicubic", "bilinear"),
            align_corners=False,
        )
        # Rounded and clamped like the uint8 image Pillow's resize produces.
        return resized[0, :, top : top + cfg.crop, left : left + cfg.crop].round_().clamp_(0, 255)
