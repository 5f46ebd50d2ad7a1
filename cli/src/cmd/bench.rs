//! `tickcast bench [--seconds N] [--groups G] [--subscribers S] [--max-payload BYTES] [--rate MSGS/S] [--gro] [--idle park|yield|spin] [--slice-us US] [--tcp-clients N [--tcp-stalled K]] [--json]`

use crate::bench::{self, BenchConfig};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Seconds per phase (three phases).
    #[arg(long, default_value_t = 10.0, value_parser = crate::args::positive_seconds)]
    pub seconds: f64,
    /// Multicast groups (instruments are split across them).
    #[arg(long, default_value_t = 4)]
    pub groups: usize,
    /// Subscriber SDK instances, each on its own thread, each joined to every group.
    #[arg(long, default_value_t = 4)]
    pub subscribers: usize,
    /// UDP payload cap of a datagram.
    #[arg(long, default_value_t = 1472)]
    pub max_payload: usize,
    /// Distributor shards (pinned to cores 0..N).
    #[arg(long, default_value_t = 1)]
    pub shards: usize,
    /// Source messages generated once and replayed in a loop.
    #[arg(long, default_value_t = 2_000_000)]
    pub feed_messages: usize,
    /// Directory for the tickcast phase's journal (default: the system temp directory).
    #[arg(long)]
    pub journal_dir: Option<std::path::PathBuf>,
    /// Offer this many source messages per second (open loop) instead of running flat out:
    /// latency at a realistic load rather than at saturation.
    #[arg(long, value_parser = crate::args::rate)]
    pub rate: Option<f64>,
    /// Subscribers receive with UDP_GRO, the SDK's default (a GSO send arrives as one buffer,
    /// split in the SDK). Without it they receive datagram by datagram, like a MoldUDP64 client
    /// without UDP_GRO: the send path, not the receivers' coalescing, is then what is compared.
    #[arg(long)]
    pub gro: bool,
    /// The shards' idle strategy: park (default), yield, or spin (a pinned, busy core each).
    #[arg(long, default_value = "park", value_parser = idle)]
    pub idle: distributor::config::Idle,
    /// The shard threads' scheduler slice in µs (`slice_us`; 0 = the kernel's default).
    #[arg(long, default_value_t = 100, value_parser = clap::value_parser!(u64).range(0..=100_000))]
    pub slice_us: u64,
    /// Pin the tickcast phases' feed handler to this core (`[feed] core`; shard s runs on core
    /// s). Without it the scheduler places the feed, and on a host whose cores pass cache
    /// lines slowly the figures then depend on where it lands.
    #[arg(long)]
    pub feed_core: Option<usize>,
    /// Also measure the SoupBinTCP fan-out to this many clients: phases `tcp` (io_uring),
    /// `tcp_epoll` and `tcp_naive` (one send per message per client).
    #[arg(long, default_value_t = 0)]
    pub tcp_clients: usize,
    /// With --tcp-clients: one more io_uring phase with this many clients that never read.
    #[arg(long, default_value_t = 0, requires = "tcp_clients")]
    pub tcp_stalled: usize,
    /// One JSON object instead of the table.
    #[arg(long)]
    pub json: bool,
}

fn idle(s: &str) -> Result<distributor::config::Idle, String> {
    use distributor::config::Idle;
    match s {
        "park" => Ok(Idle::Park),
        "yield" => Ok(Idle::Yield),
        "spin" => Ok(Idle::Spin),
        _ => Err(format!("{s:?}: park, yield or spin")),
    }
}

pub fn run(args: Args) -> anyhow::Result<i32> {
    let cfg = BenchConfig {
        seconds: args.seconds.clamp(0.1, 3600.0),
        groups: args.groups,
        subscribers: args.subscribers,
        max_payload: args.max_payload,
        shards: args.shards.max(1),
        feed_messages: args.feed_messages.max(1000),
        journal_dir: args.journal_dir.unwrap_or_else(std::env::temp_dir),
        rate: args.rate,
        gro: args.gro,
        idle: args.idle,
        slice_us: args.slice_us,
        feed_core: args.feed_core,
        tcp_clients: args.tcp_clients,
        tcp_stalled: args.tcp_stalled,
    };
    match bench::run(&cfg) {
        Ok(r) => {
            if args.json {
                use std::io::Write;
                let _ = writeln!(std::io::stdout(), "{}", serde_json::to_string(&r)?);
            } else {
                print!("{}", bench::table(&r));
            }
            Ok(0)
        }
        Err(e) => {
            eprintln!("tickcast bench: {e}");
            Ok(2)
        }
    }
}
