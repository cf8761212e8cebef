"""An Iceberg REST catalog server backed by pyiceberg's SqlCatalog, for interoperability tests.

It serves a SqlCatalog (SQLite or PostgreSQL, named by a SQLAlchemy URL) over the Apache Iceberg
REST catalog protocol (open-api/rest-catalog-open-api.yaml), so a REST client can be tested
against tables that pyiceberg writes. Reads return each table's metadata file text as stored,
not re-serialised, so the client sees exactly what the catalog holds. Writes (create namespace,
create table, commit) go through SqlCatalog, so pyiceberg's own RestCatalog can write too.

A table loaded with `X-Iceberg-Access-Delegation: vended-credentials` comes with the `vended`
properties (for example S3 keys) in its LoadTableResult's `config`, as a catalog that vends
credentials answers.

Script:  python rest_adapter.py --uri sqlite:////tmp/cat.db --catalog-name lake \
             --warehouse file:///tmp/wh [--prefix P] [--client-id ID --client-secret S]
             [--token T] [--port 0]
Library: server, base_url = serve(uri, catalog_name, warehouse, ..., catalog_properties={...},
                                  vended={...})
"""

import argparse
import base64
import gzip
import hmac
import json
import secrets
import signal
import sys
import threading
import types
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, quote, unquote, urlsplit

from pyiceberg.catalog.rest import CreateTableRequest
from pyiceberg.catalog.sql import SqlCatalog
from pyiceberg.exceptions import (CommitFailedException, NamespaceAlreadyExistsError,
                                  NamespaceNotEmptyError, NoSuchNamespaceError, NoSuchTableError,
                                  TableAlreadyExistsError)
from pyiceberg.io import load_file_io
from pyiceberg.partitioning import UNPARTITIONED_PARTITION_SPEC
from pyiceberg.table import CommitTableRequest
from pyiceberg.table.metadata import new_table_metadata
from pyiceberg.table.sorting import UNSORTED_SORT_ORDER

# Catalog exceptions as the REST spec's (status, ErrorModel type); anything else is a 500.
ERRORS = [
    (NoSuchNamespaceError, 404, "NoSuchNamespaceException"),
    (NoSuchTableError, 404, "NoSuchTableException"),
    (NamespaceAlreadyExistsError, 409, "AlreadyExistsException"),
    (TableAlreadyExistsError, 409, "AlreadyExistsException"),
    (NamespaceNotEmptyError, 409, "NamespaceNotEmptyException"),
    (CommitFailedException, 409, "CommitFailedException"),
    (ValueError, 400, "BadRequestException"),  # includes bad JSON and pydantic validation errors
]
NS_SEP = "\x1f"  # the spec's separator between the levels of a namespace in a path or query


class RestError(Exception):
    """An error answered with the spec's ErrorModel JSON."""

    def __init__(self, code, kind, message):
        super().__init__(message)
        self.code, self.kind = code, kind


def error_body(code, kind, message):
    return {"error": {"message": message, "type": kind, "code": code}}


def parse_namespace(text):
    """A namespace tuple from its (already unquoted) path segment or `parent` query value."""
    return tuple(text.split(NS_SEP))


class AdapterServer(ThreadingHTTPServer):
    """Holds the catalog and the auth settings shared by all request threads."""

    daemon_threads = True

    def __init__(self, port, catalog, prefix, client_id, client_secret, token, vended=None):
        super().__init__(("127.0.0.1", port), Handler)
        self.catalog, self.prefix = catalog, prefix
        self.vended = vended or {}
        self.client_id, self.client_secret = client_id, client_secret
        self.auth_required = bool(client_id or token)
        self.tokens = {token} if token else set()
        # SqlCatalog is not meant for concurrent use (SQLite locks, read-then-CAS in commits),
        # so catalog calls are serialised; they are quick, the data files are read by clients.
        self.lock = threading.Lock()


