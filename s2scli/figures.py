"""Pictures: PNG files drawn with matplotlib without a display, and what each one shows, in words.

Every plot s2s draws goes through :func:`save_figure`. Besides the pixels, the PNG carries a ``tEXt``
chunk ``s2s-figure`` holding JSON that describes every axes of the figure: its title, axis labels and,
for each drawn series, its label and number of points. Tests (and curious users, with
:func:`figure_summary`) can check what a picture shows without looking at it::

    {"axes": [{"title": "...", "xlabel": "sentence length (words)", "ylabel": "BLEU",
               "series": [{"label": "BLEU", "points": 7}]}]}

matplotlib is imported only when a figure is drawn, so commands that draw nothing never pay for it.
"""

from __future__ import annotations

import io
import json
import struct
import zlib
from typing import Any, BinaryIO

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
SUMMARY_KEY = "s2s-figure"


def new_figure(rows: int = 1, cols: int = 1, size: tuple[float, float] = (7.0, 4.5)) -> tuple[Any, Any]:
    """A matplotlib (figure, axes) pair on the Agg backend, which needs no display."""
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    return plt.subplots(rows, cols, figsize=size, squeeze=False)


def describe(fig: Any) -> dict[str, Any]:
    """What the figure shows: per axes, title, labels and the (label, point count) of each series."""
    axes = []
    for ax in fig.get_axes():
        series = [{"label": str(line.get_label()), "points": len(line.get_xdata())} for line in ax.get_lines()
                  if not str(line.get_label()).startswith("_")]
        for coll in ax.collections:  # scatter plots
            label = str(coll.get_label())
            if not label.startswith("_"):
                series.append({"label": label, "points": len(coll.get_offsets())})
        for container in ax.containers:  # bar charts
            label = str(container.get_label())
            if not label.startswith("_"):
                series.append({"label": label, "points": len(container)})
        axes.append({"title": ax.get_title(), "xlabel": ax.get_xlabel(), "ylabel": ax.get_ylabel(),
                     "series": series, "texts": len(ax.texts)})
    return {"axes": axes}


def save_figure(fig: Any, out: BinaryIO) -> dict[str, Any]:
    """Write ``fig`` as PNG to ``out``, with :func:`describe`'s JSON in a tEXt chunk; returns that summary."""
    import matplotlib.pyplot as plt

    summary = describe(fig)
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=120, bbox_inches="tight",
                metadata={"Software": "s2s", SUMMARY_KEY: json.dumps(summary, ensure_ascii=True)})
    plt.close(fig)
    out.write(buffer.getvalue())
    return summary


def png_text_chunks(data: bytes) -> dict[str, str]:
    """The ``tEXt`` key/value pairs of a PNG file; raises ValueError when ``data`` is not a PNG."""
    if not data.startswith(PNG_SIGNATURE):
        raise ValueError("not a PNG file")
    chunks: dict[str, str] = {}
    pos = len(PNG_SIGNATURE)
    while pos + 8 <= len(data):
        length, kind = struct.unpack(">I4s", data[pos:pos + 8])
        body = data[pos + 8:pos + 8 + length]
        crc = data[pos + 8 + length:pos + 12 + length]
        if len(body) != length or len(crc) != 4 or struct.unpack(">I", crc)[0] != zlib.crc32(kind + body):
            raise ValueError("damaged PNG chunk")
        if kind == b"tEXt":
            key, _, value = body.partition(b"\0")
            chunks[key.decode("latin-1")] = value.decode("latin-1")
        if kind == b"IEND":
            return chunks
        pos += 12 + length
    raise ValueError("truncated PNG file")


def figure_summary(data: bytes) -> dict[str, Any]:
    """The summary :func:`save_figure` stored in a PNG (see the module docstring)."""
    return json.loads(png_text_chunks(data)[SUMMARY_KEY])
