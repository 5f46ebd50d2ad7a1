//! tickcast's networking layer: every system call and socket of the project, and the one
//! MoldUDP64 sequenced-stream receiver shared by the feed handler and the subscriber SDK.
//!
//! - `send`: `sendmmsg` over preallocated headers (partial sends continued, EAGAIN waited out).
//! - `recv`: `recvmmsg` batches into preallocated slots (`BatchReceiver`), with the kernel's
//!   receive time and drop counter decoded by `cmsg` (length-checked, `MSG_CTRUNC` counted).
//! - `socket`: socket builders (multicast join incl. SSM, buffers, TTL, loop, interface).
//! - `poll`: waiting for readiness on borrowed sockets. `wake`: an eventfd another thread rings.
//! - `clock`: wall-clock and per-thread CPU time. `filecache`: writing back and dropping a file's pages. `sched`: a thread's EEVDF slice. `prefetch`: cache-line
//!   prefetch for read-ahead passes. `ifaddr`: the host's interface subnets.
//! - `arbiter`: the pure sequenced-stream state machine (A/B, gaps, re-requests, in-order
//!   release); `rerequest`: the unicast request path it drives.
//! - `admission`: which datagrams reach the receiver at all (session adoption, sender pinning).
//! - `ratelog`: one log line per kind of recurring error per interval.
//! - `window`: a group's recent SoupBinTCP frames in one shared mapping (the TCP fan-out's
//!   single buffer); `uring`: every TCP send of a cycle in one `io_uring_enter`; `tcp_epoll`:
//!   the same with epoll and one send per client (or per message: the naive baseline).
//!
//! `unsafe` lives only in `send`, `mmsg_recv`, `mmap`, `filecache`, `clock`, `sched`, `prefetch`, `window`, `uring`,
//! `tcp_epoll` and `alloc_count` (the tests' counting allocator), each block with its safety argument;
//! every public function takes borrowed sockets (`AsFd`), never a bare file descriptor.
#![deny(unsafe_code)]

pub mod admission;
pub mod alloc_count;
pub mod arbiter;
pub mod clock;
pub mod cmsg;
pub mod filecache;
pub mod ifaddr;
pub mod mmap;
mod mmsg_recv;
pub mod poll;
pub mod prefetch;
pub mod probe;
pub mod ratelog;
pub mod recv;
pub mod rerequest;
pub mod sched;
pub mod send;
pub mod socket;
pub mod tcp_epoll;
pub mod uring;
pub mod wake;
pub mod window;

#[doc(hidden)]
pub use tracing as __tracing;

pub use arbiter::{Arbiter, ArbiterConfig, ArbiterStats, Feed, Output};
pub use clock::now_ns;
pub use recv::{BatchReceiver, Endpoint, Received};
pub use rerequest::Requester;
pub use send::{MmsgSender, OutDatagram, SendReport};
