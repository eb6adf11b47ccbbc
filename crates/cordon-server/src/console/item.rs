//! One review item: the upload beside the bank content it matched, why it is here, the
//! account's history, the provenance verdict, and the decision.

use axum::extract::Path;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::{Extension, Form};
use cordon_engine::access::Role;
use cordon_engine::image_signals::QuerySignals;
use cordon_engine::policy::Action;
use cordon_engine::provenance::{self, Asked, Provenance};
use cordon_engine::review::{Verdict, decisions_for};
use cordon_signals::PdqHash;
use cordon_store::{Account, Outcome, ReviewItem, StoredMedia};
use maud::{Markup, html};
use serde::Deserialize;
use serde_json::{Value, json};

use super::page;
use super::{ConsoleError, Reviewer, Shared, blocking, see_other};
use crate::banking::{NewBankContent, store_content};
use crate::state::{AppState, Caller};

/// The earliest sightings the item page lists; it counts them all.
const SIGHTINGS_SHOWN: usize = 5;

/// Everything the item page shows, read in one go.
struct ItemView {
    item: ReviewItem,
    account: Option<Account>,
    provenance: Option<Provenance>,
    has_media: bool,
    /// Per match: whether the bank content's file is kept.
    content_media: Vec<(i64, bool)>,
    banks: Vec<(String, bool)>,
    revealed: bool,
}

fn read_view(state: &AppState, reviewer: &Reviewer, id: i64) -> Result<ItemView, ConsoleError> {
    let store = state.store();
    let item = store.review_item(id)?.ok_or_else(|| {
        ConsoleError::new(axum::http::StatusCode::NOT_FOUND, format!("no review item {id}"))
    })?;
    let account = store.account(&item.account_id)?;
    // Provenance of the upload, by its PDQ hash as the ledger kept it.
    let sighting = store.sighting_of_submission(id)?;
    let provenance = match sighting
        .as_ref()
        .and_then(|s| s.media.pdq.as_deref()?.parse::<PdqHash>().ok())
    {
        Some(hash) => {
            let hits = state.ledger().find(&QuerySignals::of_hash(hash));
            let asked = match &sighting {
                Some(sighting) => Asked::of_sighting(sighting),
                None => Asked::default(),
            };
            Some(provenance::report(&store, &hits, &asked, SIGHTINGS_SHOWN)?)
        }
        None => None,
    };
    let mut content_media = Vec::new();
    for matched in matches_of(&item) {
        if let Some(content_id) = matched["content_id"].as_i64() {
            content_media.push((content_id, store.content_media(content_id)?.is_some()));
        }
    }
    let banks = store
        .banks()?
        .into_iter()
        .map(|b| (b.name.to_string(), b.negative))
        .collect();
    Ok(ItemView {
        has_media: store.submission_media(id)?.is_some(),
        revealed: state.revealed().contains(&(reviewer.name.clone(), id)),
        item,
        account,
        provenance,
        content_media,
        banks,
    })
}

/// An item a reviewer may act on: it exists, and escalated items only for admins.
fn actionable_item(state: &AppState, reviewer: &Reviewer, id: i64) -> Result<ReviewItem, ConsoleError> {
    let item = state.store().review_item(id)?.ok_or_else(|| {
        ConsoleError::new(axum::http::StatusCode::NOT_FOUND, format!("no review item {id}"))
    })?;
    if item.state == "escalated" && reviewer.role != Role::Admin {
        return Err(ConsoleError::forbidden(
            "escalated items are for senior reviewers (admin keys)",
        ));
    }
    Ok(item)
}

fn matches_of(item: &ReviewItem) -> Vec<Value> {
    item.response["matches"].as_array().cloned().unwrap_or_default()
}

