//! Policies: which matches lead to which actions, and where decisions are delivered.
//!
//! Read from `cordon.toml` (see `cordon.example.toml` at the repository root). A rule
//! names banks (or bank labels), the largest PDQ distance and the fewest local-features
//! keypoint pairs it acts on, and its actions; every match a rule covers yields one
//! decision per action, each with its rule and reason.

use std::collections::BTreeSet;
use std::path::Path;

use cordon_signals::{SignalType, features};
use cordon_store::{BankName, NewDecision};
use ipnet::IpNet;
use serde::Deserialize;

use crate::matcher::Match;

#[derive(Debug, thiserror::Error)]
pub enum PolicyError {
    #[error("cannot read {path}: {source}")]
    Read { path: String, source: std::io::Error },
    #[error("{path}: {message}")]
    Invalid { path: String, message: String },
}

/// What a decision does.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    /// Take the content down.
    Remove,
    /// Put it before a person.
    Review,
    /// Count a strike against the account.
    Strike,
    /// Suspend the account on sight.
    SuspendAccount,
    /// Tell the platform, take nothing down.
    Notify,
}

impl Action {
    pub const fn name(self) -> &'static str {
        match self {
            Action::Remove => "remove",
            Action::Review => "review",
            Action::Strike => "strike",
            Action::SuspendAccount => "suspend_account",
            Action::Notify => "notify",
        }
    }
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Webhook {
    pub name: String,
    pub url: String,
    /// The HMAC-SHA256 key of the `X-Cordon-Signature` header.
    pub secret: String,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Rule {
    pub name: String,
    /// Banks this rule covers, by name.
    #[serde(default)]
    pub banks: Vec<String>,
    /// Or banks carrying any of these labels.
    #[serde(default)]
    pub labels: Vec<String>,
    /// The largest PDQ distance acted on (each bank's own threshold still applies first).
    pub max_distance: Option<u32>,
    /// The fewest agreeing keypoint pairs a local-features match needs for this rule (its
    /// bank's `features` threshold still applies first, 12 pairs by default, so fewer
    /// asks nothing more). Few pairs are weaker evidence: a rule that removes can ask for
    /// more, and a later review rule see the rest.
    pub min_keypoint_pairs: Option<u32>,
    pub actions: Vec<Action>,
    /// How much a strike of this rule counts (1 unless said).
    pub strike_weight: Option<u32>,
}

impl Rule {
    /// Whether a match is near enough for this rule, by the measure of its signal:
    /// `max_distance` counts PDQ bits, `min_keypoint_pairs` local-features pairs.
    fn covers_distance(&self, m: &Match) -> bool {
        if m.signal_type == SignalType::Pdq.name() {
            self.max_distance.is_none_or(|max| m.distance <= max)
        } else if m.signal_type == SignalType::Features.name() {
            self.min_keypoint_pairs
                .is_none_or(|pairs| m.distance <= features::distance_of_inliers(pairs))
        } else {
            true
        }
    }
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Strikes {
    /// The strike that brings the account's live weight to this (but not to
    /// `suspend_at`) adds a `warn_account` decision: tell the account holder before the
    /// suspension. No warnings unless set.
    #[serde(default)]
    pub warn_at: Option<u32>,
    pub suspend_at: u32,
    pub window_days: u32,
}

/// The decision a strike reaching `warn_at` adds: it changes nothing in Cordon, and tells
/// the platform to warn the account holder.
pub const WARN_ACCOUNT: &str = "warn_account";

/// Which media may be fetched by URL (HMA's `?url=` parameters). Off unless hosts are
/// listed: a server that fetches whatever it is told is a door into the network behind it.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FetchPolicy {
    /// Host names media may come from: `media.example.com`, `*.example.com` for its
    /// subdomains, or `*` for any host. Even then, loopback, private, link-local and
    /// cloud-metadata addresses are refused, after DNS and after every redirect.
    #[serde(default)]
    pub allow_hosts: Vec<String>,
    /// Address ranges fetched despite that rule (`10.1.2.0/24`, `127.0.0.1`): for an
    /// internal media mirror, or a test server on loopback.
    #[serde(default, deserialize_with = "address_ranges")]
    pub allow_addresses: Vec<IpNet>,
    /// Give up on a download after this many seconds (10 unless said).
    pub timeout_seconds: Option<u32>,
}

impl FetchPolicy {
    pub const DEFAULT_TIMEOUT_SECONDS: u32 = 10;

    /// Whether media may be fetched from `host` (a name or an address, as in a URL).
    pub fn allows_host(&self, host: &str) -> bool {
        let host = host.trim_end_matches('.').to_ascii_lowercase();
        self.allow_hosts
            .iter()
            .any(|allowed| match allowed.strip_prefix("*") {
                Some("") => true,
                Some(suffix) => host.ends_with(suffix) && host.len() > suffix.len(),
                None => host == *allowed,
            })
    }

    pub fn timeout(&self) -> std::time::Duration {
        let seconds = self.timeout_seconds.unwrap_or(Self::DEFAULT_TIMEOUT_SECONDS);
        std::time::Duration::from_secs(u64::from(seconds))
    }

    fn check(&mut self) -> Result<(), String> {
        for host in &mut self.allow_hosts {
            let valid = host == "*"
                || host.strip_prefix("*.").unwrap_or(host).split('.').all(|label| {
                    !label.is_empty()
                        && label
                            .chars()
                            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == ':' || c == '_')
                });
            if !valid {
                return Err(format!(
                    "fetch.allow_hosts: {host:?} is not a host name (write `media.example.com`, \
                     `*.example.com` or `*`, without scheme, port or path)"
                ));
            }
            *host = host.to_ascii_lowercase();
        }
        if let Some(seconds) = self.timeout_seconds
            && !(1..=MAX_TIMEOUT_SECONDS).contains(&u64::from(seconds))
        {
            return Err(format!(
                "fetch.timeout_seconds must be between 1 and {MAX_TIMEOUT_SECONDS} (got {seconds})"
            ));
        }
        Ok(())
    }
}

