//! `tickcast check-config FILE`: validates a config; one line naming the key on error.

use distributor::config::Config;
use std::path::PathBuf;

#[derive(Debug, clap::Args)]
pub struct Args {
    pub file: PathBuf,
}

pub fn run(args: Args) -> anyhow::Result<i32> {
    match Config::load(Some(&args.file)) {
        Ok(c) => {
            for w in distributor::config::warnings(&c) {
                eprintln!("tickcast: warning: {w}");
            }
            println!(
                "{}: ok ({} groups on {} shards, feed {:?})",
                args.file.display(),
                c.groups.len(),
                c.shards.len(),
                c.feed.source
            );
            Ok(0)
        }
        Err(e) => {
            eprintln!("tickcast: {e}");
            Ok(2)
        }
    }
}
