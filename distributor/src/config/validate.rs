//! Config validation: every value the types cannot check, with one-line errors naming the key,
//! sizes bounded by the memory they would take; and the warnings `check-config` prints for a
//! config that is valid but will not work as probably meant on this host.

use super::*;

/// Memory one config may ask for at start in any single table (ring, input queue), so that a
/// typo cannot take the host's memory; the error says what the value would take.
const MAX_TABLE_BYTES: u64 = 4 << 30;

fn gib(bytes: u64) -> String {
    format!("{:.1} GiB", bytes as f64 / (1u64 << 30) as f64)
}

/// An allowed source subnet: `A.B.C.D/N`, or `A.B.C.D` for one host.
pub fn parse_subnet(s: &str) -> Result<Ipv4Net, String> {
    let with_prefix = if s.contains('/') {
        s.to_string()
    } else {
        format!("{s}/32")
    };
    with_prefix
        .parse::<Ipv4Net>()
        .map(|n| n.trunc())
        .map_err(|_| format!("{s:?} is not A.B.C.D/N with N in 0..=32"))
}

/// The subnets a group's re-request server answers: `retransmit_allow` when given, else
/// loopback plus the subnets of the group's sending interfaces on this host.
pub fn retransmit_subnets(g: &Group) -> Vec<Ipv4Net> {
    match &g.retransmit_allow {
        Some(list) => list.iter().filter_map(|s| parse_subnet(s).ok()).collect(),
        None => {
            let mut nets = vec![Ipv4Net::new(Ipv4Addr::new(127, 0, 0, 0), 8).unwrap_or_default()];
            for iface in [Some(g.interface), g.interface_b].into_iter().flatten() {
                if let Some(n) = net::ifaddr::subnet_of(iface) {
                    if !nets.contains(&n) {
                        nets.push(n);
                    }
                }
            }
            nets
        }
    }
}

/// Warnings about a config that is valid but will not work as probably meant on this host.
pub fn warnings(cfg: &Config) -> Vec<String> {
    let mut w = Vec::new();
    let cores = core_affinity::get_core_ids().map_or(0, |c| c.len());
    let tcp = cfg.tcp.as_ref().and_then(|t| t.core);
    let pinned = cfg
        .pinned_threads()
        .chain(tcp.map(|c| ("tcp".into(), c, "the TCP agent")));
    for (key, core, what) in pinned {
        if cores > 0 && core >= cores {
            w.push(format!(
                "{key}.core: core {core} does not exist on this host ({cores} cores); {what} will run unpinned"
            ));
        }
    }
    for (i, g) in cfg.groups.iter().enumerate() {
        let Some(list) = &g.retransmit_allow else {
            continue;
        };
        let allowed: Vec<Ipv4Net> = list.iter().filter_map(|s| parse_subnet(s).ok()).collect();
        for iface in [Some(g.interface), g.interface_b].into_iter().flatten() {
            if iface.is_loopback() {
                continue;
            }
            let net = net::ifaddr::subnet_of(iface)
                .unwrap_or_else(|| Ipv4Net::new(iface, 32).unwrap_or_default());
            if !allowed.iter().any(|a| a.contains(&net.network())) {
                w.push(format!(
                    "group[{i}] ({}).retransmit_allow: {list:?} refuses subscribers on {net}, \
                     the network of its sending interface {iface}: their re-requests would go \
                     unanswered",
                    g.name
                ));
            }
        }
    }
    w
}

/// A parsed `partition = "K/N"`.
pub fn parse_partition(s: &str) -> Result<(u32, u32), String> {
    let bad = || format!("{s:?} must be \"K/N\" with 0 <= K < N");
    let (k, n) = s.split_once('/').ok_or_else(bad)?;
    let (k, n): (u32, u32) = (
        k.trim().parse().map_err(|_| bad())?,
        n.trim().parse().map_err(|_| bad())?,
    );
    if n == 0 || k >= n {
        return Err(bad());
    }
    Ok((k, n))
}

