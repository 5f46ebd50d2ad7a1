//! The C ABI: an opaque handle, groups added by address strings, a per-message callback with
//! kind code, pointer and length, a stats getter and plain error codes; and a SoupBinTCP
//! subscriber handle with the same callback (`ffi/tcp.rs`). The header
//! `include/tickcast.h` is generated from this module by cbindgen.
//!
//! This is the SDK's one module with `unsafe`: C hands us raw pointers. Every block checks for
//! null first and states why the rest is sound. No panic unwinds into C: every entry point runs
//! its body under `catch_unwind` and returns `TC_ERR_PANIC` instead.
#![allow(unsafe_code)]

use crate::subscriber::{Context, GroupSpec, Handler, Options, PollMode, Subscriber};
use protocol::schema::Message;
use std::ffi::{c_char, c_int, c_void, CStr};
use std::net::{Ipv4Addr, SocketAddrV4};
use std::time::{Duration, Instant};

/// Success.
pub const TC_OK: c_int = 0;
/// A required pointer was null.
pub const TC_ERR_NULL: c_int = -1;
/// An address or argument could not be parsed.
pub const TC_ERR_ARGUMENT: c_int = -2;
/// A socket operation failed (bind, join, receive).
pub const TC_ERR_IO: c_int = -3;
/// An internal error (a bug in the library); the handle may be unusable, free it.
pub const TC_ERR_PANIC: c_int = -4;

/// Runs `f`, turning a panic into `TC_ERR_PANIC` so that it never unwinds into C.
fn guarded(f: impl FnOnce() -> c_int) -> c_int {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)).unwrap_or(TC_ERR_PANIC)
}

/// Size of every record (schema version 1).
pub const TC_RECORD_SIZE: usize = 64;
const _: () = assert!(TC_RECORD_SIZE == protocol::schema::RECORD_SIZE);
/// Kind codes (byte 1 of a record), as in docs/PROTOCOL.md.
pub const TC_KIND_INSTRUMENT_DEFINITION: u8 = 1;
pub const TC_KIND_ORDER_ADD: u8 = 2;
pub const TC_KIND_ORDER_REPLACE: u8 = 3;
pub const TC_KIND_ORDER_CANCEL: u8 = 4;
pub const TC_KIND_ORDER_DELETE: u8 = 5;
pub const TC_KIND_ORDER_EXECUTED: u8 = 6;
pub const TC_KIND_ORDER_EXECUTED_WITH_PRICE: u8 = 7;
pub const TC_KIND_TRADE: u8 = 8;
pub const TC_KIND_CROSS_TRADE: u8 = 9;
pub const TC_KIND_BROKEN_TRADE: u8 = 10;
pub const TC_KIND_TRADING_STATUS: u8 = 11;
pub const TC_KIND_SYSTEM_EVENT: u8 = 12;
pub const TC_KIND_IMBALANCE: u8 = 13;
pub const TC_KIND_TOP_OF_BOOK: u8 = 14;
/// Upstream (exchange) messages lost for good: see docs/PROTOCOL.md, kind 15.
pub const TC_KIND_FEED_STATUS: u8 = 15;

/// Opaque subscriber handle.
pub struct TcSubscriber {
    inner: Subscriber,
}

/// Called once per delivered message, in sequence order. `data` points at `len` bytes of the
/// normalized record (docs/PROTOCOL.md), valid only during the call.
pub type TcMessageCallback = Option<
    extern "C" fn(user: *mut c_void, group: u32, seq: u64, kind: u8, data: *const u8, len: usize),
>;

/// Called when messages `from..=to` of a group are lost for good.
pub type TcGapCallback = Option<extern "C" fn(user: *mut c_void, group: u32, from: u64, to: u64)>;

/// Counters of a subscriber (all groups).
#[repr(C)]
#[derive(Debug, Default, Clone, Copy)]
pub struct TcStats {
    pub received: u64,
    pub delivered: u64,
    pub duplicates: u64,
    pub gaps_opened: u64,
    pub gaps_filled: u64,
    pub gaps_lost: u64,
    pub messages_lost: u64,
    pub requests: u64,
    pub kernel_drops: u64,
    pub latency_p50_ns: u64,
    pub latency_p99_ns: u64,
    pub latency_p999_ns: u64,
    /// Re-requests that timed out with their first message still missing.
    pub requests_unanswered: u64,
    /// Datagrams of another session, or from another sender than the feed's.
    pub wrong_session: u64,
    pub wrong_source: u64,
    /// Datagrams held back because their sequence jumped beyond the window unconfirmed.
    pub implausible: u64,
}

/// The C string at `p`, or `None` for NULL.
///
/// # Safety
/// `p` must be NULL or point at a NUL-terminated string that lives for `'a`.
unsafe fn c_str<'a>(p: *const c_char) -> Option<&'a CStr> {
    // SAFETY: non-null per the check, NUL-terminated and alive per this function's contract.
    (!p.is_null()).then(|| unsafe { CStr::from_ptr(p) })
}

