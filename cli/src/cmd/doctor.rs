//! `tickcast doctor [--config FILE]`: checks this host against the config, one line per check,
//! ✓ or ✗ with the command that fixes it; exit 1 when anything is ✗.

use anyhow::{anyhow, Result};
use distributor::config::{Config, SourceKind};
use std::net::Ipv4Addr;
use std::path::Path;
use std::time::{Duration, Instant};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Config to check against (default: the embedded default config).
    #[arg(long)]
    pub config: Option<std::path::PathBuf>,
}

/// One finding.
pub struct Check {
    pub ok: bool,
    pub what: String,
    /// The command (or setting) that fixes a ✗.
    pub fix: Option<String>,
}

fn ok(what: impl Into<String>) -> Check {
    Check {
        ok: true,
        what: what.into(),
        fix: None,
    }
}

fn bad(what: impl Into<String>, fix: impl Into<String>) -> Check {
    Check {
        ok: false,
        what: what.into(),
        fix: Some(fix.into()),
    }
}

fn read_trim(path: &str) -> Option<String> {
    std::fs::read_to_string(path)
        .ok()
        .map(|s| s.trim().to_string())
}

fn sysctl_u64(path: &str) -> Option<u64> {
    read_trim(path)?.parse().ok()
}

/// CPU list syntax ("2-5,8") to indices.
fn cpu_list(s: &str) -> Vec<usize> {
    let mut out = Vec::new();
    for part in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        match part.split_once('-') {
            Some((a, b)) => {
                if let (Ok(a), Ok(b)) = (a.parse::<usize>(), b.parse::<usize>()) {
                    out.extend(a..=b);
                }
            }
            None => out.extend(part.parse::<usize>().ok()),
        }
    }
    out
}

/// Whether a route to `group` exists (a 224.0.0.0/4 or default route), from /proc/net/route.
fn has_route(group: Ipv4Addr) -> bool {
    let Some(table) = read_trim("/proc/net/route") else {
        return false;
    };
    table.lines().skip(1).any(|l| {
        let f: Vec<&str> = l.split_whitespace().collect();
        let (Some(dst), Some(mask)) = (f.get(1), f.get(7)) else {
            return false;
        };
        let (Ok(dst), Ok(mask)) = (u32::from_str_radix(dst, 16), u32::from_str_radix(mask, 16))
        else {
            return false;
        };
        // The table is in host order of a little-endian dump of network-order words.
        let (dst, mask) = (
            u32::from_be(dst.swap_bytes()),
            u32::from_be(mask.swap_bytes()),
        );
        u32::from(group) & mask == dst & mask
    })
}

