//! Cache-line prefetch for passes that read ahead of the work (the feed handler's order and
//! price-level passes). A plain load that misses holds the core's reorder buffer until the
//! line arrives, so only as many misses overlap as fit in it; a prefetch retires at once and
//! the next one issues, so a whole datagram's misses are in flight together. Here (not in the
//! feed handler) because it is the one `unsafe` intrinsic the workspace needs outside I/O.
#![allow(unsafe_code)]

/// Bytes in a cache line on the targets we build for.
const LINE: usize = 64;

/// Starts loading the cache line that holds `value` into all cache levels; returns at once.
#[inline(always)]
pub fn line<T>(value: &T) {
    at(value as *const T as *const u8);
}

/// Starts loading every cache line of `values`.
#[inline(always)]
pub fn lines<T>(values: &[T]) {
    let bytes = std::mem::size_of_val(values);
    let p = values.as_ptr() as *const u8;
    let mut off = 0;
    while off < bytes {
        // A pointer inside the slice (off < its length in bytes): `wrapping_add` keeps it safe
        // code; it is only ever handed to the prefetch, which does not dereference.
        at(p.wrapping_add(off));
        off += LINE;
    }
}

#[inline(always)]
fn at(p: *const u8) {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: a prefetch is a hint: it never faults, whatever the address, and changes
    // nothing the program can observe; `p` points into a live borrow anyway.
    unsafe {
        core::arch::x86_64::_mm_prefetch::<{ core::arch::x86_64::_MM_HINT_T0 }>(p as *const i8);
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = p;
}

#[cfg(test)]
mod tests {
    #[test]
    fn prefetching_any_slice_or_value_is_harmless() {
        let v: Vec<u64> = (0..1000).collect();
        super::lines(&v);
        super::lines(&v[..0]);
        super::lines(&v[999..]);
        super::line(&v[500]);
        assert_eq!(v.iter().sum::<u64>(), 499_500);
    }
}
