#!/usr/bin/env python3
"""A snapshot of CPU time and memory, for before/after a benchmark run (standard library only).

    procstat.py OUT.json --nodes PID[,PID...] [--postmaster PID]

Writes: wall time, the load average, the machine's busy and total jiffies (/proc/stat), each
node's utime+stime and VmRSS, and the CPU time of the PostgreSQL postmaster and all its
children (backends, walwriter, ...). Clock ticks are converted to seconds with CLK_TCK.
"""
import argparse
import json
import os
import time

HZ = os.sysconf("SC_CLK_TCK")


def proc_cpu_s(pid):
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
    except OSError:
        return None
    # after "pid (comm)": state is fields[0], utime is field 14 overall -> index 11 here
    return (int(fields[11]) + int(fields[12])) / HZ


def ppid(pid):
    try:
        with open(f"/proc/{pid}/stat") as f:
            return int(f.read().rsplit(")", 1)[1].split()[1])
    except OSError:
        return None


def rss_kb(pid):
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return None


def machine():
    with open("/proc/stat") as f:
        cpu = [int(x) for x in f.readline().split()[1:]]
    idle = cpu[3] + cpu[4]  # idle + iowait
    total = sum(cpu[:8])    # user..steal (guest is counted in user)
    return {"busy_s": (total - idle) / HZ, "total_s": total / HZ}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("out")
    ap.add_argument("--nodes", default="")
    ap.add_argument("--postmaster", type=int)
    a = ap.parse_args()
    snap = {"time": time.time(), "loadavg": list(os.getloadavg()), "machine": machine(), "nodes": []}
    for pid in filter(None, a.nodes.split(",")):
        snap["nodes"].append({"pid": int(pid), "cpu_s": proc_cpu_s(pid), "rss_kb": rss_kb(pid)})
    if a.postmaster:
        pids = [a.postmaster] + [int(p) for p in os.listdir("/proc")
                                 if p.isdigit() and ppid(p) == a.postmaster]
        snap["postgres"] = {"processes": len(pids),
                            "cpu_s": sum(proc_cpu_s(p) or 0 for p in pids)}
    with open(a.out, "w") as f:
        json.dump(snap, f, indent=1)


if __name__ == "__main__":
    main()
