"""Shared pytest setup; model-building helpers live in tests/caffe_models.py."""
import sys
from pathlib import Path

# Let tests import the helper module as ``caffe_models``.
sys.path.insert(0, str(Path(__file__).parent))
