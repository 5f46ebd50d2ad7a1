//! tshark as an independent decoder of what tickcast wrote or sent: fields and problems of a
//! pcap, and live captures on `lo` (root).

use crate::{in_ci, is_root};
use std::path::{Path, PathBuf};
use std::process::Command;

/// Whether tshark is on PATH (CI installs it).
pub fn have_tshark() -> bool {
    Command::new("tshark").arg("-v").output().is_ok()
}

/// Runs tshark over a capture with MoldUDP64 decoding on `port`, `args` added (output format,
/// fields, scripts) and the display `filter` if any; returns its stdout (a failure panics with
/// tshark's stderr).
pub fn tshark_output(file: &Path, port: u16, args: &[String], filter: Option<&str>) -> Vec<u8> {
    let mut cmd = Command::new("tshark");
    cmd.arg("-r").arg(file);
    cmd.args(["-d", &format!("udp.port=={port},moldudp64")]);
    cmd.args(args);
    if let Some(f) = filter {
        cmd.args(["-Y", f]);
    }
    let out = cmd.output().expect("run tshark");
    assert!(
        out.status.success(),
        "tshark failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

/// The `fields` of every frame (`-T fields`), one line per frame.
pub fn tshark_fields(file: &Path, port: u16, fields: &[&str], filter: Option<&str>) -> Vec<String> {
    let mut args = vec!["-T".to_string(), "fields".to_string()];
    for f in fields {
        args.extend(["-e".to_string(), f.to_string()]);
    }
    String::from_utf8(tshark_output(file, port, &args, filter))
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

/// A tshark capture on `lo`, for checking what the distributor really sent.
pub struct Capture {
    child: std::process::Child,
    pub path: PathBuf,
}

impl Capture {
    /// Starts capturing; `None` (after saying so) when not root or tshark cannot capture.
    pub fn start(path: &Path, filter: &str) -> Option<Capture> {
        use std::io::BufRead;
        if !is_root() {
            assert!(
                !in_ci(),
                "capturing on lo needs root, and CI runs as root: failing instead of skipping"
            );
            println!("SKIPPED: capturing on lo needs root (CI runs as root)");
            return None;
        }
        let mut child = Command::new("tshark")
            .args(["-i", "lo", "-q", "-f", filter, "-w"])
            .arg(path)
            .stderr(std::process::Stdio::piped())
            .stdout(std::process::Stdio::null())
            .spawn()
            .ok()?;
        let stderr = child.stderr.take()?;
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut r = std::io::BufReader::new(stderr);
            let mut line = String::new();
            let mut told = false;
            while r.read_line(&mut line).unwrap_or(0) > 0 {
                if !told && line.contains("Capturing on") {
                    let _ = tx.send(());
                    told = true;
                }
                line.clear();
            }
        });
        rx.recv_timeout(std::time::Duration::from_secs(20)).ok()?;
        Some(Capture {
            child,
            path: path.to_path_buf(),
        })
    }

    /// Stops the capture (SIGINT, so the file is complete).
    pub fn stop(mut self) -> PathBuf {
        std::thread::sleep(std::time::Duration::from_millis(300));
        let _ = Command::new("kill")
            .arg("-INT")
            .arg(self.child.id().to_string())
            .status();
        let _ = self.child.wait();
        self.path.clone()
    }
}

/// One MoldUDP64 packet as tshark decoded it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SeenPacket {
    pub dst: String,
    pub session: String,
    pub sequence: u64,
    pub count: u32,
}

/// Every MoldUDP64 packet in a capture to the given UDP ports.
pub fn tshark_packets(file: &Path, ports: &[u16]) -> Vec<SeenPacket> {
    let mut cmd = Command::new("tshark");
    cmd.arg("-r").arg(file);
    for p in ports {
        cmd.args(["-d", &format!("udp.port=={p},moldudp64")]);
    }
    cmd.args([
        "-T",
        "fields",
        "-e",
        "ip.dst",
        "-e",
        "udp.dstport",
        "-e",
        "moldudp64.session",
        "-e",
        "moldudp64.sequence",
        "-e",
        "moldudp64.count",
    ]);
    let out = cmd.output().expect("tshark");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.split('\t').collect();
            if f.len() < 5 || f[2].is_empty() {
                return None;
            }
            Some(SeenPacket {
                dst: format!("{}:{}", f[0], f[1]),
                session: f[2].trim().to_string(),
                sequence: f[3].parse().ok()?,
                count: f[4].parse().ok()?,
            })
        })
        .collect()
}
