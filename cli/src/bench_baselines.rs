//! The bench's baselines: `naive` (the same feed, one `sendto` per message per subscriber) and
//! `raw` (pre-built full datagrams, `sendmmsg` bursts paced to the subscribers; with `--rate`,
//! the feed's chunk at a time: the kernel path's own latency at the same offered load).

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
/// sendmmsg — through GSO (one header per group per call) when tickcast uses it, so that the
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
    let mut lens: Vec<Vec<usize>> = Vec::with_capacity(groups.len());
    for (gi, session) in sessions.iter().enumerate() {
        let mut l = Vec::with_capacity(BURST);
        for k in 0..BURST {
            let off = (gi * BURST + k) * slot;
            let mut b = PacketBuilder::new(&mut arena[off..off + slot], slot, session, 1)
                .map_err(|e| e.to_string())?;
            for j in 0..per {
                b.append(&records[(k * per + j) % records.len()])
                    .map_err(|e| e.to_string())?;
            }
            l.push(b.len());
        }
        lens.push(l);
    }
    // Flat out, each group's whole burst per call. Open loop (`--rate`), the feed's input
    // chunk at a time, as the tickcast phase's shard sends it: then the phase's latency is the
    // kernel path's alone for the same offered load, the floor the tickcast phase is read
    // against in the same run.
    let step = match cfg.rate {
        Some(_) => CHUNK_MESSAGES.div_ceil(per).clamp(1, BURST),
        None => BURST,
    };
    let plans: Vec<SendPlan> = (0..BURST)
        .step_by(step)
        .map(|k0| SendPlan::new(&groups, &lens, k0..(k0 + step).min(BURST), slot, gso))
        .collect();
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
    let window = (2 * groups.len() * BURST * per * cfg.subscribers) as u64;
    let mut offered = 0u64;
    for plan in plans.iter().cycle() {
        if started.elapsed() >= limit {
            break;
        }
        let msgs = (plan.datagrams.len() * per) as u64;
        pace.wait(msgs);
        while offered > progress.load(Ordering::Relaxed) + window && started.elapsed() < limit {
            std::thread::yield_now();
        }
        offered += msgs * cfg.subscribers as u64;
        // Stamp sequence and send time: all the work a datagram gets here.
        let now = feedhandler::now_ns().to_le_bytes();
        for &(off, gi) in &plan.datagrams {
            arena[off + 10..off + 18].copy_from_slice(&seqs[gi].to_be_bytes());
            seqs[gi] += per as u64;
            for j in 0..per {
                let r = off + moldudp64::HEADER_LEN + j * (2 + RECORD_SIZE) + 2;
                arena[r + 16..r + 24].copy_from_slice(&now);
            }
        }
        let r = sender.send_all(&fds, &arena, &plan.out);
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

/// One raw send call: datagrams `ks` of every group's burst.
struct SendPlan {
    out: Vec<OutDatagram>,
    /// (offset, group) of every datagram, for stamping.
    datagrams: Vec<(usize, usize)>,
}

impl SendPlan {
    fn new(
        groups: &[SocketAddrV4],
        lens: &[Vec<usize>],
        ks: std::ops::Range<usize>,
        slot: usize,
        gso: bool,
    ) -> SendPlan {
        let (mut out, mut datagrams) = (Vec::new(), Vec::new());
        for (gi, g) in groups.iter().enumerate() {
            let burst = lens[gi].len();
            let offset = |k: usize| (gi * burst + k) * slot;
            datagrams.extend(ks.clone().map(|k| (offset(k), gi)));
            let entry = |k: usize, len: usize, segment: usize| OutDatagram {
                offset: offset(k) as u32,
                len: len as u32,
                dest: *g,
                socket: 0,
                group: gi as u16,
                segment: segment as u16,
            };
            // Back to back and of one size: one GSO header per group (at most 64 segments).
            let full = lens[gi][ks.clone()].iter().all(|&l| l == slot);
            let fits = ks.len() <= usize::from(net::send::GSO_MAX_SEGMENTS)
                && slot * ks.len() <= net::send::GSO_MAX_BYTES as usize;
            if gso && full && ks.len() > 1 && fits {
                out.push(entry(ks.start, slot * ks.len(), slot));
            } else {
                out.extend(ks.clone().map(|k| entry(k, lens[gi][k], 0)));
            }
        }
        SendPlan { out, datagrams }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plans(gso: bool, step: usize, lens: &[Vec<usize>]) -> Vec<SendPlan> {
        let groups: Vec<SocketAddrV4> = (0..lens.len())
            .map(|i| SocketAddrV4::new(Ipv4Addr::new(239, 1, 1, i as u8), 5000))
            .collect();
        let burst = lens[0].len();
        (0..burst)
            .step_by(step)
            .map(|k0| SendPlan::new(&groups, lens, k0..(k0 + step).min(burst), 100, gso))
            .collect()
    }

    #[test]
    fn plans_send_every_datagram_once_a_run_per_group_with_gso() {
        let lens = vec![vec![100; 8], vec![100; 8]];
        for (gso, step) in [(true, 3), (false, 3), (true, 8), (false, 1)] {
            let ps = plans(gso, step, &lens);
            let mut seen: Vec<(usize, usize)> =
                ps.iter().flat_map(|p| p.datagrams.clone()).collect();
            seen.sort();
            let all: Vec<(usize, usize)> = (0..2)
                .flat_map(|g| (0..8).map(move |k| ((g * 8 + k) * 100, g)))
                .collect();
            assert_eq!(seen, all, "gso {gso} step {step}");
            for p in &ps {
                let wire: u64 = p.out.iter().map(|d| d.datagrams()).sum();
                assert_eq!(wire as usize, p.datagrams.len());
                let runs = p.datagrams.len() / 2;
                let entries = if gso && runs > 1 {
                    2
                } else {
                    p.datagrams.len()
                };
                assert_eq!(p.out.len(), entries, "gso {gso} step {step}");
            }
        }
    }

    #[test]
    fn a_short_datagram_is_sent_on_its_own() {
        let lens = vec![vec![100, 100, 60, 100]];
        let ps = plans(true, 4, &lens);
        assert_eq!(ps[0].out.len(), 4);
        assert!(ps[0].out.iter().all(|d| d.segment == 0));
    }
}
