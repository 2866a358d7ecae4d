"""Decode any image a user may send into the (H, W) uint8 grayscale array the PlateReader reads.

One decoder for every entry point (HTTP server, MLEM model, CLI), so a photo gives the same answer
wherever it is read:

- formats: JPEG (and MPO, the multi-picture JPEG some phones write), PNG, WebP, BMP, GIF, TIFF;
  multi-frame files give their first frame;
- EXIF orientation is applied, so a portrait phone photo is read upright;
- every colour mode: RGB, RGBA/LA/PA and P with transparency (composited on white, the colour of
  an empty page), CMYK, YCbCr, 1-bit, 16-bit grayscale ('I;16*', 'I'), 32-bit float ('F');
- a pixel limit read from the header before anything is decoded, against decompression bombs
  (a 20000 x 20000 PNG compresses to a few kilobytes and would need 1.6 GB once decoded).

Every failure is a UserError with one plain sentence: empty data, not an image, truncated or
corrupt, too many pixels.
"""

from __future__ import annotations

import io
import os
import struct
import warnings
import zlib

import numpy as np
from PIL import Image, UnidentifiedImageError

from platereader.errors import UserError

MAX_PIXELS = 50_000_000  # 50 MP: more than any phone photo, far below a decompression bomb
Image.init()  # register every plugin now: Image.open(formats=...) only knows registered ones
# Formats we accept (others Pillow knows, such as EPS or ICNS, are not photographs).
FORMATS = tuple(f for f in ("JPEG", "MPO", "PNG", "WEBP", "BMP", "GIF", "TIFF") if f in Image.OPEN)
BACKGROUND = 255  # transparent pixels become white

# Our own limit (MAX_PIXELS) is stricter than Pillow's warning threshold and is checked first, so
# Pillow's DecompressionBombWarning only ever precedes our error: keep the logs quiet.
warnings.filterwarnings("ignore", category=Image.DecompressionBombWarning)

# EXIF orientation tag (0x0112) -> the transpose that makes the image upright.
_ORIENTATION = {
    2: (Image.Transpose.FLIP_LEFT_RIGHT,),
    3: (Image.Transpose.ROTATE_180,),
    4: (Image.Transpose.FLIP_TOP_BOTTOM,),
    5: (Image.Transpose.TRANSPOSE,),
    6: (Image.Transpose.ROTATE_270,),
    7: (Image.Transpose.TRANSVERSE,),
    8: (Image.Transpose.ROTATE_90,),
}
_DECODE_ERRORS = (OSError, SyntaxError, ValueError, EOFError, IndexError, KeyError, TypeError,
                  struct.error, zlib.error, MemoryError)


def load_image(source: bytes | bytearray | memoryview | str | os.PathLike,
               max_pixels: int = MAX_PIXELS) -> np.ndarray:
    """Encoded image (bytes) or image file path -> (H, W) uint8 grayscale array, upright.

    Raises UserError for empty data, data that is not an image, a truncated or corrupt file, or
    an image with more than `max_pixels` pixels (checked before decoding).
    """
    if isinstance(source, (bytes, bytearray, memoryview)):
        data = bytes(source)
        name = "the uploaded data"
    elif isinstance(source, (str, os.PathLike)):
        name = os.fspath(source)
        try:
            with open(name, "rb") as f:
                data = f.read()
        except FileNotFoundError:
            raise UserError(f"image file not found: {name}") from None
        except IsADirectoryError:
            raise UserError(f"{name} is a directory, not an image file") from None
        except OSError as exc:
            raise UserError(f"cannot read image file {name}: {exc.strerror or exc}") from None
    else:
        raise TypeError(f"load_image expects bytes or a path, not {type(source).__name__}")
    if not data:
        raise UserError(f"{name} is empty: send the bytes of a JPEG, PNG, WebP or BMP image")

    try:
        image = Image.open(io.BytesIO(data), formats=FORMATS)
    except UnidentifiedImageError:
        raise UserError(f"{name} is not an image Pillow can read: send a JPEG, PNG, WebP, "
                        "BMP, GIF or TIFF file") from None
    except Image.DecompressionBombError:
        raise UserError(f"{name} declares too many pixels (the limit is "
                        f"{max_pixels / 1e6:g} megapixels): send a smaller image") from None
    except _DECODE_ERRORS:
        raise UserError(f"{name} is a corrupt or truncated image: send the complete file") from None

    with image:
        width, height = image.size
        if width <= 0 or height <= 0:
            raise UserError(f"{name} has no pixels ({width}x{height}): send a real image")
        if width * height > max_pixels:
            raise UserError(f"{name} is {width}x{height} = {width * height / 1e6:.1f} megapixels, "
                            f"over the limit of {max_pixels / 1e6:g}: send a smaller image")
        try:
            orientation = _orientation(image)
            gray = _to_gray(image)
            for op in _ORIENTATION.get(orientation, ()):
                gray = gray.transpose(op)
            array = np.asarray(gray, dtype=np.uint8)
        except Image.DecompressionBombError:
            raise UserError(f"{name} declares too many pixels: send a smaller image") from None
        except _DECODE_ERRORS:
            raise UserError(f"{name} is a corrupt or truncated image: send the complete "
                            "file") from None
    return np.ascontiguousarray(array)


