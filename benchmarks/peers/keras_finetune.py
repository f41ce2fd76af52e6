"""Keras's fine-tuning recipe (the transfer-learning guide's second phase) timed on a directory of
photos: a keras.applications base (weights=None) made trainable but called with training=False, so
that every BatchNormalization stays in inference mode; a softmax top; Adam at 1e-5; batch 32;
ImageDataGenerator with the seed's augmentation and preprocess_input. With --bn-train the base is
called without training=False, so that fit trains BatchNormalization on batch statistics. Prints one
JSON line with the images/s of each epoch and peak RSS.

    python3 benchmarks/peers/keras_finetune.py --data photos/train --arch mobilenetv2 --epochs 2
"""
import argparse
import json
import os
import resource
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
import keras  # noqa: E402
from tensorflow.keras.preprocessing.image import ImageDataGenerator  # noqa: E402 (Keras 3 dropped it; tf.keras keeps it)

parser = argparse.ArgumentParser()
parser.add_argument("--data", required=True)
parser.add_argument("--arch", default="mobilenetv2", choices=["mobilenetv2", "resnet50"])
parser.add_argument("--epochs", type=int, default=2)
parser.add_argument("--batch", type=int, default=32)
parser.add_argument("--bn-train", action="store_true")
args = parser.parse_args()

apps = keras.applications
arch, preprocess = {
    "mobilenetv2": (apps.MobileNetV2, apps.mobilenet_v2.preprocess_input),
    "resnet50": (apps.ResNet50, apps.resnet50.preprocess_input),
}[args.arch]
generator = ImageDataGenerator(shear_range=0.2, zoom_range=0.2, horizontal_flip=True, preprocessing_function=preprocess)
flow = generator.flow_from_directory(args.data, target_size=(224, 224), batch_size=args.batch, class_mode="categorical", seed=1)
base = arch(weights=None, include_top=False, pooling="avg", input_shape=(224, 224, 3))
base.trainable = True
inputs = keras.Input((224, 224, 3))
outputs = keras.layers.Dense(flow.num_classes, activation="softmax")(base(inputs) if args.bn_train else base(inputs, training=False))
model = keras.Model(inputs, outputs)
model.compile(optimizer=keras.optimizers.Adam(1e-5), loss="categorical_crossentropy", metrics=["accuracy"])
rates = []
for epoch in range(args.epochs):
    started = time.perf_counter()
    model.fit(flow, epochs=1, verbose=0)
    rates.append(flow.samples / (time.perf_counter() - started))
usage = resource.getrusage(resource.RUSAGE_SELF)
print(json.dumps({"arch": args.arch, "bnTrain": args.bn_train, "images": flow.samples, "imagesPerSecond": [round(r, 1) for r in rates], "peakRssMB": round(usage.ru_maxrss / 1024), "userSeconds": round(usage.ru_utime, 1), "systemSeconds": round(usage.ru_stime, 1), "keras": keras.__version__}))
