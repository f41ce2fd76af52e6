"""What the PyTorch peers share: importing torchvision beside a CPU-only torch."""
import glob
import importlib.util
import os
import sys

import torch


def load_torchvision():
    """Imports torchvision, tolerating a torchvision whose C++ ops cannot load into this torch.

    A torchvision wheel built for CUDA torch, installed next to a CPU-only torch (the only pairing
    some package indexes offer), cannot load its _C extension (it needs libc10_cuda.so). torchvision
    copes with that for most ops, but its _meta_registrations registers fake kernels for nms and
    qnms without checking, so `import torchvision` dies with "operator torchvision::nms does not
    exist". Declaring those two schemas first lets the import finish; the backbones, transforms and
    ImageFolder are Python over torch's own ops and never call them. Returns (module, ops_loaded).
    """
    spec = importlib.util.find_spec("torchvision")
    if spec is None or spec.origin is None:
        print(f"{os.path.basename(sys.argv[0])}: torchvision is not installed (pip install torchvision)", file=sys.stderr)
        sys.exit(2)
    extensions = sorted(glob.glob(os.path.join(os.path.dirname(spec.origin), "_C*.so")))
    try:
        torch.ops.load_library(extensions[0])  # torchvision loads the same file again; dlopen shares it
        ops_loaded = True
    except (IndexError, OSError):
        ops_loaded = False
        global _torchvision_stub  # the Library object must outlive the import for its schemas to stay
        _torchvision_stub = torch.library.Library("torchvision", "DEF")
        for op in ("nms", "qnms"):
            _torchvision_stub.define(f"{op}(Tensor dets, Tensor scores, float iou_threshold) -> Tensor")
    import torchvision

    return torchvision, ops_loaded
