"""Keras's training step on batches already in memory, as the peer row of benchmarks/scaling.mjs:
the seed CNN with its temporary softmax (benchmarks/peers/seed_cnn.py), Adam, train_on_batch on
batches drawn once from ImageDataGenerator with the seed's augmentation. Prints one JSON line.

    python3 benchmarks/peers/keras_step.py --data DIR --size 224 --color-mode rgb [--steps 12]
        [--batch 32] [--mixed]

--mixed: Keras's mixed_bfloat16 policy (float32 softmax output), as featherstack's mixed-bfloat16.
"""
import argparse
import json
import os
import resource
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
import numpy as np  # noqa: E402
import keras  # noqa: E402
from keras import layers  # noqa: E402
from keras.src.legacy.preprocessing.image import ImageDataGenerator  # noqa: E402
from seed_cnn import seed_base  # noqa: E402

p = argparse.ArgumentParser()
p.add_argument("--data", required=True)
p.add_argument("--size", type=int, default=28)
p.add_argument("--color-mode", default="grayscale")
p.add_argument("--steps", type=int, default=12)
p.add_argument("--batch", type=int, default=32)
p.add_argument("--mixed", action="store_true")
a = p.parse_args()
keras.utils.set_random_seed(1)
if a.mixed:
    keras.mixed_precision.set_global_policy("mixed_bfloat16")
gen = ImageDataGenerator(rescale=1 / 255, shear_range=0.2, zoom_range=0.2, horizontal_flip=True).flow_from_directory(
    a.data, target_size=(a.size, a.size), color_mode=a.color_mode, batch_size=a.batch, class_mode="categorical", seed=1
)
batches = [gen[i] for i in range(min(8, len(gen)))]
base = seed_base(a.size, 1 if a.color_mode == "grayscale" else 3)
out = layers.Dense(len(gen.class_indices), activation="softmax", dtype="float32")(base.output)
model = keras.Model(base.input, out)
model.compile(optimizer="adam", loss="categorical_crossentropy", metrics=["accuracy"])
times = []
for i in range(a.steps + 2):
    x, y = batches[i % len(batches)]
    started = time.perf_counter()
    model.train_on_batch(x, y)
    times.append(time.perf_counter() - started)
measured = times[2:]
usage = resource.getrusage(resource.RUSAGE_SELF)
print(
    json.dumps(
        dict(
            imagesPerSecond=len(measured) * a.batch / sum(measured),
            msPerStep=float(np.median(measured) * 1000),
            peakRssMB=round(usage.ru_maxrss / 1024),
            userSeconds=usage.ru_utime,
            systemSeconds=usage.ru_stime,
        )
    )
)
