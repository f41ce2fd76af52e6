"""Seeded golden cases for the Keras departures the trust review found, produced by Keras 3 itself.

    python3 benchmarks/golden/keras_departures.py [--seed 23]

Loading (Keras's load_img, Pillow 12) — sources written to packages/images/test/fixtures/departures/,
cases to packages/images/test/fixtures/keras-departures.json:
  - every filter (nearest, bilinear, bicubic, lanczos, box, hamming) at odd sizes, up and down;
  - every TIFF orientation (1-8) in L, RGB, RGBA and I;16, raw and LZW;
  - GIF and WebP transparency: palette GIFs with and without a transparent index, frames offset
    inside or overhanging the screen, interlaced, gray palettes, no palette; WebP lossless and
    lossy with alpha;
  - extreme aspect ratios (more than 100x taller than wide, and wider), every filter;
  - CMYK in every container Pillow writes (JPEG, TIFF): a documented departure, recorded so the
    test can show it is exactly the documented one.
Warps (Keras's apply_affine_transform, scipy.ndimage) — packages/images/test/fixtures/keras-warps.json:
  order 0 and 1 in every fill mode at odd sizes, zooms and shears whose sample points fall on ties
  (k + 0.5) and exactly on the image's edges (90-degree shears and rotations). Each case stores the
  final matrix and offset Keras passes to scipy, and the SHA-256 of the float32 output.
Each loading case stores the output's shape and the SHA-256 of its bytes.
"""
import argparse
import hashlib
import json
import os
import random
import struct

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
import numpy as np
import scipy.ndimage
from keras.src.legacy.preprocessing.image import transform_matrix_offset_center
from keras.utils import img_to_array, load_img
from PIL import Image, TiffImagePlugin

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "packages", "images", "test", "fixtures")
FILTERS = ["nearest", "bilinear", "bicubic", "lanczos", "box", "hamming"]


def content(rng, h, w, c, top=255):
    """Gradients, edges and noise, so every resampling path shows."""
    yy, xx = np.meshgrid(np.arange(h), np.arange(w), indexing="ij")
    out = np.zeros((h, w, c))
    for k in range(c):
        a, b = rng.uniform(-1, 1), rng.uniform(-1, 1)
        edge = ((xx * rng.randint(1, 5) + yy * rng.randint(1, 5)) % rng.randint(3, 9) == 0) * rng.uniform(0, 0.5)
        noise = np.array([[rng.random() for _ in range(w)] for _ in range(h)]) * rng.uniform(0, 0.4)
        out[:, :, k] = (a * yy / max(h - 1, 1) + b * xx / max(w - 1, 1) + 1) / 3 + edge + noise
    out = np.clip(np.round(out / out.max() * top), 0, top)
    return out.astype(np.uint16 if top > 255 else np.uint8)


def pil(px):
    return Image.fromarray(px[:, :, 0] if px.shape[2] == 1 else px)


def odd(rng, lo, hi):
    return rng.randrange(lo | 1, hi, 2)


