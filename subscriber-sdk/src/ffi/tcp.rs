//! The C ABI of the SoupBinTCP subscriber: a handle that connects, logs in, re-logs in from its
//! next sequence after a broken connection, and calls the same per-message callback as the
//! multicast subscriber. The same rules as `ffi.rs`: null checked first, a `// SAFETY:` per
//! block, no unwinding into C.
#![allow(unsafe_code)]

use super::*;
use crate::tcp::{TcpOptions, TcpSubscriber};

/// Opaque SoupBinTCP subscriber handle.
pub struct TcTcpSubscriber {
    inner: TcpSubscriber,
}

/// Connects to a SoupBinTCP server ("HOST:PORT" or "ADDR:PORT") and logs in to `session`
/// (NULL or "": the server's only session) from sequence `from` (0: the next live message);
/// `username`/`password` may be NULL. On a broken connection the subscriber logs in again from
/// its next sequence by itself. `*out` receives the handle; free it with
/// `tc_tcp_subscriber_free`. Returns `TC_ERR_IO` when the server refuses or cannot be reached.
///
/// # Safety
/// `out` must be NULL or point at writable storage for one pointer; each string must be NULL
/// or NUL-terminated.
#[no_mangle]
pub unsafe extern "C" fn tc_tcp_subscriber_new(
    server: *const c_char,
    session: *const c_char,
    from: u64,
    username: *const c_char,
    password: *const c_char,
    out: *mut *mut TcTcpSubscriber,
) -> c_int {
    if out.is_null() || server.is_null() {
        return TC_ERR_NULL;
    }
    // SAFETY: each pointer is NULL or a NUL-terminated string per the contract.
    let (server, session, username, password) = unsafe {
        (
            c_str(server),
            c_str(session),
            c_str(username),
            c_str(password),
        )
    };
    guarded(|| {
        let text = |s: Option<&CStr>| -> Result<String, c_int> {
            s.map_or(Ok(String::new()), |s| {
                s.to_str().map(str::to_string).map_err(|_| TC_ERR_ARGUMENT)
            })
        };
        let (Ok(server), Ok(session), Ok(username), Ok(password)) =
            (text(server), text(session), text(username), text(password))
        else {
            return TC_ERR_ARGUMENT;
        };
        let Some(mut o) = TcpOptions::resolve(&server, &session) else {
            return TC_ERR_ARGUMENT;
        };
        o.from = from;
        o.username = username;
        o.password = password;
        match TcpSubscriber::connect(o) {
            Ok(inner) => {
                let h = Box::into_raw(Box::new(TcTcpSubscriber { inner }));
                // SAFETY: `out` is non-null and the caller provides a writable pointer slot.
                unsafe { *out = h };
                TC_OK
            }
            Err(e) if e.kind() == std::io::ErrorKind::InvalidInput => TC_ERR_ARGUMENT,
            Err(_) => TC_ERR_IO,
        }
    })
}

/// Delivers what has arrived, waiting up to `timeout_ms`; returns messages delivered (>= 0) or
/// an error code. The callback's `group` is 0.
///
/// # Safety
/// `sub` must be NULL or a live handle, not used from another thread during the call.
#[no_mangle]
pub unsafe extern "C" fn tc_tcp_subscriber_poll(
    sub: *mut TcTcpSubscriber,
    timeout_ms: u32,
    on_message: TcMessageCallback,
    user: *mut c_void,
) -> c_int {
    if sub.is_null() {
        return TC_ERR_NULL;
    }
    // SAFETY: non-null handle from `tc_tcp_subscriber_new`, not used concurrently.
    let s = unsafe { &mut (*sub).inner };
    guarded(|| {
        let mut h = CHandler::new(on_message, None, user);
        match s.poll_for(&mut h, Duration::from_millis(u64::from(timeout_ms))) {
            Ok(n) => n.min(c_int::MAX as usize) as c_int,
            Err(_) => TC_ERR_IO,
        }
    })
}

/// 1 when the server ended the session (`Z`), else 0 (or an error code).
///
/// # Safety
/// `sub` must be NULL or a live handle.
#[no_mangle]
pub unsafe extern "C" fn tc_tcp_subscriber_ended(sub: *const TcTcpSubscriber) -> c_int {
    if sub.is_null() {
        return TC_ERR_NULL;
    }
    // SAFETY: non-null live handle per the contract.
    let s = unsafe { &(*sub).inner };
    c_int::from(s.ended())
}

/// The sequence number of the next message (0 for a NULL handle).
///
/// # Safety
/// `sub` must be NULL or a live handle.
#[no_mangle]
pub unsafe extern "C" fn tc_tcp_subscriber_next_seq(sub: *const TcTcpSubscriber) -> u64 {
    if sub.is_null() {
        return 0;
    }
    // SAFETY: non-null live handle per the contract.
    unsafe { (*sub).inner.next_seq() }
}

/// Logs out, closes the connection and frees the handle.
///
/// # Safety
/// `sub` must be NULL or a live handle, not used afterwards.
#[no_mangle]
pub unsafe extern "C" fn tc_tcp_subscriber_free(sub: *mut TcTcpSubscriber) {
    if sub.is_null() {
        return;
    }
    // SAFETY: the pointer came from Box::into_raw in `tc_tcp_subscriber_new`, freed once.
    let mut h = unsafe { Box::from_raw(sub) };
    let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(move || {
        h.inner.logout();
        drop(h)
    }));
}
