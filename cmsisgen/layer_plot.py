"""``evaluate --plot FILE.png``: the per-layer report as a picture.

Top: per layer, the float range the data reached (a line from min to max) against the
range its quantization holds (a bar: the Q format on q7, scale and zero point on s8): a line
poking out of its bar is clipping, a line far inside wastes bits. Bottom: each layer's SQNR. matplotlib is an optional extra
(the ``plot`` extra: ``pip install '.[plot]'``), imported only here.
"""
from __future__ import annotations

import io
import os
from pathlib import Path

from .errors import CmsisgenError
from .layer_error import EXACT_SQNR_DB

MISSING = ("--plot: matplotlib is not installed (python3 -m pip install matplotlib, or cmsisgen's extra: "
           "python3 -m pip install '.[plot]')")


def require_matplotlib() -> None:
    """Refuse --plot before any long work when matplotlib cannot be imported."""
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        raise CmsisgenError(MISSING) from None


#: The bar's legend per backend: what sets the range a tensor's bytes hold.
RANGE_LABELS = {"q7": "Q format range", "s8": "int8 range (scale, zero point)"}


def plot_layers(rows: list[dict], path: Path, title: str, backend: str = "q7") -> None:
    """Draw ``rows`` (:meth:`cmsisgen.layer_error.LayerErrors.rows`) into the PNG ``path``."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot

    labels = [row["name"] if row["tensor"] == row["name"] else f"{row['name']}:{row['tensor']}" for row in rows]
    xs = list(range(len(rows)))
    figure, (ranges, sqnr) = pyplot.subplots(2, 1, sharex=True, figsize=(max(6.0, 0.45 * len(rows) + 2), 7))
    low = [row["format_range"][0] for row in rows]
    high = [row["format_range"][1] for row in rows]
    ranges.bar(xs, [h - lo for lo, h in zip(low, high)], bottom=low, width=0.6, color="#c6dbef",
               label=RANGE_LABELS[backend])
    ranges.vlines(xs, [row["range"][0] for row in rows], [row["range"][1] for row in rows], color="#d62728",
                  linewidth=2.5, label="float range")
    ranges.set_yscale("symlog", linthresh=1.0, linscale=0.5)
    ranges.set_ylabel("value")
    ranges.legend(loc="upper left", fontsize="small")
    ranges.set_title(title)
    values = [EXACT_SQNR_DB if row["sqnr_db"] is None else row["sqnr_db"] for row in rows]
    sqnr.bar(xs, values, width=0.6, color="#6baed6")
    sqnr.set_ylabel("SQNR (dB)")
    sqnr.set_xticks(xs)
    sqnr.set_xticklabels(labels, rotation=60, ha="right", fontsize="small")
    figure.tight_layout()
    image = io.BytesIO()
    figure.savefig(image, format="png", dpi=100)
    pyplot.close(figure)
    _write_whole(Path(path), image.getvalue())


def _write_whole(path: Path, data: bytes) -> None:
    """All or nothing: a temporary file beside ``path``, renamed over it once complete."""
    temporary = path.with_name(f".{path.name}.tmp{os.getpid()}")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)  # as the other written files' folders are
        temporary.write_bytes(data)
        os.replace(temporary, path)
    except OSError as exc:
        temporary.unlink(missing_ok=True)
        raise CmsisgenError(f"{path}: cannot write the plot ({exc.strerror or exc})") from None
