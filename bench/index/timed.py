"""Run a faiss peer script unchanged and time its phases from the inside.

usage: timed.py TIMINGS.json SCRIPT ARGS...

SCRIPT runs as __main__ with sys.argv = [SCRIPT, ARGS...] (its stdout is untouched). Before it
starts, numpy.load and the add / range_search methods of faiss' binary indexes are wrapped
with timers, so the script needs no change. TIMINGS.json gets, in seconds:
  import  importing numpy and faiss
  load    numpy.load (bank and queries .npy)
  build   index.add (for IndexBinaryMultiHash this builds the 16 hash tables)
  search  index.range_search
  output  the rest of the script: formatting and writing the result lines
  inside  from the first line of this file to the end of SCRIPT (the process adds the
          interpreter's start-up and exit to it)
"""
import json
import resource
import runpy
import sys
import time

t_start = time.perf_counter()
import faiss  # noqa: E402
import numpy  # noqa: E402

t_imported = time.perf_counter()
phases = {"load": 0.0, "build": 0.0, "search": 0.0}


def timed(phase, fn):
    def wrapper(*args, **kwargs):
        t = time.perf_counter()
        try:
            return fn(*args, **kwargs)
        finally:
            phases[phase] += time.perf_counter() - t

    return wrapper


numpy.load = timed("load", numpy.load)
for name in ("IndexBinaryMultiHash", "IndexBinaryFlat"):
    cls = getattr(faiss, name)
    cls.add = timed("build", cls.add)
    cls.range_search = timed("search", cls.range_search)

timings_path = sys.argv[1]
sys.argv = sys.argv[2:]
t_run = time.perf_counter()
# Keep the script's globals (the index) alive: freeing them belongs to the process exit.
script_globals = runpy.run_path(sys.argv[0], run_name="__main__")
sys.stdout.flush()
t_end = time.perf_counter()

result = {
    "import": t_imported - t_start,
    **phases,
    "output": (t_end - t_run) - sum(phases.values()),
    "inside": t_end - t_start,
    "ru_maxrss_kb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
    "faiss": faiss.__version__,
}
with open(timings_path, "w") as f:
    json.dump(result, f)
