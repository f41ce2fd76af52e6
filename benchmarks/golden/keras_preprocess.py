"""Golden values for Keras's imagenet_utils.preprocess_input modes ('tf', 'caffe', 'torch'), from Keras 3 itself.

    python3 benchmarks/golden/keras_preprocess.py > packages/images/test/fixtures/keras-preprocess.json

Each mode runs on float32 RGB images as ImageDataGenerator hands them to a preprocessing_function:
integer pixels as load_img gives them, and fractional values in and beyond 0..255 as an affine
transform or a brightness shift leaves them. Values are written as float32 bit patterns (uint32),
so that the test compares bit for bit.
"""
import json
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
import numpy as np
from keras.src.applications.imagenet_utils import preprocess_input

rng = np.random.default_rng(17)
inputs = [
    np.arange(256 * 3, dtype="float32").reshape(16, 16, 3) % 256,
    rng.integers(0, 256, size=(5, 7, 3)).astype("float32"),
    rng.uniform(0, 255, size=(6, 6, 3)).astype("float32"),
    rng.uniform(-40, 300, size=(4, 9, 3)).astype("float32"),
]
cases = []
for mode in ("tf", "caffe", "torch"):
    for x in inputs:
        out = preprocess_input(x.copy(), mode=mode, data_format="channels_last")
        out = np.asarray(out, dtype="float32")
        cases.append(dict(mode=mode, shape=list(x.shape), input=x.view("uint32").reshape(-1).tolist(), output=out.view("uint32").reshape(-1).tolist()))
print(json.dumps(dict(generator="benchmarks/golden/keras_preprocess.py", cases=cases)))
