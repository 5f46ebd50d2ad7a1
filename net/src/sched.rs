//! How the kernel schedules the calling thread: a short EEVDF slice for a thread messages
//! wait on.
//!
//! Why: under EEVDF a woken thread that shares its core with a running one waits until that
//! one has used its slice (0.75–3 ms by default) unless its own slice is shorter. The shard is
//! pinned, so it cannot move away from whatever runs on its core (on the 2-core VM `perf sched`
//! showed a woken shard waiting 4.8 ms). A short slice (Linux 6.12+,
//! `sched_attr.sched_runtime` of a `SCHED_OTHER` thread, no privilege needed) lets the woken
//! thread preempt at once.

#![allow(unsafe_code)]

use std::io;

/// `struct sched_attr`, first version (48 bytes): the kernel accepts this size from any newer
/// or older caller.
#[repr(C)]
#[derive(Default, Clone, Copy)]
struct SchedAttr {
    size: u32,
    policy: u32,
    flags: u64,
    nice: i32,
    priority: u32,
    runtime: u64,
    deadline: u64,
    period: u64,
}

/// The kernel's bounds on a custom slice.
pub const MIN_SLICE_NS: u64 = 100_000;
pub const MAX_SLICE_NS: u64 = 100_000_000;

/// Gives the calling thread an EEVDF slice of `slice_ns` (clamped to the kernel's 0.1–100
/// ms): a shorter slice than its neighbours' means it preempts them when woken. Its nice
/// value is kept; a thread an operator put under a real-time policy (`chrt`) is left as it
/// is, since it preempts normal threads anyway. Kernels before 6.12 accept the call and
/// ignore the slice: that is found by reading it back and returned as `Unsupported`, which
/// callers log and run on without.
pub fn set_slice(slice_ns: u64) -> io::Result<()> {
    let want = slice_ns.clamp(MIN_SLICE_NS, MAX_SLICE_NS);
    let now = get_attr()?;
    if now.policy != libc::SCHED_OTHER as u32 {
        return Ok(());
    }
    set_attr(&SchedAttr {
        runtime: want,
        ..now
    })?;
    if slice()? != want {
        return Err(io::Error::new(
            io::ErrorKind::Unsupported,
            "the kernel ignores custom slices (before Linux 6.12)",
        ));
    }
    Ok(())
}

/// The calling thread's current slice in ns.
pub fn slice() -> io::Result<u64> {
    get_attr().map(|a| a.runtime)
}

fn get_attr() -> io::Result<SchedAttr> {
    let mut a = SchedAttr::default();
    let size = std::mem::size_of::<SchedAttr>() as libc::c_uint;
    // SAFETY: `a` is a writable `sched_attr` of `size` bytes that outlives the call; pid 0 is
    // the calling thread; flags must be 0.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_sched_getattr,
            0,
            &mut a as *mut SchedAttr,
            size,
            0,
        )
    };
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(a)
}

fn set_attr(a: &SchedAttr) -> io::Result<()> {
    let a = SchedAttr {
        size: std::mem::size_of::<SchedAttr>() as u32,
        flags: 0,
        ..*a
    };
    // SAFETY: `a` is a fully initialised `sched_attr` whose `size` field says how many bytes
    // the kernel may read; it lives until the call returns; pid 0 is the calling thread.
    let rc = unsafe { libc::syscall(libc::SYS_sched_setattr, 0, &a as *const SchedAttr, 0) };
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_thread_gets_the_slice_it_asks_for_clamped_and_keeps_its_nice_value() {
        std::thread::spawn(|| match set_slice(10) {
            Ok(()) => {
                assert_eq!(slice().unwrap(), MIN_SLICE_NS);
                set_attr(&SchedAttr {
                    nice: 3,
                    ..get_attr().unwrap()
                })
                .unwrap();
                set_slice(2_000_000).unwrap();
                let a = get_attr().unwrap();
                assert_eq!((a.runtime, a.nice), (2_000_000, 3));
            }
            Err(e) => {
                assert_eq!(e.kind(), std::io::ErrorKind::Unsupported, "{e}");
                eprintln!("skipped: this kernel has no custom slices (before 6.12)");
            }
        })
        .join()
        .unwrap();
    }
}