def to_gray(image: np.ndarray) -> np.ndarray:
    """A decoded image array (H, W) or (H, W, 1|3|4) uint8 -> (H, W) uint8, converted as `load_image`
    converts files (alpha composited on white)."""
    image = np.asarray(image)
    if image.ndim == 3 and image.shape[2] == 1:
        image = image[:, :, 0]
    if image.ndim == 2:
        return np.ascontiguousarray(image, dtype=np.uint8)
    if image.ndim != 3 or image.shape[2] not in (3, 4) or min(image.shape[:2]) < 1:
        raise UserError(f"expected an (H, W), (H, W, 3) or (H, W, 4) image array, got shape {image.shape}")
    mode = "RGBA" if image.shape[2] == 4 else "RGB"
    return np.asarray(_to_gray(Image.fromarray(np.ascontiguousarray(image, dtype=np.uint8), mode)))


def _orientation(image: Image.Image) -> int:
    """The EXIF orientation (1..8), 1 when absent or unreadable (broken EXIF is common)."""
    try:
        value = image.getexif().get(0x0112, 1)
        return int(value) if value in range(1, 9) else 1
    except Exception:  # noqa: BLE001 - a broken EXIF block must not reject a good picture
        return 1


def _to_gray(image: Image.Image) -> Image.Image:
    """Decode `image` (first frame) into mode 'L'; Pillow's ITU-R 601-2 luma for colour images."""
    image.load()  # decode now: truncated data fails here, inside the caller's try
    mode = image.mode
    if mode == "L":
        return image
    if mode in ("I;16", "I;16L", "I;16B", "I;16N", "I"):
        # 16-bit grayscale (PNG/TIFF) -> top 8 bits. Mode 'I' is also how some files store 8-bit
        # values in 32 bits: only rescale when values go beyond 8 bits.
        values = np.asarray(image).astype(np.int64)
        if mode.startswith("I;16") or values.max(initial=0) > 255:
            values = values.clip(0, 65535) >> 8
        return Image.fromarray(values.clip(0, 255).astype(np.uint8), "L")
    if mode == "F":
        values = np.nan_to_num(np.asarray(image, dtype=np.float64), nan=0.0)
        if values.size and values.max() <= 1.0:
            values = values * 255
        return Image.fromarray(values.round().clip(0, 255).astype(np.uint8), "L")
    if mode == "P":
        image = image.convert("RGBA" if "transparency" in image.info else "RGB")
        mode = image.mode
    elif mode == "PA":
        image = image.convert("RGBA")
        mode = image.mode
    if mode in ("RGBA", "LA", "RGBa", "La"):
        if mode.endswith("a"):  # premultiplied alpha
            image = image.convert(mode[:-1] + "A")
            mode = image.mode
        base = "RGB" if mode == "RGBA" else "L"
        background = Image.new(base, image.size, (BACKGROUND,) * len(base))
        background.paste(image.convert(base), mask=image.getchannel("A"))
        return background.convert("L")
    # RGB, CMYK, YCbCr, LAB, HSV, 1, RGBX...: Pillow converts these to L (via RGB if needed).
    try:
        return image.convert("L")
    except ValueError:
        return image.convert("RGB").convert("L")
