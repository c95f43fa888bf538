"""Prints the names asyncio gives tasks, to compare with and without the
bridge: the bridge's task factory must change none of them."""
import asyncio


async def nothing():
    pass


async def main():
    loop = asyncio.get_running_loop()
    print("main", asyncio.current_task().get_name())
    print("unnamed", loop.create_task(nothing()).get_name())
    print("named", asyncio.create_task(nothing(), name="mine").get_name())
    loop.set_task_factory(lambda loop, coro, **kw:
                          asyncio.Task(coro, loop=loop, **kw))
    print("own factory", loop.create_task(nothing()).get_name())
    print("own factory named",
          loop.create_task(nothing(), name="theirs").get_name())
    await asyncio.sleep(0)

asyncio.run(main())
