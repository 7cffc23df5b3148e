"""Test-session setup: a private cache for the zoo and data, quiet progress bars, a headless backend.

``REIDBOOK_CACHE`` points at a fresh temporary folder for the whole session (or at
``$REIDBOOK_TEST_CACHE`` to keep it between runs while developing), so tests never touch the
user's cache and chapters executed under test share the models they train.
"""
from __future__ import annotations

import os
import tempfile

os.environ["REIDBOOK_CACHE"] = os.environ.get("REIDBOOK_TEST_CACHE") or tempfile.mkdtemp(prefix="reidbook-test-cache-")
os.environ.setdefault("REIDBOOK_QUIET", "1")
os.environ.setdefault("MPLBACKEND", "Agg")

import pytest  # noqa: E402


@pytest.fixture(scope="session")
def smoke_root():
    """The smoke SynthReID folder, generated once per session in the session cache."""
    from reidbook import zoo

    return zoo.synthreid("smoke", seed=0)


@pytest.fixture(scope="session")
def smoke_dataset(smoke_root):
    from reidbook.data import load_dataset

    return load_dataset(smoke_root)


@pytest.fixture(scope="module")
def one_thread():
    """One intra-op thread for a module's tests: on the shared 2-core machine it is much faster than
    oversubscribed cores (use with ``pytestmark = pytest.mark.usefixtures("one_thread")``)."""
    import torch

    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


@pytest.fixture(scope="module")
def net():
    """A smoke-size baseline (width 1/8, 10 classes) in eval mode, one per test module."""
    import torch

    from reidbook.models import build_model

    torch.manual_seed(0)
    return build_model("baseline", 10, profile="smoke").eval()
