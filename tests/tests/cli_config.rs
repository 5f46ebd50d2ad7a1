//! Config as a user meets it: check-config, print-config, one-line errors naming the key, the
//! documented example, and the metrics endpoint of a running distributor.

use std::io::{Read, Write};
use std::time::Duration;
use tickcast_tests::*;

fn root() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

#[test]
fn shipped_configs_are_valid_and_documented() {
    for f in ["configs/default.toml", "configs/colo.toml"] {
        let (code, out, err) = tickcast(
            &["check-config", root().join(f).to_str().unwrap()],
            Duration::from_secs(30),
        );
        assert_eq!(code, 0, "{f}: {err}");
        assert!(out.contains("ok"));
    }
    let doc = std::fs::read_to_string(root().join("docs/CONFIG.md")).unwrap();
    let colo = std::fs::read_to_string(root().join("configs/colo.toml")).unwrap();
    let a = doc.find("```toml\n").unwrap() + 8;
    let b = a + doc[a..].find("```").unwrap();
    assert!(
        colo.ends_with(&doc[a..b]),
        "configs/colo.toml and the CONFIG.md example differ"
    );
    // Every key of the default appears in the documentation.
    let cfg = distributor::config::Config::load(None).unwrap();
    for line in cfg.to_toml().lines() {
        if let Some((k, _)) = line.split_once(" = ") {
            assert!(
                doc.contains(&format!("`{}`", k.trim())),
                "CONFIG.md does not document {k}"
            );
        }
    }
}

#[test]
fn print_config_round_trips() {
    let (code, out, _) = tickcast(&["run", "--print-config"], Duration::from_secs(30));
    assert_eq!(code, 0);
    let printed = distributor::config::Config::parse(&out, "printed").unwrap();
    assert_eq!(printed, distributor::config::Config::load(None).unwrap());
}

