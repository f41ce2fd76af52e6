"""Keras peer for `featherstack run --base`: Keras's feature-extraction recipe for transfer learning,
as its guide writes it, timed end to end. Prints one JSON line.

    python3 benchmarks/peers/keras_transfer.py --data DIR --arch mobilenetv2 [--size 224] [--batch 32] [--epochs 5] [--onednn 0|1]

DIR holds train/<class>/ and val/<class>/. The frozen backbone (keras.applications, weights=None,
include_top=False, pooling='avg') predicts the features of both splits over
ImageDataGenerator(preprocessing_function=preprocess_input).flow_from_directory, then the seed's
head (Dense 128 relu → softmax, Adam 1e-3, batch 32) fits on the training features with the
validation features evaluated every epoch. `seconds` runs from the first flow to the end of fit
(what featherstack's run reports as `total`); `processSeconds` includes the imports.
"""
import argparse
import json
import os
import resource
import time

START = time.perf_counter()
p = argparse.ArgumentParser()
p.add_argument("--data", required=True)
p.add_argument("--arch", choices=["mobilenetv2", "resnet50", "efficientnetb0"], default="mobilenetv2")
p.add_argument("--size", type=int, default=224)
p.add_argument("--batch", type=int, default=32)
p.add_argument("--epochs", type=int, default=5)
p.add_argument("--onednn", type=int, choices=[0, 1], default=1)
a = p.parse_args()
os.environ["TF_ENABLE_ONEDNN_OPTS"] = str(a.onednn)
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
import keras  # noqa: E402
from keras import layers  # noqa: E402
from keras.src.legacy.preprocessing.image import ImageDataGenerator  # noqa: E402

ARCHS = {"mobilenetv2": ("MobileNetV2", "mobilenet_v2"), "resnet50": ("ResNet50", "resnet50"), "efficientnetb0": ("EfficientNetB0", "efficientnet")}
cls, module = ARCHS[a.arch]
preprocess = getattr(keras.applications, module).preprocess_input
for split in ("train", "val"):
    if not os.path.isdir(os.path.join(a.data, split)):
        raise SystemExit(f"keras_transfer.py: {os.path.join(a.data, split)} is not a directory of class folders")
keras.utils.set_random_seed(1)
t0 = time.perf_counter()
base = getattr(keras.applications, cls)(weights=None, include_top=False, pooling="avg", input_shape=(a.size, a.size, 3))
base.trainable = False
idg = ImageDataGenerator(preprocessing_function=preprocess)
flow = lambda split: idg.flow_from_directory(os.path.join(a.data, split), target_size=(a.size, a.size), batch_size=a.batch, class_mode="sparse", shuffle=False)
train, val = flow("train"), flow("val")
train_features = base.predict(train, verbose=0)
val_features = base.predict(val, verbose=0)
t1 = time.perf_counter()
head = keras.Sequential([keras.Input((train_features.shape[1],)), layers.Dense(128, activation="relu"), layers.Dense(train.num_classes, activation="softmax")])
head.compile(optimizer=keras.optimizers.Adam(1e-3), loss="sparse_categorical_crossentropy", metrics=["accuracy"])
history = head.fit(train_features, train.classes, batch_size=32, epochs=a.epochs, validation_data=(val_features, val.classes), verbose=0)
t2 = time.perf_counter()
usage = resource.getrusage(resource.RUSAGE_SELF)
print(
    json.dumps(
        dict(
            arch=a.arch,
            images=dict(train=train.samples, val=val.samples),
            seconds=t2 - t0,
            extractSeconds=t1 - t0,
            headSeconds=t2 - t1,
            processSeconds=time.perf_counter() - START,
            valAccuracy=float(history.history["val_accuracy"][-1]),
            peakRssMB=round(usage.ru_maxrss / 1024),
            userSeconds=round(usage.ru_utime, 1),
            systemSeconds=round(usage.ru_stime, 1),
            onednn=a.onednn,
            keras=keras.__version__,
        )
    )
)
