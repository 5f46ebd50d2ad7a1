//! The command line as a careless operator meets it: input from pipes and FIFOs, every pcap
//! link type Linux tools write, files with nothing readable, signals in every mode, durations
//! that are not durations, a closed stdout, and errors that name what failed.

use std::io::Write;
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};
use tickcast_tests::*;

const SNIPPET: &str = "itch50/nasdaq-20191230-0930-snippet.itch50";

fn tickcast_cmd() -> Command {
    Command::new(bin("tickcast"))
}

/// MoldUDP64 packets of the snippet (sequence from 1).
fn snippet_packets() -> Vec<Vec<u8>> {
    tickcast_tests::exchange::packets(&protocol::Session::new("HARDEN").unwrap())
}

/// One IPv4 or IPv6 UDP datagram carrying `payload`, without a link header.
fn ip_udp(payload: &[u8], v6: bool) -> Vec<u8> {
    let b = if v6 {
        etherparse::PacketBuilder::ipv6(
            [0xfe, 0x80, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1],
            [0xff, 0x02, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1],
            16,
        )
        .udp(5000, 26477)
    } else {
        etherparse::PacketBuilder::ipv4([10, 0, 0, 1], [233, 54, 12, 111], 16).udp(5000, 26477)
    };
    let mut v = Vec::with_capacity(b.size(payload.len()));
    b.write(&mut v, payload).unwrap();
    v
}

/// A pcap of `link` type whose frames are `frame(datagram)`.
fn pcap_with(path: &Path, link: u32, frames: impl Iterator<Item = Vec<u8>>) {
    use pcap_file::pcap::{PcapHeader, PcapPacket, PcapWriter};
    let header = PcapHeader {
        datalink: pcap_file::DataLink::from(link),
        ..Default::default()
    };
    let mut w = PcapWriter::with_header(std::fs::File::create(path).unwrap(), header).unwrap();
    for (i, f) in frames.enumerate() {
        let ts = Duration::from_micros(1_577_716_200_000_000 + i as u64 * 1000);
        w.write_packet(&PcapPacket::new(ts, f.len() as u32, &f))
            .unwrap();
    }
}

fn decode_stats(file: &Path) -> (i32, serde_json::Value, String) {
    let (code, out, err) = tickcast(
        &[
            "decode",
            file.to_str().unwrap(),
            "--stats",
            "--date",
            "2019-12-30",
        ],
        Duration::from_secs(60),
    );
    let v = out
        .lines()
        .last()
        .and_then(|l| serde_json::from_str(l).ok())
        .unwrap_or_default();
    (code, v, err)
}

/// Builds a link-layer frame around a UDP payload.
type Framer = Box<dyn Fn(&[u8]) -> Vec<u8>>;

#[test]
fn every_linux_pcap_link_type_and_ipv6_decode() {
    let dir = scratch("linktypes");
    let packets = snippet_packets();
    let sll2 = |ip: Vec<u8>| {
        let mut f = vec![
            0x08, 0x00, 0, 0, 0, 0, 0, 1, 0, 1, 0, 6, 2, 0, 0, 0, 0, 0, 0, 0,
        ];
        f.extend_from_slice(&ip);
        f
    };
    let null = |ip: Vec<u8>| {
        let mut f = 2u32.to_ne_bytes().to_vec();
        f.extend_from_slice(&ip);
        f
    };
    let lo = |ip: Vec<u8>| {
        let mut f = 2u32.to_be_bytes().to_vec();
        f.extend_from_slice(&ip);
        f
    };
    let cases: Vec<(&str, u32, Framer)> = vec![
        ("sll2", 276, Box::new(move |d| sll2(ip_udp(d, false)))),
        ("null", 0, Box::new(move |d| null(ip_udp(d, false)))),
        ("loop", 108, Box::new(move |d| lo(ip_udp(d, false)))),
        ("raw", 101, Box::new(|d| ip_udp(d, false))),
        ("raw-ipv6", 101, Box::new(|d| ip_udp(d, true))),
    ];
    for (name, link, frame) in cases {
        let f = dir.join(format!("{name}.pcap"));
        pcap_with(&f, link, packets.iter().map(|d| frame(d)));
        let (code, v, err) = decode_stats(&f);
        assert_eq!(code, 0, "{name}: {err}");
        assert_eq!(v["messages"], 1000, "{name}: {v}");
        assert_eq!(v["gaps"], 0, "{name}: {v}");
    }
    // A link type tickcast cannot read: an error naming it, not exit 0 with nothing.
    for link in [105u32, 147] {
        let f = dir.join(format!("link{link}.pcap"));
        pcap_with(&f, link, packets.iter().take(3).cloned());
        let (code, _, err) = decode_stats(&f);
        assert_ne!(code, 0);
        assert!(err.contains(&format!("link type {link}")), "{err}");
    }
}

