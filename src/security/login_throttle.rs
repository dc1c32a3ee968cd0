//! The brake on password guessing at `POST /api/v1/auth/login`.
//!
//! Password attempts are counted twice: per username (guessing one account from many
//! addresses) and per client address (one address trying many accounts; an IPv6 client by
//! its /64, which one host commonly has whole). The first `free_failures` of either cost
//! nothing; after that each failure closes that key for a delay that doubles, up to
//! `max_delay_secs`, and a login attempted while a key is closed is answered 429 with
//! `Retry-After`, without checking the password at all. Failures older than `window_secs`
//! are forgotten, and a success clears the address's count and the username's.
//!
//! So the lock cannot shut the real owner out for good: it never lasts longer than
//! `max_delay_secs` after the last wrong password, and an address that has logged in as a
//! user before (in the last [`KNOWN_FOR`]) is not held back by that user's lock, only by its
//! own failures: a guesser elsewhere cannot keep the admin from logging in from where the
//! admin always does.
//!
//! Memory is bounded: at most [`MAX_KEYS`] usernames and addresses are tracked; past that,
//! those whose failures are forgotten are dropped first, then the least recent.

use std::{
    collections::HashMap,
    net::IpAddr,
    sync::Mutex,
    time::{Duration, Instant},
};

use super::client_network;
use crate::{config::LoginThrottleConfig, sync::lock};

/// Most usernames (and, separately, addresses and known logins) tracked at once.
const MAX_KEYS: usize = 10_000;

/// How long an address where a user logged in stays exempt from that user's lock.
const KNOWN_FOR: Duration = Duration::from_secs(30 * 24 * 3600);

/// The first delay once the free failures are spent; it doubles with each further failure.
const FIRST_DELAY: Duration = Duration::from_secs(1);

/// Failures of one key.
#[derive(Debug, Clone, Copy)]
struct Failures {
    count: u32,
    last: Instant,
    /// No attempt for this key before then.
    closed_until: Instant,
}

/// Why a login may not be tried now, and for how long.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Throttled {
    /// Too many wrong passwords for this username.
    User(Duration),
    /// Too many wrong passwords from this address.
    Address(Duration),
}

impl Throttled {
    /// How long until a login may be tried again.
    pub fn retry_after(self) -> Duration {
        match self {
            Self::User(wait) | Self::Address(wait) => wait,
        }
    }
}

impl std::fmt::Display for Throttled {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let (whose, wait) = match self {
            Self::User(wait) => ("for this user", wait),
            Self::Address(wait) => ("from this address", wait),
        };
        let seconds = wait.as_secs_f64().ceil();
        write!(
            f,
            "too many wrong passwords {whose}; try again in {seconds} s"
        )
    }
}

/// The failure counts behind the brake.
pub struct LoginThrottle {
    settings: LoginThrottleConfig,
    users: Mutex<HashMap<String, Failures>>,
    addresses: Mutex<HashMap<IpAddr, Failures>>,
    /// Where each user last logged in successfully from, and when.
    known: Mutex<HashMap<(String, IpAddr), Instant>>,
}

impl LoginThrottle {
    pub fn new(settings: LoginThrottleConfig) -> Self {
        Self {
            settings,
            users: Mutex::default(),
            addresses: Mutex::default(),
            known: Mutex::default(),
        }
    }

    /// Admits one password check for `username` from `address` at `now`, or says why not.
    /// An admitted attempt counts as a wrong password at once (a right one clears the count
    /// in [`LoginThrottle::succeeded`]), so a burst of concurrent guesses cannot all pass
    /// before the first of them is known to be wrong. Returns the lock that the attempt
    /// starts if it is wrong, for the log.
    pub fn attempt(
        &self,
        username: &str,
        address: IpAddr,
        now: Instant,
    ) -> Result<Option<Throttled>, Throttled> {
        let address = client_network(address);
        let mut addresses = lock(&self.addresses);
        if let Some(wait) = closed_for(addresses.get(&address), now) {
            return Err(Throttled::Address(wait));
        }
        let known = lock(&self.known)
            .get(&(username.to_owned(), address))
            .is_some_and(|at| now.duration_since(*at) < KNOWN_FOR);
        let mut users = lock(&self.users);
        if !known && let Some(wait) = closed_for(users.get(username), now) {
            return Err(Throttled::User(wait));
        }
        let by_address = self.count(&mut addresses, address, now);
        let by_user = self.count(&mut users, username.to_owned(), now);
        Ok(by_address
            .map(Throttled::Address)
            .or(by_user.map(Throttled::User)))
    }

    /// A right password: the address is known for this user, and both counts start over.
    pub fn succeeded(&self, username: &str, address: IpAddr, now: Instant) {
        let address = client_network(address);
        lock(&self.users).remove(username);
        lock(&self.addresses).remove(&address);
        let mut known = lock(&self.known);
        make_room(
            &mut known,
            |at| now.duration_since(*at) >= KNOWN_FOR,
            |at| *at,
        );
        known.insert((username.to_owned(), address), now);
    }

