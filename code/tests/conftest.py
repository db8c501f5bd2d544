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


@pytest.fixture
def one_thread():
    """One PyTorch thread for the test: the recorded runs that test_replay.py reruns used one (the sum order of a
    reduction can depend on it), and tiny models gain nothing from intra-op threads (on a shared CPU they can slow
    training tenfold)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
