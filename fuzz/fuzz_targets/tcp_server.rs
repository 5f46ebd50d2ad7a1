//! The SoupBinTCP server itself, running in this process, on arbitrary client bytes sent in
//! arbitrary pieces: it never dies, closes what it must, and after every input a well-behaved
//! client still logs in and gets the stream from sequence 1, in order.
#![no_main]
use libfuzzer_sys::fuzz_target;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;
use distributor::config::{Fsync, Tcp, TcpIo};
use distributor::journal::{path_for, Journal};
use distributor::tcp::{TcpGroup, TcpServer};

const RECORDS: u64 = 200;

/// The server and what feeds it, alive (and reachable, so not a leak) for the process.
struct Running {
    addr: SocketAddr,
    _keep: Mutex<(net::window::WindowWriter, Journal, TcpServer)>,
}

fn server() -> SocketAddr {
    static SERVER: OnceLock<Running> = OnceLock::new();
    SERVER.get_or_init(|| {
        let dir = std::env::temp_dir().join(format!("tickcast-fuzz-tcp-{}", std::process::id()));
        let session = protocol::Session::new("FUZZ").unwrap();
        let (mut journal, _) =
            Journal::open(&dir, &session, Fsync::None, Duration::from_millis(100)).unwrap();
        let cfg = Tcp {
            listen: "127.0.0.1:0".parse().unwrap(),
            allow: vec!["127.0.0.0/8".into()],
            max_clients: 64,
            heartbeat_ms: 1000,
            login_timeout_ms: 20,
            idle_timeout_ms: 1000,
            lag_limit: 1024,
            sndbuf: 1 << 16,
            core: None,
            io: TcpIo::Auto,
            users: vec![],
        };
        let (mut w, r) = net::window::window(cfg.window_frames(), 1).unwrap();
        for s in 1..=RECORDS {
            let rec = protocol::schema::order_add_record(s);
            journal.append(&rec).unwrap();
            w.push(&rec);
        }
        w.publish();
        let group = TcpGroup {
            name: "fuzz".into(),
            session,
            window: r,
            journal: path_for(&dir, &session),
        };
        let s = TcpServer::start(&cfg, vec![group], Arc::new(AtomicBool::new(false)), Duration::ZERO, None)
            .unwrap();
        Running {
            addr: s.local_addr,
            _keep: Mutex::new((w, journal, s)),
        }
    })
    .addr
}

fn good_client(addr: SocketAddr) {
    let mut c = TcpStream::connect(addr).unwrap();
    c.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let mut login = vec![0u8, 47, b'L'];
    login.extend_from_slice(b"                FUZZ      ");
    login.extend_from_slice(b"                   1");
    c.write_all(&login).unwrap();
    let want = 33 + RECORDS as usize * 67;
    let mut got = vec![0u8; want];
    c.read_exact(&mut got).unwrap();
    assert_eq!(got[2], b'A');
    for s in 0..RECORDS as usize {
        let f = &got[33 + s * 67..33 + (s + 1) * 67];
        assert_eq!(&f[..3], &[0, 65, b'S']);
        assert_eq!(u64::from_le_bytes(f[11..19].try_into().unwrap()), s as u64 + 1);
    }
}

fuzz_target!(|input: &[u8]| {
    let addr = server();
    let Ok(mut c) = TcpStream::connect(addr) else { return };
    let _ = c.set_read_timeout(Some(Duration::from_millis(200)));
    // The first byte says where to cut the rest into writes.
    let (split, data) = input.split_first().map_or((0, &[][..]), |(s, d)| (*s, d));
    for piece in data.chunks(usize::from(split % 64) + 1) {
        if c.write_all(piece).is_err() {
            break;
        }
    }
    let _ = c.shutdown(std::net::Shutdown::Write);
    let mut sink = [0u8; 1 << 16];
    while let Ok(n) = c.read(&mut sink) {
        if n == 0 {
            break;
        }
    }
    drop(c);
    if input.first().is_some_and(|b| b % 16 == 0) {
        good_client(addr);
    }
});
