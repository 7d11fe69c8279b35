"""make demo: the seed documents' examples, run on gofutures, then a short
side-by-side timing against concurrent.futures.

Every example is the documents' code with `concurrent.futures` swapped for
`gofutures`. The URL examples fetch from a local HTTP server (this machine
has no internet), serving pages under the documents' URL paths.
"""
import http.server
import math
import statistics
import sys
import threading
import time
import urllib.request

import concurrent.futures
import gofutures


def banner(title):
    print("\n== %s ==" % title)


def example_pow():
    banner("submit(pow, 323, 1235) with max_workers=1")
    with gofutures.ThreadPoolExecutor(max_workers=1) as executor:
        future = executor.submit(pow, 323, 1235)
        print(future.result())


class _Pages(http.server.BaseHTTPRequestHandler):
    sizes = {"/cnn": 3469, "/bbc": 1821, "/wsj": 912}

    def do_GET(self):
        if self.path == "/foxnews":
            self.send_error(403, "Forbidden")
            return
        body = b"x" * self.sizes.get(self.path, 0)
        self.send_response(200 if self.path in self.sizes else 404)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


def example_urls():
    banner("load_url + as_completed (local server)")
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Pages)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    base = "http://127.0.0.1:%d" % server.server_address[1]
    URLS = [base + "/foxnews", base + "/cnn", base + "/wsj", base + "/bbc",
            "http://127.0.0.1:1/some-made-up-domain"]

    def load_url(url, timeout):
        with urllib.request.urlopen(url, timeout=timeout) as conn:
            return conn.read()

    with gofutures.ThreadPoolExecutor(max_workers=5) as executor:
        future_to_url = {executor.submit(load_url, url, 60): url for url in URLS}
        for future in gofutures.as_completed(future_to_url):
            url = future_to_url[future]
            try:
                data = future.result()
            except Exception as exc:
                print('%r generated an exception: %s' % (url, exc))
            else:
                print('%r page is %d bytes' % (url, len(data)))
    server.shutdown()


def example_square():
    banner("map(square, [2, 3, 4, 5])")
    values = [2, 3, 4, 5]

    def square(n):
        return n * n

    with gofutures.ThreadPoolExecutor(max_workers=3) as executor:
        results = executor.map(square, values)
    for result in results:
        print(result)


def example_done():
    banner("done() before and after the task finishes")

    def task(message):
        time.sleep(0.5)
        return message

    executor = gofutures.ThreadPoolExecutor(5)
    future = executor.submit(task, ("Completed"))
    print(future.done())
    time.sleep(1)
    print(future.done())
    print(future.result())
    executor.shutdown()


def example_thread_names():
    banner("worker thread names (map over range(1, 12), 5 workers)")
    names = set()

    def task(i):
        names.add(threading.current_thread().name)
        time.sleep(0.05)

    with gofutures.ThreadPoolExecutor(max_workers=5) as executor:
        executor.map(task, range(1, 12))
    print(sorted(names))
    print("主")


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


def example_primes():
    banner("ProcessPoolExecutor: PRIMES")
    with gofutures.ProcessPoolExecutor() as executor:
        for number, prime in zip(PRIMES, executor.map(is_prime, PRIMES)):
            print('%d is prime: %s' % (number, prime))


def example_deadlocks():
    banner("the two deadlock examples: the stdlib hangs forever, gofutures raises DeadlockError")

    def wait_on_b():
        time.sleep(0.3)
        return b.result()  # b never completes: it is waiting on a

    def wait_on_a():
        time.sleep(0.3)
        return a.result()  # a never completes: it is waiting on b

    with gofutures.ThreadPoolExecutor(max_workers=2) as executor:
        a = executor.submit(wait_on_b)
        b = executor.submit(wait_on_a)
        print("wait_on_b:", a.exception())

    def wait_on_future():
        f = executor.submit(pow, 5, 2)
        return f.result()  # the only worker is running this very function

    with gofutures.ThreadPoolExecutor(max_workers=1) as executor:
        print("wait_on_future:", executor.submit(wait_on_future).exception())
    with gofutures.ThreadPoolExecutor(max_workers=1, grow_on_block=True) as executor:
        print("wait_on_future with grow_on_block=True:", executor.submit(wait_on_future).result())


def crash(n):
    if n == 3:
        import ctypes
        ctypes.string_at(0)  # a segmentation fault in this worker
    return n * n


def example_survive():
    banner("ProcessPoolExecutor(survive=True): a worker that crashes fails only its call")
    with gofutures.ProcessPoolExecutor(2, survive=True) as executor:
        for n, f in enumerate([executor.submit(crash, n) for n in range(6)]):
            try:
                print(n, f.result())
            except gofutures.WorkerDiedError as e:
                print(n, "WorkerDiedError:", e)
        print("stats:", executor.stats())


def _time(fn, rounds=3):
    samples = []
    for _ in range(rounds):
        t = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - t)
    return statistics.median(samples)


def timing():
    banner("timing: median of 3 rounds, gofutures vs concurrent.futures")

    def round_trip(mod):
        def run():
            for _ in range(100_000):
                f = mod.Future()
                f.set_running_or_notify_cancel()
                f.set_result(1)
                f.result()
        return run

    def submit_result(mod):
        def run():
            with mod.ThreadPoolExecutor(4) as ex:
                for f in [ex.submit(int, i) for i in range(50_000)]:
                    f.result()
        return run

    def thread_map(mod):
        def run():
            with mod.ThreadPoolExecutor(4) as ex:
                for _ in ex.map(int, range(200_000)):
                    pass
        return run

    def as_completed(mod):
        def run():
            with mod.ThreadPoolExecutor(4) as ex:
                for _ in mod.as_completed([ex.submit(int, i) for i in range(50_000)]):
                    pass
        return run

    def process_start(mod):
        def run():
            with mod.ProcessPoolExecutor(2) as ex:
                ex.submit(abs, -1).result()
        return run

    rows = [("Future round trip x100k", round_trip),
            ("submit + result x50k, 4 workers", submit_result),
            ("map over 200k items, 4 workers", thread_map),
            ("as_completed over 50k, 4 workers", as_completed),
            ("process pool start..first result, 2", process_start)]
    print("%-36s %10s %10s %8s" % ("scenario", "stdlib s", "gofutures", "ratio"))
    for name, make in rows:
        std = _time(make(concurrent.futures))
        ours = _time(make(gofutures))
        print("%-36s %10.3f %10.3f %8.2f" % (name, std, ours, ours / std))
    print("(ratio = gofutures / stdlib; below 1 is faster)")


def main():
    print("gofutures %s on Python %s" % (gofutures.__version__, sys.version.split()[0]))
    example_pow()
    example_urls()
    example_square()
    example_done()
    example_thread_names()
    example_primes()
    example_deadlocks()
    example_survive()
    timing()


if __name__ == "__main__":
    main()
