"""Keras peers for single stages of the stacked workflow, for benchmarks/extraction.mjs and
benchmarks/head.mjs. Prints one JSON line.

    python3 keras_stages.py --stage extraction --data DIR [--size 28] [--color-mode grayscale] [--batch 256] [--repeats 1] [--passes 1]
        The seed's extract_features: an untrained seed CNN (weights do not change the cost) runs
        model.predict batch by batch over a non-augmenting ImageDataGenerator.flow_from_directory,
        `passes` times per timed run (as the featherstack rows do). Reports images/s per repeat
        (after one warm-up pass).

    python3 keras_stages.py --stage head --features DIR [--epochs 10] [--batch 32] [--repeats 3]
        The seed's head (dense128 relu → softmax, Adam 1e-3) fitted on the features that the
        benchmark wrote as raw little-endian files (train.f32, train.i32, val.f32, val.i32, meta.json),
        with the validation features evaluated every epoch as in the seed. Reports rows/s (training
        rows × epochs ÷ seconds, model construction included as in the featherstack rows) per repeat
        and the final validation accuracy.
"""
import argparse
import json
import os
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
import numpy as np  # noqa: E402
import keras  # noqa: E402
from keras import layers  # noqa: E402
from keras.src.legacy.preprocessing.image import ImageDataGenerator  # noqa: E402
from seed_cnn import seed_base  # noqa: E402

p = argparse.ArgumentParser()
p.add_argument("--stage", choices=["extraction", "head"], required=True)
p.add_argument("--data")
p.add_argument("--features")
p.add_argument("--size", type=int, default=28)
p.add_argument("--color-mode", default="grayscale")
p.add_argument("--batch", type=int, default=256)
p.add_argument("--epochs", type=int, default=10)
p.add_argument("--repeats", type=int, default=1)
p.add_argument("--passes", type=int, default=1)
p.add_argument("--seed", type=int, default=1)
a = p.parse_args()
keras.utils.set_random_seed(a.seed)


def extraction():
    channels = 1 if a.color_mode == "grayscale" else 3
    base = seed_base(a.size, channels)

    def timed(passes):
        started = time.perf_counter()
        n = 0
        for _ in range(passes):
            gen = ImageDataGenerator(rescale=1 / 255).flow_from_directory(
                a.data, target_size=(a.size, a.size), color_mode=a.color_mode, batch_size=a.batch, class_mode="sparse", shuffle=False
            )
            done = 0
            for batch, _ in gen:
                done += len(base.predict(batch, verbose=0))
                if done >= gen.samples:
                    break
            n += done
        return n / (time.perf_counter() - started)

    timed(1)  # warm-up: graph tracing, page cache
    rates = [timed(a.passes) for _ in range(a.repeats)]
    return dict(imagesPerSecond=rates)


def head():
    meta = json.load(open(os.path.join(a.features, "meta.json")))
    d, classes = meta["dimension"], meta["classes"]
    load = lambda name, dtype: np.fromfile(os.path.join(a.features, name), dtype=dtype)  # noqa: E731
    xt, yt = load("train.f32", "<f4").reshape(-1, d), load("train.i32", "<i4")
    xv, yv = load("val.f32", "<f4").reshape(-1, d), load("val.i32", "<i4")
    rates, accuracies = [], []
    for r in range(a.repeats + 1):
        keras.utils.set_random_seed(a.seed + r)
        started = time.perf_counter()
        model = keras.Sequential([keras.Input(shape=(d,)), layers.Dense(128, activation="relu"), layers.Dense(classes, activation="softmax")])
        model.compile(optimizer=keras.optimizers.Adam(1e-3), loss="sparse_categorical_crossentropy", metrics=["accuracy"])
        history = model.fit(xt, yt, batch_size=a.batch, epochs=a.epochs, validation_data=(xv, yv), verbose=0)
        seconds = time.perf_counter() - started
        if r == 0:
            continue  # warm-up: graph tracing
        rates.append(len(xt) * a.epochs / seconds)
        accuracies.append(float(history.history["val_accuracy"][-1]))
    return dict(rowsPerSecond=rates, valAccuracy=accuracies)


result = extraction() if a.stage == "extraction" else head()
result.update(keras=keras.__version__)
print(json.dumps(result))
