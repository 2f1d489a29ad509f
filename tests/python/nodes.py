"""A real `vouch` process for the Python tests: where the binary and the
sample models are, and a node started on a free port until it is ready."""

import contextlib
import os
import pathlib
import shutil
import socket
import subprocess
import tempfile
import time

MODELS = pathlib.Path(os.environ.get("VOUCH_MODELS", pathlib.Path.home() / ".cache/vouch/models"))
BIN = os.environ.get("VOUCH_BIN", str(pathlib.Path(__file__).parents[2] / "target/debug/vouch"))
# Each running node's admin token, by URL: operator actions need it.
TOKENS = {}


def operator_headers(url):
    """The Authorization header an operator action on the node at `url` needs."""
    return {"authorization": f"Bearer {TOKENS[url]}"}


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def running(command, ready, timeout, what="started", args=()):
    """Runs `vouch COMMAND --listen ... --data-dir ... ARGS` in a fresh data
    directory and yields its URL once `ready(url)` is true; stops it and
    removes the directory after."""
    data = tempfile.mkdtemp(prefix=f"vouch-{command}-")
    url = f"http://127.0.0.1:{free_port()}"
    env = dict(os.environ, VOUCH_MODELS=str(MODELS))
    proc = subprocess.Popen([BIN, command, "--listen", url.removeprefix("http://"), "--data-dir", data, *args],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
    try:
        deadline = time.time() + timeout
        while True:
            try:
                if ready(url):
                    break
            except OSError:
                pass
            if time.time() > deadline or proc.poll() is not None:
                raise RuntimeError(f"node at {url} did not start {what}")
            time.sleep(0.1)
        TOKENS[url] = (pathlib.Path(data) / "admin-token").read_text().strip()
        yield url
    finally:
        TOKENS.pop(url, None)
        proc.terminate()
        proc.wait(timeout=30)
        shutil.rmtree(data, ignore_errors=True)
