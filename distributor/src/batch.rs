//! What flows from the feed thread to a shard: batches of normalized records (one input
//! datagram's worth, or up to capacity), each with its group mask, in reused buffers.

use crate::routing::GroupMask;
use crossbeam_channel::{Receiver, RecvTimeoutError, Sender, TryRecvError, TrySendError};
use protocol::schema::{Repr, RECORD_SIZE};
use std::sync::atomic::{fence, AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};
use std::thread::Thread;
use std::time::Duration;

/// Encodes a message as the record the shards batch (tests and benches; the feed emits into
/// the batch in place, `ShardInput::push_repr`).
#[inline]
pub fn encode(m: &Repr) -> [u8; RECORD_SIZE] {
    let mut rec = [0u8; RECORD_SIZE];
    // A 64-byte buffer always fits a record.
    let _ = m.emit(&mut rec);
    rec
}

/// Records per batch before it is sent even mid-datagram.
pub const BATCH_RECORDS: usize = 1024;

pub struct Batch {
    pub records: Vec<[u8; RECORD_SIZE]>,
    pub masks: Vec<GroupMask>,
}

impl Batch {
    pub fn new() -> Batch {
        Batch {
            records: Vec::with_capacity(BATCH_RECORDS),
            masks: Vec::with_capacity(BATCH_RECORDS),
        }
    }

    pub fn push(&mut self, rec: &[u8; RECORD_SIZE], mask: GroupMask) {
        self.records.push(*rec);
        self.masks.push(mask);
    }

    /// Appends `m`'s record, emitted in place: a record emitted on the stack and then copied
    /// is read back right after its field-by-field stores, a store-forwarding stall per
    /// record (31 % of the feed's fan-out samples).
    #[inline]
    pub fn push_repr(&mut self, m: &Repr, mask: GroupMask) {
        self.records.push([0u8; RECORD_SIZE]);
        if let Some(rec) = self.records.last_mut() {
            // A 64-byte buffer always fits a record.
            let _ = m.emit(rec);
        }
        self.masks.push(mask);
    }

    pub fn len(&self) -> usize {
        self.records.len()
    }

    pub fn is_empty(&self) -> bool {
        self.records.is_empty()
    }

    pub fn is_full(&self) -> bool {
        self.records.len() >= BATCH_RECORDS
    }

    pub fn clear(&mut self) {
        self.records.clear();
        self.masks.clear();
    }
}

impl Default for Batch {
    fn default() -> Self {
        Batch::new()
    }
}

/// The feed side of one shard's queue: a current batch, the queue and the pool of empty
/// batches the shard hands back (so steady state allocates nothing).
pub struct ShardInput {
    pub shard_mask: GroupMask,
    current: Box<Batch>,
    tx: Sender<Box<Batch>>,
    pool: Receiver<Box<Batch>>,
    doorbell: Arc<Doorbell>,
}

/// The shard side: the queue and the way back to the pool.
pub struct ShardQueue {
    pub rx: Receiver<Box<Batch>>,
    pub pool: Sender<Box<Batch>>,
    doorbell: Arc<Doorbell>,
}

/// How a parked shard is woken. crossbeam's blocking receive spins and then yields the core
/// about ten times before it blocks — at 20 000 msgs/s that back-off was 27 % of the shard's
/// CPU (`perf`: `sched_yield`, the channel's spin loop) and each yield can hand the shard's
/// core to another thread just as a batch arrives. Instead the shard says it is parking here
/// and parks its thread; the feed, after queueing a batch, unparks it only if it said so (a
/// fence and a load per batch; no system call while the shard runs).
#[derive(Default)]
struct Doorbell {
    parked: AtomicBool,
    thread: OnceLock<Thread>,
}

impl Doorbell {
    /// After a batch is queued: wakes the shard if it is parked or about to park.
    fn ring(&self) {
        // Pairs with the fence in `ShardQueue::park`: either the shard's second look at the
        // queue finds the batch queued before this, or this load finds it parked.
        fence(Ordering::SeqCst);
        if self.parked.load(Ordering::Relaxed) {
            if let Some(t) = self.thread.get() {
                t.unpark();
            }
        }
    }
}

