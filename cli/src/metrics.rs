//! Prometheus text exposition over HTTP: the shard, group and feed counters, queue depths and
//! retransmissions served. A plain blocking responder on its own thread: scrapes are rare.
//!
//! Written by hand rather than with a metrics crate: the counters are the pipeline's own
//! single-writer atomics (read, never copied, at scrape time), and the text format we need is
//! `# HELP`/`# TYPE` lines plus one line per label set, with label values escaped as the
//! exposition format requires (`escape_label`).

use distributor::counters::{GroupCounters, ShardCounters};
use distributor::pipeline::FeedCounters;
use distributor::tcp::TcpCounters;
use std::fmt::Write as _;
use std::sync::Arc;

/// A label value as the text exposition format requires: backslash, double quote and line
/// feed escaped.
pub fn escape_label(v: &str) -> String {
    let mut s = String::with_capacity(v.len());
    for c in v.chars() {
        match c {
            '\\' => s.push_str("\\\\"),
            '"' => s.push_str("\\\""),
            '\n' => s.push_str("\\n"),
            c => s.push(c),
        }
    }
    s
}

/// Everything the endpoint reports.
#[derive(Clone)]
pub struct Registry {
    pub feed: Arc<FeedCounters>,
    pub shards: Vec<Arc<ShardCounters>>,
    /// (name, session, counters)
    pub groups: Vec<(String, String, Arc<GroupCounters>)>,
    /// The SoupBinTCP server's counters, when it runs.
    pub tcp: Option<Arc<TcpCounters>>,
}