#[test]
fn input_without_a_readable_frame_is_an_error() {
    let dir = scratch("unreadable");
    // No frame at all; only non-UDP frames; random bytes; the zero-length-prefix file.
    let empty = dir.join("empty.pcap");
    pcap_with(&empty, 1, std::iter::empty());
    let tcp_only = dir.join("tcp.pcap");
    pcap_with(
        &tcp_only,
        101,
        (0..3).map(|_| {
            let b =
                etherparse::PacketBuilder::ipv4([10, 0, 0, 1], [10, 0, 0, 2], 16).tcp(1, 2, 3, 4);
            let mut v = Vec::new();
            b.write(&mut v, b"x").unwrap();
            v
        }),
    );
    let random = dir.join("random.bin");
    std::fs::write(
        &random,
        (0..4096u32)
            .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
            .collect::<Vec<_>>(),
    )
    .unwrap();
    let ritch = data("itch50/ritch-artificial-zero-length-prefixes.itch50");
    for f in [&empty, &tcp_only, &random, &ritch] {
        let (code, _, err) = decode_stats(f);
        assert_ne!(code, 0, "{}: {err}", f.display());
        assert!(err.contains(f.to_str().unwrap()), "names the file: {err}");
        // `run --replay` says the same, and fails too.
        let (code, _, err) = tickcast(
            &["run", "--quiet", "--replay", f.to_str().unwrap()],
            Duration::from_secs(60),
        );
        assert_ne!(code, 0, "run --replay {}: {err}", f.display());
    }
}