/// Every check, in order.
pub fn checks(cfg: &Config) -> Vec<Check> {
    let mut out = Vec::new();
    // Socket buffers.
    let rmem = sysctl_u64("/proc/sys/net/core/rmem_max").unwrap_or(0);
    let wmem = sysctl_u64("/proc/sys/net/core/wmem_max").unwrap_or(0);
    if cfg.feed.source == SourceKind::Multicast {
        let want = cfg.feed.rcvbuf as u64;
        out.push(if rmem >= want {
            ok(format!("net.core.rmem_max {rmem} ≥ feed.rcvbuf {want}"))
        } else {
            bad(
                format!("net.core.rmem_max {rmem} < feed.rcvbuf {want}: the kernel caps the feed's receive buffer"),
                format!("sysctl -w net.core.rmem_max={want}"),
            )
        });
    }
    let sndbuf = cfg
        .groups
        .iter()
        .map(|g| g.sndbuf as u64)
        .max()
        .unwrap_or(0);
    out.push(if wmem >= sndbuf {
        ok(format!(
            "net.core.wmem_max {wmem} ≥ largest sndbuf {sndbuf}"
        ))
    } else {
        bad(
            format!("net.core.wmem_max {wmem} < sndbuf {sndbuf}: send buffers are capped"),
            format!("sysctl -w net.core.wmem_max={sndbuf}"),
        )
    });
    // Cores.
    let cores = core_affinity::get_core_ids().map_or(0, |c| c.len());
    let isolated = read_trim("/sys/devices/system/cpu/isolated")
        .map(|s| cpu_list(&s))
        .unwrap_or_default();
    for (key, core, _) in cfg.pinned_threads() {
        if core >= cores {
            out.push(bad(
                format!("{key} core {core}: not on this host ({cores} cores)"),
                format!("set {key}.core to 0..{}", cores.saturating_sub(1)),
            ));
        } else if isolated.contains(&core) {
            out.push(ok(format!("{key} core {core}: exists, isolated")));
        } else {
            out.push(bad(
                format!("{key} core {core}: exists, not isolated (other work is scheduled on it)"),
                format!("add isolcpus={core} nohz_full={core} to the kernel command line"),
            ));
        }
    }
    // Interfaces, routes, rp_filter.
    let mut ifaces: Vec<(String, Ipv4Addr)> = Vec::new();
    for g in &cfg.groups {
        ifaces.push((format!("group {} interface", g.name), g.interface));
        if let Some(b) = g.interface_b {
            ifaces.push((format!("group {} interface_b", g.name), b));
        }
    }
    if cfg.feed.source == SourceKind::Multicast {
        ifaces.push(("feed.interface".into(), cfg.feed.interface));
        if let Some(b) = cfg.feed.interface_b {
            ifaces.push(("feed.interface_b".into(), b));
        }
    }
    for (what, ip) in &ifaces {
        out.push(match net::ifaddr::interface_of(*ip) {
            None => bad(
                format!("{what} {ip}: no interface has this address"),
                format!("ip addr add {ip}/24 dev IFACE   (or fix the config)"),
            ),
            Some(i) if !i.up => bad(
                format!("{what} {ip}: {} is down", i.name),
                format!("ip link set {} up", i.name),
            ),
            Some(i) if !i.multicast => bad(
                format!("{what} {ip}: {} has multicast off", i.name),
                format!("ip link set {} multicast on", i.name),
            ),
            Some(i) => ok(format!("{what} {ip}: {} up ({})", i.name, i.net)),
        });
    }
    for g in &cfg.groups {
        for dest in [Some(g.feed_a), g.feed_b].into_iter().flatten() {
            if !dest.ip().is_multicast() {
                continue;
            }
            let via_if = g.interface.is_loopback() && g.multicast_loop;
            out.push(if via_if || has_route(*dest.ip()) {
                ok(format!("group {} {dest}: multicast route", g.name))
            } else {
                bad(
                    format!("group {} {dest}: no route for multicast", g.name),
                    "ip route add 224.0.0.0/4 dev IFACE".to_string(),
                )
            });
        }
    }
    if cfg.feed.source == SourceKind::Multicast {
        if let Some(i) = net::ifaddr::interface_of(cfg.feed.interface) {
            let path = format!("/proc/sys/net/ipv4/conf/{}/rp_filter", i.name);
            let v = sysctl_u64(&path)
                .unwrap_or(0)
                .max(sysctl_u64("/proc/sys/net/ipv4/conf/all/rp_filter").unwrap_or(0));
            out.push(if v == 1 {
                bad(
                    format!("rp_filter on {} is strict (1): multicast from sources not routed back over it is dropped", i.name),
                    format!("sysctl -w net.ipv4.conf.{}.rp_filter=2 net.ipv4.conf.all.rp_filter=2", i.name),
                )
            } else {
                ok(format!("rp_filter on {}: {v}", i.name))
            });
        }
    }
    // Kernel features.
    let io_uring = sysctl_u64("/proc/sys/kernel/io_uring_disabled").unwrap_or(0);
    out.push(if io_uring == 0 {
        ok("io_uring: enabled")
    } else {
        bad(
            format!(
                "io_uring: kernel.io_uring_disabled = {io_uring} (TCP fan-out falls back to epoll)"
            ),
            "sysctl -w kernel.io_uring_disabled=0",
        )
    });
    out.push(if net::probe::gso_supported() {
        ok("UDP GSO (UDP_SEGMENT): supported")
    } else {
        bad(
            "UDP GSO (UDP_SEGMENT): not supported by this kernel",
            "a kernel of 4.18 or later",
        )
    });
    if let Some(t) = &cfg.tcp {
        out.extend(tcp_checks(t));
    }
    out.extend(scheduler_checks(cfg));
    // Journal.
    out.push(journal_check(cfg));
    // Clock.
    let clock = read_trim("/sys/devices/system/clocksource/clocksource0/current_clocksource")
        .unwrap_or_else(|| "unknown".into());
    out.push(if clock == "tsc" {
        ok("clock source: tsc")
    } else {
        bad(
            format!("clock source: {clock} (reading the clock costs more than with tsc)"),
            "echo tsc > /sys/devices/system/clocksource/clocksource0/current_clocksource",
        )
    });
    out
}

