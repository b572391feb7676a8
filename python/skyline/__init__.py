"""SkyLine for Python: the API of ``backpack.skyline`` on SkyLine's engine.

Change the import and keep your loop::

    from skyline import RTSPServer, RTSPSkyLine   # was: from backpack.rtsp import ...

Frames (numpy arrays, ``(height, width, 3)`` BGR uint8) are copied once into
shared memory and encoded by the ``skyline`` binary, which runs as a child
process (``skyline engine``; found via the ``skyline_bin`` argument,
``$SKYLINE_BIN`` or PATH).
"""

from ._engine import EngineError, find_binary
from .kvs import (KVSCredentialsHandler, KVSEnvironmentCredentialsHandler, KVSFileCredentialsHandler,
                  KVSInlineCredentialsHandler, KVSSkyLine)
from .rtsp import RTSPServer, RTSPSkyLine
from .skyline import MAX_DIMENSION, USE_LAST_VALUE, SkyLine, check_frame

__all__ = ["USE_LAST_VALUE", "MAX_DIMENSION", "SkyLine", "RTSPServer", "RTSPSkyLine", "KVSSkyLine",
           "KVSCredentialsHandler", "KVSInlineCredentialsHandler", "KVSEnvironmentCredentialsHandler",
           "KVSFileCredentialsHandler", "EngineError", "find_binary", "check_frame"]
