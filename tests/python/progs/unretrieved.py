"""Bug: a task's exception nobody retrieved."""
import asyncio
import gc


async def parse(text):
    raise ValueError("bad record %r" % text)  # BUG unretrieved


async def main():
    t = asyncio.create_task(parse("x"), name="parser")
    await asyncio.sleep(0.01)
    del t
    gc.collect()

asyncio.run(main())
