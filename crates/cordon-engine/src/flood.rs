//! The flood guard: a bank entry that suddenly matches far more often than its history is
//! quarantined, so that its matches go to review instead of acting on their own.
//!
//! A shared hash list can carry a bad entry — a flat colour, a meme, a logo — and one such
//! entry can take down thousands of innocent uploads in minutes. Real violating media
//! spreads too, but a person can tell the two apart in seconds and release the entry; the
//! guard only makes sure somebody looks before the damage is done.
//!
//! Each entry's hits are counted per window (10 minutes unless configured), in the store,
//! so that nodes sharing one store count them together. When the current window holds at
//! least `min_hits` and more than `factor` times the entry's average per window over its
//! history (24 hours), the entry is quarantined. A released entry is left alone from then
//! on: a person vouched for it.

use std::collections::{HashMap, HashSet};

use cordon_store::{ContentId, FloodRecord, NewQuarantine, Quarantine, WindowHits};
use serde::Deserialize;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::matcher::Match;

/// `[flood_guard]` in `cordon.toml`.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct FloodGuardConfig {
    pub enabled: bool,
    /// Length of a counting window.
    pub window_minutes: u32,
    /// How far back an entry's usual rate is taken from.
    pub history_hours: u32,
    /// Fewer hits than this in a window never quarantine (a quiet entry's first matches
    /// are not a flood).
    pub min_hits: u32,
    /// How many times its usual rate an entry must hit in one window to be quarantined.
    pub factor: f64,
}

impl Default for FloodGuardConfig {
    fn default() -> Self {
        FloodGuardConfig {
            enabled: true,
            window_minutes: 10,
            history_hours: 24,
            min_hits: 20,
            factor: 10.0,
        }
    }
}

impl FloodGuardConfig {
    pub(crate) fn check(&self) -> Result<(), String> {
        if self.window_minutes == 0 || self.history_hours == 0 || self.min_hits == 0 {
            return Err("flood_guard: window_minutes, history_hours and min_hits must be at least 1".into());
        }
        // Beyond these, window arithmetic on dates could leave the calendar; no flood is
        // judged over more than a day's window or a year of history.
        if self.window_minutes > 24 * 60 || self.history_hours > 366 * 24 {
            return Err(
                "flood_guard: window_minutes must be at most 1440 and history_hours at most 8784".into(),
            );
        }
        if u64::from(self.history_hours) * 60 < u64::from(self.window_minutes) {
            return Err("flood_guard: history_hours must cover at least one window".into());
        }
        if !(self.factor.is_finite() && self.factor >= 1.0) {
            return Err("flood_guard: factor must be a number of at least 1".into());
        }
        Ok(())
    }

    fn window_seconds(&self) -> i64 {
        i64::from(self.window_minutes) * 60
    }

    /// Windows of history an entry's usual rate is averaged over.
    fn history_windows(&self) -> i64 {
        (i64::from(self.history_hours) * 3600 / self.window_seconds()).max(1)
    }

    /// The oldest window start the guard still needs at `now` (to read counts from).
    pub fn history_start(&self, now: OffsetDateTime) -> OffsetDateTime {
        self.start_of(self.window_of(now) - self.history_windows(), now)
    }

    /// The start of the window `now` is in, where its hits are counted.
    pub fn window_start(&self, now: OffsetDateTime) -> OffsetDateTime {
        self.start_of(self.window_of(now), now)
    }

    /// When window number `window` starts (`now` if that is out of range).
    fn start_of(&self, window: i64, now: OffsetDateTime) -> OffsetDateTime {
        OffsetDateTime::from_unix_timestamp(window * self.window_seconds()).unwrap_or(now)
    }

    fn window_of(&self, at: OffsetDateTime) -> i64 {
        at.unix_timestamp().div_euclid(self.window_seconds())
    }
}

/// Which entries are quarantined, in memory; the hit counts it judges by live in the store
/// (see [`FloodGuard::observe`]), so every node sharing a store judges by all the hits.
pub struct FloodGuard {
    config: FloodGuardConfig,
    /// Entries quarantined now, with their bank.
    quarantined: HashMap<ContentId, String>,
    /// Entries a person released: never quarantined again.
    released: HashSet<ContentId>,
}

