"""Writes the keras.applications backbone that benchmarks/backbones.mjs gives featherstack, as Keras 3
saves it: the same architecture the Keras peer (keras_backbones.py) builds, weights=None (untrained
weights cost what ImageNet's cost), include_top=False, pooling='avg'.

    python3 benchmarks/peers/save_backbone.py --arch mobilenetv2|resnet50|efficientnetb0 --size 224 --out FILE.keras
"""
import argparse
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")
import keras  # noqa: E402

ARCHS = {"mobilenetv2": "MobileNetV2", "resnet50": "ResNet50", "efficientnetb0": "EfficientNetB0"}
p = argparse.ArgumentParser()
p.add_argument("--arch", choices=sorted(ARCHS), required=True)
p.add_argument("--size", type=int, default=224)
p.add_argument("--out", required=True)
a = p.parse_args()
keras.utils.set_random_seed(1)
model = getattr(keras.applications, ARCHS[a.arch])(weights=None, include_top=False, pooling="avg", input_shape=(a.size, a.size, 3))
tmp = f"{a.out}.partial.keras"
model.save(tmp)
os.replace(tmp, a.out)
print(a.out)
