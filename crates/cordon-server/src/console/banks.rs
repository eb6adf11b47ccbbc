//! Banks as reviewers see them: the list, a bank's content (blurred, like everything), and
//! turning content off and on.

use axum::extract::{Path, Query};
use axum::response::Response;
use axum::{Extension, Form};
use maud::{Markup, html};
use serde::Deserialize;

use super::page;
use super::{ConsoleError, Reviewer, Shared, blocking, see_other};
use crate::banking::DISABLED_FOR_GOOD;
use crate::state::Caller;

/// Content per page of a bank.
const PAGE_SIZE: usize = 30;

pub async fn list(state: Shared, Extension(reviewer): Extension<Reviewer>) -> Result<Markup, ConsoleError> {
    let header = page::header_of(&state, &reviewer).await?;
    let shared = state.0.clone();
    let banks = blocking(move || {
        let store = shared.store();
        let mut listed = Vec::new();
        for bank in store.banks()? {
            let count = store.content_count(bank.id)?;
            listed.push((bank, count));
        }
        Ok(listed)
    })
    .await?;
    let body = html! {
        h1 { "Banks" }
        table {
            thead { tr { th { "Bank" } th { "Content" } th { "State" } th { "Labels" } th { "Description" } } }
            tbody {
                @for (bank, count) in &banks {
                    tr {
                        td data-label="Bank" { a href=(format!("/console/banks/{}", bank.name)) { (bank.name) } }
                        td data-label="Content" { (count) }
                        td data-label="State" {
                            (if bank.enabled { "enabled" } else { "disabled" })
                            @if bank.negative { " · negative" }
                        }
                        td data-label="Labels" { (bank.labels.join(", ")) }
                        td data-label="Description" { (bank.description) }
                    }
                }
            }
        }
    };
    Ok(page::shell("Banks", &header, body))
}

#[derive(Deserialize, Default)]
pub struct PageQuery {
    before: Option<i64>,
}

pub async fn contents(
    state: Shared,
    Extension(reviewer): Extension<Reviewer>,
    Path(name): Path<String>,
    Query(query): Query<PageQuery>,
) -> Result<Markup, ConsoleError> {
    let header = page::header_of(&state, &reviewer).await?;
    let shared = state.0.clone();
    let (bank, content) = blocking(move || {
        let store = shared.store();
        let bank = store.bank(&name)?;
        let content = store.content_page(bank.id, query.before, PAGE_SIZE)?;
        Ok((bank, content))
    })
    .await?;
    let now = cordon_store::now_rfc3339();
    let body = html! {
        h1 { "Bank " (bank.name) }
        p { (bank.description) }
        @if content.is_empty() {
            p.panel { "No content here." }
        } @else {
            table {
                thead { tr { th { "Content" } th { "Media" } th { "Added" } th { "Note" } th { "State" } } }
                tbody {
                    @for item in &content {
                        @let disabled = item.disabled_until.as_deref().is_some_and(|until| until > now.as_str());
                        tr {
                            td data-label="Content" { "#" (item.id) @if let Some(external) = &item.external_id { " (" (external) ")" } }
                            td data-label="Media" {
                                @if item.has_media {
                                    div.media.thumb { img src=(format!("/console/media/content/{}", item.id)) alt=(format!("content {} (blurred)", item.id)); }
                                } @else { "hash only" }
                            }
                            td data-label="Added" { (item.created_at) " · " (item.origin) }
                            td data-label="Note" { (item.note) }
                            td data-label="State" {
                                form method="post" action=(format!("/console/banks/{}/content/{}", bank.name, item.id)) {
                                    input type="hidden" name="csrf" value=(reviewer.csrf);
                                    @if disabled {
                                        "disabled "
                                        input type="hidden" name="enable" value="true";
                                        button type="submit" { "Enable" }
                                    } @else {
                                        "matching "
                                        input type="hidden" name="enable" value="false";
                                        button type="submit" { "Disable" }
                                    }
                                }
                            }
                        }
                    }
                }
            }
            @if content.len() == PAGE_SIZE {
                @if let Some(last) = content.last() {
                    p { a href=(format!("/console/banks/{}?before={}", bank.name, last.id)) { "Older content" } }
                }
            }
        }
    };
    Ok(page::shell(&format!("Bank {}", bank.name), &header, body))
}

#[derive(Deserialize)]
pub struct ToggleForm {
    csrf: String,
    enable: bool,
}

/// Disables content (until enabled again) or enables it; matching follows at once.
pub async fn toggle(
    state: Shared,
    Extension(reviewer): Extension<Reviewer>,
    Path((name, id)): Path<(String, i64)>,
    Form(form): Form<ToggleForm>,
) -> Result<Response, ConsoleError> {
    reviewer.check_csrf(&form.csrf)?;
    let shared = state.0.clone();
    let bank = name.clone();
    blocking(move || {
        let _writing = shared.writing_indexes();
        let mut store = shared.store_as(&Caller(reviewer.name.clone()));
        let content = store.content(id)?;
        if content.bank.as_str() != bank {
            return Err(ConsoleError::bad_request(format!(
                "content {id} is not in bank {bank}"
            )));
        }
        let until = (!form.enable).then_some(DISABLED_FOR_GOOD);
        store.set_content_disabled_until(id, until)?;
        drop(store);
        shared
            .matcher_mut()
            .set_disabled_until(id, until.map(str::to_string));
        Ok(())
    })
    .await?;
    Ok(see_other(&format!("/console/banks/{name}")))
}
