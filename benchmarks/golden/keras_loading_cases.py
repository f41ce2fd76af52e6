"""Seeded golden cases for @featherstack/images' loading, produced by Keras 3's own load_img (PIL).

    python3 benchmarks/golden/keras_loading_cases.py [--seed 11] [--sources 90] [--cases 14]

Writes the source images to packages/images/test/fixtures/loading/ and the cases to
packages/images/test/fixtures/keras-loading-cases.json. Sources cover every file layout Keras
loads: PNG at bit depths 1/2/4/8/16 in every colour type (palette and tRNS transparency,
interlaced), BMP (1/4/8-bit palette, 16-bit 555/565, 24-bit bottom-up and top-down, 32-bit),
PPM/PGM/PBM (binary and ASCII, maxval below and above 255), TIFF and JPEG. Cases draw a colour
mode, a target size (none, random, or one whose nearest-neighbour sample points fall on exact
integers), a filter and keep_aspect_ratio. Each case stores the output's shape and the SHA-256
of its bytes; where Keras's values do not fit in 8 bits it stores that instead.

--dump <case index> prints one case's full output for debugging a mismatch.
"""
import argparse
import hashlib
import json
import os
import random
import struct
import sys
import zlib

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
import numpy as np
from keras.utils import img_to_array, load_img
from PIL import Image

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "packages", "images", "test", "fixtures")


def content(rng, h, w, c, depth=8):
    """Pixels with structure (gradients, edges) and noise, so every resampling path shows."""
    top = (1 << depth) - 1
    yy, xx = np.meshgrid(np.arange(h), np.arange(w), indexing="ij")
    out = np.zeros((h, w, c), dtype=np.float64)
    for k in range(c):
        a, b = rng.uniform(-1, 1), rng.uniform(-1, 1)
        base = (a * yy / max(h - 1, 1) + b * xx / max(w - 1, 1) + 1) / 3
        edge = ((xx * rng.randint(1, 5) + yy * rng.randint(1, 5)) % rng.randint(3, 9) == 0) * rng.uniform(0, 0.5)
        noise = np.array([[rng.random() for _ in range(w)] for _ in range(h)]) * rng.uniform(0, 0.4)
        out[:, :, k] = base + edge + noise
    return np.clip(np.round(out / out.max() * top if out.max() > 0 else out), 0, top).astype(np.uint16 if depth > 8 else np.uint8)


def as_image(px):
    """A PIL image of an (h, w, c) array: L, LA, RGB or RGBA by channel count, I;16 for uint16."""
    return Image.fromarray(px[:, :, 0] if px.shape[2] == 1 else px)


# ---------------------------------------------------------------- PNG, written by hand (every depth)
def png_chunk(kind, data):
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


def pack_row(samples, depth):
    if depth == 16:
        return b"".join(struct.pack(">H", int(v)) for v in samples)
    if depth == 8:
        return bytes(int(v) for v in samples)
    per = 8 // depth
    out = bytearray()
    for i in range(0, len(samples), per):
        byte = 0
        for j in range(per):
            v = int(samples[i + j]) if i + j < len(samples) else 0
            byte |= v << (8 - depth * (j + 1))
        out.append(byte)
    return bytes(out)


ADAM7 = [(0, 0, 8, 8), (4, 0, 8, 8), (0, 4, 4, 8), (2, 0, 4, 4), (0, 2, 2, 4), (1, 0, 2, 2), (0, 1, 1, 2)]


def write_png(path, samples, color_type, depth, rng, palette=None, trns=None, interlace=False):
    h, w = samples.shape[:2]
    flat = samples.reshape(h, w, -1)
    raw = bytearray()
    passes = ADAM7 if interlace else [(0, 0, 1, 1)]
    for x0, y0, dx, dy in passes:
        for y in range(y0, h, dy):
            xs = list(range(x0, w, dx))
            if not xs:
                continue
            raw.append(0)  # filter: none; zlib does the work (filters are covered by the 8-bit cases below)
            raw += pack_row(flat[y, xs].reshape(-1), depth)
    ihdr = struct.pack(">IIBBBBB", w, h, depth, color_type, 0, 0, 1 if interlace else 0)
    data = b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", ihdr)
    if palette is not None:
        data += png_chunk(b"PLTE", bytes(palette))
    if trns is not None:
        data += png_chunk(b"tRNS", trns)
    data += png_chunk(b"IDAT", zlib.compress(bytes(raw), rng.randint(0, 9)))
    data += png_chunk(b"IEND", b"")
    with open(path, "wb") as f:
        f.write(data)


