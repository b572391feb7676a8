"""SkyLine's own options through keyword arguments: encoder settings, an extra
recording of the same encode, the browser page, and put's capture time."""
import json
import subprocess
import time
import urllib.request

import numpy as np
from helpers import Reader, background, free_port, make_frame, put_until, read_number

from skyline import RTSPServer, RTSPSkyLine

W, H = 160, 120


def test_recording_profile_capture_time_and_web(tmp_path):
    rec = tmp_path / "rec.mp4"
    web = "127.0.0.1:%d" % free_port()
    srv = RTSPServer(port=free_port(), udp=False)
    try:
        sl = RTSPSkyLine(srv, "/opts", profile="baseline", bitrate=400, keyframe_interval=1,
                         outputs=["file:%s" % rec], web=web)
        sl.start_streaming(10, W, H)
        srv.start()
        with urllib.request.urlopen("http://%s/opts/" % web, timeout=10) as r:
            assert r.status == 200 and b"<html" in r.read().lower()
        bg = background(W, H, 1.5)
        t0 = time.time()
        for n in range(20):  # capture times 40 ms apart (< 1 s ahead: SkyLine's bound), put as fast as accepted
            put_until(sl, make_frame(bg, n), capture_time=t0 + n * 0.04)
        sl.stop_streaming()  # finalises the recording
        st = sl.stats()
        assert [d["name"] for d in st["destinations"]][0] == "rtsp:/opts" and len(st["destinations"]) == 3, st
    finally:
        srv.close()
    probe = json.loads(subprocess.run(
        ["ffprobe", "-v", "error", "-select_streams", "v:0", "-show_entries", "stream=profile:packet=pts_time",
         "-of", "json", str(rec)], check=True, capture_output=True, text=True).stdout)
    assert "Baseline" in probe["streams"][0]["profile"], probe["streams"]
    pts = sorted(float(p["pts_time"]) for p in probe["packets"])
    gaps = [b - a for a, b in zip(pts, pts[1:])]
    assert len(pts) == 20 and all(abs(g - 0.04) < 0.002 for g in gaps), pts  # the capture times, not the put times
    r = Reader(str(rec), W, H, rtsp=False)
    r.join(20)
    assert [read_number(f) for f in r.frames] == list(range(20))


def test_unknown_option_is_an_error():
    srv = RTSPServer(port=free_port(), udp=False)
    try:
        try:
            RTSPSkyLine(srv, "/x", bitrat=400)
        except TypeError as e:
            assert "bitrat" in str(e)
        else:
            raise AssertionError("no TypeError")
        try:
            RTSPSkyLine(srv, "/y", profile="ultra")
        except RuntimeError as e:
            assert "ultra" in str(e)
        else:
            raise AssertionError("no RuntimeError")
        assert srv.urls() == []
    finally:
        srv.close()
