//! Appeals of suspended accounts (filed through `POST /v1/accounts/<id>/appeal`), decided
//! here: granting one reinstates the account and tells the platform.

use axum::extract::Path;
use axum::response::Response;
use axum::{Extension, Form};
use maud::{Markup, html};
use serde::Deserialize;
use serde_json::{Value, json};

use super::page;
use super::{ConsoleError, Reviewer, Shared, blocking, see_other};
use crate::state::Caller;

pub async fn list(state: Shared, Extension(reviewer): Extension<Reviewer>) -> Result<Markup, ConsoleError> {
    let header = page::header_of(&state, &reviewer).await?;
    let shared = state.0.clone();
    let appeals = blocking(move || {
        let store = shared.store();
        let mut listed = Vec::new();
        for appeal in store.pending_appeals()? {
            let account = store.account(&appeal.account_id)?;
            listed.push((appeal, account));
        }
        Ok(listed)
    })
    .await?;
    let body = html! {
        h1 { "Appeals" }
        @if appeals.is_empty() {
            p.panel { "No appeal waits." }
        }
        @for (appeal, account) in &appeals {
            section.panel aria-labelledby=(format!("appeal-{}", appeal.id)) {
                h2 id=(format!("appeal-{}", appeal.id)) { "Appeal " (appeal.id) " · account " (appeal.account_id) }
                dl.facts {
                    dt { "Filed" } dd { (appeal.created_at) }
                    dt { "The user says" } dd { (appeal.reason) }
                    @if let Some(account) = account {
                        dt { "Suspended because" } dd { (account.reason.clone().unwrap_or_default()) }
                        dt { "Live strikes" } dd { (account.strike_weight) }
                    }
                }
                form method="post" action=(format!("/console/appeals/{}", appeal.id)) {
                    input type="hidden" name="csrf" value=(reviewer.csrf);
                    label for=(format!("note-{}", appeal.id)) { "Note" }
                    textarea id=(format!("note-{}", appeal.id)) name="note" maxlength="1000" {}
                    div.actions {
                        button.primary type="submit" name="grant" value="true" { "Grant: reinstate the account" }
                        button type="submit" name="grant" value="false" { "Reject: the suspension stands" }
                    }
                }
            }
        }
    };
    Ok(page::shell("Appeals", &header, body))
}

#[derive(Deserialize)]
pub struct AppealForm {
    csrf: String,
    grant: bool,
    #[serde(default)]
    note: String,
}

pub async fn decide(
    state: Shared,
    Extension(reviewer): Extension<Reviewer>,
    Path(id): Path<i64>,
    Form(form): Form<AppealForm>,
) -> Result<Response, ConsoleError> {
    reviewer.check_csrf(&form.csrf)?;
    if form.note.chars().count() > 1000 {
        return Err(ConsoleError::bad_request(
            "the note is longer than 1000 characters",
        ));
    }
    let shared = state.0.clone();
    blocking(move || {
        let webhooks: Vec<String> = shared.policy.webhooks.iter().map(|w| w.name.clone()).collect();
        let mut store = shared.store_as(&Caller(reviewer.name.clone()));
        let account_id = store.appeal(id)?.map(|a| a.account_id).unwrap_or_default();
        let about = json!({ "account_id": account_id, "appeal_id": id, "reviewed_by": reviewer.name });
        let payload = |submission_id: i64, decision_id: i64, decision: &cordon_store::NewDecision| {
            let mut about = about.clone();
            about["id"] = json!(submission_id);
            crate::delivery::decision_payload(&about, &Value::Array(Vec::new()), decision_id, decision)
        };
        store.decide_appeal(id, &reviewer.name, form.grant, &form.note, &webhooks, payload)?;
        drop(store);
        shared.deliveries.notify_one();
        Ok(())
    })
    .await?;
    Ok(see_other("/console/appeals"))
}
