"""The engine's lifetime follows the Python objects: SIGKILL of the Python
process leaves no child (checked by PID), a killed child moves the SkyLine to
ERROR with the reason and a restart works, close()/with end the child."""
import glob
import os
import signal
import subprocess
import sys
import textwrap

import numpy as np
from helpers import free_port, put_until, wait_pid_gone

from skyline import RTSPServer, RTSPSkyLine, SkyLine

S = SkyLine.State
PKG = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_sigkill_of_python_leaves_no_child():
    script = textwrap.dedent("""
        import sys, time, numpy as np
        sys.path.insert(0, %r)
        from skyline import RTSPServer, RTSPSkyLine
        srv = RTSPServer(port=%d, udp=False)
        sl = RTSPSkyLine(srv, "/kill")
        sl.start_streaming(30, 64, 48)
        srv.start()
        print(srv.engine_pid, flush=True)
        while True:
            sl.put(np.zeros((48, 64, 3), np.uint8))
            time.sleep(0.01)
    """) % (PKG, free_port())
    py = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    try:
        line = py.stdout.readline()
        assert line.strip().isdigit(), line
        pid = int(line)
        assert not wait_pid_gone(pid, 0.5)  # it serves while Python lives
        rings = glob.glob("/dev/shm/skyline-%d-*" % py.pid)
        py.send_signal(signal.SIGKILL)
        py.wait()
        assert wait_pid_gone(pid, 10), "engine pid %d still running 10 s after its parent was killed" % pid
        assert rings == [], rings  # the engine unlinks each ring once mapped
    finally:
        py.kill()


def test_killed_child_is_error_with_reason_and_restart_works():
    srv = RTSPServer(port=free_port(), udp=False)
    try:
        sl = RTSPSkyLine(srv, "/victim")
        sl.start_streaming(30, 64, 48)
        srv.start()
        f = np.zeros((48, 64, 3), np.uint8)
        put_until(sl, f)
        pid = sl.engine_pid
        os.kill(pid, signal.SIGKILL)
        assert sl.wait_state(S.ERROR, timeout=10) is S.ERROR
        assert "killed by signal SIGKILL" in sl.error and str(pid) in sl.error, sl.error
        assert sl.put(f) is False
        sl.start_streaming(30, 64, 48)  # a new engine, the server and stream replayed
        assert sl.state is S.STREAMING, sl.error
        assert sl.engine_pid not in (None, pid)
        put_until(sl, f)
        assert srv.urls() == ["rtsp://127.0.0.1:%d/victim" % srv.port]
    finally:
        srv.close()


def test_close_and_context_manager_end_the_child():
    with RTSPServer(port=free_port(), udp=False) as srv:
        with RTSPSkyLine(srv, "/ctx") as sl:
            sl.start_streaming(30, 64, 48)
            put_until(sl, np.zeros((48, 64, 3), np.uint8))
        assert sl.state is S.STOPPED and srv.urls() == []
        pid = srv.engine_pid
        assert pid
    assert wait_pid_gone(pid, 10)
    assert srv.engine_pid is None


def test_restart_when_the_port_was_taken_meanwhile():
    import socket
    port = free_port()
    srv = RTSPServer(port=port, udp=False)
    try:
        sl = RTSPSkyLine(srv, "/again")
        srv.start()
        sl.start_streaming(30, 64, 48)
        pid = sl.engine_pid
        os.kill(pid, signal.SIGKILL)
        sl.wait_state(S.ERROR, timeout=10)
        with socket.socket() as busy:
            busy.bind(("0.0.0.0", port))
            busy.listen()
            sl.start_streaming(30, 64, 48)  # the new engine cannot listen again
            assert sl.state is S.ERROR and "in use" in sl.error, sl.error
        sl.start_streaming(30, 64, 48)  # port free again: a fresh engine serves
        assert sl.state is S.STREAMING, sl.error
        put_until(sl, np.zeros((48, 64, 3), np.uint8))
    finally:
        srv.close()
