"""Run real Caffe on one model and write every blob; used by tests/test_caffe_oracle.py.

This script runs in a **subprocess** with pycaffe on PYTHONPATH (Caffe aborts the process on
a bad prototxt, and importing caffe registers its own caffe.proto in protobuf's default pool),
so it must not import cmsisgen.

    python3 caffe_oracle_worker.py JOB.json

JOB.json holds:

    prototxt   deploy prototxt (current or V1; Caffe upgrades V1 itself)
    weights    .caffemodel, or .caffemodel.h5 (Caffe reads HDF5 when the name ends in .h5)
    inputs     .npz with one array per network input (N, C, H, W) float32
    out        .npz to write: every blob in net.blobs after the forward, by blob name
    meta       .json to write: inputs, outputs, blob shapes, layers (name, type, bottoms, tops)
    upgraded   optional: write Caffe's own (upgraded, current-format) view of the net here as
               a text prototxt, taken from Net::ToProto with the weight blobs and the
               Split layers Caffe inserts itself stripped
"""
from __future__ import annotations

import json
import sys

import numpy as np


def main(job_path: str) -> None:
    import caffe

    job = json.loads(open(job_path).read())
    caffe.set_mode_cpu()
    net = caffe.Net(job["prototxt"], caffe.TEST, weights=job["weights"])
    inputs = np.load(job["inputs"])
    for name in net.inputs:
        x = np.asarray(inputs[name], dtype=np.float32)
        net.blobs[name].reshape(*x.shape)
    net.reshape()
    for name in net.inputs:
        net.blobs[name].data[...] = inputs[name]
    net.forward()
    blobs = {name: blob.data.copy() for name, blob in net.blobs.items()}
    np.savez(job["out"], **blobs)

    layers = []
    for i, name in enumerate(net._layer_names):
        layers.append({
            "name": name,
            "type": net.layers[i].type,
            "bottoms": list(net.bottom_names[name]),
            "tops": list(net.top_names[name]),
            "blob_shapes": [list(b.data.shape) for b in net.layers[i].blobs],
        })
    meta = {
        "inputs": list(net.inputs),
        "outputs": list(net.outputs),
        "blob_shapes": {name: list(b.data.shape) for name, b in net.blobs.items()},
        "layers": layers,
    }
    with open(job["meta"], "w") as f:
        json.dump(meta, f, indent=1)

    if job.get("upgraded"):
        from google.protobuf import text_format
        from caffe.proto import caffe_pb2

        tmp = job["upgraded"] + ".caffemodel"
        net.save(tmp)
        param = caffe_pb2.NetParameter()
        with open(tmp, "rb") as f:
            param.ParseFromString(f.read())
        _strip_auto_splits(param)
        for lay in param.layer:
            del lay.blobs[:]
            lay.ClearField("phase")
        with open(job["upgraded"], "w") as f:
            f.write(text_format.MessageToString(param))


def _strip_auto_splits(param) -> None:
    """Remove the Split layers Caffe inserts for blobs with several consumers
    (``<blob>_<layer>_<i>_split`` with tops ``..._split_<k>``) and rewire their consumers to
    the original blob, so the saved net reads as the user wrote it."""
    alias = {}
    keep = []
    for lay in param.layer:
        if (lay.type == "Split" and lay.name.endswith("_split") and len(lay.bottom) == 1
                and all(t.startswith(lay.name + "_") for t in lay.top)):
            for t in lay.top:
                alias[t] = alias.get(lay.bottom[0], lay.bottom[0])
            continue
        keep.append(lay)
    for lay in keep:
        for i, b in enumerate(lay.bottom):
            lay.bottom[i] = alias.get(b, b)
    del param.layer[:]
    param.layer.extend(keep)


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: caffe_oracle_worker.py JOB.json")
    main(sys.argv[1])