/// `"10.0.0.0/8"` or a bare address, which stands for itself alone.
fn address_ranges<'de, D: serde::Deserializer<'de>>(deserializer: D) -> Result<Vec<IpNet>, D::Error> {
    Vec::<String>::deserialize(deserializer)?
        .iter()
        .map(|text| {
            text.parse::<IpNet>()
                .or_else(|_| text.parse::<std::net::IpAddr>().map(IpNet::from))
                .map_err(|_| {
                    serde::de::Error::custom(format!("{text:?} is not an address or a range like 10.0.0.0/8"))
                })
        })
        .collect()
}

/// A whole policy file.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Policy {
    #[serde(default)]
    pub webhooks: Vec<Webhook>,
    #[serde(default)]
    pub rules: Vec<Rule>,
    pub strikes: Option<Strikes>,
    #[serde(default)]
    pub fetch: FetchPolicy,
    #[serde(default)]
    pub flood_guard: crate::flood::FloodGuardConfig,
    #[serde(default)]
    pub review: crate::review::ReviewConfig,
    #[serde(default)]
    pub limits: RequestLimits,
}

/// `[limits]`: how hard one client may push.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RequestLimits {
    /// Failed key checks (API or console sign-in) one address may make in a minute; then
    /// everything from it that needs a key waits out the minute (429).
    pub failed_auth_per_minute: u32,
    /// Requests per second one key may make on average (off unless set).
    pub key_requests_per_second: Option<u32>,
    /// Requests one key may make at once before the rate applies (the rate unless set).
    pub key_burst: Option<u32>,
    /// A connection must send its request line and headers within this time, or it is
    /// closed: slow-header clients (slowloris) cannot hold connections open. An idle
    /// keep-alive connection is closed after it too.
    pub header_timeout_seconds: u64,
    /// A request's body must arrive whole within this time: a client that trickles its
    /// upload gets 408 and its connection back. Work on a request that has arrived is not
    /// cut short (an import answered 408 that commits anyway would be retried, twice).
    pub request_timeout_seconds: u64,
    /// Request line and headers larger than this are refused (431).
    pub max_header_bytes: usize,
    /// Largest hash list `POST /v1/banks/<name>/import` takes (413 beyond).
    pub max_import_bytes: u64,
    /// Connections a node keeps to PostgreSQL: how many requests may use the store at
    /// once, so one slow query holds up one request, not the node. SQLite always has one.
    pub store_connections: usize,
}

impl Default for RequestLimits {
    fn default() -> Self {
        RequestLimits {
            failed_auth_per_minute: 10,
            key_requests_per_second: None,
            key_burst: None,
            header_timeout_seconds: 30,
            request_timeout_seconds: 120,
            max_header_bytes: 64 << 10,
            max_import_bytes: 1 << 30,
            store_connections: 8,
        }
    }
}