/// A parsed symbol range "A-M" (inclusive on prefixes).
pub fn parse_range(s: &str) -> Result<(String, String), String> {
    let (a, b) = s
        .split_once('-')
        .ok_or_else(|| format!("{s:?} must be \"FROM-TO\", e.g. \"A-M\""))?;
    let (a, b) = (a.trim().to_string(), b.trim().to_string());
    // Exchange symbols are upper case ASCII letters, digits and a few marks; a range of anything
    // else could never match.
    let symbolic = |x: &str| {
        !x.is_empty()
            && x.len() <= 8
            && x.bytes()
                .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == b'.')
    };
    if !symbolic(&a) || !symbolic(&b) {
        return Err(format!(
            "{s:?}: FROM and TO must be symbol prefixes (A-Z, 0-9, '.'; 1 to 8 characters), e.g. \"A-M\""
        ));
    }
    if a > b {
        return Err(format!("{s:?}: FROM must not sort after TO"));
    }
    Ok((a, b))
}

impl Config {
    /// Checks the values the types cannot.
    pub fn validate(&self) -> Result<(), String> {
        let f = &self.feed;
        match f.source {
            SourceKind::Multicast if f.group.is_none() => {
                return Err("feed.group: required when feed.source = \"multicast\"".into())
            }
            SourceKind::Pcap | SourceKind::Binaryfile if f.path.is_none() => {
                return Err(
                    format!("feed.path: required when feed.source = \"{:?}\"", f.source)
                        .to_lowercase(),
                )
            }
            _ => {}
        }
        if let Some(b) = f.group_b {
            if f.group.is_none() {
                return Err("feed.group_b: needs feed.group (feed A)".into());
            }
            if Some(b) == f.group && f.interface_b.unwrap_or(f.interface) == f.interface {
                return Err(format!(
                    "feed.group_b: {b} is feed A's group on the same interface"
                ));
            }
        }
        if let Some(s) = &f.session {
            if protocol::Session::new(s).is_err() {
                return Err(format!(
                    "feed.session: {s:?} must be 1 to 10 printable ASCII characters"
                ));
            }
        }
        if f.interface_b.is_some() && f.group_b.is_none() {
            return Err("feed.interface_b: set without feed.group_b".into());
        }
        if f.speed
            .parse::<feedhandler::source::pacing::Speed>()
            .is_err()
        {
            return Err(format!(
                "feed.speed: {:?} is not \"max\" or a positive number",
                f.speed
            ));
        }
        if let Some(d) = &f.date {
            let Ok(date) = chrono::NaiveDate::parse_from_str(d, "%Y-%m-%d") else {
                return Err(format!("feed.date: {d:?} is not YYYY-MM-DD"));
            };
            // Times are i64 ns since 1970: 1970-01-01 up to 2262-04-10.
            let (lo, hi) = (
                chrono::NaiveDate::from_ymd_opt(1970, 1, 1),
                chrono::NaiveDate::from_ymd_opt(2262, 4, 10),
            );
            if Some(date) < lo || Some(date) > hi {
                return Err(format!(
                    "feed.date: {d} is outside 1970-01-01..=2262-04-10 (times are ns since 1970 in 64 bits)"
                ));
            }
        }
        if f.queue_depth == 0 {
            return Err("feed.queue_depth: must be at least 1".into());
        }
        // Per shard: the queue, the pool refilling it and the batch being filled.
        let batch = (crate::batch::BATCH_RECORDS * (protocol::schema::RECORD_SIZE + 8)) as u64;
        let queue_bytes = (2 * f.queue_depth as u64 + 2).saturating_mul(batch);
        if queue_bytes > MAX_TABLE_BYTES {
            return Err(format!(
                "feed.queue_depth: {} batches would take {} per shard ({} KiB each, queue and pool); at most {}",
                f.queue_depth,
                gib(queue_bytes),
                batch / 1024,
                (MAX_TABLE_BYTES / batch - 2) / 2
            ));
        }
        if f.instruments == 0 {
            return Err("feed.instruments: must be at least 1".into());
        }
        if self.groups.is_empty() {
            return Err("group: at least one [[group]] is required".into());
        }
        if self.groups.len() > 64 {
            return Err("group: at most 64 groups".into());
        }
        for (i, s) in self.shards.iter().enumerate() {
            let (lo, hi) = (
                net::sched::MIN_SLICE_NS / 1000,
                net::sched::MAX_SLICE_NS / 1000,
            );
            if s.slice_us != 0 && !(lo..=hi).contains(&s.slice_us) {
                return Err(format!(
                    "shard[{i}].slice_us: {} is outside {lo}..={hi} (0 = the kernel's default)",
                    s.slice_us
                ));
            }
            if s.groups.is_empty() {
                return Err(format!("shard[{i}].groups: must name at least one group"));
            }
            for g in &s.groups {
                if !self.groups.iter().any(|x| &x.name == g) {
                    return Err(format!("shard[{i}].groups: {g:?} is not a [[group]] name"));
                }
            }
        }
        let mut names = BTreeSet::new();
        let mut sessions = BTreeSet::new();
        let mut feeds: BTreeMap<SocketAddrV4, String> = BTreeMap::new();
        let mut retransmit_owner: BTreeMap<SocketAddrV4, usize> = BTreeMap::new();
        let shard_of = |name: &str| {
            self.shards
                .iter()
                .position(|s| s.groups.iter().any(|g| g == name))
        };
        for (i, g) in self.groups.iter().enumerate() {
            let at = |key: &str| format!("group[{i}] ({}).{key}", g.name);
            if g.name.is_empty() {
                return Err(format!("group[{i}].name: must not be empty"));
            }
            if !names.insert(g.name.as_str()) {
                return Err(format!("{}: duplicate group name", at("name")));
            }
            if protocol::Session::new(&g.session).is_err() {
                return Err(format!(
                    "{}: {:?} must be 1 to 10 printable ASCII characters",
                    at("session"),
                    g.session
                ));
            }
            // Sessions are compared as they go on the wire: space padded to 10 bytes.
            let wire = protocol::Session::new(&g.session)
                .map(|s| s.0)
                .unwrap_or_default();
            if g.session.trim().is_empty() || !sessions.insert(wire) {
                return Err(format!(
                    "{}: {:?} is empty or used by another group",
                    at("session"),
                    g.session
                ));
            }
            for r in &g.symbol_ranges {
                // (checked by parse_range: upper case, one '-', FROM <= TO)
                parse_range(r).map_err(|e| format!("{}: {e}", at("symbol_ranges")))?;
            }
            if let Some(p) = &g.partition {
                parse_partition(p).map_err(|e| format!("{}: {e}", at("partition")))?;
            }
            let min = protocol::moldudp64::HEADER_LEN + 2 + protocol::schema::RECORD_SIZE;
            if g.max_payload < min || g.max_payload > 65507 {
                return Err(format!(
                    "{}: {} must be between {min} and 65507",
                    at("max_payload"),
                    g.max_payload
                ));
            }
            if g.heartbeat_ms == 0 {
                return Err(format!("{}: must be at least 1", at("heartbeat_ms")));
            }
            if g.ttl == 0 || g.ttl > 255 {
                return Err(format!("{}: {} must be 1..=255", at("ttl"), g.ttl));
            }
            for (key, addr) in [("feed_a", Some(g.feed_a)), ("feed_b", g.feed_b)] {
                let Some(addr) = addr else { continue };
                if addr.port() == 0 {
                    return Err(format!("{}: {addr}: port must not be 0", at(key)));
                }
                if addr.ip().is_unspecified() || addr.ip().is_broadcast() {
                    return Err(format!("{}: {addr} is not a destination", at(key)));
                }
                if let Some(other) = feeds.insert(addr, g.name.clone()) {
                    return Err(format!(
                        "{}: {addr} is already a feed of group {other:?}",
                        at(key)
                    ));
                }
                if addr == g.retransmit {
                    return Err(format!(
                        "{}: {addr} is also the group's retransmit address",
                        at(key)
                    ));
                }
            }
            for d in &g.destinations {
                if d.port() == 0 || d.ip().is_unspecified() || d.ip().is_broadcast() {
                    return Err(format!("{}: {d} is not a destination", at("destinations")));
                }
            }
            if g.destinations.len() > 64 {
                return Err(format!(
                    "{}: {} destinations; at most 64 copies of each datagram",
                    at("destinations"),
                    g.destinations.len()
                ));
            }
            if g.retransmit.ip().is_multicast() || g.retransmit.ip().is_broadcast() {
                return Err(format!(
                    "{}: {} is not a unicast address (requests are sent to it)",
                    at("retransmit"),
                    g.retransmit
                ));
            }
            if g.retransmit_cap == 0 {
                return Err(format!("{}: must be at least 1", at("retransmit_cap")));
            }
            if g.retransmit_rate == 0 {
                return Err(format!(
                    "{}: must be at least 1 request per second",
                    at("retransmit_rate")
                ));
            }
            if g.ring == 0 {
                return Err(format!("{}: must be at least 1", at("ring")));
            }
            let ring_bytes = (g.ring as u64).saturating_mul(protocol::schema::RECORD_SIZE as u64);
            if ring_bytes > MAX_TABLE_BYTES {
                return Err(format!(
                    "{}: {} messages would take {}; at most {} (older messages are served from the journal)",
                    at("ring"),
                    g.ring,
                    gib(ring_bytes),
                    MAX_TABLE_BYTES / protocol::schema::RECORD_SIZE as u64
                ));
            }
            for s in g.retransmit_allow.iter().flatten() {
                parse_subnet(s).map_err(|e| format!("{}: {e}", at("retransmit_allow")))?;
            }
            let Some(shard) = shard_of(&g.name) else {
                return Err(format!("{}: group is in no [[shard]]", at("name")));
            };
            if let Some(&other) = retransmit_owner.get(&g.retransmit) {
                if other != shard {
                    return Err(format!(
                        "{}: {} is served by another shard",
                        at("retransmit"),
                        g.retransmit
                    ));
                }
            }
            retransmit_owner.insert(g.retransmit, shard);
        }
        if self.shards.is_empty() {
            return Err("shard: at least one [[shard]] is required".into());
        }
        let mut seen = BTreeSet::new();
        for (i, s) in self.shards.iter().enumerate() {
            for g in &s.groups {
                if !seen.insert(g.as_str()) {
                    return Err(format!(
                        "shard[{i}].groups: {g:?} is already in another shard"
                    ));
                }
            }
        }
        if self.journal.dir.as_os_str().is_empty() {
            return Err("journal.dir: must not be empty".into());
        }
        if self.journal.fsync == Fsync::Interval && self.journal.fsync_interval_ms == 0 {
            return Err("journal.fsync_interval_ms: must be at least 1".into());
        }
        if let Some(t) = &self.tcp {
            self.validate_tcp(t)?;
        }
        Ok(())
    }

