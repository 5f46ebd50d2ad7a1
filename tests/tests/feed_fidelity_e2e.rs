//! What `tickcast run` publishes from a live exchange feed with loss equals, record for record and
//! in order, the normalized stream of the uninterrupted file: the real Nasdaq ITCH snippet,
//! packetized, goes out on the "exchange's" feeds A and B with different datagrams withheld from
//! each (some from both); the exchange's re-request server answers 30 ms late. A subscriber on
//! the distributor's group compares every record (receive times aside).

use protocol::schema::{Kind, Message, Repr};
use std::net::{Ipv4Addr, SocketAddrV4};
use std::time::{Duration, Instant};
use subscriber_sdk::{Context, GroupSpec, Handler, PollMode, Subscriber};
use tickcast_tests::exchange::{every, key, packets, reference, server};
use tickcast_tests::*;

#[derive(Default)]
struct Collect {
    records: Vec<Repr>,
    gaps: Vec<(u64, u64)>,
}

impl Handler for Collect {
    fn on_message(&mut self, _: &Context<'_>, msg: &Message<&[u8]>) {
        self.records.push(key(&msg.repr()));
    }
    fn on_gap(&mut self, _: usize, _: &str, from: u64, to: u64) {
        self.gaps.push((from, to));
    }
}

#[test]
fn published_stream_equals_the_file_despite_loss_on_both_exchange_feeds() {
    let base = ports(15);
    let dir = scratch("feed-fidelity");
    let session = protocol::Session::new("NSDQ000002").unwrap();
    let p = packets(&session);
    let (rerequest, srv) = server(p.clone(), Duration::from_millis(30));
    let a = SocketAddrV4::new(Ipv4Addr::new(239, 79, 15, 1), base + 18);
    let b = SocketAddrV4::new(Ipv4Addr::new(239, 79, 15, 2), base + 18);
    let g = TestGroup::new(15, 0, base, "");
    let feed = format!(
        "source = \"multicast\"\ngroup = \"{a}\"\ngroup_b = \"{b}\"\ninterface = \"127.0.0.1\"\n\
         rerequest = \"{rerequest}\"\nrerequest_timeout_ms = 100\ndate = \"2019-12-30\""
    );
    let cfg = dir.join("tickcast.toml");
    std::fs::write(
        &cfg,
        config(&feed, std::slice::from_ref(&g), &dir.join("journal")),
    )
    .unwrap();
    let child = spawn_tickcast(&["run", "--quiet", "--config", cfg.to_str().unwrap()]);
    let mut sub = Subscriber::builder()
        .group(
            GroupSpec::new(&g.name, g.feed_a.parse().unwrap())
                .feed_b(g.feed_b.as_ref().unwrap().parse().unwrap())
                .retransmit(g.retransmit.parse().unwrap()),
        )
        .poll_mode(PollMode::Blocking(Duration::from_millis(5)))
        .build()
        .unwrap();
    std::thread::sleep(Duration::from_millis(1000)); // the distributor joins the exchange feeds

    // The group takes every kind but the derived top of book (content = "all").
    let want: Vec<Repr> = reference()
        .into_iter()
        .filter(|m| m.kind() != Kind::TopOfBook)
        .collect();
    let drop_a = every(5, 1, p.len());
    let drop_b = every(7, 1, p.len()); // both miss datagrams 1, 36 and 71
    let tx = loopback_sender();
    for (i, d) in p.iter().enumerate() {
        if !drop_a.contains(&i) {
            tx.send_to(d, a).unwrap();
        }
        if !drop_b.contains(&i) {
            tx.send_to(d, b).unwrap();
        }
    }
    let mut c = Collect::default();
    let deadline = Instant::now() + Duration::from_secs(20);
    while c.records.len() < want.len() && Instant::now() < deadline {
        sub.poll(&mut c).unwrap();
    }
    let summary = terminate(child);
    assert_eq!(
        c.records.len(),
        want.len(),
        "records published; summary {summary}"
    );
    let first_diff = c.records.iter().zip(&want).position(|(x, y)| x != y);
    assert_eq!(first_diff, None, "published stream differs from the file");
    assert!(c.gaps.is_empty());
    assert!(
        srv.join().unwrap() >= 1,
        "the both-feed holes were requested"
    );
    let _ = std::fs::remove_dir_all(&dir);
}
