"""Test set-up: the engine binary (built once when $SKYLINE_BIN is unset) and helpers."""
import os
import pathlib
import subprocess
import sys

import pytest

REPO = pathlib.Path(__file__).resolve().parents[2]
sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))


def pytest_configure(config):
    if os.environ.get("SKYLINE_BIN"):
        return
    out = pathlib.Path(os.environ.get("TMPDIR", "/tmp")) / ("skyline-pytest-%d" % os.getpid())
    env = dict(os.environ, PATH=os.environ.get("PATH", "") + ":/usr/local/go/bin")
    subprocess.run(["go", "build", "-o", str(out), "./cmd/skyline"], cwd=REPO, check=True, env=env)
    os.environ["SKYLINE_BIN"] = str(out)


@pytest.fixture
def skyline_bin():
    return os.environ["SKYLINE_BIN"]
