//! Review: what goes to people and in which order, and how their verdicts become
//! decisions. The console (in `cordon-server`) shows and asks; this module decides what
//! an answer means, so that a reviewer's "confirm" goes down the same path as the policy's
//! automatic decisions.

use std::collections::BTreeMap;

use cordon_store::{NewDecision, NewReviewItem, StoredMedia};
use serde::Deserialize;

use crate::matcher::Match;
use crate::policy::Action;

/// `[review]` in `cordon.toml`.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ReviewConfig {
    /// How long a claimed item stays with its reviewer before others may take it.
    pub claim_minutes: u32,
    /// Severity of bank labels: items matching a more severe label come first
    /// (`tvec = 3`, `graphic-violence = 2`); unlisted labels count 1.
    pub severity: BTreeMap<String, i64>,
}

impl Default for ReviewConfig {
    fn default() -> Self {
        ReviewConfig {
            claim_minutes: 15,
            severity: BTreeMap::new(),
        }
    }
}

impl ReviewConfig {
    pub(crate) fn check(&self) -> Result<(), String> {
        if self.claim_minutes == 0 || self.claim_minutes > 24 * 60 {
            return Err("review.claim_minutes must be between 1 and 1440".to_string());
        }
        Ok(())
    }

    pub fn claim_duration(&self) -> time::Duration {
        time::Duration::minutes(i64::from(self.claim_minutes))
    }

    fn severity_of(&self, labels: &[String]) -> i64 {
        labels
            .iter()
            .map(|l| self.severity.get(l).copied().unwrap_or(1))
            .max()
            .unwrap_or(1)
    }
}

/// The queue entry for a submission whose decisions include `review`, or `None`.
/// `labels_of` gives a bank's labels; `media` gives the uploaded file, kept for the
/// reviewer (asked for only when the item is queued: most uploads are not kept).
pub fn review_item(
    config: &ReviewConfig,
    decisions: &[NewDecision],
    matches: &[Match],
    labels_of: impl Fn(&str) -> Vec<String>,
    account_strikes: u64,
    media: impl FnOnce() -> StoredMedia,
) -> Option<NewReviewItem> {
    let review = decisions.iter().find(|d| d.action == Action::Review.name())?;
    let acting: Vec<&Match> = matches.iter().filter(|m| !m.negative).collect();
    let mut banks: Vec<String> = acting.iter().map(|m| m.bank.as_str().to_string()).collect();
    banks.sort();
    banks.dedup();
    let mut labels: Vec<String> = banks.iter().flat_map(|b| labels_of(b)).collect();
    labels.sort();
    labels.dedup();
    let nearest = acting.iter().min_by_key(|m| {
        (
            m.signal_type != cordon_signals::SignalType::Pdq.name(),
            m.distance,
        )
    });
    Some(NewReviewItem {
        severity: config.severity_of(&labels),
        distance: nearest.map_or(0, |m| m.distance),
        signal_type: nearest.map_or("pdq", |m| m.signal_type).to_string(),
        account_strikes,
        banks,
        labels,
        rule: review.rule.clone(),
        reason: review.reason.clone(),
        media: Some(media()),
    })
}

/// A reviewer's answer on one item.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// The match is right: carry out these actions.
    Confirm(Vec<Action>),
    /// A false positive: tell the platform to dismiss it.
    Overturn,
    /// Pass it to a senior reviewer.
    Escalate,
}

/// Decision actions a reviewer's verdict writes beyond the policy's own: the platform
/// hears `dismiss` for a false positive and `escalate` while a senior looks.
pub const DISMISS: &str = "dismiss";
pub const ESCALATE: &str = "escalate";

/// The decisions that carry out `verdict`, each naming the reviewer and their note.
/// Strikes weigh 1 and still need their expiry (see `Policy::apply_strikes`).
pub fn decisions_for(verdict: &Verdict, reviewer: &str, note: &str) -> Vec<NewDecision> {
    let reason = |what: &str| {
        if note.trim().is_empty() {
            format!("{what} by reviewer {reviewer}")
        } else {
            format!("{what} by reviewer {reviewer}: {}", note.trim())
        }
    };
    let decision = |action: &str, why: String| NewDecision {
        action: action.to_string(),
        rule: "review".to_string(),
        reason: why,
        strike: (action == Action::Strike.name()).then(|| (1, String::new())),
    };
    match verdict {
        Verdict::Confirm(actions) => actions
            .iter()
            .filter(|a| **a != Action::Review)
            .map(|a| decision(a.name(), reason("confirmed")))
            .collect(),
        Verdict::Overturn => vec![decision(DISMISS, reason("overturned as a false positive"))],
        Verdict::Escalate => vec![decision(ESCALATE, reason("escalated"))],
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use cordon_store::BankName;

    fn hit(bank: &str, distance: u32, negative: bool) -> Match {
        Match {
            bank: BankName::new(bank).unwrap(),
            content_id: 1,
            signal_type: "pdq",
            distance,
            transform: "original",
            negative,
            quarantined: false,
        }
    }

    fn review(rule: &str) -> NewDecision {
        NewDecision {
            action: "review".into(),
            rule: rule.into(),
            reason: "why".into(),
            strike: None,
        }
    }

    #[test]
    fn only_reviews_are_queued_with_severity_from_the_most_severe_label() {
        let config = ReviewConfig {
            severity: BTreeMap::from([("tvec".to_string(), 3), ("graphic".to_string(), 2)]),
            ..ReviewConfig::default()
        };
        let labels = |bank: &str| match bank {
            "TVEC" => vec!["tvec".to_string()],
            _ => vec!["graphic".to_string()],
        };
        let media = StoredMedia {
            mime: "image/jpeg".into(),
            bytes: vec![1],
        };
        let matches = [
            hit("GORE", 9, false),
            hit("TVEC", 20, false),
            hit("HARMLESS", 1, true),
        ];
        let item = review_item(&config, &[review("r")], &matches, labels, 2, || media.clone()).unwrap();
        assert_eq!(item.severity, 3);
        assert_eq!(item.distance, 9, "the nearest match outside negative banks");
        assert_eq!(item.banks, ["GORE", "TVEC"]);
        assert_eq!(item.labels, ["graphic", "tvec"]);
        assert_eq!(item.account_strikes, 2);
        let remove = NewDecision {
            action: "remove".into(),
            ..review("r")
        };
        assert!(review_item(&config, &[remove], &matches, labels, 0, || media).is_none());
    }

    #[test]
    fn verdicts_become_decisions_that_name_the_reviewer() {
        let confirm = decisions_for(
            &Verdict::Confirm(vec![Action::Remove, Action::Strike]),
            "ana",
            " seen ",
        );
        let actions: Vec<&str> = confirm.iter().map(|d| d.action.as_str()).collect();
        assert_eq!(actions, ["remove", "strike"]);
        assert_eq!(confirm[0].reason, "confirmed by reviewer ana: seen");
        assert_eq!(confirm[1].strike, Some((1, String::new())));
        let overturn = decisions_for(&Verdict::Overturn, "ana", "");
        assert_eq!(overturn[0].action, "dismiss");
        assert_eq!(
            overturn[0].reason,
            "overturned as a false positive by reviewer ana"
        );
        assert_eq!(decisions_for(&Verdict::Escalate, "ana", "")[0].action, "escalate");
    }
}
