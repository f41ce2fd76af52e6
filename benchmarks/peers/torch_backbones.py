"""PyTorch peer for feature extraction through a stock backbone, the counterpart of
keras_backbones.py: the recipe a PyTorch user writes to turn a folder of photographs into pooled
feature vectors. Prints one JSON line.

    python3 benchmarks/peers/torch_backbones.py --data DIR --arch mobilenet_v2|resnet50|efficientnet_b0
        [--size 224] [--batch 32] [--repeats 1] [--workers CORES] [--onednn 0|1]

DIR holds one folder of images per class (DIR/<class>/*.jpg). The backbone is
torchvision.models.<arch>(weights=None) with its classifier replaced by Identity, so that it returns
the pooled vector (features → global average pool); untrained weights cost the same as ImageNet's.
eval() and torch.inference_mode(); torch.set_num_threads(cores). Images come through
ImageFolder(transform=Resize((size, size)) → ToTensor → Normalize(ImageNet mean/std)), channels
first, and DataLoader(batch_size, shuffle=False, num_workers=workers); PIL decodes and resizes
(bilinear, antialiased) in the worker processes. --onednn sets torch.backends.mkldnn.enabled
(PyTorch's oneDNN convolutions, on by default), the counterpart of TF_ENABLE_ONEDNN_OPTS.

One untimed warm-up forward over the first batch and, when the corpus does not divide into whole
batches, a slice of it the size of the last batch (oneDNN builds its primitives per shape), then
`repeats` timed passes over the whole directory, each through a fresh DataLoader iterator (worker
start-up included, as a user's loop pays it); the dataset is built once, outside the timing.
Reports per repeat images/s, wall seconds and CPU seconds (user + system of this process and its
reaped workers); peak RSS, user/system CPU seconds and minor page faults of this process and,
separately, of its workers (`children`; peakRssMB there is the largest single worker, whose pages
are mostly shared with this process, so the two do not add up); GFLOPs per image
(torch.utils.flop_counter at batch 1: 2 × multiply-adds of convolutions and matrix products) and the
feature dimension.
"""
import argparse
import faulthandler
import json
import os
import resource
import sys
import time

ARCHS = ("efficientnet_b0", "mobilenet_v2", "resnet50")
# torchvision.datasets.folder.IMG_EXTENSIONS, so that an empty corpus is refused here by name.
EXTENSIONS = (".jpg", ".jpeg", ".png", ".ppm", ".bmp", ".pgm", ".tif", ".tiff", ".webp")
CORES = len(os.sched_getaffinity(0))

p = argparse.ArgumentParser(description="PyTorch backbone feature-extraction peer (prints one JSON line)")
p.add_argument("--data", required=True)
p.add_argument("--arch", choices=ARCHS, required=True)
p.add_argument("--size", type=int, default=224)
p.add_argument("--batch", type=int, default=32)
p.add_argument("--repeats", type=int, default=1)
p.add_argument("--workers", type=int, default=CORES)
p.add_argument("--onednn", type=int, choices=[0, 1], default=1)
a = p.parse_args()
for name in ("size", "batch", "repeats"):
    if getattr(a, name) < 1:
        p.error(f"--{name} must be a positive integer, received {getattr(a, name)}")
if a.workers < 0:
    p.error(f"--workers must be a non-negative integer, received {a.workers}")


def has_images(root):
    """True when some class folder under root holds a file ImageFolder would read (it walks class
    folders recursively and ignores files lying in root itself)."""
    for entry in sorted(os.scandir(root), key=lambda e: e.name):
        if entry.is_dir():
            for _, _, files in os.walk(entry.path, followlinks=True):
                if any(f.lower().endswith(EXTENSIONS) for f in files):
                    return True
    return False


# Refused before torch loads, with argparse's usage line and exit status 2.
if not os.path.isdir(a.data):
    p.error(f"--data {a.data}: no such directory")
if not has_images(a.data):
    p.error(f"--data {a.data}: no images in its class folders (expected {a.data}/<class>/*.jpg; ImageFolder reads {', '.join(EXTENSIONS)})")

