//! The page around every console view, its style sheet (made per reviewer: their blur and
//! greyscale) and its one small script (keyboard shortcuts).

use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use cordon_store::ReviewerSettings;
use maud::{DOCTYPE, Markup, html};

use super::{ConsoleError, Reviewer, Shared, blocking};

fn head(title: &str, with_script: bool) -> Markup {
    html! {
        head {
            meta charset="utf-8";
            meta name="viewport" content="width=device-width, initial-scale=1";
            title { (title) " · Cordon" }
            link rel="stylesheet" href="/console/style.css";
            @if with_script { script src="/console/console.js" defer {} }
        }
    }
}

/// A page with no navigation (sign-in, errors).
pub fn bare(title: &str, body: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            (head(title, false))
            body { (body) }
        }
    }
}

/// What the header shows: who is signed in and how much they revealed today.
pub struct Header<'a> {
    pub reviewer: &'a Reviewer,
    pub reveals_today: u32,
}

/// A console page: navigation, the reviewer's exposure today, sign-out, then `body`.
pub fn shell(title: &str, header: &Header<'_>, body: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            (head(title, true))
            body {
                header.top {
                    nav aria-label="Console" {
                        a href="/console/queue" { "Queue" }
                        a href="/console/banks" { "Banks" }
                        a href="/console/appeals" { "Appeals" }
                        a href="/console/settings" { "Settings" }
                    }
                    p.exposure role="status" {
                        (header.reviewer.name) " · revealed today: "
                        strong #reveals-today { (header.reveals_today) }
                    }
                    form method="post" action="/console/signout" {
                        input type="hidden" name="csrf" value=(header.reviewer.csrf);
                        button.quiet type="submit" { "Sign out" }
                    }
                }
                main { (body) }
            }
        }
    }
}

/// Today's date (UTC) as the reveal counter keys it.
pub fn today() -> String {
    let now = time::OffsetDateTime::now_utc();
    format!("{:04}-{:02}-{:02}", now.year(), u8::from(now.month()), now.day())
}

/// The header for `reviewer` (reads their count of reveals today).
pub async fn header_of<'a>(state: &Shared, reviewer: &'a Reviewer) -> Result<Header<'a>, ConsoleError> {
    let state = state.0.clone();
    let name = reviewer.name.clone();
    let reveals_today = blocking(move || Ok(state.store().reveals(&name, &today())?)).await?;
    Ok(Header {
        reviewer,
        reveals_today,
    })
}

pub fn error_page(status: StatusCode, message: &str) -> Markup {
    bare(
        "Error",
        html! {
            main.narrow {
                h1 { (status.as_u16()) " " (status.canonical_reason().unwrap_or("error")) }
                p role="alert" { (message) }
                p { a href="/console/queue" { "Back to the queue" } }
            }
        },
    )
}

/// The style sheet, with the signed-in reviewer's protection (the defaults before sign-in):
/// media is blurred and greyscale unless revealed (`.revealed`), as strong as they chose.
/// Open to all, so that the sign-in page is styled without a session.
pub async fn style(state: Shared, headers: HeaderMap) -> Result<Response, ConsoleError> {
    let settings = match super::session::session_of(&state, &headers).await? {
        Some(reviewer) => {
            let store_state = state.0.clone();
            blocking(move || Ok(store_state.store().reviewer_settings(&reviewer.name)?)).await?
        }
        None => ReviewerSettings::default(),
    };
    let css = format!("{BASE_CSS}\n{}", protection_css(settings));
    Ok(([(header::CONTENT_TYPE, "text/css; charset=utf-8")], css).into_response())
}

fn protection_css(settings: ReviewerSettings) -> String {
    let grey = if settings.greyscale { " grayscale(1)" } else { "" };
    format!(
        ".media img {{ filter: blur({}px){grey}; }}\n.media.revealed img {{ filter: none; }}\n",
        settings.blur
    )
}

pub async fn script() -> Response {
    ([(header::CONTENT_TYPE, "text/javascript; charset=utf-8")], SCRIPT).into_response()
}

