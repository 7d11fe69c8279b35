import time, concurrent.futures as cf, sys, statistics
sys.path.insert(0, "bench")
from bench import spin
import gofutures
def t1():
    a=time.perf_counter(); spin(200_000); return time.perf_counter()-a
def run(lib):
    with lib.InterpreterPoolExecutor(2) as ex:
        list(ex.map(spin, [20_000]*8))
        # one task at a time: the single-task cost in a subinterpreter
        single=[]
        for _ in range(8):
            a=time.perf_counter(); ex.submit(spin, 200_000).result(); single.append(time.perf_counter()-a)
        par=[]
        for _ in range(5):
            a=time.perf_counter(); list(ex.map(spin, [200_000]*16)); par.append(time.perf_counter()-a)
    return statistics.median(single)*1e3, statistics.median(par)*1e3
if __name__=="__main__":
    print("main interp one spin %.2f ms" % (statistics.median(t1() for _ in range(8))*1e3))
    for lib in (cf, gofutures):
        print(lib.__name__, "single %.2f ms, 16 in parallel %.1f ms" % run(lib))
