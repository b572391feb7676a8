"""Construction options (SPEC A5): parent_logger, gst_log_file, gst_log_level and
dotenv_path reach the engine, a new process, so LD_* really take effect there."""
import logging
import os

import pytest
from helpers import free_port, put_until

import numpy as np
from skyline import RTSPServer, RTSPSkyLine


@pytest.fixture
def environ():
    saved = dict(os.environ)
    yield
    os.environ.clear()
    os.environ.update(saved)


def engine_env(pid):
    with open("/proc/%d/environ" % pid, "rb") as f:
        return dict(kv.split(b"=", 1) for kv in f.read().split(b"\0") if b"=" in kv)


def test_dotenv_and_gst_logs_reach_the_engine(environ, tmp_path, caplog):
    dotenv = tmp_path / "my.env"
    dotenv.write_text("# comment\nGST_PLUGIN_PATH=%s\nexport LD_LIBRARY_PATH='/opt/kvs/lib'\n" % tmp_path)
    os.environ["LD_LIBRARY_PATH"] = "/usr/local/lib:/opt/kvs/lib"
    gst_log = tmp_path / "gst.log"
    parent = logging.getLogger("myapp")
    srv = RTSPServer(port=free_port(), udp=False)
    try:
        with caplog.at_level(logging.INFO):
            sl = RTSPSkyLine(srv, "/env", parent_logger=parent, gst_log_file=str(gst_log), gst_log_level="3",
                             dotenv_path=str(dotenv))
        assert sl.logger.name == "myapp.RTSPSkyLine"
        assert any(r.name == "myapp.RTSPSkyLine" and "GST_PLUGIN_PATH=" in r.getMessage() for r in caplog.records)
        sl.start_streaming(30, 64, 48)
        put_until(sl, np.zeros((48, 64, 3), np.uint8))
        env = engine_env(srv.engine_pid)
        assert env[b"GST_PLUGIN_PATH"] == str(tmp_path).encode()
        assert env[b"LD_LIBRARY_PATH"] == b"/usr/local/lib:/opt/kvs/lib"  # appended, duplicates removed
        assert env[b"GST_DEBUG"] == b"3" and env[b"GST_DEBUG_FILE"] == str(gst_log).encode()
    finally:
        srv.close()
    assert gst_log.exists() and gst_log.stat().st_size > 0  # GStreamer wrote its log there