    fn validate_tcp(&self, t: &super::Tcp) -> Result<(), String> {
        if t.allow.is_empty() {
            return Err(
                "tcp.allow: empty (no client could connect); default is 127.0.0.0/8".into(),
            );
        }
        for s in &t.allow {
            parse_subnet(s).map_err(|e| format!("tcp.allow: {e}"))?;
        }
        if !(1..=100_000).contains(&t.max_clients) {
            return Err(format!(
                "tcp.max_clients: {} is outside 1..=100000",
                t.max_clients
            ));
        }
        for (key, v, lo, hi) in [
            ("heartbeat_ms", t.heartbeat_ms, 10, 60_000),
            ("login_timeout_ms", t.login_timeout_ms, 10, 600_000),
            ("idle_timeout_ms", t.idle_timeout_ms, 100, 3_600_000),
            ("lag_limit", t.lag_limit, 1024, 1 << 24),
            ("sndbuf", t.sndbuf as u64, 4096, 1 << 30),
        ] {
            if !(lo..=hi).contains(&v) {
                return Err(format!("tcp.{key}: {v} is outside {lo}..={hi}"));
            }
        }
        let mut names = BTreeSet::new();
        for (i, u) in t.users.iter().enumerate() {
            if u.name.is_empty()
                || u.name.len() > 6
                || !u.name.bytes().all(|b| b.is_ascii_graphic())
            {
                return Err(format!(
                    "tcp.user[{i}].name: {:?} must be 1 to 6 printable ASCII characters without spaces",
                    u.name
                ));
            }
            if u.password.len() > 10 || !u.password.bytes().all(|b| b.is_ascii_graphic()) {
                return Err(format!(
                    "tcp.user[{i}].password: must be at most 10 printable ASCII characters without spaces"
                ));
            }
            if !names.insert(u.name.as_str()) {
                return Err(format!("tcp.user[{i}].name: {:?} appears twice", u.name));
            }
        }
        let mut sessions = BTreeSet::new();
        for g in &self.groups {
            if !sessions.insert(g.session.trim_end()) {
                return Err(format!(
                    "tcp: groups share the session {:?}; a TCP login names the session, so each group needs its own",
                    g.session
                ));
            }
        }
        // The window of each group holds 4 × lag_limit frames (67 bytes each).
        let bytes = t.window_frames() as u64 * 67 * self.groups.len() as u64;
        if bytes > MAX_TABLE_BYTES {
            return Err(format!(
                "tcp.lag_limit: windows of {} frames for {} groups would take {}; at most {}",
                t.window_frames(),
                self.groups.len(),
                gib(bytes),
                gib(MAX_TABLE_BYTES)
            ));
        }
        Ok(())
    }
}