    /// Adds a failure to `key`; returns how long the key is now closed, if it is.
    fn count<K: std::hash::Hash + Eq>(
        &self,
        failures: &mut HashMap<K, Failures>,
        key: K,
        now: Instant,
    ) -> Option<Duration> {
        let window = self.settings.window();
        if !failures.contains_key(&key) {
            make_room(
                failures,
                |entry| now.duration_since(entry.last) >= window,
                |entry| entry.last,
            );
        }
        let entry = failures.entry(key).or_insert(Failures {
            count: 0,
            last: now,
            closed_until: now,
        });
        if now.duration_since(entry.last) >= window {
            entry.count = 0;
        }
        entry.count = entry.count.saturating_add(1);
        entry.last = now;
        let over = entry.count.checked_sub(self.settings.free_failures)?;
        if over == 0 {
            return None;
        }
        let delay = FIRST_DELAY
            .saturating_mul(1u32.checked_shl(over - 1).unwrap_or(u32::MAX))
            .min(self.settings.max_delay());
        entry.closed_until = now + delay;
        Some(delay)
    }
}

/// How long `failures` keeps its key closed after `now`, if it does.
fn closed_for(failures: Option<&Failures>, now: Instant) -> Option<Duration> {
    failures
        .map(|entry| entry.closed_until.saturating_duration_since(now))
        .filter(|wait| !wait.is_zero())
}

/// Keeps `map` below [`MAX_KEYS`] before one more entry: first drops the entries that are
/// `stale`, then, if that is not enough, the least recent (by `at`).
fn make_room<K, V>(
    map: &mut HashMap<K, V>,
    stale: impl Fn(&V) -> bool,
    at: impl Fn(&V) -> Instant,
) {
    if map.len() < MAX_KEYS {
        return;
    }
    map.retain(|_, value| !stale(value));
    while map.len() >= MAX_KEYS {
        let oldest = map
            .iter()
            .min_by_key(|(_, value)| at(value))
            .map(|(_, value)| at(value));
        let Some(oldest) = oldest else { return };
        map.retain(|_, value| at(value) != oldest);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn throttle() -> LoginThrottle {
        LoginThrottle::new(LoginThrottleConfig {
            free_failures: 3,
            max_delay_secs: 8.0,
            window_secs: 60.0,
        })
    }

    const ATTACKER: IpAddr = IpAddr::V4(std::net::Ipv4Addr::new(10, 0, 0, 66));
    const OWNER: IpAddr = IpAddr::V4(std::net::Ipv4Addr::new(10, 0, 0, 1));

    #[test]
    fn the_delay_doubles_after_the_free_failures_up_to_the_cap() {
        let throttle = throttle();
        let start = Instant::now();
        let mut delays = Vec::new();
        let mut now = start;
        for _ in 0..8 {
            let lock = throttle.attempt("admin", ATTACKER, now).expect("admitted");
            delays.push(lock.map(|lock| lock.retry_after().as_secs()));
            now += lock.map_or(Duration::ZERO, Throttled::retry_after);
        }
        assert_eq!(
            delays,
            [
                None,
                None,
                None,
                Some(1),
                Some(2),
                Some(4),
                Some(8),
                Some(8)
            ]
        );
        let closed = throttle.attempt("admin", ATTACKER, now - Duration::from_secs(1));
        assert_eq!(closed, Err(Throttled::Address(Duration::from_secs(1))));
    }

    #[test]
    fn failures_are_forgotten_after_the_window_and_cleared_by_a_success() {
        let throttle = throttle();
        let now = Instant::now();
        for _ in 0..3 {
            throttle.attempt("admin", ATTACKER, now).expect("admitted");
        }
        let later = now + Duration::from_secs(61);
        assert_eq!(
            throttle.attempt("admin", ATTACKER, later),
            Ok(None),
            "forgotten"
        );
        throttle.succeeded("admin", ATTACKER, later);
        for _ in 0..3 {
            assert_eq!(
                throttle.attempt("admin", ATTACKER, later),
                Ok(None),
                "cleared"
            );
        }
    }

    #[test]
    fn a_guesser_elsewhere_cannot_lock_the_owner_out_of_a_known_address() {
        let throttle = throttle();
        let now = Instant::now();
        throttle.succeeded("admin", OWNER, now);
        for n in 0..20u8 {
            // From twenty addresses, so no address is locked, only the user.
            let elsewhere = IpAddr::V4(std::net::Ipv4Addr::new(192, 0, 2, n));
            let _ = throttle.attempt("admin", elsewhere, now);
        }
        let stranger = IpAddr::V4(std::net::Ipv4Addr::new(198, 51, 100, 7));
        assert!(matches!(
            throttle.attempt("admin", stranger, now),
            Err(Throttled::User(_))
        ));
        assert!(throttle.attempt("admin", OWNER, now).is_ok());
    }

    #[test]
    fn tracked_keys_stay_bounded() {
        let throttle = throttle();
        let now = Instant::now();
        for n in 0..(MAX_KEYS + 50) {
            let at = now + Duration::from_millis(n as u64);
            let _ = throttle.attempt(&format!("user{n}"), ATTACKER, at);
        }
        assert!(lock(&throttle.users).len() <= MAX_KEYS);
    }
}
