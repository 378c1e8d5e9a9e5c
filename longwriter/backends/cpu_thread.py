"""One thread for all of torch's CPU work in this process.

torch computes on CPU with OpenMP (libgomp), which gives every thread that runs parallel work a
team of threads of its own. Once the teams hold more threads than the machine has cores, libgomp
stops spin-waiting between parallel regions, and each of the ~200 small matrix products of a
decode step then puts its team to sleep and wakes it again. Measured on 2 cores with the
embedded model: 33 ms a decode step, against 57-60 ms for the rest of the process's life once a
second thread had run torch work (one forward pass, or MiniLM embedding four sentences, was
enough). So on CPU the engine's steps, model loading, the checker's embeddings and the sources'
index all run in this one thread; code running elsewhere hands its work over with :func:`call`."""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

T = TypeVar("T")

_lock = threading.Lock()
_executor: ThreadPoolExecutor | None = None
_ident: int | None = None  # the thread's id, once it has started


def _mark() -> None:
    global _ident
    _ident = threading.get_ident()


def executor() -> ThreadPoolExecutor:
    """The process's torch CPU thread (started on first use)."""
    global _executor
    with _lock:
        if _executor is None:
            _executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="longwriter-torch", initializer=_mark)
        return _executor


def inside() -> bool:
    """True when the caller is the torch CPU thread itself."""
    return _ident is not None and threading.get_ident() == _ident


def call(fn: Callable[..., T], *args: Any) -> T:
    """``fn(*args)`` run in the torch CPU thread, waiting for its result (called from that
    thread, it runs at once: waiting for itself would never end)."""
    if inside():
        return fn(*args)
    return executor().submit(fn, *args).result()
