//! `tickcast gen --out FILE --messages N [--instruments K] [--seed S] [--format binaryfile|pcap]
//! [--group ADDR:PORT]`

use anyhow::{Context, Result};
use chrono::NaiveDate;
use feedhandler::generator::{self, GenFormat, GeneratorConfig};
use std::net::SocketAddrV4;
use std::path::PathBuf;

#[derive(Debug, clap::Args)]
pub struct Args {
    #[arg(long)]
    pub out: PathBuf,
    /// Messages to write, closing system events included.
    #[arg(long)]
    pub messages: u64,
    #[arg(long, default_value_t = 100)]
    pub instruments: u16,
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    #[arg(long, default_value = "binaryfile", value_parser = ["binaryfile", "pcap"])]
    pub format: String,
    /// Destination of the pcap's MoldUDP64 datagrams.
    #[arg(long, default_value = "233.54.12.111:26477")]
    pub group: SocketAddrV4,
    /// Session date the ITCH times belong to (pcap frame times use it).
    #[arg(long, default_value = "2023-08-22")]
    pub date: NaiveDate,
}

pub fn run(args: Args) -> Result<i32> {
    if args.instruments == 0 {
        anyhow::bail!("--instruments must be at least 1");
    }
    let cfg = GeneratorConfig {
        instruments: args.instruments,
        seed: args.seed,
        ..Default::default()
    };
    let format = if args.format == "pcap" {
        GenFormat::Pcap
    } else {
        GenFormat::BinaryFile
    };
    generator::write_file(&args.out, cfg, args.messages, format, args.group, args.date)
        .with_context(|| format!("writing {}", args.out.display()))?;
    Ok(0)
}
