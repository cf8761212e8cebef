"""Starts a real `osprey local` cluster (coordinator + 2 executors) for the client tests."""

import contextlib
import os
import pathlib
import signal
import subprocess
import threading

import pytest

REPO = pathlib.Path(__file__).resolve().parents[2]
PASSWORD = "python-test-password"


def osprey_bin() -> str:
    if os.environ.get("OSPREY_BIN"):
        return os.environ["OSPREY_BIN"]
    target = os.environ.get("CARGO_TARGET_DIR", str(REPO / "target"))
    path = pathlib.Path(target) / "debug" / "osprey"
    if not path.exists():
        raise RuntimeError(f"{path} not found: run `cargo build --bin osprey` or set OSPREY_BIN")
    return str(path)


@contextlib.contextmanager
def osprey_local_process(*args):
    """Runs `osprey local ARGS` (admin password PASSWORD) as the leader of a process group of
    its own (its executors are in it: `os.killpg(proc.pid, ...)` stops them all) and yields
    the process, its Flight SQL URI (`grpc+tls://` when ARGS turn TLS on) and its HTTP base URL
    (`https://` with TLS). On leaving, the group is stopped with Ctrl-C (killed, if the test
    failed or killed it already)."""
    tls = "--tls-cert" in args
    scheme = "grpc+tls://" if tls else "grpc://"
    env = dict(os.environ, OSPREY_ADMIN_PASSWORD=PASSWORD, RUST_LOG="warn")
    env.pop("OSPREY_CONFIG", None)
    proc = subprocess.Popen(
        [osprey_bin(), "local", "--flight-listen", "127.0.0.1:0", "--http-listen", "127.0.0.1:0",
         *args],
        stdout=subprocess.PIPE, stderr=None, stdin=subprocess.DEVNULL, env=env, text=True,
        start_new_session=True,
    )
    ready = threading.Event()
    address = {}

    def read_stdout():
        for line in proc.stdout:
            if line.startswith("OSPREY_HTTP_LISTENING "):
                address["http"] = ("https://" if tls else "http://") + line.split()[1]
            if line.startswith("OSPREY_FLIGHT_SQL_LISTENING "):
                address["uri"] = scheme + line.split()[1]
            if "uri" in address and "http" in address:
                ready.set()

    threading.Thread(target=read_stdout, daemon=True).start()
    if not ready.wait(120):
        os.killpg(proc.pid, signal.SIGKILL)
        raise RuntimeError("osprey local did not start within 120 s")
    try:
        yield proc, address["uri"], address["http"]
    except BaseException:
        # The test failed inside the cluster's block: stop it anyway, so no process outlives
        # the run (and holds its output pipes open).
        kill_group(proc)
        raise
    if proc.poll() is not None:
        kill_group(proc)  # the test stopped the coordinator: its executors may be left
        return
    proc.send_signal(2)  # Ctrl-C
    assert proc.wait(30) == 0


def kill_group(proc):
    """Kills `proc`'s process group (an `osprey local` and its executors) and reaps it."""
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    proc.wait(30)


@contextlib.contextmanager
def osprey_local_servers(*args):
    """Runs `osprey local ARGS` (admin password PASSWORD) and yields its Flight SQL URI
    (`grpc+tls://` when ARGS turn TLS on) and its HTTP base URL (`https://` with TLS)."""
    with osprey_local_process(*args) as (_, uri, http):
        yield uri, http


@contextlib.contextmanager
def osprey_local(*args):
    """Runs `osprey local ARGS` (admin password PASSWORD) and yields its Flight SQL URI
    (`grpc+tls://` when ARGS turn TLS on)."""
    with osprey_local_servers(*args) as (uri, _):
        yield uri


def make_test_certs(directory: pathlib.Path) -> dict:
    """A throwaway CA and a server certificate for 127.0.0.1 (scripts/make-test-certs.sh)."""
    subprocess.run(["bash", str(REPO / "scripts" / "make-test-certs.sh"), str(directory)],
                   check=True)
    return {name: directory / file for name, file in
            [("ca", "ca.pem"), ("cert", "server.pem"), ("key", "server.key")]}


@pytest.fixture(scope="module")
def http(tmp_path_factory):
    """The HTTP base URL of an `osprey local` (one executor, no TPC-H) for one test module."""
    data_dir = tmp_path_factory.mktemp("osprey-http")
    with osprey_local_servers("--executors", "1", "--tpch-scale", "0",
                              "--data-dir", str(data_dir)) as (_, base):
        yield base


@pytest.fixture(scope="session")
def cluster(tmp_path_factory):
    data_dir = tmp_path_factory.mktemp("osprey-data")
    with osprey_local("--executors", "2", "--data-dir", str(data_dir),
                      "--bytes-per-task", "1MiB") as uri:
        yield {"uri": uri, "data_dir": data_dir, "password": PASSWORD}