fn parse_addr(s: Option<&CStr>) -> Result<Option<SocketAddrV4>, c_int> {
    let Some(s) = s else {
        return Ok(None);
    };
    let s = s.to_str().map_err(|_| TC_ERR_ARGUMENT)?;
    s.parse().map(Some).map_err(|_| TC_ERR_ARGUMENT)
}

/// Creates a subscriber; `*out` receives the handle. Free it with `tc_subscriber_free`.
///
/// # Safety
/// `out` must be NULL or point at writable storage for one pointer.
#[no_mangle]
pub unsafe extern "C" fn tc_subscriber_new(out: *mut *mut TcSubscriber) -> c_int {
    if out.is_null() {
        return TC_ERR_NULL;
    }
    guarded(|| {
        let options = Options {
            poll: PollMode::BusySpin,
            ..Options::default()
        };
        let h = Box::into_raw(Box::new(TcSubscriber {
            inner: Subscriber::new(options),
        }));
        // SAFETY: `out` is non-null and the caller provides a writable pointer slot.
        unsafe { *out = h };
        TC_OK
    })
}

/// Joins a group. `feed_a` is "ADDR:PORT"; `feed_b`, `retransmit` may be NULL; `interface` is
/// an IPv4 address or NULL for 127.0.0.1. The session is adopted after consistent traffic (see
/// `tc_subscriber_add_group_session` to name it). Returns the group index (>= 0) or an error
/// code.
///
/// # Safety
/// `sub` must be NULL or a live handle from `tc_subscriber_new`; each string must be NULL or NUL-terminated.
#[no_mangle]
pub unsafe extern "C" fn tc_subscriber_add_group(
    sub: *mut TcSubscriber,
    feed_a: *const c_char,
    feed_b: *const c_char,
    interface: *const c_char,
    retransmit: *const c_char,
) -> c_int {
    // SAFETY: the same contract as this function's, passed on; the session is NULL.
    unsafe {
        tc_subscriber_add_group_session(
            sub,
            feed_a,
            feed_b,
            interface,
            retransmit,
            std::ptr::null(),
        )
    }
}

/// Like `tc_subscriber_add_group`, with the group's MoldUDP64 `session` (up to 10 ASCII
/// characters; NULL: adopted after consistent traffic). Datagrams of any other session are
/// counted (`wrong_session`) and never delivered.
///
/// # Safety
/// `sub` must be NULL or a live handle from `tc_subscriber_new`; each string must be NULL or NUL-terminated.
#[no_mangle]
pub unsafe extern "C" fn tc_subscriber_add_group_session(
    sub: *mut TcSubscriber,
    feed_a: *const c_char,
    feed_b: *const c_char,
    interface: *const c_char,
    retransmit: *const c_char,
    session: *const c_char,
) -> c_int {
    if sub.is_null() || feed_a.is_null() {
        return TC_ERR_NULL;
    }
    // SAFETY: each pointer is NULL or a NUL-terminated string valid during this call (the
    // function's contract).
    let (feed_a, feed_b, interface, retransmit, session) = unsafe {
        (
            c_str(feed_a),
            c_str(feed_b),
            c_str(interface),
            c_str(retransmit),
            c_str(session),
        )
    };
    // SAFETY: `sub` is non-null and was made by `tc_subscriber_new`; the caller does not use
    // it from another thread during this call.
    let s = unsafe { &mut (*sub).inner };
    guarded(|| {
        let parsed = (|| {
            let a = parse_addr(feed_a)?.ok_or(TC_ERR_NULL)?;
            let b = parse_addr(feed_b)?;
            let r = parse_addr(retransmit)?;
            let iface = match interface {
                None => Ipv4Addr::LOCALHOST,
                Some(s) => s
                    .to_str()
                    .ok()
                    .and_then(|s| s.parse().ok())
                    .ok_or(TC_ERR_ARGUMENT)?,
            };
            let session = match session {
                None => None,
                Some(s) => Some(
                    s.to_str()
                        .ok()
                        .and_then(|s| protocol::Session::new(s).ok())
                        .ok_or(TC_ERR_ARGUMENT)?,
                ),
            };
            Ok::<_, c_int>((a, b, r, iface, session))
        })();
        let (a, b, r, iface, session) = match parsed {
            Ok(v) => v,
            Err(e) => return e,
        };
        let mut spec = GroupSpec::new(&format!("group{}", s.group_count()), a).interface(iface);
        if let Some(b) = b {
            spec = spec.feed_b(b);
        }
        if let Some(r) = r {
            spec = spec.retransmit(r);
        }
        if let Some(session) = session {
            spec = spec.session(session);
        }
        match s.add_group(spec) {
            Ok(i) => i as c_int,
            Err(_) => TC_ERR_IO,
        }
    })
}

struct CHandler {
    on_message: TcMessageCallback,
    on_gap: TcGapCallback,
    user: *mut c_void,
    ended: u32,
}

impl CHandler {
    fn new(on_message: TcMessageCallback, on_gap: TcGapCallback, user: *mut c_void) -> CHandler {
        CHandler {
            on_message,
            on_gap,
            user,
            ended: 0,
        }
    }
}