impl FloodGuard {
    /// A guard that remembers the store's `quarantines`.
    pub fn new(config: FloodGuardConfig, quarantines: &[Quarantine]) -> FloodGuard {
        let mut guard = FloodGuard {
            config,
            quarantined: HashMap::new(),
            released: HashSet::new(),
        };
        for quarantine in quarantines {
            if quarantine.released_at.is_some() {
                guard.released.insert(quarantine.content_id);
            } else {
                guard.quarantine(quarantine.content_id, &quarantine.bank);
            }
        }
        guard
    }

    pub fn config(&self) -> &FloodGuardConfig {
        &self.config
    }

    /// The entries among `matches` that get a hit: count them and read their counts since
    /// [`FloodGuardConfig::history_start`] (the store's `count_hits`) for
    /// [`FloodGuard::observe`]. Empty when the guard is off or nothing it guards matched;
    /// an entry found by several signals is one hit.
    pub fn counted_entries(&self, matches: &[Match]) -> Vec<ContentId> {
        if !self.config.enabled {
            return Vec::new();
        }
        let mut entries: Vec<ContentId> = matches
            .iter()
            .filter(|m| !m.negative)
            .map(|m| m.content_id)
            .collect();
        entries.sort_unstable();
        entries.dedup();
        entries
    }

    /// Judges the entries `matches` found at `now` by their `counted` hits (this upload's
    /// included, see [`FloodGuard::counted_entries`]), and marks every match of an entry
    /// that is quarantined or floods now. Negative banks' entries never act, so they are
    /// never quarantined. Returns the new quarantines, to store with the submission and,
    /// once stored, to hold here ([`FloodGuard::quarantine`]).
    pub fn observe(&self, matches: &mut [Match], now: OffsetDateTime, counted: &[WindowHits]) -> FloodRecord {
        let mut record = FloodRecord::default();
        if !self.config.enabled {
            return record;
        }
        let window = self.config.window_of(now);
        for found in matches.iter_mut().filter(|m| !m.negative) {
            let mut floods = record
                .quarantines
                .iter()
                .any(|q| q.content_id == found.content_id);
            if !floods {
                let (current, earlier) = self.hits_of(found.content_id, window, counted);
                if let Some(reason) = self.floods(found.content_id, current, earlier) {
                    record.quarantines.push(NewQuarantine {
                        content_id: found.content_id,
                        bank: found.bank.as_str().to_string(),
                        reason,
                    });
                    floods = true;
                }
            }
            found.quarantined = floods || self.quarantined.contains_key(&found.content_id);
        }
        record
    }

    /// An entry's hits in `window` and in the history before it, from `counted`.
    fn hits_of(&self, content_id: ContentId, window: i64, counted: &[WindowHits]) -> (u32, u64) {
        let oldest = window - self.config.history_windows();
        let (mut current, mut earlier) = (0u32, 0u64);
        for row in counted.iter().filter(|row| row.content_id == content_id) {
            let Ok(start) = OffsetDateTime::parse(&row.window_start, &Rfc3339) else {
                continue;
            };
            match self.config.window_of(start) {
                w if w == window => current = current.saturating_add(row.hits),
                w if w >= oldest && w < window => earlier += u64::from(row.hits),
                _ => {}
            }
        }
        (current, earlier)
    }

    /// Why an entry with `current` hits in this window and `earlier` hits over the history
    /// before it floods, if it does.
    fn floods(&self, content_id: ContentId, current: u32, earlier: u64) -> Option<String> {
        if self.quarantined.contains_key(&content_id)
            || self.released.contains(&content_id)
            || current < self.config.min_hits
        {
            return None;
        }
        let usual = earlier as f64 / self.config.history_windows() as f64;
        (f64::from(current) > self.config.factor * usual).then(|| {
            format!(
                "{current} matches in {} minutes against {usual:.2} per {} minutes over the last {} hours",
                self.config.window_minutes, self.config.window_minutes, self.config.history_hours
            )
        })
    }

    /// Holds an entry's matches for review (unless a person released it): what this
    /// guard or another node's found.
    pub fn quarantine(&mut self, content_id: ContentId, bank: &str) {
        if !self.released.contains(&content_id) {
            self.quarantined.insert(content_id, bank.to_string());
        }
    }