/// `http://` or `https://`, then a host (and whatever follows it), with no white space
/// or control characters: what a webhook can be delivered to.
fn is_web_address(url: &str) -> bool {
    let Some(rest) = url
        .strip_prefix("https://")
        .or_else(|| url.strip_prefix("http://"))
    else {
        return false;
    };
    let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
    let host = authority.rsplit('@').next().unwrap_or("");
    !host.is_empty() && !host.starts_with(':') && !url.chars().any(|c| c.is_whitespace() || c.is_control())
}

/// The longest timeout a policy may set: a day.
const MAX_TIMEOUT_SECONDS: u64 = 24 * 3600;

/// The longest a strike may count: ten years (a longer window is a mistake, and dates
/// that far out stop being dates).
const MAX_WINDOW_DAYS: u32 = 3650;

/// The most a single strike may weigh.
const MAX_STRIKE_WEIGHT: u32 = 1000;

impl RequestLimits {
    fn check(&self) -> Result<(), String> {
        if self.failed_auth_per_minute == 0
            || self.key_requests_per_second == Some(0)
            || self.key_burst == Some(0)
        {
            return Err(
                "limits: failed_auth_per_minute, key_requests_per_second and key_burst must be at least 1"
                    .into(),
            );
        }
        // A day is far beyond any sane wait, and keeps deadline arithmetic in range.
        let timeouts = 1..=MAX_TIMEOUT_SECONDS;
        if !timeouts.contains(&self.header_timeout_seconds)
            || !timeouts.contains(&self.request_timeout_seconds)
        {
            return Err(format!(
                "limits: header_timeout_seconds and request_timeout_seconds must be between 1 and \
                 {MAX_TIMEOUT_SECONDS} (got {} and {})",
                self.header_timeout_seconds, self.request_timeout_seconds
            ));
        }
        if !(1..=256).contains(&self.store_connections) {
            return Err("limits: store_connections must be between 1 and 256".into());
        }
        // hyper reads headers into one buffer that cannot be smaller than 8 KiB.
        if !(8 << 10..=1 << 20).contains(&self.max_header_bytes) {
            return Err("limits: max_header_bytes must be between 8192 and 1048576".into());
        }
        Ok(())
    }
}

