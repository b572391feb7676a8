"""What a new user does by mistake or by accident: RTSPServer.start() twice,
port 0 across an engine restart, objects dropped without close(), a /dev/shm
too small for the ring. Each keeps the stream (or reports ERROR with the
reason) and never crashes the Python process."""
import os
import signal

import numpy as np
from helpers import free_port, put_until

from skyline import RTSPServer, RTSPSkyLine, SkyLine

S = SkyLine.State

def test_start_twice_keeps_streaming():
    with RTSPServer(port=free_port(), udp=False) as srv:
        sl = RTSPSkyLine(srv, "/twice")
        srv.start()
        sl.start_streaming(30, 64, 48)
        srv.start()  # already serving: nothing to do, the streams are unaffected
        assert sl.state is S.STREAMING and srv.error is None, sl.error
        put_until(sl, np.zeros((48, 64, 3), np.uint8))
        sl.start_streaming(30, 64, 48)
        assert sl.state is S.STREAMING, sl.error


def test_port_zero_keeps_its_url_after_an_engine_restart():
    with RTSPServer(port=0, udp=False) as srv:
        sl = RTSPSkyLine(srv, "/zero")
        srv.start()
        sl.start_streaming(30, 64, 48)
        port = srv.port
        assert port != 0
        os.kill(sl.engine_pid, signal.SIGKILL)
        sl.wait_state(S.ERROR, timeout=10)
        sl.start_streaming(30, 64, 48)  # a new engine listens again on the same port
        assert sl.state is S.STREAMING, sl.error
        assert srv.port == port and sl.url == "rtsp://127.0.0.1:%d/zero" % port
        assert srv.urls() == [sl.url]


def test_late_end_of_a_replaced_engine_changes_nothing():
    # An engine that failed to set up (port in use) is killed and replaced; its
    # reader thread may report its end after the new engine serves (this made
    # test_restart_when_the_port_was_taken_meanwhile fail about 1 run in 6).
    # That late report must not touch the new engine's streams or requests.
    with RTSPServer(port=free_port(), udp=False) as srv:
        sl = RTSPSkyLine(srv, "/late")
        srv.start()
        sl.start_streaming(30, 64, 48)
        old = srv._engine._proc
        os.kill(old.pid, signal.SIGKILL)
        sl.wait_state(S.ERROR, timeout=10)
        sl.start_streaming(30, 64, 48)
        assert sl.state is S.STREAMING, sl.error
        srv._engine._died(old, -9)  # the old process's reader thread, late
        assert sl.state is S.STREAMING, sl.error
        put_until(sl, np.zeros((48, 64, 3), np.uint8))
        assert sl.stats()["engine_state"] == "STREAMING"
