//! One TCP client's state: where it is in its group's stream, the control frame it is owed,
//! and the bytes of its input not yet framed.

use super::Reason;
use net::window::FRAME;
use protocol::soupbintcp::{
    self, ClientRepr, ServerRepr, MAX_CLIENT_FRAME, SEQUENCED_RECORD_HEADER,
};
use std::net::{SocketAddr, TcpStream};
use std::time::Instant;

/// Frames read from the journal at a time for a client that is behind.
pub const CATCHUP_FRAMES: usize = 1024;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    Login,
    Live,
    Closing,
}

/// What the client's send of this cycle carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Plan {
    Nothing,
    Control,
    /// Frames from the window, planned from `seq` (checked for overrun afterwards).
    Window {
        seq: u64,
        end: u64,
    },
    CatchUp {
        len: usize,
    },
}

/// Frames `first..first + frames` read from the journal.
pub struct CatchUp {
    pub first: u64,
    pub frames: usize,
    pub buf: Box<[u8]>,
}

impl CatchUp {
    /// A buffer of frames whose `S` headers are written once; refills copy records only.
    pub fn new() -> CatchUp {
        let mut buf = vec![0u8; CATCHUP_FRAMES * FRAME].into_boxed_slice();
        for f in buf.chunks_exact_mut(FRAME) {
            f[..SEQUENCED_RECORD_HEADER.len()].copy_from_slice(&SEQUENCED_RECORD_HEADER);
        }
        CatchUp {
            first: 0,
            frames: 0,
            buf,
        }
    }

    pub fn holds(&self, seq: u64) -> bool {
        seq >= self.first && seq < self.first + self.frames as u64
    }
}

pub struct Client {
    pub sock: TcpStream,
    pub peer: SocketAddr,
    pub phase: Phase,
    pub group: usize,
    /// Next frame to send and how many of its bytes were sent already.
    pub seq: u64,
    pub skip: usize,
    ctl: [u8; 64],
    ctl_len: usize,
    ctl_off: usize,
    /// Close once the control frame is out (after a rejection).
    pub close_after_control: Option<Reason>,
    input: InputFramer,
    /// Present while the client is behind and served from the journal.
    pub catchup: Option<Box<CatchUp>>,
    pub end_sent: bool,
    pub plan: Plan,
    pub connected: Instant,
    pub last_rx: Instant,
    pub last_tx: Instant,
}

/// What a client's input asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Request {
    Login {
        username: [u8; 6],
        password: [u8; 10],
        session: protocol::Session,
        sequence: u64,
    },
    Heartbeat,
    Close(Reason),
}

impl Client {
    pub fn new(sock: TcpStream, peer: SocketAddr, now: Instant) -> Client {
        Client {
            sock,
            peer,
            phase: Phase::Login,
            group: 0,
            seq: 0,
            skip: 0,
            ctl: [0; 64],
            ctl_len: 0,
            ctl_off: 0,
            close_after_control: None,
            input: InputFramer::default(),
            catchup: None,
            end_sent: false,
            plan: Plan::Nothing,
            connected: now,
            last_rx: now,
            last_tx: now,
        }
    }

    /// Queues a control frame (only at a frame boundary: callers check `skip == 0`).
    pub fn control(&mut self, frame: ServerRepr<'_>) {
        // Every control frame fits 64 bytes (the largest, `A`, is 33).
        self.ctl_len = frame.emit(&mut self.ctl).unwrap_or(0);
        self.ctl_off = 0;
    }

    pub fn control_pending(&self) -> &[u8] {
        &self.ctl[self.ctl_off..self.ctl_len]
    }

    /// Control bytes sent; true when the frame is complete.
    pub fn control_sent(&mut self, n: usize) -> bool {
        self.ctl_off = (self.ctl_off + n).min(self.ctl_len);
        if self.ctl_off == self.ctl_len {
            self.ctl_len = 0;
            self.ctl_off = 0;
            return true;
        }
        false
    }

    /// Frame bytes sent from (`seq`, `skip`): returns the frames completed.
    pub fn advance(&mut self, n: usize) -> u64 {
        let total = self.skip + n;
        self.seq += (total / FRAME) as u64;
        self.skip = total % FRAME;
        (total / FRAME) as u64
    }

    /// Takes received bytes and returns what they ask for, in order, through `out`.
    pub fn input(&mut self, bytes: &[u8], out: &mut impl FnMut(Request)) {
        self.input.feed(bytes, out);
    }
}

/// A client's input bytes, framed: partial frames are kept for the next read; nothing longer
/// than a login is ever buffered.
pub struct InputFramer {
    input: [u8; MAX_CLIENT_FRAME + net::uring::RECV_BUF],
    input_len: usize,
}

