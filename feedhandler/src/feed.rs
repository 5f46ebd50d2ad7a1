//! The feed handler's per-frame work: MoldUDP64 framing, the upstream sequenced-stream receiver
//! (A/B arbitration, re-requests, strictly in-order release), then decoding and normalization of
//! each ITCH message. Upstream messages lost for good become a `feed_status` record. Bad input is
//! counted, logged at a limited rate, skipped.

use crate::clock::SessionClock;
use crate::normalize::Normalizer;
use crate::source::{Frame, Framing};
use crate::upstream::{self, Adapter, Sink, Upstream};
use net::arbiter::{Arbiter, ArbiterConfig};
use net::ratelog::RateLimited;
use net::warn_limited;
use protocol::moldudp64::{blocks, Packet, PacketKind};
use protocol::schema::{Body, FeedStatus, Repr};

#[derive(Default)]
struct Gates {
    malformed: RateLimited,
    unknown: RateLimited,
    bad_datagram: RateLimited,
    gap: RateLimited,
}

pub struct FeedHandler {
    pub normalizer: Normalizer,
    pub upstream: Upstream,
    /// Take the session date from the first frame's time (pcap capture time).
    date_from_frames: bool,
    /// Decode data packets with sequence 0 without sequence tracking. Published sample
    /// captures zero their MoldUDP64 headers; a live feed never sends 0, so live input rejects it.
    pub accept_unsequenced: bool,
    /// Time of the last frame: the clock of a recorded feed.
    last_ts: u64,
    gates: Gates,
}

/// Normalizes what the upstream receiver releases.
struct Normalize<'a, F: FnMut(&Repr)> {
    normalizer: &'a mut Normalizer,
    gates: &'a mut Gates,
    ts: u64,
    out: &'a mut F,
}

impl<F: FnMut(&Repr)> Sink for Normalize<'_, F> {
    #[inline]
    fn message(&mut self, _seq: u64, msg: &[u8]) {
        normalize(self.normalizer, self.gates, msg, self.ts, self.out);
    }

    fn lost(&mut self, from: u64, to: u64) {
        warn_limited!(
            self.gates.gap,
            from,
            to,
            "upstream messages lost; feed_status sent"
        );
        let st = &mut self.normalizer.stats;
        st.gaps += to - from + 1;
        st.feed_status += 1;
        st.by_kind[protocol::schema::Kind::FeedStatus as usize] += 1;
        (self.out)(&Repr {
            instrument: 0,
            event_ts_ns: self.ts,
            recv_ts_ns: self.ts,
            body: Body::FeedStatus(FeedStatus {
                status: FeedStatus::LOST,
                first: from,
                last: to,
            }),
        });
    }
}

impl FeedHandler {
    /// A feed handler for recorded input (files): upstream holes are given up quickly.
    pub fn new(clock: SessionClock, date_from_frames: bool) -> FeedHandler {
        Self::with_receiver(clock, date_from_frames, upstream::file_config())
    }

    /// A feed handler for a live exchange feed (A, optionally B, optionally a re-request
    /// server through `upstream.requester`).
    pub fn live(clock: SessionClock) -> FeedHandler {
        Self::with_receiver(clock, false, upstream::live_config())
    }

    pub fn with_receiver(
        clock: SessionClock,
        date_from_frames: bool,
        cfg: ArbiterConfig,
    ) -> FeedHandler {
        FeedHandler {
            normalizer: Normalizer::new(clock),
            upstream: Upstream::new(cfg),
            date_from_frames,
            accept_unsequenced: false,
            last_ts: 0,
            gates: Gates::default(),
        }
    }

    /// Processes one frame, passing each normalized message to `out`.
    pub fn on_frame(&mut self, frame: &Frame<'_>, out: &mut impl FnMut(&Repr)) {
        if self.date_from_frames && frame.recv_ts_ns > 0 {
            self.date_from_frames = false;
            let date = SessionClock::date_of_epoch_ns(frame.recv_ts_ns);
            self.normalizer.set_clock(SessionClock::new(date));
        }
        self.normalizer.stats.datagrams += 1;
        self.last_ts = self.last_ts.max(frame.recv_ts_ns);
        match frame.framing {
            Framing::MoldUdp64 => {
                self.on_packet(frame, out);
                // Recorded feeds have no other clock: the receiver's timers run on frame time.
                if self.upstream.arbiter.pending() {
                    self.tick(self.last_ts, out);
                }
            }
            Framing::BinaryFile => self.on_records(frame.bytes, frame.recv_ts_ns, out),
        }
    }

    /// Runs the upstream receiver's timers at `now_ns` (wall clock for a live feed): requests,
    /// retries, holes declared lost. Call from the duty cycle of a live feed.
    pub fn tick(&mut self, now_ns: u64, out: &mut impl FnMut(&Repr)) {
        self.run_receiver(now_ns, out, |arbiter, a| arbiter.tick(now_ns, a));
    }

    /// The input ended for good (end of a file): holes still open are reported lost and what
    /// waited behind them is normalized, in order.
    pub fn finish(&mut self, out: &mut impl FnMut(&Repr)) {
        self.run_receiver(self.last_ts, out, |arbiter, a| arbiter.flush(a));
    }

