"""A lidar scan's straight faces: line pieces of a cluster, their total-least-squares lines, where each face ends.

The segment half of aegis.perception.lidar's pipeline (its module doc, step 4): :func:`split_lines`
cuts an ordered cluster into straight pieces, :func:`fit_segments` fits their lines (without the
return a piece shares with its neighbour at a corner: :func:`fitted_ranges`), and a face's ends go
out to the next beam that missed it (:func:`extend_to_next_beams`) or, at a corner of two pieces, to
where their lines meet (:func:`join_corners`). Pure numpy; angles in rad, lengths in m, world frame.
"""

from __future__ import annotations

import math

import numpy as np

MAX_END_SPACINGS = 3.0
"""A face's end is pushed out to the next beam's ray (extend_to_next_beams) when that is at most this many return spacings out."""
CORNER_MIN_ANGLE_RAD = math.radians(20.0)
"""Two faces split at a shared return meet at a corner when their lines cross at more than this (join_corners)."""


def split_lines(xy: np.ndarray, threshold: float) -> list[tuple[int, int]]:
    """Iterative end-point fit of one ordered cluster: inclusive (first, last) index pairs of its straight pieces."""
    pieces: list[tuple[int, int]] = []
    stack = [(0, len(xy) - 1)]
    while stack:
        i, j = stack.pop()
        if j - i < 2:
            pieces.append((i, j))
            continue
        a, b = xy[i], xy[j]
        chord = b - a
        length = math.hypot(chord[0], chord[1])
        rel = xy[i + 1 : j] - a
        if length < 1e-9:
            dist = np.hypot(rel[:, 0], rel[:, 1])
        else:
            dist = np.abs(chord[0] * rel[:, 1] - chord[1] * rel[:, 0]) / length
        worst = int(np.argmax(dist))
        if dist[worst] > threshold:
            split = i + 1 + worst
            stack.append((split, j))
            stack.append((i, split))
        else:
            pieces.append((i, j))
    pieces.sort()
    return pieces


