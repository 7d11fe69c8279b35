"""The programs that run in a child process, never in the pool's process:

- worker.py, a process-pool worker's loop (exec'd, forked by the zygote, or
  forked from the pool's process with the 'fork' start method);
- zygote.py, the helper process that forks workers on request.

The pool's process starts them and talks to them (_childstart.py, the Go
core's supervisor and zygote client); it imports worker.py only for
run_forked, which runs in a child forked from it (the 'fork' start
method), never in the pool's process itself.

An exec'd worker and the zygote load these files by path
(_childstart.WORKER_COMMAND and ZYGOTE_COMMAND), so that neither imports
the gofutures package, whose first use of the core loads the native
library and the Go runtime in it. So each file imports nothing from
gofutures nor from its neighbour: the zygote gets the worker module as
an argument, and what both must agree on with the Go core (frame kinds,
descriptor limits) they load by path from the package's generated
_constants.py, which imports nothing.
"""
