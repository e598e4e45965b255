"""Unit tests for figures.py: PNGs that say what they show."""

from __future__ import annotations

import io

import pytest

from s2scli.figures import figure_summary, new_figure, png_text_chunks, save_figure


def draw() -> bytes:
    fig, axes = new_figure(1, 2)
    left, right = axes[0]
    left.plot([1, 2, 3], [4, 5, 6], label="BLEU")
    left.plot([1, 2], [1, 1], label="_hidden helper line")
    left.set_xlabel("length")
    left.set_ylabel("BLEU")
    left.set_title("by length")
    right.scatter([0.0, 1.0, 2.0, 3.0], [1.0, 0.0, 1.0, 0.0], label="sentences")
    right.bar([1, 2], [3, 4], label="counts")
    buffer = io.BytesIO()
    save_figure(fig, buffer)
    return buffer.getvalue()


def test_summary_lists_every_axes_labels_and_visible_series_with_point_counts() -> None:
    summary = figure_summary(draw())
    left, right = summary["axes"]
    assert (left["title"], left["xlabel"], left["ylabel"]) == ("by length", "length", "BLEU")
    assert left["series"] == [{"label": "BLEU", "points": 3}]  # the '_' line is not a series
    assert {"label": "sentences", "points": 4} in right["series"]
    assert {"label": "counts", "points": 2} in right["series"]


def test_png_is_checked_chunk_by_chunk() -> None:
    data = draw()
    assert png_text_chunks(data)["Software"] == "s2s"
    with pytest.raises(ValueError, match="not a PNG"):
        png_text_chunks(b"GIF89a" + data[6:])
    with pytest.raises(ValueError, match="truncated|damaged"):
        png_text_chunks(data[: len(data) // 2])
    broken = bytearray(data)
    broken[40] ^= 0xFF  # inside the IHDR/first chunks: the CRC no longer matches
    with pytest.raises(ValueError, match="damaged"):
        png_text_chunks(bytes(broken))
