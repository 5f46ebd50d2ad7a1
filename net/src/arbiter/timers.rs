//! The arbiter's timers: holes past the gap timeout are reported lost, and holes past the gap
//! window are requested and retried.

use super::{Arbiter, Inflight, Output};

impl Arbiter {
    /// Runs the timers: reports holes older than the gap timeout, sends and retries requests.
    pub fn tick(&mut self, now: u64, out: &mut impl Output) {
        if !self.established() || self.next >= self.known_end {
            self.check_end(out);
            return;
        }
        // 1. Expire from the front: the front hole is the oldest.
        while self.next < self.known_end {
            if self.present[self.slot(self.next)] {
                self.drain(out);
                continue;
            }
            if now.saturating_sub(self.opened_at(self.next)) < self.cfg.gap_timeout_ns {
                break;
            }
            let to = self.next_present(self.next);
            self.lose(self.next, to - 1, out);
            self.drain(out);
        }
        // 2. Requests, at most every half window (bounded work per call).
        if now >= self.next_scan_ns {
            self.next_scan_ns = now.saturating_add((self.cfg.gap_window_ns / 2).max(100_000));
            self.requests(now, out);
        }
        self.after_progress(out);
    }

    /// Asks for holes older than the gap window, at most `max_inflight` out, retrying each
    /// with a timeout that doubles.
    fn requests(&mut self, now: u64, out: &mut impl Output) {
        let end = self.known_end.min(self.next.saturating_add(self.cap()));
        let mut s = self.next;
        let mut holes = 0;
        while s < end && holes < self.cfg.max_inflight {
            if self.present[self.slot(s)] {
                s += 1;
                continue;
            }
            let from = s;
            let to = self.next_present(s).min(end);
            s = to;
            holes += 1;
            if now.saturating_sub(self.opened_at(from)) < self.cfg.gap_window_ns {
                break; // later holes are younger still
            }
            let count = (to - from).min(u64::from(self.cfg.max_request)) as u16;
            match self
                .inflight
                .iter()
                .position(|f| f.from <= from && from < f.to)
            {
                None => {
                    if self.inflight.len() >= self.cfg.max_inflight {
                        continue;
                    }
                    out.request(from, count);
                    self.stats.requests += 1;
                    self.stats.gaps_opened += 1;
                    self.inflight.push(Inflight {
                        from,
                        to: from + u64::from(count),
                        sent_ns: now,
                        tries: 1,
                    });
                }
                Some(k) => {
                    let f = self.inflight[k];
                    let timeout = self
                        .cfg
                        .request_timeout_ns
                        .saturating_mul(1 << (f.tries - 1).min(16));
                    if now.saturating_sub(f.sent_ns) < timeout {
                        continue;
                    }
                    if f.tries <= self.cfg.max_retries + 1 {
                        // Timed out with its first message missing: unanswered.
                        self.stats.requests_unanswered += 1;
                        out.request_unanswered(f.from, (f.to - f.from) as u16);
                    }
                    if f.tries > self.cfg.max_retries {
                        // Given up asking; the hole is reported when its gap timeout comes.
                        self.inflight[k] = Inflight {
                            sent_ns: u64::MAX / 2,
                            tries: f.tries + 1,
                            ..f
                        };
                        continue;
                    }
                    out.request(from, count);
                    self.stats.requests += 1;
                    self.inflight[k] = Inflight {
                        from,
                        to: from + u64::from(count),
                        sent_ns: now,
                        tries: f.tries + 1,
                    };
                }
            }
        }
    }
}
