"""OS threads and locks in a gunicorn gevent worker, whose monkey-patching makes
`threading` and `_thread` cooperative (greenlets on the event loop's thread). The forward
passes run on OS threads (`batching`), take turns through an OS lock
(`multimodel_service`) and split over OS threads (`runtime.Runtime.in_parts`): what they
start or take must be the OS's, here, in one place."""

from __future__ import annotations

import _thread
import sys
from collections.abc import Callable
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
