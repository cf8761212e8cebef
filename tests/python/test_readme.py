"""README.md's examples, run as a reader would paste them (issue 30).

Every code block of README.md (fenced, or indented four spaces) is either run here against a
real `osprey local` or excluded in `NOT_RUN` with the reason written next to it; a new example
is run by default, and
`test_every_block_is_run_or_excluded` fails when too few blocks run or an entry is stale.

How each kind runs:

- `sql`: `osprey shell -f BLOCK` with no connection flags, from the directory `osprey local`
  runs in, as the README says the shell finds it (the admin password in
  `osprey-data/admin-password`); the first failing statement fails the block.
- `sh` (and indented blocks): `bash -euo pipefail` in that directory with the built binary on
  PATH as `osprey`, and `curl` run as `curl --fail-with-body`, so an HTTP error fails the block.
- `python`: exec'd in that directory, after the earlier Python blocks for the same server (as
  if pasted into one Python session).
- `toml`: the configuration file of the "Running a cluster by hand" example.

What is substituted, and nothing else: the README's fixed ports (`127.0.0.1:50051`,
`localhost:8080`, `port=8080`, the executors' `50061`/`50062`) become the ports the test's
servers got, `osprey shell` gets `OSPREY_PORT`, and the storage locations of `LOCATIONS` become
local directories holding test files. Blocks naming `ca.pem` (the Trino examples) run against a
second `osprey local` with TLS, whose CA is `ca.pem` in its directory.
"""

import contextlib
import dataclasses
import io
import json
import os
import pathlib
import re
import signal
import socket
import subprocess
import threading
import time
import urllib.parse

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import requests

from conftest import PASSWORD, REPO, make_test_certs, osprey_bin, osprey_local_servers

README = REPO / "README.md"

# Blocks that are not run, by the start of their first line, each with the reason. Every entry
# must match exactly one block.
NOT_RUN = {
    "cargo run --release -- local":
        "builds a release binary and serves until Ctrl-C; the fixtures run the built binary's "
        "`osprey local`, which is what it starts",
    "cargo run --release -- shell":
        "builds a release binary and opens an interactive shell on a terminal; the `osprey "
        "shell` block of \"The SQL shell\" runs the built one non-interactively",
    "scripts/test.sh":
        "runs the whole suite, this test included; .ci/run runs it exactly as the README states",
    "osprey shell -H db.example.com":
        "needs a coordinator at db.example.com and a profile `prod` that do not exist here",
    "from pyiceberg.catalog.rest import RestCatalog":
        "pyiceberg lives in the Iceberg tests' venv, not this one; "
        "tests/iceberg/test_rest_server.py connects RestCatalog to /iceberg exactly so, "
        "credentials and oauth2-server-uri included",
    "scripts/make-cluster-certs.sh certs executor-1":
        "serves an executor until Ctrl-C; tests/tests/cluster_tls.rs runs executors with "
        "certificates the same script makes, and the multi-host test does across hosts",
    "cargo build --release --workspace --bins":
        "a release build and a benchmark run of minutes; scripts/test.sh runs the harness's "
        "smoke test",
}

# Storage the README's SQL names, as local directories under the server's directory (files
# written by `lake_files`). Each must occur in the README.
LOCATIONS = {
    "s3://lake/events/": "lake/events/",
    "/data/people/": "lake/people/",
    "s3://exports/": "exports/",
}

# The fewest blocks that must run (the README has 13 today): a README refactor must not leave
# the test with nothing to run. Lower it only when an example is removed on purpose.
MIN_RUN = 13
MIN_RUN_PER_LANGUAGE = {"sql": 6, "sh": 3, "python": 3, "toml": 1}


@dataclasses.dataclass
class Block:
    lang: str
    text: str
    line: int

    @property
    def first_line(self) -> str:
        return next(line.strip() for line in self.text.splitlines() if line.strip())

    def __str__(self):
        return f"README.md:{self.line} ({self.lang}) {self.first_line!r}"