    /// Runs `f` on the upstream receiver with its outputs wired to normalization (at time `ts`)
    /// and to the exchange's re-request server.
    fn run_receiver<F: FnMut(&Repr)>(
        &mut self,
        ts: u64,
        out: &mut F,
        f: impl FnOnce(&mut Arbiter, &mut Adapter<'_, Normalize<'_, F>>),
    ) {
        let session = self.upstream_session();
        let Upstream {
            arbiter, requester, ..
        } = &mut self.upstream;
        let mut a = Adapter {
            sink: Normalize {
                normalizer: &mut self.normalizer,
                gates: &mut self.gates,
                ts,
                out,
            },
            requester: requester.as_mut(),
            session,
            ended: false,
        };
        f(arbiter, &mut a);
        self.sync_stats();
    }

    fn upstream_session(&self) -> Option<protocol::moldudp64::Session> {
        self.upstream.session()
    }

    fn sync_stats(&mut self) {
        let a = self.upstream.stats();
        let st = &mut self.normalizer.stats;
        st.duplicates = a.duplicates;
        st.reordered = a.buffered;
        st.recovered = a.recovered;
        st.requests = a.requests;
        st.implausible = a.implausible;
    }

    fn on_records(&mut self, bytes: &[u8], ts: u64, out: &mut impl FnMut(&Repr)) {
        let mut records = blocks(bytes);
        self.normalizer.touch_all(records.clone());
        for msg in &mut records {
            normalize(&mut self.normalizer, &mut self.gates, msg, ts, out);
        }
        if !records.rest().is_empty() {
            self.normalizer.stats.malformed += 1;
        }
    }

    fn on_packet(&mut self, frame: &Frame<'_>, out: &mut impl FnMut(&Repr)) {
        let (bytes, ts, feed) = (frame.bytes, frame.recv_ts_ns, frame.feed);
        let Ok(p) = Packet::new_checked(bytes) else {
            self.normalizer.stats.bad_datagrams += 1;
            warn_limited!(
                self.gates.bad_datagram,
                len = bytes.len(),
                "datagram shorter than a MoldUDP64 header; skipped"
            );
            return;
        };
        if !self.upstream.admit(ts, feed, frame.from, p.session()) {
            self.normalizer.stats.bad_datagrams += 1;
            warn_limited!(self.gates.bad_datagram, session = %p.session(), from = ?frame.from, "datagram of another session or sender; skipped");
            return;
        }
        match p.kind() {
            PacketKind::Heartbeat => self.normalizer.stats.heartbeats += 1,
            PacketKind::EndOfSession => self.normalizer.stats.end_of_session += 1,
            PacketKind::Data if p.sequence() == 0 => {
                if !self.accept_unsequenced {
                    self.normalizer.stats.bad_datagrams += 1;
                    warn_limited!(
                        self.gates.bad_datagram,
                        "data packet with sequence 0; skipped"
                    );
                    return;
                }
                self.normalizer.stats.unsequenced += 1;
                for m in p.messages() {
                    match m {
                        Ok(msg) => normalize(&mut self.normalizer, &mut self.gates, msg, ts, out),
                        Err(_) => {
                            self.normalizer.stats.malformed += 1;
                            break;
                        }
                    }
                }
                return;
            }
            PacketKind::Data => {
                if p.validate().is_err() {
                    // A count that overruns the datagram: nothing in it can be trusted, and
                    // taking part of it would mark sequences as seen that were not.
                    self.normalizer.stats.malformed += 1;
                    warn_limited!(
                        self.gates.malformed,
                        seq = p.sequence(),
                        "message blocks overrun the datagram; datagram skipped"
                    );
                    return;
                }
            }
        }
        self.normalizer
            .touch_all(p.messages().map_while(Result::ok));
        let implausible = self.upstream.arbiter.stats.implausible;
        self.run_receiver(ts, out, |arbiter, a| match p.kind() {
            PacketKind::Data => {
                arbiter.on_data(ts, feed, p.sequence(), p.messages().map(|m| m.ok()), a)
            }
            PacketKind::Heartbeat => arbiter.on_heartbeat(ts, p.sequence(), a),
            PacketKind::EndOfSession => arbiter.on_end_of_session(ts, p.sequence(), a),
        });
        self.upstream.after_input();
        if self.upstream.arbiter.stats.implausible > implausible {
            self.normalizer.stats.bad_datagrams += 1;
            warn_limited!(
                self.gates.bad_datagram,
                seq = p.sequence(),
                "sequence implausibly far ahead; datagram held back"
            );
        }
    }
}

#[inline]
fn normalize(
    normalizer: &mut Normalizer,
    gates: &mut Gates,
    msg: &[u8],
    ts: u64,
    out: &mut impl FnMut(&Repr),
) {
    if let Err(e) = normalizer.on_raw(msg, ts, out) {
        match e {
            crate::itch::ItchError::UnknownType(t) => {
                warn_limited!(gates.unknown, ty = t, "unknown ITCH message type; skipped")
            }
            _ => {
                warn_limited!(gates.malformed, error = %e, "malformed ITCH message; skipped")
            }
        }
    }
}