pub async fn page(
    state: Shared,
    Extension(reviewer): Extension<Reviewer>,
    Path(id): Path<i64>,
) -> Result<Markup, ConsoleError> {
    let header = page::header_of(&state, &reviewer).await?;
    let shared = state.0.clone();
    let who = reviewer.clone();
    let view = blocking(move || read_view(&shared, &who, id)).await?;
    Ok(page::shell(
        &format!("Item #{id}"),
        &header,
        render(&view, &reviewer),
    ))
}

fn render(view: &ItemView, reviewer: &Reviewer) -> Markup {
    let item = &view.item;
    let now = cordon_store::now_rfc3339();
    let mine = item.claimed_by.as_deref() == Some(reviewer.name.as_str())
        && item.claim_expires_at.as_deref().is_some_and(|e| e > now.as_str());
    let held_by_other = !mine && item.claim_expires_at.as_deref().is_some_and(|e| e > now.as_str());
    let media_class = if view.revealed { "media revealed" } else { "media" };
    html! {
        h1 { "Item #" (item.submission_id) " · " (item.state) }
        @if item.state == "decided" {
            p.notice { "Decided: " (item.outcome.clone().unwrap_or_default()) " by " (item.decided_by.clone().unwrap_or_default()) " at " (item.decided_at.clone().unwrap_or_default()) "." }
        } @else if mine {
            p.notice { "You hold this item until " (item.claim_expires_at.clone().unwrap_or_default()) "." }
        } @else if held_by_other {
            p.notice { (item.claimed_by.clone().unwrap_or_default()) " holds this item until " (item.claim_expires_at.clone().unwrap_or_default()) "." }
        }
        section.panel aria-labelledby="why" {
            h2 #why { "Why it is here" }
            dl.facts {
                dt { "Rule" } dd { (item.rule) }
                dt { "Reason" } dd { (item.reason) }
                dt { "Banks" } dd { (item.banks.join(", ")) }
                dt { "Labels" } dd { (item.labels.join(", ")) }
            }
        }
        section aria-labelledby="media" {
            h2 #media { "Media" }
            @if !view.revealed && view.has_media {
                form method="post" action=(format!("/console/item/{}/reveal", item.submission_id)) {
                    input type="hidden" name="csrf" value=(reviewer.csrf);
                    button type="submit" data-key="r" aria-keyshortcuts="r" { "Reveal this item " kbd { "R" } }
                }
            }
            div.pair {
                figure {
                    figcaption { "Uploaded by " (item.account_id) " as " (item.content_id) }
                    @if view.has_media {
                        div class=(media_class) {
                            img src=(format!("/console/media/submission/{}", item.submission_id)) alt=(format!("Upload {} (blurred until revealed)", item.submission_id));
                        }
                    } @else {
                        p { "The file was not kept." }
                    }
                }
                @for matched in matches_of(item) {
                    (match_figure(&matched, view, media_class))
                }
            }
        }
        @if mine && item.state != "decided" {
            (decision_form(view, reviewer))
        } @else if item.state != "decided" {
            form method="post" action=(format!("/console/item/{}/claim", item.submission_id)) {
                input type="hidden" name="csrf" value=(reviewer.csrf);
                button.primary type="submit" data-key="k" aria-keyshortcuts="k" { "Claim this item " kbd { "K" } }
            }
        }
        (account_panel(view.account.as_ref()))
        (provenance_panel(view.provenance.as_ref()))
        @if view.has_media {
            form.panel method="post" action=(format!("/console/item/{}/bank", item.submission_id)) {
                input type="hidden" name="csrf" value=(reviewer.csrf);
                label for="add-bank" { "Add this upload to a bank" }
                select #add-bank name="bank" {
                    @for (bank, negative) in &view.banks {
                        option value=(bank) { (bank) @if *negative { " (negative)" } }
                    }
                }
                div.actions { button type="submit" { "Add to bank" } }
            }
        }
    }
}

