"""The ProcessPoolExecutor examples of the seed documents
(not shipped with gofutures), run against gofutures.ProcessPoolExecutor.
(test_seed_examples.py ran seed 002's process examples on threads, before
gofutures had processes.)

The code is kept as printed in the seeds; the only changes are:
  * `concurrent.futures` is swapped for `gofutures`;
  * seed 002's sleeps (1-3 s per task) are shortened.
The seeds' scripts (`if __name__ == '__main__':`) are written to a file and
run as scripts, so their workers load the main module as __mp_main__, as
the stdlib's spawned workers do; they run unbuffered (PYTHONUNBUFFERED, from
the subprocess_env fixture), so what workers print reaches the pipe at once.
Seed 000's notebook example runs in this process, its functions travelling
by value as a notebook's do; its workers' output is captured with capfd.
"""
import math
import multiprocessing as mp
import os
import re
import subprocess
import sys
import textwrap
import time

import pytest

import gofutures

PRIMES_OUTPUT = """\
112272535095293 is prime: True
112582705942171 is prime: True
112272535095293 is prime: True
115280095190773 is prime: True
115797848077099 is prime: True
1099726899285419 is prime: False
"""

ASCTIME = r"(?:Mon|Tue|Wed|Thu|Fri|Sat|Sun) [A-Z][a-z]{2} [ \d]\d \d\d:\d\d:\d\d \d{4}"


