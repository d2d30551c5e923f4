"""One car driven by the model: a healthy cooling system holds its temperatures, faults break it."""

from __future__ import annotations

import itertools

import pytest

from simulators.drivers import DRIVER_STYLES, STYLES
from simulators.faults import COOLANT_WARN_C
from simulators.physics import VEHICLE_CLASSES
from simulators.routes import RouteKind
from simulators.vehicle import Car, CarProfile

T0 = 1_795_000_000_000
LONG_DISTANCE: dict[RouteKind, float] = {"urban": 0.1, "suburban": 0.2, "highway": 0.7}
CITY: dict[RouteKind, float] = {"urban": 0.8, "suburban": 0.15, "highway": 0.05}
HEALTHY_COOLANT_MAX_C = 105.0  # the coolant_temp rule clears below this: a healthy car stays under it
HEALTHY_ATF_MAX_C = 100.0  # the trans_temp rule clears below this


def car(vehicle_class: str, driver: str, ambient_c: float, routes: dict[RouteKind, float]) -> Car:
    profile = CarProfile(
        "1FLEET00000000001", vehicle_class, DRIVER_STYLES[driver], routes, 30.0, (48.0, 11.0), ambient_c
    )
    return Car(profile, seed=1, start_ts=T0)


def hottest(c: Car, seconds: int) -> tuple[float, float]:
    """The highest (coolant, ATF) temperature over `seconds` ticks of 1 s."""
    coolant = atf = -100.0
    for i in range(1, seconds + 1):
        c.step(1.0, T0 + i * 1000)
        th = c.thermal
        coolant = th.coolant_c if th.coolant_c > coolant else coolant
        atf = th.trans_c if th.trans_c > atf else atf
    return coolant, atf


# Every class and driver style for an hour, from a cold morning to a hot day; the highway mix is
# the hard case (aggressive: 132 km/h with kick-downs onto every highway), the city one idles hot.
WEATHER_AND_ROADS = ((0.0, LONG_DISTANCE), (20.0, LONG_DISTANCE), (40.0, LONG_DISTANCE), (40.0, CITY))


@pytest.mark.parametrize(
    ("vehicle_class", "driver"), list(itertools.product(sorted(VEHICLE_CLASSES), STYLES))
)
def test_a_healthy_car_holds_coolant_and_atf_in_any_weather(vehicle_class, driver):
    for ambient_c, routes in WEATHER_AND_ROADS:
        coolant, atf = hottest(car(vehicle_class, driver, ambient_c, routes), 3600)
        where = (vehicle_class, driver, ambient_c, routes)
        assert coolant < HEALTHY_COOLANT_MAX_C, (where, coolant)
        assert atf < HEALTHY_ATF_MAX_C, (where, atf)


def test_the_healthy_check_sees_a_warm_engine():
    # Not vacuous: the hour above does warm the engine up to the thermostat.
    coolant, atf = hottest(car("suv", "aggressive", 40.0, LONG_DISTANCE), 3600)
    assert coolant > 90.0 and atf > 80.0


@pytest.mark.parametrize("kind", ["overheat_thermostat", "overheat_coolant_leak"])
@pytest.mark.parametrize("vehicle_class", sorted(VEHICLE_CLASSES))
def test_an_overheat_fault_still_crosses_the_warning_line(vehicle_class, kind):
    # The gentlest case: an eco driver in the city on a cold day, fault injected once warm.
    c = car(vehicle_class, "eco", 0.0, CITY)
    hottest(c, 1200)
    c.start_fault(kind, c.ts, duration_s=600.0)
    coolant, _ = hottest(c, 900)
    assert c.fault is not None and c.fault.onset_ts is not None
    assert coolant > COOLANT_WARN_C