#[test]
fn bad_configs_fail_with_one_line_naming_the_key() {
    let dir = scratch("badcfg");
    let default = distributor::config::DEFAULT_TOML;
    let cases = [
        (
            default.replacen("ttl = 1", "ttl = 1\ncolour = \"red\"", 1),
            "colour",
        ),
        (
            default.replacen("max_payload = 1472", "max_payload = 9", 1),
            "max_payload",
        ),
        (
            default.replacen("content = \"all\"", "content = \"everything\"", 1),
            "content",
        ),
        (
            default.replacen(
                "feed_a = \"239.192.10.1:31001\"",
                "feed_a = \"239.192.10.1\"",
                1,
            ),
            "feed_a",
        ),
        (
            default.replacen("groups = [\"equities-n-z\"]", "groups = [\"nope\"]", 1),
            "groups",
        ),
        (
            default.replacen("session = \"TCAST0002\"", "session = \"TCAST0001\"", 1),
            "session",
        ),
        (
            default.replacen("fsync = \"none\"", "fsync = \"sometimes\"", 1),
            "fsync",
        ),
        (
            default.replacen("idle = \"park\"", "idle = \"park\"\nslice_us = 50", 1),
            "shard[0].slice_us",
        ),
        // Accepted once, and could not work (the hardening issue's list).
        (
            default.replacen("239.192.10.1:31001", "239.192.10.1:0", 1),
            "feed_a",
        ),
        (
            default.replacen("239.192.10.2:31002", "239.192.10.1:31001", 1),
            "feed_a",
        ),
        (
            default.replacen(
                "feed_a = \"239.192.10.1:31001\"",
                "feed_a = \"127.0.0.1:32001\"",
                1,
            ),
            "feed_a",
        ),
        (
            default.replacen(
                "retransmit = \"127.0.0.1:32001\"",
                "retransmit = \"239.1.1.1:32001\"",
                1,
            ),
            "retransmit",
        ),
        (
            default.replacen("dir = \"tickcast-journal\"", "dir = \"\"", 1),
            "journal.dir",
        ),
        (
            default.replacen(
                "heartbeat_ms = 1000\nretransmit = \"127.0.0.1:32001\"",
                "heartbeat_ms = 1000\nretransmit = \"127.0.0.1:32001\"\nretransmit_rate = 0",
                1,
            ),
            "retransmit_rate",
        ),
        (
            default.replacen("symbol_ranges = [\"A-M\"]", "symbol_ranges = [\"a-m\"]", 1),
            "symbol_ranges",
        ),
        (
            default.replacen(
                "symbol_ranges = [\"A-M\"]",
                "symbol_ranges = [\"A-B-C\"]",
                1,
            ),
            "symbol_ranges",
        ),
        (
            default.replacen("symbol_ranges = [\"A-M\"]", "symbol_ranges = [\"\"]", 1),
            "symbol_ranges",
        ),
        (
            default.replacen("seed = 1", "seed = 1\ndate = \"2300-01-01\"", 1),
            "feed.date",
        ),
        (
            default.replacen("seed = 1", "seed = 1\ndate = \"1969-12-31\"", 1),
            "feed.date",
        ),
        (
            default.replacen("groups = [\"equities-n-z\"]", "groups = []", 1),
            "groups",
        ),
        (
            default.replacen("seed = 1", "seed = 1\nqueue_depth = 100000", 1),
            "queue_depth",
        ),
        (
            default.replacen(
                "heartbeat_ms = 1000\nretransmit = \"127.0.0.1:32001\"",
                "heartbeat_ms = 1000\nretransmit = \"127.0.0.1:32001\"\nring = 1000000000000",
                1,
            ),
            "ring",
        ),
        (
            default.replacen("session = \"TCAST0002\"", "session = \"TCAST0001 \"", 1),
            "session",
        ),
        // The TCP server's keys.
        (format!("{default}\n[tcp]\n"), "listen"),
        (
            format!("{default}\n[tcp]\nlisten = \"127.0.0.1:7000\"\nlag_limit = 10\n"),
            "tcp.lag_limit",
        ),
        (
            format!("{default}\n[tcp]\nlisten = \"127.0.0.1:7000\"\nallow = [\"10.0.0.0/33\"]\n"),
            "tcp.allow",
        ),
        (
            format!("{default}\n[tcp]\nlisten = \"127.0.0.1:7000\"\nio = \"kqueue\"\n"),
            "io",
        ),
        (
            format!(
                "{default}\n[tcp]\nlisten = \"127.0.0.1:7000\"\n[[tcp.user]]\nname = \"toolongname\"\npassword = \"x\"\n"
            ),
            "tcp.user[0].name",
        ),
        (
            format!("{default}\n[tcp]\nlisten = \"127.0.0.1:7000\"\nmax_clients = 0\n"),
            "tcp.max_clients",
        ),
    ];
    for (i, (text, key)) in cases.iter().enumerate() {
        assert_ne!(text, default, "case {i} ({key}) changes nothing");
        let f = dir.join(format!("bad{i}.toml"));
        std::fs::write(&f, text).unwrap();
        for args in [
            vec!["check-config", f.to_str().unwrap()],
            vec!["run", "--config", f.to_str().unwrap()],
        ] {
            let (code, _, err) = tickcast(&args, Duration::from_secs(30));
            assert_eq!(code, 2, "{args:?}: {err}");
            assert_eq!(err.trim().lines().count(), 1, "one line: {err}");
            assert!(err.contains(key), "{key} not named in: {err}");
        }
    }
}

#[test]
fn check_config_refuses_files_that_are_not_configs() {
    for (path, why) in [
        ("/dev/zero", "larger than 1 MiB"),
        ("/tmp", "is a directory"),
    ] {
        let (code, _, err) = tickcast(&["check-config", path], Duration::from_secs(30));
        assert_eq!(code, 2, "{path}: {err}");
        assert_eq!(err.trim().lines().count(), 1, "{err}");
        assert!(err.contains(path) && err.contains(why), "{err}");
    }
    // A core that does not exist: valid, and said.
    let dir = scratch("warn-core");
    let f = dir.join("core.toml");
    let text = distributor::config::DEFAULT_TOML
        .replacen("core = 1", "core = 999", 1)
        .replacen("seed = 1", "seed = 1\ncore = 998", 1);
    std::fs::write(&f, text).unwrap();
    let (code, _, err) = tickcast(
        &["check-config", f.to_str().unwrap()],
        Duration::from_secs(30),
    );
    assert_eq!(code, 0);
    assert!(err.contains("warning") && err.contains("core 999"), "{err}");
    assert!(err.contains("feed.core: core 998"), "{err}");
}