class Handler(BaseHTTPRequestHandler):
    """Routes one request to the catalog; every answer is JSON or empty."""

    protocol_version = "HTTP/1.1"  # keep-alive, as REST clients pool connections

    def do_GET(self): self.handle_request("GET")
    def do_HEAD(self): self.handle_request("HEAD")
    def do_POST(self): self.handle_request("POST")
    def do_DELETE(self): self.handle_request("DELETE")

    def log_request(self, code="-", size="-"):
        # Method, path (no query) and whether credentials came; never the token itself. A
        # malformed request is answered before its method, path and headers are known.
        headers = getattr(self, "headers", None)
        auth = "yes" if headers and headers.get("Authorization") else "no"
        path = urlsplit(getattr(self, "path", "")).path or "-"
        code = int(code) if isinstance(code, int) else code
        sys.stderr.write(f"rest_adapter: {self.command or '-'} {path} auth={auth} -> {code}\n")

    def read_body(self):
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            data = b""
            while size := int(self.rfile.readline().split(b";")[0].strip() or b"0", 16):
                data += self.rfile.read(size)
                self.rfile.readline()
            while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                pass  # skip trailers
            return data
        return self.rfile.read(int(self.headers.get("Content-Length") or 0))

    def send(self, code, body=None):
        """Sends `body` (a dict, or pre-encoded JSON bytes) with status `code`."""
        data = body if isinstance(body, bytes) else b"" if body is None else json.dumps(body).encode()
        self.send_response(code)
        if code != 204:
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if self.command != "HEAD" and code != 204:
            self.wfile.write(data)

    def handle_request(self, method):
        try:
            body = self.read_body()
            url = urlsplit(self.path)
            query = {k: v[-1] for k, v in parse_qs(url.query).items()}
            if url.path == "/v1/oauth/tokens" and method == "POST":
                return self.send(200, self.issue_token(body))
            self.check_auth()
            if url.path == "/v1/config" and method == "GET":
                prefix = self.server.prefix
                return self.send(200, {"defaults": {}, "overrides": {"prefix": prefix} if prefix else {}})
            rest = self.route_path(url.path)
            parts = [unquote(p) for p in rest.split("/")] if rest is not None else None
            with self.server.lock:
                asked = self.headers.get("X-Iceberg-Access-Delegation", "")
                vended = self.server.vended if "vended-credentials" in asked else {}
                code, result = Routes(self.server.catalog, query, body, vended).dispatch(method, parts)
            self.send(code, result)
        except RestError as e:
            self.send(e.code, error_body(e.code, e.kind, str(e)))
        except Exception as e:  # noqa: BLE001 - every failure becomes an ErrorModel answer
            code, kind = next(((c, k) for cls, c, k in ERRORS if isinstance(e, cls)),
                              (500, "InternalServerError"))
            if code == 500:
                sys.stderr.write(f"rest_adapter: {method} failed: {type(e).__name__}: {e}\n")
            self.send(code, error_body(code, kind, f"{type(e).__name__}: {e}"))

    def route_path(self, path):
        """The path after `/v1/` or `/v1/PREFIX/`, still quoted; None if it is not one."""
        prefix = self.server.prefix
        heads = [f"/v1/{prefix}/", f"/v1/{quote(prefix, safe='')}/"] if prefix else ["/v1/"]
        return next((path[len(h):] for h in heads if path.startswith(h)), None)

    def check_auth(self):
        if not self.server.auth_required:
            return
        scheme, _, value = self.headers.get("Authorization", "").partition(" ")
        if scheme.lower() != "bearer" or value.strip() not in self.server.tokens:
            raise RestError(401, "NotAuthorizedException", "missing or invalid bearer token")

    def issue_token(self, body):
        """OAuth2 client-credentials grant: a fresh random bearer token for valid credentials."""
        form = {k: v[-1] for k, v in parse_qs(body.decode()).items()}
        client_id, client_secret = form.get("client_id"), form.get("client_secret")
        scheme, _, value = self.headers.get("Authorization", "").partition(" ")
        if scheme.lower() == "basic":  # RFC 6749 lets clients send credentials this way instead
            client_id, _, client_secret = base64.b64decode(value).decode().partition(":")
        if form.get("grant_type") != "client_credentials":
            raise RestError(400, "BadRequestException", "only grant_type=client_credentials is supported")
        server = self.server
        ok = (server.client_id is not None and client_id is not None and client_secret is not None
              and hmac.compare_digest(client_id.encode(), server.client_id.encode())
              and hmac.compare_digest(client_secret.encode(), (server.client_secret or "").encode()))
        if not ok:
            raise RestError(401, "NotAuthorizedException", "invalid client credentials")
        token = secrets.token_urlsafe(32)
        server.tokens.add(token)
        return {"access_token": token, "token_type": "bearer", "expires_in": 3600,
                "issued_token_type": "urn:ietf:params:oauth:token-type:access_token"}