def readme_blocks(markdown: str) -> list:
    """The fenced blocks (indented ones inside list items too) and the blocks indented four
    spaces after a blank line, which the README uses for one-line commands (indented blocks are
    shell commands)."""
    blocks = []
    lines = markdown.splitlines()
    i = 0
    while i < len(lines):
        fence = re.match(r"^( *)```(\S*)\s*$", lines[i])
        if fence:
            indent, lang = fence.group(1), fence.group(2)
            start = i
            i += 1
            body = []
            while i < len(lines) and lines[i] != indent + "```":
                body.append(lines[i][len(indent):] if lines[i].startswith(indent) else lines[i])
                i += 1
            assert i < len(lines), f"README.md:{start + 1}: unclosed code fence"
            blocks.append(Block(lang or "text", "\n".join(body) + "\n", start + 2))
            i += 1
            continue
        if lines[i].startswith("    ") and lines[i].strip() and (i == 0 or not lines[i - 1].strip()):
            start = i
            body = []
            while i < len(lines) and (lines[i].startswith("    ") or not lines[i].strip()):
                body.append(lines[i][4:])
                i += 1
            blocks.append(Block("sh", "\n".join(body).rstrip("\n") + "\n", start + 1))
            continue
        i += 1
    return blocks


BLOCKS = readme_blocks(README.read_text())


def excluded(block):
    reasons = [reason for key, reason in NOT_RUN.items() if block.first_line.startswith(key)]
    return reasons[0] if reasons else None


RUN = [block for block in BLOCKS if excluded(block) is None]


def block_id(block):
    return f"line{block.line}-{block.lang}"


# ---------------------------------------------------------------------------------------------
# The servers.


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def write_admin_password(directory: pathlib.Path):
    """`osprey local` keeps a generated password in DATA_DIR/admin-password; the fixtures give
    it PASSWORD through OSPREY_ADMIN_PASSWORD instead, so the file is written here with it."""
    data_dir = directory / "osprey-data"
    data_dir.mkdir(parents=True, exist_ok=True)
    path = data_dir / "admin-password"
    path.write_text(PASSWORD + "\n")
    path.chmod(0o600)


def lake_files(directory: pathlib.Path):
    """What the README's catalog example reads: Parquet events partitioned by `year` with an
    `amount` column, and a `;`-separated CSV with a header."""
    for year in ("2023", "2024"):
        partition = directory / "lake" / "events" / f"year={year}"
        partition.mkdir(parents=True)
        pq.write_table(pa.table({"id": [1, 2, 3], "amount": [50.0, 150.0, 250.0]}),
                       partition / "part-0.parquet")
    people = directory / "lake" / "people"
    people.mkdir(parents=True)
    (people / "people.csv").write_text("name;age\nana;31\nben;42\n")


@dataclasses.dataclass
class Server:
    directory: pathlib.Path  # where `osprey local` runs: its data directory is ./osprey-data
    flight_port: int
    http_port: int
    home: pathlib.Path

    def ports(self, text: str) -> str:
        """The README's fixed ports, replaced by this server's."""
        for fixed, actual in [("127.0.0.1:50051", f"127.0.0.1:{self.flight_port}"),
                              ("localhost:8080", f"localhost:{self.http_port}"),
                              ("port=8080", f"port={self.http_port}")]:
            text = text.replace(fixed, actual)
        return text


@contextlib.contextmanager
def readme_server(directory: pathlib.Path, *args):
    write_admin_password(directory)
    with osprey_local_servers("--data-dir", str(directory / "osprey-data"), *args) as (uri, http):
        yield Server(directory=directory, flight_port=urllib.parse.urlsplit(uri).port,
                     http_port=urllib.parse.urlsplit(http).port,
                     home=directory / "home")


@pytest.fixture(scope="module")
def local(tmp_path_factory):
    """`osprey local` as the Quick start runs it (two executors, TPC-H SF0.1 in `tpch`)."""
    directory = tmp_path_factory.mktemp("readme-local")
    lake_files(directory)
    with readme_server(directory) as server:
        yield server


