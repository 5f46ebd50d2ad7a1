//! The SoupBinTCP server in process: real clients on loopback, every test with io_uring and
//! with the epoll fallback.

mod tcp_common;

use distributor::config::TcpUser;
use distributor::tcp::Reason;
use protocol::soupbintcp::{self, ServerRepr};
use std::io::{Read, Write};
use std::time::{Duration, Instant};
use subscriber_sdk::{TcpOptions, TcpSubscriber};
use tcp_common::*;

#[test]
fn replay_from_the_journal_then_live_without_gap_or_duplicate() {
    both(|b| {
        // 5 000 records before the client arrives: 1..~2950 are older than the window and come
        // from the journal, the rest from the window, then live ones.
        let mut s = server(b, config(b), 5000);
        let mut sub = TcpSubscriber::connect(options(s.addr, 1)).unwrap();
        let mut h = Collect::default();
        read_until(&mut sub, &mut h, |h| h.seqs.len() >= 100);
        s.feed.publish(3000);
        read_until(&mut sub, &mut h, |h| h.seqs.len() >= 8000);
        s.end();
        read_until(&mut sub, &mut h, |h| h.ended.is_some());
        assert_eq!(h.seqs, (1..=8000).collect::<Vec<_>>(), "{b:?}");
        for (i, r) in h.records.iter().enumerate() {
            assert_eq!(*r, record(i as u64 + 1));
        }
        assert_eq!(h.ended, Some(8001));
        assert!(sub.ended());
    });
}

#[test]
fn login_from_zero_starts_with_the_next_message_and_reconnect_resumes() {
    both(|b| {
        let mut s = server(b, config(b), 100);
        let mut sub = TcpSubscriber::connect(options(s.addr, 0)).unwrap();
        assert_eq!(sub.next_seq(), 101);
        let mut h = Collect::default();
        s.feed.publish(500);
        read_until(&mut sub, &mut h, |h| h.seqs.len() >= 200);
        // Mid-stream: a new connection from the next sequence.
        sub.reconnect().unwrap();
        s.feed.publish(500);
        read_until(&mut sub, &mut h, |h| h.seqs.len() >= 1000);
        assert_eq!(h.seqs, (101..=1100).collect::<Vec<_>>());
        assert_eq!(sub.stats().reconnects, 1);
        // A login past the stream starts at the next message (the `A` says where).
        let sub2 = TcpSubscriber::connect(options(s.addr, 1_000_000)).unwrap();
        assert_eq!(sub2.next_seq(), 1101);
        assert!(s.counters().logins.get() >= 3);
        s.end();
    });
}

#[test]
fn heartbeats_both_ways_keep_an_idle_session_up() {
    both(|b| {
        let s = server(b, config(b), 10);
        let mut sub = TcpSubscriber::connect(options(s.addr, 0)).unwrap();
        let mut h = Collect::default();
        let until = Instant::now() + Duration::from_millis(2600);
        while Instant::now() < until {
            sub.poll_for(&mut h, Duration::from_millis(50)).unwrap();
        }
        // Server heartbeats every 200 ms; the client's every second keep it past idle 2 s.
        assert!(sub.stats().heartbeats_received >= 5, "{:?}", sub.stats());
        assert_eq!(sub.stats().reconnects, 0);
        assert_eq!(s.counters().disconnected(Reason::IdleTimeout), 0);
    });
}

#[test]
fn bad_input_is_counted_and_closed_and_nothing_else_is_disturbed() {
    both(|b| {
        let mut cfg = config(b);
        cfg.users = vec![TcpUser {
            name: "alice".into(),
            password: "pw".into(),
        }];
        // The good client is not polled while the bad ones are tried.
        cfg.idle_timeout_ms = 60_000;
        let mut s = server(b, cfg, 50);
        let addr = s.addr;
        // A good client all along.
        let mut good = TcpOptions::new(addr, "TCPTEST");
        good.from = 1;
        good.username = "alice".into();
        good.password = "pw".into();
        let mut sub = TcpSubscriber::connect(good.clone()).unwrap();
        let mut h = Collect::default();

        // Wrong password: `J` `A`, closed.
        let mut c = raw(addr);
        c.write_all(&login_frame("alice", "nope", "TCPTEST", 1))
            .unwrap();
        assert_eq!(read_to_close(&mut c), vec![0, 2, b'J', b'A']);
        // Unknown session: `J` `S`.
        let mut c = raw(addr);
        c.write_all(&login_frame("alice", "pw", "OTHER", 1))
            .unwrap();
        assert_eq!(read_to_close(&mut c), vec![0, 2, b'J', b'S']);
        // Data before login, oversized frame, unknown type, zero length: closed, nothing sent.
        for bytes in [
            &[0u8, 1, b'R'][..],
            &[0, 200, b'L', 1, 2, 3][..],
            &[0, 1, b'Q'][..],
            &[0, 0][..],
        ] {
            let mut c = raw(addr);
            c.write_all(bytes).unwrap();
            assert!(read_to_close(&mut c).is_empty(), "{bytes:?}");
        }
        // A second login on a session is a protocol error.
        let mut c = raw(addr);
        c.write_all(&login_frame("alice", "pw", "TCPTEST", 0))
            .unwrap();
        c.write_all(&login_frame("alice", "pw", "TCPTEST", 0))
            .unwrap();
        // (Closed at once; the `A` is out only if the two logins arrived in two reads.)
        let got = read_to_close(&mut c);
        assert!(got.is_empty() || got[2] == b'A');
        // Connect and say nothing: closed after the login timeout (300 ms).
        let mut idle = raw(addr);
        assert!(read_to_close(&mut idle).is_empty());
        // Login flood: 200 connections logging in and leaving at once.
        for _ in 0..200 {
            let mut c = raw(addr);
            reset_on_close(&c);
            let _ = c.write_all(&login_frame("alice", "pw", "TCPTEST", 1));
        }
        let k = s.tcp.as_ref().unwrap().counters.clone();
        let show = k.clone();
        wait_for_or(
            "counters",
            || Reason::ALL.map(|r| (r.label(), show.disconnected(r))),
            || {
                k.disconnected(Reason::NotAuthorized) == 1
                    && k.disconnected(Reason::SessionUnavailable) == 1
                    && k.disconnected(Reason::BeforeLogin) == 1
                    && k.disconnected(Reason::BadFrame) == 4
                    && k.disconnected(Reason::LoginTimeout) == 1
            },
        );
        // The good client got everything.
        s.feed.publish(1000);
        read_until(&mut sub, &mut h, |h| h.seqs.len() >= 1050);
        assert_eq!(h.seqs, (1..=1050).collect::<Vec<_>>());
        wait_for("the flood's clients gone", || k.clients.get() == 1);
        s.end();
    });
}

