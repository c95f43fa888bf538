"""pip install ./python: coscope's asyncio bridge for your own interpreter
(the CMake build makes the same module for Debian's /usr/bin/python3).
The extension is built from src/ and libtrace's sources (one directory
up), as the CMake build links them."""
import os

from setuptools import Extension, setup

HERE = os.path.dirname(os.path.abspath(__file__))
TRACE = ["clock.c", "crc32.c", "file_write.c", "names.c", "reader.c",
         "reader_file.c", "recorder.c", "map_guard.c", "modules.c",
         "ring_read.c",
         "segment.c", "tables.c", "thread.c"]
MINE = ["module.c", "step.c", "task.c", "where.c", "watch.c"]

# paths relative to this file, as setuptools wants them
sources = [os.path.join("src", f) for f in MINE] + \
          [os.path.join("..", "libtrace", f) for f in TRACE]

setup(
    name="coscope",
    version="0.1.0",
    description="coscope for asyncio: the same reports, live task dumps "
                "and CI gate as for coscope's C runtime",
    packages=["coscope"],
    ext_modules=[Extension(
        "coscope._coscope", sources,
        include_dirs=[os.path.join("..", "include"),
                      os.path.join("..", "libtrace"),
                      os.path.join("..", "agent")],
        define_macros=[("_GNU_SOURCE", None)],
        extra_compile_args=["-std=c11", "-fvisibility=hidden",
                            "-fno-omit-frame-pointer"],
        libraries=["dl"],
    )],
    python_requires=">=3.11",
)
