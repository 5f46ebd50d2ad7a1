//! The distributor's configuration: TOML, every key documented in docs/CONFIG.md. Unknown keys
//! and bad values are errors of one line that names the key.

use ipnet::Ipv4Net;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};
use std::net::{Ipv4Addr, SocketAddrV4};
use std::path::PathBuf;

/// The embedded default: `tickcast run` with no arguments.
pub const DEFAULT_TOML: &str = include_str!("../../../configs/default.toml");

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    pub feed: Feed,
    #[serde(rename = "shard")]
    pub shards: Vec<Shard>,
    #[serde(rename = "group")]
    pub groups: Vec<Group>,
    #[serde(default)]
    pub journal: Journal,
    #[serde(default)]
    pub metrics: Metrics,
    /// SoupBinTCP server; absent = no TCP fan-out.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tcp: Option<Tcp>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SourceKind {
    Generator,
    Multicast,
    Pcap,
    Binaryfile,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Feed {
    pub source: SourceKind,
    /// generator: messages per second (0 = as fast as possible).
    #[serde(default = "d_rate")]
    pub rate: u64,
    /// generator: instruments.
    #[serde(default = "d_instruments")]
    pub instruments: u16,
    /// generator: seed.
    #[serde(default = "d_seed")]
    pub seed: u64,
    /// generator: stop after this many messages (0 = run until stopped).
    #[serde(default)]
    pub messages: u64,
    /// multicast: the exchange's group.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group: Option<SocketAddrV4>,
    /// multicast: interface to join on.
    #[serde(default = "d_loopback")]
    pub interface: Ipv4Addr,
    /// The exchange's MoldUDP64 session; without it the session is adopted after consistent
    /// traffic from one sender, never from one datagram.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub session: Option<String>,
    /// multicast: the exchange's feed B (same stream, another group); first copy wins.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group_b: Option<SocketAddrV4>,
    /// multicast: interface to join feed B on (default: `interface`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub interface_b: Option<Ipv4Addr>,
    /// multicast: source-specific join.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source_address: Option<Ipv4Addr>,
    /// multicast: SO_RCVBUF bytes.
    #[serde(default = "d_rcvbuf")]
    pub rcvbuf: usize,
    /// multicast: the exchange's re-request server.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rerequest: Option<SocketAddrV4>,
    /// multicast: re-request timeout.
    #[serde(default = "d_rerequest_timeout")]
    pub rerequest_timeout_ms: u64,
    /// pcap / binaryfile: the file.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<PathBuf>,
    /// pcap / binaryfile: "max", or a multiple of the recorded rate.
    #[serde(default = "d_speed")]
    pub speed: String,
    /// Session date of ITCH times (YYYY-MM-DD); default: pcap frame time, file name, today.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub date: Option<String>,
    /// pcap: keep only this destination group / port.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub filter_group: Option<Ipv4Addr>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub filter_port: Option<u16>,
    /// Input batches each shard's queue holds.
    #[serde(default = "d_queue")]
    pub queue_depth: usize,
    /// Core the feed handler's thread is pinned to; absent = not pinned.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub core: Option<usize>,
}