def make_png(path, rng, h, w):
    kind = rng.choice(["gray", "gray", "graya", "rgb", "rgba", "palette", "palette", "lowgray", "gray16", "gray16", "rgb16", "graya16", "rgba16", "graytrns", "rgbtrns", "pil"])
    interlace = rng.random() < 0.2
    if kind == "pil":
        # Pillow's own writer (adaptive filters), 8-bit
        mode = rng.choice(["L", "RGB", "RGBA", "LA"])
        as_image(content(rng, h, w, len(mode))).save(path, optimize=rng.random() < 0.5)
        return f"png-pil-{mode}"
    if kind in ("gray", "lowgray", "graytrns"):
        depth = 8 if kind != "lowgray" else rng.choice([1, 2, 4])
        px = content(rng, h, w, 1, depth)
        trns = struct.pack(">H", int(px[rng.randrange(h), rng.randrange(w), 0])) if kind == "graytrns" else None
        write_png(path, px, 0, depth, rng, trns=trns, interlace=interlace)
        return f"png-gray{depth}{'-trns' if trns else ''}"
    if kind == "gray16":
        write_png(path, content(rng, h, w, 1, 16), 0, 16, rng, interlace=interlace)
        return "png-gray16"
    if kind in ("graya", "graya16"):
        depth = 16 if kind == "graya16" else 8
        write_png(path, content(rng, h, w, 2, depth), 4, depth, rng, interlace=interlace)
        return f"png-graya{depth}"
    if kind in ("rgb", "rgb16", "rgbtrns"):
        depth = 16 if kind == "rgb16" else 8
        px = content(rng, h, w, 3, depth)
        trns = None
        if kind == "rgbtrns":
            y, x = rng.randrange(h), rng.randrange(w)
            trns = struct.pack(">HHH", *(int(v) for v in px[y, x]))
        write_png(path, px, 2, depth, rng, trns=trns, interlace=interlace)
        return f"png-rgb{depth}{'-trns' if trns else ''}"
    if kind in ("rgba", "rgba16"):
        depth = 16 if kind == "rgba16" else 8
        write_png(path, content(rng, h, w, 4, depth), 6, depth, rng, interlace=interlace)
        return f"png-rgba{depth}"
    depth = rng.choice([1, 2, 4, 8, 8])
    n = rng.randint(1, 1 << depth)
    palette = [rng.randrange(256) for _ in range(3 * n)]
    idx = np.array([[rng.randrange(n) for _ in range(w)] for _ in range(h)], dtype=np.uint8).reshape(h, w, 1)
    trns = bytes(rng.randrange(256) for _ in range(rng.randint(1, n))) if rng.random() < 0.4 else None
    write_png(path, idx, 3, depth, rng, palette=palette, trns=trns, interlace=interlace)
    return f"png-palette{depth}{'-trns' if trns else ''}"


# ---------------------------------------------------------------- BMP
def write_bmp(path, h, w, bits, rows, palette=None, top_down=False, masks=None):
    """rows: list of packed row bytes, top row first. Rows are padded to 4 bytes."""
    stride = (len(rows[0]) + 3) & ~3
    pixels = b"".join(r + b"\0" * (stride - len(r)) for r in (rows if top_down else rows[::-1]))
    pal = b"".join(bytes([b, g, r, 0]) for r, g, b in palette) if palette else b""
    compression = 3 if masks else 0
    extra = struct.pack("<III", *masks) if masks else b""
    header_size = 40
    info = struct.pack("<IiiHHIIiiII", header_size, w, -h if top_down else h, 1, bits, compression, len(pixels), 2835, 2835, len(palette or []), 0)
    offset = 14 + header_size + len(extra) + len(pal)
    with open(path, "wb") as f:
        f.write(b"BM" + struct.pack("<IHHI", offset + len(pixels), 0, 0, offset) + info + extra + pal + pixels)


