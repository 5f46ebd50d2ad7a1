//! Helpers for tickcast's end-to-end tests: where the shared real data lives, writing pcaps of
//! MoldUDP64 datagrams, running tshark as an independent decoder (`tshark.rs`), and root checks.

use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::process::Command;

/// `../shared` relative to the workspace root (tests run with the crate dir as cwd).
pub fn shared_dir() -> PathBuf {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf();
    if let Some(d) = std::env::var_os("TICKCAST_SHARED") {
        return PathBuf::from(d);
    }
    root.parent().unwrap().join("shared")
}

pub fn data(rel: &str) -> PathBuf {
    shared_dir().join("data").join(rel)
}

/// A fresh scratch directory under the target dir, removed and recreated.
pub fn scratch(name: &str) -> PathBuf {
    static SWEEP: std::sync::Once = std::sync::Once::new();
    let root = Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .join("target")
        .join("test-scratch");
    SWEEP.call_once(|| remove_stale_scratch(&root));
    let d = root.join(format!("{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// Removes the scratch directories of test processes that have exited (each name ends in the
/// pid that made it). Journals of a few hundred MB per test otherwise piled up over repeated
/// runs: 37 GB on the development machine, until its disk was full.
fn remove_stale_scratch(root: &Path) {
    let Ok(entries) = std::fs::read_dir(root) else {
        return;
    };
    for e in entries.flatten() {
        let name = e.file_name();
        let pid = name
            .to_str()
            .and_then(|n| n.rsplit('-').next())
            .and_then(|p| p.parse::<u32>().ok());
        let Some(pid) = pid else {
            continue;
        };
        if pid != std::process::id() && !Path::new("/proc").join(pid.to_string()).exists() {
            let _ = std::fs::remove_dir_all(e.path());
        }
    }
}

/// Writes UDP datagrams (Ethernet/IPv4/UDP from 10.0.0.1:5000 to `group:port`) into a pcap.
pub fn write_pcap(path: &Path, group: Ipv4Addr, port: u16, datagrams: &[Vec<u8>]) {
    use pcap_file::pcap::{PcapHeader, PcapPacket, PcapWriter};
    let file = std::fs::File::create(path).unwrap();
    let mut w = PcapWriter::with_header(file, PcapHeader::default()).unwrap();
    let o = group.octets();
    let dst_mac = [0x01, 0x00, 0x5e, o[1] & 0x7f, o[2], o[3]];
    for (i, d) in datagrams.iter().enumerate() {
        let builder = etherparse::PacketBuilder::ethernet2([2, 0, 0, 0, 0, 1], dst_mac)
            .ipv4([10, 0, 0, 1], o, 16)
            .udp(5000, port);
        let mut frame = Vec::with_capacity(builder.size(d.len()));
        builder.write(&mut frame, d).unwrap();
        let ts = std::time::Duration::from_micros(1_692_711_000_000_000 + i as u64);
        w.write_packet(&PcapPacket::new(ts, frame.len() as u32, &frame))
            .unwrap();
    }
}

/// Whether this runs in CI (`CI=true`), where a missing tool or privilege fails a test
/// instead of skipping it.
pub fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true")
}

pub fn is_root() -> bool {
    nix_uid() == 0
}

fn nix_uid() -> u32 {
    // `id -u` avoids an unsafe libc call in test code.
    Command::new("id")
        .arg("-u")
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(u32::MAX)
}

/// The `tickcast` (and `tickcast-tap`) binaries of the profile these tests were built with.
/// `cargo test` does not build another package's binaries (the CLI has no integration tests),
/// so a binary left from an earlier build would be tested against today's sources: each test
/// process runs `cargo build --bins` once, before its first use (a no-op when up to date).
pub fn bin(name: &str) -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    let profile_dir = exe.parent().unwrap().parent().unwrap().to_path_buf();
    static BUILT: std::sync::Once = std::sync::Once::new();
    BUILT.call_once(|| {
        let release = profile_dir.file_name().is_some_and(|n| n == "release");
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let mut cmd = Command::new(cargo);
        cmd.args(["build", "--quiet", "--workspace", "--bins"]);
        if release {
            cmd.arg("--release");
        }
        assert!(
            cmd.status().expect("run cargo build").success(),
            "cargo build --bins failed"
        );
    });
    profile_dir.join(name)
}

/// The SDK's static library for C programs, built in a target directory of its own so that the
/// build cannot disturb the libraries the running test suite uses.
pub fn sdk_staticlib() -> PathBuf {
    static BUILT: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    BUILT
        .get_or_init(|| {
            let root = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
            let target = root.join("target").join("c-abi");
            let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
            let status = Command::new(cargo)
                .current_dir(root)
                .args([
                    "build",
                    "--quiet",
                    "-p",
                    "tickcast-sdk",
                    "--lib",
                    "--target-dir",
                ])
                .arg(&target)
                .status()
                .expect("run cargo build");
            assert!(status.success(), "building the SDK's static library failed");
            target.join("debug").join("libsubscriber_sdk.a")
        })
        .clone()
}

/// A UDP sender for multicast on loopback (interface 127.0.0.1, loop on).
pub fn loopback_sender() -> std::net::UdpSocket {
    let s = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::DGRAM, None).unwrap();
    s.set_multicast_if_v4(&Ipv4Addr::LOCALHOST).unwrap();
    s.set_multicast_loop_v4(true).unwrap();
    s.bind(&std::net::SocketAddr::from(([127, 0, 0, 1], 0)).into())
        .unwrap();
    s.into()
}

