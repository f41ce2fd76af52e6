"""Golden backbones for @featherstack/core's Keras import, written by Keras 3 itself.

    python3 benchmarks/golden/keras_backbones.py --out DIR [--size 96]

Builds six keras.applications backbones (weights=None, include_top=True, classes=10) with a fixed
seed, plus a nested Functional model, a layer zoo (every layer and activation the importer maps
that the backbones do not use), a Sequential model and a model with a Lambda layer (which the
importer must refuse).
Every BatchNormalization's moving statistics, gamma and beta are randomised, and so are the
Normalization layers' mean and variance: with Keras's initial values (0 and 1) an importer that
ignored them would still pass.

Writes, under DIR:
  <name>.keras, <name>.h5         the model in Keras 3's format and in the legacy HDF5 format
  input.f32                       a batch of 2 images in [-1, 1], float32 little-endian, [2, S, S, 3]
  <name>.out.f32                  model.predict(input)
  <name>.features.f32             the output of the model's last pooling layer (the features the head reads)
  manifest.json                   names, shapes, layer names, versions and `version` (bumped when any of this changes)

The test (packages/core/test/goldens.ts) runs this once and caches DIR by `version`. The whole run
takes about a minute on 2 cores: every model predicts 2 images once.
"""
import argparse
import json
import os
import sys
import time

# oneDNN's kernels raise SIGFPE on some CPUs this runs on, and change rounding; the importer is
# compared against TensorFlow's reference kernels. Must be set before tensorflow is imported.
os.environ["TF_ENABLE_ONEDNN_OPTS"] = "0"
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np  # noqa: E402

VERSION = 1
SEED = 1234
BACKBONES = ["MobileNetV2", "MobileNetV3Small", "ResNet50", "EfficientNetB0", "InceptionV3", "DenseNet121"]


def sublayers(model):
    """Every layer of the model, nested Functional models' layers included."""
    for layer in model.layers:
        yield layer
        if hasattr(layer, "layers"):
            yield from sublayers(layer)


def randomise_statistics(model, rng):
    """Moves BatchNormalization and Normalization state away from Keras's identity defaults."""
    import keras

    for layer in sublayers(model):
        if isinstance(layer, keras.layers.BatchNormalization):
            c = layer.moving_mean.shape
            layer.moving_mean.assign(rng.normal(0, 0.1, c).astype("float32"))
            layer.moving_variance.assign(rng.uniform(0.5, 1.5, c).astype("float32"))
            if layer.gamma is not None:
                layer.gamma.assign(rng.uniform(0.8, 1.2, c).astype("float32"))
            if layer.beta is not None:
                layer.beta.assign(rng.normal(0, 0.05, c).astype("float32"))
        elif isinstance(layer, keras.layers.Normalization) and layer.input_mean is None:
            c = layer.adapt_mean.shape
            layer.adapt_mean.assign(rng.normal(0.4, 0.1, c).astype("float32"))
            layer.adapt_variance.assign(rng.uniform(0.05, 0.2, c).astype("float32"))
            layer.finalize_state()


def backbone(name, size):
    import keras

    build = getattr(keras.applications, name)
    return build(input_shape=(size, size, 3), weights=None, include_top=True, classes=10)


def nested(size):
    """MobileNetV2 as a layer of a Functional model, with preprocessing in front and a small head."""
    import keras
    from keras import layers

    inputs = keras.Input((size, size, 3), name="image")
    x = layers.Rescaling(0.5, offset=0.25, name="scale")(inputs)
    x = layers.Normalization(mean=[0.1, 0.2, 0.3], variance=[0.5, 1.0, 2.0], name="normalize")(x)
    base = keras.applications.MobileNetV2(input_shape=(size, size, 3), include_top=False, weights=None)
    x = base(x)
    x = layers.GlobalAveragePooling2D(keepdims=True, name="pool")(x)
    x = layers.Dropout(0.2, name="dropout")(x)
    x = layers.Flatten(name="flatten")(x)
    x = layers.Dense(16, activation="relu", name="hidden")(x)
    outputs = layers.Dense(10, activation="softmax", name="predictions")(x)
    return keras.Model(inputs, outputs, name="nested")


def zoo(size):
    """Every layer and activation the importer maps that the backbones leave out, in one graph."""
    import keras
    from keras import layers

    inputs = keras.Input((size, size, 3), name="image")
    x = layers.Cropping2D(((2, 1), (1, 2)), name="crop")(inputs)
    x = layers.SeparableConv2D(8, 3, padding="same", depth_multiplier=2, name="sep")(x)
    x = layers.LeakyReLU(negative_slope=0.1, name="leaky")(x)
    x = layers.MaxPooling2D(2, name="maxpool")(x)
    branches = []
    for i, act in enumerate(["gelu", "silu", "elu", "selu", "softplus", "softsign", "tanh", "sigmoid", "hard_sigmoid", "hard_silu", "leaky_relu", "relu6"]):
        branches.append(layers.Conv2D(4, 1, activation=act, name=f"conv_{act}")(x))
    y = layers.Concatenate(name="concat")(branches)
    a = layers.ReLU(max_value=2.0, negative_slope=0.1, threshold=0.05, name="relu_full")(y)
    b = layers.Softmax(axis=-1, name="softmax_layer")(y)
    c = layers.Subtract(name="subtract")([a, b])
    d = layers.Average(name="average")([a, b, c])
    e = layers.Maximum(name="maximum")([a, d])
    f = layers.Minimum(name="minimum")([c, e])
    g = layers.AveragePooling2D(3, strides=2, padding="same", name="avgpool")(f)
    maxed = layers.GlobalMaxPooling2D(name="gmp")(g)
    kept = layers.GlobalMaxPooling2D(keepdims=True, name="gmp_keep")(g)
    kept = layers.Reshape((g.shape[-1],), name="reshape")(kept)
    x = layers.Concatenate(name="features")([maxed, kept])
    outputs = layers.Dense(10, activation="softmax", name="predictions")(x)
    return keras.Model(inputs, outputs, name="zoo")