fn match_figure(matched: &Value, view: &ItemView, media_class: &str) -> Markup {
    let content_id = matched["content_id"].as_i64().unwrap_or_default();
    let kept = view
        .content_media
        .iter()
        .any(|(id, has)| *id == content_id && *has);
    let bank = matched["bank"].as_str().unwrap_or_default();
    html! {
        figure {
            figcaption {
                "Matched " strong { (bank) " #" (content_id) } " by " (matched["signal_type"].as_str().unwrap_or_default())
                " at distance " (matched["distance"]) " (" (matched["transform"].as_str().unwrap_or_default()) ")"
                @if matched["negative"] == json!(true) { " · negative bank" }
                @if matched["quarantined"] == json!(true) { " · quarantined by the flood guard" }
            }
            @if kept {
                div class=(media_class) {
                    img src=(format!("/console/media/content/{content_id}")) alt=(format!("{bank} content {content_id} (blurred until revealed)"));
                }
            } @else {
                p { "Known by its hash only: no file kept." }
            }
        }
    }
}

fn decision_form(view: &ItemView, reviewer: &Reviewer) -> Markup {
    let item = &view.item;
    html! {
        form.panel method="post" action=(format!("/console/item/{}/decide", item.submission_id)) {
            input type="hidden" name="csrf" value=(reviewer.csrf);
            h2 { "Decision" }
            fieldset {
                legend { "If you confirm, do:" }
                label.inline { input type="checkbox" name="remove" checked; "Remove the content" }
                label.inline { input type="checkbox" name="strike"; "Strike the account" }
                label.inline { input type="checkbox" name="suspend_account"; "Suspend the account" }
                label.inline { input type="checkbox" name="notify"; "Notify only" }
            }
            label for="negative-bank" { "If you overturn, also add the upload to a negative bank (optional)" }
            select #negative-bank name="negative_bank" {
                option value="" { "No" }
                @for (bank, negative) in &view.banks {
                    @if *negative { option value=(bank) { (bank) } }
                }
            }
            label for="note" { "Note" }
            textarea #note name="note" maxlength="1000" {}
            div.actions {
                button.danger type="submit" name="verdict" value="confirm" data-key="c" aria-keyshortcuts="c" { "Confirm " kbd { "C" } }
                button type="submit" name="verdict" value="overturn" data-key="o" aria-keyshortcuts="o" { "Overturn: false positive " kbd { "O" } }
                @if item.state != "escalated" {
                    button type="submit" name="verdict" value="escalate" data-key="e" aria-keyshortcuts="e" { "Escalate " kbd { "E" } }
                }
            }
        }
    }
}

fn account_panel(account: Option<&Account>) -> Markup {
    html! {
        section.panel aria-labelledby="account" {
            h2 #account { "Account" }
            @if let Some(account) = account {
                dl.facts {
                    dt { "Account" } dd { (account.id) }
                    dt { "State" } dd { (account.state) @if let Some(reason) = &account.reason { " (" (reason) ")" } }
                    dt { "Live strikes" } dd { (account.strike_weight) }
                    dt { "Decisions" } dd { (account.history.len()) }
                }
                @if !account.history.is_empty() {
                    ul {
                        @for decision in account.history.iter().take(5) {
                            li { (decision["created_at"].as_str().unwrap_or_default()) ": " (decision["action"].as_str().unwrap_or_default()) " (" (decision["rule"].as_str().unwrap_or_default()) ")" }
                        }
                    }
                }
            } @else {
                p { "No history." }
            }
        }
    }
}

fn provenance_panel(provenance: Option<&Provenance>) -> Markup {
    html! {
        section.panel aria-labelledby="provenance" {
            h2 #provenance { "Provenance" }
            @if let Some(found) = provenance {
                p { strong { (found.verdict.label) } ": " (found.verdict.reasons.join("; ")) }
                @if !found.sightings.is_empty() {
                    p { (found.sightings_total) " earlier sightings, " (found.accounts) " accounts, " (found.sources) " sources." }
                    ul {
                        @for seen in &found.sightings {
                            li { (seen.seen_at) " · " (seen.sighting.source_url.clone().unwrap_or_else(|| seen.sighting.kind.to_string())) " · " (seen.sighting.account_id.clone().unwrap_or_default()) " · " (seen.signal_type) " " (seen.distance) }
                        }
                    }
                }
            } @else {
                p { "The upload has no PDQ hash to trace." }
            }
        }
    }
}