impl Handler for CHandler {
    fn on_message(&mut self, ctx: &Context<'_>, msg: &Message<&[u8]>) {
        if let Some(cb) = self.on_message {
            let b = msg.as_bytes();
            cb(
                self.user,
                ctx.group as u32,
                ctx.seq,
                msg.kind() as u8,
                b.as_ptr(),
                b.len(),
            );
        }
    }
    fn on_gap(&mut self, group: usize, _name: &str, from: u64, to: u64) {
        if let Some(cb) = self.on_gap {
            cb(self.user, group as u32, from, to);
        }
    }
    fn on_end_of_session(&mut self, _group: usize, _name: &str, _next: u64) {
        self.ended += 1;
    }
}

/// Receives and delivers what is ready, waiting up to `timeout_ms` for traffic when nothing
/// is. Returns the number of messages delivered (>= 0) or an error code.
///
/// # Safety
/// `sub` must be NULL or a live handle, not used from another thread during the call.
#[no_mangle]
pub unsafe extern "C" fn tc_subscriber_poll(
    sub: *mut TcSubscriber,
    timeout_ms: u32,
    on_message: TcMessageCallback,
    on_gap: TcGapCallback,
    user: *mut c_void,
) -> c_int {
    if sub.is_null() {
        return TC_ERR_NULL;
    }
    // SAFETY: non-null handle from `tc_subscriber_new`, not used concurrently by the caller.
    let s = unsafe { &mut (*sub).inner };
    guarded(|| {
        let mut h = CHandler::new(on_message, on_gap, user);
        let deadline = Instant::now() + Duration::from_millis(u64::from(timeout_ms));
        // Blocks in poll(2) on the group sockets, so the first message after a quiet spell is
        // delivered as soon as it arrives.
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match s.poll_for(&mut h, left) {
                Ok(n) if n > 0 => return n.min(c_int::MAX as usize) as c_int,
                Ok(_) if left.is_zero() => return 0,
                Ok(_) => {}
                Err(_) => return TC_ERR_IO,
            }
        }
    })
}

/// 1 when every group's session has ended, else 0 (or an error code).
///
/// # Safety
/// `sub` must be NULL or a live handle.
#[no_mangle]
pub unsafe extern "C" fn tc_subscriber_ended(sub: *const TcSubscriber) -> c_int {
    if sub.is_null() {
        return TC_ERR_NULL;
    }
    // SAFETY: non-null handle from `tc_subscriber_new`; read only.
    let s = unsafe { &(*sub).inner };
    guarded(|| c_int::from(s.all_ended()))
}

/// Copies the counters into `*out`.
///
/// # Safety
/// `sub` must be NULL or a live handle; `out` NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn tc_subscriber_stats(sub: *const TcSubscriber, out: *mut TcStats) -> c_int {
    if sub.is_null() || out.is_null() {
        return TC_ERR_NULL;
    }
    // SAFETY: non-null handle from `tc_subscriber_new`; read only.
    let s = unsafe { &(*sub).inner };
    guarded(|| {
        let a = s.stats.arbiter;
        let st = TcStats {
            received: a.received,
            delivered: a.delivered,
            duplicates: a.duplicates,
            gaps_opened: a.gaps_opened,
            gaps_filled: a.gaps_filled,
            gaps_lost: a.gaps_lost,
            messages_lost: a.messages_lost,
            requests: a.requests,
            kernel_drops: s.stats.kernel_drops(),
            latency_p50_ns: s.stats.latency_ns(50.0),
            latency_p99_ns: s.stats.latency_ns(99.0),
            latency_p999_ns: s.stats.latency_ns(99.9),
            requests_unanswered: a.requests_unanswered,
            wrong_session: s.stats.wrong_session,
            wrong_source: s.stats.wrong_source,
            implausible: a.implausible,
        };
        // SAFETY: `out` is non-null and points at a TcStats the caller owns.
        unsafe { *out = st };
        TC_OK
    })
}

/// Frees a handle from `tc_subscriber_new` (NULL is ignored).
///
/// # Safety
/// `sub` must be NULL or a live handle, not used afterwards.
#[no_mangle]
pub unsafe extern "C" fn tc_subscriber_free(sub: *mut TcSubscriber) {
    if sub.is_null() {
        return;
    }
    // SAFETY: the pointer came from Box::into_raw in `tc_subscriber_new` and is freed once.
    let h = unsafe { Box::from_raw(sub) };
    // A panic in a destructor must not unwind into C either.
    let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(move || drop(h)));
}

/// A static description of an error code.
#[no_mangle]
pub extern "C" fn tc_strerror(code: c_int) -> *const c_char {
    let s: &'static CStr = match code {
        TC_OK => c"ok",
        TC_ERR_NULL => c"a required pointer was NULL",
        TC_ERR_ARGUMENT => c"an address or argument could not be parsed",
        TC_ERR_IO => c"a socket operation failed",
        TC_ERR_PANIC => c"internal error in the tickcast library",
        _ => c"unknown error",
    };
    s.as_ptr()
}

mod tcp;
pub use tcp::*;
