//! Driving a file source through the feed handler: optional pacing and a progress bar when
//! stdout is a terminal.

use crate::feed::FeedHandler;
use crate::source::pacing::Pacer;
use crate::source::{Source, SourceError};
use protocol::schema::Repr;
use std::io::IsTerminal;

/// Reads every frame of `source` into `fh`, passing normalized messages to `out`. Stops early
/// when `stop` returns true (checked between frames).
pub fn run(
    source: &mut dyn Source,
    fh: &mut FeedHandler,
    mut pacer: Option<Pacer>,
    stop: &dyn Fn() -> bool,
    out: &mut impl FnMut(&Repr),
) -> Result<(), SourceError> {
    let bar = progress_bar(source);
    let mut frames = 0u64;
    let result = loop {
        if stop() {
            break Ok(());
        }
        let frame = match source.next_frame() {
            Ok(Some(f)) => f,
            Ok(None) => {
                // Holes still open are reported; what waited behind them is released.
                fh.finish(out);
                break Ok(());
            }
            Err(e) => break Err(e),
        };
        if let Some(p) = &mut pacer {
            if !p.wait(frame.recv_ts_ns, stop) {
                break Ok(());
            }
        }
        fh.on_frame(&frame, out);
        frames += 1;
        if frames.is_multiple_of(1024) {
            if let (Some(b), Some((done, _))) = (&bar, source.progress()) {
                b.set_position(done);
            }
        }
    };
    if let Some(b) = bar {
        b.finish_and_clear();
    }
    result
}

/// A progress bar on stderr for a long file (64 MiB or more), only when stdout is a terminal.
pub fn progress_bar(source: &dyn Source) -> Option<indicatif::ProgressBar> {
    let (_, total) = source.progress()?;
    if !std::io::stdout().is_terminal() || total < (64 << 20) {
        return None;
    }
    let bar = indicatif::ProgressBar::with_draw_target(
        Some(total),
        indicatif::ProgressDrawTarget::stderr(),
    );
    bar.set_style(
        indicatif::ProgressStyle::with_template(
            "{bar:40} {bytes}/{total_bytes} {bytes_per_sec} eta {eta}",
        )
        .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
    );
    Some(bar)
}