/// How long this host takes to wake a sleeping thread (what a parked shard pays per batch on
/// top of the kernel's path), and whether the shards' scheduler slice is taken.
fn scheduler_checks(cfg: &Config) -> Vec<Check> {
    use distributor::config::Idle;
    let mut out = Vec::new();
    if let Some(us) = cfg.shards.iter().map(|s| s.slice_us).find(|&us| us > 0) {
        let r = std::thread::spawn(move || net::sched::set_slice(us * 1000))
            .join()
            .unwrap_or_else(|_| Err(std::io::Error::other("probe thread failed")));
        out.push(match r {
            Ok(()) => ok(format!("scheduler slice: custom slices taken (shard slice_us {us})")),
            Err(e) => bad(
                format!("scheduler slice: refused ({e}); woken shards wait for their core's running thread"),
                "Linux 6.12 or later, or slice_us = 0",
            ),
        });
    }
    if cfg.shards.iter().any(|s| s.idle == Idle::Park) {
        let h = wake_latency(Duration::from_secs(1));
        let (p99, max) = (h.value_at_quantile(0.99) / 1000, h.max() / 1000);
        let what = format!(
            "wake-up of a parked thread: p99 {p99} µs, max {max} µs over 1 s (each batch to a parked shard pays one)"
        );
        out.push(if max <= 1000 {
            ok(what)
        } else {
            bad(
                what,
                "idle = \"spin\" for the shards, on cores isolated with isolcpus= nohz_full= (a VM: also the host's vCPU pinning and halt polling)",
            )
        });
    }
    out
}

/// How long a parked thread takes to run after it is unparked — the shard's doorbell does
/// exactly this (`std::thread::park_timeout` / `unpark`) — measured for `total` with a wake-up
/// every 200 µs, in ns.
fn wake_latency(total: Duration) -> hdrhistogram::Histogram<u64> {
    use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
    use std::sync::Arc;
    let new_histogram =
        || hdrhistogram::Histogram::new_with_bounds(1, 60_000_000_000, 3).expect("valid bounds");
    // ns since `base` when the last wake-up was sent (0: none pending), and the end.
    let (sent, done) = (
        Arc::new(AtomicU64::new(0)),
        Arc::new(AtomicBool::new(false)),
    );
    let base = Instant::now();
    let parked = {
        let (sent, done) = (sent.clone(), done.clone());
        std::thread::spawn(move || {
            let mut h = new_histogram();
            while !done.load(Ordering::Acquire) {
                std::thread::park_timeout(Duration::from_millis(100));
                let at = sent.swap(0, Ordering::AcqRel);
                if at > 0 {
                    let now = base.elapsed().as_nanos() as u64;
                    h.saturating_record(now.saturating_sub(at));
                }
            }
            h
        })
    };
    let end = Instant::now() + total;
    while Instant::now() < end {
        std::thread::sleep(Duration::from_micros(200));
        sent.store(base.elapsed().as_nanos().max(1) as u64, Ordering::Release);
        parked.thread().unpark();
    }
    done.store(true, Ordering::Release);
    parked.thread().unpark();
    parked.join().unwrap_or_else(|_| new_histogram())
}