def _run_file(directory, env, name, code, timeout=60):
    """Write code to directory/name and run it as a script: returns
    (pid, returncode, stdout, stderr)."""
    path = os.path.join(str(directory), name)
    with open(path, "w", encoding="utf-8") as f:
        f.write(textwrap.dedent(code))
    proc = subprocess.Popen([sys.executable, name], cwd=str(directory), env=env,
                            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, err = proc.communicate(timeout=10)
        pytest.fail("%s did not finish within %ss; stdout=%r stderr=%r" % (name, timeout, out, err))
    return proc.pid, proc.returncode, out, err


# ------------------------------------------------------------ PRIMES


def test_primes_notebook_example_seed000(capfd):
    # seed 000, "In [3]" and "In [4]" (without the cell's final
    # `await asyncio.sleep(3)`, which only keeps the kernel's output open).
    PRIMES = [
        112272535095293,
        112582705942171,
        112272535095293,
        115280095190773,
        115797848077099,
        1099726899285419]

    def is_prime(n):
        if n < 2:
            return False
        if n == 2:
            return True
        if n % 2 == 0:
            return False

        sqrt_n = int(math.floor(math.sqrt(n)))
        for i in range(3, sqrt_n + 1, 2):
            if n % i == 0:
                return False
        print(f"{mp.current_process()} {time.asctime()}")
        return True

    with gofutures.ProcessPoolExecutor() as executor:
        print(f"{mp.current_process()} {time.asctime()}")
        for number, prime in zip(PRIMES, executor.map(is_prime, PRIMES, chunksize=1)):
            print(f'{number:d} is prime: {prime}')
        print(f"{mp.current_process()} {time.asctime()}")

    # Leaving `with` waited for the workers to exit, so their (buffered)
    # output is all written; it may come before, between or after ours.
    out, err = capfd.readouterr()
    assert err == ""
    lines = out.splitlines()
    main_line = re.compile(r"<_MainProcess name='MainProcess' parent=None started> %s$" % ASCTIME)
    ours = [l for l in lines if main_line.match(l) or " is prime: " in l]
    assert len(ours) == 8, out
    assert main_line.match(ours[0]) and main_line.match(ours[-1]), out
    assert "".join(l + "\n" for l in ours[1:-1]) == PRIMES_OUTPUT
    # One line from a worker per prime (five of the six numbers).
    workers = [l for l in lines if l not in ours]
    assert len(workers) == 5, out
    for line in workers:
        assert re.fullmatch(r"<\w+ name='[^']+' parent=\w+ started> %s" % ASCTIME, line), line


def _current_process():
    return repr(mp.current_process())


def test_worker_current_process_as_in_seed000():
    # Seed 000 prints, from the workers, lines such as
    #   <ForkProcess name='ForkProcess-4' parent=1848926 started>
    # (SpawnProcess / ForkServerProcess with those start methods).
    with gofutures.ProcessPoolExecutor(1) as executor:
        seen = executor.submit(_current_process).result(timeout=30)
    assert re.fullmatch(r"<(Fork|Spawn|ForkServer)Process name='\1Process-\d+' parent=%d started>"
                        % os.getpid(), seen), seen


PRIMES_SCRIPTS = {
    # seed 001, "## ProcessPoolExecutor" (the docs' example, older is_prime).
    "seed001": """\
import gofutures
import math

PRIMES = [
    112272535095293,
    112582705942171,
    112272535095293,
    115280095190773,
    115797848077099,
    1099726899285419]

def is_prime(n):
    if n % 2 == 0:
        return False

    sqrt_n = int(math.floor(math.sqrt(n)))
    for i in range(3, sqrt_n + 1, 2):
        if n % i == 0:
            return False
    return True

def main():
    with gofutures.ProcessPoolExecutor() as executor:
        for number, prime in zip(PRIMES, executor.map(is_prime, PRIMES)):
            print('%d is prime: %s' % (number, prime))

if __name__ == '__main__':
    main()
""",
    # seed 004, "### 使用 ProcessPoolExecutor" (the docs' current example).
    "seed004": """\
import gofutures
import math

PRIMES = [
    112272535095293,
    112582705942171,
    112272535095293,
    115280095190773,
    115797848077099,
    1099726899285419]

def is_prime(n):
    if n < 2:
        return False
    if n == 2:
        return True
    if n % 2 == 0:
        return False

    sqrt_n = int(math.floor(math.sqrt(n)))
    for i in range(3, sqrt_n + 1, 2):
        if n % i == 0:
            return False
    return True

def main():
    with gofutures.ProcessPoolExecutor() as executor:
        for number, prime in zip(PRIMES, executor.map(is_prime, PRIMES)):
            print('%d is prime: %s' % (number, prime))

if __name__ == '__main__':
    main()
""",
}


@pytest.mark.parametrize("seed", list(PRIMES_SCRIPTS))
def test_primes_script_example(tmp_path, subprocess_env, seed):
    _, rc, out, err = _run_file(tmp_path, subprocess_env, "primes.py", PRIMES_SCRIPTS[seed])
    assert (rc, err) == (0, ""), err
    assert out == PRIMES_OUTPUT


# ------------------------------------------------------------ seed 002


def test_submit_result_loop_example_seed002(tmp_path, subprocess_env):
    # seed 002, "In [1]": result() right after submit() serialises the
    # tasks, and a task prints before its result is sent, so the order of
    # the lines is fixed.
    pid, rc, out, err = _run_file(tmp_path, subprocess_env, "test_thread.py", """\
        from gofutures import ProcessPoolExecutor,ThreadPoolExecutor
        import os,time,random

        def task(name,n):
            print(f"{name} is running, pid is {os.getpid()}")
            time.sleep(random.uniform(0.001,0.01))
            return n*n

        if __name__ == "__main__":
            pool=ProcessPoolExecutor(max_workers=5)

            for i in range(10):
                future=pool.submit(task,f"egon{i}",i)
                print(f"egon{i}'s result is {future.result()}") #* 如果注销该行，会直接异步提交下一个，否则会等到有结果才会继续下一个提交

            print('主')
        """)
    assert (rc, err) == (0, ""), err
    lines = out.splitlines()
    assert len(lines) == 21, out
    worker_pids = set()
    for i in range(10):
        m = re.fullmatch(r"egon%d is running, pid is (\d+)" % i, lines[2 * i])
        assert m, out
        worker_pids.add(int(m.group(1)))
        assert lines[2 * i + 1] == f"egon{i}'s result is {i * i}"
    assert lines[20] == "主"
    # The tasks ran in worker processes, at most max_workers of them.
    assert pid not in worker_pids
    assert 1 <= len(worker_pids) <= 5


SHUTDOWN_SCRIPTS = {
    # seed 002, "In [2]": shutdown(wait=True) returns once every task is done.
    "shutdown": """\
        from gofutures import ProcessPoolExecutor
        import os,time,random

        def task(name):
            print(f"{name} is running, pid is {os.getpid()}")
            time.sleep(random.uniform(0.01,0.1))

        if __name__ == "__main__":
            pool=ProcessPoolExecutor(max_workers=5)

            for i in range(10):
                pool.submit(task,f"egon{i}")

            pool.shutdown(wait=True)

            print('主')
        """,
    # seed 002, its commented-out equivalent: leaving `with` waits the same.
    "with": """\
        from gofutures import ProcessPoolExecutor
        import os,time,random

        def task(name):
            print(f"{name} is running, pid is {os.getpid()}")
            time.sleep(random.uniform(0.01,0.1))

        if __name__ == "__main__":
            with ProcessPoolExecutor(max_workers=5) as executor:
                for i in range(10):
                    executor.submit(task,f"egon{i}")

            print('主')
        """,
}


@pytest.mark.parametrize("variant", list(SHUTDOWN_SCRIPTS))
def test_shutdown_wait_example_seed002(tmp_path, subprocess_env, variant):
    pid, rc, out, err = _run_file(tmp_path, subprocess_env, "test_thread.py",
                                  SHUTDOWN_SCRIPTS[variant])
    assert (rc, err) == (0, ""), err
    # Every task printed before '主'. print() writes the text and the
    # newline separately, so lines from several workers may interleave:
    # match the messages, not lines.
    msg = re.compile(r"egon(\d) is running, pid is (\d+)")
    found = msg.findall(out)
    assert sorted(i for i, _ in found) == [str(i) for i in range(10)], out
    assert out.endswith("主\n")
    assert msg.sub("", out).replace("\n", "") == "主", out
    worker_pids = {int(p) for _, p in found}
    assert pid not in worker_pids
    assert 1 <= len(worker_pids) <= 5
