//! What flows from the feed thread to a shard: batches of normalized records (one input
//! datagram's worth, or up to capacity), each with its group mask, in reused buffers.

use crate::routing::GroupMask;
use crossbeam_channel::{Receiver, Sender, TrySendError};
use protocol::schema::{Repr, RECORD_SIZE};
use std::time::Duration;

/// Encodes a message as the record the shards batch (once, however many shards take it).
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
}

/// The shard side: the queue and the way back to the pool.
pub struct ShardQueue {
    pub rx: Receiver<Box<Batch>>,
    pub pool: Sender<Box<Batch>>,
}

pub fn channel(shard_mask: GroupMask, depth: usize) -> (ShardInput, ShardQueue) {
    let (tx, rx) = crossbeam_channel::bounded(depth);
    let (ptx, prx) = crossbeam_channel::bounded(depth + 2);
    for _ in 0..depth + 1 {
        let _ = ptx.try_send(Box::new(Batch::new()));
    }
    warm_waiter_lists(&tx, &rx, &ptx, &prx);
    (
        ShardInput {
            shard_mask,
            current: Box::new(Batch::new()),
            tx,
            pool: prx,
        },
        ShardQueue { rx, pool: ptx },
    )
}

/// How long each warm-up wait lasts: long enough that crossbeam's spin/yield backoff gives up
/// and the thread registers as a waiter.
const WARM_WAIT: Duration = Duration::from_millis(5);

/// crossbeam's per-channel waiter lists start empty and grow (allocate) the first time a thread
/// waits on them, which on the hot path would be the first backpressure of the session. Wait
/// once on each list the feed and shard can wait on (queue full, queue empty, pool empty) here,
/// at start, so those lists already have room.
fn warm_waiter_lists(
    tx: &Sender<Box<Batch>>,
    rx: &Receiver<Box<Batch>>,
    pool_tx: &Sender<Box<Batch>>,
    pool_rx: &Receiver<Box<Batch>>,
) {
    let _ = rx.recv_timeout(WARM_WAIT);
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
/// blocks on any channel); the feed and shard threads call it before their loops.
pub fn warm_thread() {
    let (_keep, never) = crossbeam_channel::bounded::<()>(0);
    let _ = never.recv_timeout(WARM_WAIT);
}

impl ShardInput {
    /// Adds an encoded message for the groups in `mask` that this shard owns.
    #[inline]
    pub fn push(&mut self, rec: &[u8; RECORD_SIZE], mask: GroupMask) -> bool {
        let mine = mask & self.shard_mask;
        if mine == 0 {
            return true;
        }
        self.current.push(rec, mine);
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
        match self.tx.try_send(full) {
            Ok(()) => true,
            Err(TrySendError::Full(b)) => self.tx.send(b).is_ok(),
            Err(TrySendError::Disconnected(_)) => false,
        }
    }

    pub fn queue_len(&self) -> usize {
        self.tx.len()
    }
}
