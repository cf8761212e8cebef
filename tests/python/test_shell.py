"""`osprey shell` against a real `osprey local`: non-interactive use through process spawning
(formats, exit codes, scripts with errors, piped input), and interactive use in a
pseudo-terminal with pexpect (prompt, multi-line statements, completion, the live progress line,
Ctrl-C cancelling a long query, history across runs)."""

import csv
import io
import json
import os
import subprocess
import time
import urllib.parse

import pexpect
import pytest

from conftest import PASSWORD, osprey_bin, osprey_local_servers


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    data_dir = tmp_path_factory.mktemp("osprey-shell")
    with osprey_local_servers("--executors", "1", "--tpch-scale", "0.01",
                              "--data-dir", str(data_dir)) as (uri, _):
        url = urllib.parse.urlsplit(uri.replace("grpc://", "http://"))
        yield {"host": url.hostname, "port": str(url.port), "home": tmp_path_factory.mktemp("home")}


def shell_env(server, **extra):
    env = {k: v for k, v in os.environ.items() if not k.startswith("OSPREY_")}
    env.update(OSPREY_HOST=server["host"], OSPREY_PORT=server["port"], OSPREY_USER="admin",
               OSPREY_PASSWORD=PASSWORD, HOME=str(server["home"]),
               OSPREY_HISTORY=str(server["home"] / "history"), TERM="xterm")
    env.update(extra)
    return env


def shell(server, *args, stdin=None, env=None):
    return subprocess.run([osprey_bin(), "shell", *args], input=stdin, capture_output=True,
                          text=True, timeout=120, env=env or shell_env(server))


def test_every_output_format(server):
    sql = "SELECT n_nationkey AS id, n_name AS name, NULL AS nothing FROM tpch.nation " \
          "WHERE n_nationkey < 2 ORDER BY 1"
    out = shell(server, "-F", "csv", "-c", sql)
    assert out.returncode == 0, out.stderr
    assert list(csv.reader(io.StringIO(out.stdout))) == [
        ["id", "name", "nothing"], ["0", "ALGERIA", ""], ["1", "ARGENTINA", ""]]
    out = shell(server, "-F", "tsv", "-c", sql)
    assert out.stdout.splitlines()[1] == "0\tALGERIA\t"
    out = shell(server, "-F", "json", "-c", sql)
    assert json.loads(out.stdout) == [{"id": 0, "name": "ALGERIA"}, {"id": 1, "name": "ARGENTINA"}]
    out = shell(server, "-F", "ndjson", "-c", sql)
    assert [json.loads(line)["name"] for line in out.stdout.splitlines()] == ["ALGERIA", "ARGENTINA"]
    out = shell(server, "-F", "markdown", "-c", sql)
    assert out.stdout.splitlines()[:3] == ["| id | name | nothing |", "|---|---|---|",
                                           "| 0 | ALGERIA | NULL |"]
    out = shell(server, "-c", sql)  # table, the default: decorated for people
    lines = out.stdout.splitlines()
    assert lines[0].split() == ["id", "|", "name", "|", "nothing"]
    assert set(lines[1]) <= {"-", "+"}
    assert lines[2].split() == ["0", "|", "ALGERIA", "|", "NULL"]
    assert lines[-1] == "(2 rows)"
    out = shell(server, "-F", "vertical", "-c", sql)
    assert "-[ RECORD 2 ]" in out.stdout and "name    | ARGENTINA" in out.stdout


