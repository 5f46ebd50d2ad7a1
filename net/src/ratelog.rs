//! Logging a recurring error at most once per interval per kind, with a count of the rest.

use std::time::{Duration, Instant};

#[derive(Debug, Clone)]
pub struct RateLimited {
    every: Duration,
    last: Option<Instant>,
    suppressed: u64,
}

impl Default for RateLimited {
    fn default() -> Self {
        RateLimited::new(Duration::from_secs(5))
    }
}

impl RateLimited {
    pub fn new(every: Duration) -> RateLimited {
        RateLimited {
            every,
            last: None,
            suppressed: 0,
        }
    }

    /// `Some(n)` when this occurrence should be logged (`n` occurrences were silent since the
    /// last log line); `None` to stay quiet.
    pub fn hit(&mut self) -> Option<u64> {
        let now = Instant::now();
        match self.last {
            Some(t) if now.duration_since(t) < self.every => {
                self.suppressed += 1;
                None
            }
            _ => {
                self.last = Some(now);
                Some(std::mem::take(&mut self.suppressed))
            }
        }
    }
}

/// Logs a warning through a `RateLimited` gate.
#[macro_export]
macro_rules! warn_limited {
    ($gate:expr, $($arg:tt)*) => {
        if let Some(suppressed) = $gate.hit() {
            $crate::__tracing::warn!(suppressed, $($arg)*);
        }
    };
}
