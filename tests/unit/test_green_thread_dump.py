"""``kill -USR1`` on a service process writes where each green thread waits (shared/debug.py)."""
import os
import signal

import eventlet

from shared import debug


class Gone:
    pass


def test_usr1_writes_the_stack_of_a_waiting_green_thread(capfd):
    import weakref

    dead_proxy = weakref.proxy(Gone())  # a process has these; asking one its type raises ReferenceError
    assert dead_proxy is not None
    def parked_in_a_queue_wait():
        eventlet.sleep(30)

    thread = eventlet.spawn(parked_in_a_queue_wait)
    eventlet.sleep(0)  # let it start and park
    previous = signal.getsignal(signal.SIGUSR1)
    try:
        debug.install()
        os.kill(os.getpid(), signal.SIGUSR1)
        eventlet.sleep(0.05)
    finally:
        signal.signal(signal.SIGUSR1, previous)
        thread.kill()
    err = capfd.readouterr().err
    assert f"pid {os.getpid()}" in err and "green threads ===" in err
    assert "parked_in_a_queue_wait" in err
