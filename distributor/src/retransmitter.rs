//! The retransmitter agent: one shard's re-request servers on a thread of their own (pinned to
//! `retransmit_core` when set, else left to the scheduler), so answering never runs on the
//! sender's core. Answers are read from the journal through the page cache (`pread` of records
//! the shard has already sent), built into MoldUDP64 datagrams and sent with one `sendmmsg` per
//! duty cycle from the server's own address. The same thread does the disk work left from the
//! send path: it prepares each journal's next pages ahead of the shard (`PagePreparer`).

use crate::agent::Agent;
use crate::config::Group;
use crate::counters::{GroupCounters, ShardCounters};
use crate::journal::{path_for, JournalReader, PagePreparer};
use crate::retransmit::{Guard, Refusal};
use net::ratelog::RateLimited;
use net::warn_limited;
use net::{MmsgSender, OutDatagram};
use protocol::moldudp64::{PacketBuilder, Request, Session, BLOCK_HEADER_LEN, HEADER_LEN};
use protocol::schema::RECORD_SIZE;
use std::net::{SocketAddr, SocketAddrV4, UdpSocket};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Re-requests read per server per duty cycle, so one flooded server cannot starve another.
const REQUESTS_PER_CYCLE: usize = 64;
/// Datagrams built before a send.
const OUTBOX_DATAGRAMS: usize = 64;
/// Longest idle wait (requests and the journals' page preparers' wakes end it at once).
const IDLE_WAIT: Duration = Duration::from_millis(50);
/// Longest wait when there are more sockets and page wakes than one poll(2) watches: the
/// 16 MiB prepared ahead last the sender 20 ms or more even at 10 M records/s per group.
const UNWATCHED_WAIT: Duration = Duration::from_millis(5);

struct RtxGroup {
    name: String,
    session: Session,
    journal: Option<JournalReader>,
    guard: Guard,
    /// Prepares the journal's pages ahead of the shard (None: none, or it failed).
    pages: Option<PagePreparer>,
    cap: u16,
    max_payload: usize,
    counters: Arc<GroupCounters>,
}

pub struct Retransmitter {
    groups: Vec<RtxGroup>,
    /// One socket per re-request address; answers leave from it.
    sockets: Vec<UdpSocket>,
    /// The groups (by session) each socket answers for.
    served: Vec<Vec<usize>>,
    sender: MmsgSender,
    arena: Vec<u8>,
    used: usize,
    out: Vec<OutDatagram>,
    counters: Arc<ShardCounters>,
    log: RateLimited,
    send_log: RateLimited,
}

impl Agent for Retransmitter {
    /// One duty cycle: read pending requests, answer them, one send for all answers. Returns
    /// the requests handled.
    fn do_work(&mut self, now: Instant) -> usize {
        let mut handled = 0;
        let mut buf = [0u8; 64];
        for s in 0..self.sockets.len() {
            for _ in 0..REQUESTS_PER_CYCLE {
                let Ok((n, from)) = self.sockets[s].recv_from(&mut buf) else {
                    break;
                };
                handled += 1;
                let SocketAddr::V4(from) = from else {
                    continue;
                };
                self.answer(s, &buf[..n.min(buf.len())], from, now);
            }
        }
        if !self.out.is_empty() {
            self.send();
        }
        handled + self.prepare_pages()
    }
}