@pytest.fixture(scope="module")
def local_tls(tmp_path_factory):
    """`osprey local --tls-cert server.pem --tls-key server.key`, for the Trino examples; `ca.pem`
    in its directory is the CA that signed its certificate (for localhost)."""
    directory = tmp_path_factory.mktemp("readme-tls")
    certs = make_test_certs(directory)
    with readme_server(directory, "--executors", "1", "--tpch-scale", "0.01",
                       "--tls-cert", str(certs["cert"]), "--tls-key", str(certs["key"])) as server:
        yield server


# Settings of this machine's that would send the examples' requests elsewhere or trust other CAs.
FOREIGN_ENV = ("REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE", "SSL_CERT_FILE", "SSL_CERT_DIR")


def shell_env(server: Server, **extra) -> dict:
    """The environment of a reader's terminal: the built binary on PATH as `osprey`, no OSPREY_*
    settings of this machine's (OSPREY_PORT only, for the server's port), no proxy, and a HOME
    of its own (no shell profile or history of this machine's)."""
    bin_dir = server.directory / "bin"
    if not (bin_dir / "osprey").exists():
        bin_dir.mkdir(exist_ok=True)
        (bin_dir / "osprey").symlink_to(os.path.abspath(osprey_bin()))
    server.home.mkdir(exist_ok=True)
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("OSPREY_") and k not in FOREIGN_ENV and "proxy" not in k.lower()}
    env.update(PATH=f"{bin_dir}{os.pathsep}{env.get('PATH', '')}", HOME=str(server.home),
               OSPREY_PORT=str(server.flight_port), RUST_LOG="warn")
    env.update(extra)
    return env


# An HTTP error status fails the block, as its JSON error would tell the reader something broke.
SH_PRELUDE = 'curl() { command curl --fail-with-body "$@"; }\n'


def locations(text: str, server: Server) -> str:
    for url, local_dir in LOCATIONS.items():
        text = text.replace(url, str(server.directory / local_dir) + "/")
    return text


@dataclasses.dataclass
class Outcome:
    stdout: str
    directory: pathlib.Path


