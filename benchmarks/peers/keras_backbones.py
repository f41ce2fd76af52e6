"""Keras peer for feature extraction through a stock backbone: the recipe a Keras user writes to turn
a folder of photographs into pooled feature vectors. Prints one JSON line.

    python3 benchmarks/peers/keras_backbones.py --data DIR --arch mobilenetv2|resnet50|efficientnetb0
        [--size 224] [--batch 32] [--repeats 1] [--loader idg|tfdata] [--onednn 0|1]

DIR holds one folder of images per class (DIR/<class>/*.jpg). The backbone is
keras.applications.<Arch>(weights=None, include_top=False, pooling='avg') at size×size×3; untrained
weights cost the same as ImageNet's. Each architecture's own preprocess_input is applied.

--loader idg: ImageDataGenerator(preprocessing_function=preprocess_input).flow_from_directory(...,
    class_mode=None, shuffle=False) and model.predict(generator); labels are the generator's
    `classes`, in file order. Images are resized by PIL with Keras's default, nearest.
--loader tfdata: keras.utils.image_dataset_from_directory(..., shuffle=False) → .map(preprocess_input,
    AUTOTUNE) → .prefetch(AUTOTUNE) and model.predict(dataset). Resized by tf.image, bilinear.
--onednn: TF_ENABLE_ONEDNN_OPTS for this process (set before TensorFlow loads). ResNet50's predict
    has been seen to die of SIGFPE with oneDNN on some CPUs; the caller chooses, the output says which
    was used, and a crash dumps a Python traceback to stderr (faulthandler) and exits by the signal.

One untimed warm-up predict over the first batch and, when the corpus does not divide into whole
batches, a slice of it the size of the last batch (both of predict's tracings, thread pools), then
`repeats` timed passes over the whole directory; the loader is built once, outside the timing.
Reports per repeat images/s, wall seconds and CPU seconds (user + system, whole process); for the
whole process peak RSS, user/system CPU seconds and minor page faults, read before the FLOP count,
which runs last (`children` holds the same for reaped child processes, here only helpers that the
imports fork); GFLOPs per image (2 × multiply-adds of the convolutions and dense layers, biases and
elementwise ops left out, as torch.utils.flop_counter counts them in torch_backbones.py) and the
feature dimension.
"""
import argparse
import faulthandler
import json
import os
import resource
import sys
import time

ARCHS = {
    # --arch: (keras.applications class, module holding its preprocess_input)
    "mobilenetv2": ("MobileNetV2", "mobilenet_v2"),
    "resnet50": ("ResNet50", "resnet50"),
    "efficientnetb0": ("EfficientNetB0", "efficientnet"),
}
# What each loader lists as an image (flow_from_directory's white list, image_dataset_from_directory's
# ALLOWLIST_FORMATS), so that an empty corpus is refused here rather than as a zero-length predict.
EXTENSIONS = {"idg": (".png", ".jpg", ".jpeg", ".bmp", ".ppm", ".tif", ".tiff"), "tfdata": (".bmp", ".gif", ".jpeg", ".jpg", ".png")}

p = argparse.ArgumentParser(description="Keras backbone feature-extraction peer (prints one JSON line)")
p.add_argument("--data", required=True)
p.add_argument("--arch", choices=sorted(ARCHS), required=True)
p.add_argument("--size", type=int, default=224)
p.add_argument("--batch", type=int, default=32)
p.add_argument("--repeats", type=int, default=1)
p.add_argument("--loader", choices=["idg", "tfdata"], default="idg")
p.add_argument("--onednn", type=int, choices=[0, 1], default=1)
a = p.parse_args()
for name in ("size", "batch", "repeats"):
    if getattr(a, name) < 1:
        p.error(f"--{name} must be a positive integer, received {getattr(a, name)}")


def has_images(root, extensions):
    """True when some class folder under root holds a file the loader would read (both loaders walk
    class folders recursively and ignore files lying in root itself)."""
    for entry in sorted(os.scandir(root), key=lambda e: e.name):
        if entry.is_dir():
            for _, _, files in os.walk(entry.path):
                if any(f.lower().endswith(extensions) for f in files):
                    return True
    return False


# Refused before TensorFlow loads (seconds), with argparse's usage line and exit status 2.
if not os.path.isdir(a.data):
    p.error(f"--data {a.data}: no such directory")
if not has_images(a.data, EXTENSIONS[a.loader]):
    p.error(f"--data {a.data}: no images in its class folders (expected {a.data}/<class>/*.jpg; {a.loader} reads {', '.join(EXTENSIONS[a.loader])})")

# oneDNN's graph rewrites are chosen when TensorFlow loads, so the variable must be set before import.
os.environ["TF_ENABLE_ONEDNN_OPTS"] = str(a.onednn)
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
faulthandler.enable()  # a SIGFPE/SIGSEGV inside a kernel leaves a traceback on stderr
import tensorflow as tf  # noqa: E402
import keras  # noqa: E402

keras.utils.set_random_seed(1)
class_name, module_name = ARCHS[a.arch]
preprocess_input = getattr(keras.applications, module_name).preprocess_input
model = getattr(keras.applications, class_name)(weights=None, include_top=False, pooling="avg", input_shape=(a.size, a.size, 3))