#[test]
fn check_config_warns_when_re_requests_from_the_sending_network_would_be_refused() {
    let dir = scratch("warn-allow");
    let default = distributor::config::DEFAULT_TOML;
    // A group sent on 192.0.2.10 whose re-request server allows loopback only.
    let text = default.replacen(
        "retransmit = \"127.0.0.1:32001\"",
        "retransmit = \"127.0.0.1:32001\"\nretransmit_allow = [\"127.0.0.0/8\"]",
        1,
    );
    let text = text.replacen("interface = \"127.0.0.1\"", "interface = \"192.0.2.10\"", 1);
    assert_ne!(text, default);
    let f = dir.join("warn.toml");
    std::fs::write(&f, &text).unwrap();
    let (code, out, err) = tickcast(
        &["check-config", f.to_str().unwrap()],
        Duration::from_secs(30),
    );
    assert_eq!(code, 0, "valid, with a warning: {err}");
    assert!(out.contains("ok"));
    assert!(
        err.contains("warning") && err.contains("retransmit_allow") && err.contains("192.0.2.10"),
        "{err}"
    );
    // Left out, the list covers the sending interface's network: no warning.
    let f = dir.join("auto.toml");
    std::fs::write(&f, default).unwrap();
    let (code, _, err) = tickcast(
        &["check-config", f.to_str().unwrap()],
        Duration::from_secs(30),
    );
    assert_eq!(code, 0);
    assert!(!err.contains("warning"), "{err}");
}

#[test]
fn metrics_endpoint_serves_counters() {
    let base = ports(5);
    let dir = scratch("metrics");
    let groups = vec![TestGroup::new(5, 0, base, "heartbeat_ms = 100")];
    let feed = "source = \"generator\"\nrate = 5000\ninstruments = 10";
    let mut text = config(feed, &groups, &dir.join("journal"));
    text += &format!("\n[metrics]\nlisten = \"127.0.0.1:{}\"\n", base + 18);
    let cfg = dir.join("m.toml");
    std::fs::write(&cfg, text).unwrap();
    let child = std::process::Command::new(bin("tickcast"))
        .args(["run", "--quiet", "--config", cfg.to_str().unwrap()])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut body = String::new();
    // Ten idle clients connected first must not hold up a scrape.
    let mut idle = Vec::new();
    for _ in 0..50 {
        std::thread::sleep(Duration::from_millis(100));
        if idle.is_empty() {
            for _ in 0..10 {
                if let Ok(c) = std::net::TcpStream::connect(("127.0.0.1", base + 18)) {
                    idle.push(c);
                }
            }
        }
        let asked = std::time::Instant::now();
        if let Ok(mut c) = std::net::TcpStream::connect(("127.0.0.1", base + 18)) {
            c.write_all(b"GET /metrics HTTP/1.0\r\n\r\n").unwrap();
            body.clear();
            c.read_to_string(&mut body).unwrap();
            assert!(
                asked.elapsed() < Duration::from_millis(1500),
                "a scrape waited behind idle clients"
            );
            if body.contains("tickcast_group_messages_total{group=\"g0\"")
                && !body.contains("tickcast_group_messages_total{group=\"g0\",session=\"T05G0\"} 0")
            {
                break;
            }
        }
    }
    signal(child.id(), "TERM");
    let out = child.wait_with_output().unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(body.starts_with("HTTP/1.1 200"), "{body}");
    for name in [
        "tickcast_shard_sendmmsg_calls_total",
        "tickcast_shard_datagrams_sent_total",
        "tickcast_shard_partial_sends_total",
        "tickcast_shard_send_errors_total",
        "tickcast_shard_queue_depth",
        "tickcast_group_messages_total",
        "tickcast_group_datagrams_total",
        "tickcast_group_bytes_total",
        "tickcast_group_retransmit_messages_total",
        "tickcast_group_retransmit_busy_total",
        "tickcast_shard_retransmit_malformed_total",
        "tickcast_shard_retransmit_unknown_session_total",
    ] {
        assert!(body.contains(name), "{name} missing");
    }
    let line = body
        .lines()
        .find(|l| l.starts_with("tickcast_group_messages_total{group=\"g0\""))
        .unwrap();
    let v: u64 = line.rsplit(' ').next().unwrap().parse().unwrap();
    assert!(v > 0, "{line}");
}