def test_exit_codes_and_scripts_with_errors(server, tmp_path):
    out = shell(server, "-F", "csv", "-c", "SELECT no_such_column FROM tpch.nation")
    assert out.returncode == 1
    assert "no_such_column" in out.stderr and out.stdout == ""
    script = tmp_path / "script.sql"
    script.write_text("SELECT 1 AS a;\nSELECT oops FROM nowhere;\nSELECT 3 AS c;\n")
    out = shell(server, "-F", "csv", "-f", str(script))
    assert out.returncode == 1
    assert out.stdout == "a\n1\n"  # stopped at the first error
    out = shell(server, "-F", "csv", "--continue-on-error", "-f", str(script))
    assert out.returncode == 1
    assert out.stdout == "a\n1\nc\n3\n"
    # Backslash commands are lines of their own; \q ends the script.
    script.write_text("\\format csv\nSELECT 5 AS five;\n\\q\nSELECT 6 AS never;\n")
    out = shell(server, "-f", str(script))
    assert (out.returncode, out.stdout) == (0, "Output format is csv.\nfive\n5\n"), out.stderr
    out = shell(server, "-F", "csv", stdin="SELECT 7 AS piped;\nSELECT 8 AS more\n")
    assert (out.returncode, out.stdout) == (0, "piped\n7\nmore\n8\n")
    bad = shell(server, "-c", "SELECT 1", env=shell_env(server, OSPREY_PASSWORD="wrong"))
    assert bad.returncode == 2 and "login as admin failed: wrong user name or password" \
        in bad.stderr, bad.stderr
    assert "code:" not in bad.stderr and "Status" not in bad.stderr, bad.stderr
    nowhere = shell(server, "-c", "SELECT 1", env=shell_env(server, OSPREY_PORT="1"))
    assert nowhere.returncode == 2 and "cannot connect" in nowhere.stderr


def test_describe_resolves_names_as_sql_does(server, tmp_path):
    """Issue 30: `\\d name` is resolved in the current schema first (never merged with a
    same-named table elsewhere), takes `schema.name`, and an unknown name is an error."""
    setup = shell(server, "-c", "CREATE SCHEMA IF NOT EXISTS shell_d")
    assert setup.returncode == 0, setup.stderr
    setup = shell(server, "-c", "CREATE TABLE IF NOT EXISTS shell_d.nation (only_here INT)")
    assert setup.returncode == 0, setup.stderr
    script = tmp_path / "describe.sql"
    script.write_text("USE tpch;\n\\d nation\n")
    out = shell(server, "-F", "csv", "-f", str(script))
    assert out.returncode == 0, out.stderr
    columns = [line.split(",")[0] for line in out.stdout.splitlines()[1:]]
    assert columns == ["n_nationkey", "n_name", "n_regionkey", "n_comment"], out.stdout
    # SQL's type names, as every door shows them.
    assert out.stdout.splitlines()[:2] == ["Column,Type,Extra,Comment", "n_nationkey,BIGINT,,"], \
        out.stdout
    script.write_text("\\d shell_d.nation\n")
    out = shell(server, "-F", "csv", "-f", str(script))
    assert out.returncode == 0 and out.stdout.splitlines()[1].startswith("only_here"), out
    script.write_text("\\d no_such_table\n")
    out = shell(server, "-F", "csv", "-f", str(script))
    assert out.returncode == 1 and "no_such_table" in out.stderr, out


def test_errors_point_at_the_spot_and_name_the_script_line(server, tmp_path):
    """Issue 30: a syntax error shows its line with a caret under the spot (as psql), a script's
    error names the file and the line its statement starts on, and no engine prefix shows."""
    script = tmp_path / "report.sql"
    script.write_text("SELECT 1 AS a;\n\nSELECT n_name\nFROM tpch.nation\nWHERE n_nationkey = = 1;\n")
    out = shell(server, "-F", "csv", "-f", str(script))
    assert out.returncode == 1
    assert (f"{script}:3: ERROR: syntax error: expected an expression, found = at line 3, "
            "column 21 (SYNTAX_ERROR)") in out.stderr, out.stderr
    assert "LINE 3: WHERE n_nationkey = = 1\n" + " " * 28 + "^\n" in out.stderr, out.stderr
    out = shell(server, "-c", "SELECT * FROM tpch.natoin")
    assert out.returncode == 1
    assert "table osprey.tpch.natoin does not exist. Did you mean tpch.nation? " \
        "(TABLE_NOT_FOUND)" in out.stderr, out.stderr
    out = shell(server, "-c", "SELECT 1 / 0")
    assert "ERROR: division by zero (INVALID_DATA)" in out.stderr, out.stderr
    for prefix in ["SQL error", "ParserError", "Error during planning", "Arrow error",
                   "Schema error", "External error", "Tonic", "Status {"]:
        assert prefix not in out.stderr, out.stderr


