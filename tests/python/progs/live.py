"""A live program to read from outside: tasks parked in named coroutines
(argv[1] of them, default 3), one with a hostile name; says "ready PID"
on stdout, exits when stdin closes.  argv[2] "eager": the tasks are
made by asyncio.eager_task_factory (3.12+), their first step run inside
create_task."""
import asyncio
import os
import sys

N = int(sys.argv[1]) if len(sys.argv) > 1 else 3
HOSTILE = "evil\x1b[31m\n\u202e'\"<>&" + "x" * 300


async def nap_deep(i):
    await asyncio.sleep(3600)  # LIVE sleep


async def nap(i):
    await nap_deep(i)


async def hold(ev):
    await ev.wait()  # LIVE event


async def main():
    if sys.argv[2:3] == ["eager"]:
        asyncio.get_running_loop().set_task_factory(asyncio.eager_task_factory)
    ev = asyncio.Event()
    tasks = [asyncio.create_task(nap(i), name="napper-%d" % i) for i in range(N)]
    tasks.append(asyncio.create_task(hold(ev), name="holder"))
    tasks.append(asyncio.create_task(hold(ev), name=HOSTILE))
    await asyncio.sleep(0.05)
    loop = asyncio.get_running_loop()
    done = asyncio.Event()
    loop.add_reader(sys.stdin.fileno(), done.set)
    print("ready", os.getpid(), flush=True)
    await done.wait()
    for t in tasks:
        t.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)

asyncio.run(main())
