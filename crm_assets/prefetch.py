"""Run an iterator in a background thread, a bounded number of items ahead of its reader."""

import queue
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

T = TypeVar("T")

# How often a blocked thread checks whether the other side has stopped, in seconds.
POLL_SECONDS = 0.1


class _End:
    """Marker of the end of the items, with the error that ended them, if any."""

    def __init__(self, error: BaseException | None = None) -> None:
        self.error = error


@contextmanager
def prefetched(items: Iterator[T], depth: int, name: str) -> Iterator[Iterator[T]]:
    """Yield an iterator over `items`, which a thread named after `name` reads up to `depth` ahead.

    An error raised by `items` reaches the reader after the items before it. Leaving the
    block early stops the thread after the item it is reading.
    """
    if depth < 1:
        raise ValueError(f"depth must be at least 1, got {depth}.")
    buffer: queue.Queue[Any] = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def put(item: Any) -> bool:
        while not stop.is_set():
            try:
                buffer.put(item, timeout=POLL_SECONDS)
                return True
            except queue.Full:
                continue
        return False

    def produce() -> None:
        try:
            for item in items:
                if not put(item):
                    return
        except BaseException as error:  # handed to the reader, which raises it
            put(_End(error))
            return
        finally:
            close = getattr(items, "close", None)
            if close is not None:
                close()
        put(_End())

    def read() -> Iterator[T]:
        while True:
            item = buffer.get()
            if isinstance(item, _End):
                if item.error is not None:
                    raise item.error
                return
            yield item

    thread = threading.Thread(target=produce, name=f"prefetch {name}", daemon=True)
    thread.start()
    try:
        yield read()
    finally:
        stop.set()
        thread.join(timeout=POLL_SECONDS * 2)
