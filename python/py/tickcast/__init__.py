"""tickcast for Python: receive a tickcast group, and read ITCH captures or tickcast output
into NumPy.

    import tickcast
    for event in tickcast.Subscriber("239.192.10.1:31001", group_b="239.192.11.1:31001",
                                     retransmit="127.0.0.1:32001"):
        if "gap" in event:            # messages lost for good: {"gap": {"from": 5, "to": 9}}
            ...
        elif "end_of_session" in event:
            break                     # (iteration also ends by itself)
        else:                         # a message: the keys of `tickcast-tap --json`
            print(event["seq"], event["kind"], event.get("price"))

    records = tickcast.read("capture.pcap")      # NumPy structured array of tickcast.DTYPE
    frame = tickcast.to_pandas(records)          # one row per record, per-kind columns
"""

import json
from typing import Any, Dict, Iterator, Optional

import numpy as np

from . import _tickcast

__all__ = ["Subscriber", "read", "to_pandas", "DTYPE", "KINDS", "RECORD_SIZE"]

RECORD_SIZE = _tickcast.RECORD_SIZE

#: Kind codes (byte 1 of a record) and their names, as in docs/PROTOCOL.md.
KINDS = {
    1: "instrument_definition", 2: "order_add", 3: "order_replace", 4: "order_cancel",
    5: "order_delete", 6: "order_executed", 7: "order_executed_with_price", 8: "trade",
    9: "cross_trade", 10: "broken_trade", 11: "trading_status", 12: "system_event",
    13: "imbalance", 14: "top_of_book", 15: "feed_status",
}

#: The 64-byte schema v1 record: the common header, then the 40-byte body whose layout
#: depends on `kind` (`to_pandas` reads it per kind). Little-endian, no padding.
DTYPE = np.dtype(
    {
        "names": ["version", "kind", "aux", "instrument", "event_ts_ns", "recv_ts_ns", "body"],
        "formats": ["u1", "u1", ("u1", 2), "<u4", "<u8", "<u8", ("u1", 40)],
        "offsets": [0, 1, 2, 4, 8, 16, 24],
        "itemsize": 64,
    }
)


class Subscriber:
    """One tickcast group, received as the SDK does: feeds A and B (first copy wins), gaps
    recovered from the re-request server, strictly in sequence order.

    Iterating yields one dict per event: a message (the keys of ``tickcast-tap --json``:
    ``seq``, ``kind``, ``instrument``, ``symbol``, ``event_ts_ns``, ``recv_ts_ns`` and the
    kind's fields), ``{"gap": {"from": a, "to": b}}`` for messages lost for good, and
    ``{"end_of_session": {"next_seq": n}}``, after which iteration stops.

    ``session`` names the group's MoldUDP64 session (without it, the session is adopted once a
    stream is established on it). ``timeout`` (seconds) bounds each wait for the next event
    (TimeoutError).

    ``tcp="HOST:PORT"`` logs in to the distributor's SoupBinTCP server instead (no multicast
    needed): ``session`` picks the group (optional when the server has one), ``from_seq`` the
    first message (0: the next live one; older ones are replayed from the journal), and
    ``username``/``password`` the login. A broken connection is logged into again from the next
    sequence, so nothing is lost or repeated. Gap events never occur over TCP.
    """

    def __init__(
        self,
        group: Optional[str] = None,
        group_b: Optional[str] = None,
        interface: str = "127.0.0.1",
        retransmit: Optional[str] = None,
        tcp: Optional[str] = None,
        session: Optional[str] = None,
        timeout: Optional[float] = None,
        from_seq: int = 0,
        username: str = "",
        password: str = "",
    ) -> None:
        if tcp is not None:
            if group is not None or group_b is not None or retransmit is not None:
                raise ValueError("tcp= replaces group, group_b and retransmit; give one or the other")
            self._inner = _tickcast.Subscriber.tcp(tcp, session or "", from_seq, username, password)
        elif group is None:
            raise ValueError("give a multicast group or tcp=\"HOST:PORT\"")
        else:
            self._inner = _tickcast.Subscriber(group, group_b, interface, retransmit, session)
        self._timeout = timeout

    def __iter__(self) -> Iterator[Dict[str, Any]]:
        return self

    def __next__(self) -> Dict[str, Any]:
        line = self._inner.next_line(self._timeout)
        if line is None:
            raise StopIteration
        return json.loads(line)

    def stats(self) -> Dict[str, Any]:
        """Counters: received, delivered, duplicates, gaps, requests, kernel drops, latency."""
        return json.loads(self._inner.stats_json())


