import os

import matplotlib
import pytest
import torch

matplotlib.use("Agg")
os.environ.setdefault("SEQLAB_PROGRESS", "0")

from seqlab.config import configure_threads  # noqa: E402  (after the backend is chosen)

configure_threads()  # the test session's set-up: the chapters' thread policy (import seqlab sets none)

DEVICES = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])


@pytest.fixture(params=DEVICES)
def device(request):
    """Tests that take this fixture run on the CPU and, when present, on CUDA."""
    return torch.device(request.param)