impl Registry {
    pub fn render(&self) -> String {
        let mut s = String::with_capacity(4096);
        let mut metric = |name: &str, help: &str, kind: &str, rows: Vec<(String, u64)>| {
            let _ = writeln!(
                s,
                "# HELP tickcast_{name} {help}\n# TYPE tickcast_{name} {kind}"
            );
            for (labels, v) in rows {
                let _ = writeln!(s, "tickcast_{name}{labels} {v}");
            }
        };
        let f = &self.feed;
        metric(
            "feed_frames_total",
            "Input datagrams or chunks read.",
            "counter",
            vec![(String::new(), f.frames.get())],
        );
        metric(
            "feed_source_messages_total",
            "Exchange messages decoded.",
            "counter",
            vec![(String::new(), f.source_messages.get())],
        );
        metric(
            "feed_messages_total",
            "Normalized messages produced.",
            "counter",
            vec![(String::new(), f.messages_in.get())],
        );
        metric(
            "feed_unrouted_total",
            "Normalized messages no group takes.",
            "counter",
            vec![(String::new(), f.unrouted.get())],
        );
        let shard = |get: fn(&ShardCounters) -> u64| {
            self.shards
                .iter()
                .enumerate()
                .map(|(i, c)| (format!("{{shard=\"{i}\"}}"), get(c)))
                .collect::<Vec<_>>()
        };
        metric(
            "shard_messages_in_total",
            "Messages taken from the input queue.",
            "counter",
            shard(|c| c.messages_in.get()),
        );
        metric(
            "shard_sendmmsg_calls_total",
            "sendmmsg system calls.",
            "counter",
            shard(|c| c.sendmmsg_calls.get()),
        );
        metric(
            "shard_datagrams_sent_total",
            "Datagrams the kernel accepted (all destinations).",
            "counter",
            shard(|c| c.datagrams_sent.get()),
        );
        metric(
            "shard_partial_sends_total",
            "sendmmsg calls that took only part of the batch.",
            "counter",
            shard(|c| c.partial_sends.get()),
        );
        metric(
            "shard_eagain_waits_total",
            "Waits for a full socket buffer.",
            "counter",
            shard(|c| c.eagain_waits.get()),
        );
        metric(
            "shard_send_errors_total",
            "Datagrams the kernel refused.",
            "counter",
            shard(|c| c.errors.get()),
        );
        metric(
            "shard_retransmit_malformed_total",
            "Re-requests of the wrong size, refused.",
            "counter",
            shard(|c| c.retransmit_malformed.get()),
        );
        metric(
            "shard_retransmit_unknown_session_total",
            "Re-requests for a session the shard does not serve, refused.",
            "counter",
            shard(|c| c.retransmit_unknown_session.get()),
        );
        metric(
            "shard_gso_sends_total",
            "Send headers that carried several datagrams (UDP GSO).",
            "counter",
            shard(|c| c.gso_sends.get()),
        );
        metric(
            "shard_gso_refused_total",
            "GSO sends the kernel refused (then sent one by one, GSO off for that socket).",
            "counter",
            shard(|c| c.gso_refused.get()),
        );
        metric(
            "shard_queue_depth",
            "Batches waiting in the shard's input queue.",
            "gauge",
            shard(|c| c.queue_depth.get()),
        );
        let group = |get: fn(&GroupCounters) -> u64| {
            self.groups
                .iter()
                .map(|(n, sess, c)| {
                    (
                        format!(
                            "{{group=\"{}\",session=\"{}\"}}",
                            escape_label(n),
                            escape_label(sess)
                        ),
                        get(c),
                    )
                })
                .collect::<Vec<_>>()
        };
        metric(
            "group_messages_total",
            "Messages sequenced.",
            "counter",
            group(|c| c.messages.get()),
        );
        metric(
            "group_datagrams_total",
            "Datagrams built (each sent to every destination).",
            "counter",
            group(|c| c.datagrams.get()),
        );
        metric(
            "group_bytes_total",
            "Datagram bytes built.",
            "counter",
            group(|c| c.bytes.get()),
        );
        metric(
            "group_heartbeats_total",
            "Heartbeats sent.",
            "counter",
            group(|c| c.heartbeats.get()),
        );
        metric(
            "group_last_sequence",
            "Last sequence number used.",
            "gauge",
            group(|c| c.last_seq.get()),
        );
        metric(
            "group_retransmit_requests_total",
            "Re-requests received.",
            "counter",
            group(|c| c.retransmit_requests.get()),
        );
        metric(
            "group_retransmit_messages_total",
            "Messages retransmitted.",
            "counter",
            group(|c| c.retransmit_messages.get()),
        );
        metric(
            "group_retransmit_datagrams_total",
            "Datagrams sent in answer to re-requests.",
            "counter",
            group(|c| c.retransmit_datagrams.get()),
        );
        metric(
            "group_retransmit_unanswerable_total",
            "Re-requests for sequences not (yet) sent: nothing to answer.",
            "counter",
            group(|c| c.retransmit_unanswerable.get()),
        );
        metric(
            "group_retransmit_busy_total",
            "Re-requests from new sources refused while every tracked source was spending its budget.",
            "counter",
            group(|c| c.retransmit_busy.get()),
        );
        metric(
            "group_retransmit_denied_total",
            "Re-requests from outside the allowed subnets.",
            "counter",
            group(|c| c.retransmit_denied.get()),
        );
        metric(
            "group_retransmit_rate_limited_total",
            "Re-requests over the per-source rate.",
            "counter",
            group(|c| c.retransmit_rate_limited.get()),
        );
        metric(
            "group_errors_total",
            "Journal or append errors.",
            "counter",
            group(|c| c.errors.get()),
        );
        if let Some(t) = &self.tcp {
            let one = |v: u64| vec![(String::new(), v)];
            for (name, help, kind, v) in [
                (
                    "tcp_clients",
                    "TCP clients connected.",
                    "gauge",
                    t.clients.get(),
                ),
                (
                    "tcp_accepted_total",
                    "TCP connections accepted.",
                    "counter",
                    t.accepted.get(),
                ),
                (
                    "tcp_logins_total",
                    "SoupBinTCP logins accepted.",
                    "counter",
                    t.logins.get(),
                ),
                (
                    "tcp_bytes_total",
                    "Bytes sent to TCP clients.",
                    "counter",
                    t.bytes.get(),
                ),
                (
                    "tcp_messages_total",
                    "S packets sent (all clients).",
                    "counter",
                    t.messages.get(),
                ),
                (
                    "tcp_send_syscalls_total",
                    "io_uring_enter calls (io_uring) or send calls (epoll).",
                    "counter",
                    t.send_syscalls.get(),
                ),
                (
                    "tcp_syscalls_total",
                    "All system calls of the TCP agent's cycles.",
                    "counter",
                    t.syscalls.get(),
                ),
                (
                    "tcp_sqes_total",
                    "io_uring submission entries.",
                    "counter",
                    t.sqes.get(),
                ),
                (
                    "tcp_partial_sends_total",
                    "Sends the kernel took only part of.",
                    "counter",
                    t.partial_sends.get(),
                ),
                (
                    "tcp_full_sockets_total",
                    "Sends that found the client's socket full.",
                    "counter",
                    t.full_sockets.get(),
                ),
                (
                    "tcp_catchups_total",
                    "Clients moved to the journal catch-up path.",
                    "counter",
                    t.catchups.get(),
                ),
                (
                    "tcp_journal_records_total",
                    "Records read from the journal for TCP clients.",
                    "counter",
                    t.journal_records.get(),
                ),
                (
                    "tcp_accept_errors_total",
                    "Failed accepts (descriptor limits).",
                    "counter",
                    t.accept_errors.get(),
                ),
                (
                    "tcp_lag_max",
                    "Largest client lag in messages.",
                    "gauge",
                    t.max_lag.get(),
                ),
            ] {
                metric(name, help, kind, one(v));
            }
            metric(
                "tcp_disconnects_total",
                "TCP connections ended or refused, by reason.",
                "counter",
                distributor::tcp::Reason::ALL
                    .iter()
                    .map(|r| (format!("{{reason=\"{}\"}}", r.label()), t.disconnected(*r)))
                    .collect(),
            );
            let lags = t.lags.lock().map(|l| l.clone()).unwrap_or_default();
            let mut by_group: std::collections::BTreeMap<&str, u64> = Default::default();
            for l in &lags {
                let m = by_group.entry(l.group.as_str()).or_default();
                *m = (*m).max(l.lag);
            }
            metric(
                "tcp_group_lag_max",
                "Largest lag of a group's TCP clients, in messages.",
                "gauge",
                by_group
                    .iter()
                    .map(|(g, v)| (format!("{{group=\"{}\"}}", escape_label(g)), *v))
                    .collect(),
            );
            metric(
                "tcp_client_lag",
                "Each TCP client's lag in messages (refreshed every second).",
                "gauge",
                lags.iter()
                    .map(|l| {
                        (
                            format!(
                                "{{client=\"{}\",group=\"{}\"}}",
                                escape_label(&l.peer),
                                escape_label(&l.group)
                            ),
                            l.lag,
                        )
                    })
                    .collect(),
            );
        }
        s
    }
}

