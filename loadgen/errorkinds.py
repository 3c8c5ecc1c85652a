"""The kinds of transport error a request can end in (dict keys of the reports' ``errors``;
report.schema.json lists them). A response with an unexpected status is not one of them:
it is counted as ``failed``, its status kept."""

from __future__ import annotations

CONNECT_REFUSED = "connect_refused"
CONNECT_TIMEOUT = "connect_timeout"  # the TCP connect and the TLS handshake, together
CONNECT_ERROR = "connect_error"
TLS_ERROR = "tls_error"  # the TLS handshake failed (certificate, name, version)
READ_TIMEOUT = "read_timeout"
RESET = "reset"  # the connection closed or reset before the response completed
BAD_RESPONSE = "bad_response"
ABORTED = "aborted"  # in flight at the hard deadline
# HTTP/2 (--h2)
H2_REFUSED = "h2_refused"  # the server did not speak HTTP/2: ALPN chose another, or no h2c
GOAWAY = "goaway"  # the server's GOAWAY left this stream unprocessed (above its last id)
STREAM_RESET = "stream_reset"  # the server reset the stream (RST_STREAM)
REFUSED_STREAM = "refused_stream"  # ... with REFUSED_STREAM: not processed
PROTOCOL_ERROR = "protocol_error"  # the server broke HTTP/2: the connection was closed

ALL = (
    CONNECT_REFUSED, CONNECT_TIMEOUT, CONNECT_ERROR, TLS_ERROR, READ_TIMEOUT, RESET,
    BAD_RESPONSE, ABORTED, H2_REFUSED, GOAWAY, STREAM_RESET, REFUSED_STREAM, PROTOCOL_ERROR,
)  # fmt: skip
