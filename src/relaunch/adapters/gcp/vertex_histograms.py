"""Latency percentiles from Cloud Monitoring distributions: the histogram arithmetic of `VertexEndpoint.health`."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any


def bucket_bounds(options: dict[str, Any], count: int) -> list[tuple[float, float]]:
    """[lower, upper) of each of `count` buckets of a Cloud Monitoring BucketOptions (the underflow bucket starts at
    0 for latencies; the overflow bucket has no upper bound, reported as its lower bound)."""
    if "linearBuckets" in options:
        lin = options["linearBuckets"]
        offset, width = float(lin.get("offset", 0)), float(lin.get("width", 0))
        edges = [offset + width * i for i in range(int(lin.get("numFiniteBuckets", 0)) + 1)]
    elif "exponentialBuckets" in options:
        exp = options["exponentialBuckets"]
        scale, growth = float(exp.get("scale", 0)), float(exp.get("growthFactor", 0))
        edges = [scale * growth**i for i in range(int(exp.get("numFiniteBuckets", 0)) + 1)]
    elif "explicitBuckets" in options:
        edges = [float(b) for b in options["explicitBuckets"].get("bounds", [])]
    else:
        edges = []
    bounds = [(0.0, edges[0])] if edges else []
    bounds += [(edges[i], edges[i + 1]) for i in range(len(edges) - 1)]
    bounds.append((edges[-1], edges[-1]) if edges else (0.0, 0.0))
    return [bounds[min(i, len(bounds) - 1)] for i in range(count)]


def merge_buckets(distributions: Iterable[dict[str, Any]]) -> dict[tuple[float, float], int]:
    """Counts per [lower, upper) bucket summed over Distribution values (points may use different bucket layouts)."""
    merged: dict[tuple[float, float], int] = {}
    for dist in distributions:
        counts = [int(c) for c in dist.get("bucketCounts", [])]
        if not counts and int(dist.get("count", 0)):  # no histogram: the mean stands for every value
            mean = float(dist.get("mean", 0.0))
            merged[(mean, mean)] = merged.get((mean, mean), 0) + int(dist["count"])
            continue
        for bound, n in zip(bucket_bounds(dist.get("bucketOptions", {}), len(counts)), counts, strict=True):
            if n:
                merged[bound] = merged.get(bound, 0) + n
    return merged


def percentile(buckets: dict[tuple[float, float], int], q: float) -> float | None:
    """The q-quantile (0..1) of a bucketed histogram, interpolated linearly inside its bucket; None when empty."""
    total = sum(buckets.values())
    if total == 0:
        return None
    rank = q * total
    seen = 0
    ordered: Sequence[tuple[tuple[float, float], int]] = sorted(buckets.items())
    for (lower, upper), n in ordered:
        if seen + n >= rank:
            return lower + (upper - lower) * ((rank - seen) / n)
        seen += n
    (lower, upper), _ = ordered[-1]
    return upper