def make_bmp(path, rng, h, w):
    kind = rng.choice(["pil-RGB", "pil-L", "pil-P", "pil-1", "pil-RGBA", "24-top", "pal4", "16-555", "16-565", "32-x"])
    if kind.startswith("pil-"):
        mode = kind[4:]
        if mode == "1":
            Image.fromarray(content(rng, h, w, 1)[:, :, 0] > 127).save(path)
        elif mode == "P":
            as_image(content(rng, h, w, 3)).quantize(rng.randint(2, 200)).save(path)
        else:
            as_image(content(rng, h, w, len(mode))).save(path)
        return f"bmp-{kind}"
    if kind == "24-top":
        px = content(rng, h, w, 3)
        write_bmp(path, h, w, 24, [bytes(px[y, :, ::-1].reshape(-1)) for y in range(h)], top_down=True)
    elif kind == "pal4":
        n = rng.randint(2, 16)
        palette = [tuple(rng.randrange(256) for _ in range(3)) for _ in range(n)]
        write_bmp(path, h, w, 4, [pack_row([rng.randrange(n) for _ in range(w)], 4) for _ in range(h)], palette=palette)
    elif kind in ("16-555", "16-565"):
        rows = [b"".join(struct.pack("<H", rng.randrange(1 << 15 if kind == "16-555" else 1 << 16)) for _ in range(w)) for _ in range(h)]
        write_bmp(path, h, w, 16, rows, masks=(0xF800, 0x07E0, 0x001F) if kind == "16-565" else None)
    else:
        px = content(rng, h, w, 4)
        write_bmp(path, h, w, 32, [bytes(px[y][:, [2, 1, 0, 3]].reshape(-1)) for y in range(h)])
    return f"bmp-{kind}"


# ---------------------------------------------------------------- PPM / PGM / PBM
def make_ppm(path, rng, h, w):
    kind = rng.choice(["P6", "P5", "P4", "P3", "P2", "P1", "P6-maxval", "P5-maxval", "P5-16", "P6-16"])
    magic = kind[:2]
    comment = b"# featherstack golden\n" if rng.random() < 0.5 else b""
    if magic in ("P1", "P4"):
        bits = np.array([[rng.random() < 0.5 for _ in range(w)] for _ in range(h)], dtype=np.uint8)
        head = magic.encode() + b"\n" + comment + f"{w} {h}\n".encode()
        if magic == "P1":
            body = "\n".join(" ".join(str(int(v)) for v in row) for row in bits).encode() + b"\n"
        else:
            body = b"".join(pack_row(row, 1) for row in bits)
        with open(path, "wb") as f:
            f.write(head + body)
        return f"ppm-{kind}"
    c = 3 if magic in ("P3", "P6") else 1
    maxval = 255
    if kind.endswith("maxval"):
        maxval = rng.randint(1, 254)
    elif kind.endswith("16"):
        maxval = rng.choice([65535, rng.randint(256, 65534)])
    elif magic in ("P2", "P3"):
        maxval = rng.choice([255, rng.randint(1, 1000)])
    px = content(rng, h, w, c, 16).astype(np.int64) * maxval // 65535
    head = magic.encode() + b"\n" + comment + f"{w} {h}\n{maxval}\n".encode()
    if magic in ("P2", "P3"):
        body = "\n".join(" ".join(str(int(v)) for v in row.reshape(-1)) for row in px).encode() + b"\n"
    elif maxval > 255:
        body = b"".join(struct.pack(">H", int(v)) for v in px.reshape(-1))
    else:
        body = bytes(int(v) for v in px.reshape(-1))
    with open(path, "wb") as f:
        f.write(head + body)
    return f"ppm-{kind}{'' if maxval == 255 else f'-{maxval}'}"


def make_other(path_base, rng, h, w):
    kind = rng.choice(["jpeg-L", "jpeg-RGB", "jpeg-RGB", "tiff-L", "tiff-RGB", "tiff-RGBA", "tiff-I16"])
    fmt, mode = kind.split("-")
    if fmt == "jpeg":
        path = path_base + rng.choice([".jpg", ".jpeg", ".JPG"])
        im = as_image(content(rng, h, w, 1 if mode == "L" else 3))
        im.save(path, quality=rng.randint(50, 98), subsampling=rng.choice([0, 1, 2]))
    else:
        path = path_base + rng.choice([".tif", ".tiff"])
        if mode == "I16":
            as_image(content(rng, h, w, 1, 16)).save(path)
        else:
            as_image(content(rng, h, w, len(mode))).save(path, compression=rng.choice([None, "tiff_lzw"]))
    return path, kind


