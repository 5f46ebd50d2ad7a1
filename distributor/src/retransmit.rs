//! The guards of the re-request server (allowed subnets, a token bucket per source).

use ipnet::Ipv4Net;
use std::collections::HashMap;
use std::net::Ipv4Addr;
use std::time::Instant;

/// Why a request got no answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    Denied,
    RateLimited,
    /// Every tracked source is still spending its budget (a flood from many addresses): new
    /// sources wait until one has refilled.
    Busy,
}

/// Source checks for one re-request server.
pub struct Guard {
    allow: Vec<Ipv4Net>,
    rate: f64,
    buckets: HashMap<Ipv4Addr, (f64, Instant)>,
}

/// Sources tracked at most (a spoofing flood cannot grow the table). Only sources whose budget
/// has refilled completely are ever forgotten, so churning through addresses cannot give a
/// throttled source its budget back.
const MAX_SOURCES: usize = 4096;

impl Guard {
    pub fn new(allow: Vec<Ipv4Net>, rate_per_s: u32) -> Guard {
        Guard {
            allow,
            rate: f64::from(rate_per_s.max(1)),
            buckets: HashMap::with_capacity(MAX_SOURCES),
        }
    }

    pub fn check(&mut self, src: Ipv4Addr, now: Instant) -> Result<(), Refusal> {
        if !self.allow.iter().any(|s| s.contains(&src)) {
            return Err(Refusal::Denied);
        }
        if self.buckets.len() >= MAX_SOURCES && !self.buckets.contains_key(&src) {
            let rate = self.rate;
            // Forget only sources that would start over with a full budget anyway.
            self.buckets.retain(|_, (tokens, last)| {
                *tokens + now.duration_since(*last).as_secs_f64() * rate < rate
            });
            if self.buckets.len() >= MAX_SOURCES {
                return Err(Refusal::Busy);
            }
        }
        // Burst of one second's worth, refilled continuously.
        let (tokens, last) = self.buckets.entry(src).or_insert((self.rate, now));
        *tokens = (*tokens + now.duration_since(*last).as_secs_f64() * self.rate).min(self.rate);
        *last = now;
        if *tokens < 1.0 {
            return Err(Refusal::RateLimited);
        }
        *tokens -= 1.0;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn guard_denies_and_limits() {
        let mut g = Guard::new(vec!["127.0.0.0/8".parse().unwrap()], 5);
        let now = Instant::now();
        assert_eq!(
            g.check(Ipv4Addr::new(10, 0, 0, 1), now),
            Err(Refusal::Denied)
        );
        let lo = Ipv4Addr::LOCALHOST;
        let ok = (0..20).filter(|_| g.check(lo, now).is_ok()).count();
        assert_eq!(ok, 5);
        assert!(g
            .check(lo, now + std::time::Duration::from_millis(400))
            .is_ok());
    }

    #[test]
    fn address_churn_cannot_refill_a_throttled_source() {
        let mut g = Guard::new(vec!["10.0.0.0/8".parse().unwrap()], 5);
        let now = Instant::now();
        let victim = Ipv4Addr::new(10, 0, 0, 1);
        while g.check(victim, now).is_ok() {}
        // 5 000 other addresses, each spending its budget: the table fills, nobody is forgotten.
        let mut busy = 0;
        for i in 0..5000u32 {
            let a = Ipv4Addr::from(0x0a01_0000 + i);
            for _ in 0..5 {
                if g.check(a, now) == Err(Refusal::Busy) {
                    busy += 1;
                }
            }
        }
        assert!(
            busy > 0,
            "new sources wait while the table is full of active ones"
        );
        assert_eq!(g.check(victim, now), Err(Refusal::RateLimited));
        // Once budgets refill, idle sources are forgotten and new ones are served.
        let later = now + std::time::Duration::from_secs(2);
        assert!(g.check(Ipv4Addr::new(10, 9, 9, 9), later).is_ok());
        assert!(g.check(victim, later).is_ok());
    }
}