impl Policy {
    /// Reads and checks a policy file.
    pub fn load(path: &Path) -> Result<Policy, PolicyError> {
        let name = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|source| PolicyError::Read {
            path: name.clone(),
            source,
        })?;
        Policy::parse(&text).map_err(|message| PolicyError::Invalid { path: name, message })
    }

    pub fn parse(text: &str) -> Result<Policy, String> {
        let mut policy: Policy = toml::from_str(text).map_err(|e| e.to_string())?;
        policy.fetch.check()?;
        policy.flood_guard.check()?;
        policy.review.check()?;
        policy.limits.check()?;
        let mut names = BTreeSet::new();
        for webhook in &policy.webhooks {
            if !names.insert(&webhook.name) {
                return Err(format!("webhook {:?} is defined twice", webhook.name));
            }
            if !is_web_address(&webhook.url) {
                return Err(format!(
                    "webhook {:?}: url {:?} must be http:// or https:// and a host, without spaces",
                    webhook.name, webhook.url
                ));
            }
            if webhook.secret.len() < 8 {
                return Err(format!(
                    "webhook {:?}: the secret needs at least 8 characters",
                    webhook.name
                ));
            }
        }
        let mut rule_names = BTreeSet::new();
        for rule in &policy.rules {
            // Decisions and audit entries name their rule: two of one name could not be
            // told apart.
            if !rule_names.insert(&rule.name) {
                return Err(format!("rule {:?} is defined twice", rule.name));
            }
            if rule.banks.is_empty() && rule.labels.is_empty() {
                return Err(format!("rule {:?} names no banks and no labels", rule.name));
            }
            // A misspelt bank would quietly switch the rule off for it.
            for bank in &rule.banks {
                BankName::new(bank).map_err(|e| format!("rule {:?}: {e}", rule.name))?;
            }
            if let Some(distance) = rule.max_distance
                && distance > 256
            {
                return Err(format!(
                    "rule {:?}: max_distance counts PDQ bits, at most 256 (got {distance})",
                    rule.name
                ));
            }
            if let Some(weight) = rule.strike_weight
                && !(1..=MAX_STRIKE_WEIGHT).contains(&weight)
            {
                return Err(format!(
                    "rule {:?}: strike_weight must be between 1 and {MAX_STRIKE_WEIGHT} (got {weight})",
                    rule.name
                ));
            }
            if let Some(pairs) = rule.min_keypoint_pairs
                && !(1..=100).contains(&pairs)
            {
                return Err(format!(
                    "rule {:?}: min_keypoint_pairs must be between 1 and 100 (got {pairs})",
                    rule.name
                ));
            }
            if rule.actions.is_empty() {
                return Err(format!("rule {:?} has no actions", rule.name));
            }
        }
        if let Some(strikes) = &policy.strikes {
            if strikes.suspend_at == 0 {
                return Err("strikes: suspend_at must be at least 1".to_string());
            }
            if let Some(warn_at) = strikes.warn_at
                && !(1..strikes.suspend_at).contains(&warn_at)
            {
                return Err(format!(
                    "strikes: warn_at must be at least 1 and below suspend_at ({}), or left out \
                     for no warnings (got {warn_at})",
                    strikes.suspend_at
                ));
            }
            if !(1..=MAX_WINDOW_DAYS).contains(&strikes.window_days) {
                return Err(format!(
                    "strikes: window_days must be between 1 and {MAX_WINDOW_DAYS} (got {})",
                    strikes.window_days
                ));
            }
        }
        Ok(policy)
    }

    /// The decisions the rules take on `matches`: per action, the first rule (in file
    /// order) that covers the nearest match, with a reason naming it.
    ///
    /// Two defences against false positives hold decisions for a person: a match in a
    /// negative bank (known harmless content) never acts and turns the upload's automatic
    /// actions (remove, strike, suspend) into one `review`; so does a rule whose only
    /// matches are entries the flood guard quarantined.
    pub fn decide(&self, matches: &[Match], labels_of: impl Fn(&str) -> Vec<String>) -> Vec<NewDecision> {
        let mut decided: Vec<(Action, NewDecision, Option<String>)> = Vec::new();
        for rule in &self.rules {
            let covered = matches.iter().filter(|m| {
                let in_bank = rule.banks.iter().any(|b| b == m.bank.as_str());
                let labelled = !rule.labels.is_empty()
                    && labels_of(m.bank.as_str()).iter().any(|l| rule.labels.contains(l));
                let near_enough = rule.covers_distance(m);
                !m.negative && (in_bank || labelled) && near_enough
            });
            // Trusted entries before quarantined ones, then PDQ matches: their distance is
            // the better-known evidence.
            let Some(nearest) =
                covered.min_by_key(|m| (m.quarantined, m.signal_type != SignalType::Pdq.name(), m.distance))
            else {
                continue;
            };
            let held = nearest.quarantined.then(|| {
                format!(
                    "{} content {} is quarantined by the flood guard",
                    nearest.bank, nearest.content_id
                )
            });
            for action in &rule.actions {
                if decided.iter().any(|(a, _, _)| a == action) {
                    continue;
                }
                let decision = NewDecision {
                    action: action.name().to_string(),
                    rule: rule.name.clone(),
                    reason: format!(
                        "matched {} content {} by {} at distance {} ({}), rule {}",
                        nearest.bank,
                        nearest.content_id,
                        nearest.signal_type,
                        nearest.distance,
                        nearest.transform,
                        rule.name
                    ),
                    strike: (*action == Action::Strike)
                        .then(|| (rule.strike_weight.unwrap_or(1), String::new())),
                };
                decided.push((*action, decision, held.clone()));
            }
        }
        let harmless = matches
            .iter()
            .filter(|m| m.negative)
            .min_by_key(|m| (m.signal_type != SignalType::Pdq.name(), m.distance));
        if let Some(harmless) = harmless {
            let why = format!(
                "also matches negative bank {} content {} by {} at distance {}",
                harmless.bank, harmless.content_id, harmless.signal_type, harmless.distance
            );
            for (_, _, held) in &mut decided {
                held.get_or_insert_with(|| why.clone());
            }
        }
        hold_for_review(decided)
    }
}

