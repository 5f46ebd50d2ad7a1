//! The generator's stream is book-consistent: every execution, cancel, replace and delete refers
//! to a live order, every ITCH type the generator writes decodes, and books never cross.

use feedhandler::generator::{Generator, GeneratorConfig, MAX_MESSAGE};
use feedhandler::{Normalizer, SessionClock};
use protocol::schema::Body;

#[test]
fn generated_feed_keeps_books_consistent() {
    let cfg = GeneratorConfig {
        instruments: 30,
        seed: 42,
        ..Default::default()
    };
    let mut g = Generator::new(cfg);
    let mut n = Normalizer::new(SessionClock::new(
        chrono::NaiveDate::from_ymd_opt(2024, 3, 11).unwrap(),
    ));
    let mut m = [0u8; MAX_MESSAGE];
    let mut tops = 0u64;
    for i in 0..300_000u32 {
        let len = g.next_message(&mut m);
        let mut touched = None;
        n.on_raw(&m[..len], 0, &mut |r| {
            if let Body::TopOfBook(t) = r.body {
                tops += 1;
                // Derived quotes are never crossed on consistent input.
                assert!(
                    t.bid_quantity == 0 || t.ask_quantity == 0 || t.bid_price < t.ask_price,
                    "crossed quote {t:?}"
                );
            }
            touched = Some(r.instrument);
        })
        .unwrap();
        if i % 10_000 == 0 {
            assert!(n.books().levels_match_orders());
        }
        if let Some(inst) = touched {
            assert!(!n.books().is_crossed(inst));
        }
    }
    let st = &n.stats;
    assert_eq!(
        (st.unknown_order, st.duplicate_order, st.malformed),
        (0, 0, 0)
    );
    assert_eq!(st.instruments, 30);
    for t in *b"SRHAFECXDUPQIBY" {
        assert!(
            st.by_source_type[t as usize] > 0,
            "no {:?} generated",
            t as char
        );
    }
    assert!(tops > 10_000);
    assert!(n.books().levels_match_orders());
}
