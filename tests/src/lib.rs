//! Helpers for tickcast's end-to-end tests: where the shared real data lives, writing pcaps of
//! MoldUDP64 datagrams, running tshark as an independent decoder, and root checks.

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
    let d = Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .join("target")
        .join("test-scratch")
        .join(format!("{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
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

/// Whether tshark is on PATH (CI installs it).
pub fn have_tshark() -> bool {
    Command::new("tshark").arg("-v").output().is_ok()
}

/// Runs tshark over a capture with MoldUDP64 decoding on `port`; returns stdout lines.
pub fn tshark_fields(file: &Path, port: u16, fields: &[&str], filter: Option<&str>) -> Vec<String> {
    let mut cmd = Command::new("tshark");
    cmd.arg("-r").arg(file);
    cmd.args(["-d", &format!("udp.port=={port},moldudp64"), "-T", "fields"]);
    for f in fields {
        cmd.args(["-e", f]);
    }
    if let Some(f) = filter {
        cmd.args(["-Y", f]);
    }
    let out = cmd.output().expect("run tshark");
    assert!(
        out.status.success(),
        "tshark failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(str::to_string)
        .collect()
}

/// Frames tshark flags as malformed or with expert info of warning level or above.
pub fn tshark_problems(file: &Path, port: u16) -> Vec<String> {
    tshark_fields(
        file,
        port,
        &["frame.number", "_ws.expert.message"],
        Some("_ws.malformed || _ws.expert.severity >= 6291456"),
    )
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

/// The `tickcast` (and `tickcast-tap`) binaries of the profile these tests were built with,
/// built on first use so that `cargo test` alone is enough.
pub fn bin(name: &str) -> PathBuf {
    static BUILT: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    let dir = BUILT.get_or_init(|| {
        let exe = std::env::current_exe().unwrap();
        let profile_dir = exe.parent().unwrap().parent().unwrap().to_path_buf();
        let release = profile_dir.file_name().is_some_and(|n| n == "release");
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let mut cmd = Command::new(cargo);
        cmd.args(["build", "--quiet", "--bins", "--workspace"]);
        if release {
            cmd.arg("--release");
        }
        let status = cmd.status().expect("run cargo build");
        assert!(status.success(), "cargo build of the binaries failed");
        profile_dir
    });
    dir.join(name)
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
