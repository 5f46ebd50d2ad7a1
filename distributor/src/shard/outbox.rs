//! The shard's outbox: datagrams ready to send, their bytes in one arena (a region per group)
//! and one `OutDatagram` entry per destination pointing into it.

use net::OutDatagram;
use std::net::SocketAddrV4;

/// Datagrams ready to send: bytes in one arena, entries pointing into it. Each group fills its
/// own region of the arena, so a group's datagrams of one duty cycle lie back to back and
/// become one GSO run, whatever the other groups append in between.
pub(super) struct Outbox {
    pub(super) arena: Vec<u8>,
    /// Per local group: start of its region and bytes used in it.
    pub(super) regions: Vec<(usize, usize)>,
    pub(super) region_len: usize,
    pub(super) out: Vec<OutDatagram>,
    pub(super) max_payload: usize,
    /// Most destinations one datagram goes to (A, B, unicast copies, or one for an answer).
    pub(super) max_dests: usize,
}

impl Outbox {
    /// Queues the datagram at `arena[off..off + len]` once per destination of a group.
    /// `segment`: the entries may grow into a GSO run of datagrams of this size (0: never).
    pub(super) fn push_to_all(
        &mut self,
        off: usize,
        len: usize,
        dests: &[(SocketAddrV4, u16)],
        group: usize,
        segment: u16,
    ) {
        for &(dest, socket) in dests {
            self.out.push(OutDatagram {
                offset: off as u32,
                len: len as u32,
                dest,
                socket,
                group: group as u16,
                segment,
            });
        }
    }

    /// Whether one more datagram of group `li` (to all of its destinations) fits without
    /// growing.
    pub(super) fn room(&self, li: usize) -> bool {
        self.regions[li].1 + self.max_payload <= self.region_len
            && self.out.len() + self.max_dests <= self.out.capacity()
    }

    /// Takes `len` bytes of group `li`'s region (after `room`); returns their offset.
    pub(super) fn take(&mut self, li: usize, len: usize) -> usize {
        let (start, used) = self.regions[li];
        self.regions[li].1 = used + len;
        start + used
    }

    pub(super) fn clear(&mut self) {
        for r in &mut self.regions {
            r.1 = 0;
        }
        self.out.clear();
    }
}
