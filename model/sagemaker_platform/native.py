"""OS threads and locks in a gunicorn gevent worker, whose monkey-patching makes
`threading` and `_thread` cooperative (greenlets on the event loop's thread). The forward
passes run on OS threads (`batching`), take turns through an OS lock
(`multimodel_service`) and split over OS threads (`runtime.Runtime.in_parts`): what they
start or take must be the OS's, here, in one place, and so must the ident that says
where a stuck one is (`stack_of`)."""

from __future__ import annotations

import _thread
import sys
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any


def gevent_active() -> bool:
    """Whether gevent has monkey-patched `threading` in this process."""
    monkey = sys.modules.get("gevent.monkey")
    return bool(monkey and monkey.is_module_patched("threading"))


def os_thread(name: str) -> Any:
    """`_thread.<name>` as the OS provides it (`start_new_thread`, `allocate_lock`,
    `RLock`), also where gevent has patched `_thread`: its saved original."""
    if gevent_active():
        return sys.modules["gevent.monkey"].get_original("_thread", name)
    return getattr(_thread, name)


def capture(fn: Callable, args: tuple) -> tuple[bool, Any]:
    """`fn(*args)` with its exception handed back as a value, (ok, result or exception),
    for the thread that waits on it to raise: gevent's pool would print each one again."""
    try:
        return True, fn(*args)
    except BaseException as exc:
        return False, exc


def here() -> tuple[int, Any]:
    """The calling thread, for `stack_of`: its OS ident (the key of
    `sys._current_frames()`; gevent's patched `get_ident` gives a greenlet's), and under
    gevent its greenlet, which a blocking call patched by gevent suspends while that
    thread's own hub runs."""
    greenlet = sys.modules.get("greenlet") if gevent_active() else None
    return os_thread("get_ident")(), greenlet.getcurrent() if greenlet else None


def stack_of(thread: tuple[int, Any] | None, depth: int = 8) -> str:
    """Where `thread` (from `here`) is now, innermost first, on one line for a log:
    `file.py:LINE function < file.py:LINE caller ...`; empty if it runs no Python."""
    if thread is None:
        return ""
    ident, greenlet = thread
    # A suspended greenlet has its own frame; a running one is the thread's.
    frame = getattr(greenlet, "gr_frame", None) or sys._current_frames().get(ident)
    if frame is None:
        return ""
    frames = traceback.extract_stack(frame)[-depth:]
    return " < ".join(f"{Path(f.filename).name}:{f.lineno} {f.name}" for f in reversed(frames))


def native_logging_locks() -> None:
    """Give logging the OS's locks again, once gevent has patched this process.

    gevent's `patch_all` turns every RLock that exists when it patches (logging's own
    and each handler's, which `logs.setup` made before it) into a lock of greenlets, and
    handlers made after it get one too. The loads and forward passes run on OS threads
    and log there: an OS thread that waited on such a lock while the event loop's thread
    held it could wait for good, and its model never loaded (a multi-model load hung
    that way). The platform's handler holds its lock only while it writes a line to
    standard output, never yielding to the event loop, so an OS lock serves the greenlets
    as well. A handler of your own that sends lines over the network must queue them for a
    thread of its own (as CloudWatch handlers do), not send them in `emit`."""
    if not gevent_active():
        return
    import logging

    rlock = os_thread("RLock")
    logging._lock = rlock()  # getLogger's and the handlers' registry
    for ref in list(logging._handlerList):
        handler = ref()
        if handler is not None:
            handler.lock = rlock()
    original = logging.Handler.createLock
    if getattr(original, "native", False):
        return

    def create_lock(self) -> None:
        original(self)
        self.lock = rlock()

    create_lock.native = True
    logging.Handler.createLock = create_lock
