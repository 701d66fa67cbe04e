"""Shared fixtures. Real datasets live in ../shared/data beside the project root
(override with SHOPML_DATA); tests that need them skip with a clear reason when absent."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DATA_DIR = Path(os.environ.get("SHOPML_DATA", ROOT.parent / "shared" / "data"))


def pytest_configure(config):
    import torch
    from hypothesis import settings

    # CI replays the same examples every run (main stays green on a given commit); locally
    # hypothesis keeps exploring new ones, which is where new bugs come from.
    settings.register_profile("ci", derandomize=True, print_blob=True)
    if os.environ.get("CI"):
        settings.load_profile("ci")

    # Two cores here: pin threads so tests never oversubscribe the CPU.
    torch.set_num_threads(int(os.environ.get("SHOPML_THREADS", "2")))


@pytest.fixture(scope="session")
def data_dir() -> Path:
    return DATA_DIR


@pytest.fixture(scope="session")
def real_file():
    """``real_file("amazon-beauty", "Beauty.txt")``: the path of a shared dataset file,
    or skip the test with the reason when it is absent."""

    def get(*parts: str) -> Path:
        p = DATA_DIR.joinpath(*parts)
        if not p.exists():
            pytest.skip(f"real dataset not available: {p} (set SHOPML_DATA to the shared data folder)")
        return p

    return get


@pytest.fixture(autouse=True)
def _isolated_key(tmp_path, monkeypatch):
    # Pseudonymization keys are per-test so no test reads or writes the user's key file.
    monkeypatch.setenv("SHOPML_KEY_FILE", str(tmp_path / "shopml.key"))