impl Default for InputFramer {
    fn default() -> Self {
        InputFramer {
            input: [0; MAX_CLIENT_FRAME + net::uring::RECV_BUF],
            input_len: 0,
        }
    }
}

impl InputFramer {
    /// Takes received bytes and returns what they ask for, in order, through `out` (stops at
    /// the first `Close`). Frames may be split or merged arbitrarily by TCP.
    pub fn feed(&mut self, bytes: &[u8], out: &mut impl FnMut(Request)) {
        for chunk in bytes.chunks(net::uring::RECV_BUF) {
            let end = self.input_len + chunk.len();
            self.input[self.input_len..end].copy_from_slice(chunk);
            self.input_len = end;
            let mut used = 0;
            loop {
                match soupbintcp::split_frame(
                    &self.input[used..self.input_len],
                    MAX_CLIENT_FRAME - 2,
                ) {
                    Ok(None) => break,
                    Err(_) => {
                        out(Request::Close(Reason::BadFrame));
                        self.input_len = 0;
                        return;
                    }
                    Ok(Some((frame, n))) => {
                        used += n;
                        let req = match ClientRepr::parse(&frame) {
                            Ok(ClientRepr::Login {
                                username,
                                password,
                                session,
                                sequence,
                            }) => Request::Login {
                                username,
                                password,
                                session,
                                sequence,
                            },
                            Ok(ClientRepr::Heartbeat) => Request::Heartbeat,
                            Ok(ClientRepr::Logout) => Request::Close(Reason::Logout),
                            // Unsequenced data has no meaning for a market-data feed; debug
                            // text is ignored as the spec says. Both still count as traffic.
                            Ok(ClientRepr::Unsequenced(_)) | Ok(ClientRepr::Debug(_)) => {
                                Request::Heartbeat
                            }
                            Err(_) => Request::Close(Reason::BadFrame),
                        };
                        let close = matches!(req, Request::Close(_));
                        out(req);
                        if close {
                            self.input_len = 0;
                            return;
                        }
                    }
                }
            }
            self.input.copy_within(used..self.input_len, 0);
            self.input_len -= used;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use protocol::Session;

    fn client() -> (Client, std::net::TcpListener) {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let s = TcpStream::connect(l.local_addr().unwrap()).unwrap();
        let peer = s.peer_addr().unwrap();
        (Client::new(s, peer, Instant::now()), l)
    }

    fn requests(c: &mut Client, bytes: &[u8]) -> Vec<Request> {
        let mut v = Vec::new();
        c.input(bytes, &mut |r| v.push(r));
        v
    }

    #[test]
    fn frames_split_and_merged_by_tcp() {
        let (mut c, _l) = client();
        let mut buf = [0u8; 64];
        let n = ClientRepr::Login {
            username: *b"u     ",
            password: *b"p         ",
            session: Session::new("S").unwrap(),
            sequence: 5,
        }
        .emit(&mut buf)
        .unwrap();
        let mut stream = buf[..n].to_vec();
        stream.extend_from_slice(&[0, 1, b'R', 0, 1, b'R']);
        // One byte at a time.
        let mut got = Vec::new();
        for b in &stream {
            got.extend(requests(&mut c, std::slice::from_ref(b)));
        }
        assert_eq!(got.len(), 3);
        assert!(matches!(got[0], Request::Login { sequence: 5, .. }));
        assert_eq!(got[1], Request::Heartbeat);
        // All at once.
        let got = requests(&mut c, &stream);
        assert_eq!(got.len(), 3);
    }

    #[test]
    fn bad_input_closes() {
        let (mut c, _l) = client();
        assert_eq!(
            requests(&mut c, &[0, 200, b'L']),
            vec![Request::Close(Reason::BadFrame)]
        );
        assert_eq!(
            requests(&mut c, &[0, 1, b'Q']),
            vec![Request::Close(Reason::BadFrame)]
        );
        assert_eq!(
            requests(&mut c, &[0, 1, b'O', 0, 1, b'R']),
            vec![Request::Close(Reason::Logout)]
        );
        assert_eq!(
            requests(&mut c, &[0, 0]),
            vec![Request::Close(Reason::BadFrame)]
        );
    }

    #[test]
    fn partial_sends_advance_by_bytes() {
        let (mut c, _l) = client();
        c.seq = 10;
        assert_eq!(c.advance(FRAME + 5), 1);
        assert_eq!((c.seq, c.skip), (11, 5));
        assert_eq!(c.advance(FRAME - 5), 1);
        assert_eq!((c.seq, c.skip), (12, 0));
        c.control(ServerRepr::Heartbeat);
        assert_eq!(c.control_pending(), &[0, 1, b'H']);
        assert!(!c.control_sent(2));
        assert_eq!(c.control_pending(), b"H");
        assert!(c.control_sent(1));
        assert!(c.control_pending().is_empty());
    }
}
