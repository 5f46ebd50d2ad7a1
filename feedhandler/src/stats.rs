//! Counters of what a feed handler decoded, normalized and rejected.

use crate::itch::ItchError;
use crate::source::FileFormat;
use protocol::schema::Kind;
use serde_json::{json, Map, Value};

#[derive(Debug, Clone)]
pub struct DecodeStats {
    /// Source messages decoded.
    pub messages: u64,
    /// By ITCH type byte.
    pub by_source_type: [u64; 256],
    /// By normalized kind byte.
    pub by_kind: [u64; 16],
    /// Messages whose length disagrees with their type, and datagrams/records whose framing
    /// is broken.
    pub malformed: u64,
    pub unknown_type: u64,
    /// Records of length 0 (counted in `malformed` too).
    pub zero_length: u64,
    /// Upstream MoldUDP64 messages lost for good (sum of gap sizes), each range reported in a
    /// `feed_status` record.
    pub gaps: u64,
    /// `feed_status` records emitted.
    pub feed_status: u64,
    /// Upstream copies already seen (feed B's copy of what A brought, repeats).
    pub duplicates: u64,
    /// Upstream messages that arrived after a hole and waited for it (released in order).
    pub reordered: u64,
    /// Upstream messages that arrived by re-request.
    pub recovered: u64,
    /// Re-requests sent to the exchange.
    pub requests: u64,
    /// Upstream packets held back because their sequence jumped implausibly far ahead.
    pub implausible: u64,
    pub instruments: u64,
    /// Executions, cancels, deletes or replaces of an order the book never saw.
    pub unknown_order: u64,
    pub duplicate_order: u64,
    /// Datagrams read from the source.
    pub datagrams: u64,
    /// Datagrams that are not MoldUDP64 (too short) or are for another session.
    pub bad_datagrams: u64,
    pub heartbeats: u64,
    pub end_of_session: u64,
    /// Data packets with sequence 0 decoded without sequence tracking (sample captures).
    pub unsequenced: u64,
}

impl Default for DecodeStats {
    fn default() -> Self {
        DecodeStats {
            messages: 0,
            by_source_type: [0; 256],
            by_kind: [0; 16],
            malformed: 0,
            unknown_type: 0,
            zero_length: 0,
            gaps: 0,
            feed_status: 0,
            duplicates: 0,
            reordered: 0,
            recovered: 0,
            requests: 0,
            implausible: 0,
            instruments: 0,
            unknown_order: 0,
            duplicate_order: 0,
            datagrams: 0,
            bad_datagrams: 0,
            heartbeats: 0,
            end_of_session: 0,
            unsequenced: 0,
        }
    }
}

impl DecodeStats {
    /// Why decoded input does not look like what it claims; `None` when it does.
    pub fn verdict(&self, format: FileFormat) -> Option<String> {
        let stats = self;
        let what = if format.is_pcap() {
            "ITCH 5.0 over MoldUDP64"
        } else {
            "ITCH 5.0 in BinaryFILE framing"
        };
        let counts = format!(
            "decoded {} messages; {} malformed, {} unknown type, {} bad datagrams",
            stats.messages, stats.malformed, stats.unknown_type, stats.bad_datagrams
        );
        if stats.zero_length > 0 {
            return Some(format!(
                "not {what}: {} records have a zero length prefix ({counts})",
                stats.zero_length
            ));
        }
        if stats.malformed > 0 || stats.bad_datagrams > 0 {
            return Some(format!(
                "not {what}: framing or message lengths disagree ({counts})"
            ));
        }
        if stats.unknown_type * 10 > stats.messages + stats.unknown_type && stats.unknown_type > 0 {
            return Some(format!(
                "not {what}: most message types are unknown ({counts})"
            ));
        }
        if stats.messages == 0 && stats.heartbeats + stats.end_of_session == 0 {
            return Some(format!("not {what}: no ITCH messages found ({counts})"));
        }
        None
    }

    pub fn count_error(&mut self, e: &ItchError) {
        match e {
            ItchError::UnknownType(_) => self.unknown_type += 1,
            ItchError::Empty => {
                self.zero_length += 1;
                self.malformed += 1;
            }
            ItchError::BadLength { .. } => self.malformed += 1,
        }
    }

    pub fn normalized(&self) -> u64 {
        self.by_kind.iter().sum()
    }

    /// The `tickcast decode --stats` object.
    pub fn to_json(&self) -> Value {
        let mut by_type = Map::new();
        for (t, &n) in self.by_source_type.iter().enumerate() {
            if n > 0 {
                by_type.insert((t as u8 as char).to_string(), json!(n));
            }
        }
        let mut by_kind = Map::new();
        for k in Kind::ALL {
            let n = self.by_kind[k as usize];
            if n > 0 {
                by_kind.insert(k.name().to_string(), json!(n));
            }
        }
        json!({
            "messages": self.messages,
            "normalized": self.normalized(),
            "by_source_type": by_type,
            "by_kind": by_kind,
            "malformed": self.malformed,
            "unknown_type": self.unknown_type,
            "zero_length": self.zero_length,
            "gaps": self.gaps,
            "feed_status": self.feed_status,
            "duplicates": self.duplicates,
            "reordered": self.reordered,
            "recovered": self.recovered,
            "requests": self.requests,
            "implausible": self.implausible,
            "instruments": self.instruments,
            "unknown_order": self.unknown_order,
            "duplicate_order": self.duplicate_order,
            "datagrams": self.datagrams,
            "bad_datagrams": self.bad_datagrams,
            "heartbeats": self.heartbeats,
            "end_of_session": self.end_of_session,
            "unsequenced": self.unsequenced,
        })
    }
}
