"""Golden values for @featherstack/images' loading: Keras 3's own load_img (PIL) on images made
from a formula that the test reproduces exactly.

    python3 benchmarks/golden/keras_loading.py > packages/images/test/fixtures/keras-loading.json

Needs keras (tensorflow-cpu) and pillow. Source pixel (r, c, k) = (7r + 3c + 50k + (r·c mod 13)) mod 256.
"""
import json
import os
import tempfile

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
import numpy as np
from keras.utils import img_to_array, load_img
from PIL import Image

h, w = 17, 23
r, c, k = np.meshgrid(np.arange(h), np.arange(w), np.arange(4), indexing="ij")
pixels = ((7 * r + 3 * c + 50 * k + (r * c) % 13) % 256).astype("uint8")
cases = []
with tempfile.TemporaryDirectory() as tmp:
    rgb = os.path.join(tmp, "rgb.png")
    rgba = os.path.join(tmp, "rgba.png")
    Image.fromarray(pixels[:, :, :3], "RGB").save(rgb)
    Image.fromarray(pixels, "RGBA").save(rgba)
    for source, name in [(rgb, "rgb"), (rgba, "rgba")]:
        for color_mode in ["grayscale", "rgb", "rgba"]:
            for size in [None, (8, 10), (30, 41), (9, 9)]:
                for interpolation in ["nearest", "bilinear", "bicubic", "lanczos"]:
                    for keep in [False, True]:
                        if (size is None and (interpolation != "nearest" or keep)) or (keep and size != (9, 9)):
                            continue
                        img = load_img(source, color_mode=color_mode, target_size=size, interpolation=interpolation, keep_aspect_ratio=keep)
                        out = img_to_array(img).astype("uint8")
                        cases.append(dict(source=name, colorMode=color_mode, size=list(out.shape[:2]), interpolation=interpolation, keepAspectRatio=keep, output=out.flatten().tolist()))
print(json.dumps(dict(height=h, width=w, cases=cases)))
