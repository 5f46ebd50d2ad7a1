//! What each client is owed: its login answered, and each cycle's send planned — a control
//! frame, a region of the shared window, or a run read from the journal for a client that has
//! fallen behind.

use super::agent::{Agent, MAX_SEND_FRAMES};
use super::client::{CatchUp, Phase, Plan, Request, CATCHUP_FRAMES};
use super::Reason;
use net::window::FRAME;
use protocol::soupbintcp::{RejectReason, ServerRepr, HEADER_LEN};
use std::time::Instant;

impl Agent {
    /// Decides what client `t` gets this cycle.
    pub(super) fn plan(&mut self, t: usize, now: Instant) {
        let Some(c) = self.clients[t].as_mut() else {
            return;
        };
        c.plan = Plan::Nothing;
        if c.phase == Phase::Closing {
            return;
        }
        if !c.control_pending().is_empty() {
            c.plan = Plan::Control;
            return;
        }
        if c.phase != Phase::Live {
            return;
        }
        let w = &self.groups[c.group].window;
        let published = self.published[c.group];
        // Finish a journal run first.
        if let Some(cu) = &c.catchup {
            if cu.holds(c.seq) {
                let end = (cu.first + cu.frames as u64 - c.seq) as usize * FRAME;
                c.plan = Plan::CatchUp { len: end - c.skip };
                return;
            }
        }
        if c.seq < published {
            let lag = published - c.seq;
            // Behind: served from the journal (`catchup`) until back within half the limit.
            let behind = c.seq < w.live_from(published)
                || lag > self.lag_limit
                || (c.catchup.is_some() && lag > self.lag_limit / 2);
            if !behind {
                c.catchup = None;
                let end = published.min(c.seq + MAX_SEND_FRAMES);
                c.plan = Plan::Window { seq: c.seq, end };
                return;
            }
            if c.catchup.is_none() {
                self.counters.catchups.add(1);
            }
            let frames = (lag as usize).min(CATCHUP_FRAMES);
            let first = c.seq;
            let cu = c.catchup.get_or_insert_with(|| Box::new(CatchUp::new()));
            let mut i = 0;
            let got = match self.journals[c.group].as_mut() {
                // Records straight from the journal behind the frames' ready-made headers.
                Some(j) => j.read_run(first, frames, |rec| {
                    cu.buf[i * FRAME + HEADER_LEN..(i + 1) * FRAME].copy_from_slice(rec);
                    i += 1;
                    true
                }),
                None => 0,
            };
            cu.first = first;
            cu.frames = got;
            if got == 0 {
                self.close(t as u32, Reason::JournalUnreadable);
                return;
            }
            self.counters.journal_records.add(got as u64);
            c.plan = Plan::CatchUp {
                len: got * FRAME - c.skip,
            };
            return;
        }
        // Caught up: end of session, or a heartbeat when quiet.
        // `ended` first, then a fresh `published`: the writer publishes before it ends, so
        // this sees every frame (the cycle's copy may predate the last ones).
        if w.ended() && !c.end_sent && c.seq >= w.published() {
            c.control(ServerRepr::EndOfSession);
            c.close_after_control = Some(Reason::EndOfSession);
            c.end_sent = true;
            c.plan = Plan::Control;
        } else if now.duration_since(c.last_tx) >= self.heartbeat {
            c.control(ServerRepr::Heartbeat);
            c.plan = Plan::Control;
        }
    }

    pub(super) fn request(&mut self, token: u32, r: Request, _now: Instant) {
        let Some(c) = self.clients[token as usize].as_mut() else {
            return;
        };
        match r {
            Request::Close(reason) => self.close(token, reason),
            Request::Heartbeat if c.phase == Phase::Login => self.close(token, Reason::BeforeLogin),
            Request::Heartbeat => {}
            Request::Login { .. } if c.phase != Phase::Login => self.close(token, Reason::BadFrame),
            Request::Login {
                username,
                password,
                session,
                sequence,
            } => {
                let authorized = self.users.is_empty()
                    || self
                        .users
                        .iter()
                        .any(|(u, p)| *u == username && *p == password);
                let group = if session.0 == [b' '; 10] {
                    (self.groups.len() == 1).then_some(0)
                } else {
                    self.groups.iter().position(|g| g.session == session)
                };
                let reject = match (authorized, group) {
                    (false, _) => Some((RejectReason::NotAuthorized, Reason::NotAuthorized)),
                    (true, None) => {
                        Some((RejectReason::SessionUnavailable, Reason::SessionUnavailable))
                    }
                    _ => None,
                };
                if let Some((code, reason)) = reject {
                    c.control(ServerRepr::Rejected(code));
                    c.close_after_control = Some(reason);
                    return;
                }
                let g = group.unwrap_or(0);
                let published = self.groups[g].window.published();
                // 0: from the next message; beyond the stream: from the next message too
                // (the `A` tells the client where it starts).
                let seq = if sequence == 0 {
                    published
                } else {
                    sequence.min(published)
                };
                c.group = g;
                c.seq = seq;
                c.skip = 0;
                c.phase = Phase::Live;
                c.control(ServerRepr::Accepted {
                    session: self.groups[g].session,
                    sequence: seq,
                });
                self.counters.logins.add(1);
                tracing::debug!(peer = %c.peer, group = %self.groups[g].name, seq, "TCP login");
            }
        }
    }
}
