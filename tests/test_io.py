"""Decoding: every supported source and format, and a clear error for every bad one."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageOps

from facelens.errors import (
    ImageDecodeError,
    ImageNotFoundError,
    ImageTooLargeError,
    UnsupportedInputError,
)
from facelens.io import expand_image_paths, load_image


def _gradient(width: int = 64, height: int = 48) -> np.ndarray:
    """An RGB image whose three channels differ, so colour swaps show."""
    x = np.linspace(0, 255, width, dtype=np.float32)[None, :].repeat(height, 0)
    y = np.linspace(0, 255, height, dtype=np.float32)[:, None].repeat(width, 1)
    return np.stack([x, y, np.full_like(x, 30)], axis=2).astype(np.uint8)


def _encode(image: Image.Image, fmt: str, **options: object) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=fmt, **options)
    return buffer.getvalue()


def test_array_channel_orders() -> None:
    rgb = _gradient()
    assert np.array_equal(load_image(rgb).pixels, rgb)
    assert np.array_equal(load_image(rgb[:, :, ::-1].copy(), channel_order="BGR").pixels, rgb)


def test_array_depths_and_layouts() -> None:
    grey16 = np.arange(48 * 64, dtype=np.uint16).reshape(48, 64) * 20
    out = load_image(grey16).pixels
    assert out.shape == (48, 64, 3) and out.dtype == np.uint8
    assert out[-1, -1, 0] == grey16[-1, -1] // 257
    rgba = np.dstack([_gradient(), np.full((48, 64), 128, np.uint8)])
    assert np.array_equal(load_image(rgba).pixels, _gradient())
    floats = _gradient().astype(np.float32) / 255.0
    assert np.abs(load_image(floats).pixels.astype(int) - _gradient()).max() <= 1


@pytest.mark.parametrize(
    ("mode", "fmt"),
    [
        ("L", "PNG"),
        ("RGBA", "PNG"),
        ("P", "PNG"),
        ("CMYK", "JPEG"),
        ("RGB", "WEBP"),
        ("I;16", "PNG"),
        ("LA", "PNG"),
        ("1", "BMP"),
        ("RGB", "TIFF"),
    ],
)
def test_pil_modes_and_formats(mode: str, fmt: str) -> None:
    base = Image.fromarray(_gradient())
    if mode == "I;16":
        image = Image.fromarray(np.asarray(base.convert("L")).astype(np.uint16) * 257)
    else:
        image = base.convert(mode)
    decoded = load_image(_encode(image, fmt))
    assert decoded.pixels.shape == (48, 64, 3)
    assert decoded.pixels.dtype == np.uint8
    grey_reference = np.asarray(base.convert("L"), dtype=np.float32)
    decoded_grey = np.asarray(Image.fromarray(decoded.pixels).convert("L"), dtype=np.float32)
    if mode != "1":  # a 1-bit image keeps only the outline of the gradient
        assert np.abs(decoded_grey - grey_reference).mean() < 12


def test_transparent_pixels_become_white() -> None:
    rgba = np.zeros((8, 8, 4), np.uint8)
    assert load_image(_encode(Image.fromarray(rgba), "PNG")).pixels.min() == 255


def test_gif_first_frame() -> None:
    frames = [Image.new("RGB", (32, 32), colour) for colour in ((255, 0, 0), (0, 0, 255))]
    buffer = io.BytesIO()
    frames[0].save(buffer, format="GIF", save_all=True, append_images=frames[1:])
    pixels = load_image(buffer.getvalue()).pixels
    assert pixels[0, 0, 0] > 200 and pixels[0, 0, 2] < 50


def test_exif_orientation_is_applied() -> None:
    image = Image.fromarray(_gradient(64, 48))
    exif = image.getexif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise to display
    decoded = load_image(_encode(image, "JPEG", exif=exif.tobytes()))
    assert decoded.pixels.shape == (64, 48, 3)


def test_pixel_limit_refuses_before_decoding() -> None:
    data = _encode(Image.new("L", (4000, 3000)), "PNG")
    with pytest.raises(ImageTooLargeError, match="12,000,000 pixels"):
        load_image(data, max_pixels=10_000_000)


def test_decompression_bomb_header_is_refused() -> None:
    # A PNG whose header claims 100000 x 100000 pixels: refused from the header alone.
    data = _encode(Image.new("L", (1, 1)), "PNG")
    import struct
    import zlib

    ihdr = struct.pack(">IIBBBBB", 100_000, 100_000, 8, 0, 0, 0, 0)
    chunk = b"IHDR" + ihdr
    forged = (
        data[:8] + struct.pack(">I", 13) + chunk + struct.pack(">I", zlib.crc32(chunk)) + data[33:]
    )
    # Pillow refuses it first (over twice its own limit); the message is still facelens's
    with pytest.raises(ImageTooLargeError, match="10,000,000,000 pixels is above the limit of"):
        load_image(forged)


def test_bad_inputs_have_clear_errors(tmp_path: Path) -> None:
    with pytest.raises(ImageNotFoundError, match="no such file"):
        load_image(tmp_path / "missing.jpg")
    (tmp_path / "notes.txt").write_text("hello")
    with pytest.raises(ImageDecodeError, match="not an image"):
        load_image(tmp_path / "notes.txt")
    (tmp_path / "empty.jpg").write_bytes(b"")
    with pytest.raises(ImageDecodeError, match=r"empty.jpg: the file is empty \(0 bytes\)"):
        load_image(tmp_path / "empty.jpg")
    jpeg = _encode(Image.fromarray(_gradient(256, 256)), "JPEG")
    with pytest.raises(ImageDecodeError, match="damaged or truncated"):
        load_image(jpeg[: len(jpeg) // 3])
    with pytest.raises(UnsupportedInputError):
        load_image(12345)  # type: ignore[arg-type]
    with pytest.raises(UnsupportedInputError):
        load_image(np.zeros((4, 4, 2), np.uint8))


def test_folder_walk_is_recursive_and_sorted(tmp_path: Path) -> None:
    (tmp_path / "b").mkdir()
    for name in ("b/2.png", "1.jpg", "b/readme.txt"):
        (tmp_path / name).write_bytes(b"x")
    found = expand_image_paths([tmp_path, tmp_path / "missing.jpg"])
    assert [p.name for p in found] == ["1.jpg", "2.png", "missing.jpg"]


@pytest.mark.parametrize("orientation", range(1, 9))
@pytest.mark.parametrize("options", [{"subsampling": 2}, {"subsampling": 0}, {"progressive": True}])
def test_a_plain_jpeg_decodes_through_opencv_to_pillows_pixels(
    orientation: int, options: dict[str, object]
) -> None:
    from facelens.io.image import _decode_plain_jpeg

    image = Image.fromarray(_gradient(64, 48))
    exif = image.getexif()
    exif[0x0112] = orientation
    data = _encode(image, "JPEG", exif=exif.tobytes(), quality=90, **options)
    with Image.open(io.BytesIO(data)) as opened:
        fast = _decode_plain_jpeg(opened, data, 10_000, "<bytes>")
        opened.load()
        reference = np.asarray(ImageOps.exif_transpose(opened).convert("RGB"))
    assert fast is not None  # decoded by OpenCV, not handed back to Pillow
    assert fast.shape == reference.shape == ((48, 64, 3) if orientation < 5 else (64, 48, 3))
    assert np.array_equal(fast, reference)
    assert np.array_equal(load_image(data).pixels, reference)


def test_truncated_cmyk_and_grey_jpegs_go_to_pillow() -> None:
    from facelens.io.image import _decode_plain_jpeg

    jpeg = _encode(Image.fromarray(_gradient(256, 256)), "JPEG")
    cmyk = _encode(Image.fromarray(_gradient()).convert("CMYK"), "JPEG")
    grey = _encode(Image.fromarray(_gradient()).convert("L"), "JPEG")
    for data in (jpeg[: len(jpeg) // 3], cmyk, grey):
        with Image.open(io.BytesIO(data)) as opened:
            assert _decode_plain_jpeg(opened, data, 10**6, "<bytes>") is None
    with Image.open(io.BytesIO(jpeg)) as opened, pytest.raises(ImageTooLargeError):
        _decode_plain_jpeg(opened, jpeg, 1000, "<bytes>")