def test_multi_line_values_print_as_lines(server):
    """Issue 30: EXPLAIN and SHOW CREATE come out as lines (psql's wrapped format), and a
    narrow terminal wraps text but never cuts numbers."""
    out = shell(server, "-c", "EXPLAIN SELECT n_name FROM tpch.nation WHERE n_nationkey > 3")
    assert out.returncode == 0, out.stderr
    assert "↵" not in out.stdout and "…" not in out.stdout, out.stdout
    assert len(out.stdout.splitlines()) > 5, out.stdout
    plan = out.stdout.splitlines()
    assert any(line.startswith("distributed_plan | FilterExec") for line in plan), out.stdout
    assert any(line.strip().startswith("| ") and "DataSourceExec" in line for line in plan), \
        out.stdout
    out = shell(server, "-c", "CREATE TABLE IF NOT EXISTS public.shell_wide AS "
                "SELECT 1 AS id, 'x' AS name")
    assert out.returncode == 0, out.stderr
    out = shell(server, "-c", "SHOW CREATE TABLE public.shell_wide")
    assert out.returncode == 0, out.stderr
    assert "↵" not in out.stdout, out.stdout
    lines = out.stdout.splitlines()
    # The definition's lines, one under the other in its column.
    assert any("CREATE" in line for line in lines), out.stdout
    assert len([line for line in lines if line.startswith(" " * 14)]) >= 1, out.stdout


def test_timing_follows_the_result(server, tmp_path):
    """Issue 30: `\\timing` prints after the result, also when the time goes to stderr."""
    script = tmp_path / "timing.sql"
    script.write_text("\\timing on\nSELECT 41 + 1 AS answer;\n")
    out = subprocess.run([osprey_bin(), "shell", "-F", "csv", "-f", str(script)],
                         stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                         timeout=120, env=shell_env(server))
    assert out.returncode == 0, out.stdout
    lines = out.stdout.splitlines()
    assert lines[-3:-1] == ["answer", "42"] and lines[-1].startswith("Time: "), lines


def test_profiles_supply_the_connection(server, tmp_path):
    config = tmp_path / "config.toml"
    config.write_text(f'default = "here"\n[profiles.here]\nhost = "{server["host"]}"\n'
                      f'port = {server["port"]}\nuser = "admin"\n')
    env = shell_env(server, OSPREY_SHELL_CONFIG=str(config))
    del env["OSPREY_HOST"], env["OSPREY_PORT"]
    out = shell(server, "-F", "csv", "-c", "SELECT 'via profile' AS how", env=env)
    assert (out.returncode, out.stdout) == (0, "how\nvia profile\n"), out.stderr
    out = shell(server, "--profile", "elsewhere", "-c", "SELECT 1", env=env)
    assert out.returncode == 2 and "no profile \"elsewhere\"" in out.stderr


# psql's prompts: `osprey:SCHEMA=> ` for a new statement, `osprey:SCHEMA-> ` for its next lines.
PROMPT = r"osprey:\w+=> "
CONTINUED = r"osprey:\w+-> "


def spawn_interactive(server, env=None):
    child = pexpect.spawn(osprey_bin(), ["shell"], env=env or shell_env(server),
                          encoding="utf-8", timeout=60, dimensions=(40, 120))
    child.expect(PROMPT)
    return child


