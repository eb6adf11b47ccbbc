//! The flood guard: a bank entry that suddenly matches far more often than its history is
//! quarantined, so that its matches go to review instead of acting on their own.
//!
//! A shared hash list can carry a bad entry — a flat colour, a meme, a logo — and one such
//! entry can take down thousands of innocent uploads in minutes. Real violating media
//! spreads too, but a person can tell the two apart in seconds and release the entry; the
//! guard only makes sure somebody looks before the damage is done.
//!
//! Each entry's hits are counted per window (10 minutes unless configured). When the
//! current window holds at least `min_hits` and more than `factor` times the entry's
//! average per window over its history (24 hours), the entry is quarantined. A released
//! entry is left alone from then on: a person vouched for it.

use std::collections::{HashMap, HashSet, VecDeque};

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

    /// The oldest window start the guard still needs at `now` (to load counts from).
    pub fn history_start(&self, now: OffsetDateTime) -> OffsetDateTime {
        let window = self.window_of(now) - self.history_windows();
        OffsetDateTime::from_unix_timestamp(window * self.window_seconds()).unwrap_or(now)
    }

    fn window_of(&self, at: OffsetDateTime) -> i64 {
        at.unix_timestamp().div_euclid(self.window_seconds())
    }
}

/// Hit counts and quarantines, in memory; the store keeps the same (see
/// [`FloodRecord`]) so a restart forgets nothing.
pub struct FloodGuard {
    config: FloodGuardConfig,
    /// Per entry, (window number, hits) of its recent windows, oldest first.
    hits: HashMap<ContentId, VecDeque<(i64, u32)>>,
    /// Entries quarantined now, with their bank.
    quarantined: HashMap<ContentId, String>,
    /// Entries a person released: never quarantined again.
    released: HashSet<ContentId>,
    /// The window of the last sweep of stale counts.
    swept: i64,
}

impl FloodGuard {
    /// A guard that remembers `quarantines` and the stored `hits` (see
    /// [`FloodGuardConfig::history_start`]).
    pub fn new(config: FloodGuardConfig, quarantines: &[Quarantine], hits: &[WindowHits]) -> FloodGuard {
        let mut guard = FloodGuard {
            config,
            hits: HashMap::new(),
            quarantined: HashMap::new(),
            released: HashSet::new(),
            swept: i64::MIN,
        };
        for quarantine in quarantines {
            if quarantine.released_at.is_some() {
                guard.released.insert(quarantine.content_id);
            } else {
                guard
                    .quarantined
                    .insert(quarantine.content_id, quarantine.bank.clone());
            }
        }
        for row in hits {
            let Ok(start) = OffsetDateTime::parse(&row.window_start, &Rfc3339) else {
                continue;
            };
            let window = guard.config.window_of(start);
            let windows = guard.hits.entry(row.content_id).or_default();
            match windows.back_mut() {
                Some((last, count)) if *last == window => *count += row.hits,
                _ => windows.push_back((window, row.hits)),
            }
        }
        for windows in guard.hits.values_mut() {
            windows.make_contiguous().sort_unstable();
        }
        guard
    }

    pub fn config(&self) -> &FloodGuardConfig {
        &self.config
    }

    /// Counts one hit for each entry `matches` found at `now`, quarantines the entries
    /// this makes flood, and marks every match of a quarantined entry. Negative banks'
    /// entries never act, so they are neither counted nor quarantined. Returns what to
    /// store with the submission.
    pub fn observe(&mut self, matches: &mut [Match], now: OffsetDateTime) -> FloodRecord {
        let window = self.config.window_of(now);
        let mut record = FloodRecord {
            window_start: cordon_store::format_time(
                OffsetDateTime::from_unix_timestamp(window * self.config.window_seconds()).unwrap_or(now),
            ),
            ..FloodRecord::default()
        };
        if !self.config.enabled {
            return record;
        }
        self.sweep(window);
        for found in matches.iter_mut().filter(|m| !m.negative) {
            record.hits.push(found.content_id);
            let current = self.count(found.content_id, window);
            if let Some(reason) = self.floods(found.content_id, window, current) {
                self.quarantined
                    .insert(found.content_id, found.bank.as_str().to_string());
                record.quarantines.push(NewQuarantine {
                    content_id: found.content_id,
                    bank: found.bank.as_str().to_string(),
                    reason,
                });
            }
            found.quarantined = self.quarantined.contains_key(&found.content_id);
        }
        record
    }

    /// Adds a hit in `window` and returns the window's count.
    fn count(&mut self, content_id: ContentId, window: i64) -> u32 {
        let oldest = window - self.config.history_windows();
        let windows = self.hits.entry(content_id).or_default();
        while windows.front().is_some_and(|(w, _)| *w < oldest) {
            windows.pop_front();
        }
        match windows.back_mut() {
            Some((last, count)) if *last == window => {
                *count += 1;
                *count
            }
            _ => {
                windows.push_back((window, 1));
                1
            }
        }
    }

