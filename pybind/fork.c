/* fork.c: fork(2) in a process whose Go runtime runs.
 *
 * A forked child has one thread, the one that forked; none of the Go
 * runtime's threads exist there, so a call into Go may wait forever (for a
 * lock held by a thread that is gone, for a goroutine nobody runs). Two
 * rules follow, implemented here:
 *
 * 1. Every child is marked (gf_forked, set by a pthread_atfork handler, so
 *    it covers os.fork(), multiprocessing, and forks made in C alike), and
 *    no entry point of the binding calls into Go in a marked process: the
 *    Python layer serves the child without the Go core (gofutures._fork),
 *    and objects the child inherited refuse to be used (gf_refuse_in_child).
 *    Nothing the child does, its exit included, reaches the parent's pools.
 *
 * 2. A process pool with the 'fork' start method forks its workers from
 *    this process (gf_fork_worker): the child runs the worker loop in pure
 *    Python (hooks.forked_worker: python/gofutures/_child/worker.py) and
 *    leaves with _exit, never returning into Go.
 */

#include "hot.h" /* first: Python.h defines _GNU_SOURCE, which dladdr needs */
#include <dlfcn.h>
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <string.h>
#include <sys/prctl.h>
#include <unistd.h>

volatile int gf_forked;
static pid_t parent_pid;

static void mark_child(void) { gf_forked = 1; }

int gf_refuse_in_child(const char *what) {
    if (!gf_forked) return 0;
    PyErr_Format(PyExc_RuntimeError,
                 "%s was created in process %d, before it forked this process (%d); gofutures' "
                 "pools and futures do not cross a fork: create them in this process "
                 "(gofutures works in a forked child, without its Go core)",
                 what, (int)parent_pid, (int)getpid());
    return -1;
}

static PyObject *forked_child(PyObject *Py_UNUSED(m), PyObject *Py_UNUSED(unused)) { return PyBool_FromLong(gf_forked); }

static PyMethodDef fork_functions[] = {
    {"forked_child", forked_child, METH_NOARGS,
     "forked_child() -> bool: this process is a fork of one that loaded gofutures (its Go core cannot run here)"},
    {NULL}};

static void find_go_signal_handlers(void);

int gf_fork_init(PyObject *module) {
    parent_pid = getpid();
    find_go_signal_handlers();
    if (pthread_atfork(NULL, NULL, mark_child) != 0) {
        PyErr_SetString(PyExc_OSError, "pthread_atfork failed");
        return -1;
    }
    return PyModule_AddFunctions(module, fork_functions);
}

/* ---- a worker forked from this process --------------------------------- */

static void flush_std_streams(void) {
    static const char *names[] = {"stdout", "stderr"};
    for (int i = 0; i < 2; i++) {
        PyObject *f = PySys_GetObject(names[i]); /* borrowed */
        if (f == NULL || f == Py_None) continue;
        PyObject *r = PyObject_CallMethod(f, "flush", NULL);
        if (r == NULL) PyErr_Clear(); else Py_DECREF(r);
    }
}

/* The Go runtime installed its own handlers for the signals it handles
 * (faults, SIGPIPE, SIGURG for preemption, ...). In the child nothing of it
 * can run, so those go back to what a Python process has: SIG_IGN for
 * SIGPIPE and SIGXFSZ (as Python sets at start-up), SIG_DFL otherwise.
 * Handlers that live outside this library (Python's, faulthandler's) stay.
 * go_handler[sig] is the runtime's handler, found at module init (once:
 * dladdr is too slow for every fork). */
static void *go_handler[NSIG];

static void *handler_of(int sig) {
    struct sigaction sa;
    if (sigaction(sig, NULL, &sa) != 0) return NULL;
    return (sa.sa_flags & SA_SIGINFO) ? (void *)sa.sa_sigaction : (void *)sa.sa_handler;
}

static void find_go_signal_handlers(void) {
    Dl_info ours, theirs;
    if (!dladdr((void *)find_go_signal_handlers, &ours)) return;
    for (int sig = 1; sig < NSIG; sig++) {
        void *h = handler_of(sig);
        if (h != NULL && h != (void *)SIG_DFL && h != (void *)SIG_IGN && dladdr(h, &theirs) &&
            theirs.dli_fbase == ours.dli_fbase)
            go_handler[sig] = h;
    }
}

static void reset_go_signal_handlers(void) {
    for (int sig = 1; sig < NSIG; sig++) {
        if (go_handler[sig] == NULL || handler_of(sig) != go_handler[sig]) continue;
        struct sigaction sa;
        memset(&sa, 0, sizeof sa);
        sa.sa_handler = (sig == SIGPIPE || sig == SIGXFSZ) ? SIG_IGN : SIG_DFL;
        sigaction(sig, &sa, NULL);
    }
    sigset_t none;
    sigemptyset(&none);
    pthread_sigmask(SIG_SETMASK, &none, NULL); /* a Go thread may block some */
}

/* The child's side: never returns. It dies with the process that forked it
 * (the thread that forked it lives as long as that process: the Go core's
 * forker), as the zygote's workers do, so a pool never leaves workers
 * behind. */
static void run_child(PyObject *hooks, long number, int task_fd, int result_fd, const int *close_fds,
                      long nclose, pid_t parent) {
    if (prctl(PR_SET_PDEATHSIG, SIGKILL) != 0 || getppid() != parent) _exit(1);
    PyOS_AfterFork_Child();
    reset_go_signal_handlers();
    for (long i = 0; i < nclose; i++)
        if (close_fds[i] != task_fd && close_fds[i] != result_fd) close(close_fds[i]);
    int code = 1;
    PyObject *r = PyObject_CallMethod(hooks, "forked_worker", "lii", number, task_fd, result_fd);
    if (r == NULL) {
        /* forked_worker returns its exit code; an error here is a bug. Not
         * PyErr_Print for SystemExit: that would finalize the interpreter. */
        if (PyErr_ExceptionMatches(PyExc_SystemExit)) PyErr_Clear(); else PyErr_Print();
    } else {
        code = (int)PyLong_AsLong(r);
        Py_DECREF(r);
    }
    flush_std_streams();
    _exit(code);
}

long gf_fork_worker(PyObject *hooks, long number, int task_fd, int result_fd, const int *close_fds, long nclose,
                    char **err) {
    if (gf_interpreter_exiting || gf_forked) {
        *err = strdup(gf_forked ? "this process is itself a forked child" : "the interpreter is exiting");
        return -1;
    }
    PyGILState_STATE gil = PyGILState_Ensure();
    /* What the parent printed must not be printed again by the child. */
    flush_std_streams();
    pid_t parent = getpid();
    PyOS_BeforeFork();
    pid_t pid = fork();
    if (pid == 0) run_child(hooks, number, task_fd, result_fd, close_fds, nclose, parent);
    int saved = errno;
    PyOS_AfterFork_Parent();
    PyGILState_Release(gil);
    if (pid < 0) {
        *err = strdup(strerror(saved));
        return -1;
    }
    return pid;
}