#[test]
fn bench_reports_every_figure() {
    let (code, out, err) = tickcast(
        &[
            "bench",
            "--seconds",
            "0.3",
            "--groups",
            "2",
            "--subscribers",
            "2",
            "--feed-messages",
            "20000",
            "--feed-core",
            "0",
            "--json",
        ],
        Duration::from_secs(120),
    );
    assert_eq!(code, 0, "{err}");
    let v: serde_json::Value = serde_json::from_str(out.trim()).unwrap();
    assert_eq!(v["feed_core"], 0, "{v}");
    // The host's state around the phases: a sample may be dropped on a busy host, never made up.
    let samples = v["core_to_core_ns"].as_array().expect("core_to_core_ns");
    assert!(samples.len() <= 5, "{v}");
    assert!(
        samples.iter().all(|n| n.as_f64().is_some_and(|n| n > 0.0)),
        "{v}"
    );
    for phase in ["tickcast", "naive", "raw"] {
        for k in [
            "msgs_per_s",
            "datagrams_per_s",
            "msgs_per_datagram",
            "syscalls_per_msg_per_sub",
            "loss",
        ] {
            assert!(v[phase][k].is_number(), "{phase}.{k}: {v}");
        }
        for k in ["p50", "p99", "p999"] {
            assert!(
                v[phase]["latency_ns"][k].is_number(),
                "{phase}.latency_ns.{k}"
            );
        }
        assert!(
            v[phase]["messages_delivered"].as_u64().unwrap() > 0,
            "{phase} delivered nothing"
        );
    }
    assert_eq!(v["naive"]["syscalls_per_msg_per_sub"], 1.0);
    assert!(v["tickcast"]["msgs_per_datagram"].as_f64().unwrap() > 1.0);
    assert!(v["ratios"]["vs_naive"].is_number() && v["ratios"]["vs_raw"].is_number());
    // Latency against the kernel path only means something at an offered load.
    assert!(v["ratios"]["p99_vs_raw"].is_null(), "{v}");
}

#[test]
fn bench_paces_the_offered_load() {
    // 20 000 msgs/s for 1 s offers about 20 000 messages; flat out this bench sends
    // millions a second, so a count near the offered one shows the pacing took. (1 s: latency
    // counts from 0.5 s after the first delivery.)
    let (code, out, err) = tickcast(
        &[
            "bench",
            "--seconds",
            "1",
            "--groups",
            "2",
            "--subscribers",
            "1",
            "--feed-messages",
            "20000",
            "--rate",
            "20000",
            "--json",
        ],
        Duration::from_secs(120),
    );
    assert_eq!(code, 0, "{err}");
    let v: serde_json::Value = serde_json::from_str(out.trim()).unwrap();
    assert_eq!(v["rate"], 20000.0);
    for k in ["p99_vs_raw", "p999_vs_raw"] {
        assert!(v["ratios"][k].as_f64().is_some_and(|x| x > 0.0), "{k}: {v}");
    }
    // The raw phase too: open loop it sends the feed's chunk at a time, the latency floor.
    for phase in ["tickcast", "naive", "raw"] {
        let sent = v[phase]["messages_sent"].as_u64().unwrap();
        let secs = v[phase]["seconds"].as_f64().unwrap();
        let offered = 20000.0 * secs;
        assert!(
            sent > 0 && (sent as f64) < offered * 1.5 + 4096.0,
            "{phase}: {sent} sent in {secs} s at 20 000/s offered"
        );
        assert!(v[phase]["messages_delivered"].as_u64().unwrap() > 0);
    }
}

