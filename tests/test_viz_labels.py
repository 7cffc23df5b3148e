"""viz/labels.py: greedy label placement keeps crowded labels apart."""
from __future__ import annotations

import itertools

import numpy as np
import pytest

from reidbook.viz.labels import annotate_points, label_offsets


def _boxes(points, sizes, offsets):
    return [(x + dx, y + dy, x + dx + w, y + dy + h) for (x, y), (w, h), (dx, dy) in zip(points, sizes, offsets)]


def _overlaps(a, b):
    return min(a[2], b[2]) > max(a[0], b[0]) and min(a[3], b[3]) > max(a[1], b[1])


def test_lone_label_sits_right_above_its_point():
    assert label_offsets([(100, 100)], [(40, 6.5)], gap=3) == [(3, 3)]


def test_crowded_labels_do_not_overlap():
    # four models at (almost) the same place, as Baseline / PCB / DaRe's fusion crowd the capstone chart
    points = [(200, 150), (201, 150), (200, 151), (202, 149)]
    sizes = [(60, 6.5)] * 4
    offsets = label_offsets(points, sizes)
    boxes = _boxes(points, sizes, offsets)
    assert not any(_overlaps(a, b) for a, b in itertools.combinations(boxes, 2))
    # …while the fixed offset every label used before puts all four on top of each other
    fixed = _boxes(points, sizes, [(3, 3)] * 4)
    assert all(_overlaps(a, b) for a, b in itertools.combinations(fixed, 2))


def test_labels_avoid_other_markers():
    # label 0 would cover point 1's marker at the default position right-above
    offsets = label_offsets([(0, 0), (20, 6)], [(50, 6.5), (10, 6.5)], marker=4, gap=3)
    box = _boxes([(0, 0)], [(50, 6.5)], offsets[:1])[0]
    assert not _overlaps(box, (16, 2, 24, 10))


def test_bad_arguments_are_refused():
    with pytest.raises(ValueError, match="label sizes"):
        label_offsets([(0, 0), (1, 1)], [(5, 5)])
    with pytest.raises(ValueError, match="rings"):
        label_offsets([(0, 0)], [(5, 5)], rings=0)


def test_annotate_points_labels_every_point():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots()
    xs, ys = np.array([1.0, 1.01, 5.0]), np.array([50.0, 50.2, 10.0])
    ax.scatter(xs, ys)
    notes = annotate_points(ax, xs, ys, ["a", "b", "c"])
    assert [n.get_text() for n in notes] == ["a", "b", "c"]
    assert notes[0].xyann != notes[1].xyann  # the two crowded labels went to different places
    plt.close(fig)
