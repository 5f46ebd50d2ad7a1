//! Replay pacing: as recorded, N times faster, or as fast as possible.

use std::time::{Duration, Instant};

/// Slowest and fastest pacing: a thousand times slower than recorded at most (a replay must
/// end), a million times faster (beyond that, "max").
pub const MIN_SPEED: f64 = 0.001;
pub const MAX_SPEED: f64 = 1e6;

#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Speed {
    /// No waiting.
    Max,
    /// Multiple of the recorded rate (1.0 = as recorded).
    Times(f64),
}

impl std::str::FromStr for Speed {
    type Err = String;
    fn from_str(s: &str) -> Result<Speed, String> {
        if s == "max" {
            return Ok(Speed::Max);
        }
        match s.trim_end_matches('x').parse::<f64>() {
            Ok(v) if (MIN_SPEED..=MAX_SPEED).contains(&v) => Ok(Speed::Times(v)),
            _ => Err(format!(
                "speed must be \"max\" or a multiple of the recorded rate from {MIN_SPEED} to {MAX_SPEED}, got {s:?}"
            )),
        }
    }
}

/// Sleeps so that frame times replay at the chosen speed.
#[derive(Debug)]
pub struct Pacer {
    speed: Speed,
    origin: Option<(u64, Instant)>,
}

impl Pacer {
    pub fn new(speed: Speed) -> Pacer {
        Pacer {
            speed,
            origin: None,
        }
    }

    /// Waits until the frame stamped `ts_ns` is due, or `stop` says to stop (checked every
    /// 20 ms, so a signal ends even a slow replay promptly). Returns `false` when stopped.
    pub fn wait(&mut self, ts_ns: u64, stop: &dyn Fn() -> bool) -> bool {
        let Speed::Times(x) = self.speed else {
            return true;
        };
        let (t0, start) = *self.origin.get_or_insert((ts_ns, Instant::now()));
        let due = Duration::from_secs_f64(ts_ns.saturating_sub(t0) as f64 / 1e9 / x);
        loop {
            if stop() {
                return false;
            }
            let elapsed = start.elapsed();
            if due <= elapsed {
                return true;
            }
            std::thread::sleep((due - elapsed).min(Duration::from_millis(20)));
        }
    }
}