#[test]
fn stat_watches_a_running_distributor() {
    let base = ports(4);
    let dir = scratch("stat");
    let groups = vec![TestGroup::new(4, 0, base, "")];
    let feed = "source = \"generator\"\nrate = 5000\ninstruments = 10";
    let mut text = config(feed, &groups, &dir.join("journal"));
    text += &format!("\n[metrics]\nlisten = \"127.0.0.1:{}\"\n", base + 17);
    let tcp = std::net::SocketAddr::from(([127, 0, 0, 1], base + 16));
    text += &format!("\n[tcp]\nlisten = \"{tcp}\"\n");
    let cfg = dir.join("s.toml");
    std::fs::write(&cfg, text).unwrap();
    let child = spawn_tickcast(&["run", "--quiet", "--config", cfg.to_str().unwrap()]);
    // A TCP client reading all along, so the stat shows its lag.
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let reader = {
        let stop = stop.clone();
        std::thread::spawn(move || {
            struct Nothing;
            impl subscriber_sdk::Handler for Nothing {}
            let mut o = subscriber_sdk::TcpOptions::new(tcp, "T04G0");
            o.from = 1;
            let deadline = std::time::Instant::now() + Duration::from_secs(10);
            let mut sub = loop {
                match subscriber_sdk::TcpSubscriber::connect(o.clone()) {
                    Ok(s) => break s,
                    Err(e) if std::time::Instant::now() > deadline => panic!("{e}"),
                    Err(_) => std::thread::sleep(Duration::from_millis(20)),
                }
            };
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                sub.poll_for(&mut Nothing, Duration::from_millis(20))
                    .unwrap();
            }
            sub.stats().messages
        })
    };
    std::thread::sleep(Duration::from_millis(1500));
    let (code, out, err) = tickcast(
        &[
            "stat",
            "--config",
            cfg.to_str().unwrap(),
            "--once",
            "--json",
        ],
        Duration::from_secs(30),
    );
    let (tcode, table, _) = tickcast(
        &[
            "stat",
            "--metrics",
            &format!("127.0.0.1:{}", base + 17),
            "--once",
        ],
        Duration::from_secs(30),
    );
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let tcp_messages = reader.join().unwrap();
    terminate(child);
    assert_eq!(code, 0, "{err}");
    let v: serde_json::Value = serde_json::from_str(out.trim()).unwrap();
    let g = &v["groups"][0];
    assert!(tcp_messages > 0);
    assert!(g["tcp_lag"].as_f64().is_some(), "a TCP client's lag: {v}");
    assert_eq!(g["group"], "g0", "{v}");
    assert_eq!(g["session"], "T04G0");
    let rate = g["msgs_per_s"].as_f64().unwrap();
    assert!(rate > 1000.0 && rate < 20_000.0, "5 000 msgs/s fed: {v}");
    assert!(g["msgs_per_datagram"].as_f64().unwrap() >= 1.0, "{v}");
    assert!(g["journal_position"].as_f64().unwrap() > 0.0, "{v}");
    assert!(
        v["shards"][0]["send_calls_per_s"].as_f64().unwrap() > 0.0,
        "{v}"
    );
    assert_eq!(tcode, 0);
    assert!(
        table.contains("g0") && table.lines().all(|l| l.chars().count() <= 80),
        "{table}"
    );
    // Nothing listening: one line, non-zero.
    let (code, _, err) = tickcast(
        &["stat", "--metrics", "127.0.0.1:1", "--once"],
        Duration::from_secs(30),
    );
    assert_ne!(code, 0);
    assert!(err.contains("127.0.0.1:1"), "{err}");
}

#[test]
fn doctor_checks_the_host_against_the_config() {
    let dir = scratch("doctor");
    let journal = dir.join("j");
    let g = TestGroup::new(4, 0, ports(4), "");
    // A feed whose receive buffer is beyond anything rmem_max allows here, pinned to a core
    // this host does not have.
    let feed = "source = \"multicast\"\ngroup = \"239.207.1.1:30999\"\nrcvbuf = 1000000000000\ncore = 7777";
    let cfg = dir.join("d.toml");
    let tcp = format!(
        "\n[tcp]\nlisten = \"127.0.0.1:{}\"\nmax_clients = 100000\n",
        ports(4) + 14
    );
    std::fs::write(
        &cfg,
        config(feed, std::slice::from_ref(&g), &journal) + &tcp,
    )
    .unwrap();
    let (code, out, err) = tickcast(
        &["doctor", "--config", cfg.to_str().unwrap()],
        Duration::from_secs(30),
    );
    let lines: Vec<&str> = out.lines().collect();
    assert!(lines.len() >= 8, "{out}{err}");
    assert!(
        lines
            .iter()
            .all(|l| l.starts_with("✓ ") || l.starts_with("✗ ")),
        "{out}"
    );
    assert!(
        lines
            .iter()
            .all(|l| !l.starts_with("✗ ") || l.contains(" — fix: ")),
        "{out}"
    );
    let failed = lines.iter().any(|l| l.starts_with("✗ "));
    assert_eq!(
        code,
        i32::from(failed),
        "exit code follows the ✗ lines: {out}"
    );
    // The checks that must fail here, each with its fix.
    for (check, fix) in [
        ("✗ net.core.rmem_max", "sysctl -w net.core.rmem_max="),
        ("✗ feed core 7777: not on this host", "set feed.core to 0.."),
    ] {
        assert!(
            lines
                .iter()
                .any(|l| l.starts_with(check) && l.contains(fix)),
            "{check}: {out}"
        );
    }
    for what in [
        "interface 127.0.0.1",
        "io_uring",
        "UDP GSO",
        "journal.dir",
        "clock source",
        "core 0",
        "tcp.listen 127.0.0.1:",
        "open files limit",
        "io_uring: a ring",
        "scheduler slice",
        "wake-up of a parked thread",
    ] {
        assert!(out.contains(what), "{what} checked: {out}");
    }
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with("✓ journal.dir") || l.contains("free <")),
        "{out}"
    );
}