impl Retransmitter {
    /// Binds the re-request servers of `groups` (global index, config). Their journals must
    /// exist (the shard creates them first). Errors name the group and address.
    pub fn new(
        groups: &[(usize, Group)],
        preparers: Vec<Option<PagePreparer>>,
        journal_dir: &Path,
        group_counters: &[Arc<GroupCounters>],
        counters: Arc<ShardCounters>,
    ) -> Result<Retransmitter, String> {
        // By position, one per group (an empty list in tests that have no shard).
        let mut preparers = preparers.into_iter();
        let mut states = Vec::new();
        let mut sockets = Vec::new();
        let mut served: Vec<Vec<usize>> = Vec::new();
        let mut addrs: Vec<SocketAddrV4> = Vec::new();
        let mut max_payload = 64;
        for (li, (gi, g)) in groups.iter().enumerate() {
            let at = |e: String| format!("group {}: {e}", g.name);
            let session = Session::new(&g.session).map_err(|e| at(e.to_string()))?;
            let journal = match JournalReader::open(&path_for(journal_dir, &session)) {
                Ok(j) => Some(j),
                Err(e) => {
                    tracing::warn!(group = %g.name, error = %e, "journal not readable; re-requests go unanswered");
                    None
                }
            };
            states.push(RtxGroup {
                name: g.name.clone(),
                session,
                journal,
                guard: Guard::new(crate::config::retransmit_subnets(g), g.retransmit_rate),
                pages: preparers.next().flatten(),
                cap: g.retransmit_cap,
                max_payload: g.max_payload,
                counters: group_counters[*gi].clone(),
            });
            max_payload = max_payload.max(g.max_payload);
            if let Some(i) = addrs.iter().position(|a| *a == g.retransmit) {
                served[i].push(li);
                continue;
            }
            let udp = net::socket::bound_udp(g.retransmit)
                .map_err(|e| at(format!("retransmit {}: {e}", g.retransmit)))?;
            addrs.push(g.retransmit);
            sockets.push(udp);
            served.push(vec![li]);
        }
        Ok(Retransmitter {
            groups: states,
            sockets,
            served,
            sender: MmsgSender::new(),
            arena: vec![0u8; OUTBOX_DATAGRAMS * max_payload],
            used: 0,
            out: Vec::with_capacity(OUTBOX_DATAGRAMS),
            counters,
            log: RateLimited::default(),
            send_log: RateLimited::default(),
        })
    }

    /// The re-request addresses actually bound (port 0 resolved).
    pub fn local_addrs(&self) -> Vec<SocketAddr> {
        self.sockets
            .iter()
            .filter_map(|s| s.local_addr().ok())
            .collect()
    }

    /// Cycles until `stop`, waiting in poll(2) on the servers' sockets and the journals' page
    /// wakes when idle.
    pub fn run(mut self, stop: Arc<AtomicBool>) {
        while !stop.load(Ordering::Relaxed) {
            if self.do_work(Instant::now()) == 0 {
                self.wait(IDLE_WAIT);
            }
        }
        // What arrived before the stop is still answered.
        self.do_work(Instant::now());
        self.counters
            .retransmitter_cpu_ns
            .set(net::clock::thread_cpu_ns());
    }

    /// Waits up to `wait` for a re-request or a journal's call for pages; a call that ended
    /// the wait is taken here, so the next wait waits.
    fn wait(&self, wait: Duration) {
        use std::os::fd::AsFd;
        let wakes = self
            .groups
            .iter()
            .filter_map(|g| g.pages.as_ref().map(|p| p.wake()));
        let n = self.sockets.len() + wakes.clone().count();
        let wait = if n <= net::poll::MAX_WAIT_FDS {
            wait
        } else {
            wait.min(UNWATCHED_WAIT)
        };
        let fds = self.sockets.iter().map(|s| s.as_fd());
        let ready = net::poll::ready(fds.chain(wakes.clone().map(|w| w.as_fd())), wait);
        // The wakes follow the sockets in the poll set.
        let first = self.sockets.len();
        for (i, w) in wakes
            .enumerate()
            .take(net::poll::MAX_WAIT_FDS.saturating_sub(first))
        {
            if ready & 1 << (first + i) != 0 {
                w.take();
            }
        }
    }

    /// Prepares each journal's next pages ahead of the shard; returns the groups that had
    /// pages to prepare.
    fn prepare_pages(&mut self) -> usize {
        let mut work = 0;
        for g in &mut self.groups {
            let Some(p) = &mut g.pages else { continue };
            match p.run() {
                Ok(0) => {}
                Ok(_) => work += 1,
                Err(e) => {
                    // The disk is full, most likely: the shard faults its own pages (and its
                    // appends report the error).
                    tracing::warn!(group = %g.name, error = %e, "journal page preparation stopped");
                    g.pages = None;
                }
            }
        }
        work
    }

