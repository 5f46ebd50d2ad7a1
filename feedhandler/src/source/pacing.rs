//! Replay pacing: as recorded, N times faster, or as fast as possible.

use std::time::{Duration, Instant};

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
            Ok(v) if v > 0.0 && v.is_finite() => Ok(Speed::Times(v)),
            _ => Err(format!(
                "speed must be a positive number or \"max\", got {s:?}"
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

    /// Waits until the frame stamped `ts_ns` is due.
    pub fn wait(&mut self, ts_ns: u64) {
        let Speed::Times(x) = self.speed else { return };
        let (t0, start) = *self.origin.get_or_insert((ts_ns, Instant::now()));
        let due = Duration::from_nanos((ts_ns.saturating_sub(t0) as f64 / x) as u64);
        let elapsed = start.elapsed();
        if due > elapsed {
            std::thread::sleep(due - elapsed);
        }
    }
}
