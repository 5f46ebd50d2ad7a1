//! The bench's baselines: `naive` (the same feed, one `sendto` per message per subscriber) and
//! `raw` (pre-built full datagrams, `sendmmsg` bursts, paced to the subscribers).

use crate::bench::*;
use distributor::config::Gso;
use distributor::routing::Router;
use feedhandler::source::Source;
use net::{MmsgSender, OutDatagram};
use protocol::moldudp64::{self, PacketBuilder, Session};
use protocol::schema::RECORD_SIZE;
use std::net::{Ipv4Addr, SocketAddrV4, UdpSocket};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use subscriber_sdk::GroupSpec;
pub(crate) fn naive_phase(cfg: &BenchConfig, data: &FeedData) -> Result<Phase, String> {
    let base = base_port() + 100;
    let addrs: Vec<SocketAddrV4> = (0..cfg.subscribers)
        .map(|i| SocketAddrV4::new(Ipv4Addr::LOCALHOST, base + i as u16))
        .collect();
    let stop_subs = Arc::new(AtomicBool::new(false));
    let subs: Vec<_> = addrs
        .iter()
        .flat_map(|a| {
            subscribers(
                1,
                vec![GroupSpec::new("naive", *a)],
                stop_subs.clone(),
                cfg.gro,
                &Progress::default(),
            )
        })
        .collect();
    std::thread::sleep(Duration::from_millis(200));
    let sock = UdpSocket::bind("127.0.0.1:0").map_err(|e| e.to_string())?;
    let journal = std::env::temp_dir();
    let c = bench_config(cfg, &journal, Gso::Off);
    let mut router = Router::new(&c.groups);
    let session = Session::new("NAIVE").map_err(|e| e.to_string())?;
    let mut fh = today_feed_handler();
    let mut src = MemorySource::new(data, cfg.rate);
    let mut pkt = [0u8; moldudp64::HEADER_LEN + 2 + RECORD_SIZE];
    let (mut seq, mut calls) = (1u64, 0u64);
    let started = Instant::now();
    let cpu0 = net::clock::thread_cpu_ns();
    let limit = Duration::from_secs_f64(cfg.seconds);
    while started.elapsed() < limit {
        let Ok(Some(frame)) = src.next_frame() else {
            break;
        };
        fh.on_frame(&frame, &mut |m| {
            if router.route(m) == 0 {
                return; // the same messages tickcast routes
            }
            let Ok(mut b) = PacketBuilder::new(&mut pkt[..], usize::MAX, &session, seq) else {
                return;
            };
            if b.append_with(RECORD_SIZE, |d| {
                let _ = m.emit(d);
            })
            .is_err()
            {
                return;
            }
            let n = b.len();
            for a in &addrs {
                let _ = sock.send_to(&pkt[..n], a);
                calls += 1;
            }
            seq += 1;
        });
    }
    let seconds = started.elapsed().as_secs_f64();
    let sender_cpu = net::clock::thread_cpu_ns().saturating_sub(cpu0);
    // End of session so that the subscribers know the last sequence.
    let mut eos = [0u8; moldudp64::HEADER_LEN];
    moldudp64::emit_end_of_session(&mut eos, &session, seq);
    for a in &addrs {
        let _ = sock.send_to(&eos, a);
    }
    stop_subs.store(true, Ordering::Relaxed);
    let got = collect(subs);
    let phase = Phase {
        messages_sent: seq - 1,
        datagrams: calls,
        send_syscalls: calls,
        seconds,
        ..Default::default()
    };
    let mut p = finish(phase, cfg.subscribers, &got);
    p.msgs_per_datagram = 1.0;
    p.cpu_ns_per_msg.sender = sender_cpu as f64 / p.messages_sent.max(1) as f64;
    Ok(p)
}

