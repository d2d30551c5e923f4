"""Driver styles: how hard a driver accelerates, how fast they cruise, how long they idle."""

from __future__ import annotations

import dataclasses
from typing import Literal

Style = Literal["eco", "normal", "aggressive"]
STYLES: tuple[Style, ...] = ("eco", "normal", "aggressive")


@dataclasses.dataclass(frozen=True)
class DriverStyle:
    """Parameters one style applies to every car it drives."""

    name: Style
    accel_ms2: float  # typical launch acceleration
    decel_ms2: float  # typical braking deceleration
    cruise_factor: float  # cruise speed / speed limit
    shift_rpm: float  # upshift point: eco short-shifts, aggressive revs
    idle_stop_s: float  # seconds idling at a stop before moving off (queueing, dawdling)
    engine_off_at_long_stop: bool  # switches the engine off at long stops (eco habit)
    speed_noise_kmh: float  # how much speed wanders around the target while cruising


DRIVER_STYLES: dict[Style, DriverStyle] = {
    "eco": DriverStyle("eco", 1.0, 1.2, 0.93, 1800.0, 8.0, True, 1.0),
    "normal": DriverStyle("normal", 1.6, 2.0, 1.00, 2300.0, 15.0, False, 2.0),
    "aggressive": DriverStyle("aggressive", 2.8, 3.5, 1.10, 3200.0, 25.0, False, 4.0),
}