/// Turns held automatic decisions into one `review` decision (or notes them on the review
/// already decided), saying what would have been done and why it was not.
fn hold_for_review(decided: Vec<(Action, NewDecision, Option<String>)>) -> Vec<NewDecision> {
    let automatic =
        |action: &Action| matches!(action, Action::Remove | Action::Strike | Action::SuspendAccount);
    let held: Vec<(&str, &str)> = decided
        .iter()
        .filter_map(|(action, _, why)| {
            why.as_deref()
                .filter(|_| automatic(action))
                .map(|w| (action.name(), w))
        })
        .collect();
    let Some((_, why)) = held.first() else {
        return decided.into_iter().map(|(_, d, _)| d).collect();
    };
    let note = format!(
        "held for review instead of {}: {why}",
        held.iter()
            .map(|(action, _)| *action)
            .collect::<Vec<_>>()
            .join(", ")
    );
    let reviewed = decided.iter().any(|(action, _, _)| *action == Action::Review);
    let mut decisions = Vec::new();
    let mut noted = false;
    for (action, mut decision, why) in decided.iter().cloned() {
        if automatic(&action) && why.is_some() {
            if !reviewed && !noted {
                decision.action = Action::Review.name().to_string();
                decision.reason = format!("{}; {note}", decision.reason);
                decision.strike = None;
                decisions.push(decision);
                noted = true;
            }
            continue;
        }
        if action == Action::Review && !noted {
            decision.reason = format!("{}; {note}", decision.reason);
            noted = true;
        }
        decisions.push(decision);
    }
    decisions
}

impl Policy {
    /// Days a strike counts when the policy has no `[strikes]` section.
    pub const DEFAULT_STRIKE_DAYS: u32 = 90;

