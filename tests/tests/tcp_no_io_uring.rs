//! Where the kernel refuses io_uring (`kernel.io_uring_disabled = 2`), the TCP agent falls back
//! to epoll with one log line and serves clients the same; with `io = "io_uring"` it refuses to
//! start, naming the key. Its own test binary: the sysctl is host-wide while it is set, and no
//! other test of this binary runs beside it. Needs root (CI).

use std::time::{Duration, Instant};
use subscriber_sdk::{Handler, TcpOptions, TcpSubscriber};
use tickcast_tests::*;

const SYSCTL: &str = "/proc/sys/kernel/io_uring_disabled";

/// Sets the sysctl and puts the old value back when dropped, panics included.
struct Disabled(String);

impl Disabled {
    fn set() -> Option<Disabled> {
        let old = std::fs::read_to_string(SYSCTL).ok()?;
        std::fs::write(SYSCTL, "2").ok()?;
        Some(Disabled(old.trim().to_string()))
    }
}

impl Drop for Disabled {
    fn drop(&mut self) {
        let _ = std::fs::write(SYSCTL, &self.0);
    }
}

struct Count(u64);
impl Handler for Count {
    fn on_message(&mut self, _: &subscriber_sdk::Context<'_>, _: &protocol::Message<&[u8]>) {
        self.0 += 1;
    }
}

#[test]
fn without_io_uring_the_tcp_agent_falls_back_to_epoll() {
    if !is_root() || !std::path::Path::new(SYSCTL).exists() {
        assert!(!in_ci(), "CI runs as root on a kernel with {SYSCTL}");
        println!("SKIPPED: needs root and {SYSCTL}");
        return;
    }
    let base = ports(12);
    let dir = scratch("tcp-no-io-uring");
    let g = TestGroup::new(12, 0, base, "");
    let listen = format!("127.0.0.1:{}", base + 15);
    let feed = "source = \"generator\"\nrate = 20000\nmessages = 4000";
    let text = |io: &str| {
        config(feed, std::slice::from_ref(&g), &dir.join("journal"))
            + &format!("\n[tcp]\nlisten = \"{listen}\"\nio = \"{io}\"\n")
    };
    let guard = Disabled::set().expect("set kernel.io_uring_disabled");
    // io = "io_uring": refused at start, one line naming the key.
    let strict = dir.join("strict.toml");
    std::fs::write(&strict, text("io_uring")).unwrap();
    let (code, _, err) = tickcast(
        &["run", "--quiet", "--config", strict.to_str().unwrap()],
        Duration::from_secs(30),
    );
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("tcp.io") && err.contains("io_uring"), "{err}");
    // io = "auto": epoll, said once, clients served.
    let _ = std::fs::remove_dir_all(dir.join("journal"));
    let auto = dir.join("auto.toml");
    std::fs::write(&auto, text("auto")).unwrap();
    let child = spawn_tickcast(&[
        "run",
        "--quiet",
        "--config",
        auto.to_str().unwrap(),
        "--linger",
        "5",
    ]);
    let mut o = TcpOptions::new(listen.parse().unwrap(), &g.session);
    o.from = 1;
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut sub = loop {
        match TcpSubscriber::connect(o.clone()) {
            Ok(s) => break s,
            Err(e) if Instant::now() > deadline => panic!("{e}"),
            Err(_) => std::thread::sleep(Duration::from_millis(20)),
        }
    };
    let mut n = Count(0);
    let deadline = Instant::now() + Duration::from_secs(30);
    while !sub.ended() && Instant::now() < deadline {
        sub.poll_for(&mut n, Duration::from_millis(20)).unwrap();
    }
    drop(guard);
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    let summary: serde_json::Value =
        serde_json::from_str(String::from_utf8_lossy(&out.stdout).lines().last().unwrap()).unwrap();
    assert_eq!(n.0, 4000);
    assert_eq!(summary["tcp"]["backend"], "epoll", "{summary}");
    assert_eq!(
        stderr.matches("io_uring unavailable").count(),
        1,
        "one log line: {stderr}"
    );
}