def target_for(rng, h, w):
    r = rng.random()
    if r < 0.1:
        return None
    if r < 0.45:
        # Sample points (x + 0.5)·in/out on exact integers: odd out over even in hits the middle one.
        def boundary(n):
            if n % 2:
                return max(1, 2 * n + rng.choice([1, 3]))
            return rng.choice([k for k in range(1, 4 * n, 2)] or [1])
        return (boundary(h), boundary(w))
    return (rng.randint(1, 2 * h + 8), rng.randint(1, 2 * w + 8))


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--seed", type=int, default=11)
    parser.add_argument("--sources", type=int, default=150)
    parser.add_argument("--cases", type=int, default=8)
    parser.add_argument("--dump", type=int)
    args = parser.parse_args()
    rng = random.Random(args.seed)
    src_dir = os.path.join(ROOT, "loading")
    os.makedirs(src_dir, exist_ok=True)
    if args.dump is None:
        for name in os.listdir(src_dir):
            os.remove(os.path.join(src_dir, name))
    sources, cases = [], []
    makers = [("png", make_png, 0.4), ("bmp", make_bmp, 0.2), ("ppm", make_ppm, 0.2), ("other", None, 0.2)]
    for i in range(args.sources):
        h, w = rng.choice([(rng.randint(1, 40), rng.randint(1, 40)), (rng.randint(8, 40), rng.randint(8, 40)), (28, 28), (1, rng.randint(1, 9))])
        pick = rng.random()
        acc = 0
        for ext, maker, weight in makers:
            acc += weight
            if pick < acc:
                break
        base = os.path.join(src_dir, f"s{i:03d}")
        if ext == "other":
            path, kind = make_other(base, rng, h, w)
        else:
            path = base + "." + rng.choice([ext, ext.upper()] if ext != "ppm" else ["ppm", "PPM"])
            kind = maker(path, rng, h, w)
        sources.append(dict(file=os.path.basename(path), kind=kind, height=h, width=w))
        for _ in range(args.cases):
            color_mode = rng.choice(["grayscale", "rgb", "rgba"])
            size = target_for(rng, h, w)
            interpolation = rng.choice(["nearest", "nearest", "bilinear", "bicubic", "lanczos"]) if size else "nearest"
            keep = bool(size) and rng.random() < 0.3
            case = dict(source=len(sources) - 1, colorMode=color_mode, targetSize=list(size) if size else None, interpolation=interpolation, keepAspectRatio=keep)
            try:
                img = load_img(path, color_mode=color_mode, target_size=size, interpolation=interpolation, keep_aspect_ratio=keep)
                out = img_to_array(img)
            except Exception as error:  # Keras refuses the file: the case records why
                case["kerasError"] = f"{type(error).__name__}: {error}"
                cases.append(case)
                continue
            case["shape"] = list(out.shape)
            if out.max() > 255 or out.min() < 0 or not np.array_equal(out, np.round(out)):
                case["wide"] = True
                case["max"] = float(out.max())
            else:
                case["sha256"] = hashlib.sha256(out.astype(np.uint8).tobytes()).hexdigest()
            if args.dump == len(cases):
                print(json.dumps(dict(case=case, source=sources[-1], output=out.astype(np.int64).reshape(-1).tolist())))
                return
            cases.append(case)
    if args.dump is not None:
        sys.exit(f"no case {args.dump}")
    with open(os.path.join(ROOT, "keras-loading-cases.json"), "w") as f:
        json.dump(dict(generator="benchmarks/golden/keras_loading_cases.py", seed=args.seed, keras=__import__("keras").__version__, pillow=Image.__version__, sources=sources, cases=cases), f, separators=(",", ":"))
    kinds = sorted({s["kind"] for s in sources})
    print(f"{len(sources)} sources ({len(kinds)} kinds), {len(cases)} cases, {sum('wide' in c for c in cases)} wide, {sum('kerasError' in c for c in cases)} refused by Keras", file=sys.stderr)


if __name__ == "__main__":
    main()
