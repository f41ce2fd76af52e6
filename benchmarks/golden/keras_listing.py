"""Seeded random directory trees, listed and split by Keras 3's own flow_from_directory.

    python3 benchmarks/golden/keras_listing.py [--seed 3] [--trees 60]

Writes packages/images/test/fixtures/keras-listing-trees.json: each tree as entries (directories,
empty files, symlinks with their relative targets) under root/ and outside/, and Keras's result
(filenames in order, class indices) for follow_links off and on, with and without a validation
split (both subsets). Trees hold nesting, hidden files and directories, case and unicode names
(astral characters, NFC and NFD spellings), every extension spelling Keras's suffix test meets,
and every kind of symlink: to files and directories inside and outside the tree, dangling, a
directory reached twice, and loops. A tree with a loop is listed with follow_links off only:
os.walk follows a loop until the kernel's 40-link limit, which featherstack does not copy.
"""
import argparse
import io
import json
import os
import random
import shutil
import sys
import tempfile
from contextlib import redirect_stdout

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
from keras.src.legacy.preprocessing.image import ImageDataGenerator

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "packages", "images", "test", "fixtures", "keras-listing-trees.json")
CLASS_NAMES = ["cats", "Dogs", ".hidden", "ünïcode", "日本", "😀emoji", "a b", "Zebra", "-x", "class.png", "\uff21wide", "e\u0301acute", "\u00e9acute"]
DIR_NAMES = ["sub", "B", "a", "_", "A", ".h", "é", "z z", "10", "9", "x.jpg", "😀", "\ufffd"]
STEMS = ["a", "B", "_x", ".hidden", "é", "e\u0301", "😀", "\ufffd", "z9", "10", "9", "Ä", "img 1", "ǅ"]
EXTS = [".png", ".PNG", ".Png", ".jpg", ".JPEG", ".jpeg", ".tif", ".TIFF", ".tiff", ".bmp", ".BMP", ".ppm", ".txt", ".gif", ".webp", ".png.txt", "png", ".apng", ".PnG", ".jpg ", "", ".jpg.bak", "_tiff"]


def random_tree(rng):
    entries = [dict(t="d", p="root"), dict(t="d", p="outside"), dict(t="d", p="outside/ext"), dict(t="f", p="outside/ext/far.png"), dict(t="f", p="outside/lone.jpg")]
    classes = rng.sample(CLASS_NAMES, rng.randint(1, 4))
    dirs = []
    for c in classes:
        entries.append(dict(t="d", p=f"root/{c}"))
        dirs.append(f"root/{c}")
        frontier = [f"root/{c}"]
        for _ in range(rng.randint(0, 4)):
            parent = rng.choice(frontier)
            if parent.count("/") > 4:
                continue
            d = f"{parent}/{rng.choice(DIR_NAMES)}"
            if any(e["p"] == d for e in entries):
                continue
            entries.append(dict(t="d", p=d))
            dirs.append(d)
            frontier.append(d)
    files = []
    for d in dirs:
        for _ in range(rng.randint(0, 6)):
            f = f"{d}/{rng.choice(STEMS)}{rng.choice(EXTS)}"
            if any(e["p"] == f for e in entries):
                continue
            entries.append(dict(t="f", p=f))
            files.append(f)
    entries.append(dict(t="f", p="root/stray.png"))  # a file at the root is not a class
    for _ in range(rng.randint(0, 5)):
        d = rng.choice(dirs)
        kind = rng.choice(["file", "outside-file", "dir", "outside-dir", "dangling", "loop", "class"])
        name = f"{d}/link{rng.randint(0, 99)}{rng.choice(['.png', '.JPG', '', '.tif'])}"
        if any(e["p"] == name for e in entries):
            continue
        depth = name.count("/")
        up = "../" * (depth - 1)
        if kind == "file" and files:
            target = up + rng.choice(files)[5:]
        elif kind == "outside-file":
            target = up + "../outside/lone.jpg"
        elif kind == "dir":
            target = up + rng.choice(dirs)[5:]  # an ancestor makes a loop
        elif kind == "outside-dir":
            target = up + "../outside/ext"
        elif kind == "dangling":
            target = up + "nowhere/missing.png"
        elif kind == "loop":
            target = "."
        else:
            target = up + "../outside/ext"
            name = f"root/linked{rng.randint(0, 9)}"  # a symlinked class directory
            if any(e["p"] == name for e in entries):
                continue
        entries.append(dict(t="l", p=name, to=target))
    return entries


def materialise(base, entries):
    for e in entries:
        path = os.path.join(base, e["p"])
        if e["t"] == "d":
            os.makedirs(path, exist_ok=True)
        elif e["t"] == "f":
            open(path, "wb").close()
    for e in entries:
        if e["t"] == "l":
            os.symlink(e["to"], os.path.join(base, e["p"]))


def has_loop(root):
    """Whether following links reaches a directory twice on one path (os.walk would loop)."""
    def walk(path, seen):
        real = os.path.realpath(path)
        if real in seen:
            return True
        try:
            names = os.listdir(path)
        except OSError:
            return False
        return any(walk(os.path.join(path, n), seen | {real}) for n in names if os.path.isdir(os.path.join(path, n)))
    return walk(root, frozenset())


def keras_listing(root, follow, split, subset):
    gen = ImageDataGenerator(validation_split=split)
    with redirect_stdout(io.StringIO()):
        it = gen.flow_from_directory(root, target_size=(4, 4), class_mode="sparse", shuffle=False, follow_links=follow, subset=subset)
    return dict(filenames=list(it.filenames), labels=[int(c) for c in it.classes], classIndices=it.class_indices)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--seed", type=int, default=3)
    parser.add_argument("--trees", type=int, default=60)
    args = parser.parse_args()
    rng = random.Random(args.seed)
    trees = []
    while len(trees) < args.trees:
        entries = random_tree(rng)
        base = tempfile.mkdtemp()
        try:
            materialise(base, entries)
            root = os.path.join(base, "root")
            loop = has_loop(root)
            listings = []
            split = round(rng.uniform(0.1, 0.6), 2)
            for follow in ([False] if loop else [False, True]):
                listings.append(dict(followLinks=follow, validationSplit=0, subset=None, **keras_listing(root, follow, 0.0, None)))
                for subset in ("training", "validation"):
                    listings.append(dict(followLinks=follow, validationSplit=split, subset=subset, **keras_listing(root, follow, split, subset)))
        finally:
            shutil.rmtree(base)
        trees.append(dict(entries=entries, loop=loop, listings=listings))
    with open(OUT, "w", encoding="utf-8") as f:
        json.dump(dict(generator="benchmarks/golden/keras_listing.py", seed=args.seed, keras=__import__("keras").__version__, trees=trees), f, ensure_ascii=False, separators=(",", ":"))
    files = sum(len(l["filenames"]) for t in trees for l in t["listings"])
    print(f"{len(trees)} trees ({sum(t['loop'] for t in trees)} with loops), {sum(len(t['listings']) for t in trees)} listings, {files} listed files", file=sys.stderr)


if __name__ == "__main__":
    main()