def read(path) -> np.ndarray:
    """Decodes a pcap/pcapng/BinaryFILE of ITCH 5.0 (normalized as the distributor does), or a
    capture of tickcast output (feeds A and B counted once), into a structured array of
    ``DTYPE``. The array is a zero-copy view of the decoded bytes."""
    data, _source = _tickcast.read_records(str(path))
    return np.frombuffer(data, dtype=DTYPE)


def _le(body: np.ndarray, offset: int, fmt: str) -> np.ndarray:
    size = np.dtype(fmt).itemsize
    return np.ascontiguousarray(body[:, offset - 24 : offset - 24 + size]).view(fmt).ravel()


def _chars(body: np.ndarray, offset: int, n: int = 1) -> np.ndarray:
    raw = np.ascontiguousarray(body[:, offset - 24 : offset - 24 + n]).view(f"S{n}").ravel()
    return np.char.rstrip(np.char.decode(raw, "ascii", "replace"), " \x00")


def to_pandas(records: np.ndarray):
    """One row per record: ``kind`` (name), ``instrument``, ``symbol`` (from the instrument
    definitions in the records), ``event_ts`` / ``recv_ts`` (UTC timestamps), and per-kind
    columns ``order_id``, ``side``, ``quantity``, ``price`` (float), ``match_number``
    (NaN / empty where a kind has no such field)."""
    import pandas as pd

    body = records["body"]
    kind = records["kind"].astype(int)
    n = len(records)
    order_id = np.full(n, np.nan)
    quantity = np.full(n, np.nan)
    price = np.full(n, np.nan)
    match = np.full(n, np.nan)
    side = np.full(n, "", dtype=object)
    layouts = {
        # kind: (order_id, quantity (offset, fmt), price, side, match)
        2: (24, (40, "<u4"), 32, 44, None),
        3: (32, (48, "<u4"), 40, 52, None),
        4: (24, (36, "<u4"), None, 40, None),
        5: (24, None, None, 32, None),
        6: (24, (48, "<u4"), 40, 52, 32),
        7: (24, (48, "<u4"), 40, 52, 32),
        8: (24, (48, "<u4"), 40, 52, 32),
        9: (None, (32, "<u8"), 40, None, 24),
        10: (None, None, None, None, 24),
    }
    for k, (oid, qty, prc, sd, mt) in layouts.items():
        sel = kind == k
        if not sel.any():
            continue
        b = body[sel]
        if oid is not None:
            order_id[sel] = _le(b, oid, "<u8")
        if qty is not None:
            quantity[sel] = _le(b, qty[0], qty[1])
        if prc is not None:
            price[sel] = _le(b, prc, "<i8") / 1e8
        if sd is not None:
            side[sel] = _chars(b, sd)
        if mt is not None:
            match[sel] = _le(b, mt, "<u8")
    symbols = {}
    defs = kind == 1
    if defs.any():
        for inst, sym in zip(records["instrument"][defs], _chars(body[defs], 24, 8)):
            symbols[int(inst)] = str(sym)
    instrument = records["instrument"].astype(np.int64)
    return pd.DataFrame(
        {
            "kind": [KINDS.get(int(k), str(k)) for k in kind],
            "instrument": instrument,
            "symbol": [symbols.get(int(i), "") for i in instrument],
            "event_ts": pd.to_datetime(records["event_ts_ns"].astype(np.int64), utc=True),
            "recv_ts": pd.to_datetime(records["recv_ts_ns"].astype(np.int64), utc=True),
            "order_id": order_id,
            "side": side,
            "quantity": quantity,
            "price": price,
            "match_number": match,
        }
    )
