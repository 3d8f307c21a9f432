"""``galaxies``: simulated disk + bulge galaxies seen edge-on or face-on, drawn with GalSim.

The report's scientific case is Galaxy Zoo 2's "edge-on or face-on?" (69×69 colour images,
54,333 train / 2,118 test). The catalogue cannot be downloaded here, so this is its closest honest
stand-in, drawn with GalSim (the simulator astronomers use for exactly such images). Physical
choices, and why:

- **Disk**: ``galsim.InclinedExponential``, a thick exponential disk seen at inclination ``i`` —
  ``cos i`` uniform in [0, 1] (orientations isotropic in space), scale height / scale radius 0.1
  ± 0.03 (thin disks, so that edge-on looks edge-on), half-light radius log-normal around 4″
  (σ = 0.25 in ln), so that a disk spans much of the stamp as Galaxy Zoo's cut-outs do.
- **Bulge**: ``galsim.DeVaucouleurs`` (an r^¼ profile), half-light radius 0.2–0.5 of the disk's,
  bulge-to-total flux Beta(1.5, 5) (mostly disk-dominated, like the spirals the question is about).
  A round bulge makes a face-on and an inclined disk harder to tell apart, as in real images.
- **Colours**: three bands g, r, i (shown as blue, green, red): a redder bulge (g:r:i ≈ 0.45:1:1.3)
  and a bluer disk (≈ 0.8:1:1.1), each with a little scatter; shapes are the same in every band
  (an achromatic model), so each galaxy is rendered once per component and scaled per band.
- **Seeing and noise**: a Moffat PSF (β = 3, FWHM 1.0–1.6″), SDSS's 0.396″ pixels, a sky
  background and Poisson noise on sky and source (a total flux log-normal around 3×10⁴ counts),
  a random position angle and a small centre offset.
- **Labels**: Galaxy Zoo asks volunteers; near the threshold they disagree. Each galaxy's label is
  the majority of 40 simulated votes, each "edge-on" with probability
  ``sigmoid((i − 72°) / 2.5°)``: far from 72° every vote agrees, near it the label is a noisy vote,
  so even a perfect model cannot be right about every galaxy (about 1 % of the labels differ from
  the side of 72° the galaxy is on, all of them within 4° of it). About a third of the galaxies
  come out edge-on (``cos 72° ≈ 0.31``).

Items are uint8 (C=3, 69, 69) in the order g, r, i → stored as R, G, B = i, r, g, so that
thumbnails look as astronomers colour them. Each galaxy draws its parameters and noise from its
own seed (the split's seed and its index), so the bytes do not depend on how the work is split
between processes; same seed and GalSim version, same bytes.
"""

from __future__ import annotations

import hashlib
import logging
import os
import selectors
import subprocess
import sys
import tempfile
import warnings
from pathlib import Path

import numpy as np

__all__ = ["CLASS_NAMES", "SPLITS", "IMAGE_SIZE", "TEST_DIGEST", "draw", "galaxy_parameters", "galaxy_split",
           "render", "split_digest"]

log = logging.getLogger(__name__)

CLASS_NAMES = ("face-on", "edge-on")
IMAGE_SIZE = 69
PIXEL_SCALE = 0.396  # arcsec per pixel (SDSS)
THRESHOLD_DEG = 72.0
VOTE_WIDTH_DEG = 2.5
VOTERS = 40
#: (seed, items) of each split, as the report's: 54,000 train and 2,118 test.
SPLITS = {"train": (20260, 54_000), "test": (20261, 2_118)}
#: :func:`split_digest` of the test split as GalSim 2.8.5 draws it; another GalSim may draw
#: other bytes, and the shipped weights' figures were measured on these.
TEST_DIGEST = "bac0acfead64f77259e203fbfd16435579210aa2de29fd8ab123c7d6955cc7f7"
SOFTENING = 12.0  # counts per pixel: below it the stretch is linear, above logarithmic
STRETCH_TOP = 400.0  # counts per pixel shown at full brightness
_CHUNK = 250
_KEYS = ("x", "y", "inclination", "votes")
_FORMAT = 2  # bump when the drawing changes, so that old cached splits are not reused


def _draw_parameters(rng: np.random.Generator) -> dict:
    cos_i = rng.uniform(0.0, 1.0)
    r_disk = float(np.exp(rng.normal(np.log(4.0), 0.25)))
    return {
        "inclination": float(np.degrees(np.arccos(cos_i))),
        "disk_hlr": r_disk,
        "h_over_r": float(np.clip(rng.normal(0.1, 0.03), 0.04, 0.2)),
        "bulge_hlr": r_disk * rng.uniform(0.2, 0.5),
        "bulge_fraction": float(rng.beta(1.5, 5.0)),
        "flux": float(np.exp(rng.normal(np.log(3e4), 0.5))),
        "angle": rng.uniform(0.0, 180.0),
        "offset": rng.normal(0.0, 0.4, size=2),
        "fwhm": rng.uniform(1.0, 1.6),
        "sky": rng.uniform(80.0, 140.0),
        "disk_colour": np.array([0.8, 1.0, 1.1]) * rng.normal(1.0, 0.08, 3),
        "bulge_colour": np.array([0.45, 1.0, 1.3]) * rng.normal(1.0, 0.08, 3),
        "noise_seed": int(rng.integers(1, 2**31 - 1)),
    }


