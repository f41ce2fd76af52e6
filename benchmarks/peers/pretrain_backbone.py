"""Writes a keras.applications backbone that has learned something, for checks that need features
with signal (weights=None gives MobileNetV2 features of ~1e-11, which no head can learn from, and
no hub is reachable here): the architecture trained by Keras itself — BatchNormalization in
training mode, a softmax top, Adam 1e-3 — for a few epochs on a directory of photos, then saved
without its top (include_top=False, pooling='avg'), as save_backbone.py saves the untrained one.

    python3 benchmarks/peers/pretrain_backbone.py --arch mobilenetv2 --data photos/train --epochs 3 --out FILE.keras
"""
import argparse
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")
import keras  # noqa: E402

ARCHS = {"mobilenetv2": ("MobileNetV2", "mobilenet_v2"), "resnet50": ("ResNet50", "resnet50")}
p = argparse.ArgumentParser()
p.add_argument("--arch", choices=sorted(ARCHS), required=True)
p.add_argument("--data", required=True)
p.add_argument("--epochs", type=int, default=3)
p.add_argument("--out", required=True)
a = p.parse_args()
keras.utils.set_random_seed(1)
name, module = ARCHS[a.arch]
preprocess = getattr(keras.applications, module).preprocess_input
data = keras.utils.image_dataset_from_directory(a.data, image_size=(224, 224), batch_size=32, label_mode="categorical", seed=1)
classes = len(data.class_names)
data = data.map(lambda x, y: (preprocess(x), y))
base = getattr(keras.applications, name)(weights=None, include_top=False, pooling="avg", input_shape=(224, 224, 3))
# Moving statistics that follow the batches closely (Keras's 0.99 leaves them far from the data
# after a few epochs, and a frozen base then maps every image to one feature vector).
for layer in base.layers:
    if isinstance(layer, keras.layers.BatchNormalization):
        layer.momentum = 0.5
inputs = keras.Input((224, 224, 3))
model = keras.Model(inputs, keras.layers.Dense(classes, activation="softmax")(base(inputs, training=True)))
model.compile(optimizer=keras.optimizers.Adam(1e-3), loss="categorical_crossentropy", metrics=["accuracy"])
model.fit(data, epochs=a.epochs, verbose=2)
tmp = f"{a.out}.partial.keras"
base.save(tmp)
os.replace(tmp, a.out)
print(a.out)