/// The SoupBinTCP server's needs: its port, descriptors for `max_clients`, a working ring.
fn tcp_checks(t: &distributor::config::Tcp) -> Vec<Check> {
    let mut out = Vec::new();
    out.push(match std::net::TcpListener::bind(t.listen) {
        Ok(_) => ok(format!("tcp.listen {}: free", t.listen)),
        Err(e) => bad(
            format!("tcp.listen {}: {e}", t.listen),
            "stop what holds the port (another tickcast?) or choose another tcp.listen",
        ),
    });
    // "Max open files  SOFT  HARD  files" in /proc/self/limits.
    let soft = std::fs::read_to_string("/proc/self/limits")
        .ok()
        .and_then(|l| {
            l.lines()
                .find(|l| l.starts_with("Max open files"))
                .and_then(|l| l.split_whitespace().nth(3).map(str::to_string))
        });
    let need = t.max_clients as u64 + 256;
    out.push(match soft.as_deref().map(|s| s.parse::<u64>()) {
        Some(Ok(n)) if n < need => bad(
            format!("open files limit {n} < tcp.max_clients + 256 = {need}"),
            format!("LimitNOFILE={need} in the systemd unit, or ulimit -n {need}"),
        ),
        Some(Ok(n)) => ok(format!(
            "open files limit {n}: enough for {} TCP clients",
            t.max_clients
        )),
        _ => ok("open files limit: unlimited"),
    });
    out.push(match net::uring::Uring::new(8, &[]) {
        Ok(_) => ok("io_uring: a ring with send, receive and multishot accept opens"),
        Err(e) => bad(
            format!("io_uring: {e} (the TCP agent falls back to epoll)"),
            "a kernel of 5.19 or later without a seccomp filter on io_uring",
        ),
    });
    out
}

fn journal_check(cfg: &Config) -> Check {
    let dir = &cfg.journal.dir;
    if std::fs::create_dir_all(dir).is_err() {
        return bad(
            format!("journal.dir {}: cannot be created", dir.display()),
            format!(
                "mkdir -p {} && chown $(id -u) {}",
                dir.display(),
                dir.display()
            ),
        );
    }
    let probe = dir.join(".tickcast-doctor");
    if std::fs::write(&probe, b"x").is_err() {
        return bad(
            format!("journal.dir {}: not writable", dir.display()),
            format!("chown $(id -u) {}", dir.display()),
        );
    }
    let _ = std::fs::remove_file(&probe);
    // A day at the configured rate (generator) or 100 000 msgs/s, 72 bytes a message (each
    // message journaled about once: groups split the instruments).
    let rate = if cfg.feed.source == SourceKind::Generator && cfg.feed.rate > 0 {
        cfg.feed.rate
    } else {
        100_000
    };
    let need = rate * 86_400 * distributor::journal::SLOT as u64;
    match net::probe::free_bytes(Path::new(dir)) {
        Some(free) if free >= need => ok(format!(
            "journal.dir {}: writable, {} GiB free ≥ a day at {rate} msgs/s ({} GiB)",
            dir.display(),
            free >> 30,
            need >> 30
        )),
        Some(free) => bad(
            format!(
                "journal.dir {}: {} GiB free < a day at {rate} msgs/s ({} GiB)",
                dir.display(),
                free >> 30,
                need >> 30
            ),
            "point journal.dir at a larger file system",
        ),
        None => bad(
            format!("journal.dir {}: free space unknown", dir.display()),
            "check the file system",
        ),
    }
}

pub fn run(args: Args) -> Result<i32> {
    let cfg = Config::load(args.config.as_deref()).map_err(|e| anyhow!(e))?;
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    let mut failed = 0;
    for c in checks(&cfg) {
        let line = match (&c.ok, &c.fix) {
            (true, _) => format!("✓ {}", c.what),
            (false, Some(fix)) => format!("✗ {} — fix: {fix}", c.what),
            (false, None) => format!("✗ {}", c.what),
        };
        failed += usize::from(!c.ok);
        if writeln!(out, "{line}").is_err() {
            break;
        }
    }
    Ok(i32::from(failed > 0))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_lists_and_routes() {
        assert_eq!(cpu_list("2-4,7"), vec![2, 3, 4, 7]);
        assert_eq!(cpu_list(""), Vec::<usize>::new());
        let _ = has_route(Ipv4Addr::new(239, 1, 1, 1));
    }
}
