"""--optimize (issue 13, item 2): coordinate descent over the formats on held-out calibration images."""
from __future__ import annotations

import numpy as np

from cli_run import run
from random_nets import write_random_net
from cmsisgen.mapper.lowering import map_network
from cmsisgen.optimize import held_out, optimize_formats, split
from cmsisgen.pipeline import compile_loaded, compile_model, float_batches, load_model
from cmsisgen.quantizer import calibrate, quantize

NET = "cifar10_full_style"


def test_split_holds_out_a_quarter():
    assert [split(n) for n in (1, 2, 4, 8, 2000)] == [1, 1, 3, 6, 1500]


def test_a_clipping_format_is_given_its_bit_back(tmp_path):
    files = write_random_net(tmp_path, NET, calib_images=64)
    images = np.load(files.calib)["x"]
    model = load_model(files.prototxt, files.weights, **files.compile_kwargs())
    net = model.net
    ranges = calibrate(net, float_batches(model.pre, images[:48], model.input_shape))
    start = quantize(net, ranges)
    ranges["ip1"] /= 4  # two fractional bits too many: ip1 clips
    bad = quantize(net, ranges)
    assert bad.tensor_frac["ip1"] == start.tensor_frac["ip1"] + 2
    held = held_out(net, model.pre, images[48:], None, "prob")
    lines = []
    quant, changes = optimize_formats(net, ranges, held, "prob",
                                      lambda q: map_network(net, q, model.pre, fc_variant=model.fc_variant),
                                      log=lines.append)
    assert changes == lines and any(line.startswith("ip1: ") for line in changes)
    assert quant.tensor_frac["ip1"] < bad.tensor_frac["ip1"]
    assert all(abs(quant.tensor_frac[t] - bad.tensor_frac[t]) <= 2 for t in bad.tensor_frac)


def test_compile_optimize_prints_what_it_changed(tmp_path):
    files = write_random_net(tmp_path, NET, calib_images=24)
    result = run("compile", files.prototxt, files.weights, "-o", tmp_path / "out", *files.options(), "--optimize")
    assert result.exit_code == 0, result.output
    assert "optimize: " in result.output
    plain = compile_model(files.prototxt, files.weights, calib_images=np.load(files.calib)["x"][:18],
                          **files.compile_kwargs())
    optimized = compile_model(files.prototxt, files.weights, calib_images=np.load(files.calib)["x"],
                              optimize=True, **files.compile_kwargs())
    changed = {line.split(":")[0] for line in optimized.optimized}
    differs = {t.split("@")[0] for t, f in optimized.quant.tensor_frac.items() if plain.quant.tensor_frac[t] != f}
    assert changed <= differs  # what it printed is what changed (the rest of each format group with it)
    assert bool(changed) == bool(differs)


def test_nets_without_a_top1_are_scored_by_the_output_error(tmp_path):
    """A class map (per-pixel ArgMax) or labels the net does not know: the output error alone."""
    for name in ("argmax_pixels", "face_pnet_2heads"):
        files = write_random_net(tmp_path / name, name, calib_images=16)
        data = np.load(files.calib)
        model = load_model(files.prototxt, files.weights, optimize=True, **files.compile_kwargs())
        compiled = compile_loaded(model, data["x"], calib_labels=data["y"])
        assert all("top-1" not in line and "output MSE" in line for line in compiled.optimized)
