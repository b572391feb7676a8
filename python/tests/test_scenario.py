"""The original's docstring scenario (backpack.rtsp.RTSPSkyLine), with only the
import changed: one RTSPServer, two RTSPSkyLines, start_streaming(30, 640, 480),
a loop of put. ffmpeg reads each path back: the frame numbers drawn into that
stream's frames, consecutive, PSNR >= 30 dB."""
import time

from helpers import Reader, background, free_port, make_frame, psnr, put_until, read_number

from skyline import RTSPServer, RTSPSkyLine  # was: from backpack.rtsp import RTSPServer, RTSPSkyLine

W, H = 640, 480
FIRST2 = 30000  # stream 2's numbers, so a mix-up of the paths shows


def test_two_streams_on_one_server():
    port = free_port()
    bg1, bg2 = background(W, H, 0.0), background(W, H, 2.0)

    # --- the docstring, verbatim but for the port ---
    server = RTSPServer(port=str(port))
    skyline1 = RTSPSkyLine(server, "/stream1")
    skyline2 = RTSPSkyLine(server, "/stream2")
    skyline1.start_streaming(30, 640, 480)
    skyline2.start_streaming(30, 640, 480)
    server.start()
    # ---
    try:
        assert server.urls() == ["rtsp://127.0.0.1:%d/stream1" % port, "rtsp://127.0.0.1:%d/stream2" % port]
        assert skyline1.state is RTSPSkyLine.State.STREAMING
        readers = None
        count = 45
        i = 0
        t0 = time.monotonic()
        while time.monotonic() - t0 < 30:
            frame1 = make_frame(bg1, i)
            frame2 = make_frame(bg2, FIRST2 + i)
            # put returns False only when the engine is a ring behind (a loaded
            # machine): the frame is then put again, so numbers stay consecutive.
            put_until(skyline1, frame1)
            put_until(skyline2, frame2)
            i += 1
            if i == 5:  # viewers join a running stream
                readers = [Reader(u, W, H, count) for u in server.urls()]
            if readers and not any(r.is_alive() for r in readers):
                break
            time.sleep(max(0, t0 + i / 30 - time.monotonic()))
        for r in readers:
            r.stop()
        for r, bg, first in zip(readers, (bg1, bg2), (0, FIRST2)):
            assert len(r.frames) == count, "read %d pictures: %s" % (len(r.frames), r.err)
            ns = [read_number(f) for f in r.frames]
            assert None not in ns, ns
            assert all(first <= n < first + i for n in ns), ns
            assert ns == list(range(ns[0], ns[0] + count)), "not consecutive: %s" % ns
            worst = min(psnr(f, make_frame(bg, n)) for f, n in zip(r.frames, ns))
            assert worst >= 30, "PSNR %.1f dB" % worst
    finally:
        server.close()
