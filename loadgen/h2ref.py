"""The reference HTTP/2 engine (``--pure``, ``--no-h2wire``): python-hyper's sans-IO
``h2`` behind the interface of :mod:`loadgen.h2wire`.

It is the differential check of the lean engine: the same server, or the same server
bytes, must give the same events and the same verdicts through both (the tests compare
them). ``h2`` builds an object per frame and per event and validates every header block,
hence the lean engine for the measured runs. ``h2`` is imported by the first connection
made with this engine: an HTTP/1.1 run never pays for it (an optional dependency,
loadgen's h2 extra).
"""

from __future__ import annotations

import contextlib
from typing import Any

from . import h2wire
from .h2hpack import MemoEncoder
from .h2wire import (
    CONNECTION_TERMINATED,
    DATA_RECEIVED,
    ENABLE_PUSH,
    INITIAL_WINDOW_SIZE,
    MAX_CONCURRENT_STREAMS,
    RESPONSE_RECEIVED,
    SETTINGS_CHANGED,
    STREAM_ENDED,
    STREAM_RESET,
    TRAILERS_RECEIVED,
    WINDOW_UPDATED,
)

__all__ = ["Connection"]

_h2: dict[str, Any] = {}  # h2's names, once imported


def _load() -> dict[str, Any]:
    if _h2:
        return _h2
    from h2 import events
    from h2.config import H2Configuration
    from h2.connection import ConnectionState, H2Connection
    from h2.exceptions import ProtocolError
    from h2.settings import Settings

    class Client(H2Connection):
        """h2's client connection, but a GOAWAY received leaves it open: h2 closes its state
        machine on one (python-hyper/h2#1181), which would refuse the frames of the streams
        the server still finishes (RFC 9113 6.8), even later ones in the same read."""

        goaway = False  # a GOAWAY came in the last receive_data

        def _receive_goaway_frame(self, frame: Any) -> Any:
            done = super()._receive_goaway_frame(frame)
            self.state_machine.state = ConnectionState.CLIENT_OPEN
            self.goaway = True
            return done

    _h2.update(
        Client=Client,
        Settings=Settings,
        ProtocolError=ProtocolError,
        config=H2Configuration(
            client_side=True,
            header_encoding=None,  # bytes in, bytes out: nothing decoded per request
            validate_outbound_headers=False,  # built and checked once (build_h2_request)
            normalize_outbound_headers=False,
            normalize_inbound_headers=False,  # joins a request's cookie crumbs: not a response's
        ),  # the server's headers are still validated (validate_inbound_headers)
        kinds={
            events.DataReceived: DATA_RECEIVED,
            events.StreamEnded: STREAM_ENDED,
            events.ResponseReceived: RESPONSE_RECEIVED,
            events.TrailersReceived: TRAILERS_RECEIVED,
            events.StreamReset: STREAM_RESET,
            events.WindowUpdated: WINDOW_UPDATED,
            events.RemoteSettingsChanged: SETTINGS_CHANGED,
            events.ConnectionTerminated: CONNECTION_TERMINATED,
        },  # the rest (1xx, PING, SETTINGS ACK, priority...) are nothing H2Conn acts on
    )
    return _h2


class Connection:
    """h2's client connection with h2wire's interface and events."""

    def __init__(self, window: int) -> None:
        h2 = _load()
        self.ours = window  # our receive windows' size
        self.kinds = h2["kinds"]
        self.error = h2["ProtocolError"]
        self.h = h = h2["Client"](config=h2["config"])
        h.encoder = MemoEncoder()
        ours = {ENABLE_PUSH: 0, MAX_CONCURRENT_STREAMS: 0, INITIAL_WINDOW_SIZE: window}
        h.local_settings = h2["Settings"](client=True, initial_values=ours)
        self.goaway = False

    @property
    def max_outbound_frame_size(self) -> int:
        return int(self.h.max_outbound_frame_size)

    def start(self) -> None:
        self.h.initiate_connection()
        self.h.increment_flow_control_window(self.ours - 65535)  # the connection's window

    def data_to_send(self) -> bytes:
        return bytes(self.h.data_to_send())

    def send_headers(self, sid: int, headers: Any, end_stream: bool) -> None:
        self.h.send_headers(sid, headers, end_stream=end_stream)

    def send_data(self, sid: int, data: Any, end_stream: bool) -> None:
        self.h.send_data(sid, data, end_stream=end_stream)

    def window(self, sid: int) -> int:
        try:
            return int(self.h.local_flow_control_window(sid))
        except self.error:  # the stream is closed
            return 0

    def reset_stream(self, sid: int, code: int) -> None:
        with contextlib.suppress(self.error):  # the stream was closed already
            self.h.reset_stream(sid, code)

    def receive(self, data: bytes) -> list[tuple[int, int, Any]]:
        h = self.h
        try:
            evs = h.receive_data(data)
        except self.error as exc:  # h2 has queued its GOAWAY
            raise h2wire.ProtocolError(str(exc), int(getattr(exc, "error_code", 1))) from None
        if h.goaway:
            h.goaway = False
            self.goaway = True
        out: list[tuple[int, int, Any]] = []
        kinds = self.kinds
        for ev in evs:
            kind = kinds.get(ev.__class__)
            if kind == DATA_RECEIVED:
                h.acknowledge_received_data(ev.flow_controlled_length, ev.stream_id)
                if ev.data:
                    out.append((kind, ev.stream_id, ev.data))
            elif kind in (RESPONSE_RECEIVED, TRAILERS_RECEIVED):
                out.append((kind, ev.stream_id, ev.headers))
            elif kind in (STREAM_ENDED, WINDOW_UPDATED):
                out.append((kind, ev.stream_id or 0, None))
            elif kind == STREAM_RESET:
                out.append((kind, ev.stream_id, int(ev.error_code)))
            elif kind == SETTINGS_CHANGED:
                changed = {int(k): v.new_value for k, v in ev.changed_settings.items()}
                out.append((kind, 0, changed))
            elif kind == CONNECTION_TERMINATED:
                out.append((kind, ev.last_stream_id or 0, int(ev.error_code)))
        return out
