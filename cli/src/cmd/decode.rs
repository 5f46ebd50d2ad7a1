//! `tickcast decode FILE [--format auto|pcap|binaryfile] [--json] [--stats]`

use anyhow::Result;
use chrono::NaiveDate;
use feedhandler::source::pcap::Filter;
use feedhandler::source::{self, FileFormat};
use feedhandler::{FeedHandler, SessionClock};
use std::io::Write;
use std::path::PathBuf;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// A pcap/pcapng capture of MoldUDP64, or a BinaryFILE (plain or gzip).
    pub file: PathBuf,
    /// Input format; `auto` sniffs the file's first bytes.
    #[arg(long, default_value = "auto", value_parser = ["auto", "pcap", "binaryfile"])]
    pub format: String,
    /// One JSON object per normalized message per line.
    #[arg(long)]
    pub json: bool,
    /// One JSON object of counters at the end.
    #[arg(long)]
    pub stats: bool,
    /// Session date (YYYY-MM-DD) for ITCH times; default: the pcap frame time, else a date in
    /// the file name, else today.
    #[arg(long)]
    pub date: Option<NaiveDate>,
    /// Keep only datagrams to this group (pcap).
    #[arg(long)]
    pub group: Option<std::net::Ipv4Addr>,
    /// Keep only datagrams to this UDP port (pcap).
    #[arg(long)]
    pub port: Option<u16>,
}

pub fn run(args: Args) -> Result<i32> {
    let forced = match args.format.as_str() {
        "pcap" => Some(FileFormat::Pcap),
        "binaryfile" => Some(FileFormat::BinaryFile),
        _ => None,
    };
    let filter = Filter {
        group: args.group,
        port: args.port,
    };
    // Read once from the start: pipes and FIFOs (`/dev/stdin`) work.
    let (mut src, format) = source::open(&args.file, forced, filter)?;
    let name = args
        .file
        .file_name()
        .map(|n| n.to_string_lossy().to_string())
        .unwrap_or_default();
    let date = args
        .date
        .or_else(|| feedhandler::clock::date_from_name(&name))
        .unwrap_or_else(|| SessionClock::date_of_epoch_ns(feedhandler::now_ns()));
    let from_frames = args.date.is_none() && format.is_pcap();
    let mut fh = FeedHandler::new(SessionClock::new(date), from_frames);
    fh.accept_unsequenced = true;

    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    let mut lines = protocol::json::JsonLines::new();
    let mut write_err: Option<std::io::Error> = None;
    let json = args.json;
    let result = feedhandler::replay::run(src.as_mut(), &mut fh, None, &|| false, &mut |m| {
        if !json || write_err.is_some() {
            return;
        }
        if let Err(e) = out.write_all(lines.render(m, None).as_bytes()) {
            write_err = Some(e);
        }
    });
    let stats = &fh.normalizer.stats;
    if write_err.is_none() && args.stats {
        write_err = writeln!(out, "{}", stats.to_json()).err();
    }
    if write_err.is_none() {
        write_err = out.flush().err();
    }
    // A reader that stops early (`| head`) is not an error of ours.
    if let Some(e) = write_err.filter(|e| e.kind() != std::io::ErrorKind::BrokenPipe) {
        return Err(e.into());
    }
    // What the content says about itself explains more than where reading stopped (a file of
    // zero-length prefixes also ends in a torn record); otherwise the source's error, which
    // names the file.
    if let Some(why) = stats.verdict(format) {
        eprintln!("tickcast decode: {}: {why}", args.file.display());
        return Ok(1);
    }
    if let Err(e) = result {
        eprintln!(
            "tickcast decode: stopped early: {e} (decoded {} messages)",
            stats.messages
        );
        return Ok(1);
    }
    Ok(0)
}
