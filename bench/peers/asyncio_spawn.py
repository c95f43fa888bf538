#!/usr/bin/env python3
"""asyncio peer of bench_spawn: asyncio.create_task() + await of an empty
coroutine, in a loop inside asyncio.run().  Prints each repetition and, last,
"@asyncio_ns <best ns per op>" for bench_spawn to read.

usage: asyncio_spawn.py [--quick] [-n N] [--reps R]
"""
import argparse
import asyncio
import sys
import time


async def empty():
    return None


async def spawn_loop(n):
    create_task = asyncio.create_task
    t0 = time.perf_counter_ns()
    for _ in range(n):
        await create_task(empty())
    return time.perf_counter_ns() - t0


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("-n", type=int, default=0)
    ap.add_argument("--reps", type=int, default=0)
    a = ap.parse_args()
    n = a.n or (2000 if a.quick else 50000)
    reps = a.reps or (1 if a.quick else 5)

    print(f"asyncio create_task+await: {n} ops, best of {reps}, "
          f"Python {sys.version.split()[0]}")
    best = None
    for rep in range(reps):
        ns = asyncio.run(spawn_loop(n)) / n
        print(f"  asyncio rep {rep + 1}: {ns:.1f} ns/op")
        best = ns if best is None else min(best, ns)
    print(f"@asyncio_ns {best:.1f}")


if __name__ == "__main__":
    main()
