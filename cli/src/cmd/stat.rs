//! `tickcast stat [--metrics ADDR | --config FILE] [--once] [--json]`: a running distributor
//! seen from outside, like AeronStat: per group msgs/s, datagrams/s, msgs per datagram, send
//! calls, re-requests served / denied / rate-limited, journal position; refreshed each second.
//!
//! It reads the distributor's own Prometheus endpoint. The parser is written here, not taken
//! from a crate: it reads only tickcast's exposition (`name{label="v",...} value` lines, label
//! values escaped as `metrics::escape_label` writes them), a dozen lines.

use anyhow::{anyhow, Context, Result};
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The distributor's metrics endpoint (default: `[metrics] listen` of --config, or of the
    /// embedded default config).
    #[arg(long)]
    pub metrics: Option<SocketAddr>,
    /// Config whose `[metrics] listen` to read.
    #[arg(long)]
    pub config: Option<std::path::PathBuf>,
    /// One sample (two scrapes a second apart), then exit.
    #[arg(long)]
    pub once: bool,
    /// JSON instead of the table.
    #[arg(long)]
    pub json: bool,
    /// Stop after this many seconds (default: until interrupted).
    #[arg(long, value_parser = crate::args::seconds)]
    pub duration: Option<f64>,
}

/// One scrape: value by (metric name, labels).
type Sample = BTreeMap<(String, Vec<(String, String)>), f64>;

