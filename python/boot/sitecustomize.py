"""coscope's start-up hook: `coscope run` and `coscope check` put this
directory first on PYTHONPATH, so every Python process they start (and
its Python children, which inherit PYTHONPATH) loads coscope when it first
imports asyncio.  The sitecustomize this one shadows (Debian has one) is
run afterwards.  COSCOPE=off: nothing but that."""
import os as _os
import sys as _sys


def _coscope_boot():
    if _os.environ.get("COSCOPE", "").strip().lower() in ("off", "0", "no"):
        return
    try:
        import coscope
        coscope._boot()
    except ImportError as e:
        _sys.stderr.write("coscope: the asyncio bridge is not available for "
                          "Python %d.%d here (%s)\n"
                          % (_sys.version_info[0], _sys.version_info[1], e))


def _coscope_chain():
    import importlib.machinery
    import importlib.util
    here = _os.path.dirname(_os.path.abspath(__file__))
    rest = [p for p in _sys.path if _os.path.abspath(p or ".") != here]
    spec = importlib.machinery.PathFinder.find_spec("sitecustomize", rest)
    if spec is None or spec.loader is None:
        return
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)


_coscope_boot()
try:
    _coscope_chain()
except Exception as _e:
    _sys.stderr.write("coscope: the shadowed sitecustomize failed: %s\n" % _e)
del _coscope_boot, _coscope_chain
