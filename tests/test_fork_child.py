"""A child forked from a process that has loaded gofutures runs pure Python
(a stdlib fork-context pool's worker, a multiprocessing Manager's server,
which CPython's 3.14 suite starts for each process-pool test): nothing in
gofutures may call into Go there, where the Go runtime's threads are gone and
a call never returns."""

import textwrap


def test_a_forked_child_can_collect_garbage(run_script):
    out = run_script(
        textwrap.dedent("""
        import gc, os, sys
        import gofutures

        with gofutures.ThreadPoolExecutor(2) as ex:
            assert ex.submit(pow, 2, 5).result() == 32
        pid = os.fork()
        if pid == 0:
            gc.collect()  # gopy v0.5.0's gc callback ran Go's collector here: it hung
            os._exit(7)
        _, status = os.waitpid(pid, 0)
        print(os.waitstatus_to_exitcode(status))
    """),
        timeout=30,
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "7"
