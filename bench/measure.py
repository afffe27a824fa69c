"""Run one command and measure it as a whole process: wall time, CPU time and peak memory.

Used by benchmark.py as `python -S bench/measure.py OUT.json [--tree] -- CMD ...`: this small
wrapper starts CMD and writes {"wall", "cpu", "maxrss_mb", "tree_rss_mb", "status"} to OUT.json.

Why a wrapper: Linux carries a process's peak RSS (ru_maxrss) across exec, and Python starts
children with vfork, so a child of the (larger) benchmark process would report the benchmark's
size as its own peak. Started from this interpreter (-S, no site: a few MB), the child's peak is
its own. wait4 gives the CPU time and peak RSS of CMD and of every descendant it waited for (the
--jobs workers): ru_maxrss is then the largest single process. With --tree, the sum of the RSS of
CMD and all its descendants is sampled every 0.2 s too, the memory the whole run holds at once.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path


def _all_children() -> dict[int, list[int]]:
    """Parent -> children, from every process's stat (slow: ~3 ms; only without the children files)."""
    tree: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        # The command name is in parentheses and may hold spaces: fields start after the last ')'.
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        tree.setdefault(ppid, []).append(int(entry))
    return tree


# Kernels without CONFIG_PROC_CHILDREN have no children files: then every process's stat is read.
HAS_CHILDREN_FILES = Path(f"/proc/self/task/{os.getpid()}/children").exists()


def _children(pid: int) -> list[int] | None:
    """The children of pid from /proc/PID/task/*/children (a thread's children are listed under
    that thread), or None when the kernel has no such files."""
    if not HAS_CHILDREN_FILES:
        return None
    found: list[int] = []
    try:
        for task in os.listdir(f"/proc/{pid}/task"):
            found += map(int, Path(f"/proc/{pid}/task/{task}/children").read_text().split())
    except OSError:  # the process (or a thread) has just ended
        pass
    return found


def _rss_kb(pid: int) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def _tree_rss_mb(root: int) -> float:
    # Sampling must cost little: with --jobs 2 on 2 cores, it takes CPU from the workers.
    slow: dict[int, list[int]] | None = None
    total, todo = 0, [root]
    while todo:
        pid = todo.pop()
        total += _rss_kb(pid)
        children = _children(pid)
        if children is None:
            slow = slow if slow is not None else _all_children()
            children = slow.get(pid, [])
        todo.extend(children)
    return total / 1024


def main() -> None:
    out, rest = sys.argv[1], sys.argv[2:]
    tree = rest[0] == "--tree"
    cmd = rest[rest.index("--") + 1 :]
    start = time.perf_counter()
    child = subprocess.Popen(cmd)
    peak_tree = 0.0
    stop = threading.Event()

    def sample() -> None:
        nonlocal peak_tree
        while not stop.wait(0.2):
            peak_tree = max(peak_tree, _tree_rss_mb(child.pid))

    sampler = threading.Thread(target=sample, daemon=True)
    if tree:
        sampler.start()
    _, status, usage = os.wait4(child.pid, 0)
    wall = time.perf_counter() - start
    child.returncode = os.waitstatus_to_exitcode(status)  # reaped here: Popen must not wait again
    stop.set()
    if tree:
        sampler.join()
    Path(out).write_text(json.dumps({
        "wall": wall,
        "cpu": usage.ru_utime + usage.ru_stime,
        "maxrss_mb": usage.ru_maxrss / 1024,
        "tree_rss_mb": max(peak_tree, usage.ru_maxrss / 1024) if tree else None,
        "status": child.returncode,
    }))  # fmt: skip


if __name__ == "__main__":
    main()