#[derive(Deserialize)]
pub struct CsrfOnly {
    csrf: String,
}

/// Takes the item (a claim that lapses after `[review] claim_minutes`).
pub async fn claim(
    state: Shared,
    Extension(reviewer): Extension<Reviewer>,
    Path(id): Path<i64>,
    Form(form): Form<CsrfOnly>,
) -> Result<Response, ConsoleError> {
    reviewer.check_csrf(&form.csrf)?;
    let shared = state.0.clone();
    blocking(move || {
        actionable_item(&shared, &reviewer, id)?;
        let now = time::OffsetDateTime::now_utc();
        let until = cordon_store::format_time(now + shared.policy.review.claim_duration());
        shared
            .store()
            .claim_review(id, &reviewer.name, &cordon_store::format_time(now), &until)?;
        Ok(())
    })
    .await?;
    Ok(see_other(&format!("/console/item/{id}")))
}

/// Shows one item's media sharp, and counts it in the reviewer's exposure today.
pub async fn reveal(
    state: Shared,
    Extension(reviewer): Extension<Reviewer>,
    Path(id): Path<i64>,
    Form(form): Form<CsrfOnly>,
) -> Result<Response, ConsoleError> {
    reviewer.check_csrf(&form.csrf)?;
    let shared = state.0.clone();
    blocking(move || {
        if shared.revealed().insert((reviewer.name.clone(), id)) {
            shared.store().count_reveal(&reviewer.name, &page::today())?;
        }
        Ok(())
    })
    .await?;
    Ok(see_other(&format!("/console/item/{id}")))
}

#[derive(Deserialize)]
pub struct DecisionForm {
    csrf: String,
    verdict: String,
    remove: Option<String>,
    strike: Option<String>,
    suspend_account: Option<String>,
    notify: Option<String>,
    #[serde(default)]
    negative_bank: String,
    #[serde(default)]
    note: String,
}

impl DecisionForm {
    fn verdict(&self) -> Result<Verdict, ConsoleError> {
        match self.verdict.as_str() {
            "confirm" => {
                let chosen = [
                    (&self.remove, Action::Remove),
                    (&self.strike, Action::Strike),
                    (&self.suspend_account, Action::SuspendAccount),
                    (&self.notify, Action::Notify),
                ];
                let actions: Vec<Action> = chosen
                    .into_iter()
                    .filter(|(ticked, _)| ticked.is_some())
                    .map(|(_, action)| action)
                    .collect();
                if actions.is_empty() {
                    return Err(ConsoleError::bad_request(
                        "to confirm, choose at least one action",
                    ));
                }
                Ok(Verdict::Confirm(actions))
            }
            "overturn" => Ok(Verdict::Overturn),
            "escalate" => Ok(Verdict::Escalate),
            other => Err(ConsoleError::bad_request(format!("unknown verdict {other:?}"))),
        }
    }
}