impl ShardQueue {
    /// Waits up to `timeout` for a batch, parked from the first moment (no spinning, no
    /// yielding). Always called from the shard's own thread.
    pub fn park(&self, timeout: Duration) -> Result<Box<Batch>, RecvTimeoutError> {
        let d = &self.doorbell;
        d.thread.get_or_init(std::thread::current);
        d.parked.store(true, Ordering::Relaxed);
        fence(Ordering::SeqCst);
        let got = match self.rx.try_recv() {
            Err(TryRecvError::Empty) => {
                // A batch queued after the fence rings the bell; an unpark that comes before
                // `park_timeout` leaves a token, so it returns at once: nothing is missed.
                std::thread::park_timeout(timeout);
                self.rx.try_recv()
            }
            other => other,
        };
        d.parked.store(false, Ordering::Relaxed);
        got.map_err(|e| match e {
            TryRecvError::Empty => RecvTimeoutError::Timeout,
            TryRecvError::Disconnected => RecvTimeoutError::Disconnected,
        })
    }
}

impl Drop for ShardInput {
    /// The feed is gone: the queue is closed first, then a parked shard woken to see it.
    fn drop(&mut self) {
        let (closed, _) = crossbeam_channel::bounded(0);
        drop(std::mem::replace(&mut self.tx, closed));
        self.doorbell.ring();
    }
}

pub fn channel(shard_mask: GroupMask, depth: usize) -> (ShardInput, ShardQueue) {
    let (tx, rx) = crossbeam_channel::bounded(depth);
    let (ptx, prx) = crossbeam_channel::bounded(depth + 2);
    for _ in 0..depth + 1 {
        let _ = ptx.try_send(Box::new(Batch::new()));
    }
    warm_waiter_lists(&tx, &rx, &ptx, &prx);
    let doorbell = Arc::new(Doorbell::default());
    (
        ShardInput {
            shard_mask,
            current: Box::new(Batch::new()),
            tx,
            pool: prx,
            doorbell: doorbell.clone(),
        },
        ShardQueue {
            rx,
            pool: ptx,
            doorbell,
        },
    )
}

/// How long each warm-up wait lasts: long enough that crossbeam's spin/yield backoff gives up
/// and the thread registers as a waiter.
const WARM_WAIT: Duration = Duration::from_millis(5);

/// crossbeam's per-channel waiter lists start empty and grow (allocate) the first time a thread
/// waits on them, which on the hot path would be the first backpressure of the session. Wait
/// once on each list the feed can wait on (queue full, pool empty) here, at start, so those
/// lists already have room. (The shard never waits in crossbeam: it parks on the doorbell.)
fn warm_waiter_lists(
    tx: &Sender<Box<Batch>>,
    rx: &Receiver<Box<Batch>>,
    pool_tx: &Sender<Box<Batch>>,
    pool_rx: &Receiver<Box<Batch>>,
) {
    let mut held: Vec<Box<Batch>> = pool_rx.try_iter().collect();
    let _ = pool_rx.recv_timeout(WARM_WAIT);
    // Fill the queue with the pool's batches, then wait on it, full, with one more.
    let spare = held.pop();
    while let Some(b) = held.pop() {
        if let Err(e) = tx.try_send(b) {
            held.push(e.into_inner());
            break;
        }
    }
    if let Some(b) = spare {
        if let Err(e) = tx.send_timeout(b, WARM_WAIT) {
            held.push(e.into_inner());
        }
    }
    held.extend(rx.try_iter());
    for b in held {
        let _ = pool_tx.try_send(b);
    }
}

/// Warms the calling thread's crossbeam wait context (allocated the first time a thread
/// blocks on any channel); the feed thread calls it before its loop.
pub fn warm_thread() {
    let (_keep, never) = crossbeam_channel::bounded::<()>(0);
    let _ = never.recv_timeout(WARM_WAIT);
}