class Routes:
    """The catalog operations behind the prefixed paths; each returns (status, body)."""

    def __init__(self, catalog, query, body, vended=None):
        self.catalog, self.query, self.body = catalog, query, body
        self.vended = vended or {}

    def json(self):
        return json.loads(self.body or b"{}")

    def dispatch(self, method, parts):
        match (method, parts):
            case ("GET", ["namespaces"]):
                parent = parse_namespace(self.query["parent"]) if self.query.get("parent") else ()
                return 200, {"namespaces": [list(n) for n in self.catalog.list_namespaces(parent)]}
            case ("POST", ["tables", "rename"]):
                req = self.json()
                ident = lambda i: tuple(i["namespace"]) + (i["name"],)
                self.catalog.rename_table(ident(req["source"]), ident(req["destination"]))
                return 204, None
            case ("POST", ["namespaces"]):
                req = self.json()
                ns, props = tuple(req["namespace"]), req.get("properties") or {}
                self.catalog.create_namespace(ns, props)
                return 200, {"namespace": list(ns), "properties": props}
            case ("GET", ["namespaces", ns]):
                props = self.catalog.load_namespace_properties(parse_namespace(ns))
                return 200, {"namespace": list(parse_namespace(ns)), "properties": props}
            case ("HEAD", ["namespaces", ns]):
                return (204 if self.catalog.namespace_exists(parse_namespace(ns)) else 404), None
            case ("DELETE", ["namespaces", ns]):
                self.catalog.drop_namespace(parse_namespace(ns))
                return 204, None
            case ("GET", ["namespaces", ns, "tables"]):
                idents = self.catalog.list_tables(parse_namespace(ns))
                return 200, {"identifiers": [{"namespace": list(i[:-1]), "name": i[-1]} for i in idents]}
            case ("POST", ["namespaces", ns, "tables"]):
                return 200, self.create_table(parse_namespace(ns))
            case ("GET", ["namespaces", ns, "tables", name]):
                return 200, self.load_result(self.catalog.load_table(parse_namespace(ns) + (name,)))
            case ("HEAD", ["namespaces", ns, "tables", name]):
                return (204 if self.catalog.table_exists(parse_namespace(ns) + (name,)) else 404), None
            case ("POST", ["namespaces", ns, "tables", name]):
                return 200, self.commit(parse_namespace(ns), name)
            case ("DELETE", ["namespaces", ns, "tables", name]):
                ident = parse_namespace(ns) + (name,)
                purge = self.query.get("purgeRequested", "false").lower() == "true"
                (self.catalog.purge_table if purge else self.catalog.drop_table)(ident)
                return 204, None
        raise RestError(404, "NotFoundException", f"no such endpoint: {method} {'/'.join(parts or [])}")

    def load_result(self, table):
        return self.raw_result(table.metadata_location)

    def raw_result(self, location, config=True):
        """A LoadTableResult (or, without `config`, a CommitTableResponse) whose `metadata` is
        the metadata file's own JSON text."""
        io = load_file_io(self.catalog.properties, location)
        with io.new_input(location).open() as f:
            data = f.read()
        if data[:2] == b"\x1f\x8b":  # gzip-compressed metadata (*.gz.metadata.json)
            data = gzip.decompress(data)
        return (b'{"metadata-location": ' + json.dumps(location).encode()
                + b', "metadata": ' + data.strip()
                + (b', "config": ' + json.dumps(self.vended).encode() + b"}" if config else b"}"))

    def create_table(self, ns):
        body = self.json()
        # pyiceberg's model wants these keys present; the spec lets clients omit them.
        for key in ("location", "partition-spec", "write-order"):
            body.setdefault(key, None)
        req = CreateTableRequest.model_validate(body)
        spec = req.partition_spec or UNPARTITIONED_PARTITION_SPEC
        order = req.write_order or UNSORTED_SORT_ORDER
        if req.stage_create:
            # Staged: answer the would-be metadata, write nothing; the commit that follows
            # (with an assert-create requirement) creates the table.
            if not self.catalog.namespace_exists(ns):
                raise NoSuchNamespaceError(f"Namespace does not exist: {ns}")
            if self.catalog.table_exists(ns + (req.name,)):
                raise TableAlreadyExistsError(f"Table already exists: {ns + (req.name,)}")
            location = self.catalog._resolve_table_location(req.location, ".".join(ns), req.name)
            metadata = new_table_metadata(schema=req.table_schema, partition_spec=spec, sort_order=order,
                                          location=location, properties=req.properties)
            return (b'{"metadata": ' + metadata.model_dump_json().encode() + b', "config": {}}')
        table = self.catalog.create_table(ns + (req.name,), req.table_schema, location=req.location,
                                          partition_spec=spec, sort_order=order,
                                          properties=req.properties)
        return self.load_result(table)

    def commit(self, ns, name):
        """CommitTableRequest → SqlCatalog.commit_table (which checks the requirements)."""
        body = self.json()
        body.setdefault("identifier", {"namespace": list(ns), "name": name})  # optional in the spec
        req = CommitTableRequest.model_validate(body)
        ident = ns + (name,)
        try:
            table = self.catalog.load_table(ident)
        except NoSuchTableError:
            # Only a staged create may commit to a missing table; commit_table needs just name().
            if not any(r.type == "assert-create" for r in req.requirements):
                raise
            table = types.SimpleNamespace(name=lambda: ident)
        response = self.catalog.commit_table(table, req.requirements, req.updates)
        return self.raw_result(response.metadata_location, config=False)


