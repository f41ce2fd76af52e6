"""Loads a .keras file with Keras itself and predicts a float32 batch: the check that a file featherstack
exports goes back to Python (packages/core/test/keras-export.test.ts).

    python3 benchmarks/peers/keras_predict.py --model model.keras --input x.f32 --shape 4,8,8,1 --out y.f32

Prints one JSON line: the model's layer classes and output shape.
"""
import argparse
import json
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
import keras  # noqa: E402
import numpy as np  # noqa: E402

parser = argparse.ArgumentParser()
parser.add_argument("--model", required=True)
parser.add_argument("--input", required=True)
parser.add_argument("--shape", required=True)
parser.add_argument("--out", required=True)
args = parser.parse_args()

model = keras.saving.load_model(args.model)
x = np.fromfile(args.input, dtype=np.float32).reshape([int(d) for d in args.shape.split(",")])
y = np.asarray(model.predict(x, verbose=0), dtype=np.float32)
y.tofile(args.out)
print(json.dumps({"layers": [layer.__class__.__name__ for layer in model.layers], "outputShape": list(y.shape), "keras": keras.__version__}))