    fn answer(&mut self, server: usize, req: &[u8], from: SocketAddrV4, now: Instant) {
        let Ok(r) = Request::new_checked(req) else {
            self.counters.retransmit_malformed.add(1);
            warn_limited!(self.log, len = req.len(), %from, "re-request of the wrong size; ignored");
            return;
        };
        let session = r.session();
        let Some(&li) = self.served[server]
            .iter()
            .find(|&&li| self.groups[li].session == session)
        else {
            self.counters.retransmit_unknown_session.add(1);
            warn_limited!(self.log, %from, session = %session, "re-request for an unknown session; ignored");
            return;
        };
        let g = &mut self.groups[li];
        g.counters.retransmit_requests.add(1);
        match g.guard.check(*from.ip(), now) {
            Err(Refusal::Denied) => {
                g.counters.retransmit_denied.add(1);
                warn_limited!(self.log, %from, "re-request from outside the allowed subnets; dropped");
                return;
            }
            Err(Refusal::RateLimited) => {
                g.counters.retransmit_rate_limited.add(1);
                return;
            }
            Err(Refusal::Busy) => {
                g.counters.retransmit_busy.add(1);
                warn_limited!(self.log, %from, "re-requests from too many sources at once; new source dropped");
                return;
            }
            Ok(()) => {}
        }
        // Only what the shard has already sent (and journaled) is served.
        let sent = g.counters.last_seq.get_acquire();
        let (first, asked) = (r.sequence(), u64::from(r.count()));
        if first == 0 || first > sent || asked == 0 {
            g.counters.retransmit_unanswerable.add(1);
            return;
        }
        let end = first
            .saturating_add(asked.min(u64::from(g.cap)))
            .min(sent + 1);
        let mut seq = first;
        while seq < end {
            if self.used + self.groups[li].max_payload > self.arena.len()
                || self.out.len() == OUTBOX_DATAGRAMS
            {
                self.send();
            }
            let g = &mut self.groups[li];
            let Some(journal) = g.journal.as_mut() else {
                g.counters.retransmit_unanswerable.add(1);
                return;
            };
            let off = self.used;
            let cap = g.max_payload;
            let Ok(mut pb) =
                PacketBuilder::new(&mut self.arena[off..off + cap], cap, &g.session, seq)
            else {
                return;
            };
            // Records straight from the journal into the datagram until it is full.
            let fit = (cap - HEADER_LEN) / (BLOCK_HEADER_LEN + RECORD_SIZE);
            let want = ((end - seq) as usize).min(fit);
            let got = journal.read_run(seq, want, |rec| pb.append(rec).is_ok());
            seq += got as u64;
            let damaged = got < want;
            let (len, count) = (pb.len(), pb.count());
            if count > 0 {
                self.used += len;
                self.out.push(OutDatagram {
                    offset: off as u32,
                    len: len as u32,
                    dest: from,
                    socket: server as u16,
                    group: li as u16,
                    segment: 0,
                });
                g.counters.retransmit_messages.add(u64::from(count));
                g.counters.retransmit_datagrams.add(1);
            }
            if damaged || count == 0 {
                // A record that does not check out is never served.
                warn_limited!(self.log, group = %g.name, seq, "journal record unreadable; answer cut short");
                return;
            }
        }
    }