/// UDP GSO for a group's data datagrams.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Gso {
    /// On when the kernel takes `UDP_SEGMENT` (probed at start).
    #[default]
    Auto,
    On,
    Off,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Idle {
    Spin,
    Yield,
    Park,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Shard {
    /// Core the shard's thread is pinned to.
    pub core: usize,
    pub groups: Vec<String>,
    /// Core of the shard's retransmitter (re-request answers); absent = not pinned.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retransmit_core: Option<usize>,
    #[serde(default = "d_idle")]
    pub idle: Idle,
    /// The shard thread's scheduler slice in µs (EEVDF, Linux 6.12+): shorter than its
    /// neighbours' (0.75–3 ms) lets a woken shard preempt whatever runs on its core at once.
    /// 0 keeps the kernel's default.
    #[serde(default = "d_slice_us")]
    pub slice_us: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Content {
    All,
    Trades,
    Top,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Group {
    pub name: String,
    /// MoldUDP64 session, at most 10 characters.
    pub session: String,
    /// Instrument selection; with none of the three the group carries every instrument.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub symbols: Vec<String>,
    /// Inclusive symbol prefix ranges such as "A-M".
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub symbol_ranges: Vec<String>,
    /// "K/N": instruments whose id hashes to K modulo N.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub partition: Option<String>,
    #[serde(default = "d_content")]
    pub content: Content,
    pub feed_a: SocketAddrV4,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub feed_b: Option<SocketAddrV4>,
    pub interface: Ipv4Addr,
    /// Interface for feed B when it differs from `interface`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub interface_b: Option<Ipv4Addr>,
    #[serde(default = "d_ttl")]
    pub ttl: u32,
    #[serde(default)]
    pub multicast_loop: bool,
    /// Unicast destinations that get every datagram too.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub destinations: Vec<SocketAddrV4>,
    #[serde(default = "d_max_payload")]
    pub max_payload: usize,
    #[serde(default = "d_max_delay")]
    pub max_delay_us: u64,
    #[serde(default = "d_heartbeat")]
    pub heartbeat_ms: u64,
    /// The group's re-request server address.
    pub retransmit: SocketAddrV4,
    /// Most messages one request can draw.
    #[serde(default = "d_retransmit_cap")]
    pub retransmit_cap: u16,
    /// Requests per second allowed per source address.
    #[serde(default = "d_retransmit_rate")]
    pub retransmit_rate: u32,
    /// Source subnets allowed to request ("A.B.C.D/N"); default: loopback plus the subnets
    /// of the group's sending interfaces, resolved at start.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retransmit_allow: Option<Vec<String>>,
    /// UDP GSO for data datagrams: "auto" (probed), "on", "off".
    #[serde(default)]
    pub gso: Gso,
    /// Messages kept in memory for retransmission (older ones come from the journal).
    #[serde(default = "d_ring")]
    pub ring: usize,
    /// SO_SNDBUF bytes.
    #[serde(default = "d_sndbuf")]
    pub sndbuf: usize,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Fsync {
    /// Leave it to the kernel (survives a process crash, not a power loss).
    None,
    /// fsync at most every `fsync_interval_ms`.
    Interval,
    /// fsync after every flush, before the datagram is sent.
    Always,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Journal {
    #[serde(default = "d_journal_dir")]
    pub dir: PathBuf,
    #[serde(default = "d_fsync")]
    pub fsync: Fsync,
    #[serde(default = "d_fsync_interval")]
    pub fsync_interval_ms: u64,
}

impl Default for Journal {
    fn default() -> Self {
        Journal {
            dir: d_journal_dir(),
            fsync: d_fsync(),
            fsync_interval_ms: d_fsync_interval(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Metrics {
    /// Prometheus endpoint `ADDR:PORT`; absent = off.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub listen: Option<std::net::SocketAddr>,
}

/// How the TCP agent hands data to the kernel.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TcpIo {
    /// io_uring where the kernel allows it, else epoll (one log line).
    Auto,
    IoUring,
    Epoll,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TcpUser {
    /// At most 6 characters (SoupBinTCP's username field).
    pub name: String,
    /// At most 10 characters.
    pub password: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Tcp {
    /// `ADDR:PORT` of the one listener; the login's session picks the group.
    pub listen: std::net::SocketAddrV4,
    /// Client subnets allowed to connect.
    #[serde(default = "d_tcp_allow")]
    pub allow: Vec<String>,
    #[serde(default = "d_max_clients")]
    pub max_clients: usize,
    /// Server heartbeat after this long without sending to a client.
    #[serde(default = "d_heartbeat")]
    pub heartbeat_ms: u64,
    #[serde(default = "d_login_timeout")]
    pub login_timeout_ms: u64,
    /// A client silent this long (no heartbeat) is disconnected.
    #[serde(default = "d_idle_timeout")]
    pub idle_timeout_ms: u64,
    /// Messages a client may fall behind the live stream before it is served from the
    /// journal instead of the shared window.
    #[serde(default = "d_lag_limit")]
    pub lag_limit: u64,
    /// Send buffer of each client connection (bytes; the kernel doubles it). Fixed so that
    /// many clients cannot pin unbounded kernel memory; a client whose buffer is full falls
    /// behind and is served from the journal.
    #[serde(default = "d_tcp_sndbuf")]
    pub sndbuf: usize,
    /// Core the TCP agent is pinned to; absent = not pinned.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub core: Option<usize>,
    #[serde(default = "d_tcp_io")]
    pub io: TcpIo,
    /// Accepted logins; none = any username and password.
    #[serde(default, rename = "user", skip_serializing_if = "Vec::is_empty")]
    pub users: Vec<TcpUser>,
}

impl Tcp {
    /// Frames in each group's TCP window: clients within `lag_limit` are sent from it, and the
    /// writer can run `capacity - lag_limit - capacity / 4` ahead during a send before the
    /// frames could be overwritten (detected, never sent silently).
    pub fn window_frames(&self) -> usize {
        (4 * self.lag_limit as usize).next_power_of_two()
    }
}

impl Config {
    /// Parses and validates; the error is one line naming the key.
    pub fn parse(text: &str, origin: &str) -> Result<Config, String> {
        let cfg: Config = toml::from_str(text).map_err(|e| {
            let msg = e.message().lines().next().unwrap_or("invalid").to_string();
            match e.span() {
                Some(span) => {
                    let start = span.start.min(text.len());
                    let line_no = text[..start].matches('\n').count() + 1;
                    let line = text.lines().nth(line_no - 1).unwrap_or("").trim();
                    format!("{origin}:{line_no}: {msg} (at `{line}`)")
                }
                None => format!("{origin}: {msg}"),
            }
        })?;
        cfg.validate().map_err(|e| format!("{origin}: {e}"))?;
        Ok(cfg)
    }

    pub fn load(path: Option<&std::path::Path>) -> Result<Config, String> {
        match path {
            None => Config::parse(DEFAULT_TOML, "embedded default config"),
            Some(p) => {
                // A config is small: read at most 1 MiB (so `/dev/zero` or a wrong file ends
                // with an error, not with the host's memory).
                use std::io::Read;
                const MAX: u64 = 1 << 20;
                let at = |e: std::io::Error| format!("{}: {e}", p.display());
                let f = std::fs::File::open(p).map_err(at)?;
                if f.metadata().map_err(at)?.is_dir() {
                    return Err(format!(
                        "{}: is a directory, not a config file",
                        p.display()
                    ));
                }
                let mut bytes = Vec::new();
                f.take(MAX + 1).read_to_end(&mut bytes).map_err(at)?;
                if bytes.len() as u64 > MAX {
                    return Err(format!(
                        "{}: larger than 1 MiB; not a tickcast config",
                        p.display()
                    ));
                }
                let text = String::from_utf8(bytes).map_err(|_| {
                    format!("{}: not UTF-8 text; not a tickcast config", p.display())
                })?;
                Config::parse(&text, &p.display().to_string())
            }
        }
    }

    pub fn to_toml(&self) -> String {
        toml::to_string(self).unwrap_or_else(|e| format!("# cannot print config: {e}\n"))
    }

    /// The pipeline's threads this config pins, as (key, core, what runs there): every shard,
    /// and the feed handler when `[feed] core` is set.
    pub fn pinned_threads(&self) -> impl Iterator<Item = (String, usize, &'static str)> + '_ {
        let shards = self.shards.iter().enumerate();
        shards
            .map(|(i, s)| (format!("shard[{i}]"), s.core, "the shard"))
            .chain(
                self.feed
                    .core
                    .map(|c| ("feed".into(), c, "the feed handler")),
            )
    }
}

mod defaults;
use defaults::*;
mod validate;
pub use validate::{parse_partition, parse_range, parse_subnet, retransmit_subnets, warnings};

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn embedded_default_is_valid() {
        let c = Config::load(None).unwrap();
        assert!(c.groups.len() >= 2);
        assert!(c
            .groups
            .iter()
            .all(|g| g.feed_b.is_some() && g.multicast_loop));
        // Round trip through --print-config.
        assert_eq!(Config::parse(&c.to_toml(), "printed").unwrap(), c);
    }

    #[test]
    fn errors_name_the_key() {
        let bad_key = DEFAULT_TOML.replacen("[journal]", "[journal]\nfsinc = \"none\"", 1);
        let e = Config::parse(&bad_key, "t.toml").unwrap_err();
        assert!(e.contains("fsinc") && !e.contains('\n'), "{e}");
        let bad_val = DEFAULT_TOML.replacen("max_payload = 1472", "max_payload = 10", 1);
        let e = Config::parse(&bad_val, "t.toml").unwrap_err();
        assert!(e.contains("max_payload"), "{e}");
        let bad_session =
            DEFAULT_TOML.replacen("session = \"TCAST0001\"", "session = \"WAYTOOLONGNAME\"", 1);
        let e = Config::parse(&bad_session, "t.toml").unwrap_err();
        assert!(e.contains("session"), "{e}");
        let bad_addr =
            DEFAULT_TOML.replacen("feed_a = \"239.192.10.1:31001\"", "feed_a = \"nowhere\"", 1);
        let e = Config::parse(&bad_addr, "t.toml").unwrap_err();
        assert!(e.contains("feed_a") && !e.contains('\n'), "{e}");
    }

    #[test]
    fn subnets_and_partitions() {
        let s = parse_subnet("10.1.0.0/16").unwrap();
        assert!(s.contains(&Ipv4Addr::new(10, 1, 200, 3)));
        assert!(!s.contains(&Ipv4Addr::new(10, 2, 0, 1)));
        assert!(parse_subnet("0.0.0.0/0")
            .unwrap()
            .contains(&Ipv4Addr::new(1, 2, 3, 4)));
        assert!(parse_subnet("10.0.0.1")
            .unwrap()
            .contains(&Ipv4Addr::new(10, 0, 0, 1)));
        assert!(parse_subnet("10.0.0.0/33").is_err());
        assert_eq!(parse_partition("1/4"), Ok((1, 4)));
        assert!(parse_partition("4/4").is_err());
        assert!(parse_range("M-A").is_err());
    }
}
