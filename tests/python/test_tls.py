"""TLS on the Flight SQL port with real clients: pyarrow.flight and the ADBC driver trusting
the server's CA connect and query; a client that does not trust it is refused."""

import adbc_driver_flightsql
import adbc_driver_flightsql.dbapi
import pyarrow.flight as flight
import pytest

from conftest import PASSWORD, make_test_certs, osprey_local


@pytest.fixture(scope="module")
def tls_cluster(tmp_path_factory):
    certs = make_test_certs(tmp_path_factory.mktemp("certs"))
    data_dir = tmp_path_factory.mktemp("osprey-tls")
    with osprey_local("--executors", "1", "--data-dir", str(data_dir),
                      "--tls-cert", str(certs["cert"]), "--tls-key", str(certs["key"])) as uri:
        yield {"uri": uri, "ca": certs["ca"].read_bytes()}


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
