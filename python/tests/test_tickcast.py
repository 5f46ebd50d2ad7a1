"""The tickcast Python package against real captures and a live `tickcast run`.

Run through `cargo test -p tickcast-tests --test python_package` (which installs the package
and points TICKCAST_BIN at the built `tickcast`), or directly after `pip install ./python`.
"""

import json
import os
import socket
import struct
import subprocess
import tempfile
import time
from pathlib import Path

import numpy as np
import pytest

import tickcast

ROOT = Path(__file__).resolve().parents[2]
DATA = Path(os.environ.get("TICKCAST_DATA", ROOT.parent / "shared" / "data"))
BIN = Path(os.environ.get("TICKCAST_BIN", ROOT / "target" / "debug" / "tickcast"))
SNIPPET = DATA / "itch50" / "nasdaq-20191230-0930-snippet.itch50"


def decode_stats(path):
    out = subprocess.run([str(BIN), "decode", str(path), "--stats"], capture_output=True, text=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_read_itch_into_numpy_matches_decode():
    records = tickcast.read(SNIPPET)
    assert records.dtype == tickcast.DTYPE and records.dtype.itemsize == 64
    assert not records.flags.owndata, "a view of the decoded bytes, not a copy"
    stats = decode_stats(SNIPPET)
    assert len(records) == stats["normalized"]
    assert set(np.unique(records["kind"])) <= set(tickcast.KINDS)
    assert (records["version"] == 1).all()
    # Times are 2019-12-30 09:30 New York, in ns since the epoch.
    assert ((records["event_ts_ns"] >= 1_577_716_200_000_000_000) & (records["event_ts_ns"] < 1_577_716_260_000_000_000)).all()


def test_read_a_real_nasdaq_capture():
    pcap = DATA / "pcap" / "nasdaq" / "Nasdaq.Equities.TotalView.Itch.v5.0" / "Multiple.Packets.pcap"
    records = tickcast.read(pcap)
    assert len(records) == decode_stats(pcap)["normalized"] > 0


def test_to_pandas_has_per_kind_columns():
    df = tickcast.to_pandas(tickcast.read(SNIPPET))
    for col in ["kind", "instrument", "symbol", "event_ts", "recv_ts", "order_id", "side", "quantity", "price"]:
        assert col in df.columns
    adds = df[df.kind == "order_add"]
    assert len(adds) > 0 and (adds.price > 0).all() and adds.side.isin(["B", "S"]).all()
    assert (adds.symbol != "").any()


def test_read_a_capture_of_tickcast_output():
    # The golden packets (one record of every kind), as a capture of a group.
    golden = (ROOT / "protocol" / "tests" / "golden" / "packets.txt").read_text().split("\n")
    datagrams = [bytes.fromhex(l.split()[1]) for l in golden if l.strip()]
    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / "out.pcap"
        with open(path, "wb") as f:
            f.write(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 101))
            for i, p in enumerate(datagrams):
                udp = struct.pack("!HHHH", 5000, 31001, 8 + len(p), 0) + p
                ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(udp), 0, 0, 64, 17, 0, bytes([127, 0, 0, 1]), bytes([239, 0, 0, 1]))
                frame = ip + udp
                f.write(struct.pack("<IIII", 1_700_000_000 + i, 0, len(frame), len(frame)))
                f.write(frame)
        records = tickcast.read(path)
    assert sorted(records["kind"].tolist()) == sorted(tickcast.KINDS)


def free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def free_tcp_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def run_config(d, group, rtx, session, extra=""):
    """A one-group `tickcast run` config: 3 000 generated messages at 10 000/s."""
    return f"""[feed]
source = "generator"
rate = 10000
messages = 3000
instruments = 10

[[shard]]
core = 0
groups = ["g"]

[[group]]
name = "g"
session = "{session}"
feed_a = "{group}"
interface = "127.0.0.1"
multicast_loop = true
retransmit = "127.0.0.1:{rtx}"

[journal]
dir = "{d}/j"
""" + extra


def check_whole_session(events, out, err):
    """Asserts the events are every message of the run (per its summary line), in order, then
    its end of session; returns the summary, the last sequence and the messages."""
    summary = json.loads(out.strip().splitlines()[-1])
    last = summary["groups"][0]["last_seq"]
    messages = [e for e in events if "seq" in e]
    assert [m["seq"] for m in messages] == list(range(1, last + 1)), err
    assert events[-1] == {"end_of_session": {"next_seq": last + 1}}
    return summary, last, messages


def test_subscriber_receives_a_live_distributor_in_order():
    port, rtx = free_port(), free_port()
    group = f"239.203.{port % 250}.{(port // 250) % 250}:{port}"
    with tempfile.TemporaryDirectory() as d:
        cfg = Path(d) / "t.toml"
        cfg.write_text(run_config(d, group, rtx, "PYTEST"))
        sub = tickcast.Subscriber(group, retransmit=f"127.0.0.1:{rtx}", session="PYTEST", timeout=20)
        run = subprocess.Popen([str(BIN), "run", "--quiet", "--config", str(cfg)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            events = list(sub)
        finally:
            out, err = run.communicate(timeout=30)
    summary, last, messages = check_whole_session(events, out, err)
    assert not [e for e in events if "gap" in e]
    assert {"kind", "instrument", "symbol", "event_ts_ns", "recv_ts_ns"} <= set(messages[0])
    assert sub.stats()["delivered"] == last


def test_subscriber_over_tcp_replays_from_the_journal_then_live():
    port, rtx, tcp = free_port(), free_port(), free_tcp_port()
    group = f"239.204.{port % 250}.{(port // 250) % 250}:{port}"
    with tempfile.TemporaryDirectory() as d:
        cfg = Path(d) / "t.toml"
        cfg.write_text(run_config(d, group, rtx, "PYTCP", f'\n[tcp]\nlisten = "127.0.0.1:{tcp}"\n'))
        # --linger: the server stays up after the feed's 0.3 s, however late the login comes.
        run = subprocess.Popen([str(BIN), "run", "--quiet", "--config", str(cfg), "--linger", "3"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            time.sleep(0.1)  # some messages are published before the login: replayed
            sub = None
            for _ in range(100):
                try:
                    sub = tickcast.Subscriber(tcp=f"127.0.0.1:{tcp}", session="PYTCP", from_seq=1, timeout=20)
                    break
                except OSError:
                    time.sleep(0.05)
            assert sub is not None, "could not log in"
            events = list(sub)
        finally:
            out, err = run.communicate(timeout=30)
    summary, last, messages = check_whole_session(events, out, err)
    stats = sub.stats()
    assert stats["transport"] == "tcp" and stats["delivered"] == last
    assert summary["tcp"]["logins"] == 1


def test_bad_arguments_are_python_errors():
    with pytest.raises(ValueError):
        tickcast.Subscriber("not-an-address")
    with pytest.raises(ValueError):
        tickcast.Subscriber("239.1.1.1:5000", tcp="127.0.0.1:1")
    with pytest.raises(ValueError):
        tickcast.Subscriber()
    with pytest.raises(OSError):
        tickcast.Subscriber(tcp=f"127.0.0.1:{free_tcp_port()}", session="NOPE")
    with pytest.raises(OSError):
        tickcast.read("/nonexistent/file.pcap")