#[test]
fn pipes_and_fifos_are_read_once() {
    let snippet = data(SNIPPET);
    // decode /dev/stdin from a pipe.
    let mut child = tickcast_cmd()
        .args(["decode", "/dev/stdin", "--stats"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let bytes = std::fs::read(&snippet).unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let writer = std::thread::spawn(move || {
        stdin.write_all(&bytes).unwrap();
    });
    let out = child.wait_with_output().unwrap();
    writer.join().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_str(text.lines().last().unwrap()).unwrap();
    assert_eq!(v["messages"], 1000);
    // A FIFO whose writer has finished: read to its end, no hang.
    let dir = scratch("fifo");
    let fifo = dir.join("feed.fifo");
    let _ = std::fs::remove_file(&fifo);
    assert!(Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .unwrap()
        .success());
    let (f2, s2) = (fifo.clone(), snippet.clone());
    let writer = std::thread::spawn(move || {
        let mut w = std::fs::OpenOptions::new().write(true).open(&f2).unwrap();
        w.write_all(&std::fs::read(s2).unwrap()).unwrap();
    });
    let (code, out, err) = tickcast(
        &["decode", fifo.to_str().unwrap(), "--stats"],
        Duration::from_secs(30),
    );
    writer.join().unwrap();
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("\"messages\":1000"), "{out}");
}

fn wait_exit(child: &mut std::process::Child, limit: Duration) -> Option<std::process::ExitStatus> {
    let deadline = Instant::now() + limit;
    while Instant::now() < deadline {
        if let Some(s) = child.try_wait().unwrap() {
            return Some(s);
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let _ = child.kill();
    None
}

/// A pcap of the snippet spread over 100 s of capture time.
fn slow_pcap(dir: &Path) -> PathBuf {
    use pcap_file::pcap::{PcapHeader, PcapPacket, PcapWriter};
    let f = dir.join("slow.pcap");
    let mut w =
        PcapWriter::with_header(std::fs::File::create(&f).unwrap(), PcapHeader::default()).unwrap();
    for (i, d) in snippet_packets().iter().enumerate() {
        let b = etherparse::PacketBuilder::ethernet2([2, 0, 0, 0, 0, 1], [1, 0, 0x5e, 0, 0, 1])
            .ipv4([10, 0, 0, 1], [239, 0, 0, 1], 16)
            .udp(5000, 26477);
        let mut frame = Vec::new();
        b.write(&mut frame, d).unwrap();
        let ts = Duration::from_secs(1_577_716_200 + i as u64);
        w.write_packet(&PcapPacket::new(ts, frame.len() as u32, &frame))
            .unwrap();
    }
    f
}

#[test]
fn signals_stop_every_mode_promptly_with_a_summary() {
    let dir = scratch("signals");
    let pcap = slow_pcap(&dir);
    let journal = dir.join("j");
    let cfg = dir.join("t.toml");
    let base = ports(14);
    let g = TestGroup::new(14, 0, base, "");
    std::fs::write(
        &cfg,
        config(
            "source = \"generator\"\nrate = 1000",
            std::slice::from_ref(&g),
            &journal,
        ),
    )
    .unwrap();
    let run = ["run", "--quiet", "--config", cfg.to_str().unwrap()];
    let replay = |speed| {
        let mut v = run.to_vec();
        v.extend(["--replay", pcap.to_str().unwrap(), "--speed", speed]);
        v
    };
    // A paced replay (two speeds) and the live generator.
    let modes = [
        ("INT", replay("1")),
        ("TERM", replay("0.001")),
        ("HUP", run.to_vec()),
    ];
    for (sig, args) in modes {
        let mut child = tickcast_cmd()
            .args(&args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        std::thread::sleep(Duration::from_millis(700));
        let t = Instant::now();
        signal(child.id(), sig);
        let status = wait_exit(&mut child, Duration::from_secs(5));
        assert!(status.is_some(), "SIG{sig} did not stop {args:?}");
        assert!(
            t.elapsed() < Duration::from_secs(3),
            "SIG{sig}: {:?}",
            t.elapsed()
        );
        let out = child.wait_with_output().unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(
            text.lines()
                .last()
                .is_some_and(|l| l.contains("\"groups\"")),
            "SIG{sig}: summary: {text}"
        );
    }
}

#[test]
fn a_closed_stdout_is_not_a_panic() {
    let mut child = tickcast_cmd()
        .args(["run", "--quiet"])
        .current_dir(scratch("closed-stdout"))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stdout.take()); // `| true`: the reader is gone
    std::thread::sleep(Duration::from_millis(700));
    signal(child.id(), "INT");
    let status = wait_exit(&mut child, Duration::from_secs(5)).expect("stopped");
    let out = child.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!err.contains("panicked"), "{err}");
    assert_eq!(status.code(), Some(0), "{err}");
}

#[test]
fn durations_and_addresses_that_are_not_are_refused() {
    let cases: Vec<Vec<&str>> = vec![
        vec!["run", "--linger", "nan"],
        vec!["run", "--linger", "-1"],
        vec!["run", "--speed", "1e-300"],
        vec!["bench", "--seconds", "nan"],
        vec!["bench", "--seconds", "0"],
        vec!["bench", "--rate", "0"],
        vec!["bench", "--rate", "nan"],
    ];
    for args in cases {
        let (code, _, err) = tickcast(&args, Duration::from_secs(30));
        assert_eq!(code, 2, "{args:?}: {err}");
        assert!(!err.contains("panicked"), "{err}");
    }
    let tap_cases: Vec<Vec<&str>> = vec![
        vec!["--group", "239.1.1.1:5000", "--duration", "inf"],
        vec!["--group", "239.1.1.1:5000", "--duration", "nan"],
        vec!["--group", "239.1.1.1:5000", "--duration", "-1"],
        vec!["--group", "x:0"],
        vec!["--group", "239.1.1.1:0"],
        vec!["--group", "0.0.0.0:5000"],
        vec!["--group", "255.255.255.255:5000"],
    ];
    for args in tap_cases {
        let out = Command::new(bin("tickcast-tap"))
            .args(&args)
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
        assert!(!err.contains("panicked"), "{err}");
    }
}

/// Cores that cannot be had (past the kernel's 1024-CPU set, or absent) are said and the
/// threads run unpinned: a shard on core 5000 used to abort the process inside core_affinity.
#[test]
fn cores_that_cannot_be_had_are_said_and_run_unpinned() {
    let dir = scratch("cores");
    let base = ports(16);
    let g = TestGroup::new(16, 0, base, "");
    let text = config(
        "source = \"generator\"\nrate = 0\nmessages = 5000\ncore = 4096",
        std::slice::from_ref(&g),
        &dir.join("j"),
    )
    .replacen("core = 0\n", "core = 5000\n", 1);
    let cfg = dir.join("cores.toml");
    std::fs::write(&cfg, text).unwrap();
    let (code, out, err) = tickcast(
        &["run", "--quiet", "--config", cfg.to_str().unwrap()],
        Duration::from_secs(60),
    );
    assert_eq!(code, 0, "{err}");
    assert!(
        err.contains("could not pin the shard") && err.contains("5000"),
        "{err}"
    );
    assert!(
        err.contains("could not pin the feed handler") && err.contains("4096"),
        "{err}"
    );
    assert!(out.contains("\"groups\""), "summary: {out}");
}

#[test]
fn errors_name_what_failed() {
    let dir = scratch("errors");
    // A journal directory that cannot be made, and one that is a file.
    let file = dir.join("not-a-dir");
    std::fs::write(&file, b"x").unwrap();
    for (jdir, expect) in [
        (
            PathBuf::from("/proc/tickcast-journal"),
            "/proc/tickcast-journal",
        ),
        (file.clone(), "is not a directory"),
    ] {
        let cfg = dir.join("j.toml");
        let text = distributor::config::DEFAULT_TOML
            .replacen(
                "dir = \"tickcast-journal\"",
                &format!("dir = {:?}", jdir.display().to_string()),
                1,
            )
            .replacen("[metrics]\nlisten = \"127.0.0.1:9464\"", "", 1);
        std::fs::write(&cfg, text).unwrap();
        let (code, _, err) = tickcast(
            &["run", "--quiet", "--config", cfg.to_str().unwrap()],
            Duration::from_secs(30),
        );
        assert_eq!(code, 2, "{err}");
        assert!(err.contains(expect) && err.contains("journal"), "{err}");
    }
    // decode of a directory: said once.
    let (code, _, err) = tickcast(&["decode", "/tmp"], Duration::from_secs(30));
    assert_ne!(code, 0);
    assert_eq!(err.matches("is a directory").count(), 1, "{err}");
    // A truncated pcap.
    let good = dir.join("good.pcap");
    write_pcap(
        &good,
        Ipv4Addr::new(239, 0, 0, 1),
        26477,
        &snippet_packets(),
    );
    let bytes = std::fs::read(&good).unwrap();
    let cut = dir.join("cut.pcap");
    std::fs::write(&cut, &bytes[..bytes.len() - 700]).unwrap();
    let (code, _, err) = decode_stats(&cut);
    assert_ne!(code, 0);
    assert!(
        err.contains("truncated or corrupt") && err.contains("cut.pcap"),
        "{err}"
    );
    // A gzip stream that does not inflate (cut short).
    let gz = dir.join("bad.itch50.gz");
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    enc.write_all(&std::fs::read(data(SNIPPET)).unwrap())
        .unwrap();
    let full = enc.finish().unwrap();
    std::fs::write(&gz, &full[..full.len() / 2]).unwrap();
    let (code, _, err) = decode_stats(&gz);
    assert_ne!(code, 0);
    assert!(
        err.contains("reading failed") && !err.contains("zero length prefix"),
        "{err}"
    );
    // The tap names the interface it could not join on.
    let out = Command::new(bin("tickcast-tap"))
        .args([
            "--group",
            "239.1.2.3:5000",
            "--interface",
            "8.8.8.8",
            "--duration",
            "1",
        ])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_ne!(out.status.code(), Some(0));
    assert!(err.contains("8.8.8.8"), "{err}");
}

#[test]
fn a_journal_has_one_writer() {
    let dir = scratch("one-writer");
    let journal = dir.join("j");
    let feed = "source = \"generator\"\nrate = 1000";
    let (a, b) = (ports(6), ports(7));
    let cfg_a = dir.join("a.toml");
    let cfg_b = dir.join("b.toml");
    // Same sessions, same journal directory, different ports.
    let ga = TestGroup::new(6, 0, a, "");
    let mut gb = TestGroup::new(7, 0, b, "");
    gb.session = ga.session.clone();
    std::fs::write(&cfg_a, config(feed, std::slice::from_ref(&ga), &journal)).unwrap();
    std::fs::write(&cfg_b, config(feed, std::slice::from_ref(&gb), &journal)).unwrap();
    let first = spawn_tickcast(&["run", "--quiet", "--config", cfg_a.to_str().unwrap()]);
    std::thread::sleep(Duration::from_millis(500));
    let (code, _, err) = tickcast(
        &["run", "--quiet", "--config", cfg_b.to_str().unwrap()],
        Duration::from_secs(30),
    );
    let summary = terminate(first);
    assert_eq!(code, 2, "{err}");
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    assert!(err.contains(".journal") && err.contains("in use"), "{err}");
    assert!(summary["groups"][0]["last_seq"].as_u64().unwrap() > 0);
}
