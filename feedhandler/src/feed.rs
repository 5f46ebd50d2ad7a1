//! The feed handler's per-frame work: MoldUDP64 framing and upstream sequence, then decoding and
//! normalization of each ITCH message. Bad input is counted, logged at a limited rate, skipped.

use crate::clock::SessionClock;
use crate::normalize::Normalizer;
use crate::ratelog::RateLimited;
use crate::source::{Frame, Framing};
use crate::upstream::{Accept, Rerequester, SequenceTracker};
use crate::warn_limited;
use protocol::moldudp64::{split_block, Packet, PacketKind};
use protocol::schema::Repr;

#[derive(Default)]
struct Gates {
    malformed: RateLimited,
    unknown: RateLimited,
    bad_datagram: RateLimited,
    gap: RateLimited,
}

pub struct FeedHandler {
    pub normalizer: Normalizer,
    pub upstream: SequenceTracker,
    pub rerequest: Option<Rerequester>,
    /// Take the session date from the first frame's time (pcap capture time).
    date_from_frames: bool,
    /// Decode data packets with sequence 0 without sequence tracking. Published sample
    /// captures zero their MoldUDP64 headers; a live feed never sends 0, so live input rejects it.
    pub accept_unsequenced: bool,
    gates: Gates,
}

impl FeedHandler {
    pub fn new(clock: SessionClock, date_from_frames: bool) -> FeedHandler {
        FeedHandler {
            normalizer: Normalizer::new(clock),
            upstream: SequenceTracker::new(),
            rerequest: None,
            date_from_frames,
            accept_unsequenced: false,
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
        match frame.framing {
            Framing::MoldUdp64 => self.on_packet(frame.bytes, frame.recv_ts_ns, out),
            Framing::BinaryFile => self.on_records(frame.bytes, frame.recv_ts_ns, out),
        }
    }

    fn on_records(&mut self, mut bytes: &[u8], ts: u64, out: &mut impl FnMut(&Repr)) {
        while let Some((msg, rest)) = split_block(bytes) {
            bytes = rest;
            self.message(msg, ts, out);
        }
        if !bytes.is_empty() {
            self.normalizer.stats.malformed += 1;
        }
    }

    fn on_packet(&mut self, bytes: &[u8], ts: u64, out: &mut impl FnMut(&Repr)) {
        let Ok(p) = Packet::new_checked(bytes) else {
            self.normalizer.stats.bad_datagrams += 1;
            warn_limited!(
                self.gates.bad_datagram,
                len = bytes.len(),
                "datagram shorter than a MoldUDP64 header; skipped"
            );
            return;
        };
        if !self.upstream.session_ok(&p) {
            self.normalizer.stats.bad_datagrams += 1;
            warn_limited!(self.gates.bad_datagram, session = %p.session(), "datagram for another session; skipped");
            return;
        }
        if p.sequence() != 0 && !self.upstream.plausible(p.sequence(), p.next_sequence()) {
            self.normalizer.stats.bad_datagrams += 1;
            warn_limited!(
                self.gates.bad_datagram,
                seq = p.sequence(),
                "sequence implausibly far ahead; datagram skipped"
            );
            return;
        }
        match p.kind() {
            PacketKind::Heartbeat | PacketKind::EndOfSession => {
                if p.kind() == PacketKind::Heartbeat {
                    self.normalizer.stats.heartbeats += 1;
                } else {
                    self.normalizer.stats.end_of_session += 1;
                }
                if let Some((from, to)) = self.upstream.advance_to(p.sequence()) {
                    self.on_gap(from, to);
                }
            }
            PacketKind::Data => {
                if p.sequence() == 0 {
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
                            Ok(msg) => self.message(msg, ts, out),
                            Err(_) => {
                                self.normalizer.stats.malformed += 1;
                                break;
                            }
                        }
                    }
                    return;
                }
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
                let gap_before = self.upstream.gap_messages;
                for (seq, m) in (p.sequence()..).zip(p.messages()) {
                    let Ok(msg) = m else {
                        self.normalizer.stats.malformed += 1;
                        warn_limited!(
                            self.gates.malformed,
                            seq,
                            "message block overruns the datagram; rest of packet skipped"
                        );
                        break;
                    };
                    let verdict = self.upstream.accept(seq);
                    match verdict {
                        Accept::Duplicate => self.normalizer.stats.duplicates += 1,
                        Accept::Fill => {
                            self.normalizer.stats.reordered += 1;
                            self.message(msg, ts, out);
                        }
                        Accept::New => self.message(msg, ts, out),
                    }
                }
                if self.upstream.gap_messages > gap_before {
                    let (from, to) = *self.upstream.open_gaps().last().unwrap_or(&(0, 0));
                    self.on_gap(from, to);
                }
            }
        }
        self.normalizer.stats.gaps = self.upstream.gap_messages;
    }

    /// Takes in re-request answers (non-blocking) and sends due retries. Call from the duty
    /// cycle when a re-request server is configured.
    pub fn poll_rerequest(&mut self, out: &mut impl FnMut(&Repr)) {
        let Some(mut r) = self.rerequest.take() else {
            return;
        };
        while let Some(answer) = r.recv() {
            let now = crate::now_ns();
            self.normalizer.stats.datagrams += 1;
            self.on_packet(answer, now, out);
        }
        r.poll(&self.upstream);
        self.rerequest = Some(r);
    }

    fn on_gap(&mut self, from: u64, to: u64) {
        warn_limited!(self.gates.gap, from, to, "upstream gap");
        if let Some(r) = &mut self.rerequest {
            r.request(from, to);
            r.poll(&self.upstream);
        }
    }

    #[inline]
    fn message(&mut self, msg: &[u8], ts: u64, out: &mut impl FnMut(&Repr)) {
        if let Err(e) = self.normalizer.on_raw(msg, ts, out) {
            match e {
                crate::itch::ItchError::UnknownType(t) => {
                    warn_limited!(
                        self.gates.unknown,
                        ty = t,
                        "unknown ITCH message type; skipped"
                    )
                }
                _ => {
                    warn_limited!(self.gates.malformed, error = %e, "malformed ITCH message; skipped")
                }
            }
        }
    }
}
