"""The in-code way: import coscope; coscope.install()."""
import asyncio

import coscope

print("installed", coscope.install())


async def lost():
    pass


async def main():
    lost()  # BUG never-awaited in-code

asyncio.run(main())
