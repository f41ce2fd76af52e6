"""Golden values for @featherstack/images' affine warp, computed by Keras 3 itself.

    python3 benchmarks/golden/keras_affine.py > packages/images/test/fixtures/keras-affine.json

Needs tensorflow-cpu (or keras) and scipy. The test compares featherstack's `keras: true` mode with these.
"""
import json
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
import numpy as np
from keras.src.legacy.preprocessing.image import apply_affine_transform

h, w = 6, 7
image = ((np.arange(h * w * 2).reshape(h, w, 2) * 37) % 251).astype("float32")
cases = []
params = [
    dict(theta=0, tx=0, ty=0, shear=0, zx=1.3, zy=0.8),
    dict(theta=25, tx=0, ty=0, shear=0, zx=1, zy=1),
    dict(theta=0, tx=1.5, ty=-2.25, shear=0, zx=1, zy=1),
    dict(theta=0, tx=0, ty=0, shear=12, zx=1, zy=1),
    dict(theta=-40, tx=0.7, ty=1.2, shear=8, zx=0.85, zy=1.15),
]
for p in params:
    for mode in ["nearest", "constant", "reflect", "wrap"]:
        out = apply_affine_transform(image, row_axis=0, col_axis=1, channel_axis=2, fill_mode=mode, cval=9.0, order=1, **p)
        cases.append(dict(params=p, fill_mode=mode, cval=9.0, output=np.round(out, 4).flatten().tolist()))
print(json.dumps(dict(height=h, width=w, channels=2, image=image.flatten().tolist(), cases=cases)))