/// Keyboard shortcuts: a key presses the button that declares it (`data-key`), unless
/// the reviewer is typing.
const SCRIPT: &str = r#"document.addEventListener('keydown', function (event) {
  if (event.ctrlKey || event.metaKey || event.altKey) return;
  var target = event.target;
  if (target && target.closest && target.closest('input, textarea, select')) return;
  var button = document.querySelector('[data-key="' + event.key.toLowerCase() + '"]');
  if (button) { event.preventDefault(); button.click(); }
});
"#;

/// Dark text on light ground (contrast above 12:1), large targets, one column on a narrow
/// screen.
const BASE_CSS: &str = r#"
* { box-sizing: border-box; }
body { margin: 0; font: 16px/1.5 system-ui, sans-serif; color: #1b1b1b; background: #f6f6f4; }
main { padding: 1rem; max-width: 1200px; margin: 0 auto; }
main.narrow { max-width: 28rem; margin-top: 3rem; }
h1 { font-size: 1.5rem; margin: 0.5rem 0 1rem; }
h2 { font-size: 1.15rem; margin: 1.25rem 0 0.5rem; }
a { color: #0b4f9c; }
header.top { display: flex; flex-wrap: wrap; gap: 0.5rem 1.5rem; align-items: center;
  padding: 0.5rem 1rem; background: #1f2933; color: #fff; }
header.top a { color: #fff; margin-right: 1rem; }
header.top .exposure { margin: 0; flex: 1; }
button, .button { font: inherit; padding: 0.45rem 0.9rem; border-radius: 4px; border: 1px solid #2d3a45;
  background: #fff; color: #1b1b1b; cursor: pointer; min-height: 2.5rem; }
button.primary { background: #0b4f9c; border-color: #0b4f9c; color: #fff; }
button.danger { background: #8a1c1c; border-color: #8a1c1c; color: #fff; }
button.quiet { background: transparent; color: inherit; border-color: currentColor; }
button:focus-visible, a:focus-visible, input:focus-visible, select:focus-visible, textarea:focus-visible {
  outline: 3px solid #f0b400; outline-offset: 2px; }
label { display: block; font-weight: 600; margin: 0.5rem 0 0.25rem; }
label.inline { display: inline-flex; gap: 0.35rem; font-weight: normal; margin-right: 1rem; }
input[type=password], input[type=text], input[type=number], select, textarea { font: inherit; width: 100%;
  max-width: 32rem; padding: 0.4rem; border: 1px solid #5f6b76; border-radius: 4px; background: #fff; }
textarea { min-height: 4rem; }
table { border-collapse: collapse; width: 100%; background: #fff; }
th, td { text-align: left; padding: 0.45rem 0.6rem; border-bottom: 1px solid #d5d9dd; vertical-align: top; }
.problem { color: #8a1c1c; font-weight: 600; }
.notice { background: #fff7d6; border: 1px solid #c9a500; padding: 0.5rem 0.75rem; }
.panel { background: #fff; border: 1px solid #d5d9dd; border-radius: 6px; padding: 0.75rem 1rem; margin: 0.75rem 0; }
.pair { display: flex; flex-wrap: wrap; gap: 1rem; }
.pair > figure { flex: 1 1 20rem; margin: 0; background: #fff; border: 1px solid #d5d9dd; padding: 0.5rem; }
.media { overflow: hidden; background: #ccc; }
.media img { display: block; width: 100%; height: auto; max-height: 60vh; object-fit: contain; }
.thumb { width: 8rem; }
.actions { display: flex; flex-wrap: wrap; gap: 0.5rem; margin-top: 0.75rem; }
kbd { border: 1px solid #888; border-radius: 3px; padding: 0 0.25rem; font-size: 0.85em; background: #f0f0f0; color: #1b1b1b; }
dl.facts { display: grid; grid-template-columns: max-content 1fr; gap: 0.2rem 1rem; margin: 0; }
dl.facts dt { font-weight: 600; }
dl.facts dd { margin: 0; }
@media (max-width: 600px) {
  main { padding: 0.5rem; }
  table, thead, tbody, tr, th, td { display: block; }
  thead { display: none; }
  tr { border-bottom: 2px solid #b7bec5; padding: 0.25rem 0; }
  td { border: none; padding: 0.15rem 0.4rem; }
  td[data-label]::before { content: attr(data-label) ": "; font-weight: 600; }
}
"#;