def serve(uri, catalog_name, warehouse, prefix=None, client_id=None, client_secret=None,
          token=None, port=0, catalog_properties=None, vended=None):
    """Starts the adapter on 127.0.0.1:`port` (0 = any free port) in a daemon thread.
    `catalog_properties` go to the SqlCatalog (for example its S3 settings); `vended` is what
    a load that asks for vended credentials gets in its `config`.

    Returns (server, base_url); stop it with server.shutdown() and server.server_close().
    """
    server = make_server(uri, catalog_name, warehouse, prefix, client_id, client_secret, token, port,
                         catalog_properties, vended)
    threading.Thread(target=server.serve_forever, name="rest-adapter", daemon=True).start()
    return server, f"http://127.0.0.1:{server.server_address[1]}"


def make_server(uri, catalog_name, warehouse, prefix, client_id, client_secret, token, port,
                catalog_properties=None, vended=None):
    if bool(client_id) != bool(client_secret):
        raise ValueError("client id and client secret go together")
    catalog = SqlCatalog(catalog_name, uri=uri, warehouse=warehouse, **(catalog_properties or {}))
    return AdapterServer(port, catalog, prefix, client_id, client_secret, token, vended)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--uri", required=True, help="SQLAlchemy URL of the SqlCatalog database")
    parser.add_argument("--catalog-name", required=True)
    parser.add_argument("--warehouse", required=True, help="e.g. file:///path/to/warehouse")
    parser.add_argument("--prefix", help="path prefix announced in /v1/config overrides")
    parser.add_argument("--client-id")
    parser.add_argument("--client-secret")
    parser.add_argument("--token", help="a static bearer token to accept")
    parser.add_argument("--port", type=int, default=0)
    args = parser.parse_args()
    server = make_server(args.uri, args.catalog_name, args.warehouse, args.prefix,
                         args.client_id, args.client_secret, args.token, args.port)
    # SIGTERM unwinds serve_forever through SystemExit, so the socket is closed cleanly.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    print(f"listening on http://127.0.0.1:{server.server_address[1]}", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()


if __name__ == "__main__":
    main()
