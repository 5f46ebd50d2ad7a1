//! Strategies and samples shared by the protocol tests.
#![allow(dead_code)]

use proptest::prelude::*;
use protocol::schema::*;

fn b() -> impl Strategy<Value = u8> {
    any::<u8>()
}

fn price() -> impl Strategy<Value = Price> {
    any::<i64>().prop_map(Price)
}

pub fn body() -> impl Strategy<Value = Body> {
    let def = (
        any::<[u8; 8]>(),
        any::<u32>(),
        any::<u32>(),
        any::<[u8; 12]>(),
        any::<[u8; 2]>(),
    )
        .prop_map(|(s, lot, lev, c, st)| {
            Body::InstrumentDefinition(InstrumentDefinition {
                symbol: Symbol(s),
                round_lot_size: lot,
                etp_leverage_factor: lev,
                market_category: c[0],
                financial_status: c[1],
                round_lots_only: c[2],
                issue_classification: c[3],
                issue_sub_type: st,
                authenticity: c[4],
                short_sale_threshold: c[5],
                ipo_flag: c[6],
                luld_tier: c[7],
                etp_flag: c[8],
                inverse: c[9],
                source_type: c[10],
            })
        });
    let add = (any::<u64>(), price(), any::<u32>(), b(), any::<[u8; 4]>()).prop_map(
        |(order_id, price, quantity, side, attribution)| {
            Body::OrderAdd(OrderAdd {
                order_id,
                price,
                quantity,
                side,
                attribution,
            })
        },
    );
    let replace = (any::<u64>(), any::<u64>(), price(), any::<u32>(), b()).prop_map(
        |(orig_order_id, new_order_id, price, quantity, side)| {
            Body::OrderReplace(OrderReplace {
                orig_order_id,
                new_order_id,
                price,
                quantity,
                side,
            })
        },
    );
    let cancel = (any::<u64>(), any::<u32>(), any::<u32>(), b()).prop_map(|(o, c, r, s)| {
        Body::OrderCancel(OrderCancel {
            order_id: o,
            cancelled_quantity: c,
            remaining_quantity: r,
            side: s,
        })
    });
    let delete = (any::<u64>(), b())
        .prop_map(|(order_id, side)| Body::OrderDelete(OrderDelete { order_id, side }));
    let exec = (
        any::<u64>(),
        any::<u64>(),
        price(),
        any::<u32>(),
        b(),
        b(),
        any::<bool>(),
    )
        .prop_map(
            |(order_id, match_number, price, quantity, side, printable, with_price)| {
                let e = Execution {
                    order_id,
                    match_number,
                    price,
                    quantity,
                    side,
                    printable,
                };
                if with_price {
                    Body::OrderExecutedWithPrice(e)
                } else {
                    Body::OrderExecuted(e)
                }
            },
        );
    let trade = (any::<u64>(), any::<u64>(), price(), any::<u32>(), b()).prop_map(
        |(order_id, match_number, price, quantity, side)| {
            Body::Trade(Trade {
                order_id,
                match_number,
                price,
                quantity,
                side,
            })
        },
    );
    let cross = (any::<u64>(), any::<u64>(), price(), b()).prop_map(|(m, q, p, t)| {
        Body::CrossTrade(CrossTrade {
            match_number: m,
            quantity: q,
            price: p,
            cross_type: t,
        })
    });
    let broken = any::<u64>().prop_map(|m| Body::BrokenTrade(BrokenTrade { match_number: m }));
    let status = (b(), b(), any::<[u8; 4]>(), b()).prop_map(|(t, s, r, m)| {
        Body::TradingStatus(TradingStatus {
            status_type: t,
            state: s,
            reason: r,
            market_code: m,
        })
    });
    let sys = (b(), b(), price(), price(), price()).prop_map(|(s, c, l1, l2, l3)| {
        Body::SystemEvent(SystemEvent {
            source_type: s,
            event_code: c,
            level1: l1,
            level2: l2,
            level3: l3,
        })
    });
    let imb = (
        any::<u64>(),
        any::<u64>(),
        b(),
        b(),
        price(),
        price(),
        price(),
    )
        .prop_map(|(p, i, d, c, f, n, r)| {
            Body::Imbalance(Imbalance {
                paired_shares: p,
                imbalance_shares: i,
                direction: d,
                cross_type: c,
                far_price: f,
                near_price: n,
                reference_price: r,
            })
        });
    let tob = (price(), any::<u64>(), price(), any::<u64>()).prop_map(|(bp, bq, ap, aq)| {
        Body::TopOfBook(TopOfBook {
            bid_price: bp,
            bid_quantity: bq,
            ask_price: ap,
            ask_quantity: aq,
        })
    });
    let feed_status = (any::<u8>(), any::<u64>(), any::<u64>()).prop_map(|(s, a, b)| {
        Body::FeedStatus(FeedStatus {
            status: s,
            first: a,
            last: b,
        })
    });
    prop_oneof![
        def,
        add,
        replace,
        cancel,
        delete,
        exec,
        trade,
        cross,
        broken,
        status,
        sys,
        imb,
        tob,
        feed_status
    ]
}

