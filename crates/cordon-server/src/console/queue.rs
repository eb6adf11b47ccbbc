//! The queue: what waits for a person, most urgent first, and "review next".

use axum::extract::Query;
use axum::response::Response;
use axum::{Extension, Form};
use cordon_engine::access::Role;
use cordon_store::{QueueFilter, ReviewItem};
use maud::{Markup, html};
use serde::Deserialize;

use super::page;
use super::{ConsoleError, Reviewer, Shared, blocking, see_other};

/// Items listed on one page of the queue.
const PAGE_SIZE: usize = 100;

#[derive(Deserialize, Default)]
pub struct Filter {
    bank: Option<String>,
    label: Option<String>,
}

impl Filter {
    fn to_store(&self) -> QueueFilter {
        let given = |v: &Option<String>| {
            v.as_deref()
                .map(str::trim)
                .filter(|v| !v.is_empty())
                .map(str::to_string)
        };
        QueueFilter {
            bank: given(&self.bank),
            label: given(&self.label),
        }
    }
}

pub async fn page(
    state: Shared,
    Extension(reviewer): Extension<Reviewer>,
    Query(filter): Query<Filter>,
) -> Result<Markup, ConsoleError> {
    let header = page::header_of(&state, &reviewer).await?;
    let wanted = filter.to_store();
    let shared = state.0.clone();
    let (items, banks, (pending, escalated)) = blocking(move || {
        let store = shared.store();
        let banks: Vec<String> = store.banks()?.into_iter().map(|b| b.name.to_string()).collect();
        Ok((
            store.review_queue(&wanted, PAGE_SIZE)?,
            banks,
            store.review_counts()?,
        ))
    })
    .await?;
    let now = cordon_store::now_rfc3339();
    let chosen = filter.to_store();
    let body = html! {
        h1 { "Review queue" }
        p { (pending) " waiting, " (escalated) " escalated. Most urgent first: escalated, then by label severity, nearest match, the account's strikes, and age." }
        form.panel method="get" action="/console/queue" {
            label for="bank" { "Bank" }
            select #bank name="bank" {
                option value="" { "All banks" }
                @for bank in &banks {
                    option value=(bank) selected[chosen.bank.as_deref() == Some(bank.as_str())] { (bank) }
                }
            }
            label for="label" { "Label" }
            input #label type="text" name="label" value=(chosen.label.clone().unwrap_or_default());
            div.actions { button type="submit" { "Filter" } }
        }
        form method="post" action="/console/queue/next" {
            input type="hidden" name="csrf" value=(reviewer.csrf);
            input type="hidden" name="bank" value=(chosen.bank.clone().unwrap_or_default());
            input type="hidden" name="label" value=(chosen.label.clone().unwrap_or_default());
            button.primary type="submit" data-key="n" aria-keyshortcuts="n" { "Review next " kbd { "N" } }
        }
        @if items.is_empty() {
            p.panel { "Nothing waits for review." }
        } @else {
            table {
                thead { tr { th { "Item" } th { "Banks" } th { "Labels" } th { "Match" } th { "Account strikes" } th { "Waiting since" } th { "With" } } }
                tbody {
                    @for item in &items {
                        (row(item, &now))
                    }
                }
            }
        }
    };
    Ok(page::shell("Queue", &header, body))
}

fn row(item: &ReviewItem, now: &str) -> Markup {
    let claimed = item
        .claim_expires_at
        .as_deref()
        .is_some_and(|until| until > now)
        .then(|| item.claimed_by.clone().unwrap_or_default());
    html! {
        tr {
            td data-label="Item" {
                a href=(format!("/console/item/{}", item.submission_id)) { "#" (item.submission_id) }
                @if item.state == "escalated" { " " strong { "escalated" } }
            }
            td data-label="Banks" { (item.banks.join(", ")) }
            td data-label="Labels" { (item.labels.join(", ")) }
            td data-label="Match" { (item.signal_type) " at " (item.distance) }
            td data-label="Account strikes" { (item.account_strikes) }
            td data-label="Waiting since" { (item.created_at) }
            td data-label="With" { (claimed.unwrap_or_else(|| "nobody".to_string())) }
        }
    }
}

#[derive(Deserialize)]
pub struct NextForm {
    csrf: String,
    #[serde(default)]
    bank: String,
    #[serde(default)]
    label: String,
}

/// Claims the most urgent item nobody holds (escalated items only for admins) and opens it.
pub async fn claim_next(
    state: Shared,
    Extension(reviewer): Extension<Reviewer>,
    Form(form): Form<NextForm>,
) -> Result<Response, ConsoleError> {
    reviewer.check_csrf(&form.csrf)?;
    let filter = Filter {
        bank: Some(form.bank),
        label: Some(form.label),
    }
    .to_store();
    let shared = state.0.clone();
    let claimed = blocking(move || {
        let now = time::OffsetDateTime::now_utc();
        let until = cordon_store::format_time(now + shared.policy.review.claim_duration());
        let now = cordon_store::format_time(now);
        let queue = shared.store().review_queue(&filter, PAGE_SIZE)?;
        for item in queue {
            let free = item.claim_expires_at.as_deref().is_none_or(|e| e <= now.as_str())
                || item.claimed_by.as_deref() == Some(reviewer.name.as_str());
            let allowed = item.state != "escalated" || reviewer.role == Role::Admin;
            if free && allowed {
                let mut store = shared.store_as(&crate::state::Caller(reviewer.name.clone()));
                if store
                    .claim_review(item.submission_id, &reviewer.name, &now, &until)
                    .is_ok()
                {
                    return Ok(Some(item.submission_id));
                }
            }
        }
        Ok(None)
    })
    .await?;
    Ok(match claimed {
        Some(id) => see_other(&format!("/console/item/{id}")),
        None => see_other("/console/queue"),
    })
}
