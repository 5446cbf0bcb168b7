"""Reading ahead in a thread: order, errors, the bound on items held, and stopping early."""

import threading
import time

import pytest

from crm_assets.prefetch import prefetched


def test_items_arrive_in_order():
    with prefetched(iter(range(250)), depth=3, name="numbers") as items:
        assert list(items) == list(range(250))


def test_error_follows_earlier_items():
    def items():
        yield 1
        yield 2
        raise RuntimeError("page 3 is broken")

    received = []
    with pytest.raises(RuntimeError, match="page 3 is broken"):
        with prefetched(items(), depth=5, name="broken") as reader:
            for item in reader:
                received.append(item)
    assert received == [1, 2]


def test_read_ahead_is_bounded():
    produced = []
    closed = threading.Event()

    def items():
        try:
            for number in range(1000):
                produced.append(number)
                yield number
        finally:
            closed.set()

    with prefetched(items(), depth=4, name="bounded") as reader:
        assert next(reader) == 0
        time.sleep(0.5)
        # One item taken, four waiting in the buffer, one read and waiting for room.
        assert len(produced) == 6
    assert closed.wait(timeout=2)
    assert len(produced) == 6
    assert not [thread for thread in threading.enumerate() if thread.name == "prefetch bounded"]


def test_depth_must_be_positive():
    with pytest.raises(ValueError, match="depth must be at least 1, got 0"):
        with prefetched(iter([]), depth=0, name="none"):
            pass