def run_sql(block: Block, server: Server) -> Outcome:
    script = server.directory / f"readme-{block.line}.sql"
    script.write_text(locations(block.text, server))
    out = subprocess.run(["osprey", "shell", "-f", str(script)], cwd=server.directory,
                         env=shell_env(server), capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, f"{block} failed (exit {out.returncode}):\n{out.stderr}"
    assert "ERROR" not in out.stderr, f"{block}:\n{out.stderr}"
    return Outcome(out.stdout, server.directory)


def run_sh(block: Block, server: Server) -> Outcome:
    out = subprocess.run(["bash", "-euo", "pipefail", "-c", SH_PRELUDE + server.ports(block.text)],
                         cwd=server.directory, env=shell_env(server), capture_output=True,
                         text=True, timeout=300)
    assert out.returncode == 0, \
        f"{block} failed (exit {out.returncode}):\n{out.stdout[-3000:]}\n{out.stderr[-3000:]}"
    return Outcome(out.stdout, server.directory)


def transcript_steps(text: str):
    """A terminal transcript (`$ command` lines, each followed by its output) as
    (command, expected output lines); a command continues on lines ending with a backslash."""
    steps = []
    lines = text.splitlines()
    index = 0
    while index < len(lines):
        line = lines[index]
        assert line.startswith("$ "), f"transcript line {line!r} is not a command"
        command = line[2:]
        while command.endswith("\\"):
            index += 1
            command = command[:-1] + lines[index].strip()
        index += 1
        output = []
        while index < len(lines) and not lines[index].startswith("$ "):
            output.append(lines[index])
            index += 1
        steps.append((command, output))
    return steps


def run_transcript(block: Block, server: Server) -> Outcome:
    """Runs a transcript's commands in the server's directory and checks each prints exactly
    the lines shown (standard output and error together, as a terminal shows them). `cat FILE`
    shows a file the transcript uses: it is written from the lines shown."""
    for command, expected in transcript_steps(block.text):
        if command.startswith("cat "):
            (server.directory / command[4:].strip()).write_text("\n".join(expected) + "\n")
            continue
        script = SH_PRELUDE + "PW=$(cat osprey-data/admin-password)\n" + server.ports(command)
        out = subprocess.run(["bash", "-uo", "pipefail", "-c", script], cwd=server.directory,
                             env=shell_env(server), stdout=subprocess.PIPE,
                             stderr=subprocess.STDOUT, text=True, timeout=120)
        assert out.stdout.rstrip("\n").splitlines() == expected, \
            f"{block}: `{command}` printed:\n{out.stdout}\nthe README shows:\n" + \
            "\n".join(expected)
    return Outcome("", server.directory)


def run_python(block: Block, server: Server, monkeypatch) -> Outcome:
    monkeypatch.chdir(server.directory)
    for name in [k for k in os.environ if k in FOREIGN_ENV or "proxy" in k.lower()]:
        monkeypatch.delenv(name)
    namespace = {"__name__": "__readme__"}
    earlier = [b for b in RUN if b.lang == "python" and b.line < block.line
               and uses_tls_server(b) == uses_tls_server(block)]
    for each in earlier + [block]:
        stdout = io.StringIO()
        with contextlib.redirect_stdout(stdout):
            exec(compile(server.ports(each.text), f"README.md:{each.line}", "exec"), namespace)
    return Outcome(stdout.getvalue(), server.directory)


def uses_tls_server(block: Block) -> bool:
    return "ca.pem" in block.text


# ---------------------------------------------------------------------------------------------
# "Running a cluster by hand": its processes, with the README's configuration file.

BY_HAND = "export OSPREY_CLUSTER_SECRET"


@pytest.fixture(scope="module")
def cluster_by_hand(tmp_path_factory):
    """Runs the block in its own process group, the `toml` blocks as its configuration file
    (OSPREY_CONFIG), the executors on free ports instead of 50061/50062 and the coordinator's
    ports chosen by the system (OSPREY_FLIGHT_LISTEN, OSPREY_HTTP_LISTEN) instead of the
    defaults; yields what it answered once ready, then stops it."""
    (block,) = [b for b in RUN if b.first_line.startswith(BY_HAND)]
    toml_blocks = [b for b in RUN if b.lang == "toml"]
    directory = tmp_path_factory.mktemp("readme-by-hand")
    config = directory / "osprey.toml"
    config.write_text("\n".join(b.text for b in toml_blocks))
    text = block.text
    for fixed in ("127.0.0.1:50061", "127.0.0.1:50062"):
        assert fixed in text, f"{block} no longer uses {fixed}: update the test"
        text = text.replace(fixed, f"127.0.0.1:{free_port()}")
    server = Server(directory=directory, flight_port=0, http_port=0, home=directory / "home")
    env = shell_env(server, OSPREY_CONFIG=str(config), OSPREY_FLIGHT_LISTEN="127.0.0.1:0",
                    OSPREY_HTTP_LISTEN="127.0.0.1:0")
    del env["OSPREY_PORT"]
    proc = subprocess.Popen(["bash", "-euo", "pipefail", "-c", text], cwd=directory, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True)
    http = {}
    stderr = []
    listening = threading.Event()

    def read_stdout():
        for line in proc.stdout:
            if line.startswith("OSPREY_HTTP_LISTENING "):
                http["base"] = "http://" + line.split()[1]
                listening.set()

    threading.Thread(target=read_stdout, daemon=True).start()
    threading.Thread(target=lambda: stderr.extend(proc.stderr), daemon=True).start()
    try:
        deadline = time.monotonic() + 120
        while not listening.wait(0.2):
            assert proc.poll() is None, f"{block} exited {proc.returncode}:\n{''.join(stderr)}"
            assert time.monotonic() < deadline, f"{block}: no coordinator after 120 s"
        session = requests.Session()
        session.trust_env = False
        ready = None
        while time.monotonic() < deadline:
            ready = session.get(http["base"] + "/readyz", timeout=10)
            if ready.status_code == 200 and ready.json()["executors_up"] == 2:
                break
            time.sleep(0.2)
        assert ready is not None and ready.status_code == 200, ready and ready.text
        answers = {}
        for sql in ("SELECT 1 AS one", "SHOW LOCATIONS"):
            # The block's OSPREY_ADMIN_PASSWORD.
            answer = session.post(http["base"] + "/v1/queries", json={"sql": sql},
                                  auth=("admin", "change-me"), timeout=60)
            assert answer.status_code == 200, answer.text
            assert answer.json()["state"] == "SUCCEEDED", answer.text
            answers[sql] = answer.json()["result"]
        yield {"ready": ready.json(), "answers": answers}
    finally:
        # The whole group: the executors run in the background of the block's shell.
        os.killpg(proc.pid, signal.SIGTERM)
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(60)
        deadline = time.monotonic() + 60  # the executors drain, then exit
        while group_members(proc.pid) and time.monotonic() < deadline:
            time.sleep(0.2)
        if group_members(proc.pid):
            os.killpg(proc.pid, signal.SIGKILL)


def group_members(pgid: int) -> list:
    """The live (not zombie) processes of a process group."""
    members = []
    for stat in pathlib.Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if fields[0] != "Z" and int(fields[2]) == pgid:
            members.append(int(stat.parent.name))
    return members


# ---------------------------------------------------------------------------------------------
# What each block's output must show, by the start of its first line. Every block that runs
# has an entry (a new example says what it proves). Type names and error texts are not asserted.


def check_quick_start_adbc(out: Outcome):
    assert "l_returnflag" in out.stdout and "count(*)" in out.stdout, out.stdout


def check_catalog_ddl(out: Outcome):
    # SHOW TABLES after the rename; SHOW COLUMNS of the Parquet files' inferred schema.
    assert "large_events" in out.stdout and "amount" in out.stdout, out.stdout
    manifest = out.directory / "exports" / "events-2024" / "_manifest.txt"
    assert manifest.exists(), "UNLOAD wrote no manifest"
    files = [urllib.parse.urlsplit(line).path for line in manifest.read_text().splitlines()]
    assert files and all(f.endswith(".csv") for f in files), files
    lines = [line for f in files for line in pathlib.Path(f).read_text().splitlines()]
    # One header per file, `|`-separated; the 2024 partition's three rows.
    assert lines[0] == "id|amount|year" and len(lines) == 3 + len(files), lines


def check_query_history(out: Outcome):
    for expected in ("submitted_at", "bytes_scanned", "SUCCEEDED"):
        assert expected in out.stdout, out.stdout


def check_errors_transcript(out: Outcome):
    pass  # run_transcript compares every line the README shows with what the commands print


def check_quick_start_stages(out: Outcome):
    # The quick start's query runs as tasks on the executors, at `osprey local`'s defaults.
    assert re.search(r"Stage \d+ ── tasks=[2-9]", out.stdout), out.stdout
    assert "DistributedExec" in out.stdout, out.stdout


def check_executors(out: Outcome):
    assert "memory_reserved_bytes" in out.stdout, out.stdout
    assert len(re.findall(r"\| up +\|", out.stdout)) == 2, out.stdout  # both executors up


def check_cluster_by_hand(cluster):
    assert cluster["ready"] == {"status": "ready", "executors_up": 2}
    assert cluster["answers"]["SELECT 1 AS one"]["rows"] == [[1]]


def check_workgroups(out: Outcome):
    assert "etl" in out.stdout and "running_queries" in out.stdout, out.stdout


def check_http_api(out: Outcome):
    assert '"status":"ready"' in out.stdout, out.stdout
    assert '"count(*)"' in out.stdout and '"state":"SUCCEEDED"' in out.stdout, out.stdout
    first = json.loads((out.directory / "page-1.json").read_text())
    assert first["state"] == "SUCCEEDED" and len(first["result"]["rows"]) == 10_000
    second = (out.directory / "page-2.csv").read_text().splitlines()
    assert len(second) == 10_000, len(second)  # the second page: rows 10,000 to 19,999
    first_keys = {row[0] for row in first["result"]["rows"]}
    assert int(second[0].split(",")[0]) not in first_keys, "page 2 repeats page 1"
    with pa.ipc.open_stream((out.directory / "orders.arrows").read_bytes()) as reader:
        orders = reader.read_all()
    assert orders.num_rows == 150_000 and "o_orderkey" in orders.column_names


def check_trino_dbapi(out: Outcome):
    assert "ARGENTINA" in out.stdout and "BRAZIL" in out.stdout, out.stdout


def check_trino_sqlalchemy(out: Outcome):
    assert out.stdout.strip().splitlines()[-1] == "15000", out.stdout  # TPC-H SF0.01 orders


def check_users(out: Outcome):
    assert "user_name" in out.stdout and "admin" in out.stdout, out.stdout
    assert not re.search(r"^ana\b", out.stdout, re.M), "ana was dropped before SHOW USERS"


def check_locations(out: Outcome):
    assert "exports" in out.stdout and "location_name" in out.stdout, out.stdout


def check_locations_file(cluster):
    rows = cluster["answers"]["SHOW LOCATIONS"]["rows"]
    assert [row[0] for row in rows] == ["raw"], rows
    assert True in rows[0], f"raw is not read-only: {rows}"
    assert "config" in rows[0], rows


def check_grants(out: Outcome):
    # ben's column grant and the role's privileges, INSERT no longer grantable; public's role.
    assert "id, region" in out.stdout and "analysts" in out.stdout, out.stdout
    assert re.search(r"analysts +\| TABLE +\| osprey.shop.orders +\| INSERT +\| +\| false",
                     out.stdout), out.stdout
    assert "every user" in out.stdout, out.stdout


def check_data_filters(out: Outcome):
    # The filter replaced and dropped, the mask listed with its expression as stored.
    assert re.search(r"eu_only +\| osprey.shop.orders +\| +(NULL)? *\| analysts", out.stdout), \
        out.stdout
    assert "mine" not in out.stdout, out.stdout
    assert "'***-' || substr ( ssn , 8 )" in out.stdout, out.stdout


def check_tags(out: Outcome):
    # SHOW TAGS ON TABLE: the column's own tag, and the schema's passed down to the table.
    assert re.search(r"ssn +\| pii +\| true +\| column ssn", out.stdout), out.stdout
    assert re.search(r"\| domain +\| sales +\| schema osprey.shop", out.stdout), out.stdout


def check_views(out: Outcome):
    assert out.stdout.split() == ["OK", "OK"], out.stdout


def check_audit(out: Outcome):
    # ana has run nothing in the README: the query answers, with its columns and no rows.
    assert "user_name" in out.stdout and "(0 rows)" in out.stdout, out.stdout


def check_shell(out: Outcome):
    assert "150000" in out.stdout.replace(",", ""), out.stdout  # SELECT count(*) FROM tpch.orders
    report = (out.directory / "report.csv").read_text().splitlines()
    assert report[0] == "n_name" and "ALGERIA" in report and len(report) == 26, report
    rows = json.loads(out.stdout[out.stdout.index("["):])  # `SELECT 1;` piped in, -F json
    assert [list(row.values()) for row in rows] == [[1]], rows


CHECKS = {
    "import adbc_driver_flightsql": check_quick_start_adbc,
    "EXPLAIN SELECT l_returnflag": check_quick_start_stages,
    "$ cat report.sql": check_errors_transcript,
    "CREATE SCHEMA lake": check_catalog_ddl,
    "SELECT submitted_at": check_query_history,
    "SELECT url, state": check_executors,
    BY_HAND: check_cluster_by_hand,
    "CREATE WORKGROUP etl": check_workgroups,
    "PW=$(cat osprey-data/admin-password)": check_http_api,
    "import trino": check_trino_dbapi,
    "import sqlalchemy": check_trino_sqlalchemy,
    "CREATE USER ana": check_users,
    "CREATE LOCATION raw": check_locations,
    "CREATE ROLE analysts": check_grants,
    "CREATE ROW FILTER eu_only": check_data_filters,
    "CREATE VIEW shop.eu_ids": check_views,
    "CREATE TAG domain": check_tags,
    "SELECT at, user_name": check_audit,
    "[[locations]]": check_locations_file,
    "osprey shell -c": check_shell,
}


def check_for(block):
    checks = [check for key, check in CHECKS.items() if block.first_line.startswith(key)]
    assert len(checks) == 1, f"{block}: say in CHECKS what its output must show"
    return checks[0]


# ---------------------------------------------------------------------------------------------
# The tests.


def test_every_block_is_run_or_excluded():
    assert len(RUN) >= MIN_RUN, \
        f"only {len(RUN)} README examples run (at least {MIN_RUN} expected): " \
        f"{[str(b) for b in RUN]}"
    for lang, minimum in MIN_RUN_PER_LANGUAGE.items():
        found = [b for b in RUN if b.lang == lang]
        assert len(found) >= minimum, f"only {len(found)} {lang} examples run, {minimum} expected"
    for key in NOT_RUN:
        matching = [str(b) for b in BLOCKS if b.first_line.startswith(key)]
        assert len(matching) == 1, f"NOT_RUN entry {key!r} matches {matching}"
    for key in CHECKS:
        matching = [str(b) for b in RUN if b.first_line.startswith(key)]
        assert len(matching) == 1, f"CHECKS entry {key!r} matches {matching}"
    for block in RUN:
        transcript = block.lang == "text" and block.first_line.startswith("$ ")
        assert block.lang in ("sql", "sh", "python", "toml") or transcript, \
            f"{block}: run it here or add it to NOT_RUN with the reason"
        check_for(block)
    text = README.read_text()
    for url in LOCATIONS:
        assert url in text, f"LOCATIONS entry {url!r} is no longer in the README"


@pytest.mark.parametrize("block", RUN, ids=block_id)
def test_readme_example(block, request, monkeypatch):
    check = check_for(block)
    if block.first_line.startswith(BY_HAND) or block.lang == "toml":
        check(request.getfixturevalue("cluster_by_hand"))
        return
    server = request.getfixturevalue("local_tls" if uses_tls_server(block) else "local")
    if block.lang == "sql":
        check(run_sql(block, server))
    elif block.lang == "sh":
        check(run_sh(block, server))
    elif block.lang == "python":
        check(run_python(block, server, monkeypatch))
    elif block.lang == "text" and block.first_line.startswith("$ "):
        check(run_transcript(block, server))
    else:
        pytest.fail(f"{block}: no way to run a {block.lang} block")


def test_every_curl_is_a_route_of_the_openapi_document(local):
    """Each `curl` of the README calls a path and method the served OpenAPI document has."""
    spec = requests.get(f"http://127.0.0.1:{local.http_port}/v1/openapi.json", timeout=10,
                        proxies={"http": "", "https": ""}).json()
    routes = [(re.compile("^" + re.sub(r"\\\{[^}]+\\\}", "[^/]+", re.escape(path)) + "$"),
               {m for m in methods if m != "parameters"})
              for path, methods in spec["paths"].items()]
    calls = []
    for block in RUN:
        if block.lang != "sh":
            continue
        for command in block.text.replace("\\\n", " ").splitlines():
            if not command.lstrip().startswith(("curl ", "ID=$(curl", "TOKEN=$(curl")):
                continue
            match = re.search(r"localhost:8080(/[^\s'\"?]*)", command)
            assert match, f"{block}: a curl with no localhost:8080 URL: {command}"
            path = re.sub(r"\$\w+", "X", match.group(1))
            method = "delete" if "-X DELETE" in command else \
                "post" if re.search(r"\s(-d|--data\S*)\s", command) else "get"
            calls.append((path, method))
            assert any(pattern.match(path) and method in methods for pattern, methods in routes), \
                f"{block}: {method.upper()} {path} is not in /v1/openapi.json"
    assert len(calls) >= 5, calls
