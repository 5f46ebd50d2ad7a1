//! Time as the rest of the project reads it: wall-clock ns since the Unix epoch (what records
//! carry), and the CPU time of the calling thread (what benchmarks attribute to a stage).
#![allow(unsafe_code)]

/// Wall-clock ns since the Unix epoch; 0 if the clock is before 1970.
pub fn now_ns() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64)
}

/// CPU time the calling thread has used, in ns (`CLOCK_THREAD_CPUTIME_ID`); 0 if unavailable.
pub fn thread_cpu_ns() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid, writable timespec on the stack for the duration of the call.
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    if rc != 0 {
        return 0;
    }
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}

#[cfg(test)]
mod tests {
    #[test]
    fn clocks_move() {
        let (w, c) = (super::now_ns(), super::thread_cpu_ns());
        let mut x = 0u64;
        for i in 0..2_000_000u64 {
            x = x.wrapping_add(std::hint::black_box(i));
        }
        std::hint::black_box(x);
        assert!(super::now_ns() >= w && w > 1_600_000_000_000_000_000);
        assert!(super::thread_cpu_ns() > c);
    }
}