def _votes(inclination: float, rng: np.random.Generator) -> tuple[int, float]:
    """(label, share of edge-on votes): the majority of :data:`VOTERS` noisy votes."""
    p = 1.0 / (1.0 + np.exp(-(inclination - THRESHOLD_DEG) / VOTE_WIDTH_DEG))
    share = rng.binomial(VOTERS, p) / VOTERS
    return int(share > 0.5), float(share)


def galaxy_parameters(seed: int, index: int) -> tuple[dict, int, float]:
    """Galaxy ``index`` of ``seed`` without its image: (parameters, label, share of edge-on votes).

    What :func:`render` draws, at a fraction of its cost (for checks of the labels).
    """
    rng = np.random.default_rng(np.random.SeedSequence([seed, index]))
    p = _draw_parameters(rng)
    label, share = _votes(p["inclination"], rng)
    return p, label, share


def render(seed: int, index: int) -> tuple[np.ndarray, int, float, float]:
    """One galaxy: (uint8 image (3, 69, 69) as i, r, g, label, inclination in degrees, vote share)."""
    import galsim

    p, label, share = galaxy_parameters(seed, index)
    psf = galsim.Moffat(beta=3.0, fwhm=p["fwhm"])
    shift = (p["offset"][0] * PIXEL_SCALE, p["offset"][1] * PIXEL_SCALE)
    disk = galsim.InclinedExponential(inclination=p["inclination"] * galsim.degrees,
                                      half_light_radius=p["disk_hlr"], scale_h_over_r=p["h_over_r"])
    bulge = galsim.DeVaucouleurs(half_light_radius=p["bulge_hlr"])
    parts = []
    for component in (disk, bulge):
        profile = galsim.Convolve(component.rotate(p["angle"] * galsim.degrees).shift(*shift), psf)
        parts.append(profile.drawImage(nx=IMAGE_SIZE, ny=IMAGE_SIZE, scale=PIXEL_SCALE).array.astype(np.float64))
    disk_img, bulge_img = parts  # each of unit flux
    noise = galsim.BaseDeviate(p["noise_seed"])
    bands = []
    for b in range(3):  # g, r, i
        flux_disk = p["flux"] * (1.0 - p["bulge_fraction"]) * p["disk_colour"][b]
        flux_bulge = p["flux"] * p["bulge_fraction"] * p["bulge_colour"][b]
        image = galsim.ImageD(flux_disk * disk_img + flux_bulge * bulge_img + p["sky"], scale=PIXEL_SCALE)
        image.addNoise(galsim.PoissonNoise(noise))
        bands.append(image.array - p["sky"])
    stack = np.stack(bands[::-1])  # i, r, g → red, green, blue
    # asinh stretch (Lupton et al. 2004), the usual display of astronomical colour images
    scaled = np.arcsinh(np.clip(stack, 0.0, None) / SOFTENING) / np.arcsinh(STRETCH_TOP / SOFTENING)
    pixels = np.clip(np.rint(scaled * 255.0), 0, 255).astype(np.uint8)
    return pixels, label, p["inclination"], share


def _chunk(seed: int, start: int, stop: int) -> dict:
    out = [render(seed, i) for i in range(start, stop)]
    return {"x": np.stack([o[0] for o in out]), "y": np.array([o[1] for o in out], dtype=np.int64),
            "inclination": np.array([o[2] for o in out]), "votes": np.array([o[3] for o in out])}


def _usable_cores() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


