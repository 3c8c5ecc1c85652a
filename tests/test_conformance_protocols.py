"""The contract over TLS and HTTP/2: the conformance suite's rows a protocol can change
(from shared_fixtures/conformance/test_contract.py and test_edges.py, listed below) against
one pair per server family for each protocol that family speaks, through httpx (with its
HTTP/2, h2).

The hostile section stays HTTP/1.1 in cleartext (tests/test_conformance.py): it writes
raw HTTP/1.1 bytes, which is the server's HTTP/1.1 parser on trial whatever the load
speaks. Where a server answers differently over HTTP/2, docs/servers.md says so and a
test here holds it. The pairs are the fewest that cover every family (gunicorn, uvicorn,
hypercorn, daphne, granian) on each protocol, each family with another app, so that the
six apps are met too: the suite's time is bounded (this module's cost: docs/servers.md).
"""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from shared_fixtures.conformance.target import AppTarget

# The rows a protocol can change: every endpoint's answer, framing and headers, bodies in
# and out (chunked, refused, too large), HEAD, errors, and many requests at once (streams on
# HTTP/2). The app's own validation (its many bad-input cases) answers the same whatever
# carried the request: the cleartext suite covers it (tests/test_conformance.py).
from shared_fixtures.conformance.test_contract import (  # noqa: F401  (collected here)
    test_create_troupe,
    test_create_troupe_name_taken,
    test_db_returns_a_real_row,
    test_detail,
    test_fortunes_escapes_script_and_keeps_unicode,
    test_fortunes_markup_is_exact,
    test_framing_and_date,
    test_health,
    test_json,
    test_list_first_page,
    test_plaintext,
    test_queries_lengths,
    test_slow_db,
    test_slow_fanout,
    test_slow_http,
    test_updates_persist,
)
from shared_fixtures.conformance.test_edges import (  # noqa: F401  (collected here)
    test_head_is_get_without_a_body,
    test_no_redirect_follows_the_host_header,
    test_troupe_chunked_body,
    test_troupe_chunked_body_too_large_is_413,
    test_troupe_declared_too_large_is_413,
    test_troupe_too_large_refused_before_the_body_is_read,
    test_unknown_path_is_404_json,
    test_updates_as_techempower_counts_them,
    test_wrong_method_is_405_json,
)
from shared_fixtures.db import Database
from stackbench.servers import H1_TLS, H2, HTTP2, get_server

# One pair per server family: (app, server); each speaks every protocol below it can.
FAMILIES = (
    ("django_sync", "gunicorn-gthread"),
    ("gino_style", "uvicorn"),
    ("fastapi_sqla", "hypercorn"),
    ("django_async", "daphne"),
    ("tortoise", "granian"),
)
TARGETS = [
    (app, server, protocol)
    for protocol in (H1_TLS, H2)
    for app, server in FAMILIES
    if get_server(server).why_not(protocol) is None
]


@pytest.fixture(
    scope="module",
    params=TARGETS,
    ids=[f"{app}@{server}~{protocol}" for app, server, protocol in TARGETS],
)
def target(request: pytest.FixtureRequest, app_servers, db: Database) -> Iterator[AppTarget]:
    app_id, server_id, protocol = request.param
    served = app_servers.get(app_id, server_id, protocol=protocol)
    judged = AppTarget(
        served.base_url,
        db.url,
        name=request.node.name,
        log_path=served.process.log_path,
        cafile=served.cafile,
        http2=protocol in HTTP2,
    )
    # The suite judges the protocol it was asked to: httpx would fall back to HTTP/1.1.
    first = judged.get("/health")
    wanted = "HTTP/2" if protocol in HTTP2 else "HTTP/1.1"
    assert first.http_version == wanted, f"{server_id} answered {first.http_version} to {protocol}"
    yield judged
    judged.close()


def test_the_suite_refuses_to_pass_http1_for_http2(app_servers) -> None:
    """The fixture's own check, planted: a server that speaks HTTP/1.1 only (uvicorn over
    TLS), asked HTTP/2 by httpx, answers HTTP/1.1 (ALPN), which the fixture refuses."""
    served = app_servers.get("gino_style", "uvicorn", protocol=H1_TLS)
    judged = AppTarget(served.base_url, cafile=served.cafile, http2=True)
    try:
        assert judged.get("/health").http_version == "HTTP/1.1"
    finally:
        judged.close()


def test_connection_specific_headers_are_refused_on_http2(app_servers) -> None:
    """RFC 9113 8.2.2: a request carrying a connection-specific header field (Connection,
    Keep-Alive, Transfer-Encoding, Upgrade) is malformed. h2's server side (hypercorn,
    gunicorn, daphne) and hyper (granian) reset the stream; none answers it with a 5xx."""
    import h2.config
    import h2.connection
    import h2.events

    served = app_servers.get("gino_style", "granian", protocol=H2)
    judged = AppTarget(served.base_url, cafile=served.cafile, http2=True)
    try:
        config = h2.config.H2Configuration(validate_outbound_headers=False)
        conn = h2.connection.H2Connection(config)
        conn.initiate_connection()
        with judged.connect(alpn=("h2",)) as sock:
            conn.send_headers(
                1,
                [
                    (":method", "GET"),
                    (":scheme", "https"),
                    (":authority", judged.netloc),
                    (":path", "/json"),
                    ("connection", "keep-alive"),
                ],
                end_stream=True,
            )
            sock.sendall(conn.data_to_send())
            seen = None
            while seen is None:
                data = sock.recv(65536)
                if not data:
                    seen = "closed"
                    break
                for event in conn.receive_data(data):
                    if isinstance(event, h2.events.ResponseReceived):
                        seen = int(dict(event.headers)[b":status"])
                    elif isinstance(event, h2.events.StreamReset | h2.events.ConnectionTerminated):
                        seen = "reset"
                sock.sendall(conn.data_to_send())
    finally:
        judged.close()
    assert seen == "reset" or (isinstance(seen, int) and 400 <= seen < 500), seen


def test_httpx_is_what_the_suite_speaks_http2_with() -> None:
    """httpx's HTTP/2 needs h2 (httpx[http2]): without it the h2 targets would silently
    speak HTTP/1.1, which the fixture refuses; here, that it is installed."""
    with httpx.Client(http2=True) as client:
        assert client is not None
    import h2  # noqa: F401
