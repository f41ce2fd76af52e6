"""Golden values for Keras's brightness step (ImageDataGenerator's brightness_range), from Keras 3 itself.

    python3 benchmarks/golden/keras_brightness.py > packages/images/test/fixtures/keras-brightness.json

Keras goes through PIL: array_to_img truncates the float image to uint8 (min-max scaled first when
values leave 0..255), ImageEnhance.Brightness blends in float32, img_to_array brings it back.
Inputs have fractional values, as they do after an affine transform.
"""
import json
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
import numpy as np
from keras.src.legacy.preprocessing.image import apply_brightness_shift

rng = np.random.default_rng(5)
cases = []
for channels in (1, 3, 4):
    for lo, hi in ((0, 255), (-20, 300)):
        x = rng.uniform(lo, hi, size=(6, 7, channels)).astype("float32")
        for factor in (0.0, 0.31, 0.77, 1.0, 1.3, 1.93, float(rng.uniform(0.5, 1.5))):
            out = apply_brightness_shift(x, factor, False)
            cases.append(dict(shape=list(x.shape), factor=factor, input=x.reshape(-1).tolist(), output=np.asarray(out, dtype="float32").reshape(-1).tolist()))
print(json.dumps(dict(generator="benchmarks/golden/keras_brightness.py", cases=cases)))
