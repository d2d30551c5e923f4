"""Routes: a sequence of urban, suburban and highway segments with their limits and stops."""

from __future__ import annotations

import dataclasses
import math
import random
from typing import Literal

RouteKind = Literal["urban", "suburban", "highway"]
ROUTE_KINDS: tuple[RouteKind, ...] = ("urban", "suburban", "highway")


@dataclasses.dataclass(frozen=True)
class SegmentKind:
    """What a kind of road looks like."""

    limit_kmh: float
    length_m: tuple[float, float]  # uniform range of one segment's length
    stop_every_m: float  # mean distance between stops (lights, junctions); inf: none
    grade: tuple[float, float]  # uniform range of road grade (rise / run)


SEGMENT_KINDS: dict[RouteKind, SegmentKind] = {
    "urban": SegmentKind(50.0, (300.0, 1200.0), 350.0, (-0.02, 0.02)),
    "suburban": SegmentKind(70.0, (800.0, 3000.0), 1200.0, (-0.03, 0.03)),
    "highway": SegmentKind(120.0, (3000.0, 12000.0), math.inf, (-0.02, 0.02)),
}


@dataclasses.dataclass(frozen=True)
class Segment:
    """One stretch of road."""

    kind: RouteKind
    length_m: float
    limit_kmh: float
    grade: float
    stops_at_m: tuple[float, ...]  # distances from the segment start where the car must stop
    heading_deg: float


@dataclasses.dataclass(frozen=True)
class Route:
    """A trip: segments driven in order, from an origin to a destination."""

    segments: tuple[Segment, ...]
    origin: tuple[float, float]
    destination: tuple[float, float]
    mix: dict[RouteKind, float]  # share of distance per kind (ground truth for the lake)

    @property
    def length_m(self) -> float:
        """Total length."""
        return sum(s.length_m for s in self.segments)


def _segment(rng: random.Random, kind: RouteKind, heading: float) -> Segment:
    spec = SEGMENT_KINDS[kind]
    length = rng.uniform(*spec.length_m)
    stops: list[float] = []
    if math.isfinite(spec.stop_every_m):
        at = rng.expovariate(1.0 / spec.stop_every_m)
        while at < length:
            stops.append(at)
            at += max(80.0, rng.expovariate(1.0 / spec.stop_every_m))
    return Segment(kind, length, spec.limit_kmh, rng.uniform(*spec.grade), tuple(stops), heading)


def make_route(
    rng: random.Random, weights: dict[RouteKind, float], length_km: float, origin: tuple[float, float]
) -> Route:
    """A route of about `length_km`, drawing segment kinds by `weights` (urban at both ends)."""
    kinds = list(weights)
    probs = [weights[k] for k in kinds]
    heading = rng.uniform(0, 360)
    segments = [_segment(rng, "urban", heading)]
    total = segments[0].length_m
    while total < length_km * 1000:
        heading = (heading + rng.uniform(-60, 60)) % 360
        seg = _segment(rng, rng.choices(kinds, probs)[0], heading)
        segments.append(seg)
        total += seg.length_m
    segments.append(_segment(rng, "urban", heading))
    lat, lon = origin
    for seg in segments:
        lat, lon = advance(lat, lon, seg.heading_deg, seg.length_m)
    by_kind = {k: sum(s.length_m for s in segments if s.kind == k) for k in ROUTE_KINDS}
    length = sum(by_kind.values())
    mix = {k: round(v / length, 4) for k, v in by_kind.items()}
    return Route(tuple(segments), origin, (round(lat, 6), round(lon, 6)), mix)


def advance(lat: float, lon: float, heading_deg: float, distance_m: float) -> tuple[float, float]:
    """Move `distance_m` along a heading on a spherical earth (small distances)."""
    rad = math.radians(heading_deg)
    dlat = distance_m * math.cos(rad) / 111_320.0
    lat_scale = math.cos(math.radians(lat))
    dlon = distance_m * math.sin(rad) / (111_320.0 * (lat_scale if lat_scale > 0.01 else 0.01))
    return lat + dlat, lon + dlon
