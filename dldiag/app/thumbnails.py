"""Item thumbnails as PNG data URIs, encoded with zlib alone (no imaging library needed)."""

from __future__ import annotations

import base64
import struct
import zlib

import numpy as np

__all__ = ["encode_png", "thumbnail_uri"]


def _chunk(kind: bytes, data: bytes) -> bytes:
    body = kind + data
    return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body) & 0xFFFFFFFF)


def encode_png(pixels: np.ndarray) -> bytes:
    """PNG bytes of an 8-bit image: (H, W) grey or (H, W, 3) RGB.

    Examples
    --------
    >>> encode_png(np.zeros((2, 2), dtype=np.uint8))[:8]
    b'\\x89PNG\\r\\n\\x1a\\n'
    """
    img = np.asarray(pixels)
    if img.dtype != np.uint8:
        raise ValueError(f"pixels must be uint8; got {img.dtype}")
    if img.ndim == 2:
        color_type = 0
        h, w = img.shape
    elif img.ndim == 3 and img.shape[2] == 3:
        color_type = 2
        h, w = img.shape[:2]
    else:
        raise ValueError(f"pixels must be (H, W) or (H, W, 3); got shape {img.shape}")
    rows = np.ascontiguousarray(img).reshape(h, -1)
    raw = np.concatenate([np.zeros((h, 1), dtype=np.uint8), rows], axis=1).tobytes()  # filter 0 per row
    header = struct.pack(">IIBBBBB", w, h, 8, color_type, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", header)
            + _chunk(b"IDAT", zlib.compress(raw, 6)) + _chunk(b"IEND", b""))


def thumbnail_uri(item: np.ndarray, *, scale: int = 3, invert: bool = False) -> str:
    """A ``data:image/png;base64,...`` URI of an item (C, H, W) with values in [0, 1].

    One channel is drawn grey, three as RGB; ``scale`` enlarges by pixel repetition.
    """
    x = np.asarray(item, dtype=np.float32)
    if x.ndim == 3 and x.shape[0] in (1, 3):
        x = x[0] if x.shape[0] == 1 else np.moveaxis(x, 0, -1)
    elif x.ndim == 3:
        x = x.mean(axis=0)
    lo, hi = float(np.min(x)), float(np.max(x))
    if lo < 0.0 or hi > 1.0:  # standardised inputs: stretch to [0, 1] for display
        x = (x - lo) / (hi - lo if hi > lo else 1.0)
    if invert:
        x = 1.0 - x
    pixels = np.clip(np.rint(x * 255.0), 0, 255).astype(np.uint8)
    if scale > 1:
        pixels = pixels.repeat(scale, axis=0).repeat(scale, axis=1)
    return "data:image/png;base64," + base64.b64encode(encode_png(pixels)).decode("ascii")
