"""Shared parts of the hostile suites (issue 20): one `osprey local` per test module, an
ordinary user (mallory) to attack as, and the real clients (ADBC Flight SQL, the `trino`
client, plain HTTP), every call bounded in time."""

import base64
import json
import os
import pathlib
import threading
import urllib.error
import urllib.parse
import urllib.request

import adbc_driver_flightsql
import adbc_driver_flightsql.dbapi as flightsql
import pytest
import requests
import trino
from trino.auth import BasicAuthentication

from conftest import PASSWORD, osprey_local_servers

MALLORY = "mallory"
MALLORY_PASSWORD = "mallory-password-1"
TOO_DEEP = "statement too deeply nested"
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


# --- the cluster and its processes ------------------------------------------------------------


def coordinator_pid(data_dir: pathlib.Path) -> int:
    """The pid of `osprey local --data-dir DATA_DIR` (the coordinator: executors are its
    children, started as `osprey executor`). conftest does not expose its Popen, so this reads
    /proc the way `pgrep -f DATA_DIR` would, but only matches the `local` process."""
    found = []
    for entry in pathlib.Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            argv = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        argv = [arg.decode(errors="replace") for arg in argv if arg]
        if len(argv) >= 2 and argv[1] == "local" and str(data_dir) in argv:
            found.append(int(entry.name))
    assert len(found) == 1, f"expected one `osprey local` for {data_dir}, found {found}"
    return found[0]


def proc_stat(pid: int) -> list:
    """The fields of /proc/PID/stat after the command name (field 3, the state, is [0])."""
    text = pathlib.Path(f"/proc/{pid}/stat").read_text()
    return text[text.rindex(")") + 2:].split()


def cpu_seconds(pid: int) -> float:
    """utime + stime of PID so far, in seconds."""
    fields = proc_stat(pid)
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


def children(pid: int) -> list:
    """The pids whose parent is PID (the executors of `osprey local`)."""
    kids = []
    for entry in pathlib.Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if int(proc_stat(int(entry.name))[1]) == pid:
                    kids.append(int(entry.name))
            except (OSError, ValueError, IndexError):
                continue
    return kids


def rss_mib(pid: int) -> float:
    for line in pathlib.Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise AssertionError(f"no VmRSS for {pid}")


def alive(pid: int) -> bool:
    try:
        return proc_stat(pid)[0] not in ("Z", "X")
    except OSError:
        return False


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """One `osprey local` (2 executors, no TPC-H) for the module, and mallory, an ordinary
    user granted CREATE on the catalog. The data directory sits a few levels below its own temporary root, so a name that
    climbs out of the warehouse with `..` still lands somewhere this module can see."""
    root = tmp_path_factory.mktemp("hostile")
    data_dir = root / "deep" / "deeper" / "data"
    data_dir.mkdir(parents=True)
    with osprey_local_servers("--executors", "2", "--tpch-scale", "0",
                              "--data-dir", str(data_dir)) as (uri, base):
        url = urllib.parse.urlsplit(base)
        state = {"uri": uri, "http": base, "host": url.hostname, "port": url.port,
                 "root": root, "data_dir": data_dir, "pid": coordinator_pid(data_dir)}
        with adbc(state, "admin", PASSWORD) as conn, conn.cursor() as cur:
            cur.execute(f"CREATE USER {MALLORY} PASSWORD '{MALLORY_PASSWORD}'")
            cur.fetchall()
            # An ordinary user who may make schemas and tables of her own.
            cur.execute(f"GRANT CREATE ON CATALOG osprey TO {MALLORY}")
            cur.fetchall()
        yield state


# --- clients ------------------------------------------------------------------------------------


def adbc(server, user=MALLORY, password=MALLORY_PASSWORD, seconds=60):
    """An ADBC Flight SQL connection, with every call bounded to SECONDS."""
    options = adbc_driver_flightsql.DatabaseOptions
    return flightsql.connect(server["uri"], db_kwargs={
        "username": user, "password": password,
        options.TIMEOUT_QUERY.value: str(seconds),
        options.TIMEOUT_FETCH.value: str(seconds),
        options.TIMEOUT_UPDATE.value: str(seconds),
    }, autocommit=True)


def adbc_run(server, sql, user=MALLORY, password=MALLORY_PASSWORD):
    with adbc(server, user, password) as conn, conn.cursor() as cur:
        cur.execute(sql)
        return cur.fetchall()


def trino_connect(server, user=MALLORY, password=MALLORY_PASSWORD, session=None):
    """The `trino` client over plain HTTP on loopback, one attempt per request (a retry would
    hide a coordinator that died), EXECUTE IMMEDIATE for parameters. With SESSION, its HTTP
    connections are the caller's to close."""
    session = session or requests.Session()
    session.trust_env = False
    return trino.dbapi.connect(
        host=server["host"], port=server["port"], user=user,
        auth=BasicAuthentication(user, password), http_scheme="http",
        allow_insecure_auth=True, http_session=session, catalog="osprey", schema="public",
        max_attempts=1, request_timeout=60, legacy_prepared_statements=False)


def trino_run(server, sql, params=None, user=MALLORY, password=MALLORY_PASSWORD, seconds=90):
    """Runs SQL with the trino client and returns its rows. The client polls for as long as
    the server says RUNNING, so the call runs on a daemon thread and fails the test (after
    cancelling the statement) if it has no answer within SECONDS."""
    outcome = {}
    # Closed at the end: a kept-alive connection would count against the coordinator's
    # connections per peer address in the tests that come next (the login flood's 128).
    session = requests.Session()
    with trino_connect(server, user, password, session) as conn, session:
        cur = conn.cursor()

        def run():
            try:
                cur.execute(sql, params)
                outcome["rows"] = cur.fetchall()
            except BaseException as err:  # re-raised on the test's thread
                outcome["error"] = err

        worker = threading.Thread(target=run, daemon=True)
        worker.start()
        worker.join(seconds)
        if worker.is_alive():
            try:
                cur.cancel()
            finally:
                pytest.fail(f"no answer from the trino client within {seconds} s: {sql[:120]}")
    if "error" in outcome:
        raise outcome["error"]
    return outcome["rows"]


def basic(user, password):
    token = base64.b64encode(f"{user}:{password}".encode()).decode()
    return {"Authorization": f"Basic {token}"}


def http_call(url, method="GET", body=None, headers=None, timeout=60):
    """(status, parsed JSON or None) for success and error statuses alike."""
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(url, data=data, method=method, headers={
        "Content-Type": "application/json", **(headers or {})})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            raw = response.read()
            status = response.status
    except urllib.error.HTTPError as err:
        raw, status = err.read(), err.code
    try:
        return status, json.loads(raw)
    except ValueError:
        return status, None


def http_query(server, sql, user=MALLORY, password=MALLORY_PASSWORD, wait="30s", timeout=60):
    """`POST /v1/queries` (JSON body, Basic auth): the answer's JSON."""
    status, answer = http_call(f"{server['http']}/v1/queries", "POST",
                               {"sql": sql, "wait_timeout": wait}, basic(user, password),
                               timeout=timeout)
    assert status == 200, (status, answer)
    return answer


def assert_coordinator_answers(server):
    """The coordinator process is still there and a new admin session runs `SELECT 1`."""
    assert alive(server["pid"]), "the coordinator process is gone"
    assert adbc_run(server, "SELECT 1", "admin", PASSWORD) == [(1,)]