/// A per-process, per-test base port so tests can run in parallel (20 ports from it are free).
/// All below 32 768, where the kernel's ephemeral range starts (`ip_local_port_range`): a test
/// port taken from the whole range was once held by another test's outgoing connection, and
/// its distributor could not bind (`Address already in use`).
pub fn ports(test: u16) -> u16 {
    20_000 + ((std::process::id() % 31) as u16 * 400 + test * 20) % 12_400
}

/// One `[[group]]` of a test config.
pub struct TestGroup {
    pub name: String,
    pub session: String,
    pub feed_a: String,
    pub feed_b: Option<String>,
    pub retransmit: String,
    pub extra: String,
}

impl TestGroup {
    /// Group `i` of a test on `base` port: feed A 239.200.T.i, feed B 239.201.T.i.
    pub fn new(test: u8, i: u8, base: u16, extra: &str) -> TestGroup {
        TestGroup {
            name: format!("g{i}"),
            session: format!("T{test:02}G{i}"),
            feed_a: format!("239.200.{test}.{i}:{}", base + u16::from(i)),
            feed_b: Some(format!("239.201.{test}.{i}:{}", base + u16::from(i))),
            retransmit: format!("127.0.0.1:{}", base + 10 + u16::from(i)),
            extra: extra.to_string(),
        }
    }
}

/// A config TOML: `feed` is the body of the [feed] table; one shard on core 0 holds all groups.
pub fn config(feed: &str, groups: &[TestGroup], journal: &Path) -> String {
    let names: Vec<String> = groups.iter().map(|g| format!("{:?}", g.name)).collect();
    let mut s = format!(
        "[feed]\n{feed}\n\n[[shard]]\ncore = 0\ngroups = [{}]\nidle = \"park\"\n\n",
        names.join(", ")
    );
    for g in groups {
        s += &format!(
            "[[group]]\nname = {:?}\nsession = {:?}\nfeed_a = {:?}\n{}interface = \"127.0.0.1\"\nmulticast_loop = true\nretransmit = {:?}\n{}\n\n",
            g.name,
            g.session,
            g.feed_a,
            g.feed_b.as_ref().map(|b| format!("feed_b = {b:?}\n")).unwrap_or_default(),
            g.retransmit,
            g.extra
        );
    }
    s += &format!("[journal]\ndir = {:?}\n", journal.display().to_string());
    s
}

/// Runs `tickcast` to completion with a time limit; returns (exit code, stdout, stderr).
pub fn tickcast(args: &[&str], limit: std::time::Duration) -> (i32, String, String) {
    let mut child = Command::new(bin("tickcast"))
        .args(args)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + limit;
    loop {
        if let Ok(Some(_)) = child.try_wait() {
            break;
        }
        if std::time::Instant::now() > deadline {
            let _ = child.kill();
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let out = child.wait_with_output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).to_string(),
        String::from_utf8_lossy(&out.stderr).to_string(),
    )
}

/// Sends a signal to a process by pid.
pub fn signal(pid: u32, sig: &str) {
    let _ = Command::new("kill")
        .arg(format!("-{sig}"))
        .arg(pid.to_string())
        .status();
}
pub mod exchange;
mod tshark;
pub use tshark::*;

