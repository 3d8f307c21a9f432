"""Previews of an item: a thumbnail PNG (images) or its most unusual features (feature vectors).

PNGs are encoded with zlib alone (no imaging library needed). Images of any size become
thumbnails whose longer side is about :data:`THUMB_SIDE` pixels: small ones are enlarged by
pixel repetition, large ones reduced by averaging blocks of pixels.
"""

from __future__ import annotations

import base64
import struct
import zlib

import numpy as np

__all__ = ["encode_png", "thumbnail_uri", "unusual_features", "is_image", "THUMB_SIDE"]

#: Target length in pixels of a thumbnail's longer side.
THUMB_SIDE = 84


def is_image(item_shape) -> bool:
    """Whether items of this shape are drawn as images: (H, W) or (C, H, W)."""
    return len(tuple(item_shape)) in (2, 3)


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


def _fit(pixels: np.ndarray, side: int) -> np.ndarray:
    """Enlarge (pixel repetition) or reduce (block means) so the longer side is about ``side``."""
    h, w = pixels.shape[:2]
    longest = max(h, w)
    if longest < side:
        factor = max(1, side // longest)
        return pixels.repeat(factor, axis=0).repeat(factor, axis=1)
    factor = -(-longest // side)
    if factor == 1:
        return pixels
    h2, w2 = -(-h // factor) * factor, -(-w // factor) * factor  # pad with edge values to whole blocks
    pad = [(0, h2 - h), (0, w2 - w)] + [(0, 0)] * (pixels.ndim - 2)
    padded = np.pad(pixels, pad, mode="edge")
    blocks = padded.reshape(h2 // factor, factor, w2 // factor, factor, *pixels.shape[2:])
    return blocks.mean(axis=(1, 3))


def thumbnail_uri(item: np.ndarray, *, side: int = THUMB_SIDE, invert: bool = False) -> str:
    """A ``data:image/png;base64,...`` URI of an image item, (C, H, W) or (H, W).

    One channel is drawn grey, three as RGB (other channel counts: their mean, grey); values
    outside [0, 1] (standardised inputs) are stretched to it; the longer side becomes about
    ``side`` pixels.
    """
    x = np.asarray(item, dtype=np.float32)
    if x.ndim == 3 and x.shape[0] in (1, 3):
        x = x[0] if x.shape[0] == 1 else np.moveaxis(x, 0, -1)
    elif x.ndim == 3:
        x = x.mean(axis=0)
    elif x.ndim != 2:
        raise ValueError(f"item must be an image (C, H, W) or (H, W); got shape {x.shape}")
    x = _fit(x, int(side))
    lo, hi = float(np.min(x)), float(np.max(x))
    if lo < 0.0 or hi > 1.0:  # standardised inputs: stretch to [0, 1] for display
        x = (x - lo) / (hi - lo if hi > lo else 1.0)
    if invert:
        x = 1.0 - x
    pixels = np.clip(np.rint(x * 255.0), 0, 255).astype(np.uint8)
    return "data:image/png;base64," + base64.b64encode(encode_png(pixels)).decode("ascii")


def unusual_features(item: np.ndarray, mean: np.ndarray, std: np.ndarray, *, names=None,
                     k: int = 6) -> list[tuple[str, float, float]]:
    """The ``k`` features of a feature vector farthest from the data's mean, in standard deviations.

    Returns ``[(name, value, z)]``, largest ``|z|`` first (ties by feature index): the compact
    view of an item that is not an image. A feature with zero spread has ``z = 0``.
    """
    x = np.asarray(item, dtype=np.float64).ravel()
    mean = np.asarray(mean, dtype=np.float64).ravel()
    std = np.asarray(std, dtype=np.float64).ravel()
    if not x.shape == mean.shape == std.shape:
        raise ValueError(f"item, mean and std must have one length; got {x.shape}, {mean.shape}, {std.shape}")
    z = np.divide(x - mean, std, out=np.zeros_like(x), where=std > 0)
    order = np.lexsort((np.arange(len(z)), -np.abs(z)))[:k]
    labels = list(names) if names is not None else [f"feature {i}" for i in range(len(x))]
    return [(str(labels[i]), float(x[i]), float(z[i])) for i in order]
