//! Per-client-IP request limits: a fixed window per IP that starts with its first request, so
//! "2000 requests per 5 minutes" means exactly that, and the answer past it says when the
//! window ends (Retry-After). In memory, per process: behind several replicas the WAF in front
//! (infra/) carries the fleet-wide limit.

use std::{collections::HashMap, net::IpAddr, sync::Mutex, time::Instant};

use super::config::RateLimit;

pub struct RateLimiter {
    limit: RateLimit,
    state: Mutex<State>,
}

struct State {
    windows: HashMap<IpAddr, (Instant, u32)>,
    last_sweep: Option<Instant>,
}

/// Windows kept before expired ones are swept (bounds memory under many client IPs)…
const SWEEP_ABOVE: usize = 10_000;
/// …at most this often, so a flood of new addresses does not make every request scan the map.
const SWEEP_EVERY: std::time::Duration = std::time::Duration::from_secs(10);

/// IPv6 clients are counted per /64 (one subscriber's usual allocation), so rotating addresses
/// inside it does not reset the limit.
fn client_key(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => {
            let s = v6.segments();
            IpAddr::V6(std::net::Ipv6Addr::new(s[0], s[1], s[2], s[3], 0, 0, 0, 0))
        }
        v4 => v4,
    }
}

impl RateLimiter {
    pub fn new(limit: RateLimit) -> Self {
        RateLimiter { limit, state: Mutex::new(State { windows: HashMap::new(), last_sweep: None }) }
    }

    /// Counts one request; `Err(seconds)` when over the limit, with the wait until the window ends.
    pub fn check(&self, ip: IpAddr, now: Instant) -> Result<(), u64> {
        let mut state = self.state.lock().unwrap_or_else(|p| p.into_inner());
        if state.windows.len() > SWEEP_ABOVE
            && state.last_sweep.is_none_or(|t| now.duration_since(t) >= SWEEP_EVERY)
        {
            let window = self.limit.window;
            state.windows.retain(|_, (start, _)| now.duration_since(*start) < window);
            state.last_sweep = Some(now);
        }
        let entry = state.windows.entry(client_key(ip)).or_insert((now, 0));
        if now.duration_since(entry.0) >= self.limit.window {
            *entry = (now, 0);
        }
        if entry.1 >= self.limit.requests {
            let left = self.limit.window.saturating_sub(now.duration_since(entry.0));
            // Whole seconds, rounded up, at least 1.
            return Err((left.as_millis().div_ceil(1000) as u64).max(1));
        }
        entry.1 += 1;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn exactly_the_limit_then_refused_until_the_window_ends_and_per_ip() {
        let limiter = RateLimiter::new(RateLimit { requests: 3, window: Duration::from_secs(300) });
        let t0 = Instant::now();
        let a: IpAddr = "192.0.2.1".parse().unwrap();
        let b: IpAddr = "192.0.2.2".parse().unwrap();
        for _ in 0..3 {
            assert_eq!(limiter.check(a, t0), Ok(()));
        }
        assert_eq!(limiter.check(a, t0 + Duration::from_secs(10)), Err(290));
        assert_eq!(limiter.check(b, t0), Ok(()), "another IP is unaffected");
        assert_eq!(limiter.check(a, t0 + Duration::from_secs(300)), Ok(()), "a new window");
    }

    #[test]
    fn ipv6_clients_count_per_64() {
        let limiter = RateLimiter::new(RateLimit { requests: 2, window: Duration::from_secs(300) });
        let t0 = Instant::now();
        assert_eq!(limiter.check("2001:db8::1".parse().unwrap(), t0), Ok(()));
        assert_eq!(limiter.check("2001:db8::ffff:2".parse().unwrap(), t0), Ok(()));
        assert!(limiter.check("2001:db8::3".parse().unwrap(), t0).is_err(), "same /64");
        assert_eq!(limiter.check("2001:db8:0:1::1".parse().unwrap(), t0), Ok(()), "another /64");
    }
}