/// A subscriber handler that keeps the sequence numbers it was given, the gaps, and the end.
#[derive(Default)]
pub struct Collect {
    pub seqs: Vec<u64>,
    pub gaps: Vec<(u64, u64)>,
    pub ended: Option<u64>,
}

impl subscriber_sdk::Handler for Collect {
    fn on_message(&mut self, ctx: &subscriber_sdk::Context<'_>, _: &protocol::Message<&[u8]>) {
        self.seqs.push(ctx.seq);
    }
    fn on_gap(&mut self, _: usize, _: &str, from: u64, to: u64) {
        self.gaps.push((from, to));
    }
    fn on_end_of_session(&mut self, _: usize, _: &str, next: u64) {
        self.ended = Some(next);
    }
}
pub mod netns;

/// Starts `tickcast ARGS` with stdout and stderr captured.
pub fn spawn_tickcast(args: &[&str]) -> std::process::Child {
    Command::new(bin("tickcast"))
        .args(args)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("spawn tickcast")
}

/// SIGTERMs a running `tickcast run`, checks it exits 0, and returns its JSON summary line.
pub fn terminate(child: std::process::Child) -> serde_json::Value {
    signal(child.id(), "TERM");
    summary(child)
}

/// Waits for `tickcast run` to exit, checks it exited 0, and returns its JSON summary line.
pub fn summary(child: std::process::Child) -> serde_json::Value {
    let out = child.wait_with_output().expect("wait for tickcast");
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    serde_json::from_str(text.lines().last().expect("a summary line")).expect("JSON summary")
}

/// `tickcast run --quiet --config CFG --replay FILE` to the end of the file: checks it exited 0
/// and returns its JSON summary line.
pub fn replay(cfg: &Path, file: &Path) -> serde_json::Value {
    let args = [
        "run",
        "--quiet",
        "--config",
        cfg.to_str().unwrap(),
        "--replay",
        file.to_str().unwrap(),
    ];
    let (code, out, err) = tickcast(&args, std::time::Duration::from_secs(60));
    assert_eq!(code, 0, "{err}");
    serde_json::from_str(out.lines().last().expect("a summary line")).expect("JSON summary")
}

/// `tickcast run --config CFG --replay FILE --linger 30`: replays, then keeps answering
/// re-requests until `terminate`.
pub fn replay_lingering(cfg: &Path, file: &Path) -> std::process::Child {
    let (cfg, file) = (cfg.to_str().unwrap(), file.to_str().unwrap());
    spawn_tickcast(&[
        "run", "--quiet", "--config", cfg, "--replay", file, "--linger", "30",
    ])
}

/// `tickcast run --config CFG --linger 30`: the config's own feed, then re-requests answered
/// until `terminate`.
pub fn run_lingering(cfg: &Path) -> std::process::Child {
    spawn_tickcast(&[
        "run",
        "--quiet",
        "--config",
        cfg.to_str().unwrap(),
        "--linger",
        "30",
    ])
}

/// `tickcast-tap` on a test group's feeds A and B with its re-request server, plus `extra`.
pub fn spawn_tap(g: &TestGroup, extra: &[&str]) -> std::process::Child {
    let b = g.feed_b.as_deref().unwrap_or(&g.feed_a);
    Command::new(bin("tickcast-tap"))
        .args([
            "--group",
            &g.feed_a,
            "--group-b",
            b,
            "--retransmit",
            &g.retransmit,
        ])
        .args(extra)
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("spawn tickcast-tap")
}

/// Builds the SDK's C example `examples/c/NAME.c` against its static library; returns the
/// program.
pub fn build_c_example(name: &str) -> PathBuf {
    let lib = sdk_staticlib();
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
    let exe = scratch(&format!("sdk-c-{name}")).join(name);
    let cc = Command::new("cc")
        .args(["-O2", "-Wall", "-Werror", "-I"])
        .arg(root.join("subscriber-sdk/include"))
        .arg(root.join(format!("subscriber-sdk/examples/c/{name}.c")))
        .arg(&lib)
        .args(["-lpthread", "-ldl", "-lm", "-o"])
        .arg(&exe)
        .output()
        .expect("run cc");
    assert!(
        cc.status.success(),
        "cc: {}",
        String::from_utf8_lossy(&cc.stderr)
    );
    exe
}