if a.loader == "idg":
    # The public path a TF 2.16+ user imports; the same class as keras.src.legacy's.
    from tensorflow.keras.preprocessing.image import ImageDataGenerator

    # flow_from_directory prints "Found N images…" on stdout, which must carry only the JSON line.
    stdout, sys.stdout = sys.stdout, sys.stderr
    try:
        loader = ImageDataGenerator(preprocessing_function=preprocess_input).flow_from_directory(
            a.data, target_size=(a.size, a.size), batch_size=a.batch, class_mode=None, shuffle=False
        )
    finally:
        sys.stdout = stdout
    images, classes, resize = loader.samples, loader.num_classes, "PIL nearest"
else:
    files = keras.utils.image_dataset_from_directory(a.data, image_size=(a.size, a.size), batch_size=a.batch, shuffle=False, verbose=False)
    images, classes, resize = len(files.file_paths), len(files.class_names), "tf.image bilinear"
    loader = files.map(lambda x, y: (preprocess_input(x), y), num_parallel_calls=tf.data.AUTOTUNE).prefetch(tf.data.AUTOTUNE)


def cpu_seconds():
    t = os.times()
    return t.user + t.system + t.children_user + t.children_system


# Warm-up through the same kind of loader: predict's step function is traced for the first batch's
# shape and traced again, with the batch size relaxed, when a smaller last batch arrives. Both shapes
# are shown here (the first batch and a slice of it the size of the last), so that neither tracing
# lands in a timed pass.
tail = images % a.batch
if a.loader == "idg":

    class Warmup(keras.utils.PyDataset):
        def __init__(self, first):
            super().__init__()
            self.batches = [first, first[:tail]] if tail else [first]

        def __len__(self):
            return len(self.batches)

        def __getitem__(self, i):
            return self.batches[i]

    model.predict(Warmup(loader[0]), verbose=0)
else:
    warmup = loader.take(1).cache()
    if tail:
        warmup = warmup.concatenate(warmup.map(lambda x, y: (x[:tail], y[:tail])))
    model.predict(warmup, verbose=0)
# A tf.function on the TensorFlow backend; its tracing count tells whether the warm-up sufficed.
tracings = getattr(model.predict_function, "experimental_get_tracing_count", lambda: None)
traced = tracings()
rates, seconds, cpu = [], [], []
for _ in range(a.repeats):
    c0, t0 = cpu_seconds(), time.perf_counter()
    features = model.predict(loader, verbose=0)
    wall = time.perf_counter() - t0
    if len(features) != images:
        raise RuntimeError(f"predict returned {len(features)} feature rows for {images} images")
    rates.append(round(images / wall, 2))
    seconds.append(round(wall, 3))
    cpu.append(round(cpu_seconds() - c0, 2))
# Read before the FLOP count, so that it is not in the totals.
usage, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
notes = []
if tracings() != traced:
    notes.append("predict was traced again inside a timed pass: the first rate includes tracing")


def gflops_per_image(m):
    """2 × multiply-adds of Conv2D, DepthwiseConv2D and Dense layers at batch 1, from each layer's
    kernel and output shapes (keras.applications backbones are flat functional models)."""
    macs = 0
    for layer in m.layers:
        if isinstance(layer, (keras.layers.Conv2D, keras.layers.DepthwiseConv2D, keras.layers.Dense)):
            positions = 1
            for d in layer.output.shape[1:-1]:
                positions *= d
            # Conv2D (kh, kw, cin/groups, cout), DepthwiseConv2D (kh, kw, cin, multiplier),
            # Dense (in, out): one multiply-add per kernel element per output position.
            per_position = 1
            for d in layer.kernel.shape:
                per_position *= d
            macs += positions * per_position
    return round(2 * macs / 1e9, 3)


print(
    json.dumps(
        dict(
            framework="keras",
            arch=a.arch,
            loader=a.loader,
            size=a.size,
            batch=a.batch,
            images=images,
            classes=classes,
            imagesPerSecond=rates,
            seconds=seconds,
            cpuSeconds=cpu,
            featureDimension=int(features.shape[-1]),
            gflopsPerImage=gflops_per_image(model),
            # Whole process, import and model construction included (ru_maxrss is in KiB on Linux).
            process=dict(peakRssMB=round(usage.ru_maxrss / 1024), userSeconds=round(usage.ru_utime, 1), systemSeconds=round(usage.ru_stime, 1), minorFaults=usage.ru_minflt),
            # Reaped child processes, as in torch_backbones.py: here only short-lived helpers that the
            # imports fork (a fork's RSS counts the pages it shares with this process).
            children=dict(peakRssMB=round(children.ru_maxrss / 1024), userSeconds=round(children.ru_utime, 1), systemSeconds=round(children.ru_stime, 1), minorFaults=children.ru_minflt),
            threads=dict(
                cores=len(os.sched_getaffinity(0)),
                # 0 means TensorFlow's default: one thread per core in each pool.
                intraOp=tf.config.threading.get_intra_op_parallelism_threads(),
                interOp=tf.config.threading.get_inter_op_parallelism_threads(),
                ompNumThreads=os.environ.get("OMP_NUM_THREADS"),
            ),
            onednn=a.onednn,
            resize=resize,
            tensorflow=tf.__version__,
            keras=keras.__version__,
            notes=notes,
        )
    )
)
