//! Property tests: every kind round-trips, packets of random mixes round-trip, and no input of
//! arbitrary bytes can panic a decoder.

mod common;

use proptest::prelude::*;
use protocol::moldudp64::{Packet, PacketBuilder, Request, Session};
use protocol::schema::{Message, Repr, RECORD_SIZE};

proptest! {
    #[test]
    fn every_kind_roundtrips(m in common::repr()) {
        let mut buf = [0u8; RECORD_SIZE];
        m.emit(&mut buf).unwrap();
        prop_assert_eq!(Repr::parse(&buf).unwrap(), m);
        let view = Message::new_checked(&buf[..]).unwrap();
        prop_assert_eq!(view.kind(), m.kind());
        prop_assert_eq!(view.instrument(), m.instrument);
        prop_assert_eq!(view.event_ts_ns(), m.event_ts_ns);
        prop_assert_eq!(view.recv_ts_ns(), m.recv_ts_ns);
    }

    #[test]
    fn packets_of_random_mixes_roundtrip(
        msgs in proptest::collection::vec(common::repr(), 0..40),
        seq in 1u64..u64::MAX / 2,
        cap in 20usize..1473,
    ) {
        let session = Session::new("PROP").unwrap();
        let mut remaining = &msgs[..];
        let mut next = seq;
        let mut buf = vec![0u8; 1472];
        while !remaining.is_empty() {
            let mut b = PacketBuilder::new(&mut buf[..], cap, &session, next).unwrap();
            let mut n = 0;
            for m in remaining {
                if b.append_with(RECORD_SIZE, |dst| m.emit(dst).unwrap()).is_err() {
                    break;
                }
                n += 1;
            }
            if n == 0 {
                // The cap is below one record: nothing can ever fit, which the builder says.
                prop_assert!(cap < 20 + 2 + RECORD_SIZE);
                break;
            }
            prop_assert!(b.len() <= cap);
            let p = Packet::new_checked(b.as_bytes()).unwrap();
            prop_assert_eq!(p.session(), session);
            prop_assert_eq!(p.sequence(), next);
            prop_assert_eq!(p.count() as usize, n);
            for (got, want) in p.messages().zip(remaining) {
                prop_assert_eq!(Repr::parse(got.unwrap()).unwrap(), *want);
            }
            next += n as u64;
            remaining = &remaining[n..];
        }
    }

    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..2000)) {
        if let Ok(p) = Packet::new_checked(&bytes[..]) {
            let _ = (p.session(), p.sequence(), p.next_sequence(), p.kind(), p.validate());
            for m in p.messages().flatten() {
                if let Ok(r) = Repr::parse(m) {
                    let mut s = String::new();
                    protocol::json::write_message(&mut s, &r, "X", Some(1)).unwrap();
                }
            }
        }
        if let Ok(r) = Request::new_checked(&bytes[..]) {
            let _ = (r.session(), r.sequence(), r.count());
        }
        let _ = Repr::parse(&bytes);
    }

    #[test]
    fn arbitrary_records_never_panic(mut rec in any::<[u8; 64]>(), kind in 0u8..20) {
        rec[0] = 1;
        rec[1] = kind;
        if let Ok(r) = Repr::parse(&rec) {
            let mut again = [0u8; RECORD_SIZE];
            r.emit(&mut again).unwrap();
            prop_assert_eq!(Repr::parse(&again).unwrap(), r);
        }
    }
}