faulthandler.enable()  # a SIGFPE/SIGSEGV inside a kernel leaves a traceback on stderr
import torch  # noqa: E402
from torch import nn  # noqa: E402


from torch_common import load_torchvision  # noqa: E402 (beside this script)

torchvision, torchvision_ops = load_torchvision()
from torchvision import datasets, transforms  # noqa: E402
from torch.utils.data import DataLoader  # noqa: E402

torch.manual_seed(1)
torch.set_num_threads(CORES)
torch.backends.mkldnn.enabled = bool(a.onednn)
preprocess = transforms.Compose(
    [transforms.Resize((a.size, a.size)), transforms.ToTensor(), transforms.Normalize(mean=[0.485, 0.456, 0.406], std=[0.229, 0.224, 0.225])]
)
try:
    dataset = datasets.ImageFolder(a.data, transform=preprocess)
except FileNotFoundError as error:  # a class folder without images
    p.error(f"--data {a.data}: {error}")
loader = DataLoader(dataset, batch_size=a.batch, shuffle=False, num_workers=a.workers)
images = len(dataset)

model = getattr(torchvision.models, a.arch)(weights=None)
# The classifier goes, the global average pool before it stays: forward() returns the pooled vector.
if a.arch == "resnet50":
    model.fc = nn.Identity()
else:
    model.classifier = nn.Identity()
model.eval()


def cpu_seconds():
    # Workers' CPU shows in children_* once they are reaped, which a DataLoader iterator does when
    # it is exhausted (persistent_workers=False), so a pass's delta includes its workers.
    t = os.times()
    return t.user + t.system + t.children_user + t.children_system


with torch.inference_mode():
    batches = iter(loader)
    first, _ = next(batches)
    del batches  # shuts its workers down before the timed passes start their own
    model(first)
    tail = images % a.batch
    if tail:
        model(first[:tail])

    rates, seconds, cpu = [], [], []
    for _ in range(a.repeats):
        c0, t0 = cpu_seconds(), time.perf_counter()
        features = torch.cat([model(x) for x, _ in loader])
        wall = time.perf_counter() - t0
        if len(features) != images:
            raise RuntimeError(f"the loop returned {len(features)} feature rows for {images} images")
        rates.append(round(images / wall, 2))
        seconds.append(round(wall, 3))
        cpu.append(round(cpu_seconds() - c0, 2))
    # Read before the FLOP count, so that it is not in the totals.
    usage, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)

    from torch.utils.flop_counter import FlopCounterMode

    counter = FlopCounterMode(display=False)
    with counter:
        model(torch.zeros(1, 3, a.size, a.size))
    gflops = round(counter.get_total_flops() / 1e9, 3)

notes = [] if torchvision_ops else ["torchvision's C++ ops did not load (CUDA build beside a CPU torch); nms/qnms schemas declared so that it imports, unused here"]
print(
    json.dumps(
        dict(
            framework="torch",
            arch=a.arch,
            loader="dataloader",
            size=a.size,
            batch=a.batch,
            images=images,
            classes=len(dataset.classes),
            imagesPerSecond=rates,
            seconds=seconds,
            cpuSeconds=cpu,
            featureDimension=int(features.shape[-1]),
            gflopsPerImage=gflops,
            # Whole process, import and model construction included (ru_maxrss is in KiB on Linux).
            process=dict(peakRssMB=round(usage.ru_maxrss / 1024), userSeconds=round(usage.ru_utime, 1), systemSeconds=round(usage.ru_stime, 1), minorFaults=usage.ru_minflt),
            children=dict(peakRssMB=round(children.ru_maxrss / 1024), userSeconds=round(children.ru_utime, 1), systemSeconds=round(children.ru_stime, 1), minorFaults=children.ru_minflt),
            threads=dict(
                cores=CORES,
                intraOp=torch.get_num_threads(),
                interOp=torch.get_num_interop_threads(),
                workers=a.workers,
                ompNumThreads=os.environ.get("OMP_NUM_THREADS"),
            ),
            onednn=a.onednn,
            resize="PIL bilinear antialiased",
            torch=torch.__version__,
            torchvision=torchvision.__version__,
            notes=notes,
        )
    )
)
