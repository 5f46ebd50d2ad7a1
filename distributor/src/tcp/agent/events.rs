//! What each completion does to the TCP agent's clients: a connection accepted (or refused),
//! a send finished (progress, or the client closed), input read (login, heartbeats, logout),
//! and a closing client's slot freed once the kernel holds nothing of it.

use super::*;

impl Agent {
    /// Applies one completion: a new connection, a send done, input read.
    pub(super) fn event(&mut self, ev: Event, now: Instant) {
        match ev {
            Event::Accepted(Ok(fd)) => self.accept(TcpStream::from(fd), now),
            Event::Accepted(Err(e)) => {
                self.counters.accept_errors.add(1);
                warn_limited!(self.accept_log, error = %e, "accepting a TCP client failed");
            }
            Event::Sent { token, result } => self.sent(token, result, now),
            Event::Received { token, result } => self.received(token, result, now),
        }
    }

    fn accept(&mut self, sock: TcpStream, now: Instant) {
        let Ok(peer) = sock.peer_addr() else {
            return; // already gone
        };
        let allowed_peer = match peer {
            SocketAddr::V4(v4) => self.allow.iter().any(|n| n.contains(v4.ip())),
            SocketAddr::V6(_) => false,
        };
        let refused = if !allowed_peer {
            Some(Reason::NotAllowed)
        } else if self.connected >= self.max_clients {
            Some(Reason::Full)
        } else {
            None
        };
        if let Some(r) = refused {
            self.counters.disconnects[r as usize].add(1);
            warn_limited!(self.logs[r as usize], peer = %peer, reason = r.label(), "TCP connection refused");
            return; // dropped: closed
        }
        let _ = sock.set_nodelay(true);
        let _ = net::socket::set_send_buffer(&sock, self.sndbuf);
        let token = match self.free.pop() {
            Some(t) => t,
            None => {
                self.clients.push(None);
                (self.clients.len() - 1) as u32
            }
        };
        let c = Client::new(sock, peer, now);
        let armed = self.io.watch(token, c.sock.as_fd());
        self.clients[token as usize] = Some(c);
        self.connected += 1;
        self.counters.accepted.add(1);
        self.counters.clients.set(self.connected as u64);
        if armed.is_err() {
            self.close(token, Reason::SendError);
        }
    }

    fn sent(&mut self, token: u32, result: std::io::Result<usize>, now: Instant) {
        let Some(c) = client_mut(&mut self.clients, token) else {
            return;
        };
        let plan = std::mem::replace(&mut c.plan, Plan::Nothing);
        let n = match result {
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                self.counters.full_sockets.add(1);
                return;
            }
            Err(_) => {
                self.close(token, Reason::SendError);
                return;
            }
        };
        c.last_tx = now;
        self.counters.bytes.add(n as u64);
        let planned = match plan {
            Plan::Nothing => return,
            Plan::Control => {
                let len = c.control_pending().len();
                if c.control_sent(n) {
                    if let Some(r) = c.close_after_control {
                        self.close(token, r);
                    }
                }
                len
            }
            Plan::Window { seq, end } => {
                let len = (end - seq) as usize * FRAME - c.skip;
                let frames = c.advance(n);
                self.counters.messages.add(frames);
                if self.groups[c.group]
                    .window
                    .overrun_at(seq, self.published[c.group])
                {
                    self.close(token, Reason::Overrun);
                    return;
                }
                len
            }
            Plan::CatchUp { len } => {
                let frames = c.advance(n);
                self.counters.messages.add(frames);
                len
            }
        };
        if n < planned {
            self.counters.partial_sends.add(1);
        }
    }

    fn received(&mut self, token: u32, result: std::io::Result<usize>, now: Instant) {
        let n = match result {
            Ok(0) | Err(_) => {
                if matches!(&self.clients.get(token as usize), Some(Some(c)) if c.phase != Phase::Closing)
                {
                    self.close(token, Reason::PeerClosed);
                }
                return;
            }
            Ok(n) => n,
        };
        let Some(mut c) = self.clients.get_mut(token as usize).and_then(|c| c.take()) else {
            return;
        };
        if c.phase == Phase::Closing {
            self.clients[token as usize] = Some(c);
            return;
        }
        c.last_rx = now;
        let mut requests = [None; 16];
        let mut count = 0;
        let mut overflow = false;
        {
            let bytes = self.io.received(token, n);
            c.input(bytes, &mut |r| {
                if count < requests.len() {
                    requests[count] = Some(r);
                    count += 1;
                } else {
                    overflow = true;
                }
            });
        }
        self.clients[token as usize] = Some(c);
        // More than 16 frames in one read from a client that sends a heartbeat a second is
        // a flood.
        if overflow {
            self.close(token, Reason::BadFrame);
            return;
        }
        for r in requests.into_iter().take(count).flatten() {
            if !matches!(&self.clients[token as usize], Some(c) if c.phase != Phase::Closing) {
                return;
            }
            self.request(token, r, now);
        }
        if let Some(c) = self.clients[token as usize].as_ref() {
            if c.phase != Phase::Closing && self.io.rearm(token, c.sock.as_fd()).is_err() {
                self.close(token, Reason::SendError);
            }
        }
    }

    /// Ends client `token`: counted, logged (rate-limited per reason), socket shut down; the
    /// slot is freed once no receive is in flight for it.
    pub(in crate::tcp) fn close(&mut self, token: u32, reason: Reason) {
        let Some(c) = client_mut(&mut self.clients, token) else {
            return;
        };
        if c.phase == Phase::Closing {
            return;
        }
        c.phase = Phase::Closing;
        c.plan = Plan::Nothing;
        c.catchup = None;
        self.counters.disconnects[reason as usize].add(1);
        if !matches!(
            reason,
            Reason::Logout | Reason::PeerClosed | Reason::Shutdown | Reason::EndOfSession
        ) {
            warn_limited!(self.logs[reason as usize], peer = %c.peer, reason = reason.label(), "TCP client disconnected");
        }
        let _ = c.sock.shutdown(std::net::Shutdown::Both);
        self.reap(token);
    }

    /// Frees a closing client's slot when the kernel holds nothing of it.
    pub(super) fn reap(&mut self, token: u32) {
        if self.io.busy(token) {
            return;
        }
        let t = token as usize;
        if let Some(c) = self.clients[t].take() {
            self.io.release(token, c.sock.as_fd());
            drop(c);
            self.free.push(token);
            self.connected -= 1;
            self.counters.clients.set(self.connected as u64);
        }
    }
}