def draw(seed: int, n: int, *, workers: int | None = None, show_progress: bool = True,
         chunk: int = _CHUNK) -> dict:
    """``n`` galaxies of ``seed``, drawn by ``workers`` processes (default: the usable cores).

    The workers are ``python -m dldiag.galaxies`` child processes, not a multiprocessing pool:
    a pool's spawned children re-run the caller's script (an unguarded script then fails
    obscurely) and forked ones inherit the parent's threads (the app's, torch's). Each worker
    gets every ``workers``-th chunk of ``chunk`` galaxies and writes each to a file; which worker
    draws an item does not change its bytes.
    """
    from .progress import progress

    workers = max(1, min(int(workers or _usable_cores()), -(-n // chunk)))
    jobs = [(start, min(start + chunk, n)) for start in range(0, n, chunk)]
    bar = progress(total=n, desc=f"drawing {n:,} galaxies (GalSim)", unit="galaxy", disable=not show_progress,
                   leave=True)
    with tempfile.TemporaryDirectory(prefix="dldiag-galaxies-") as tmp:
        procs = []
        try:
            for w in range(workers):
                err = open(Path(tmp) / f"worker{w}.err", "w+b")
                proc = subprocess.Popen([sys.executable, "-m", "dldiag.galaxies", str(seed), tmp],
                                        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=err,
                                        cwd=str(Path(__file__).resolve().parents[1]))
                procs.append((proc, err))
                lines = "".join(f"{a} {b}\n" for a, b in jobs[w::workers])
                proc.stdin.write(lines.encode())
                proc.stdin.close()
            sizes = dict(jobs)
            with selectors.DefaultSelector() as sel:
                for proc, _ in procs:
                    sel.register(proc.stdout, selectors.EVENT_READ)
                open_pipes = len(procs)
                while open_pipes:
                    for key, _ in sel.select():
                        line = key.fileobj.readline()
                        if not line:
                            sel.unregister(key.fileobj)
                            open_pipes -= 1
                            continue
                        start = int(line)
                        bar.update(sizes[start] - start)
            for proc, err in procs:
                if proc.wait() != 0:
                    err.seek(0)
                    tail = err.read().decode(errors="replace").strip().splitlines()[-5:]
                    raise RuntimeError(f"drawing galaxies (seed {seed}) failed in a worker process "
                                       f"(exit {proc.returncode}): " + " | ".join(tail))
        finally:
            for proc, err in procs:
                if proc.poll() is None:
                    proc.kill()
                    proc.wait()
                proc.stdout.close()
                err.close()
            bar.close()
        parts = []
        for start, _ in jobs:
            with np.load(Path(tmp) / f"{start}.npz", allow_pickle=False) as z:
                parts.append({k: z[k] for k in _KEYS})
    return {k: np.concatenate([p[k] for p in parts]) for k in _KEYS}


def _worker(seed: int, folder: str) -> None:
    """``python -m dldiag.galaxies SEED FOLDER``: draw the chunks named on stdin ("start stop")."""
    for line in sys.stdin:
        start, stop = (int(v) for v in line.split())
        np.savez(Path(folder) / f"{start}.npz", **_chunk(seed, start, stop))
        print(start, flush=True)


def split_digest(data: dict) -> str:
    """sha256 of a split's images and labels (uint8 and int64 bytes), as :data:`TEST_DIGEST`."""
    h = hashlib.sha256(np.ascontiguousarray(data["x"], dtype=np.uint8).tobytes())
    h.update(np.ascontiguousarray(data["y"], dtype=np.int64).tobytes())
    return h.hexdigest()


def _cache_folder() -> Path:
    from .cache import check_folder, default_cache_dir

    return check_folder(default_cache_dir() / "datasets")


def galaxy_split(split: str, *, n: int | None = None, folder: Path | None = None,
                 show_progress: bool = True) -> dict:
    """A split of the galaxies (drawn once, then read from ``<cache>/datasets/``).

    Returns ``x`` (uint8, N×3×69×69), ``y``, ``inclination``, ``votes`` and ``source`` (a line
    saying what was drawn and where it is cached). ``n`` draws the split's
    first ``n`` items only (tests). The test split's bytes are checked against
    :data:`TEST_DIGEST`; another GalSim version drawing other bytes gets one warning.
    """
    import galsim

    from ._validation import check_option

    check_option("split", split, tuple(SPLITS))
    seed, count = SPLITS[split]
    n = count if n is None else int(n)
    folder = Path(folder) if folder is not None else _cache_folder()
    path = folder / f"galaxies-v{_FORMAT}-galsim{galsim.__version__}-{split}-{seed}-{n}.npz"
    if path.exists():
        try:
            with np.load(path, allow_pickle=False) as z:
                data = {k: z[k] for k in _KEYS}
        except (OSError, ValueError, KeyError):
            log.warning("galaxies: %s is damaged; drawing the split again", path)
            data = None
    else:
        data = None
    if data is None:
        data = draw(seed, n, show_progress=show_progress)
        # a file of its own: two processes or threads drawing the same split at once must not
        # clobber each other's half-written file; the rename is atomic and either result is the same
        fd, partial = tempfile.mkstemp(dir=folder, prefix=f"{path.stem}.", suffix=".partial.npz")
        try:
            with os.fdopen(fd, "wb") as f:
                np.savez(f, **data)
            os.replace(partial, path)
        except BaseException:
            Path(partial).unlink(missing_ok=True)
            raise
    if split == "test" and n == count:
        digest = split_digest(data)
        if digest != TEST_DIGEST:
            warnings.warn(f"galaxies: GalSim {galsim.__version__} drew a test split whose images or labels differ "
                          f"from the recorded one (sha256 {digest[:12]}… vs {TEST_DIGEST[:12]}…); the shipped weights' "
                          "figures were measured on GalSim 2.8.5's", stacklevel=2)
    data["source"] = (f"GalSim {galsim.__version__} simulation (dldiag.galaxies), {split} split: seed {seed}, "
                      f"{n} items, cached in {path}")
    return data


if __name__ == "__main__":
    _worker(int(sys.argv[1]), sys.argv[2])