def sources(rng, out):
    """(file, kind, [filters to try]) for every family."""
    made = []

    def add(name, kind, filters):
        made.append(dict(file=name, kind=kind, filters=filters))

    # Every filter at odd sizes.
    for i, mode in enumerate(["L", "RGB", "RGBA", "LA", "RGB", "RGBA"]):
        h, w = odd(rng, 5, 41), odd(rng, 5, 41)
        name = f"filter{i}.png"
        pil(content(rng, h, w, len(mode))).save(os.path.join(out, name))
        add(name, f"png-{mode}", FILTERS)
    # Every TIFF orientation.
    for o in range(1, 9):
        for mode in ["L", "RGB", "RGBA", "I;16"]:
            h, w = rng.randint(2, 9), rng.randint(2, 9)
            while w == h:
                w = rng.randint(2, 9)
            px = content(rng, h, w, 1, 65535) if mode == "I;16" else content(rng, h, w, len(mode))
            ifd = TiffImagePlugin.ImageFileDirectory_v2()
            ifd[274] = o
            compression = rng.choice([None, "tiff_lzw"])
            name = f"orient{o}-{mode.replace(';', '')}.tif"
            (Image.fromarray(px[:, :, 0]) if mode == "I;16" else pil(px)).save(os.path.join(out, name), tiffinfo=ifd, compression=compression)
            add(name, f"tiff-{mode}-o{o}-{compression or 'raw'}", ["nearest", rng.choice(FILTERS[1:])])
    # GIF: palettes, transparency, frames inside or overhanging the screen, interlacing.
    for i in range(10):
        h, w = rng.choice([(rng.randint(2, 9), rng.randint(2, 9)), (rng.randint(16, 30), rng.randint(16, 30))])
        n = rng.choice([2, 4, 16, 200])
        gray = i % 5 == 3
        palette = [v for k in range(n) for v in ((k * 255 // max(n - 1, 1),) * 3 if gray else tuple(rng.randrange(256) for _ in range(3)))]
        idx = np.array([[rng.randrange(n) for _ in range(w)] for _ in range(h)], dtype=np.uint8)
        im = Image.fromarray(idx, mode="P")
        im.putpalette(palette + [0] * (768 - len(palette)))
        path = os.path.join(out, f"gif{i}.gif")
        transparency = rng.randrange(n) if i % 2 == 0 else None
        im.save(path, **({} if transparency is None else dict(transparency=transparency)), interlace=h >= 16)
        data = bytearray(open(path, "rb").read())
        if i % 3 == 1:
            # A frame offset inside a larger logical screen.
            data[6:10] = struct.pack("<HH", w + rng.randint(1, 4), h + rng.randint(1, 4))
            at = data.index(b"\x2c", 13 + (3 * (2 << (data[10] & 7)) if data[10] & 0x80 else 0))
            data[at + 1 : at + 5] = struct.pack("<HH", rng.randint(0, 1), rng.randint(0, 1))
        elif i % 3 == 2:
            # A frame that overhangs the screen (Pillow grows the canvas).
            data[6:10] = struct.pack("<HH", max(1, w - 1), max(1, h - 1))
            at = data.index(b"\x2c", 13 + (3 * (2 << (data[10] & 7)) if data[10] & 0x80 else 0))
            data[at + 1 : at + 5] = struct.pack("<HH", 1, 0)
        open(path, "wb").write(bytes(data))
        add(f"gif{i}.gif", f"gif-{n}{'-gray' if gray else ''}{'' if transparency is None else '-trns'}-{['full', 'offset', 'overhang'][i % 3]}", ["nearest", rng.choice(FILTERS[1:])])
    # WebP with alpha, lossless and lossy.
    for i, lossless in enumerate([True, False, True, False]):
        h, w = rng.randint(3, 30), rng.randint(3, 30)
        px = content(rng, h, w, 4)
        px[:, :, 3][px[:, :, 3] < 100] = 0
        name = f"webp{i}.webp"
        pil(px).save(os.path.join(out, name), lossless=lossless, quality=rng.randint(50, 95))
        add(name, f"webp-rgba-{'lossless' if lossless else 'lossy'}", ["nearest", rng.choice(FILTERS[1:])])
    # Extreme aspect ratios: Pillow resizes vertically first when h > 100 w and the height shrinks.
    for i, (h, w) in enumerate([(426, 4), (rng.randint(303, 500), 3), (4, 426), (rng.randint(201, 260), 2)]):
        name = f"tall{i}.png"
        pil(content(rng, h, w, rng.choice([1, 3, 4]))).save(os.path.join(out, name))
        add(name, f"png-{h}x{w}", FILTERS)
    # CMYK: documented departure (featherstack converts with libvips' ICC transform).
    for i, fmt in enumerate(["jpeg", "tiff", "jpeg", "tiff"]):
        h, w = rng.randint(3, 20), rng.randint(3, 20)
        name = f"cmyk{i}.{'jpg' if fmt == 'jpeg' else 'tif'}"
        Image.fromarray(content(rng, h, w, 4), mode="CMYK").save(os.path.join(out, name), **(dict(quality=95) if fmt == "jpeg" else {}))
        add(name, f"{fmt}-cmyk", ["nearest"])
    return made


def target(rng, h, w, kind):
    if kind.startswith("png-") and "x" in kind:
        # The tall and wide sources: shrink the long side, and sometimes grow the short one.
        return (rng.randint(max(1, h // 3), max(1, h - 1)) if h > w else rng.randint(1, 2 * h + 3), rng.randint(1, 2 * w + 3) if h > w else rng.randint(max(1, w // 3), max(1, w - 1)))
    r = rng.random()
    if r < 0.2:
        return None
    return (odd(rng, 1, 2 * h + 8), odd(rng, 1, 2 * w + 8))


def load_cases(rng, out):
    made = sources(rng, out)
    cases = []
    for s in made:
        path = os.path.join(out, s["file"])
        with Image.open(path) as im:
            w, h = im.size
        for interpolation in s["filters"]:
            for _ in range(2):
                color_mode = rng.choice(["grayscale", "rgb", "rgba"])
                if s["kind"].startswith("tiff-I;16") and color_mode == "grayscale":
                    color_mode = "rgb"
                size = target(rng, h, w, s["kind"])
                if size is None and interpolation != "nearest":
                    size = (odd(rng, 1, 2 * h + 8), odd(rng, 1, 2 * w + 8))
                keep = bool(size) and rng.random() < 0.25
                img = load_img(path, color_mode=color_mode, target_size=size, interpolation=interpolation, keep_aspect_ratio=keep)
                px = img_to_array(img)
                cases.append(
                    dict(
                        source=s["file"],
                        kind=s["kind"],
                        colorMode=color_mode,
                        targetSize=list(size) if size else None,
                        interpolation=interpolation,
                        keepAspectRatio=keep,
                        shape=list(px.shape),
                        sha256=hashlib.sha256(px.astype(np.uint8).tobytes()).hexdigest(),
                    )
                )
    return cases


def warp_cases(rng):
    cases = []
    shapes = [(23, 37), (5, 9), (1, 7), (2, 2), (16, 16), (7, 3), (12, 13)]
    for i in range(140):
        h, w = shapes[i % len(shapes)]
        c = rng.choice([1, 2, 3])
        image = content(rng, h, w, c).astype("float32")
        family = i % 5
        p = dict(theta=0.0, tx=0.0, ty=0.0, shear=0.0, zx=1.0, zy=1.0)
        if family == 0:  # zooms whose sample points tie at k + 0.5
            p.update(zx=rng.choice([0.7, 1.3, 0.5, 1.5, 2.0]), zy=rng.choice([0.7, 1.3, 0.5, 1.5, 2.0]))
        elif family == 1:  # sample points exactly on the edges
            p.update(shear=rng.choice([90.0, -90.0, 45.0]), theta=rng.choice([0.0, 90.0, 180.0, -90.0]))
        elif family == 2:  # half-pixel shifts, outside points at exact halves
            p.update(tx=rng.choice([0.5, -1.5, 2.5, -0.5, 3.0]), ty=rng.choice([0.5, -2.5, 1.5, 0.0]))
        else:  # everything at once
            p.update(theta=rng.uniform(-180, 180), tx=rng.uniform(-4, 4), ty=rng.uniform(-4, 4), shear=rng.uniform(-30, 30), zx=rng.uniform(0.5, 1.6), zy=rng.uniform(0.5, 1.6))
        fill_mode = ["constant", "nearest", "reflect", "wrap"][(i // 5) % 4]
        order = (i // 20) % 2
        cval = float(rng.choice([0, 9, 255]))
        matrix = affine_matrix(p, h, w)
        out = np.stack(
            [scipy.ndimage.affine_transform(image[:, :, k], matrix[:2, :2], matrix[:2, 2], order=order, mode=fill_mode, cval=cval) for k in range(c)],
            axis=-1,
        )
        cases.append(
            dict(
                height=h,
                width=w,
                channels=c,
                image=image.astype(np.uint8).reshape(-1).tolist(),
                params=p,
                fillMode=fill_mode,
                order=order,
                cval=cval,
                matrix=[float(v) for v in matrix[:2, :2].reshape(-1)],
                offset=[float(v) for v in matrix[:2, 2]],
                sha256=hashlib.sha256(out.astype(np.float32).tobytes()).hexdigest(),
            )
        )
    return cases


def affine_matrix(p, h, w):
    """Keras 3's apply_affine_transform matrix for row_axis 0, col_axis 1 (its code, step by step)."""
    m = None
    if p["theta"]:
        t = np.deg2rad(p["theta"])
        m = np.array([[np.cos(t), -np.sin(t), 0], [np.sin(t), np.cos(t), 0], [0, 0, 1]])
    if p["tx"] or p["ty"]:
        s = np.array([[1, 0, p["tx"]], [0, 1, p["ty"]], [0, 0, 1]])
        m = s if m is None else np.dot(m, s)
    if p["shear"]:
        sh = np.deg2rad(p["shear"])
        s = np.array([[1, -np.sin(sh), 0], [0, np.cos(sh), 0], [0, 0, 1]])
        m = s if m is None else np.dot(m, s)
    if p["zx"] != 1 or p["zy"] != 1:
        z = np.array([[p["zx"], 0, 0], [0, p["zy"], 0], [0, 0, 1]])
        m = z if m is None else np.dot(m, z)
    m = transform_matrix_offset_center(m, h, w)
    m[:, [0, 1]] = m[:, [1, 0]]
    m[[0, 1]] = m[[1, 0]]
    return m


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--seed", type=int, default=23)
    args = parser.parse_args()
    rng = random.Random(args.seed)
    out = os.path.join(ROOT, "departures")
    os.makedirs(out, exist_ok=True)
    for name in os.listdir(out):
        os.remove(os.path.join(out, name))
    meta = dict(generator="benchmarks/golden/keras_departures.py", seed=args.seed, keras=__import__("keras").__version__, pillow=Image.__version__, scipy=scipy.__version__)
    cases = load_cases(rng, out)
    with open(os.path.join(ROOT, "keras-departures.json"), "w") as f:
        json.dump(dict(meta, cases=cases), f, separators=(",", ":"))
    warps = warp_cases(rng)
    with open(os.path.join(ROOT, "keras-warps.json"), "w") as f:
        json.dump(dict(meta, cases=warps), f, separators=(",", ":"))
    print(f"{len(cases)} loading cases from {len(os.listdir(out))} sources, {len(warps)} warps")


if __name__ == "__main__":
    main()
