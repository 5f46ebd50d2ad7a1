//! 10 000 connect/disconnect cycles leave no descriptor behind (its own test binary: counting
//! this process's descriptors needs no other test running beside it).

mod tcp_common;

use std::io::{Read, Write};
use std::net::TcpStream;
use tcp_common::*;

fn open_fds() -> usize {
    std::fs::read_dir("/proc/self/fd").unwrap().count()
}

#[test]
fn ten_thousand_connect_disconnect_cycles_leak_nothing() {
    both(|b| {
        let mut s = server(b, config(b), 10);
        let addr = s.addr;
        let login = login_frame("", "", "TCPTEST", 1);
        // Warm up once (lazily created buffers), then count.
        drop(raw(addr));
        wait_for("warm-up", || {
            s.counters().accepted.get() == 1 && s.counters().clients.get() == 0
        });
        let before = open_fds();
        // The server closes first each time (logout, or a bad frame), so the TIME_WAIT
        // entries sit on its listening port rather than on 10 000 client ports other tests
        // might bind.
        let mut sink = [0u8; 256];
        for i in 0..10_000 {
            let mut c = TcpStream::connect(addr).unwrap();
            if i % 2 == 0 {
                c.write_all(&login).unwrap();
                c.write_all(&[0, 1, b'O']).unwrap();
            } else {
                c.write_all(&[0, 0]).unwrap();
            }
            while c.read(&mut sink).is_ok_and(|n| n > 0) {}
        }
        let k = s.tcp.as_ref().unwrap().counters.clone();
        wait_for("every client gone", || {
            k.clients.get() == 0 && k.accepted.get() == 10_001
        });
        assert_eq!(open_fds(), before, "{b:?}: descriptors leaked");
        s.end();
    });
}