#[test]
fn a_thousand_clients_served_at_once() {
    let (soft, hard) =
        nix::sys::resource::getrlimit(nix::sys::resource::Resource::RLIMIT_NOFILE).unwrap();
    if soft < 4096 {
        // This process only, not the system.
        nix::sys::resource::setrlimit(
            nix::sys::resource::Resource::RLIMIT_NOFILE,
            4096.min(hard),
            hard,
        )
        .unwrap();
    }
    both(|b| {
        let mut s = server(b, config(b), 0);
        let mut subs: Vec<TcpSubscriber> = (0..1000)
            .map(|_| TcpSubscriber::connect(options(s.addr, 1)).unwrap())
            .collect();
        let mut hs: Vec<Collect> = (0..1000).map(|_| Collect::default()).collect();
        assert_eq!(s.counters().clients.get(), 1000);
        s.feed.publish(300);
        s.end();
        let deadline = Instant::now() + Duration::from_secs(60);
        while hs.iter().any(|h| h.ended.is_none()) && Instant::now() < deadline {
            for (sub, h) in subs.iter_mut().zip(hs.iter_mut()) {
                if h.ended.is_none() {
                    sub.poll_for(h, Duration::ZERO).unwrap();
                }
            }
        }
        for h in &hs {
            assert_eq!(h.seqs, (1..=300).collect::<Vec<_>>(), "{b:?}");
            assert_eq!(h.ended, Some(301));
        }
    });
}

#[test]
fn a_client_that_stops_reading_is_served_from_the_journal_and_holds_no_one_up() {
    both(|b| {
        let mut cfg = config(b);
        cfg.sndbuf = 16 * 1024;
        cfg.idle_timeout_ms = 60_000;
        let mut s = server(b, cfg, 0);
        // Logged in, never reads: its socket fills, it falls behind lag_limit.
        let mut stalled = raw(s.addr);
        net::socket::set_recv_buffer(&stalled, 64 * 1024).unwrap();
        stalled
            .write_all(&login_frame("", "", "TCPTEST", 1))
            .unwrap();
        let mut sub = TcpSubscriber::connect(options(s.addr, 1)).unwrap();
        let mut h = Collect::default();
        for _ in 0..40 {
            s.feed.publish(1000);
            read_until(&mut sub, &mut h, |h| {
                h.seqs.len() as u64 >= s.feed.journal.len()
            });
        }
        assert_eq!(h.seqs.len(), 40_000);
        let k = s.tcp.as_ref().unwrap().counters.clone();
        wait_for("the stalled client on the catch-up path", || {
            k.catchups.get() >= 1
        });
        assert!(k.max_lag.get() > 1024);
        // It reads now: everything arrives, in order, from the journal.
        let mut got = 0u64;
        let mut buf = vec![0u8; 1 << 16];
        let mut pending = Vec::new();
        let mut next = 1u64;
        while got < 40_000 {
            let n = stalled.read(&mut buf).unwrap();
            assert!(
                n > 0,
                "{b:?}: closed after {got}: {:?}",
                Reason::ALL.map(|r| (r.label(), k.disconnected(r)))
            );
            pending.extend_from_slice(&buf[..n]);
            let mut used = 0;
            while let Some((f, len)) = soupbintcp::split_frame(&pending[used..], 100).unwrap() {
                used += len;
                match ServerRepr::parse(&f).unwrap() {
                    ServerRepr::Sequenced(r) => {
                        assert_eq!(r, &record(next)[..]);
                        next += 1;
                        got += 1;
                    }
                    ServerRepr::Accepted { sequence, .. } => assert_eq!(sequence, 1),
                    other => panic!("{other:?}"),
                }
            }
            pending.drain(..used);
        }
        s.end();
    });
}
