import os

import matplotlib
import pytest
import torch

matplotlib.use("Agg")
os.environ.setdefault("SEQLAB_PROGRESS", "0")

DEVICES = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])


@pytest.fixture(params=DEVICES)
def device(request):
    """Tests that take this fixture run on the CPU and, when present, on CUDA."""
    return torch.device(request.param)
