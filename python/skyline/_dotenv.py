"""The original's .env handling (SPEC A5), without python-dotenv.

``GST_PLUGIN_PATH`` and ``LD_PRELOAD`` are taken from the file,
``LD_LIBRARY_PATH`` is appended to the current value (duplicates removed).
They are set in this process's environment, which the engine (a new process)
inherits, so the dynamic loader really sees them.
"""

import datetime
import logging
import os


def find_dotenv(start=None):
    """The first ``.env`` in start (default: the current folder) or its parents, or ''."""
    d = os.path.abspath(start or os.getcwd())
    while True:
        p = os.path.join(d, ".env")
        if os.path.isfile(p):
            return p
        parent = os.path.dirname(d)
        if parent == d:
            return ""
        d = parent


def dotenv_values(path):
    """KEY=VALUE lines of a .env file (``export`` prefixes, quotes and # comments allowed)."""
    out = {}
    with open(path, encoding="utf-8") as f:
        for line in f:
            line = line.strip()
            if not line or line.startswith("#") or "=" not in line:
                continue
            k, v = line.split("=", 1)
            k = k.strip()
            if k.startswith("export "):
                k = k[len("export "):].strip()
            v = v.strip()
            if len(v) >= 2 and v[0] == v[-1] and v[0] in "\"'":
                v = v[1:-1]
            elif " #" in v:
                v = v.split(" #", 1)[0].rstrip()
            out[k] = v
    return out


def configure(dotenv_path, logger, need_plugin_path=False):
    """Applies the .env file and logs which variables are set; a missing
    ``GST_PLUGIN_PATH`` is a warning when the destination needs a plugin
    from outside GStreamer (kvssink), else a debug line."""
    os.environ["GST_DEBUG_NO_COLOR"] = "1"
    path = dotenv_path or find_dotenv()
    if not path or not os.path.isfile(path):
        logger.info("no .env configuration file found (%s)", path or "searched the current folder and its parents")
    else:
        logger.info("Loading config variables from %s", path)
        cfg = dotenv_values(path)
        if cfg.get("GST_PLUGIN_PATH"):
            os.environ["GST_PLUGIN_PATH"] = cfg["GST_PLUGIN_PATH"]
        elems = [e for e in os.environ.get("LD_LIBRARY_PATH", "").split(":") if e]
        elems += [e for e in cfg.get("LD_LIBRARY_PATH", "").split(":") if e]
        if elems:
            os.environ["LD_LIBRARY_PATH"] = ":".join(dict.fromkeys(elems))
        if cfg.get("LD_PRELOAD"):
            os.environ["LD_PRELOAD"] = cfg["LD_PRELOAD"]
    for var, warn in (("GST_PLUGIN_PATH", need_plugin_path), ("LD_LIBRARY_PATH", False), ("LD_PRELOAD", False),
                      ("GST_DEBUG", False), ("GST_DEBUG_FILE", False)):
        val = os.environ.get(var)
        if val:
            logger.info("%s=%s", var, val)
        else:
            logger.log(logging.WARNING if warn else logging.DEBUG, "%s environment variable is not defined", var)
    logger.debug("UTC time on host: %s", datetime.datetime.now(datetime.timezone.utc).isoformat())