impl ShardInput {
    /// Adds an encoded message for the groups in `mask` that this shard owns.
    #[inline]
    pub fn push(&mut self, rec: &[u8; RECORD_SIZE], mask: GroupMask) -> bool {
        self.add(mask, |batch, mine| batch.push(rec, mine))
    }

    /// Adds message `m` for the groups in `mask` that this shard owns, emitted into the batch.
    #[inline]
    pub fn push_repr(&mut self, m: &Repr, mask: GroupMask) -> bool {
        self.add(mask, |batch, mine| batch.push_repr(m, mine))
    }

    /// `put`s a record into the current batch when this shard owns a group in `mask` (with
    /// those groups), and sends the batch when full; `false` when the shard has gone.
    #[inline]
    fn add(&mut self, mask: GroupMask, put: impl FnOnce(&mut Batch, GroupMask)) -> bool {
        let mine = mask & self.shard_mask;
        if mine == 0 {
            return true;
        }
        put(&mut self.current, mine);
        if self.current.is_full() {
            return self.send();
        }
        true
    }

    /// Sends the current batch (blocking while the shard's queue is full); `false` when the
    /// shard has gone.
    pub fn send(&mut self) -> bool {
        if self.current.is_empty() {
            return true;
        }
        // The pool is the flow control: every batch in circulation is preallocated, and when all
        // of them are queued or in the shard's hands the feed waits for one to come back
        // (allocating here would make a busy, CPU-starved pipeline allocate per batch).
        let next = match self.pool.try_recv() {
            Ok(b) => b,
            Err(_) => self.pool.recv().unwrap_or_else(|_| Box::new(Batch::new())),
        };
        let full = std::mem::replace(&mut self.current, next);
        let queued = match self.tx.try_send(full) {
            Ok(()) => true,
            Err(TrySendError::Full(b)) => self.tx.send(b).is_ok(),
            Err(TrySendError::Disconnected(_)) => false,
        };
        if queued {
            self.doorbell.ring();
        }
        queued
    }

    pub fn queue_len(&self) -> usize {
        self.tx.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Instant;

    /// Far longer than any wake-up: a park that runs into it means a batch was missed.
    const NEVER: Duration = Duration::from_secs(20);

    fn record(i: u64) -> [u8; RECORD_SIZE] {
        let mut r = [0u8; RECORD_SIZE];
        r[..8].copy_from_slice(&i.to_le_bytes());
        r
    }

    #[test]
    fn every_batch_wakes_a_parked_shard_none_is_missed() {
        let (mut input, queue) = channel(1, 4);
        const N: u64 = 20_000;
        let shard = std::thread::spawn(move || {
            let (mut got, mut parks_to_timeout) = (0u64, 0u32);
            loop {
                let t = Instant::now();
                let got_one = queue.park(NEVER);
                parks_to_timeout += u32::from(t.elapsed() >= NEVER);
                match got_one {
                    Ok(mut b) => {
                        for r in &b.records {
                            assert_eq!(u64::from_le_bytes(r[..8].try_into().unwrap()), got);
                            got += 1;
                        }
                        b.clear();
                        let _ = queue.pool.send(b);
                    }
                    Err(RecvTimeoutError::Timeout) => {}
                    Err(RecvTimeoutError::Disconnected) => return (got, parks_to_timeout),
                }
            }
        });
        for i in 0..N {
            assert!(input.push(&record(i), 1));
            // Batches of one to three records, sent at once or after a pause, so the feed
            // meets the shard running, about to park and parked.
            if i % 3 != 1 {
                assert!(input.send());
            }
            if i % 64 == 0 {
                std::thread::sleep(Duration::from_micros(50));
            }
        }
        assert!(input.send());
        let t = Instant::now();
        drop(input);
        let (got, missed) = shard.join().unwrap();
        assert_eq!(got, N);
        assert_eq!(missed, 0, "a park ran to its timeout with a batch queued");
        assert!(
            t.elapsed() < NEVER,
            "the closed queue did not wake the shard"
        );
    }
}
