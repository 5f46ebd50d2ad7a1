//! When the arbiter believes its input (see the module notes of `arbiter`): the stream is
//! established by two consistent inputs, and input far ahead of or behind it is held back
//! until traffic continuing it confirms it.

use super::{Arbiter, Jump, Output, MAX_SEQ};

impl Arbiter {
    /// Whether the stream is established (delivery may start).
    pub fn established(&self) -> bool {
        self.next != 0 && self.anchor.is_none()
    }

    /// Before the stream is established: takes the input `[first, end)` as the anchor, as its
    /// confirmation, or as a replacement for an anchor it contradicts. Returns whether to go on
    /// processing it.
    fn anchor_input(&mut self, now: u64, first: u64, end: u64, out: &mut impl Output) -> bool {
        let Some(a) = self.anchor else {
            if self.next == 0 {
                self.start(first, end, now);
            }
            return true;
        };
        let cap = self.cap();
        let consistent_with =
            move |e: u64| end > e.saturating_sub(cap) && first < e.saturating_add(cap);
        if !consistent_with(a.end) {
            // Another candidate: it replaces the anchor only if it is confirmed first.
            self.stats.implausible += 1;
            match self.jump {
                Some(j) if consistent_with(j.end) => {
                    let confirms =
                        end > j.end || now.saturating_sub(j.since_ns) >= self.cfg.gap_window_ns;
                    if !confirms {
                        return false;
                    }
                    self.stats.implausible -= 1;
                    self.start(j.first.min(first), end.max(j.end), now);
                    self.establish(out);
                    return true;
                }
                _ => {
                    self.jump = Some(Jump {
                        first,
                        end,
                        since_ns: now,
                    });
                    return false;
                }
            }
        }
        if end > a.end || now.saturating_sub(a.at_ns) >= self.cfg.gap_window_ns {
            self.establish(out);
        }
        true
    }

    /// The anchor is confirmed: history the buffer could not hold is reported, delivery starts.
    pub(super) fn establish(&mut self, out: &mut impl Output) {
        if let Some(a) = self.anchor.take() {
            if let Some((from, to)) = a.lost_history {
                out.gap(from, to);
                self.stats.gaps_lost += 1;
                self.stats.messages_lost += to - from + 1;
            }
        }
        self.drain(out);
    }

    /// Whether input reaching `[first, end)` is believable now; see the module notes. Believed
    /// far jumps (either way) are carried out here.
    pub(super) fn plausible(
        &mut self,
        now: u64,
        first: u64,
        end: u64,
        out: &mut impl Output,
    ) -> bool {
        if first > MAX_SEQ || end > MAX_SEQ {
            self.stats.implausible += 1;
            return false;
        }
        if self.cfg.confirm_ns == 0 {
            return self.trusted(now, first, end, out);
        }
        if !self.established() {
            return self.anchor_input(now, first, end, out);
        }
        let cap = self.cap();
        let limit = self
            .known_end
            .saturating_add(self.cfg.max_jump)
            .min(self.next.saturating_add(cap));
        if end.saturating_add(cap) < self.next {
            // Far behind: delivery never goes back.
            self.stats.implausible += 1;
            return false;
        }
        if end <= limit && first <= limit {
            if end > self.next {
                // The current stream is alive: any pending jump was not the sender's.
                self.jump = None;
            }
            return true;
        }
        self.stats.implausible += 1;
        let continues = self.jump.is_some_and(|j| {
            first >= j.first.saturating_sub(cap) && first <= j.end.saturating_add(self.cfg.max_jump)
        });
        if !continues {
            self.jump = Some(Jump {
                first,
                end,
                since_ns: now,
            });
            return false;
        }
        let j = self.jump.as_mut().map(|j| {
            j.end = j.end.max(end);
            *j
        });
        let Some(j) = j else { return false };
        if now.saturating_sub(j.since_ns) < self.cfg.confirm_ns {
            return false;
        }
        // Confirmed: the sender really is over there.
        self.jump = None;
        self.stats.implausible -= 1;
        self.stats.jumps += 1;
        true
    }

    /// `confirm_ns == 0`: believes input ahead at once (delivery still never goes back).
    fn trusted(&mut self, now: u64, first: u64, end: u64, out: &mut impl Output) -> bool {
        if self.next == 0 {
            self.start(first, end, now);
            self.establish(out);
        } else if end.saturating_add(self.cap()) < self.next {
            self.stats.implausible += 1;
            return false;
        } else if end > self.next.saturating_add(self.cap()) {
            self.stats.jumps += 1;
        }
        true
    }
}
