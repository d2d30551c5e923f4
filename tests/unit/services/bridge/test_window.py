"""The ack window: acks leave in arrival order, only for confirmed writes, and stop at a failure."""

from __future__ import annotations

import asyncio

import pytest

from services.bridge.window import AckWindow, Entry, WriteFailed


def future() -> asyncio.Future[object]:
    return asyncio.get_running_loop().create_future()


def entry(mid: int, write: asyncio.Future[object], qos: int = 1, reason: str | None = None) -> Entry:
    return Entry(mid, qos, write, float(mid), reason)


def mids(entries: list[Entry]) -> list[int]:
    return [e.mid for e in entries]


async def test_empty_window_has_no_head_and_nothing_ready():
    window = AckWindow()
    assert window.head() is None
    assert window.pop_ready() == []
    assert len(window) == 0


async def test_acks_leave_in_arrival_order_when_writes_complete_in_reverse():
    a, b, c = future(), future(), future()
    window = AckWindow()
    # three batches shared by interleaved messages: 1a 2b 3c 4a 5b 6c
    for mid, write in enumerate([a, b, c, a, b, c], start=1):
        window.add(entry(mid, write))
    assert window.head() == entry(1, a)

    c.set_result(None)
    assert window.pop_ready() == []  # 1 waits for a: nothing may pass it
    b.set_result(None)
    assert window.pop_ready() == []
    assert len(window) == 6

    a.set_result(None)
    assert mids(window.pop_ready()) == [1, 2, 3, 4, 5, 6]
    assert len(window) == 0


async def test_pop_ready_returns_only_the_confirmed_prefix_each_time():
    a, b, c = future(), future(), future()
    window = AckWindow()
    for mid, write in enumerate([a, b, a, c, b], start=1):
        window.add(entry(mid, write))

    a.set_result(None)
    assert mids(window.pop_ready()) == [1]  # 2 is on b; 3 (on a) must wait behind it
    assert window.head() == entry(2, b)
    c.set_result(None)
    assert window.pop_ready() == []
    b.set_result(None)
    assert mids(window.pop_ready()) == [2, 3, 4, 5]


async def test_a_failed_write_returns_the_confirmed_prefix_first_then_raises():
    ok, bad, later = future(), future(), future()
    window = AckWindow()
    for mid, write in enumerate([ok, ok, bad, later], start=1):
        window.add(entry(mid, write))
    cause = RuntimeError("broker gone")
    bad.set_exception(cause)
    later.set_result(None)
    ok.set_result(None)

    assert mids(window.pop_ready()) == [1, 2]
    for _ in range(2):  # raised again and again: the window is left untouched
        with pytest.raises(WriteFailed) as info:
            window.pop_ready()
        assert info.value.cause is cause
        assert "broker gone" in str(info.value)
        assert window.head() == entry(3, bad)
        assert len(window) == 2


async def test_a_cancelled_write_counts_as_a_failure():
    write = future()
    window = AckWindow()
    window.add(entry(1, write))
    write.cancel()
    with pytest.raises(WriteFailed) as info:
        window.pop_ready()
    assert isinstance(info.value.cause, asyncio.CancelledError)
    assert len(window) == 1


async def test_release_empties_the_window_and_returns_everything_in_order():
    done, pending = future(), future()
    done.set_result(None)
    window = AckWindow()
    for mid, write in enumerate([done, pending, done], start=1):
        window.add(entry(mid, write, qos=mid % 2, reason="bad_vin" if mid == 2 else None))
    released = window.release()
    assert mids(released) == [1, 2, 3]
    assert [e.reason for e in released] == [None, "bad_vin", None]
    assert len(window) == 0
    assert window.head() is None
    assert window.pop_ready() == []
