"""Shared pytest setup; model-building helpers live in tests/caffe_models.py."""
import sys
from pathlib import Path

# Let tests import the helper module as ``caffe_models``.
sys.path.insert(0, str(Path(__file__).parent))

import pytest  # noqa: E402


@pytest.fixture()
def cli_tmp(tmp_path, monkeypatch):
    """Run in an empty temporary working folder (short relative paths in messages), without
    NO_COLOR from the environment."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("NO_COLOR", raising=False)
    return tmp_path
