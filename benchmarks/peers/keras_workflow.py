"""The seed's stacked workflow in Keras, run the way featherstack runs it, as the peer for
benchmarks/workflow.mjs. Prints one JSON line with stage times and validation accuracy.

    python3 benchmarks/peers/keras_workflow.py --data DIR [--size 28] [--color-mode grayscale]
        [--base-epochs 1] [--head-epochs 5] [--batch 32]

DIR holds train/ and val/ class folders. As in the seed: ImageDataGenerator (rescale 1/255,
shear_range 0.2, zoom_range 0.2, horizontal_flip) → flow_from_directory → the seed's CNN
(conv32 → pool → conv64 → pool → dense128 → dense64) trained for --base-epochs, then features
extracted batch by batch with model.predict on non-augmenting, non-shuffling generators, then the
head (dense128 → softmax) trained for --head-epochs with the validation features. The seed's
listing compiles the 64-unit ReLU base directly against one-hot labels, which cannot train; as
featherstack does, the base trains through a temporary softmax layer on its feature output.
"""
import argparse
import json
import os
import resource
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
import keras  # noqa: E402
from keras import layers  # noqa: E402
from keras.src.legacy.preprocessing.image import ImageDataGenerator  # noqa: E402
from seed_cnn import seed_base  # noqa: E402

p = argparse.ArgumentParser()
p.add_argument("--data", required=True)
p.add_argument("--size", type=int, default=28)
p.add_argument("--color-mode", default="grayscale")
p.add_argument("--base-epochs", type=int, default=1)
p.add_argument("--head-epochs", type=int, default=5)
p.add_argument("--batch", type=int, default=32)
p.add_argument("--seed", type=int, default=42)
a = p.parse_args()
keras.utils.set_random_seed(a.seed)
channels = 1 if a.color_mode == "grayscale" else 3

t0 = time.perf_counter()
train_gen = ImageDataGenerator(rescale=1 / 255, shear_range=0.2, zoom_range=0.2, horizontal_flip=True).flow_from_directory(
    os.path.join(a.data, "train"), target_size=(a.size, a.size), color_mode=a.color_mode, batch_size=a.batch, class_mode="categorical", seed=a.seed
)
plain = ImageDataGenerator(rescale=1 / 255)
train_plain = plain.flow_from_directory(os.path.join(a.data, "train"), target_size=(a.size, a.size), color_mode=a.color_mode, batch_size=a.batch, class_mode="categorical", shuffle=False)
val_plain = plain.flow_from_directory(os.path.join(a.data, "val"), target_size=(a.size, a.size), color_mode=a.color_mode, batch_size=a.batch, class_mode="categorical", shuffle=False)
classes = len(train_gen.class_indices)

base = seed_base(a.size, channels)
trainer = keras.Model(base.input, layers.Dense(classes, activation="softmax")(base.output))
trainer.compile(optimizer="adam", loss="categorical_crossentropy", metrics=["accuracy"])
t1 = time.perf_counter()
trainer.fit(train_gen, steps_per_epoch=len(train_gen), epochs=a.base_epochs, verbose=0)
t2 = time.perf_counter()


def extract(model, generator):
    # The seed's extract_features: model.predict batch by batch.
    n = generator.samples
    out = np.zeros((n, 64), dtype="float32")
    labels = np.zeros((n,), dtype="int32")
    i = 0
    for inputs_batch, labels_batch in generator:
        f = model.predict(inputs_batch, verbose=0)
        out[i : i + len(f)] = f
        labels[i : i + len(f)] = np.argmax(labels_batch, axis=1)
        i += len(f)
        if i >= n:
            break
    return out, labels


train_features, train_labels = extract(base, train_plain)
val_features, val_labels = extract(base, val_plain)
t3 = time.perf_counter()
head = keras.Sequential([keras.Input(shape=(64,)), layers.Dense(128, activation="relu"), layers.Dense(classes, activation="softmax")])
head.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
history = head.fit(train_features, train_labels, epochs=a.head_epochs, validation_data=(val_features, val_labels), verbose=0)
t4 = time.perf_counter()
usage = resource.getrusage(resource.RUSAGE_SELF)
print(
    json.dumps(
        dict(
            val_accuracy=round(float(history.history["val_accuracy"][-1]), 4),
            seconds=dict(total=round(t4 - t0, 1), setup=round(t1 - t0, 1), base_train=round(t2 - t1, 1), extract=round(t3 - t2, 1), head_train=round(t4 - t3, 1)),
            train_images=train_gen.samples,
            val_images=val_plain.samples,
            tensorflow=tf.__version__,
            keras=keras.__version__,
            # Peak RSS and CPU of the whole process (ru_maxrss is in KiB on Linux).
            cpu=dict(userSeconds=round(usage.ru_utime, 1), systemSeconds=round(usage.ru_stime, 1), peakRssMB=round(usage.ru_maxrss / 1024)),
            allocator="bfc" if os.environ.get("TF_CPU_ALLOCATOR_USE_BFC", "").lower() in ("1", "true") else "system",
        )
    )
)
