"""The HTTP front door, driven with plain HTTP requests: health and readiness without
credentials, everything else authenticated with Basic or the Flight SQL bearer token, and
JSON errors."""

import base64
import json
import time
import urllib.error
import urllib.request


from conftest import PASSWORD


def call(url, headers=None):
    """(status, JSON body, headers) of a GET, for success and error statuses alike."""
    request = urllib.request.Request(url, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, json.loads(response.read()), response.headers
    except urllib.error.HTTPError as err:
        return err.code, json.loads(err.read()), err.headers


def basic(user, password):
    token = base64.b64encode(f"{user}:{password}".encode()).decode()
    return {"Authorization": f"Basic {token}"}


def test_health_and_readiness_need_no_credentials(http):
    assert call(f"{http}/healthz")[:2] == (200, {"status": "alive"})
    status, body, _ = call(f"{http}/readyz")
    assert status == 200, body
    assert body["status"] == "ready" and body["executors_up"] == 1


def test_everything_else_authenticates(http):
    status, body, headers = call(f"{http}/v1/whoami")
    assert status == 401
    assert body["error"]["code"] == "UNAUTHENTICATED"
    # The message speaks HTTP (issue 30), not the Flight SQL handshake.
    message = body["error"]["message"]
    assert "Authorization: Basic" in message and "-u user:password" in message, message
    assert "Handshake" not in message, message
    # No Basic challenge: a browser would prompt for and then cache credentials for any page.
    assert headers["WWW-Authenticate"].startswith("Bearer")
    status, body, _ = call(f"{http}/v1/whoami", basic("admin", "wrong"))
    assert (status, body["error"]["message"]) == (401, "invalid username or password")
    status, body, _ = call(f"{http}/v1/whoami", basic("admin", PASSWORD))
    assert (status, body) == (200, {"user": "admin", "admin": True})
    status, body, _ = call(f"{http}/v1/whoami", {"Authorization": "Bearer forged"})
    assert status == 401 and "bearer token" in body["error"]["message"]


def test_unknown_paths_are_json_404s(http):
    status, body, _ = call(f"{http}/v2/nothing-here")
    assert status == 404 and body["error"]["code"] == "NOT_FOUND"


def post(url, body, headers=None, content_type="application/json"):
    """(status, body bytes, headers) of a POST."""
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    request = urllib.request.Request(url, data=data, method="POST",
                                     headers={"Content-Type": content_type, **(headers or {})})
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            return response.status, response.read(), response.headers
    except urllib.error.HTTPError as err:
        return err.code, err.read(), err.headers


def delete(url, headers):
    request = urllib.request.Request(url, method="DELETE", headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as err:
        return err.code, json.loads(err.read())


def admin():
    return basic("admin", PASSWORD)


def test_a_quick_query_answers_with_its_result(http):
    status, body, _ = post(f"{http}/v1/queries",
                           {"sql": "SELECT 1 AS one, 'x' AS letter, NULL AS nothing"}, admin())
    assert status == 200, body
    answer = json.loads(body)
    assert answer["state"] == "SUCCEEDED"
    assert [c["name"] for c in answer["result"]["columns"]] == ["one", "letter", "nothing"]
    assert answer["result"]["rows"] == [[1, "x", None]]
    assert answer["result"]["next_page_token"] is None
    status, record, _ = call(f"{http}/v1/queries/{answer['query_id']}", admin())
    assert status == 200 and record["rows"] == 1 and record["state"] == "SUCCEEDED"


def test_json_numbers_are_exact_and_types_are_sql(http):
    """Decimals arrive as their exact digits and integers beyond 2^53 as strings (a double would
    change them); column types are SQL's names."""
    sql = ("SELECT CAST('12345678901234567.89' AS DECIMAL(20,2)) AS price, "
           "CAST(9007199254740993 AS BIGINT) AS big, CAST(-9007199254740993 AS BIGINT) AS low, "
           "CAST(42 AS BIGINT) AS small, 0.5 AS half, 'x' AS name, DATE '2026-12-05' AS day, "
           "arrow_cast('2026-12-05T10:00:00Z', 'Timestamp(Microsecond, Some(\"UTC\"))') AS at")
    status, body, _ = post(f"{http}/v1/queries", {"sql": sql}, admin())
    assert status == 200, body
    result = json.loads(body)["result"]
    assert [c["type"] for c in result["columns"]] == [
        "DECIMAL(20,2)", "BIGINT", "BIGINT", "BIGINT", "DECIMAL(1,1)", "VARCHAR", "DATE",
        "TIMESTAMP(6) WITH TIME ZONE"]
    assert result["rows"][0][:6] == [
        "12345678901234567.89", "9007199254740993", "-9007199254740993", 42, "0.5", "x"]
    # An unquoted literal with a fraction is a decimal, as in PostgreSQL, Trino and DuckDB.
    status, body, _ = post(f"{http}/v1/queries",
                           {"sql": "SELECT 12345678901234567.89 AS exact"}, admin())
    assert status == 200, body
    assert json.loads(body)["result"]["rows"] == [["12345678901234567.89"]]
    status, raw, _ = post(f"{http}/v1/statement:stream?format=ndjson",
                          b"SELECT CAST(1.10 AS DECIMAL(5,2)) AS d, 9007199254740993 AS big",
                          admin(), "application/sql")
    assert (status, json.loads(raw)) == (200, {"d": "1.10", "big": "9007199254740993"})


def test_a_long_query_runs_on_and_can_be_cancelled(http):
    endless = ("SELECT count(*) FROM (SELECT * FROM range(100000)) a, (SELECT * FROM range(100000)) b "
               "WHERE a.value < b.value")
    status, body, _ = post(f"{http}/v1/queries", {"sql": endless, "wait_timeout": "1s"}, admin())
    answer = json.loads(body)
    assert status == 200 and answer["state"] in ("QUEUED", "RUNNING"), answer
    assert "result" not in answer
    query = f"{http}/v1/queries/{answer['query_id']}"
    status, body, _ = call(f"{query}/results", admin())
    assert status == 409 and body["error"]["code"] == "NOT_FINISHED"
    # While it runs, its status carries live progress: rows read so far, stages done.
    status, running, _ = call(query, admin())
    assert status == 200 and running["state"] == "RUNNING", running
    progress = running["progress"]
    assert progress["rows_read"] > 0, running
    assert 0 <= progress["stages_done"] <= progress["stages_total"], running
    status, cancelled = delete(query, admin())
    assert status == 200 and cancelled["state"] == "CANCELLED"
    assert call(query, admin())[1]["state"] == "CANCELLED"


def test_results_page_in_every_format(http):
    sql = "SELECT value AS n, value * 2 AS twice FROM range(25000) ORDER BY value"
    status, body, _ = post(f"{http}/v1/queries", {"sql": sql, "wait_timeout": "30s"}, admin())
    answer = json.loads(body)
    assert answer["state"] == "SUCCEEDED", answer
    first = answer["result"]
    assert len(first["rows"]) == 10000 and first["rows"][0] == [0, 0]
    results = f"{http}/v1/queries/{answer['query_id']}/results"
    rows, token = list(first["rows"]), first["next_page_token"]
    while token:
        status, page, _ = call(f"{results}?page_token={token}", admin())
        assert status == 200, page
        rows += page["rows"]
        token = page["next_page_token"]
    assert [r[0] for r in rows] == list(range(25000))

    import pyarrow as pa
    request = urllib.request.Request(f"{results}?format=arrow", headers=admin())
    with urllib.request.urlopen(request, timeout=30) as response:
        assert response.headers["Content-Type"] == "application/vnd.apache.arrow.stream"
        next_token = response.headers["X-Osprey-Next-Page-Token"]
        table = pa.ipc.open_stream(response.read()).read_all()
    assert table.num_rows == 10000 and table.column("twice")[3].as_py() == 6
    assert next_token == "10000"
    request = urllib.request.Request(f"{results}?format=csv&page_token=20000", headers=admin())
    with urllib.request.urlopen(request, timeout=30) as response:
        lines = response.read().decode().splitlines()
    assert lines[0] == "20000,40000" and len(lines) == 5000


def test_other_users_queries_are_not_found_and_history_is_private(http):
    status, _, _ = post(f"{http}/v1/queries",
                        {"sql": "CREATE USER IF NOT EXISTS carol PASSWORD 'carol-pw'"}, admin())
    assert status == 200
    status, body, _ = post(f"{http}/v1/queries", {"sql": "SELECT 42"}, admin())
    admins_query = json.loads(body)["query_id"]
    carol = basic("carol", "carol-pw")
    status, body, _ = call(f"{http}/v1/queries/{admins_query}", carol)
    assert status == 404 and body["error"]["code"] == "NOT_FOUND"
    post(f"{http}/v1/queries", {"sql": "SELECT 'mine'"}, carol)
    status, history, _ = call(f"{http}/v1/queries", carol)
    assert status == 200 and {q["user"] for q in history["queries"]} == {"carol"}
    status, history, _ = call(f"{http}/v1/queries?limit=1000", admin())
    assert {"admin", "carol"} <= {q["user"] for q in history["queries"]}


def post_expecting_continue(url, body, headers):
    """POSTs a large body as curl does: `Expect: 100-continue`, the body sent only after the
    server's `100 Continue`. A server refusing the size answers at once and never reads the
    body (a plain POST would race that answer with a broken pipe)."""
    import socket
    import urllib.parse
    parts = urllib.parse.urlsplit(url)
    head = (f"POST {parts.path} HTTP/1.1\r\nHost: {parts.netloc}\r\n"
            f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n"
            "Expect: 100-continue\r\nConnection: close\r\n"
            + "".join(f"{name}: {value}\r\n" for name, value in headers.items()) + "\r\n")
    with socket.create_connection((parts.hostname, parts.port), timeout=60) as sock:
        sock.sendall(head.encode())
        answer = b""
        while b"\r\n\r\n" not in answer:
            chunk = sock.recv(65536)
            if not chunk:
                break
            answer += chunk
        if answer.startswith(b"HTTP/1.1 100"):
            sock.sendall(body)
            answer = answer.split(b"\r\n\r\n", 1)[1]
        while chunk := sock.recv(65536):
            answer += chunk
    status_line, rest = answer.split(b"\r\n", 1)
    response_body = rest.split(b"\r\n\r\n", 1)[1]
    return int(status_line.split()[1]), response_body


def test_bad_requests_get_clean_json_errors(http):
    for body, content_type, expected in [
        (b"{not json", "application/json", 400),
        (json.dumps({"sql": "SELECT 1", "surprise": 1}).encode(), "application/json", 422),
        (json.dumps({"sql": "SELECT 1", "wait_timeout": "forever"}).encode(),
         "application/json", 400),
        (json.dumps({"sql": "SELEKT 1"}).encode(), "application/json", 200),
        (b"x" * (2 << 20), "application/json", 413),
    ]:
        if len(body) > 1 << 20:
            status, raw = post_expecting_continue(f"{http}/v1/queries", body, admin())
        else:
            status, raw, _ = post(f"{http}/v1/queries", body, admin(), content_type)
        assert status == expected, (body[:40], status, raw[:200])
        answer = json.loads(raw)
        if status == 200:  # accepted, and the statement failed
            assert answer["state"] == "FAILED" and answer["error"]["code"]
        else:
            assert answer["error"]["code"] and answer["error"]["message"]
    status, body, _ = call(f"{http}/v1/queries/nope/results?format=xml", admin())
    assert status == 404
    status, body, _ = post(f"{http}/v1/queries", {"sql": "SELECT 1"}, admin())
    query_id = json.loads(body)["query_id"]
    status, body, _ = call(f"{http}/v1/queries/{query_id}/results?format=xml", admin())
    assert status == 400 and "unknown format" in body["error"]["message"]
    status, body, _ = call(f"{http}/v1/queries/{query_id}/results?page_token=abc", admin())
    assert status == 400


def test_statement_stream_in_three_formats(http):
    import pyarrow as pa
    sql = b"SELECT value AS n FROM range(100000)"
    status, raw, headers = post(f"{http}/v1/statement:stream?format=arrow", sql, admin(),
                                "application/sql")
    assert status == 200 and headers["Content-Type"] == "application/vnd.apache.arrow.stream"
    table = pa.ipc.open_stream(raw).read_all()
    assert table.num_rows == 100000 and sum(table.column("n").to_pylist()) == 4999950000
    status, raw, _ = post(f"{http}/v1/statement:stream?format=csv", b"SELECT 1 AS a, 'b' AS b",
                          admin(), "application/sql")
    assert (status, raw.decode()) == (200, "a,b\n1,b\n")
    status, raw, _ = post(f"{http}/v1/statement:stream?format=ndjson",
                          b"SELECT 1 AS a, NULL AS b", admin(), "application/sql")
    assert (status, json.loads(raw)) == (200, {"a": 1, "b": None})
    status, raw, headers = post(f"{http}/v1/statement:stream?format=arrow", b"SELEKT", admin(),
                                "application/sql")
    assert status == 400 and json.loads(raw)["error"]["message"]
    refused_id = headers["X-Osprey-Query-Id"]
    # A statement that fails before its first batch answers an error status, not a cut stream;
    # every answer names its statement, as the history does.
    status, raw, headers = post(f"{http}/v1/statement:stream?format=arrow", b"SELECT 1 / 0",
                                admin(), "application/sql")
    assert status == 400 and json.loads(raw)["error"]["code"] == "INVALID_DATA", raw
    failed_id = headers["X-Osprey-Query-Id"]
    status, raw, headers = post(f"{http}/v1/statement:stream?format=csv", b"SELECT 7 AS n",
                                admin(), "application/sql")
    assert (status, raw.decode()) == (200, "n\n7\n")
    ok_id = headers["X-Osprey-Query-Id"]
    status, body, _ = call(f"{http}/v1/queries?limit=20", admin())
    states = {q["query_id"]: q["state"] for q in body["queries"]}
    assert (states.get(refused_id), states.get(failed_id), states.get(ok_id)) == \
        ("FAILED", "FAILED", "SUCCEEDED"), states


def test_pages_of_other_sites_cannot_run_sql(http):
    """Issue 20, finding 8: simple-content-type POSTs and cross-origin requests are refused,
    even with valid credentials."""
    for content_type in ["text/plain", "application/x-www-form-urlencoded",
                         "multipart/form-data; boundary=x"]:
        status, raw, _ = post(f"{http}/v1/statement:stream?format=csv", b"SELECT 1", admin(),
                              content_type)
        assert status == 415, (content_type, raw)
        assert "application/sql" in json.loads(raw)["error"]["message"]
    for headers in [{"Origin": "https://evil.example"}, {"Origin": "null"},
                    {"Sec-Fetch-Site": "cross-site"}]:
        status, raw, _ = post(f"{http}/v1/statement:stream?format=csv", b"SELECT 1",
                              {**admin(), **headers}, "application/sql")
        assert status == 403 and json.loads(raw)["error"]["code"] == "CROSS_ORIGIN", headers
    # The same origin (a console served from this port) is fine.
    host = http.split("://", 1)[1]
    status, raw, _ = post(f"{http}/v1/statement:stream?format=csv", b"SELECT 1",
                          {**admin(), "Origin": f"http://{host}"}, "application/sql")
    assert (status, raw.decode()) == (200, "Int64(1)\n1\n")


def test_a_full_workgroup_queues_visibly_then_refuses_at_once(http):
    for sql in ["CREATE WORKGROUP solo WITH (max_concurrent_queries = 1, max_queued_queries = 1)",
                "CREATE USER sol PASSWORD 'pw-sol' WORKGROUP solo"]:
        status, body, _ = post(f"{http}/v1/queries", {"sql": sql, "wait_timeout": "10s"}, admin())
        assert status == 200 and json.loads(body)["state"] == "SUCCEEDED", body
    sol = basic("sol", "pw-sol")
    endless = ("SELECT count(*) FROM (SELECT * FROM range(100000)) a, (SELECT * FROM range(100000)) b "
               "WHERE a.value < b.value")
    status, body, _ = post(f"{http}/v1/queries", {"sql": endless, "wait_timeout": "1s"}, sol)
    running = json.loads(body)
    assert status == 200 and running["state"] == "RUNNING", running
    status, body, _ = post(f"{http}/v1/queries", {"sql": "SELECT 41 + 1 AS answer",
                                                  "wait_timeout": "0s"}, sol)
    waiting = json.loads(body)
    # Planning runs off the front door, so an answer after 0 s may come before the statement
    # reaches its queue (RUNNING: planning); it is QUEUED once there.
    assert status == 200 and waiting["state"] in ("QUEUED", "RUNNING"), waiting
    time.sleep(0.5)
    status, waiting, _ = call(f"{http}/v1/queries/{waiting['query_id']}", sol)
    assert waiting["state"] == "QUEUED" and waiting["queued_ms"] >= 400, waiting
    # The queue holds one: the next is refused at once, retryably.
    status, raw, headers = post(f"{http}/v1/statement:stream?format=csv", b"SELECT 1", sol,
                                content_type="application/sql")
    refusal = json.loads(raw)
    assert status == 429 and headers["Retry-After"] == "1", refusal
    assert refusal["error"]["code"] == "QUEUE_FULL", refusal
    assert "workgroup solo is at its limit" in refusal["error"]["message"], refusal
    # Cancelling the running one lets the queued one run.
    assert delete(f"{http}/v1/queries/{running['query_id']}", sol)[0] == 200
    deadline = time.monotonic() + 30
    while waiting["state"] == "QUEUED" and time.monotonic() < deadline:
        time.sleep(0.1)
        _, waiting, _ = call(f"{http}/v1/queries/{waiting['query_id']}", sol)
    status, done, _ = call(f"{http}/v1/queries/{waiting['query_id']}", sol)
    assert done["state"] == "SUCCEEDED" and done["queued_ms"] >= 500, done
    assert done["rows"] == 1


def test_files_are_queried_directly_within_granted_locations(http, tmp_path):
    """Issue 30: `SELECT * FROM 'dir/*.parquet'` and read_parquet/read_csv/read_json, with
    globs and the schema inferred; an admin reads any path outside Osprey's own storage, a user
    only the locations granted to them."""
    import pyarrow as pa
    import pyarrow.parquet as pq
    lake = tmp_path / "lake"
    (lake / "orders").mkdir(parents=True)
    for part in range(3):
        pq.write_table(pa.table({"id": [part * 10 + i for i in range(10)],
                                 "amount": [1.5] * 10}), lake / "orders" / f"part-{part}.parquet")
    (lake / "people.csv").write_text("id,name\n1,ada\n2,grace\n")
    (lake / "events.ndjson").write_text('{"kind": "click"}\n{"kind": "view"}\n{"kind": "click"}\n')

    def rows(sql, headers=None):
        status, body, _ = post(f"{http}/v1/queries", {"sql": sql}, headers or admin())
        return status, json.loads(body)

    status, body = rows(f"SELECT count(*) AS n, sum(id) AS s FROM '{lake}/orders/*.parquet'")
    assert (status, body["result"]["rows"]) == (200, [[30, 435]]), body
    status, body = rows(f"SELECT count(*) FROM read_parquet('{lake}/orders/')")
    assert (status, body["result"]["rows"]) == (200, [[30]]), body
    status, body = rows(f"SELECT name FROM read_csv('{lake}/people.csv') WHERE id = 2")
    assert (status, body["result"]["rows"]) == (200, [["grace"]]), body
    status, body = rows(f"SELECT kind, count(*) FROM '{lake}/events.ndjson' GROUP BY kind "
                        "ORDER BY kind")
    assert (status, body["result"]["rows"]) == (200, [["click", 2], ["view", 1]]), body
    # Joined with each other, and the files' columns typed from the files.
    status, body = rows(f"SELECT o.id, p.name FROM '{lake}/orders/*.parquet' o "
                        f"JOIN read_csv('{lake}/people.csv') p ON o.id = p.id ORDER BY 1")
    assert (status, body["result"]["rows"]) == (200, [[1, "ada"], [2, "grace"]]), body
    status, body = rows(f"SELECT * FROM '{lake}/nothing/*.parquet'")
    assert body["state"] == "FAILED" and body["error"]["message"].startswith(
        "no parquet files match"), body
    # A user reads only what a location grants them.
    status, body = rows("CREATE USER files_user PASSWORD 'files-user-password'")
    assert status == 200, body
    user = basic("files_user", "files-user-password")
    status, body = rows(f"SELECT count(*) FROM '{lake}/orders/*.parquet'", user)
    assert body["state"] == "FAILED" and body["error"]["code"] == "PERMISSION_DENIED", body
    status, body = rows(f"CREATE LOCATION files_lake URL '{lake}/orders/' READ ONLY "
                        "FOR USERS files_user")
    assert status == 200, body
    status, body = rows(f"SELECT count(*) FROM '{lake}/orders/*.parquet'", user)
    assert (status, body["result"]["rows"]) == (200, [[30]]), body
    status, body = rows(f"SELECT count(*) FROM read_csv('{lake}/people.csv')", user)
    assert body["error"]["code"] == "PERMISSION_DENIED", body
