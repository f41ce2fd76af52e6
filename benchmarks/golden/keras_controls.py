"""Keras's own decisions for the training controls featherstack mirrors (packages/common/src/training.ts):
ReduceLROnPlateau on fixed sequences of scores, and the CosineDecay / staircase ExponentialDecay
schedules. Writes packages/common/test/fixtures/keras-controls.json (committed; rerun to refresh):

    python3 benchmarks/golden/keras_controls.py --out packages/common/test/fixtures/keras-controls.json
"""
import argparse
import json
import math
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
import keras  # noqa: E402
import numpy as np  # noqa: E402

parser = argparse.ArgumentParser()
parser.add_argument("--out", required=True)
args = parser.parse_args()

rng = np.random.default_rng(20261203)


def plateau_case(name, scores, monitor="val_loss", lr=1e-3, **kwargs):
    model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
    model.compile(optimizer=keras.optimizers.Adam(lr), loss="mse")
    callback = keras.callbacks.ReduceLROnPlateau(monitor=monitor, verbose=0, **kwargs)
    callback.set_model(model)
    callback.on_train_begin()
    rates = []
    for epoch, score in enumerate(scores):
        rates.append(float(keras.ops.convert_to_numpy(model.optimizer.learning_rate)))
        callback.on_epoch_end(epoch, {monitor: float(score)})
    return {"name": name, "monitor": monitor, "learningRate": lr, "options": kwargs, "scores": [float(s) for s in scores], "rates": rates}


def noisy_plateau(n, start, floor, noise):
    return [max(floor, start * math.exp(-e / 4)) + float(rng.normal(0, noise)) for e in range(n)]


plateaus = [
    plateau_case("defaults, a loss that flattens", noisy_plateau(40, 2.0, 0.6, 0.01)),
    plateau_case("patience 2, factor 0.5", noisy_plateau(30, 1.5, 0.4, 0.02), patience=2, factor=0.5),
    plateau_case("patience 1, cooldown 2, min_lr", noisy_plateau(30, 1.0, 0.5, 0.01), patience=1, factor=0.2, cooldown=2, min_lr=2e-5),
    plateau_case("min_delta larger than the gains", [1.0 - 0.001 * e for e in range(20)], patience=3, min_delta=0.01, factor=0.5),
    plateau_case("val_acc rises then stalls (max mode)", [min(0.9, 0.3 + 0.1 * e) + float(rng.normal(0, 0.005)) for e in range(25)], monitor="val_acc", patience=3, factor=0.3, mode="max"),
    plateau_case("exact ties do not improve", [0.5] * 12, patience=2, factor=0.5, min_delta=0.0),
]

cosine = []
for lr, steps, alpha in [(1e-3, 10, 0.0), (0.1, 7, 0.05), (3e-4, 1, 0.0)]:
    schedule = keras.optimizers.schedules.CosineDecay(lr, decay_steps=steps, alpha=alpha)
    cosine.append({"learningRate": lr, "steps": steps, "alpha": alpha, "rates": [float(schedule(t)) for t in range(steps + 2)]})

step = []
for lr, every, factor in [(1e-3, 3, 0.5), (0.01, 1, 0.9)]:
    schedule = keras.optimizers.schedules.ExponentialDecay(lr, decay_steps=every, decay_rate=factor, staircase=True)
    step.append({"learningRate": lr, "every": every, "factor": factor, "rates": [float(schedule(t)) for t in range(12)]})

with open(args.out, "w") as f:
    json.dump({"keras": keras.__version__, "plateaus": plateaus, "cosine": cosine, "step": step}, f, indent=1)
    f.write("\n")
print(args.out)