    /// Why an entry with `current` hits in `window` floods, if it does.
    fn floods(&self, content_id: ContentId, window: i64, current: u32) -> Option<String> {
        if self.quarantined.contains_key(&content_id)
            || self.released.contains(&content_id)
            || current < self.config.min_hits
        {
            return None;
        }
        let history = self.config.history_windows();
        let earlier: u64 = self
            .hits
            .get(&content_id)
            .map(|windows| {
                windows
                    .iter()
                    .filter(|(w, _)| *w >= window - history && *w < window)
                    .map(|(_, hits)| u64::from(*hits))
                    .sum()
            })
            .unwrap_or(0);
        let usual = earlier as f64 / history as f64;
        (f64::from(current) > self.config.factor * usual).then(|| {
            format!(
                "{current} matches in {} minutes against {usual:.2} per {} minutes over the last {} hours",
                self.config.window_minutes, self.config.window_minutes, self.config.history_hours
            )
        })
    }

    /// Drops the counts of entries that have not matched for a whole history, once per
    /// window, so that memory follows the entries that are matching now.
    fn sweep(&mut self, window: i64) {
        if self.swept == window {
            return;
        }
        self.swept = window;
        let oldest = window - self.config.history_windows();
        self.hits
            .retain(|_, windows| windows.back().is_some_and(|(w, _)| *w >= oldest));
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

    fn guard() -> FloodGuard {
        FloodGuard::new(FloodGuardConfig::default(), &[], &[])
    }

    #[test]
    fn a_sudden_burst_quarantines_but_a_steady_rate_does_not() {
        // A steady entry: 30 hits in each window of the last 24 hours.
        let steady: Vec<WindowHits> = (1..=144)
            .map(|window| WindowHits {
                content_id: 1,
                window_start: cordon_store::format_time(at(-window * 600)),
                hits: 30,
            })
            .collect();
        let mut guard = FloodGuard::new(FloodGuardConfig::default(), &[], &steady);
        for n in 1..=60 {
            let record = guard.observe(&mut [hit(1), hit(2)], at(n));
            let new: Vec<ContentId> = record.quarantines.iter().map(|q| q.content_id).collect();
            if n == 20 {
                assert_eq!(new, [2], "the new entry floods at its 20th hit in ten minutes");
                assert!(record.quarantines[0].reason.contains("20 matches in 10 minutes"));
            } else {
                assert!(new.is_empty(), "hit {n}: {new:?}");
            }
        }
        assert!(
            !guard.is_quarantined(1),
            "60 hits against its usual 30 are not ten times more"
        );
        assert!(guard.is_quarantined(2));
        let mut later = [hit(2)];
        guard.observe(&mut later, at(3600));
        assert!(later[0].quarantined, "a quarantine lasts until released");
    }

    #[test]
    fn released_entries_and_negative_banks_are_left_alone() {
        let mut guard = guard();
        for n in 0..25 {
            guard.observe(&mut [hit(7)], at(n));
        }
        assert!(guard.is_quarantined(7));
        guard.release(7);
        let mut matches = [hit(7)];
        for n in 0..100 {
            guard.observe(&mut matches, at(1200 + n));
        }
        assert!(!matches[0].quarantined && !guard.is_quarantined(7));

        let mut negative = hit(8);
        negative.negative = true;
        for n in 0..100 {
            let record = guard.observe(std::slice::from_mut(&mut negative), at(n));
            assert!(record.hits.is_empty());
        }
        assert!(!guard.is_quarantined(8));
    }

    #[test]
    fn history_and_quarantines_survive_a_restart_through_the_store_rows() {
        let config = FloodGuardConfig::default();
        // Twelve hits in each window of the last day: a usual rate of 12.
        let hits: Vec<WindowHits> = (1..=144)
            .map(|window| WindowHits {
                content_id: 3,
                window_start: cordon_store::format_time(at(-window * 600 - 1)),
                hits: 12,
            })
            .collect();
        let kept = Quarantine {
            content_id: 4,
            bank: "TVEC".into(),
            since: cordon_store::format_time(at(-5)),
            reason: "test".into(),
            released_at: None,
            released_by: None,
        };
        let mut guard = FloodGuard::new(config, &[kept], &hits);
        assert!(guard.is_quarantined(4));
        for n in 0..100 {
            guard.observe(&mut [hit(3)], at(n));
        }
        assert!(!guard.is_quarantined(3), "100 < 10 x 12");
        for n in 100..121 {
            guard.observe(&mut [hit(3)], at(n));
        }
        assert!(guard.is_quarantined(3), "121 > 10 x 12");
    }

    #[test]
    fn a_disabled_guard_counts_nothing() {
        let config = FloodGuardConfig {
            enabled: false,
            ..FloodGuardConfig::default()
        };
        let mut guard = FloodGuard::new(config, &[], &[]);
        for n in 0..100 {
            assert!(guard.observe(&mut [hit(1)], at(n)).hits.is_empty());
        }
        assert!(!guard.is_quarantined(1));
    }
}
