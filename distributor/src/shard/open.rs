//! Building a shard from its groups' configuration: send sockets by interface and options,
//! each group's journal (resumed after a restart), datagram builder and TCP window.

use super::*;

/// What a shard is made of.
pub struct ShardSpec<'a> {
    pub core: usize,
    pub idle: Idle,
    /// Scheduler slice of the shard's thread in µs; 0 = the kernel's default.
    pub slice_us: u64,
    /// (global group index, config)
    pub groups: &'a [(usize, Group)],
    pub journal: &'a JournalCfg,
    /// Counters of all groups, by global index.
    pub group_counters: &'a [Arc<GroupCounters>],
    pub linger: Duration,
    /// Frames of each group's TCP window; `None`: no TCP fan-out.
    pub tcp_window: Option<usize>,
}

impl Shard {
    /// Opens sockets and journals for the spec's groups. Errors name the group.
    pub fn new(
        spec: ShardSpec<'_>,
        queue: ShardQueue,
        counters: Arc<ShardCounters>,
        stop: Arc<AtomicBool>,
    ) -> Result<Shard, String> {
        let ShardSpec {
            core,
            idle,
            slice_us,
            groups,
            journal,
            group_counters,
            linger,
            tcp_window,
        } = spec;
        let mut tcp_readers = Vec::new();
        let mut sockets: Vec<UdpSocket> = Vec::new();
        let mut keys: Vec<SendOptions> = Vec::new();
        let mut socket_for = |key: SendOptions| -> Result<u16, String> {
            if let Some(i) = keys.iter().position(|k| *k == key) {
                return Ok(i as u16);
            }
            let s = net::socket::sender(&key)
                .map_err(|e| format!("send socket on interface {}: {e}", key.interface))?;
            sockets.push(s.into());
            keys.push(key);
            Ok((sockets.len() - 1) as u16)
        };
        let mut states = Vec::new();
        // Probed once: whether this kernel takes UDP_SEGMENT (gso = "auto").
        let gso_available = &net::probe::gso_supported();
        let mut local = [u8::MAX; 64];
        let mut max_payload = 0;
        for (li, (gi, g)) in groups.iter().enumerate() {
            let at = |e: String| format!("group {}: {e}", g.name);
            let session = Session::new(&g.session).map_err(|e| at(e.to_string()))?;
            let opts = SendOptions {
                interface: g.interface,
                ttl: g.ttl,
                multicast_loop: g.multicast_loop,
                sndbuf: g.sndbuf,
            };
            let a = socket_for(opts).map_err(at)?;
            let mut dests = vec![(g.feed_a, a)];
            if let Some(b) = g.feed_b {
                let s = socket_for(SendOptions {
                    interface: g.interface_b.unwrap_or(g.interface),
                    ..opts
                })
                .map_err(at)?;
                dests.push((b, s));
            }
            for d in &g.destinations {
                dests.push((*d, a));
            }
            let (journal, warning) = Journal::open(
                &journal.dir,
                &session,
                journal.fsync,
                Duration::from_millis(journal.fsync_interval_ms),
            )
            .map_err(|e| at(format!("journal: {e}")))?;
            if let Some(w) = warning {
                tracing::warn!("{w}");
            }
            let next = journal.next_seq();
            if g.retransmit_allow.is_none() {
                let nets: Vec<String> = crate::config::retransmit_subnets(g)
                    .iter()
                    .map(|n| n.to_string())
                    .collect();
                tracing::info!(group = %g.name, allow = ?nets, "re-requests allowed from loopback and the sending interfaces' subnets");
            }
            let builder =
                PacketBuilder::new(vec![0u8; g.max_payload], g.max_payload, &session, next)
                    .map_err(|e| at(e.to_string()))?;
            let counters = group_counters[*gi].clone();
            counters.last_seq.set_release(next - 1);
            if next > 1 {
                tracing::info!(group = %g.name, next_seq = next, "resuming session from the journal");
            }
            max_payload = max_payload.max(g.max_payload);
            local[*gi] = li as u8;
            let tcp = match tcp_window {
                Some(frames) => {
                    let (w, r) = net::window::window(frames, next)
                        .map_err(|e| at(format!("TCP window: {e}")))?;
                    tcp_readers.push((*gi, r));
                    Some(w)
                }
                None => None,
            };
            states.push(GroupState {
                name: g.name.clone(),
                session,
                builder,
                first_append: None,
                last_sent: Instant::now(),
                dests,
                journal,
                max_delay: Duration::from_micros(g.max_delay_us),
                heartbeat: Duration::from_millis(g.heartbeat_ms),
                counters,
                gso: match g.gso {
                    crate::config::Gso::Off => false,
                    crate::config::Gso::On => true,
                    crate::config::Gso::Auto => *gso_available,
                },
                run: None,
                tcp,
            });
        }
        let max_dests = states.iter().map(|g| g.dests.len()).max().unwrap_or(1);
        // At least 64 datagrams per group (a full GSO run), the outbox's total otherwise split.
        let per_group = (OUTBOX_DATAGRAMS / groups.len().max(1)).max(64);
        let region_len = per_group * max_payload.max(64);
        Ok(Shard {
            core,
            idle,
            slice_us,
            groups: states,
            local,
            sockets,
            outbox: Outbox {
                arena: vec![0u8; region_len * groups.len().max(1)],
                regions: (0..groups.len()).map(|li| (li * region_len, 0)).collect(),
                region_len,
                out: Vec::with_capacity(per_group * groups.len().max(1) * max_dests + 16),
                max_payload: max_payload.max(64),
                max_dests,
            },
            sender: MmsgSender::new(),
            queue,
            counters,
            stop,
            linger,
            send_errors: RateLimited::default(),
            open: true,
            parked: None,
            tcp_readers,
        })
    }
}
