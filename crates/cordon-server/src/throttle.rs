//! Throttles in front of the key check: an address that keeps presenting wrong keys is
//! locked out for the rest of the minute (guessing a key becomes hopeless, and the store is
//! not hammered), and a key may be held to a request rate (`[limits]` in cordon.toml).

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use cordon_engine::policy::RequestLimits;

const WINDOW: Duration = Duration::from_secs(60);
/// Addresses remembered at most; beyond it, those whose window has passed are forgotten
/// (all of them, when that leaves over half).
const MAX_TRACKED: usize = 100_000;

struct Failures {
    since: Instant,
    count: u32,
}

/// A token bucket: `tokens` refill at the key's rate up to its burst.
struct Bucket {
    tokens: f64,
    at: Instant,
}

pub struct Throttle {
    limits: RequestLimits,
    failures: Mutex<HashMap<IpAddr, Failures>>,
    buckets: Mutex<HashMap<String, Bucket>>,
}

impl Throttle {
    pub fn new(limits: RequestLimits) -> Throttle {
        Throttle {
            limits,
            failures: Mutex::default(),
            buckets: Mutex::default(),
        }
    }

    /// How long `address` must still wait, if it used up its failed attempts.
    pub fn locked_out(&self, address: IpAddr, now: Instant) -> Option<Duration> {
        let failures = self.failures.lock().unwrap_or_else(|p| p.into_inner());
        let seen = failures.get(&address)?;
        let ends = seen.since + WINDOW;
        (seen.count >= self.limits.failed_auth_per_minute && ends > now).then(|| ends - now)
    }

    /// Counts a failed key check from `address`.
    pub fn failed(&self, address: IpAddr, now: Instant) {
        let mut failures = self.failures.lock().unwrap_or_else(|p| p.into_inner());
        if failures.len() >= MAX_TRACKED {
            failures.retain(|_, seen| seen.since + WINDOW > now);
            // A sweep that frees less than half the table (wrong keys from that many
            // addresses within the minute) would come again a few failures later, each
            // going through the whole table: start afresh instead. Whoever holds that many
            // addresses gains nothing by it that they had not already.
            if failures.len() > MAX_TRACKED / 2 {
                failures.clear();
            }
        }
        let seen = failures
            .entry(address)
            .or_insert(Failures { since: now, count: 0 });
        if seen.since + WINDOW <= now {
            *seen = Failures { since: now, count: 0 };
        }
        seen.count += 1;
    }

    /// Takes one request from `key`'s allowance; `Err(wait)` when it has none left.
    pub fn allow(&self, key: &str, now: Instant) -> Result<(), Duration> {
        let Some(rate) = self.limits.key_requests_per_second else {
            return Ok(());
        };
        let rate = f64::from(rate);
        let burst = f64::from(self.limits.key_burst.unwrap_or(rate as u32));
        let mut buckets = self.buckets.lock().unwrap_or_else(|p| p.into_inner());
        let bucket = buckets.entry(key.to_string()).or_insert(Bucket {
            tokens: burst,
            at: now,
        });
        bucket.tokens = (bucket.tokens + (now - bucket.at).as_secs_f64() * rate).min(burst);
        bucket.at = now;
        if bucket.tokens >= 1.0 {
            bucket.tokens -= 1.0;
            Ok(())
        } else {
            // A rate of 0 (refused by the config check, but possible in a policy built in
            // code) makes the wait infinite, on which `from_secs_f64` panics: the key then
            // waits a window and asks again, and the request is refused, not crashed.
            Err(Duration::try_from_secs_f64((1.0 - bucket.tokens) / rate).unwrap_or(WINDOW))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wrong_keys_lock_an_address_out_for_the_rest_of_the_minute() {
        let throttle = Throttle::new(RequestLimits {
            failed_auth_per_minute: 3,
            ..RequestLimits::default()
        });
        let (guesser, other) = ("10.0.0.1".parse().unwrap(), "10.0.0.2".parse().unwrap());
        let start = Instant::now();
        for n in 0..3 {
            assert_eq!(throttle.locked_out(guesser, start), None, "attempt {n}");
            throttle.failed(guesser, start);
        }
        let wait = throttle
            .locked_out(guesser, start + Duration::from_secs(10))
            .unwrap();
        assert_eq!(wait, Duration::from_secs(50));
        assert_eq!(
            throttle.locked_out(other, start),
            None,
            "other addresses are not held"
        );
        assert_eq!(
            throttle.locked_out(guesser, start + WINDOW),
            None,
            "the minute is over"
        );
    }

    #[test]
    fn addresses_tracked_stay_bounded_when_all_are_fresh() {
        // Wrong keys from more fresh addresses than are tracked (one host has a /64 of
        // IPv6 addresses): beyond the bound, every failure swept the whole table and
        // freed nothing, and it grew with every one.
        let throttle = Throttle::new(RequestLimits::default());
        let now = Instant::now();
        for n in 0..(2 * MAX_TRACKED as u128) {
            throttle.failed(IpAddr::V6((0x2001_0db8_u128 << 96 | n).into()), now);
        }
        let tracked = throttle.failures.lock().unwrap().len();
        assert!(tracked <= MAX_TRACKED, "{tracked} addresses tracked");
    }

    #[test]
    fn a_key_gets_its_burst_then_its_rate() {
        let throttle = Throttle::new(RequestLimits {
            key_requests_per_second: Some(10),
            key_burst: Some(5),
            ..RequestLimits::default()
        });
        let start = Instant::now();
        for _ in 0..5 {
            assert!(throttle.allow("k", start).is_ok());
        }
        let wait = throttle.allow("k", start).unwrap_err();
        assert!(wait <= Duration::from_millis(100), "{wait:?}");
        assert!(
            throttle.allow("other", start).is_ok(),
            "each key has its own allowance"
        );
        assert!(
            throttle.allow("k", start + Duration::from_millis(100)).is_ok(),
            "one token back"
        );
        let unlimited = Throttle::new(RequestLimits::default());
        assert!((0..10_000).all(|_| unlimited.allow("k", start).is_ok()));
    }

    #[test]
    fn a_rate_of_zero_refuses_without_panicking() {
        let throttle = Throttle::new(RequestLimits {
            key_requests_per_second: Some(0),
            ..RequestLimits::default()
        });
        assert_eq!(throttle.allow("k", Instant::now()), Err(WINDOW));
    }
}
