//! tickcast's distributor: config, routing, pinned shards, batching, the sendmmsg send path,
//! retransmission and journal; and the `tickcast` command line.

pub mod cmd;
