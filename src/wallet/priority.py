"""Thread scheduling priorities: the group-commit writer's thread keeps the process's priority,
and the threads that compete with it for the one core and the interpreter lock yield to it.

Why: the event loop and the writer share one interpreter lock. Every SQL statement of the writer
lets go of the lock, and at equal priority the busy event loop takes it back before the writer is
scheduled, so a unit of work waits for the loop again and again, and every request behind it
waits longer (bench/README.md, "30 November: where a write's time went": a unit of work of 16
commands took 4 ms under load, 3 ms with the loop yielding). At a lower priority, the loop hands
the lock over as soon as the writer is runnable. A thread lowers its own priority: that needs no
privilege, where raising the writer's would. A thread inherits its creator's priority, so the
loop lowers its own only once the writer thread has started.
"""

import logging
import os
import sys
import threading

log = logging.getLogger(__name__)


def lower_thread_priority(nice: int) -> None:
    """Lower the calling thread's scheduling priority by ``nice`` steps (Linux; elsewhere a
    thread id is not a valid target of setpriority, and nothing is done)."""
    if nice <= 0 or sys.platform != "linux":
        return
    thread_id = threading.get_native_id()
    try:
        now = os.getpriority(os.PRIO_PROCESS, thread_id)
        os.setpriority(os.PRIO_PROCESS, thread_id, now + nice)
    except OSError as error:
        log.warning("could not lower a thread's priority: %s", error)