/// Carries out the reviewer's verdict through the engine and the store, exactly as an
/// automatic decision is carried out.
pub async fn decide(
    state: Shared,
    Extension(reviewer): Extension<Reviewer>,
    Path(id): Path<i64>,
    Form(form): Form<DecisionForm>,
) -> Result<Response, ConsoleError> {
    reviewer.check_csrf(&form.csrf)?;
    let verdict = form.verdict()?;
    if form.note.chars().count() > 1000 {
        return Err(ConsoleError::bad_request(
            "the note is longer than 1000 characters",
        ));
    }
    let shared = state.0.clone();
    blocking(move || {
        let item = actionable_item(&shared, &reviewer, id)?;
        let mut decisions = decisions_for(&verdict, &reviewer.name, &form.note);
        let caller = Caller(reviewer.name.clone());
        let mut store = shared.store_as(&caller);
        // As for uploads (`native::decide`): strikes read and written with nothing between.
        let outcome = store.for_account(&item.account_id.clone(), |store| {
            let active = store.active_strike_weight(&item.account_id, &cordon_store::now_rfc3339())?;
            shared
                .policy
                .apply_strikes(&mut decisions, active, time::OffsetDateTime::now_utc());
            let webhooks: Vec<String> = shared.policy.webhooks.iter().map(|w| w.name.clone()).collect();
            let about = json!({ "id": item.submission_id, "content_id": item.content_id,
                            "account_id": item.account_id, "source_url": item.source_url,
                            "posted_at": item.posted_at, "reviewed_by": reviewer.name });
            let matches = Value::Array(matches_of(&item));
            let payload = |_: i64, decision_id: i64, decision: &cordon_store::NewDecision| {
                crate::delivery::decision_payload(&about, &matches, decision_id, decision)
            };
            let outcome = match verdict {
                Verdict::Confirm(_) => Outcome::Confirmed,
                Verdict::Overturn => Outcome::Overturned,
                Verdict::Escalate => Outcome::Escalated,
            };
            store.decide_review(
                id,
                &reviewer.name,
                outcome,
                &form.note,
                &decisions,
                &webhooks,
                payload,
            )?;
            Ok::<_, ConsoleError>(outcome)
        })?;
        drop(store);
        shared.deliveries.notify_one();
        if outcome == Outcome::Overturned && !form.negative_bank.is_empty() {
            add_media_to_bank(&shared, &caller, id, &form.negative_bank)?;
        }
        Ok(())
    })
    .await?;
    Ok(see_other("/console/queue"))
}

fn add_media_to_bank(state: &AppState, caller: &Caller, id: i64, bank: &str) -> Result<(), ConsoleError> {
    let media = state
        .store()
        .submission_media(id)?
        .ok_or_else(|| ConsoleError::bad_request(format!("the file of item {id} was not kept")))?;
    let note = format!("added from review item {id} by {}", caller.0);
    let content = NewBankContent::of_media(state, &media.bytes, note, json!({}))?;
    store_content(state, caller, bank, "console", content)?;
    Ok(())
}

#[derive(Deserialize)]
pub struct BankForm {
    csrf: String,
    bank: String,
}

/// Adds the reviewed upload to a bank (it matches from the next request on).
pub async fn add_to_bank(
    state: Shared,
    Extension(reviewer): Extension<Reviewer>,
    Path(id): Path<i64>,
    Form(form): Form<BankForm>,
) -> Result<Response, ConsoleError> {
    reviewer.check_csrf(&form.csrf)?;
    let shared = state.0.clone();
    let bank = form.bank.clone();
    blocking(move || add_media_to_bank(&shared, &Caller(reviewer.name.clone()), id, &form.bank)).await?;
    Ok(see_other(&format!("/console/banks/{bank}")))
}

fn media_response(media: Option<StoredMedia>) -> Response {
    match media {
        Some(media) if media.mime.starts_with("image/") => (
            [
                (header::CONTENT_TYPE, media.mime),
                (header::CONTENT_DISPOSITION, "inline".to_string()),
            ],
            media.bytes,
        )
            .into_response(),
        _ => ConsoleError::new(axum::http::StatusCode::NOT_FOUND, "no file kept").into_response(),
    }
}

pub async fn submission_media(state: Shared, Path(id): Path<i64>) -> Result<Response, ConsoleError> {
    let shared = state.0.clone();
    let media = blocking(move || Ok(shared.store().submission_media(id)?)).await?;
    Ok(media_response(media))
}

pub async fn content_media(state: Shared, Path(id): Path<i64>) -> Result<Response, ConsoleError> {
    let shared = state.0.clone();
    let media = blocking(move || Ok(shared.store().content_media(id)?)).await?;
    Ok(media_response(media))
}
