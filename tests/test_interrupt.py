"""Ctrl-C interrupts gofutures' blocking calls promptly.

Each case runs in a subprocess: a worker runs a 30 s sleep, the main thread blocks
in one gofutures call and prints "ready" just before. The test waits for
"ready", sends SIGINT after ~0.5 s, and expects the subprocess to print that
it caught KeyboardInterrupt and to exit within a few seconds (it calls
os._exit so it does not wait for the sleeping worker).
"""

import signal
import time

import pytest

SCRIPT = """
import os, signal, sys, threading, time
# Python leaves SIGINT ignored if it was ignored at start (e.g. a background
# job); make sure Ctrl-C raises KeyboardInterrupt here.
signal.signal(signal.SIGINT, signal.default_int_handler)
import gofutures

started = threading.Event()

def long_task(*args):
    started.set()
    time.sleep(30)

ex = gofutures.ThreadPoolExecutor(max_workers=1)
fut = ex.submit(long_task)
if not started.wait(10):  # the long task is running before we block
    print("task did not start", flush=True)
    os._exit(3)
try:
    # Inside the try: a SIGINT that comes before the call blocks (a busy
    # machine may stall this thread) is still caught here.
    print("ready", flush=True)
{block}
except KeyboardInterrupt:
    print("caught KeyboardInterrupt", flush=True)
    ex.shutdown(wait=False, cancel_futures=True)
    os._exit(0)
except BaseException as e:
    print("unexpected", type(e).__name__, e, flush=True)
    os._exit(2)
else:
    print("returned without interrupt", flush=True)
    os._exit(1)
"""

BLOCKS = {
    "result": "fut.result()",
    "result_timeout": "fut.result(timeout=60)",
    "exception": "fut.exception()",
    "wait_all": "gofutures.wait([fut])",
    "wait_first_completed": "gofutures.wait([fut], return_when=gofutures.FIRST_COMPLETED)",
    "as_completed": "for f in gofutures.as_completed([fut]): pass",
    "as_completed_timeout": "for f in gofutures.as_completed([fut], timeout=60): pass",
    "map": "for r in ex.map(long_task, [1, 2]): pass",
    "shutdown_wait": "ex.shutdown(wait=True, cancel_futures=True)",
    "with_block_exit": "with ex: pass",
}


@pytest.mark.parametrize("name", list(BLOCKS))
def test_ctrl_c_interrupts_blocking_call(spawn_script, name):
    code = SCRIPT.format(block="    " + BLOCKS[name])
    proc = spawn_script(code)
    assert proc.wait_for_line("ready", timeout=30), (proc.stdout, proc.stderr)
    time.sleep(0.5)  # let the main thread block in the call
    proc.send_signal(signal.SIGINT)
    rc = proc.wait(timeout=3)
    assert rc is not None, "still blocked 3 s after SIGINT; output: %r" % proc.stdout
    assert "caught KeyboardInterrupt" in proc.stdout.splitlines(), (proc.stdout, proc.stderr)
    assert rc == 0
