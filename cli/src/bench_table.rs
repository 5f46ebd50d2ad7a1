//! `tickcast bench`'s human-readable report (the JSON is `Report` serialized).

use crate::bench::Report;

/// The human table.
pub fn table(r: &Report) -> String {
    // How the run was set up, then what the host did to it.
    let mut setup = vec![match r.rate {
        Some(rate) => format!("offered {rate:.0} msgs/s"),
        None => "flat out".to_string(),
    }];
    if r.subscriber_gro {
        setup.push("subscribers with UDP_GRO".into());
    }
    if let Some(core) = r.feed_core {
        setup.push(format!("feed on core {core}"));
    }
    let mut offered = setup.join(", ");
    if !r.core_to_core_ns.is_empty() {
        let ns: Vec<String> = r
            .core_to_core_ns
            .iter()
            .map(|n| format!("{n:.0}"))
            .collect();
        offered += &format!("; a cache line from core 0 to 1: {} ns", ns.join(" / "));
    }
    let mut s = format!(
        "tickcast bench: {} groups, {} subscribers, {} shard(s), max payload {} B, {:.1} s per phase, {offered}; latency after {:.1} s of warm-up\n\n",
        r.groups, r.subscribers, r.shards, r.max_payload, r.seconds_per_phase, r.latency_warmup_s
    );
    s += &format!(
        "{:<9} {:>13} {:>13} {:>10} {:>15} {:>8} {:>11} {:>11} {:>11}\n",
        "phase",
        "msgs/s/sub",
        "datagrams/s",
        "msgs/dgram",
        "syscalls/msg/sub",
        "loss",
        "p50 ns",
        "p99 ns",
        "p99.9 ns"
    );
    let mut phases = vec![("tickcast", &r.tickcast)];
    if let Some(n) = &r.tickcast_nogso {
        phases.push(("no GSO", n));
    }
    phases.extend([("naive", &r.naive), ("raw", &r.raw)]);
    for &(name, p) in &phases {
        s += &format!(
            "{:<9} {:>13.0} {:>13.0} {:>10.1} {:>15.6} {:>7.3}% {:>11} {:>11} {:>11}\n",
            name,
            p.msgs_per_s,
            p.datagrams_per_s,
            p.msgs_per_datagram,
            p.syscalls_per_msg_per_sub,
            p.loss * 100.0,
            p.latency_ns.p50,
            p.latency_ns.p99,
            p.latency_ns.p999
        );
    }
    s += "\nCPU ns per message (thread CPU time):\n";
    for (name, p) in phases {
        let c = &p.cpu_ns_per_msg;
        s += &format!(
            "{:<9} feed {:>7.1}  shard {:>7.1}  retransmitter {:>6.1}  sender {:>7.1}  subscriber {:>7.1}\n",
            name, c.feed, c.shard, c.retransmitter, c.sender, c.subscriber
        );
    }
    s += &format!(
        "\nratios: tickcast/naive = {:.2}x, tickcast/raw = {:.2}x, GSO/no GSO = {:.2}x (GSO {})\n",
        r.ratios.vs_naive,
        r.ratios.vs_raw,
        r.ratios.vs_nogso,
        if r.gso { "on" } else { "unavailable" }
    );
    if let (Some(p99), Some(p999)) = (r.ratios.p99_vs_raw, r.ratios.p999_vs_raw) {
        s += &format!(
            "latency: tickcast/raw (the kernel path alone) = {p99:.2}x at p99, {p999:.2}x at p99.9\n"
        );
    }
    if let Some(t) = &r.tcp {
        s += &crate::bench_tcp::table(t);
        s += &format!(
            "ratios: tcp/epoll = {:.2}x, tcp/naive = {:.2}x",
            r.ratios.tcp_vs_epoll.unwrap_or(0.0),
            r.ratios.tcp_vs_naive.unwrap_or(0.0)
        );
        if let Some(x) = r.ratios.tcp_stalled_vs_tcp {
            s += &format!(", with stalled clients/without = {x:.2}x");
        }
        s += "\n";
    }
    s
}