def fit_segments(xy: np.ndarray, firsts: np.ndarray, lasts: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Total-least-squares lines through the ordered pieces ``xy[firsts[k]:lasts[k] + 1]``, all at once: (starts (K, 2),
    ends (K, 2), rms distances (K,)).

    The ends are each piece's first and last points projected on its line, each pushed out by the
    spacing to its neighbour: the face may go on up to the next beam, which missed it (conservative
    by a beam). A piece of one point is a segment of length 0 there.
    """
    k = firsts.size
    if k == 0:
        return np.zeros((0, 2)), np.zeros((0, 2)), np.zeros(0)
    counts = lasts - firsts + 1
    index = np.concatenate([np.arange(a, b + 1) for a, b in zip(firsts.tolist(), lasts.tolist())])
    offsets = np.concatenate(([0], np.cumsum(counts)[:-1])).astype(np.intp)
    points = xy[index]
    piece = np.repeat(np.arange(k), counts)
    mean = np.add.reduceat(points, offsets, axis=0) / counts[:, None]
    u = points - mean[piece]
    sums = np.add.reduceat(np.column_stack([u[:, 0] * u[:, 0], u[:, 1] * u[:, 1], u[:, 0] * u[:, 1]]), offsets, axis=0)
    sxx, syy, sxy = sums.T
    theta = 0.5 * np.arctan2(2.0 * sxy, sxx - syy)  # the principal axis of each 2x2 scatter, in closed form
    direction = np.column_stack([np.cos(theta), np.sin(theta)])
    smallest = 0.5 * (sxx + syy) - np.sqrt(0.25 * (sxx - syy) ** 2 + sxy * sxy)
    along = np.einsum("ij,ij->i", u, direction[piece])
    first = along[offsets]
    last = along[offsets + counts - 1]
    second = along[np.minimum(offsets + 1, offsets + counts - 1)]
    before_last = along[np.maximum(offsets + counts - 2, offsets)]
    sign = np.where(last >= first, 1.0, -1.0)
    first = first - sign * np.abs(second - first)
    last = last + sign * np.abs(last - before_last)
    rms = np.sqrt(np.maximum(smallest / counts, 0.0))
    return mean + first[:, None] * direction, mean + last[:, None] * direction, rms


def fitted_ranges(firsts: np.ndarray, lasts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The returns each piece's line is fitted to: its own, less the return it shares with the piece before or after it
    (the split point at a corner: it lies on one of the two faces, and would tilt the other's line), while two remain."""
    shared = lasts[:-1] == firsts[1:]
    fit_firsts = firsts + np.concatenate(([False], shared))
    fit_lasts = lasts - np.concatenate((shared, [False]))
    short = fit_lasts - fit_firsts < 1
    return np.where(short, firsts, fit_firsts), np.where(short, lasts, fit_lasts)


def extend_to_next_beams(
    xy: np.ndarray, angles: np.ndarray, firsts: np.ndarray, lasts: np.ndarray, starts: np.ndarray, ends: np.ndarray,
    sensor: np.ndarray, increment: float,
) -> tuple[np.ndarray, np.ndarray]:
    """Each face's ends out to where its line crosses the next beam beyond its end return (which did not hit it).

    The face may go on past its end return up to that beam, no further (it would have returned from
    it, unless something nearer hid it). At a grazing face the beams' spacing along it is long, and
    noise on the last two returns makes the one-spacing push of fit_segments fall short of the true
    end; the beam's own ray is exact. ``angles`` are the returns' beam directions (world frame), in
    the order of ``xy``. An end stays as fit_segments left it for a piece of one return, a line that
    does not cross that beam ahead of the sensor, a crossing more than :data:`MAX_END_SPACINGS`
    return spacings past the end return, or one that would shorten the face.
    """
    starts, ends = starts.copy(), ends.copy()
    long = np.flatnonzero(lasts > firsts)
    if long.size == 0:
        return starts, ends
    n = long.size
    piece = np.concatenate((long, long))
    end = np.concatenate((lasts[long], firsts[long]))  # the end return of each face's end, then of its start
    inner = np.concatenate((lasts[long] - 1, firsts[long] + 1))
    outward = np.concatenate((np.ones(n), -np.ones(n)))
    a = starts[piece]
    u = ends[piece] - a
    length = np.hypot(u[:, 0], u[:, 1])
    u /= np.where(length > 0, length, 1.0)[:, None]
    current = np.where(outward > 0, length, 0.0)  # where the end is now, along u from the face's start
    sweep = np.sign(np.remainder(angles[end] - angles[inner] + np.pi, 2.0 * np.pi) - np.pi)
    beam = angles[end] + sweep * increment
    ex, ey = np.cos(beam), np.sin(beam)
    wx, wy = sensor[0] - a[:, 0], sensor[1] - a[:, 1]
    denom = u[:, 0] * ey - u[:, 1] * ex
    with np.errstate(divide="ignore", invalid="ignore"):
        along = (wx * ey - wy * ex) / denom  # the crossing, from the face's start along u
        ahead = (wx * u[:, 1] - wy * u[:, 0]) / denom  # and from the sensor along the beam
    rel = xy[end] - a
    past = (along - (rel[:, 0] * u[:, 0] + rel[:, 1] * u[:, 1])) * outward
    spacing = np.hypot(*(xy[end] - xy[inner]).T)
    with np.errstate(invalid="ignore"):
        ok = (length > 0) & np.isfinite(along) & (ahead > 0.0) & (past >= 0.0) & (past <= MAX_END_SPACINGS * spacing)
        ok &= (along - current) * outward > 0.0
    moved = np.where(ok[:, None], a + np.where(ok, along, 0.0)[:, None] * u, 0.0)
    ends[long[ok[:n]]] = moved[:n][ok[:n]]
    starts[long[ok[n:]]] = moved[n:][ok[n:]]
    return starts, ends


def join_corners(
    xy: np.ndarray, firsts: np.ndarray, lasts: np.ndarray, starts: np.ndarray, ends: np.ndarray, range_noise_std_m: float
) -> tuple[np.ndarray, np.ndarray]:
    """End two faces split from one cluster at their corner, where their lines meet, instead of one beam past it.

    Consecutive pieces that share a return (the split point, ``lasts[k] == firsts[k + 1]``) are two faces
    of one object meeting near it: a box's corner seen from outside (an L) or a room's from inside. Each
    face's end there is moved to the intersection of the two fitted lines when they cross at more than
    :data:`CORNER_MIN_ANGLE_RAD` and the crossing lies within a return spacing plus 3 range sigmas of
    the shared return; otherwise each face keeps its own end (extend_to_next_beams, fit_segments).
    """
    starts, ends = starts.copy(), ends.copy()
    k = np.flatnonzero(lasts[:-1] == firsts[1:])
    if k.size == 0:
        return starts, ends
    da, db = ends[k] - starts[k], ends[k + 1] - starts[k + 1]
    cross = da[:, 0] * db[:, 1] - da[:, 1] * db[:, 0]
    la, lb = np.hypot(da[:, 0], da[:, 1]), np.hypot(db[:, 0], db[:, 1])
    w = starts[k + 1] - starts[k]
    with np.errstate(divide="ignore", invalid="ignore"):
        corner = starts[k] + ((w[:, 0] * db[:, 1] - w[:, 1] * db[:, 0]) / cross)[:, None] * da
    shared = xy[lasts[k]]
    before, after = xy[np.maximum(lasts[k] - 1, firsts[k])], xy[np.minimum(lasts[k] + 1, lasts[k + 1])]
    spacing = np.maximum(np.hypot(*(shared - before).T), np.hypot(*(after - shared).T))
    with np.errstate(invalid="ignore"):
        ok = (la > 1e-9) & (lb > 1e-9) & (np.abs(cross) >= math.sin(CORNER_MIN_ANGLE_RAD) * la * lb)
        ok &= np.hypot(*(corner - shared).T) <= spacing + 3.0 * range_noise_std_m
    ends[k[ok]] = corner[ok]
    starts[k[ok] + 1] = corner[ok]
    return starts, ends
