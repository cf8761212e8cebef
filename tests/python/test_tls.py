"""TLS on the Flight SQL port with real clients: pyarrow.flight and the ADBC driver trusting
the server's CA connect and query; a client that does not trust it is refused."""

import base64
import http.client
import json
import ssl
import urllib.error
import urllib.request

import adbc_driver_flightsql
import adbc_driver_flightsql.dbapi
import pyarrow.flight as flight
import pytest

from conftest import PASSWORD, make_test_certs, osprey_local_servers


@pytest.fixture(scope="module")
def tls_cluster(tmp_path_factory):
    certs = make_test_certs(tmp_path_factory.mktemp("certs"))
    data_dir = tmp_path_factory.mktemp("osprey-tls")
    with osprey_local_servers("--executors", "1", "--data-dir", str(data_dir),
                              "--tls-cert", str(certs["cert"]),
                              "--tls-key", str(certs["key"])) as (uri, http):
        yield {"uri": uri, "http": http, "ca": certs["ca"].read_bytes()}


def test_pyarrow_over_tls(tls_cluster):
    assert tls_cluster["uri"].startswith("grpc+tls://")
    client = flight.FlightClient(tls_cluster["uri"], tls_root_certs=tls_cluster["ca"])
    header = client.authenticate_basic_token("admin", PASSWORD)
    options = flight.FlightCallOptions(headers=[header])
    # ListActions needs no SQL: a round trip over the encrypted channel, authenticated.
    actions = {action.type for action in client.list_actions(options)}
    assert "CancelFlightInfo" in actions


def test_adbc_over_tls(tls_cluster):
    with adbc_driver_flightsql.dbapi.connect(
        tls_cluster["uri"],
        db_kwargs={
            "username": "admin",
            "password": PASSWORD,
            adbc_driver_flightsql.DatabaseOptions.TLS_ROOT_CERTS.value:
                tls_cluster["ca"].decode(),
        },
        autocommit=True,
    ) as conn, conn.cursor() as cur:
        cur.execute("SELECT 'encrypted' AS word, 6 * 7 AS answer")
        assert cur.fetchall() == [("encrypted", 42)]


def test_untrusting_clients_are_refused(tls_cluster):
    client = flight.FlightClient(tls_cluster["uri"])  # the system's roots only
    with pytest.raises(flight.FlightError):
        client.authenticate_basic_token("admin", PASSWORD)
    plaintext = flight.FlightClient(tls_cluster["uri"].replace("grpc+tls://", "grpc://"))
    with pytest.raises(flight.FlightError):
        plaintext.authenticate_basic_token("admin", PASSWORD)


def test_the_http_port_serves_https_with_the_same_certificate(tls_cluster):
    base = tls_cluster["http"]
    assert base.startswith("https://")
    trusting = ssl.create_default_context(cadata=tls_cluster["ca"].decode())
    token = base64.b64encode(f"admin:{PASSWORD}".encode()).decode()
    request = urllib.request.Request(f"{base}/v1/whoami",
                                     headers={"Authorization": f"Basic {token}"})
    with urllib.request.urlopen(request, context=trusting, timeout=30) as response:
        assert json.loads(response.read()) == {"user": "admin", "admin": True}
    # A client that does not trust the CA, and one speaking plain HTTP, get nowhere.
    with pytest.raises(urllib.error.URLError):
        urllib.request.urlopen(f"{base}/healthz", context=ssl.create_default_context(),
                               timeout=30)
    # (rustls answers the stray bytes with a TLS alert, which is no HTTP status line)
    with pytest.raises((urllib.error.URLError, http.client.HTTPException, ConnectionError)):
        urllib.request.urlopen(base.replace("https://", "http://") + "/healthz", timeout=30)
    # The server is still there for the trusting client.
    with urllib.request.urlopen(f"{base}/healthz", context=trusting, timeout=30) as response:
        assert json.loads(response.read()) == {"status": "alive"}