mod http;
pub use http::serve;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn label_values_are_escaped_and_every_counter_is_exported() {
        assert_eq!(escape_label("a\"b\\c\nd"), "a\\\"b\\\\c\\nd");
        let r = Registry {
            feed: Arc::default(),
            shards: vec![Arc::default()],
            groups: vec![("x\"y".into(), "S\\1".into(), Arc::default())],
            tcp: Some(Arc::default()),
        };
        let text = r.render();
        assert!(text.contains(r#"group="x\"y",session="S\\1""#), "{text}");
        for name in [
            "group_retransmit_datagrams_total",
            "group_retransmit_unanswerable_total",
        ] {
            assert!(text.contains(&format!("tickcast_{name}{{")), "{name}");
        }
    }

    #[test]
    fn the_grafana_dashboard_charts_exported_metrics() {
        let dashboard = include_str!("../../configs/grafana-dashboard.json");
        let r = Registry {
            feed: Arc::default(),
            shards: vec![Arc::default()],
            groups: vec![("g".into(), "S".into(), Arc::default())],
            tcp: Some(Arc::default()),
        };
        let text = r.render();
        let mut n = 0;
        for (i, _) in dashboard.match_indices("tickcast_") {
            let name: String = dashboard[i..]
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                .collect();
            assert!(
                text.contains(&format!("# TYPE {name} ")),
                "{name} is not exported"
            );
            n += 1;
        }
        assert!(n >= 12, "{n} metrics charted");
    }
}
