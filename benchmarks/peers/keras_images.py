"""Peer baselines for benchmarks/images.mjs: the same files, size and augmentation through
Keras's ImageDataGenerator.flow_from_directory and through tf.data (image_dataset_from_directory
+ Keras preprocessing layers, AUTOTUNE). Prints one JSON line.

    python3 benchmarks/peers/keras_images.py --mode idg|tfdata --data DIR --size 224 [--color-mode rgb] [--epochs 1]

The seed's augmentation: rescale 1/255, shear 0.2 (Keras's shear_range is in degrees), zoom 0.2,
horizontal flip. tf.data has no shear layer before Keras 3.8; when RandomShear is missing it runs
without shear and says so in the output.
"""
import argparse
import json
import os
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
import tensorflow as tf  # noqa: E402
import keras  # noqa: E402

p = argparse.ArgumentParser()
p.add_argument("--mode", choices=["idg", "tfdata"], required=True)
p.add_argument("--data", required=True)
p.add_argument("--size", type=int, default=224)
p.add_argument("--color-mode", default="rgb")
p.add_argument("--batch", type=int, default=32)
p.add_argument("--epochs", type=int, default=1)
a = p.parse_args()

def timed(run_epoch):
    run_epoch()  # warm-up: file cache, graph tracing, thread pools
    start = time.perf_counter()
    n = 0
    for _ in range(a.epochs):
        n += run_epoch()
    return n / (time.perf_counter() - start)

notes = []
if a.mode == "idg":
    from keras.src.legacy.preprocessing.image import ImageDataGenerator

    gen = ImageDataGenerator(rescale=1 / 255, shear_range=0.2, zoom_range=0.2, horizontal_flip=True)
    flow = gen.flow_from_directory(a.data, target_size=(a.size, a.size), color_mode=a.color_mode, batch_size=a.batch, seed=1)

    def run_epoch():
        n = 0
        for i in range(len(flow)):
            x, _ = flow[i]
            n += len(x)
        flow.on_epoch_end()
        return n
else:
    ds = keras.utils.image_dataset_from_directory(
        a.data, image_size=(a.size, a.size), color_mode=a.color_mode, batch_size=a.batch, interpolation="nearest", shuffle=True, seed=1, verbose=False
    )
    layers = [keras.layers.Rescaling(1 / 255), keras.layers.RandomZoom(0.2, seed=1), keras.layers.RandomFlip("horizontal", seed=1)]
    if hasattr(keras.layers, "RandomShear"):
        # Keras's shear_range=0.2 is 0.2 degrees; RandomShear takes a fraction of the size, so the
        # closest equivalent is tan(0.2°) ≈ 0.0035.
        layers.insert(1, keras.layers.RandomShear(x_factor=0.0035, seed=1))
    else:
        notes.append("RandomShear unavailable: tf.data row runs without shear")
    augment = keras.Sequential(layers)
    ds = ds.map(lambda x, y: (augment(x, training=True), y), num_parallel_calls=tf.data.AUTOTUNE).prefetch(tf.data.AUTOTUNE)

    def run_epoch():
        n = 0
        for x, _ in ds:
            n += int(x.shape[0])
        return n

rate = timed(run_epoch)
print(json.dumps(dict(mode=a.mode, imagesPerSecond=round(rate, 1), tensorflow=tf.__version__, keras=keras.__version__, notes=notes)))