    fn send(&mut self) {
        let r = self
            .sender
            .send_all(&self.sockets, &self.arena[..self.used], &self.out);
        if r.errors > 0 {
            warn_limited!(
                self.send_log,
                errors = r.errors,
                error = %std::io::Error::from_raw_os_error(r.last_errno),
                "re-request answers refused by the kernel"
            );
        }
        self.used = 0;
        self.out.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{Config, Fsync};
    use crate::journal::Journal;
    use protocol::moldudp64::Packet;

    fn rec(seq: u64) -> [u8; RECORD_SIZE] {
        let mut r = [0u8; RECORD_SIZE];
        r[8..16].copy_from_slice(&seq.to_le_bytes());
        r
    }

    fn request(session: &Session, seq: u64, count: u16) -> [u8; 20] {
        let mut b = [0u8; 20];
        b[..10].copy_from_slice(&session.0);
        b[10..18].copy_from_slice(&seq.to_be_bytes());
        b[18..20].copy_from_slice(&count.to_be_bytes());
        b
    }

    /// Records per answer datagram received by `client` (empty when none came).
    fn answers(client: &UdpSocket) -> Vec<(u64, u16)> {
        let mut out = Vec::new();
        let mut buf = [0u8; 2048];
        while let Ok(n) = client.recv(&mut buf) {
            let p = Packet::new_checked(&buf[..n]).unwrap();
            for (i, m) in p.messages().enumerate() {
                let m = m.unwrap();
                assert_eq!(m, &rec(p.sequence() + i as u64)[..], "the journal's bytes");
            }
            out.push((p.sequence(), p.count()));
        }
        out
    }

    #[test]
    fn answers_from_the_journal_and_the_clock_drives_the_rate_limit() {
        let dir = std::env::temp_dir().join(format!("tickcast-rtx-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let mut g = Config::load(None).unwrap().groups[0].clone();
        g.retransmit = "127.0.0.1:0".parse().unwrap();
        g.retransmit_rate = 5;
        g.retransmit_cap = 10;
        let session = Session::new(&g.session).unwrap();
        let (mut journal, _) =
            Journal::open(&dir, &session, Fsync::None, Duration::from_millis(100)).unwrap();
        for s in 1..=100 {
            journal.append(&rec(s)).unwrap();
        }
        let counters: Vec<Arc<GroupCounters>> = vec![Arc::default()];
        // Sent up to 90: 91..=100 are journaled but not yet out.
        counters[0].last_seq.set_release(90);
        let shard = Arc::new(ShardCounters::default());
        let mut rtx =
            Retransmitter::new(&[(0, g)], Vec::new(), &dir, &counters, shard.clone()).unwrap();
        let server = rtx.local_addrs()[0];
        let client = UdpSocket::bind("127.0.0.1:0").unwrap();
        client
            .set_read_timeout(Some(Duration::from_millis(200)))
            .unwrap();
        let t0 = Instant::now();
        // Capped at 10 per request; nothing past what was sent.
        client.send_to(&request(&session, 1, 50), server).unwrap();
        client.send_to(&request(&session, 85, 50), server).unwrap();
        client.send_to(&request(&session, 95, 1), server).unwrap();
        std::thread::sleep(Duration::from_millis(20));
        assert_eq!(rtx.do_work(t0), 3);
        assert_eq!(answers(&client), vec![(1, 10), (85, 6)]);
        assert_eq!(counters[0].retransmit_unanswerable.get(), 1);
        // Budget: 5 a second, 3 spent. Seven more now: two answered.
        for _ in 0..7 {
            client.send_to(&request(&session, 1, 1), server).unwrap();
        }
        std::thread::sleep(Duration::from_millis(20));
        rtx.do_work(t0);
        assert_eq!(answers(&client).len(), 2);
        assert_eq!(counters[0].retransmit_rate_limited.get(), 5);
        // A second later (the clock passed in), the budget is back.
        for _ in 0..5 {
            client.send_to(&request(&session, 1, 1), server).unwrap();
        }
        std::thread::sleep(Duration::from_millis(20));
        rtx.do_work(t0 + Duration::from_secs(1));
        assert_eq!(answers(&client).len(), 5);
        // Malformed and foreign requests are counted, not answered.
        client.send_to(&[0u8; 7], server).unwrap();
        client
            .send_to(&request(&Session::new("OTHER").unwrap(), 1, 1), server)
            .unwrap();
        std::thread::sleep(Duration::from_millis(20));
        rtx.do_work(t0 + Duration::from_secs(2));
        assert!(answers(&client).is_empty());
        assert_eq!(shard.retransmit_malformed.get(), 1);
        assert_eq!(shard.retransmit_unknown_session.get(), 1);
        let _ = std::fs::remove_dir_all(&dir);
    }
}