pub fn repr() -> impl Strategy<Value = Repr> {
    (any::<u32>(), any::<u64>(), any::<u64>(), body()).prop_map(|(i, e, r, body)| Repr {
        instrument: i,
        event_ts_ns: e,
        recv_ts_ns: r,
        body,
    })
}

/// One deterministic, realistic message of each kind (2023-08-22 09:30 EDT, instrument 5528).
pub fn samples() -> Vec<Repr> {
    let ts = 1_692_711_000_000_000_000u64;
    let p = Price::from_p4;
    let bodies = [
        Body::InstrumentDefinition(InstrumentDefinition {
            symbol: Symbol::new("IVOO"),
            round_lot_size: 100,
            etp_leverage_factor: 0,
            market_category: b'P',
            financial_status: b'N',
            round_lots_only: b'N',
            issue_classification: b'Q',
            issue_sub_type: *b"E ",
            authenticity: b'P',
            short_sale_threshold: b'N',
            ipo_flag: b' ',
            luld_tier: b'1',
            etp_flag: b'Y',
            inverse: b'N',
            source_type: b'R',
        }),
        Body::OrderAdd(OrderAdd {
            order_id: 23508286,
            price: p(873900),
            quantity: 1600,
            side: b'B',
            attribution: *b"    ",
        }),
        Body::OrderReplace(OrderReplace {
            orig_order_id: 23508286,
            new_order_id: 23508290,
            price: p(874000),
            quantity: 1500,
            side: b'B',
        }),
        Body::OrderCancel(OrderCancel {
            order_id: 23508290,
            cancelled_quantity: 500,
            remaining_quantity: 1000,
            side: b'B',
        }),
        Body::OrderDelete(OrderDelete {
            order_id: 23508290,
            side: b'B',
        }),
        Body::OrderExecuted(Execution {
            order_id: 23499418,
            match_number: 255547,
            price: p(873800),
            quantity: 25,
            side: b'S',
            printable: b'Y',
        }),
        Body::OrderExecutedWithPrice(Execution {
            order_id: 19993566,
            match_number: 255581,
            price: p(224800),
            quantity: 4926,
            side: b'B',
            printable: b'N',
        }),
        Body::Trade(Trade {
            order_id: 0,
            match_number: 255554,
            price: p(1284600),
            quantity: 100,
            side: b'B',
        }),
        Body::CrossTrade(CrossTrade {
            match_number: 255550,
            quantity: 12000,
            price: p(874100),
            cross_type: b'O',
        }),
        Body::BrokenTrade(BrokenTrade {
            match_number: 255550,
        }),
        Body::TradingStatus(TradingStatus {
            status_type: b'H',
            state: b'P',
            reason: *b"LUDP",
            market_code: b' ',
        }),
        Body::SystemEvent(SystemEvent {
            source_type: b'S',
            event_code: b'Q',
            level1: Price(0),
            level2: Price(0),
            level3: Price(0),
        }),
        Body::Imbalance(Imbalance {
            paired_shares: 5000,
            imbalance_shares: 1200,
            direction: b'B',
            cross_type: b'O',
            far_price: p(873000),
            near_price: p(873500),
            reference_price: p(873900),
        }),
        Body::TopOfBook(TopOfBook {
            bid_price: p(873900),
            bid_quantity: 1600,
            ask_price: p(874200),
            ask_quantity: 300,
        }),
        Body::FeedStatus(FeedStatus {
            status: FeedStatus::LOST,
            first: 1045,
            last: 1048,
        }),
    ];
    bodies
        .into_iter()
        .enumerate()
        .map(|(i, body)| Repr {
            instrument: 5528,
            event_ts_ns: ts + i as u64 * 1000,
            recv_ts_ns: ts + i as u64 * 1000 + 2500,
            body,
        })
        .collect()
}
