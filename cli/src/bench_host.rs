//! What the host does to a run: the one-way latency of a cache line between the first two
//! cores, sampled around the phases. On a VM the host may move the vCPUs between placements
//! that share a cache and ones that do not — on the development VM ~40 against ~190 ns, and
//! the runs in the far placement cost every stage 10–25 % more CPU per message, because each
//! stage hands its data to a thread on the other core line by line.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Round trips per sample: ~10–40 ms.
const ROUNDS: u64 = 100_000;
/// A sample that takes longer than this (cores busy with other work) is dropped.
const LIMIT: Duration = Duration::from_secs(1);

/// Half the round-trip time of a cache line between cores 0 and 1 (two threads pinned there
/// passing a counter back and forth), in ns; `None` with fewer than two cores, when they cannot
/// be pinned, or when a sample runs past one second.
pub fn core_to_core_ns() -> Option<f64> {
    sample(ROUNDS, LIMIT)
}

fn sample(rounds: u64, limit: Duration) -> Option<f64> {
    let cores = core_affinity::get_core_ids()?;
    let (a, b) = (*cores.first()?, *cores.get(1)?);
    let line = Arc::new(AtomicU64::new(0));
    let deadline = Instant::now() + limit;
    // Each side waits for the other's value; both give up at the deadline.
    let wait_for = move |line: &AtomicU64, value: u64| {
        let mut spins = 0u32;
        while line.load(Ordering::Acquire) != value {
            spins += 1;
            if spins.is_multiple_of(4096) && Instant::now() > deadline {
                return false;
            }
            std::hint::spin_loop();
        }
        true
    };
    let echo = {
        let line = line.clone();
        std::thread::spawn(move || {
            if !core_affinity::set_for_current(b) {
                return;
            }
            for i in 0..rounds {
                if !wait_for(&line, 2 * i + 1) {
                    return;
                }
                line.store(2 * i + 2, Ordering::Release);
            }
        })
    };
    let ping = std::thread::spawn(move || {
        if !core_affinity::set_for_current(a) {
            return None;
        }
        let t = Instant::now();
        for i in 0..rounds {
            line.store(2 * i + 1, Ordering::Release);
            if !wait_for(&line, 2 * i + 2) {
                return None;
            }
        }
        Some(t.elapsed().as_nanos() as f64 / rounds as f64 / 2.0)
    });
    let ns = ping.join().ok().flatten();
    let _ = echo.join();
    ns
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    /// Few rounds and a long limit: the test suite keeps both cores busy, and a round whose
    /// threads are not running at once waits for the scheduler.
    #[test]
    fn a_line_crosses_between_cores_in_a_plausible_time() {
        let cores = core_affinity::get_core_ids().map_or(0, |c| c.len());
        if cores < 2 {
            println!("skipped: fewer than two cores");
            return;
        }
        let ns = super::sample(2000, Duration::from_secs(30)).expect("a sample on two cores");
        // From a shared L2 (a few ns) to a descheduled thread on a busy host (ms).
        assert!(ns > 1.0 && ns < 20_000_000.0, "{ns} ns");
    }
}