def test_interactive_prompt_multiline_completion_and_cancel(server):
    child = spawn_interactive(server)
    # A statement over two lines runs when the `;` arrives; the second line's prompt says the
    # statement continues.
    child.sendline("SELECT 40 + 2")
    child.expect(CONTINUED)
    child.sendline("  AS answer;")
    # (the header is bold: colour is on in a terminal)
    child.expect(r"\x1b\[1manswer\x1b\[0m\r\n-+\r\n\s*42\r\n\(1 row\)")
    child.expect(PROMPT)
    # Completion of a table name loaded from the server's metadata.
    child.send("SELECT count(*) FROM tpch.supp\t")
    child.expect_exact("tpch.supplier")
    child.sendline(";")
    child.expect(r"\b100\b")
    child.expect(PROMPT)
    # A long query shows the server's progress in a live line: rows and bytes read so far out
    # of the bytes planned (stages done/total too when the plan has executor stages; at this
    # scale it runs in one; tests/tests/progress.rs covers stages).
    child.sendline("SELECT count(*) FROM tpch.lineitem a, tpch.lineitem b "
                   "WHERE a.l_quantity < b.l_quantity;")
    child.expect(r"\d+\.\d s · read [1-9][\d,]* rows, [\d.]+ [KM]iB of [\d.]+ [KM]iB · "
                 r"(stages \d+/\d+ · )?received 0 rows, 0 B · Ctrl-C cancels")
    # Ctrl-C cancels it on the server; the next query works.
    child.sendintr()
    child.expect("cancelled")
    child.expect(PROMPT)
    child.sendline("SELECT 'after' AS next;")
    child.expect(r"after\r\n\(1 row\)")
    child.expect(PROMPT)
    # The prompt names the current schema.
    child.sendline("USE tpch;")
    child.expect_exact("osprey:tpch=> ")
    # Plans print as lines, not one cut row.
    child.sendline("EXPLAIN SELECT count(*) FROM nation;")
    child.expect(r"\r\n\s*\|\s+\S*Exec")
    child.expect(PROMPT)
    # Long text wraps to the terminal's 120 columns; the number beside it is whole.
    child.sendline("SELECT 12345678901234567 AS big, repeat('x', 300) AS text;")
    child.expect(r"12345678901234567 \| x{100,}\r\n\s+\| x{100,}\r\n")
    child.expect(PROMPT)
    # So are a date and a timestamp beside it.
    child.sendline("SELECT DATE '2026-12-07' AS day, TIMESTAMP '2026-12-07 10:11:12' AS at, "
                   "repeat('y', 300) AS text;")
    child.expect(r"2026-12-07 \| 2026-12-07[ T]10:11:12 +\| y{50,}\r\n")
    child.expect(PROMPT)
    # A syntax error shows its line with a caret under the spot, as psql does.
    child.sendline("SELECT * FROM nation WHERE = 1;")
    child.expect_exact("LINE 1: SELECT * FROM nation WHERE = 1\r\n" + " " * 35 + "^")
    child.expect(PROMPT)
    child.sendline("\\q")
    child.expect(pexpect.EOF)
    history = (server["home"] / "history").read_text()
    assert "AS answer;" in history


def test_history_survives_a_restart_and_meta_commands_work(server):
    child = spawn_interactive(server)
    child.sendline("SELECT 'remember me' AS note;")
    child.expect_exact("(1 row)")
    child.expect(PROMPT)
    child.sendline("\\dt")
    child.expect("lineitem")
    child.expect(PROMPT)
    child.sendline("\\conninfo")
    child.expect("Connected to grpc://.* as user admin")
    child.expect(PROMPT)
    child.sendeof()  # Ctrl-D leaves
    child.expect(pexpect.EOF)
    child = spawn_interactive(server)
    child.send("\x1b[A" * 3)  # up arrow ×3: the first line of the previous run
    child.expect_exact("remember me")
    child.sendline("")
    child.expect_exact("(1 row)")
    # A long result prints its first rows on the terminal and counts the rest.
    child.sendline("\\maxrows 5")
    child.expect_exact("At most 5 rows are printed per result.")
    child.sendline("SELECT n_nationkey FROM tpch.nation ORDER BY 1;")
    child.expect(r"\r\n\s+4\r\n\(25 rows; the first 5 shown")
    child.expect(PROMPT)
    child.sendline("\\maxrows off")
    child.expect_exact("Every row is printed.")
    child.expect(PROMPT)
    child.sendline("\\q")
    child.expect(pexpect.EOF)


