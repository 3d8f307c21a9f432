"""The large workloads: augmented Fashion-MNIST (wide) and galaxies (deep) as chunk stores."""

from __future__ import annotations

import numpy as np
import pytest

from dldiag.chunks import ChunkedSource
from dldiag.workloads import augment, base_items, main, make_workload


def test_augment_without_noise_is_a_shifted_and_mirrored_copy():
    x = np.random.default_rng(1).integers(1, 256, size=(200, 1, 6, 6), dtype=np.uint8)
    out = augment(x, np.random.default_rng(2), max_shift=1, noise=0.0, mirror=True)
    found = 0
    for a, b in zip(x, out):
        candidates = []
        for img in (a[0], a[0][:, ::-1]):
            for dy in (-1, 0, 1):
                for dx in (-1, 0, 1):
                    shifted = np.zeros_like(img)
                    shifted[max(dy, 0):6 + min(dy, 0), max(dx, 0):6 + min(dx, 0)] = \
                        img[max(-dy, 0):6 - max(dy, 0), max(-dx, 0):6 - max(dx, 0)]
                    candidates.append(shifted)
        assert any(np.array_equal(b[0], c) for c in candidates)
        found += np.array_equal(b[0], a[0][:, ::-1])
    assert found > 0  # some items are mirrored copies
    same = augment(x, np.random.default_rng(2), max_shift=0, noise=0.0, mirror=False)
    np.testing.assert_array_equal(same, x)


def test_turns_keep_every_pixel_and_noise_has_its_spread():
    x = np.full((500, 3, 8, 8), 128, dtype=np.uint8)
    x[:, :, 0, :3] = 200
    turned = augment(x, np.random.default_rng(0), max_shift=0, noise=0.0, turns=True)
    assert all(np.sort(t.ravel()).tolist() == np.sort(x[0].ravel()).tolist() for t in turned)
    assert len({t.tobytes() for t in turned}) > 4  # four turns, two mirrors
    noisy = augment(x, np.random.default_rng(0), max_shift=0, noise=8.0, mirror=False)
    assert abs(float(np.std(noisy[:, :, 4:, 4:].astype(float))) - 8.0) < 0.2
    with pytest.raises(ValueError, match="turns need square images"):
        augment(np.zeros((1, 1, 4, 5), np.uint8), np.random.default_rng(0), turns=True)
    with pytest.raises(ValueError, match="noise"):
        augment(x, np.random.default_rng(0), noise=-1.0)


def test_wide_store_is_the_same_bytes_however_often_it_was_interrupted(tmp_path):
    whole = make_workload("wide", 3000, tmp_path / "a", chunk_items=700, base="test", show_progress=False,
                          log=lambda line: None)
    # an interrupted run: two chunks written, the rest missing
    b = tmp_path / "b"
    make_workload("wide", 3000, b, chunk_items=700, base="test", show_progress=False, log=lambda line: None)
    for name in ("manifest.json", "x-00001.sha256", "x-00003.sha256", "x-00004.npy"):
        (b / name).unlink()
    lines = []
    make_workload("wide", 3000, b, chunk_items=700, base="test", show_progress=False, log=lines.append)
    assert "3 chunk(s) written now" in lines[0]
    assert whole.read_text() == (b / "manifest.json").read_text()
    a_src, b_src = ChunkedSource(tmp_path / "a"), ChunkedSource(b)
    np.testing.assert_array_equal(a_src[:], b_src[:])
    np.testing.assert_array_equal(a_src.labels(), b_src.labels())
    m = a_src.manifest
    assert m["provenance"]["workload"] == "wide" and m["provenance"]["base_items"] == 10000
    # labels are the base images' labels: the class shares follow Fashion-MNIST's 10 % each
    assert np.all(np.abs(np.bincount(a_src.labels(), minlength=10) / 3000 - 0.1) < 0.03)


def test_each_wide_item_is_its_base_image_shifted_with_faint_noise(tmp_path):
    make_workload("wide", 50, tmp_path / "w", chunk_items=50, base="test", show_progress=False,
                  log=lambda line: None)
    x, y, _, _ = base_items("wide", "test")
    src = ChunkedSource(tmp_path / "w")
    pick = np.random.default_rng([0, 0]).integers(0, len(x), size=50)
    np.testing.assert_array_equal(src.labels(), y[pick])
    items = np.rint(src[:] * 255)
    # within a 1-pixel shift of the base image, up to noise of sd 8: the best shift is close
    for item, base in zip(items, x[pick].astype(float)):
        best = min(np.abs(np.roll(base, (dy, dx), axis=(1, 2)) - item)[:, 1:-1, 1:-1].mean()
                   for dy in (-1, 0, 1) for dx in (-1, 0, 1))
        assert best < 8.0


def test_command_reports_how_to_use_the_store(tmp_path, capsys):
    assert main(["wide", "--n", "20", "--out", str(tmp_path / "w"), "--base", "test", "--no-progress"]) == 0
    assert f"--dataset chunks:{tmp_path / 'w'} --weights data/weights/fashion-mnist.pt" in capsys.readouterr().out
    assert main(["wide", "--n", "0", "--out", str(tmp_path / "z"), "--no-progress"]) == 2
    assert "n_items must be" in capsys.readouterr().err
