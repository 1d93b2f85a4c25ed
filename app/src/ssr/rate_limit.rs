//! Per-client-IP request limits: a fixed window per IP that starts with its first request, so
//! "2000 requests per 5 minutes" means exactly that, and the answer past it says when the
//! window ends (Retry-After). In memory, per process: behind several replicas the WAF in front
//! (infra/) carries the fleet-wide limit.

use std::{collections::HashMap, net::IpAddr, sync::Mutex, time::Instant};

use super::config::RateLimit;

pub struct RateLimiter {
    limit: RateLimit,
    windows: Mutex<HashMap<IpAddr, (Instant, u32)>>,
}

/// Windows kept before expired ones are swept (bounds memory under many client IPs).
const SWEEP_ABOVE: usize = 10_000;

impl RateLimiter {
    pub fn new(limit: RateLimit) -> Self {
        RateLimiter { limit, windows: Mutex::new(HashMap::new()) }
    }

    /// Counts one request; `Err(seconds)` when over the limit, with the wait until the window ends.
    pub fn check(&self, ip: IpAddr, now: Instant) -> Result<(), u64> {
        let mut windows = self.windows.lock().unwrap_or_else(|p| p.into_inner());
        if windows.len() > SWEEP_ABOVE {
            let window = self.limit.window;
            windows.retain(|_, (start, _)| now.duration_since(*start) < window);
        }
        let entry = windows.entry(ip).or_insert((now, 0));
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
}