def test_machine_formats_stream_whole_results(server):
    out = shell(server, "-F", "csv", "-c", "SELECT l_orderkey, l_linenumber FROM tpch.lineitem")
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    count = shell(server, "-F", "csv", "-c", "SELECT count(*) AS n FROM tpch.lineitem")
    assert lines[0] == "l_orderkey,l_linenumber" and lines.count(lines[0]) == 1
    assert len(lines) - 1 == int(count.stdout.splitlines()[1]) > 50_000


def test_no_arguments_reach_osprey_local_with_its_password_file(tmp_path):
    """`osprey local` without OSPREY_ADMIN_PASSWORD writes DATA_DIR/admin-password; the shell
    run from the same place (same --data-dir) logs in as admin with it, unprompted."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("OSPREY_")}
    env.update(RUST_LOG="warn", HOME=str(tmp_path))
    local = subprocess.Popen(
        [osprey_bin(), "local", "--executors", "1", "--tpch-scale", "0", "--data-dir", "osprey-data",
         "--flight-listen", "127.0.0.1:0", "--http-listen", "off"],
        cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        port = None
        for line in local.stdout:
            if line.startswith("OSPREY_FLIGHT_SQL_LISTENING "):
                port = line.split()[1].rsplit(":", 1)[1]
                break
        assert port and (tmp_path / "osprey-data" / "admin-password").exists()
        out = subprocess.run([osprey_bin(), "shell", "-p", port, "-w", "-F", "csv",
                              "-c", "SELECT 'in' AS logged"],
                             cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60)
        assert (out.returncode, out.stdout) == (0, "logged\nin\n"), out.stderr
        # Elsewhere (no password file) and forbidden to prompt: a clear error, exit code 2.
        elsewhere = subprocess.run([osprey_bin(), "shell", "-p", port, "-w", "-c", "SELECT 1"],
                                   cwd="/", env=env, capture_output=True, text=True, timeout=60)
        assert elsewhere.returncode == 2 and "OSPREY_PASSWORD" in elsewhere.stderr
    finally:
        local.send_signal(2)
        local.wait(30)


def test_a_queued_statement_says_so_and_ctrl_c_takes_it_out_of_the_queue(server):
    setup = shell(server, "-c", "CREATE WORKGROUP shell_solo WITH (max_concurrent_queries = 1)",
                  "-c", "CREATE USER queuer PASSWORD 'pw-queuer' WORKGROUP shell_solo")
    assert setup.returncode == 0, setup.stderr
    env = shell_env(server, OSPREY_USER="queuer", OSPREY_PASSWORD="pw-queuer")
    # The workgroup's one slot is taken by a long query from another shell.
    blocker = subprocess.Popen(
        [osprey_bin(), "shell", "-c", "SELECT count(*) FROM tpch.lineitem a, tpch.lineitem b "
                                      "WHERE a.l_quantity < b.l_quantity"],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            out = shell(server, "-F", "csv", "-c",
                        "SELECT count(*) FROM system.queries WHERE user_name = 'queuer' "
                        "AND state = 'RUNNING'")
            if out.stdout.splitlines()[-1:] == ["1"]:
                break
            time.sleep(0.1)
        child = spawn_interactive(server, env)
        child.sendline("SELECT 'waited' AS w;")
        child.expect(r"queued \d+\.\d s: the workgroup is at its limit of running queries · "
                     r"Ctrl-C cancels")
        child.sendintr()
        child.expect("cancelled")
        child.expect(PROMPT)
        child.sendline("\\q")
        child.expect(pexpect.EOF)
    finally:
        blocker.terminate()
        blocker.wait(30)
    states = shell(server, "-F", "csv", "-c",
                   "SELECT state FROM system.queries WHERE query = 'SELECT ''waited'' AS w'")
    assert states.stdout.splitlines()[1:] == ["CANCELLED"], states.stdout
