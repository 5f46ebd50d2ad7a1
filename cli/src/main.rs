use clap::{Parser, Subcommand};
use cli::cmd;

/// tickcast: market-data multicast distribution.
#[derive(Debug, Parser)]
#[command(
    name = "tickcast",
    version,
    about = "tickcast: market-data multicast distribution (ITCH 5.0 in, MoldUDP64 groups out)"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Decode and normalize a capture or BinaryFILE.
    Decode(cmd::decode::Args),
    /// Write a synthetic ITCH 5.0 feed.
    Gen(cmd::gen::Args),
    /// Run the distributor.
    Run(cmd::run::Args),
    /// Validate a config file.
    CheckConfig(cmd::check_config::Args),
    /// Measure tickcast against a naive sender and the raw kernel limit.
    Bench(cmd::bench::Args),
    /// Watch a running distributor: per group rates, re-requests, journal position.
    Stat(cmd::stat::Args),
    /// Check this host against a config (buffers, cores, interfaces, routes, journal, clock).
    Doctor(cmd::doctor::Args),
}

fn main() {
    let cli = Cli::parse();
    // Offline commands print one summary line for bad input; per-record warnings are opt-in.
    let default_level = match cli.command {
        Command::Decode(_)
        | Command::Gen(_)
        | Command::CheckConfig(_)
        | Command::Bench(_)
        | Command::Stat(_)
        | Command::Doctor(_) => "error",
        Command::Run(_) => "info",
    };
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default_level)),
        )
        .with_writer(std::io::stderr)
        .init();
    let result = match cli.command {
        Command::Decode(a) => cmd::decode::run(a),
        Command::Gen(a) => cmd::gen::run(a),
        Command::Run(a) => cmd::run::run(a),
        Command::CheckConfig(a) => cmd::check_config::run(a),
        Command::Bench(a) => cmd::bench::run(a),
        Command::Stat(a) => cmd::stat::run(a),
        Command::Doctor(a) => cmd::doctor::run(a),
    };
    match result {
        Ok(code) => std::process::exit(code),
        Err(e) => {
            eprintln!("tickcast: {e:#}");
            std::process::exit(2);
        }
    }
}
