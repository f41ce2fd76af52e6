"""PyTorch peer for fine-tuning a stock backbone, the counterpart of keras_finetune.py: the loop a
PyTorch user writes for the transfer-learning guide's second phase. Prints one JSON line.

    python3 benchmarks/peers/torch_finetune.py --data DIR --arch mobilenet_v2|resnet50
        [--epochs 2] [--batch 32] [--workers CORES] [--bn-train]

DIR holds one folder of images per class. The backbone is torchvision.models.<arch>(weights=None)
with its classifier replaced by a Linear layer over the classes (softmax inside CrossEntropyLoss);
every parameter trains, Adam at 1e-5. As Keras's recipe calls the base with training=False, every
BatchNorm module runs in eval mode (its running statistics kept; its affine weights still train),
unless --bn-train, which trains the whole model in train mode (batch statistics). Images come
through ImageFolder with the seed's augmentation in torchvision terms — Resize((224, 224)), then
RandomAffine(shear ±0.2 rad, scale 0.8–1.2) and RandomHorizontalFlip — then ToTensor and
Normalize(ImageNet mean/std), through DataLoader(batch, shuffle=True, num_workers=workers); PIL
decodes in the worker processes. torch.set_num_threads(cores).

Reports each epoch's images/s (the first includes oneDNN's warm-up, as on the other rows), peak RSS
and user/system CPU seconds of this process, and its workers' separately (`children`).
"""
import argparse
import json
import math
import os
import resource
import sys
import time

CORES = len(os.sched_getaffinity(0))

p = argparse.ArgumentParser(description="PyTorch fine-tuning peer (prints one JSON line)")
p.add_argument("--data", required=True)
p.add_argument("--arch", choices=("mobilenet_v2", "resnet50"), required=True)
p.add_argument("--epochs", type=int, default=2)
p.add_argument("--batch", type=int, default=32)
p.add_argument("--workers", type=int, default=CORES)
p.add_argument("--bn-train", action="store_true")
a = p.parse_args()
for name in ("epochs", "batch"):
    if getattr(a, name) < 1:
        p.error(f"--{name} must be a positive integer, received {getattr(a, name)}")
if a.workers < 0:
    p.error(f"--workers must be a non-negative integer, received {a.workers}")
if not os.path.isdir(a.data):
    p.error(f"--data {a.data}: no such directory")

import torch  # noqa: E402
from torch import nn  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from torch_common import load_torchvision  # noqa: E402 (beside this script)

torchvision, _ = load_torchvision()
from torch.utils.data import DataLoader  # noqa: E402
from torchvision import datasets, transforms  # noqa: E402

torch.manual_seed(1)
torch.set_num_threads(CORES)
augment = transforms.Compose(
    [
        transforms.Resize((224, 224)),
        transforms.RandomAffine(degrees=0, shear=math.degrees(0.2), scale=(0.8, 1.2)),
        transforms.RandomHorizontalFlip(),
        transforms.ToTensor(),
        transforms.Normalize(mean=[0.485, 0.456, 0.406], std=[0.229, 0.224, 0.225]),
    ]
)
try:
    dataset = datasets.ImageFolder(a.data, transform=augment)
except FileNotFoundError as error:  # a class folder without images
    p.error(f"--data {a.data}: {error}")
loader = DataLoader(dataset, batch_size=a.batch, shuffle=True, num_workers=a.workers)

model = getattr(torchvision.models, a.arch)(weights=None)
classes = len(dataset.classes)
if a.arch == "resnet50":
    model.fc = nn.Linear(model.fc.in_features, classes)
else:
    model.classifier = nn.Linear(model.classifier[-1].in_features, classes)
optimizer = torch.optim.Adam(model.parameters(), lr=1e-5)
loss_fn = nn.CrossEntropyLoss()


def set_modes():
    model.train()
    if not a.bn_train:
        for m in model.modules():
            if isinstance(m, nn.modules.batchnorm._BatchNorm):
                m.eval()


rates, losses = [], []
for _ in range(a.epochs):
    set_modes()
    started, total, seen = time.perf_counter(), 0.0, 0
    for x, y in loader:
        optimizer.zero_grad(set_to_none=True)
        loss = loss_fn(model(x), y)
        loss.backward()
        optimizer.step()
        total += loss.item() * len(y)
        seen += len(y)
    rates.append(round(seen / (time.perf_counter() - started), 1))
    losses.append(round(total / seen, 4))
usage, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
print(
    json.dumps(
        dict(
            framework="torch",
            arch=a.arch,
            bnTrain=a.bn_train,
            images=len(dataset),
            imagesPerSecond=rates,
            loss=losses,
            peakRssMB=round(usage.ru_maxrss / 1024),
            userSeconds=round(usage.ru_utime, 1),
            systemSeconds=round(usage.ru_stime, 1),
            children=dict(peakRssMB=round(children.ru_maxrss / 1024), userSeconds=round(children.ru_utime, 1), systemSeconds=round(children.ru_stime, 1)),
            threads=dict(cores=CORES, intraOp=torch.get_num_threads(), workers=a.workers),
            torch=torch.__version__,
            torchvision=torchvision.__version__,
        )
    )
)
