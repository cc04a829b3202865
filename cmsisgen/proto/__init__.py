"""Caffe protobuf schema (a subset of caffe.proto with Caffe's own field numbers).

Use ``from cmsisgen.proto import schema`` and ``schema.NetParameter`` etc.; the classes
are built from an embedded descriptor so no protoc output and no pycaffe is needed.
"""
from cmsisgen.proto import schema

__all__ = ["schema"]