fn unescape(v: &str) -> String {
    let mut out = String::with_capacity(v.len());
    let mut chars = v.chars();
    while let Some(c) = chars.next() {
        if c == '\\' {
            match chars.next() {
                Some('n') => out.push('\n'),
                Some(other) => out.push(other),
                None => {}
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// Parses tickcast's exposition text.
pub fn parse(text: &str) -> Sample {
    let mut s = Sample::new();
    for line in text.lines() {
        if line.starts_with('#') || line.trim().is_empty() {
            continue;
        }
        let Some((head, value)) = line.rsplit_once(' ') else {
            continue;
        };
        let Ok(value) = value.parse::<f64>() else {
            continue;
        };
        let (name, labels) = match head.split_once('{') {
            None => (head.to_string(), Vec::new()),
            Some((name, rest)) => {
                let body = rest.strip_suffix('}').unwrap_or(rest);
                let mut labels = Vec::new();
                let mut rest = body;
                while let Some((k, after)) = rest.split_once("=\"") {
                    // The value runs to the first unescaped quote.
                    let mut end = None;
                    let mut escaped = false;
                    for (i, c) in after.char_indices() {
                        match (escaped, c) {
                            (false, '\\') => escaped = true,
                            (false, '"') => {
                                end = Some(i);
                                break;
                            }
                            _ => escaped = false,
                        }
                    }
                    let Some(end) = end else { break };
                    labels.push((
                        k.trim_start_matches(',').to_string(),
                        unescape(&after[..end]),
                    ));
                    rest = &after[end + 1..];
                }
                (name.to_string(), labels)
            }
        };
        s.insert((name, labels), value);
    }
    s
}

fn scrape(addr: SocketAddr) -> Result<Sample> {
    let mut c = TcpStream::connect_timeout(&addr, Duration::from_secs(2))
        .with_context(|| format!("metrics endpoint {addr}"))?;
    c.set_read_timeout(Some(Duration::from_secs(3)))?;
    c.write_all(b"GET /metrics HTTP/1.0\r\n\r\n")?;
    let mut body = String::new();
    c.read_to_string(&mut body)
        .with_context(|| format!("reading {addr}"))?;
    let (head, text) = body
        .split_once("\r\n\r\n")
        .ok_or_else(|| anyhow!("{addr}: not an HTTP answer"))?;
    if !head.starts_with("HTTP/1.1 200") {
        return Err(anyhow!(
            "{addr}: {}",
            head.lines().next().unwrap_or("no status")
        ));
    }
    Ok(parse(text))
}

fn get(s: &Sample, name: &str, label: (&str, &str)) -> f64 {
    s.iter()
        .find(|((n, l), _)| n == name && l.iter().any(|(k, v)| k == label.0 && v == label.1))
        .map_or(0.0, |(_, v)| *v)
}

/// Label values of `label` among the metric `name`.
fn keys(s: &Sample, name: &str, label: &str) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = s
        .keys()
        .filter(|(n, _)| n == name)
        .filter_map(|(_, l)| {
            let v = l.iter().find(|(k, _)| k == label)?.1.clone();
            let session = l
                .iter()
                .find(|(k, _)| k == "session")
                .map(|(_, v)| v.clone())
                .unwrap_or_default();
            Some((v, session))
        })
        .collect();
    out.dedup();
    out
}

/// What changed between two scrapes `dt` seconds apart.
pub fn report(a: &Sample, b: &Sample, dt: f64) -> Value {
    let rate = |name: &str, label: (&str, &str)| (get(b, name, label) - get(a, name, label)) / dt;
    let total = |name: &str, label: (&str, &str)| get(b, name, label);
    let groups: Vec<Value> = keys(b, "tickcast_group_messages_total", "group")
        .into_iter()
        .map(|(g, session)| {
            let l = ("group", g.as_str());
            let msgs = rate("tickcast_group_messages_total", l);
            let dgrams = rate("tickcast_group_datagrams_total", l);
            let requests = total("tickcast_group_retransmit_requests_total", l);
            let denied = total("tickcast_group_retransmit_denied_total", l);
            let limited = total("tickcast_group_retransmit_rate_limited_total", l);
            let busy = total("tickcast_group_retransmit_busy_total", l);
            let unanswerable = total("tickcast_group_retransmit_unanswerable_total", l);
            json!({
                "group": g,
                "session": session,
                "msgs_per_s": msgs,
                "datagrams_per_s": dgrams,
                "msgs_per_datagram": if dgrams > 0.0 { msgs / dgrams } else { 0.0 },
                "journal_position": total("tickcast_group_last_sequence", l),
                "heartbeats": total("tickcast_group_heartbeats_total", l),
                "re_requests": {
                    "received": requests,
                    "served": (requests - denied - limited - busy - unanswerable).max(0.0),
                    "denied": denied,
                    "rate_limited": limited + busy,
                    "messages_retransmitted": total("tickcast_group_retransmit_messages_total", l),
                },
                // Present once the SoupBinTCP server runs and a client is logged in.
                "tcp_lag": b
                    .iter()
                    .find(|((n, labels), _)| n == "tickcast_tcp_group_lag_max" && labels.iter().any(|(k, v)| k == "group" && v == &g))
                    .map_or(Value::Null, |(_, v)| json!(v)),
            })
        })
        .collect();
    let shards: Vec<Value> = keys(b, "tickcast_shard_sendmmsg_calls_total", "shard")
        .into_iter()
        .map(|(sh, _)| {
            let l = ("shard", sh.as_str());
            json!({
                "shard": sh,
                "send_calls_per_s": rate("tickcast_shard_sendmmsg_calls_total", l),
                "datagrams_sent_per_s": rate("tickcast_shard_datagrams_sent_total", l),
                "queue_depth": total("tickcast_shard_queue_depth", l),
                "send_errors": total("tickcast_shard_send_errors_total", l),
            })
        })
        .collect();
    let feed = |name: &str| {
        b.iter()
            .find(|((n, _), _)| n == name)
            .map_or(0.0, |(_, v)| *v)
            - a.iter()
                .find(|((n, _), _)| n == name)
                .map_or(0.0, |(_, v)| *v)
    };
    json!({
        "seconds": dt,
        "feed": {
            "frames_per_s": feed("tickcast_feed_frames_total") / dt,
            "source_msgs_per_s": feed("tickcast_feed_source_messages_total") / dt,
        },
        "groups": groups,
        "shards": shards,
    })
}

/// The report as an 80-column table.
pub fn table(r: &Value) -> String {
    let mut s = String::new();
    let f = |v: &Value| v.as_f64().unwrap_or(0.0);
    s += &format!(
        "tickcast stat   feed {:>10.0} msgs/s {:>8.0} frames/s\n",
        f(&r["feed"]["source_msgs_per_s"]),
        f(&r["feed"]["frames_per_s"])
    );
    s += "group            msgs/s   dgram/s  m/dg    journal  rtx ok/den/lim\n";
    for g in r["groups"].as_array().into_iter().flatten() {
        let rr = &g["re_requests"];
        let name: String = g["group"].as_str().unwrap_or("").chars().take(14).collect();
        s += &format!(
            "{:<14} {:>9.0} {:>9.0} {:>5.1} {:>10.0}  {:>4.0}/{:.0}/{:.0}\n",
            name,
            f(&g["msgs_per_s"]),
            f(&g["datagrams_per_s"]),
            f(&g["msgs_per_datagram"]),
            f(&g["journal_position"]),
            f(&rr["served"]),
            f(&rr["denied"]),
            f(&rr["rate_limited"]),
        );
    }
    s += "shard   send calls/s   datagrams/s   queue\n";
    for sh in r["shards"].as_array().into_iter().flatten() {
        s += &format!(
            "{:<7} {:>12.0} {:>13.0} {:>7.0}\n",
            sh["shard"].as_str().unwrap_or(""),
            f(&sh["send_calls_per_s"]),
            f(&sh["datagrams_sent_per_s"]),
            f(&sh["queue_depth"]),
        );
    }
    s
}

pub fn run(args: Args) -> Result<i32> {
    let addr = match args.metrics {
        Some(a) => a,
        None => {
            let cfg = distributor::config::Config::load(args.config.as_deref())
                .map_err(|e| anyhow!(e))?;
            cfg.metrics
                .listen
                .ok_or_else(|| anyhow!("[metrics] listen: not set in the config; give --metrics"))?
        }
    };
    let started = Instant::now();
    let mut prev = scrape(addr)?;
    let mut at = Instant::now();
    loop {
        std::thread::sleep(Duration::from_secs(1));
        let now = scrape(addr)?;
        let r = report(&prev, &now, at.elapsed().as_secs_f64());
        let text = if args.json {
            format!("{r}\n")
        } else if args.once {
            table(&r)
        } else {
            format!("\x1b[H\x1b[2J{}", table(&r))
        };
        // A closed stdout ends the watch.
        if std::io::stdout().write_all(text.as_bytes()).is_err() {
            return Ok(0);
        }
        let _ = std::io::stdout().flush();
        if args.once
            || args
                .duration
                .is_some_and(|d| started.elapsed().as_secs_f64() >= d)
        {
            return Ok(0);
        }
        prev = now;
        at = Instant::now();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_escaped_labels_and_computes_rates() {
        let a = parse(
            "# HELP x\ntickcast_group_messages_total{group=\"a\\\"b\",session=\"S1\"} 100\ntickcast_group_datagrams_total{group=\"a\\\"b\",session=\"S1\"} 10\n",
        );
        let b = parse(
            "tickcast_group_messages_total{group=\"a\\\"b\",session=\"S1\"} 300\ntickcast_group_datagrams_total{group=\"a\\\"b\",session=\"S1\"} 20\ntickcast_group_last_sequence{group=\"a\\\"b\",session=\"S1\"} 300\n",
        );
        let r = report(&a, &b, 2.0);
        let g = &r["groups"][0];
        assert_eq!(g["group"], "a\"b");
        assert_eq!(g["session"], "S1");
        assert_eq!(g["msgs_per_s"], 100.0);
        assert_eq!(g["msgs_per_datagram"], 20.0);
        assert_eq!(g["journal_position"], 300.0);
        assert!(table(&r).lines().all(|l| l.chars().count() <= 80));
    }
}
