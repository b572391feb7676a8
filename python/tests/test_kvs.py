"""KVSSkyLine to `skyline kvs-local` with each of the three credential handlers:
the frames are stored (every frame, in order) and decodable."""
import glob
import os
import subprocess
import time

import pytest
from helpers import Reader, background, free_port, make_frame, put_until, read_number

from skyline import (KVSEnvironmentCredentialsHandler, KVSFileCredentialsHandler, KVSInlineCredentialsHandler,
                     KVSSkyLine)

AK, SK = "AKIDPYTESTEXAMPLE", "pytest/secret/key/EXAMPLE"
W, H, N = 160, 120, 40


@pytest.fixture(scope="module")
def kvslocal(tmp_path_factory):
    data = tmp_path_factory.mktemp("kvs")
    port = free_port()
    p = subprocess.Popen([os.environ["SKYLINE_BIN"], "kvs-local", "--listen", "127.0.0.1:%d" % port, "--data",
                          str(data), "--access-key", AK, "--secret-key", SK, "--log-level", "warn"],
                         stdout=subprocess.PIPE, text=True)
    line = p.stdout.readline()  # printed once listening
    assert "kvs-local:" in line, line
    yield "http://127.0.0.1:%d" % port, data
    p.terminate()
    p.wait(10)


def handlers(tmp_path, monkeypatch):
    monkeypatch.delenv("AWS_SESSION_TOKEN", raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "wrong")  # restored after the test; the handler overwrites it
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "wrong")
    return {
        "inline": lambda: KVSInlineCredentialsHandler(AK, SK),
        "environment": lambda: KVSEnvironmentCredentialsHandler(AK, SK),
        "file": lambda: KVSFileCredentialsHandler(str(tmp_path / "credentials.txt"), AK, SK),
    }


@pytest.mark.parametrize("kind", ["inline", "environment", "file"])
def test_kvs_local_with_each_credentials_handler(kind, kvslocal, tmp_path, monkeypatch):
    url, data = kvslocal
    handler = handlers(tmp_path, monkeypatch)[kind]()
    if kind == "file":
        with open(tmp_path / "credentials.txt") as f:
            assert f.read() == "CREDENTIALS\t%s\t%s\n" % (AK, SK)
        assert os.stat(tmp_path / "credentials.txt").st_mode & 0o077 == 0
    name = "py-" + kind
    bg = background(W, H, 0.5)
    with KVSSkyLine("us-east-1", name, handler, endpoint=url) as sl:
        sl.start_streaming(30, W, H)
        assert sl.state is KVSSkyLine.State.STREAMING, sl.error
        t0 = time.time()
        for n in range(N):
            put_until(sl, make_frame(bg, n), capture_time=t0 + n / 30)
        sl.stop_streaming()  # a clean end: the last fragment is sent and acknowledged
        st = sl.stats()
        assert st["accepted"] == N and st["destinations"][0]["lost"] == 0, st
    files = sorted(glob.glob(os.path.join(data, name, "*.mkv")))
    assert files, os.listdir(data)
    ns = []
    for f in files:
        r = Reader(f, W, H, rtsp=False)
        r.join(30)
        ns += [read_number(p) for p in r.frames]
    assert ns == list(range(N)), ns


def test_credentials_file_is_private_whatever_was_there(tmp_path):
    # A .tmp left by someone else (the default path is in /tmp), readable by
    # all or a symlink, must not receive the secret.
    path = tmp_path / "credentials.txt"
    tmp = tmp_path / "credentials.txt.tmp"
    tmp.write_text("old")
    tmp.chmod(0o644)
    KVSFileCredentialsHandler(str(path), AK, SK)
    assert os.stat(path).st_mode & 0o077 == 0
    elsewhere = tmp_path / "elsewhere"
    elsewhere.write_text("")
    tmp.symlink_to(elsewhere)
    KVSFileCredentialsHandler(str(path), AK, SK)
    assert elsewhere.read_text() == "" and os.stat(path).st_mode & 0o077 == 0
    assert path.read_text() == "CREDENTIALS\t%s\t%s\n" % (AK, SK)


def test_inline_refuses_temporary_credentials():
    with pytest.raises(RuntimeError, match="refreshable"):
        KVSInlineCredentialsHandler(AK, SK, aws_session_token="token")


def test_kvssink_on_request_is_checked_at_construction():
    # SPEC A6: this machine has no kvssink (the C++ producer SDK is not
    # packaged): the constructor says what is missing and how to get it.
    with pytest.raises(RuntimeError, match="kvssink.*GST_PLUGIN_PATH"):
        KVSSkyLine("us-east-1", "sink", KVSInlineCredentialsHandler(AK, SK), backend="kvssink")
