//! Agents in the Aeron sense: a duty cycle `do_work(now)` that does what is ready and returns
//! how much it did, with the clock passed in so a cycle is unit-tested without sleeping; the
//! thread that runs an agent decides how to wait when a cycle finds nothing (its idle
//! strategy). The shard (sender), the retransmitter and the TCP agent are agents.

use std::time::Instant;

/// Pins the calling thread to `core` when one is given. A core that cannot be had (absent on
/// this host, outside the process's CPU set) leaves the thread to the scheduler, said once:
/// the process still runs. Only a core the process may run on is asked for: core_affinity
/// panics (in a function that cannot unwind, so the process aborts) on an id past the
/// kernel's 1024-CPU set.
pub fn pin_current(core: Option<usize>, what: &str) {
    let Some(id) = core else {
        return;
    };
    let allowed = core_affinity::get_core_ids().is_some_and(|ids| ids.iter().any(|c| c.id == id));
    if !allowed || !core_affinity::set_for_current(core_affinity::CoreId { id }) {
        tracing::warn!(
            core = id,
            "could not pin the {what} to its core; running unpinned"
        );
    }
}

pub trait Agent {
    /// One duty cycle at `now`; 0 when there was nothing to do (the runner may then idle).
    fn do_work(&mut self, now: Instant) -> usize;
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_pinned_thread_runs_on_its_core_only_and_an_absent_core_leaves_it_free() {
        let all = core_affinity::get_core_ids().unwrap_or_default();
        let Some(last) = all.last().map(|c| c.id) else {
            println!("skipped: this host reports no cores to pin to");
            return;
        };
        let pinned = std::thread::spawn(move || {
            super::pin_current(Some(last), "test thread");
            core_affinity::get_core_ids().unwrap_or_default()
        });
        let ids: Vec<usize> = pinned.join().unwrap().iter().map(|c| c.id).collect();
        assert_eq!(ids, vec![last]);
        let free = std::thread::spawn(|| {
            super::pin_current(Some(100_000), "test thread");
            super::pin_current(None, "test thread");
            core_affinity::get_core_ids().unwrap_or_default().len()
        });
        assert_eq!(free.join().unwrap(), all.len());
    }
}
