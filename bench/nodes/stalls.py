#!/usr/bin/env python3
"""Watches nodes during a run: every 100 ms, each node's CPU ticks (utime + stime); writes,
per node, the longest stretch in which it used no CPU at all while under load, and how many
stretches of 500 ms or more there were (standard library only).

    stalls.py OUT.json SECONDS PID[,PID...]
"""
import json
import sys
import time

HZ_STEP = 0.1


def ticks(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])


def main():
    out, seconds, pids = sys.argv[1], float(sys.argv[2]), [int(p) for p in sys.argv[3].split(",")]
    last = {p: ticks(p) for p in pids}
    idle_since = {p: None for p in pids}
    longest = {p: 0.0 for p in pids}
    long_count = {p: 0 for p in pids}
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        time.sleep(HZ_STEP)
        now = time.monotonic()
        for p in pids:
            try:
                t = ticks(p)
            except OSError:
                continue
            if t == last[p]:
                if idle_since[p] is None:
                    idle_since[p] = now - HZ_STEP
            else:
                if idle_since[p] is not None:
                    stretch = now - idle_since[p]
                    longest[p] = max(longest[p], stretch)
                    long_count[p] += stretch >= 0.5
                idle_since[p] = None
            last[p] = t
    now = time.monotonic()
    for p in pids:
        if idle_since[p] is not None:
            stretch = now - idle_since[p]
            longest[p] = max(longest[p], stretch)
            long_count[p] += stretch >= 0.5
    with open(out, "w") as f:
        json.dump([{"pid": p, "longest_no_cpu_s": round(longest[p], 2), "stretches_over_500ms": long_count[p]}
                   for p in pids], f, indent=1)


if __name__ == "__main__":
    main()
