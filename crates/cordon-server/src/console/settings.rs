//! A reviewer's protection settings: how strongly media is blurred, greyscale, autoplay.

use axum::response::Response;
use axum::{Extension, Form};
use cordon_store::ReviewerSettings;
use maud::{Markup, html};
use serde::Deserialize;

use super::page;
use super::{ConsoleError, Reviewer, Shared, blocking, see_other};

/// The strongest blur offered, in pixels.
const MAX_BLUR: u32 = 64;

pub async fn page(state: Shared, Extension(reviewer): Extension<Reviewer>) -> Result<Markup, ConsoleError> {
    let header = page::header_of(&state, &reviewer).await?;
    let shared = state.0.clone();
    let name = reviewer.name.clone();
    let settings = blocking(move || Ok(shared.store().reviewer_settings(&name)?)).await?;
    let body = html! {
        h1 { "Settings" }
        p { "How media is shown to you until you reveal an item. Revealing counts toward today's total, shown at the top of every page." }
        form.panel method="post" action="/console/settings" {
            input type="hidden" name="csrf" value=(reviewer.csrf);
            label for="blur" { "Blur strength (0 to " (MAX_BLUR) " pixels)" }
            input #blur type="number" name="blur" min="0" max=(MAX_BLUR) value=(settings.blur) required;
            label.inline { input type="checkbox" name="greyscale" checked[settings.greyscale]; "Show media in greyscale" }
            label.inline { input type="checkbox" name="autoplay" checked[settings.autoplay]; "Play video automatically" }
            div.actions { button.primary type="submit" { "Save" } }
        }
    };
    Ok(page::shell("Settings", &header, body))
}

#[derive(Deserialize)]
pub struct SettingsForm {
    csrf: String,
    blur: u32,
    greyscale: Option<String>,
    autoplay: Option<String>,
}

pub async fn save(
    state: Shared,
    Extension(reviewer): Extension<Reviewer>,
    Form(form): Form<SettingsForm>,
) -> Result<Response, ConsoleError> {
    reviewer.check_csrf(&form.csrf)?;
    if form.blur > MAX_BLUR {
        return Err(ConsoleError::bad_request(format!(
            "blur must be between 0 and {MAX_BLUR}"
        )));
    }
    let settings = ReviewerSettings {
        blur: form.blur,
        greyscale: form.greyscale.is_some(),
        autoplay: form.autoplay.is_some(),
    };
    let shared = state.0.clone();
    blocking(move || Ok(shared.store().set_reviewer_settings(&reviewer.name, settings)?)).await?;
    Ok(see_other("/console/settings"))
}