    /// Dates the strikes among `decisions` (they expire after the window) and, when they
    /// bring the account's live strike weight (`active_weight` before them) to
    /// `suspend_at`, adds the suspension, saying why; when they bring it to `warn_at`
    /// instead, the warning.
    pub fn apply_strikes(
        &self,
        decisions: &mut Vec<NewDecision>,
        active_weight: u64,
        now: time::OffsetDateTime,
    ) {
        let days = self
            .strikes
            .as_ref()
            .map_or(Self::DEFAULT_STRIKE_DAYS, |s| s.window_days);
        let expires = cordon_store::format_time(now + time::Duration::days(i64::from(days)));
        let mut total = active_weight;
        for decision in decisions.iter_mut() {
            if let Some((weight, expiry)) = decision.strike.as_mut() {
                *expiry = expires.clone();
                total += u64::from(*weight);
            }
        }
        let Some(strikes) = &self.strikes else { return };
        let striking = decisions.iter().any(|d| d.strike.is_some());
        let suspended = decisions
            .iter()
            .any(|d| d.action == Action::SuspendAccount.name());
        if striking && !suspended && total >= u64::from(strikes.suspend_at) {
            decisions.push(NewDecision {
                action: Action::SuspendAccount.name().to_string(),
                rule: "strikes".to_string(),
                reason: format!(
                    "{total} strikes within {} days reach the suspension threshold of {}",
                    strikes.window_days, strikes.suspend_at
                ),
                strike: None,
            });
        } else if let Some(warn_at) = strikes.warn_at.map(u64::from)
            && striking
            && !suspended
            && active_weight < warn_at
            && total >= warn_at
        {
            // Once, on the strike that crosses the threshold, not on every one after it.
            decisions.push(NewDecision {
                action: WARN_ACCOUNT.to_string(),
                rule: "strikes".to_string(),
                reason: format!(
                    "{total} strikes within {} days reach the warning threshold of {warn_at} \
                     (suspension at {})",
                    strikes.window_days, strikes.suspend_at
                ),
                strike: None,
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use cordon_store::BankName;

    fn hit(bank: &str, distance: u32) -> Match {
        Match {
            bank: BankName::new(bank).unwrap(),
            content_id: 7,
            signal_type: "pdq",
            distance,
            transform: "original",
            negative: false,
            quarantined: false,
        }
    }

    const POLICY: &str = r#"
        [[webhooks]]
        name = "platform"
        url = "http://127.0.0.1:9000/hook"
        secret = "change-me"

        [[rules]]
        name = "known-tvec"
        banks = ["TVEC"]
        max_distance = 31
        actions = ["remove", "strike"]

        [[rules]]
        name = "graphic"
        labels = ["graphic-violence"]
        max_distance = 20
        actions = ["review", "remove"]

        [strikes]
        warn_at = 1
        suspend_at = 3
        window_days = 90
    "#;

    #[test]
    fn rules_turn_matches_into_decisions_with_reasons() {
        let policy = Policy::parse(POLICY).unwrap();
        let labels = |bank: &str| {
            if bank == "GORE" {
                vec!["graphic-violence".to_string()]
            } else {
                vec![]
            }
        };
        let decisions = policy.decide(&[hit("TVEC", 12)], labels);
        let actions: Vec<&str> = decisions.iter().map(|d| d.action.as_str()).collect();
        assert_eq!(actions, ["remove", "strike"]);
        assert!(
            decisions[0]
                .reason
                .contains("TVEC content 7 by pdq at distance 12")
        );
        assert_eq!(decisions[0].rule, "known-tvec");

        let by_label = policy.decide(&[hit("GORE", 20)], labels);
        assert_eq!(
            by_label.iter().map(|d| d.action.as_str()).collect::<Vec<_>>(),
            ["review", "remove"]
        );
        assert!(
            policy.decide(&[hit("GORE", 21)], labels).is_empty(),
            "over the rule's distance"
        );
        assert!(policy.decide(&[hit("OTHER", 0)], labels).is_empty());
        assert!(policy.decide(&[], labels).is_empty());
        assert_eq!(decisions[1].strike, Some((1, String::new())));
    }

    #[test]
    fn a_features_match_with_few_pairs_goes_to_the_rule_that_accepts_them() {
        let policy = Policy::parse(
            r#"
            [[rules]]
            name = "strong"
            banks = ["TVEC"]
            max_distance = 31
            min_keypoint_pairs = 30
            actions = ["remove"]

            [[rules]]
            name = "any"
            banks = ["TVEC"]
            actions = ["review"]
            "#,
        )
        .unwrap();
        let features_hit = |pairs: u32| Match {
            signal_type: "features",
            distance: features::distance_of_inliers(pairs),
            ..hit("TVEC", 0)
        };
        let actions = |m: Match| -> Vec<String> {
            let decisions = policy.decide(&[m], |_| vec![]);
            decisions
                .into_iter()
                .map(|d| format!("{} by {}", d.action, d.rule))
                .collect()
        };
        assert_eq!(actions(features_hit(20)), ["review by any"]);
        assert_eq!(actions(features_hit(30)), ["remove by strong", "review by any"]);
        assert_eq!(actions(features_hit(150)), ["remove by strong", "review by any"]);
        // Each measure applies to its own signal only: PDQ distance 20 is near enough
        // for the strong rule although 100 - 20 = 80 would be 20 pairs.
        assert_eq!(actions(hit("TVEC", 20)), ["remove by strong", "review by any"]);
        assert_eq!(actions(hit("TVEC", 40)), ["review by any"]);

        for bad in ["0", "101"] {
            let text = format!(
                "[[rules]]\nname = \"x\"\nbanks = [\"TVEC\"]\nmin_keypoint_pairs = {bad}\nactions = [\"review\"]\n"
            );
            let error = Policy::parse(&text).unwrap_err();
            assert_eq!(
                error,
                format!("rule \"x\": min_keypoint_pairs must be between 1 and 100 (got {bad})")
            );
        }
    }

    #[test]
    fn a_negative_bank_match_holds_automatic_actions_for_review() {
        let policy = Policy::parse(POLICY).unwrap();
        let mut harmless = hit("FLAT_COLOURS", 2);
        harmless.negative = true;
        let decisions = policy.decide(&[hit("TVEC", 12), harmless.clone()], |_| vec![]);
        assert_eq!(decisions.len(), 1, "{decisions:?}");
        assert_eq!(decisions[0].action, "review");
        assert_eq!(
            decisions[0].strike, None,
            "no strike while a person has not looked"
        );
        assert!(
            decisions[0].reason.contains(
                "held for review instead of remove, strike: also matches negative bank FLAT_COLOURS"
            ),
            "{}",
            decisions[0].reason
        );
        // A negative bank's match alone never acts, even when a rule names the bank.
        let naming =
            Policy::parse("[[rules]]\nname = \"all\"\nbanks = [\"FLAT_COLOURS\"]\nactions = [\"remove\"]\n")
                .unwrap();
        assert!(naming.decide(&[harmless.clone()], |_| vec![]).is_empty());
        // A rule that already reviews keeps one review and notes what was held.
        let labels = |_: &str| vec!["graphic-violence".to_string()];
        let reviewed = policy.decide(&[hit("GORE", 3), harmless], labels);
        let actions: Vec<&str> = reviewed.iter().map(|d| d.action.as_str()).collect();
        assert_eq!(actions, ["review"]);
        assert!(
            reviewed[0]
                .reason
                .contains("held for review instead of remove: also matches")
        );
    }

    #[test]
    fn a_quarantined_entry_sends_to_review_unless_a_trusted_entry_also_matches() {
        let policy = Policy::parse(POLICY).unwrap();
        let mut flooding = hit("TVEC", 1);
        flooding.quarantined = true;
        let held = policy.decide(std::slice::from_ref(&flooding), |_| vec![]);
        assert_eq!(held.len(), 1);
        assert_eq!(held[0].action, "review");
        assert!(
            held[0]
                .reason
                .contains("TVEC content 7 is quarantined by the flood guard")
        );

        let mut trusted = hit("TVEC", 9);
        trusted.content_id = 8;
        let acted = policy.decide(&[flooding, trusted], |_| vec![]);
        let actions: Vec<&str> = acted.iter().map(|d| d.action.as_str()).collect();
        assert_eq!(actions, ["remove", "strike"]);
        assert!(acted[0].reason.contains("TVEC content 8 by pdq at distance 9"));
    }

    #[test]
    fn the_strike_that_reaches_suspend_at_suspends_and_says_why() {
        let policy = Policy::parse(POLICY).unwrap();
        let now = time::OffsetDateTime::from_unix_timestamp(1_800_000_000).unwrap();
        let mut first = policy.decide(&[hit("TVEC", 3)], |_| vec![]);
        policy.apply_strikes(&mut first, 0, now);
        let actions: Vec<&str> = first.iter().map(|d| d.action.as_str()).collect();
        assert_eq!(
            actions,
            ["remove", "strike", "warn_account"],
            "warn_at = 1: warned, not suspended"
        );
        assert!(
            first[2]
                .reason
                .contains("warning threshold of 1 (suspension at 3)"),
            "{}",
            first[2].reason
        );
        assert!(
            first[1].strike.as_ref().unwrap().1.starts_with("2027-"),
            "expires after 90 days"
        );
        // Warned once, on the strike that crosses warn_at, not on every one after it.
        let mut second = policy.decide(&[hit("TVEC", 3)], |_| vec![]);
        policy.apply_strikes(&mut second, 1, now);
        assert_eq!(second.len(), 2, "{second:?}");
        // Without warn_at, no warnings.
        let quiet = Policy::parse(&POLICY.replace("warn_at = 1\n", "")).unwrap();
        let mut first = quiet.decide(&[hit("TVEC", 3)], |_| vec![]);
        quiet.apply_strikes(&mut first, 0, now);
        assert_eq!(first.len(), 2, "{first:?}");
        let mut third = policy.decide(&[hit("TVEC", 3)], |_| vec![]);
        policy.apply_strikes(&mut third, 2, now);
        assert_eq!(third.last().unwrap().action, "suspend_account");
        assert!(third.last().unwrap().reason.contains("3 strikes within 90 days"));
    }

    #[test]
    fn fetching_is_off_unless_hosts_are_listed() {
        let off = Policy::parse("").unwrap().fetch;
        assert!(!off.allows_host("example.com"));
        let fetch = Policy::parse(
            "[fetch]\nallow_hosts = [\"Media.Example.com\", \"*.cdn.example.net\"]\n\
             allow_addresses = [\"127.0.0.1\", \"10.1.0.0/16\"]\n",
        )
        .unwrap()
        .fetch;
        assert!(fetch.allows_host("media.example.com"));
        assert!(fetch.allows_host("MEDIA.example.com."));
        assert!(!fetch.allows_host("evil-media.example.com"));
        assert!(fetch.allows_host("a.b.cdn.example.net"));
        assert!(!fetch.allows_host("cdn.example.net"));
        assert!(!fetch.allows_host("xcdn.example.net"));
        assert_eq!(fetch.allow_addresses.len(), 2);
        assert!(fetch.allow_addresses[0].contains(&"127.0.0.1".parse::<std::net::IpAddr>().unwrap()));
        assert_eq!(fetch.timeout().as_secs(), 10);
        let any = Policy::parse("[fetch]\nallow_hosts = [\"*\"]\n").unwrap().fetch;
        assert!(any.allows_host("anything.example"));
    }

    #[test]
    fn web_addresses_need_a_scheme_and_a_host() {
        for good in [
            "https://hooks.example.com/cordon",
            "http://127.0.0.1:9000",
            "https://u@h.example/x?y#z",
        ] {
            assert!(is_web_address(good), "{good}");
        }
        for bad in [
            "ftp://x",
            "http://",
            "https:///path",
            "http://:80/",
            "http://a b",
            "http://a/\tb",
            "hooks.example.com",
        ] {
            assert!(!is_web_address(bad), "{bad:?}");
        }
    }

    #[test]
    fn bad_policies_are_refused_with_the_reason() {
        for (text, words) in [
            ("[[rules]]\nname = \"x\"\nactions = [\"remove\"]\n", "no banks"),
            (
                "[[rules]]\nname = \"x\"\nbanks = [\"A\"]\nactions = []\n",
                "no actions",
            ),
            (
                "[[rules]]\nname = \"x\"\nbanks = [\"A\"]\nactions = [\"explode\"]\n",
                "unknown variant",
            ),
            (
                "[[webhooks]]\nname = \"w\"\nurl = \"ftp://x\"\nsecret = \"12345678\"\n",
                "http://",
            ),
            (
                "[[webhooks]]\nname = \"w\"\nurl = \"http://x\"\nsecret = \"1\"\n",
                "secret",
            ),
            ("colour = 1\n", "unknown field"),
            ("[[rules]\n", "TOML parse error"),
            (
                "[fetch]\nallow_hosts = [\"https://media.example.com/\"]\n",
                "is not a host name",
            ),
            ("[fetch]\nallow_addresses = [\"10.0.0.0/33\"]\n", "not an address"),
            ("[fetch]\nallow_addresses = [\"localhost\"]\n", "not an address"),
            ("[fetch]\ntimeout_seconds = 0\n", "between 1 and 86400 (got 0)"),
            ("[fetch]\ntimeout_seconds = 4000000000\n", "between 1 and 86400"),
            // Values that once loaded and then panicked the server on first use.
            (
                "[limits]\nheader_timeout_seconds = 18446744073709551615\n",
                "between 1 and 86400",
            ),
            ("[limits]\nrequest_timeout_seconds = 0\n", "between 1 and 86400"),
            (
                "[strikes]\nwarn_at = 1\nsuspend_at = 3\nwindow_days = 99999999\n",
                "window_days must be between 1 and 3650 (got 99999999)",
            ),
            (
                "[strikes]\nwarn_at = 1\nsuspend_at = 0\nwindow_days = 9\n",
                "suspend_at",
            ),
            (
                "[flood_guard]\nhistory_hours = 4294967295\n",
                "history_hours at most",
            ),
            // Mistakes that would quietly switch a rule or a delivery off.
            (
                "[[rules]]\nname = \"x\"\nbanks = [\"tvec lower\"]\nactions = [\"remove\"]\n",
                "rule \"x\": invalid bank name \"tvec lower\"",
            ),
            (
                "[[rules]]\nname = \"x\"\nbanks = [\"A\"]\nactions = [\"remove\"]\n\
                 [[rules]]\nname = \"x\"\nbanks = [\"B\"]\nactions = [\"review\"]\n",
                "rule \"x\" is defined twice",
            ),
            (
                "[[rules]]\nname = \"x\"\nbanks = [\"A\"]\nactions = [\"remove\"]\nmax_distance = 300\n",
                "at most 256 (got 300)",
            ),
            (
                "[[rules]]\nname = \"x\"\nbanks = [\"A\"]\nactions = [\"strike\"]\nstrike_weight = 0\n",
                "strike_weight must be between 1 and 1000 (got 0)",
            ),
            (
                "[[webhooks]]\nname = \"w\"\nurl = \"http://\"\nsecret = \"12345678\"\n",
                "and a host",
            ),
            (
                "[[webhooks]]\nname = \"w\"\nurl = \"http://exa mple.com/ x\"\nsecret = \"12345678\"\n",
                "without spaces",
            ),
        ] {
            let error = Policy::parse(text).unwrap_err();
            assert!(error.contains(words), "{text:?}: {error}");
        }
    }
}

#[cfg(test)]
mod example {
    /// The commented example at the repository root must stay a valid policy.
    #[test]
    fn the_example_policy_parses() {
        let text = include_str!("../../../cordon.example.toml");
        let policy = super::Policy::parse(text).unwrap();
        assert_eq!(policy.rules.len(), 3);
        assert_eq!(policy.webhooks[0].name, "platform");
        assert!(policy.fetch.allows_host("media.example.com"));
    }
}
