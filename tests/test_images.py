"""platereader.images.load_image: every format, colour mode and orientation; plain errors."""

import io

import numpy as np
import pytest
from PIL import Image, ImageOps

from platereader.errors import UserError
from platereader.images import MAX_PIXELS, load_image

RNG = np.random.default_rng(0)
RGB = RNG.integers(0, 256, (30, 50, 3), dtype=np.uint8)  # not square: orientation shows in shape
GRAY = np.asarray(Image.fromarray(RGB).convert("L"))


def encode(image: Image.Image, fmt: str, **options) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, fmt, **options)
    return buffer.getvalue()


@pytest.mark.parametrize("fmt", ["PNG", "BMP", "TIFF", "GIF"])
def test_lossless_gray_is_exact(fmt):
    assert np.array_equal(load_image(encode(Image.fromarray(GRAY), fmt)), GRAY)


@pytest.mark.parametrize("fmt", ["PNG", "BMP", "TIFF", "WEBP"])
def test_lossless_rgb_is_pillow_luma(fmt):
    options = {"lossless": True} if fmt == "WEBP" else {}
    out = load_image(encode(Image.fromarray(RGB), fmt, **options))
    assert out.dtype == np.uint8 and out.shape == GRAY.shape
    assert np.abs(out.astype(int) - GRAY).max() <= 1


@pytest.mark.parametrize("mode", ["RGB", "L", "CMYK", "YCbCr", "1"])
def test_jpeg_modes(mode):
    image = Image.fromarray(RGB).convert(mode)
    out = load_image(encode(image, "JPEG", quality=95))
    assert out.shape == GRAY.shape and out.dtype == np.uint8
    if mode != "1":
        assert np.abs(out.astype(int) - GRAY).mean() < 12  # lossy, same picture


def writable(modes, formats):
    """(mode, format) pairs Pillow can write (it cannot write every mode in every format)."""
    pairs = []
    for fmt in formats:
        for mode in modes:
            try:
                encode(Image.fromarray(RGB).convert(mode), fmt)
            except (OSError, ValueError, KeyError):
                continue
            pairs.append((mode, fmt))
    return pairs


@pytest.mark.parametrize("mode, fmt", writable(
    ["RGB", "RGBA", "L", "LA", "P", "1", "I", "F", "CMYK", "YCbCr"], ["PNG", "TIFF", "WEBP", "BMP"]))
def test_every_mode_and_format_decodes(mode, fmt):
    out = load_image(encode(Image.fromarray(RGB).convert(mode), fmt))
    assert out.shape == GRAY.shape and out.dtype == np.uint8 and out.flags.c_contiguous


def test_16_bit_gray_keeps_the_top_byte():
    deep = GRAY.astype(np.uint16) * 257  # 0..65535
    image = Image.fromarray(deep)
    assert image.mode.startswith("I;16")
    data = encode(image, "PNG")
    assert Image.open(io.BytesIO(data)).mode in ("I;16", "I")
    assert np.array_equal(load_image(data), GRAY)
    assert np.array_equal(load_image(encode(image, "TIFF")), GRAY)


def test_32_bit_int_with_8_bit_values_is_not_darkened():
    image = Image.fromarray(GRAY.astype(np.int32), "I")
    assert np.array_equal(load_image(encode(image, "TIFF")), GRAY)


def test_transparency_is_white():
    rgba = np.zeros((20, 20, 4), dtype=np.uint8)
    rgba[:10, :, :3] = 40
    rgba[:10, :, 3] = 255  # top half: opaque dark; bottom half: fully transparent black
    out = load_image(encode(Image.fromarray(rgba, "RGBA"), "PNG"))
    assert (out[:10] == 40).all() and (out[10:] == 255).all()
    la = Image.fromarray(rgba, "RGBA").convert("LA")
    assert (load_image(encode(la, "PNG"))[10:] == 255).all()
    # A palette image with a transparent index.
    p = Image.fromarray(rgba, "RGBA").convert("P")
    p.info["transparency"] = p.getpixel((0, 15))
    assert (load_image(encode(p, "PNG", transparency=p.getpixel((0, 15))))[10:] == 255).all()


@pytest.mark.parametrize("orientation", range(1, 9))
def test_exif_orientation_is_applied(orientation):
    exif = Image.Exif()
    exif[0x0112] = orientation
    data = encode(Image.fromarray(RGB), "JPEG", quality=95, exif=exif)
    expected = np.asarray(ImageOps.exif_transpose(Image.open(io.BytesIO(data))).convert("L"))
    out = load_image(data)
    assert out.shape == expected.shape
    assert out.shape == (GRAY.shape if orientation <= 4 else GRAY.shape[::-1])
    assert np.abs(out.astype(int) - expected).max() <= 1


def test_broken_exif_is_ignored():
    exif = Image.Exif()
    exif[0x0112] = 99  # not an orientation
    assert load_image(encode(Image.fromarray(RGB), "JPEG", exif=exif)).shape == GRAY.shape


def test_path_and_bytes_give_the_same(tmp_path):
    data = encode(Image.fromarray(RGB), "PNG")
    path = tmp_path / "scene.png"
    path.write_bytes(data)
    assert np.array_equal(load_image(path), load_image(data))
    assert np.array_equal(load_image(str(path)), load_image(bytearray(data)))


def test_animated_gif_gives_the_first_frame():
    frames = [Image.fromarray(GRAY), Image.fromarray(255 - GRAY)]
    data = encode(frames[0], "GIF", save_all=True, append_images=frames[1:])
    assert np.array_equal(load_image(data), GRAY)


def truncated_jpeg() -> bytes:
    data = encode(Image.fromarray(RGB), "JPEG")
    return data[: len(data) // 2]


def bomb_png() -> bytes:
    return encode(Image.new("1", (20000, 20000)), "PNG")  # 400 MP in ~50 kB


@pytest.mark.parametrize("data, message", [
    (b"", "is empty"),
    (b"hello, this is text", "not an image"),
    (b"%PDF-1.4\n" + b"0" * 100, "not an image"),
    (encode(Image.fromarray(RGB), "PNG")[:100], "corrupt or truncated"),
    (truncated_jpeg(), "corrupt or truncated"),
    (encode(Image.fromarray(RGB), "PNG")[:2000], "corrupt or truncated"),
    (encode(Image.fromarray(RGB), "WEBP")[:300], "corrupt or truncated"),
    (bomb_png(), "too many pixels"),
])
def test_bad_data_is_a_user_error(data, message):
    with pytest.raises(UserError, match=message):
        load_image(data)


def test_pixel_limit_is_checked_before_decoding():
    data = encode(Image.new("L", (8000, 7000)), "PNG")  # 56 MP: over our limit, under Pillow's
    assert 8000 * 7000 > MAX_PIXELS
    with pytest.raises(UserError, match="8000x7000 = 56.0 megapixels, over the limit of 50"):
        load_image(data)
    with pytest.raises(UserError, match="over the limit"):
        load_image(encode(Image.fromarray(GRAY), "PNG"), max_pixels=100)


def test_missing_or_unreadable_path(tmp_path):
    with pytest.raises(UserError, match="not found"):
        load_image(tmp_path / "nope.jpg")
    with pytest.raises(UserError, match="is a directory"):
        load_image(tmp_path)
    empty = tmp_path / "empty.jpg"
    empty.write_bytes(b"")
    with pytest.raises(UserError, match=f"{empty} is empty"):
        load_image(empty)


def test_other_types_are_a_programming_error():
    with pytest.raises(TypeError):
        load_image(np.zeros((4, 4), dtype=np.uint8))
