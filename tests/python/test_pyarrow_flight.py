"""pyarrow.flight, speaking Flight SQL by hand: Basic-token login, tickets bound to their user
and expiring, and the query's figures in the last message's app metadata."""

import json
import time

import pyarrow as pa
import pyarrow.flight as flight
import pytest

from conftest import PASSWORD, osprey_local

BOB_PASSWORD = "bob-password-for-tests"
# pyarrow raises gRPC NOT_FOUND as ArrowKeyError.
NOT_FOUND = (flight.FlightError, pa.ArrowKeyError)


def _field(tag, payload: bytes) -> bytes:
    length = len(payload)
    varint = b""
    while True:
        byte = length & 0x7F
        length >>= 7
        varint += bytes([byte | (0x80 if length else 0)])
        if not length:
            break
    return bytes([(tag << 3) | 2]) + varint + payload


def statement_query(sql: str) -> flight.FlightDescriptor:
    """A CommandStatementQuery packed in an Any, encoded from FlightSql.proto by hand."""
    command = _field(1, sql.encode())
    url = b"type.googleapis.com/arrow.flight.protocol.sql.CommandStatementQuery"
    return flight.FlightDescriptor.for_command(_field(1, url) + _field(2, command))


@pytest.fixture(scope="module")
def users_cluster(tmp_path_factory):
    """`osprey local` with a second user and 2-second tickets."""
    data_dir = tmp_path_factory.mktemp("osprey-users")
    config = data_dir / "osprey.toml"
    config.write_text(
        "[coordinator]\nticket_ttl_secs = 2\ntpch_scale_factor = 0.01\n\n"
        f'[[users]]\nname = "bob"\npassword = "{BOB_PASSWORD}"\n'
    )
    with osprey_local("--config", str(config), "--executors", "1",
                      "--data-dir", str(data_dir / "data")) as uri:
        yield uri


def login(uri, user, password):
    client = flight.FlightClient(uri)
    header = client.authenticate_basic_token(user, password)
    return client, flight.FlightCallOptions(headers=[header])


def test_basic_token_login_and_figures_in_app_metadata(users_cluster):
    client, options = login(users_cluster, "admin", PASSWORD)
    info = client.get_flight_info(
        statement_query("SELECT r_name FROM tpch.region ORDER BY r_name"), options
    )
    assert json.loads(info.app_metadata)["query_id"]
    reader = client.do_get(info.endpoints[0].ticket, options)
    names, last_metadata = [], None
    while True:
        try:
            chunk = reader.read_chunk()
        except StopIteration:
            break
        if chunk.data is not None:
            names += chunk.data.column(0).to_pylist()
        if chunk.app_metadata is not None:
            last_metadata = json.loads(chunk.app_metadata.to_pybytes())
    assert names == ["AFRICA", "AMERICA", "ASIA", "EUROPE", "MIDDLE EAST"]
    assert last_metadata["rows"] == 5
    assert last_metadata["bytes_scanned"] > 0


def test_wrong_password_is_refused(users_cluster):
    client = flight.FlightClient(users_cluster)
    with pytest.raises(flight.FlightUnauthenticatedError):
        client.authenticate_basic_token("admin", "wrong")
    with pytest.raises(flight.FlightUnauthenticatedError):
        client.authenticate_basic_token("nobody", "wrong")


def test_tickets_belong_to_their_user_and_expire(users_cluster):
    admin, admin_options = login(users_cluster, "admin", PASSWORD)
    bob, bob_options = login(users_cluster, "bob", BOB_PASSWORD)
    info = admin.get_flight_info(statement_query("SELECT 42 AS answer"), admin_options)
    ticket = info.endpoints[0].ticket
    # Bob cannot redeem the admin's ticket, and trying does not spend it.
    with pytest.raises(NOT_FOUND, match="unknown, expired or already used ticket"):
        bob.do_get(ticket, bob_options).read_all()
    assert admin.do_get(ticket, admin_options).read_all().column(0).to_pylist() == [42]
    # Used once: gone.
    with pytest.raises(NOT_FOUND, match="unknown, expired or already used ticket"):
        admin.do_get(ticket, admin_options).read_all()
    # Expired after ticket_ttl_secs.
    info = admin.get_flight_info(statement_query("SELECT 1"), admin_options)
    time.sleep(3)
    with pytest.raises(NOT_FOUND, match="unknown, expired or already used ticket"):
        admin.do_get(info.endpoints[0].ticket, admin_options).read_all()
    # No token, no service.
    with pytest.raises(flight.FlightUnauthenticatedError):
        flight.FlightClient(users_cluster).get_flight_info(statement_query("SELECT 1"))


def test_cancel_flight_info_stops_a_streaming_query(users_cluster):
    """CancelFlightInfo (its protobuf encoded by hand: pyarrow has no helper) from a second
    connection ends the first connection's stream with CANCELLED."""
    import threading

    client, options = login(users_cluster, "admin", PASSWORD)
    endless = ("SELECT count(*) FROM tpch.lineitem a, tpch.lineitem b, tpch.lineitem c "
               "WHERE a.l_quantity < b.l_quantity")
    info = client.get_flight_info(statement_query(endless), options)
    outcome = {}

    def fetch():
        try:
            client.do_get(info.endpoints[0].ticket, options).read_all()
            outcome["result"] = "finished"
        except flight.FlightError as err:
            outcome["result"] = err

    reader = threading.Thread(target=fetch)
    reader.start()
    time.sleep(1.5)
    canceller, cancel_options = login(users_cluster, "admin", PASSWORD)
    request = _field(1, info.serialize())  # CancelFlightInfoRequest { info = 1 }
    results = list(canceller.do_action(flight.Action("CancelFlightInfo", request),
                                       cancel_options))
    assert results[0].body.to_pybytes() == b"\x08\x01"  # CancelFlightInfoResult: CANCELLED
    reader.join(30)
    assert not reader.is_alive(), "the stream did not end after the cancel"
    assert isinstance(outcome["result"], flight.FlightCancelledError), outcome
    # The connection serves the next query.
    small = client.get_flight_info(statement_query("SELECT 1 AS one"), options)
    assert client.do_get(small.endpoints[0].ticket, options).read_all().num_rows == 1