/// The raw kernel path: pre-built full datagrams, only sequence and time stamped, sent with
/// sendmmsg — through GSO (one header per group per burst) when tickcast uses it, so that the
/// ratio compares like with like.
pub(crate) fn raw_phase(cfg: &BenchConfig, data: &FeedData, gso: bool) -> Result<Phase, String> {
    let base = base_port() + 200;
    let groups: Vec<SocketAddrV4> = (0..cfg.groups)
        .map(|i| SocketAddrV4::new(Ipv4Addr::new(239, 194, 2, i as u8 + 1), base + i as u16))
        .collect();
    let stop_subs = Arc::new(AtomicBool::new(false));
    let specs: Vec<GroupSpec> = groups
        .iter()
        .enumerate()
        .map(|(i, g)| GroupSpec::new(&format!("raw{i}"), *g))
        .collect();
    let progress = Progress::default();
    let subs = subscribers(
        cfg.subscribers,
        specs,
        stop_subs.clone(),
        cfg.gro,
        &progress,
    );
    std::thread::sleep(Duration::from_millis(200));

    // Real normalized records, packed into full datagrams once.
    let mut records: Vec<[u8; RECORD_SIZE]> = Vec::new();
    let mut fh = today_feed_handler();
    let mut src = MemorySource::new(data, None);
    while records.len() < 4096 {
        let Ok(Some(frame)) = src.next_frame() else {
            break;
        };
        fh.on_frame(&frame, &mut |m| {
            let mut r = [0u8; RECORD_SIZE];
            let _ = m.emit(&mut r);
            records.push(r);
        });
    }
    let per = (cfg.max_payload - moldudp64::HEADER_LEN) / (2 + RECORD_SIZE);
    const BURST: usize = 32; // datagrams per group per sendmmsg
    let slot = cfg.max_payload;
    let mut arena = vec![0u8; groups.len() * BURST * slot];
    let sessions: Vec<Session> = (0..groups.len())
        .map(|i| Session::new(&format!("RAW{i:03}")).expect("session"))
        .collect();
    let mut out: Vec<OutDatagram> = Vec::with_capacity(groups.len() * BURST);
    // (offset, group) of every datagram, for stamping.
    let mut datagrams: Vec<(usize, usize)> = Vec::with_capacity(groups.len() * BURST);
    for (gi, g) in groups.iter().enumerate() {
        let mut lens = Vec::with_capacity(BURST);
        for k in 0..BURST {
            let off = (gi * BURST + k) * slot;
            let mut b = PacketBuilder::new(&mut arena[off..off + slot], slot, &sessions[gi], 1)
                .map_err(|e| e.to_string())?;
            for j in 0..per {
                b.append(&records[(k * per + j) % records.len()])
                    .map_err(|e| e.to_string())?;
            }
            lens.push(b.len());
            datagrams.push((off, gi));
        }
        // Back to back and of one size: one GSO header per group (at most 64 segments).
        if gso && lens.iter().all(|&l| l == slot) && slot * BURST <= 65_507 {
            out.push(OutDatagram {
                offset: (gi * BURST * slot) as u32,
                len: (BURST * slot) as u32,
                dest: *g,
                socket: 0,
                group: gi as u16,
                segment: slot as u16,
            });
        } else {
            for (k, l) in lens.iter().enumerate() {
                out.push(OutDatagram {
                    offset: ((gi * BURST + k) * slot) as u32,
                    len: *l as u32,
                    dest: *g,
                    socket: 0,
                    group: gi as u16,
                    segment: 0,
                });
            }
        }
    }
    let s: UdpSocket = net::socket::sender(&net::socket::SendOptions {
        interface: Ipv4Addr::LOCALHOST,
        ttl: 1,
        multicast_loop: true,
        sndbuf: 16 << 20,
    })
    .map_err(|e| e.to_string())?
    .into();
    let fds = [&s];
    let mut sender = MmsgSender::new();
    let mut seqs = vec![1u64; groups.len()];
    let (mut calls, mut sent) = (0u64, 0u64);
    let started = Instant::now();
    let cpu0 = net::clock::thread_cpu_ns();
    let limit = Duration::from_secs_f64(cfg.seconds);
    let mut pace = Pace::new(cfg.rate);
    // Paced to the subscribers: at most two bursts per group in flight beyond what they have
    // delivered, so the phase measures what the kernel moves to a reader that keeps up (not
    // how fast a sender can overrun a socket buffer).
    let window = (2 * datagrams.len() * per * cfg.subscribers) as u64;
    let mut offered = 0u64;
    while started.elapsed() < limit {
        pace.wait((datagrams.len() * per) as u64);
        while offered > progress.load(Ordering::Relaxed) + window && started.elapsed() < limit {
            std::thread::yield_now();
        }
        offered += (datagrams.len() * per * cfg.subscribers) as u64;
        // Stamp sequence and send time: all the work a datagram gets here.
        let now = feedhandler::now_ns().to_le_bytes();
        for &(off, gi) in &datagrams {
            arena[off + 10..off + 18].copy_from_slice(&seqs[gi].to_be_bytes());
            seqs[gi] += per as u64;
            for j in 0..per {
                let r = off + moldudp64::HEADER_LEN + j * (2 + RECORD_SIZE) + 2;
                arena[r + 16..r + 24].copy_from_slice(&now);
            }
        }
        let r = sender.send_all(&fds, &arena, &out);
        calls += r.calls;
        sent += r.sent;
    }
    let seconds = started.elapsed().as_secs_f64();
    let sender_cpu = net::clock::thread_cpu_ns().saturating_sub(cpu0);
    let mut eos = [0u8; moldudp64::HEADER_LEN];
    for (gi, g) in groups.iter().enumerate() {
        moldudp64::emit_end_of_session(&mut eos, &sessions[gi], seqs[gi]);
        let _ = s.send_to(&eos, g);
    }
    stop_subs.store(true, Ordering::Relaxed);
    let got = collect(subs);
    let phase = Phase {
        messages_sent: sent * per as u64,
        datagrams: sent,
        send_syscalls: calls,
        seconds,
        cpu_ns_per_msg: CpuPerMsg {
            sender: sender_cpu as f64 / (sent * per as u64).max(1) as f64,
            ..Default::default()
        },
        ..Default::default()
    };
    Ok(finish(phase, cfg.subscribers, &got))
}
