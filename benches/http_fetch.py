"""How fast a whole result leaves Osprey over HTTP: the one-shot Arrow stream, the native API's
JSON pages, and the Trino protocol (raw pages, and through the `trino` Python client).

    cargo build --release --bin osprey
    python benches/http_fetch.py --osprey target/release/osprey --scale 0.1

Starts `osprey local` (two executors, TPC-H at --scale, TLS with a throwaway CA) and fetches
`SELECT * FROM tpch.lineitem` each way, printing rows per second. Needs the test venv
(tests/python/requirements.txt: pyarrow, requests, trino)."""

import argparse
import pathlib
import subprocess
import tempfile
import threading
import time

import pyarrow as pa
import requests
import trino
from trino.auth import BasicAuthentication

REPO = pathlib.Path(__file__).resolve().parents[1]
PASSWORD = "bench-password"
SQL = "SELECT * FROM tpch.lineitem"


def start(osprey, scale, work):
    subprocess.run(["bash", str(REPO / "scripts" / "make-test-certs.sh"), str(work / "certs")],
                   check=True)
    proc = subprocess.Popen(
        [osprey, "local", "--executors", "2", "--tpch-scale", str(scale),
         "--data-dir", str(work / "data"), "--flight-listen", "127.0.0.1:0",
         "--http-listen", "127.0.0.1:0", "--tls-cert", str(work / "certs" / "server.pem"),
         "--tls-key", str(work / "certs" / "server.key")],
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
        env={"OSPREY_ADMIN_PASSWORD": PASSWORD, "RUST_LOG": "warn", "PATH": "/usr/bin:/bin"})
    found = {}
    ready = threading.Event()

    def read():
        for line in proc.stdout:
            if line.startswith("OSPREY_HTTP_LISTENING "):
                found["port"] = int(line.split()[1].rsplit(":", 1)[1])
                ready.set()

    threading.Thread(target=read, daemon=True).start()
    if not ready.wait(600):
        proc.kill()
        raise SystemExit("osprey local did not start")
    return proc, found["port"]


def timed(label, fetch):
    started = time.monotonic()
    rows = fetch()
    seconds = time.monotonic() - started
    print(f"{label:<34} {rows:>10,} rows {seconds:8.2f} s {rows / seconds:>12,.0f} rows/s")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--osprey", default=str(REPO / "target" / "release" / "osprey"))
    parser.add_argument("--scale", default="0.1")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as directory:
        work = pathlib.Path(directory)
        proc, port = start(args.osprey, args.scale, work)
        try:
            base = f"https://127.0.0.1:{port}"
            session = requests.Session()
            session.trust_env = False
            session.verify = str(work / "certs" / "ca.pem")
            session.auth = ("admin", PASSWORD)

            def arrow_stream():
                body = session.post(f"{base}/v1/statement:stream?format=arrow", data=SQL).content
                return pa.ipc.open_stream(body).read_all().num_rows

            def native_json_pages():
                answer = session.post(f"{base}/v1/queries",
                                      json={"sql": SQL, "wait_timeout": "50s"}).json()
                assert answer["state"] == "SUCCEEDED", answer
                page, rows = answer["result"], 0
                while True:
                    rows += len(page["rows"])
                    if not page["next_page_token"]:
                        return rows
                    page = session.get(f"{base}/v1/queries/{answer['query_id']}/results",
                                       params={"page_token": page["next_page_token"]}).json()

            def trino_raw_pages():
                page, rows = session.post(f"{base}/v1/statement", data=SQL).json(), 0
                while "nextUri" in page:
                    page = session.get(page["nextUri"]).json()
                    rows += len(page.get("data", []))
                return rows

            def trino_client():
                conn = trino.dbapi.connect(host="127.0.0.1", port=port, user="admin",
                                           auth=BasicAuthentication("admin", PASSWORD),
                                           http_scheme="https", http_session=session)
                cursor = conn.cursor()
                cursor.execute(SQL)
                return len(cursor.fetchall())

            timed("HTTP stream, Arrow", arrow_stream)
            timed("native API, JSON pages", native_json_pages)
            timed("Trino protocol, raw JSON pages", trino_raw_pages)
            timed("Trino Python client (DB-API)", trino_client)
        finally:
            proc.send_signal(2)
            proc.wait(60)


if __name__ == "__main__":
    main()