def sequential(size):
    """A Sequential model: its InputLayer and weight layout differ from a Functional one's."""
    import keras
    from keras import layers

    return keras.Sequential(
        [
            keras.Input((size, size, 3)),
            layers.Conv2D(8, 3, strides=2, name="conv"),
            layers.BatchNormalization(name="bn"),
            layers.ReLU(6.0, name="relu6"),
            layers.GlobalAveragePooling2D(keepdims=True, name="pool"),
            layers.Flatten(name="flatten"),
            layers.Dense(10, activation="softmax", name="predictions"),
        ],
        name="sequential",
    )


def with_lambda(size):
    import keras
    from keras import layers

    inputs = keras.Input((size, size, 3), name="image")
    x = layers.Conv2D(4, 3, name="conv")(inputs)
    x = layers.Lambda(lambda t: t * 2.0, name="double")(x)
    outputs = layers.GlobalAveragePooling2D(name="pool")(x)
    return keras.Model(inputs, outputs, name="with_lambda")


def last_pooling(model):
    """The name of the last global pooling layer: the features the classifier head reads."""
    import keras

    pools = [layer.name for layer in model.layers if isinstance(layer, (keras.layers.GlobalAveragePooling2D, keras.layers.GlobalMaxPooling2D))]
    return pools[-1] if pools else None


def write_f32(path, array):
    np.ascontiguousarray(array, dtype="<f4").tofile(path)


def golden(model, name, x, out, legacy=True):
    """Saves one model in both formats, with its outputs on x; returns its manifest entry."""
    import keras

    started = time.time()
    model.save(os.path.join(out, f"{name}.keras"))
    if legacy:
        model.save(os.path.join(out, f"{name}.h5"))
    y = model.predict(x, batch_size=len(x), verbose=0)
    write_f32(os.path.join(out, f"{name}.out.f32"), y)
    entry = dict(
        name=name,
        files=dict(keras=f"{name}.keras", h5=f"{name}.h5" if legacy else None, output=f"{name}.out.f32"),
        outputShape=list(y.shape),
        outputStd=float(np.std(y)),
        layers=len(model.layers),
        outputLayer=model.layers[-1].name,
        layerClasses=sorted({layer.__class__.__name__ for layer in sublayers(model)}),
    )
    pool = last_pooling(model)
    if pool is not None:
        features = keras.Model(model.inputs, model.get_layer(pool).output).predict(x, batch_size=len(x), verbose=0)
        write_f32(os.path.join(out, f"{name}.features.f32"), features)
        entry.update(featuresLayer=pool, featuresShape=list(features.shape), featuresStd=float(np.std(features)))
        entry["files"]["features"] = f"{name}.features.f32"
    print(f"{name}: {len(model.layers)} layers, saved and predicted in {time.time() - started:.1f} s", file=sys.stderr)
    return entry


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", required=True)
    parser.add_argument("--size", type=int, default=96)
    args = parser.parse_args()
    if args.size < 75:
        parser.error(f"--size must be at least 75 (InceptionV3's smallest input), received {args.size}")
    started = time.time()
    import keras
    import tensorflow as tf

    keras.utils.set_random_seed(SEED)
    rng = np.random.default_rng(SEED)
    os.makedirs(args.out, exist_ok=True)
    x = rng.uniform(-1, 1, (2, args.size, args.size, 3)).astype("float32")
    write_f32(os.path.join(args.out, "input.f32"), x)

    models = []
    for name in BACKBONES:
        model = backbone(name, args.size)
        randomise_statistics(model, rng)
        models.append(golden(model, name, x, args.out))
        keras.backend.clear_session()
    for name, build in (("nested", nested), ("zoo", zoo), ("sequential", sequential)):
        model = build(args.size)
        randomise_statistics(model, rng)
        models.append(golden(model, name, x, args.out))
    with_lambda(args.size).save(os.path.join(args.out, "lambda.keras"))

    manifest = dict(
        version=VERSION,
        generator="benchmarks/golden/keras_backbones.py",
        seed=SEED,
        size=args.size,
        input=dict(file="input.f32", shape=list(x.shape), dtype="float32"),
        models=models,
        refused=[dict(name="lambda", file="lambda.keras", layer="double", className="Lambda")],
        keras=keras.__version__,
        tensorflow=tf.__version__,
        environment=dict(TF_ENABLE_ONEDNN_OPTS=os.environ["TF_ENABLE_ONEDNN_OPTS"]),
        seconds=round(time.time() - started, 1),
    )
    # Written last: its presence marks a complete directory.
    with open(os.path.join(args.out, "manifest.json"), "w") as f:
        json.dump(manifest, f, indent=1)
    print(f"wrote {len(models)} models to {args.out} in {manifest['seconds']} s", file=sys.stderr)


if __name__ == "__main__":
    main()