    /// Lets a quarantined entry act again, and for good.
    pub fn release(&mut self, content_id: ContentId) {
        self.quarantined.remove(&content_id);
        self.released.insert(content_id);
    }

    pub fn is_quarantined(&self, content_id: ContentId) -> bool {
        self.quarantined.contains_key(&content_id)
    }

    /// Entries quarantined now, with their bank, by content id.
    pub fn quarantined(&self) -> Vec<(ContentId, &str)> {
        let mut entries: Vec<(ContentId, &str)> = self
            .quarantined
            .iter()
            .map(|(id, bank)| (*id, bank.as_str()))
            .collect();
        entries.sort_unstable();
        entries
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use cordon_store::BankName;

    fn hit(content_id: ContentId) -> Match {
        Match {
            bank: BankName::new("TVEC").unwrap(),
            content_id,
            signal_type: "pdq",
            distance: 0,
            transform: "original",
            negative: false,
            quarantined: false,
        }
    }

    fn at(seconds: i64) -> OffsetDateTime {
        OffsetDateTime::from_unix_timestamp(1_800_000_000 + seconds).unwrap()
    }

    /// The guard with hit counts kept as the store keeps them (one row per entry and
    /// window), used as the server uses it: count, judge, then hold what was quarantined.
    struct Counted {
        guard: FloodGuard,
        rows: Vec<WindowHits>,
    }

    impl Counted {
        fn new(config: FloodGuardConfig, quarantines: &[Quarantine], rows: Vec<WindowHits>) -> Counted {
            Counted {
                guard: FloodGuard::new(config, quarantines),
                rows,
            }
        }

        /// Submits `matches` at `now`: the entries it counted, and what it quarantined.
        fn submit(&mut self, matches: &mut [Match], now: OffsetDateTime) -> (Vec<ContentId>, FloodRecord) {
            let counted = self.guard.counted_entries(matches);
            let window_start = cordon_store::format_time(self.guard.config().window_start(now));
            for &content_id in &counted {
                match self
                    .rows
                    .iter_mut()
                    .find(|r| r.content_id == content_id && r.window_start == window_start)
                {
                    Some(row) => row.hits += 1,
                    None => self.rows.push(WindowHits {
                        content_id,
                        window_start: window_start.clone(),
                        hits: 1,
                    }),
                }
            }
            let record = self.guard.observe(matches, now, &self.rows);
            for quarantine in &record.quarantines {
                self.guard.quarantine(quarantine.content_id, &quarantine.bank);
            }
            (counted, record)
        }
    }

    fn history(content_id: ContentId, hits: u32) -> Vec<WindowHits> {
        (1..=144)
            .map(|window| WindowHits {
                content_id,
                window_start: cordon_store::format_time(at(-window * 600)),
                hits,
            })
            .collect()
    }

    #[test]
    fn a_sudden_burst_quarantines_but_a_steady_rate_does_not() {
        // A steady entry: 30 hits in each window of the last 24 hours.
        let mut counted = Counted::new(FloodGuardConfig::default(), &[], history(1, 30));
        for n in 1..=60 {
            let (_, record) = counted.submit(&mut [hit(1), hit(2)], at(n));
            let new: Vec<ContentId> = record.quarantines.iter().map(|q| q.content_id).collect();
            if n == 20 {
                assert_eq!(new, [2], "the new entry floods at its 20th hit in ten minutes");
                assert!(record.quarantines[0].reason.contains("20 matches in 10 minutes"));
            } else {
                assert!(new.is_empty(), "hit {n}: {new:?}");
            }
        }
        assert!(
            !counted.guard.is_quarantined(1),
            "60 hits against its usual 30 are not ten times more"
        );
        assert!(counted.guard.is_quarantined(2));
        let mut later = [hit(2)];
        counted.submit(&mut later, at(3600));
        assert!(later[0].quarantined, "a quarantine lasts until released");
    }

    #[test]
    fn hits_counted_elsewhere_count_too() {
        // Nineteen hits that other nodes recorded in this window: the first here floods.
        let elsewhere = vec![WindowHits {
            content_id: 5,
            window_start: cordon_store::format_time(at(0)),
            hits: 19,
        }];
        let mut counted = Counted::new(FloodGuardConfig::default(), &[], elsewhere);
        let mut matches = [hit(5)];
        let (_, record) = counted.submit(&mut matches, at(30));
        assert_eq!(record.quarantines.len(), 1);
        assert!(matches[0].quarantined);
        // And another node's quarantine, told through the feed, holds here.
        let mut guard = FloodGuard::new(FloodGuardConfig::default(), &[]);
        guard.quarantine(6, "TVEC");
        let mut matches = [hit(6)];
        let record = guard.observe(&mut matches, at(0), &[]);
        assert!(matches[0].quarantined && record.quarantines.is_empty());
    }

    #[test]
    fn a_quarantine_is_held_only_once_it_is_stored() {
        // Twenty hits counted: the upload that judges them is held for review, but the
        // guard holds the entry only when told the quarantine was stored.
        let rows = vec![WindowHits {
            content_id: 5,
            window_start: cordon_store::format_time(at(0)),
            hits: 20,
        }];
        let mut guard = FloodGuard::new(FloodGuardConfig::default(), &[]);
        let mut matches = [hit(5)];
        let record = guard.observe(&mut matches, at(1), &rows);
        assert!(matches[0].quarantined && record.quarantines.len() == 1);
        assert!(!guard.is_quarantined(5), "not stored yet");
        guard.quarantine(5, "TVEC");
        assert!(guard.is_quarantined(5));
    }

    #[test]
    fn an_entry_found_by_several_signals_is_one_hit() {
        let mut counted = Counted::new(FloodGuardConfig::default(), &[], Vec::new());
        let mut features = hit(9);
        features.signal_type = "features";
        let (hits, _) = counted.submit(&mut [hit(9), features], at(0));
        assert_eq!(hits, [9]);
        assert_eq!(counted.guard.counted_entries(&[hit(9), hit(3), hit(9)]), [3, 9]);
    }

    #[test]
    fn released_entries_and_negative_banks_are_left_alone() {
        let mut counted = Counted::new(FloodGuardConfig::default(), &[], Vec::new());
        for n in 0..25 {
            counted.submit(&mut [hit(7)], at(n));
        }
        assert!(counted.guard.is_quarantined(7));
        counted.guard.release(7);
        let mut matches = [hit(7)];
        for n in 0..100 {
            counted.submit(&mut matches, at(1200 + n));
        }
        assert!(!matches[0].quarantined && !counted.guard.is_quarantined(7));
        counted.guard.quarantine(7, "TVEC");
        assert!(!counted.guard.is_quarantined(7), "a late word from another node");

        let mut negative = hit(8);
        negative.negative = true;
        assert!(counted.guard.counted_entries(&[negative.clone()]).is_empty());
        for n in 0..100 {
            let (hits, record) = counted.submit(std::slice::from_mut(&mut negative), at(n));
            assert!(hits.is_empty() && record.quarantines.is_empty());
        }
        assert!(!counted.guard.is_quarantined(8));
    }

    #[test]
    fn history_and_quarantines_survive_a_restart_through_the_store_rows() {
        // Twelve hits in each window of the last day: a usual rate of 12.
        let kept = Quarantine {
            content_id: 4,
            bank: "TVEC".into(),
            since: cordon_store::format_time(at(-5)),
            reason: "test".into(),
            released_at: None,
            released_by: None,
        };
        let mut counted = Counted::new(FloodGuardConfig::default(), &[kept], history(3, 12));
        assert!(counted.guard.is_quarantined(4));
        for n in 0..100 {
            counted.submit(&mut [hit(3)], at(n));
        }
        assert!(!counted.guard.is_quarantined(3), "100 < 10 x 12");
        for n in 100..121 {
            counted.submit(&mut [hit(3)], at(n));
        }
        assert!(counted.guard.is_quarantined(3), "121 > 10 x 12");
    }

    #[test]
    fn a_disabled_guard_counts_nothing() {
        let config = FloodGuardConfig {
            enabled: false,
            ..FloodGuardConfig::default()
        };
        let mut counted = Counted::new(config, &[], Vec::new());
        assert!(counted.guard.counted_entries(&[hit(1)]).is_empty());
        for n in 0..100 {
            assert!(counted.submit(&mut [hit(1)], at(n)).0.is_empty());
        }
        assert!(!counted.guard.is_quarantined(1));
    }
}
