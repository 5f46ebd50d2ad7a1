//! Agents in the Aeron sense: a duty cycle `do_work(now)` that does what is ready and returns
//! how much it did, with the clock passed in so a cycle is unit-tested without sleeping; the
//! thread that runs an agent decides how to wait when a cycle finds nothing (its idle
//! strategy). The shard (sender), the retransmitter and the TCP agent are agents.

use std::time::Instant;

pub trait Agent {
    /// One duty cycle at `now`; 0 when there was nothing to do (the runner may then idle).
    fn do_work(&mut self, now: Instant) -> usize;
}
