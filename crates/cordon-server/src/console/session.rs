//! Signing in and out, and the session every other console page needs.

use axum::extract::{Request, State};
use axum::http::header::{COOKIE, SET_COOKIE};
use axum::http::{HeaderMap, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::{Extension, Form};
use cordon_engine::access::{Role, check_key, constant_time_eq, random_hex};
use cordon_store::ConsoleSession;
use maud::html;
use serde::Deserialize;
use sha2::{Digest, Sha256};

use super::{ConsoleError, Shared, blocking, page, see_other};

const SESSION_COOKIE: &str = "cordon_session";
/// The sign-in form's own CSRF token, as a cookie the form must echo (there is no
/// session yet to hold it).
const SIGNIN_COOKIE: &str = "cordon_signin";
const SESSION_HOURS: i64 = 12;

/// The signed-in reviewer, put on the request by [`require`].
#[derive(Clone, Debug)]
pub struct Reviewer {
    /// The name of the key they signed in with.
    pub name: String,
    pub role: Role,
    /// Every form must carry it back.
    pub csrf: String,
}

impl Reviewer {
    /// Refuses a form whose CSRF token is not this session's.
    pub fn check_csrf(&self, presented: &str) -> Result<(), ConsoleError> {
        if constant_time_eq(presented.as_bytes(), self.csrf.as_bytes()) {
            Ok(())
        } else {
            Err(ConsoleError::forbidden(
                "this form has expired or did not come from this console: reload the page and try again",
            ))
        }
    }
}

fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(key, _)| *key == name)
        .map(|(_, value)| value)
}

fn token_hash(token: &str) -> Vec<u8> {
    Sha256::digest(token.as_bytes()).to_vec()
}

fn set_cookie(name: &str, value: &str, max_age_seconds: i64) -> String {
    format!("{name}={value}; HttpOnly; SameSite=Strict; Path=/console; Max-Age={max_age_seconds}")
}

fn random(bytes: usize) -> Result<String, ConsoleError> {
    random_hex(bytes).map_err(|e| ConsoleError::new(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))
}

/// The reviewer whose live session the request's cookie names, if any.
pub async fn session_of(state: &Shared, headers: &HeaderMap) -> Result<Option<Reviewer>, ConsoleError> {
    let Some(token) = cookie(headers, SESSION_COOKIE).map(str::to_string) else {
        return Ok(None);
    };
    let shared = state.0.clone();
    let found = blocking(move || {
        let now = cordon_store::now_rfc3339();
        Ok(shared.store().console_session(&token_hash(&token), &now)?)
    })
    .await?;
    Ok(found.and_then(|session| {
        Some(Reviewer {
            role: session.role.parse::<Role>().ok()?,
            name: session.reviewer,
            csrf: session.csrf,
        })
    }))
}

/// Lets a request through with its [`Reviewer`] if it has a live session; otherwise off
/// to the sign-in page.
pub async fn require(state: Shared, mut request: Request, next: Next) -> Response {
    match session_of(&state, request.headers()).await {
        Ok(Some(reviewer)) => {
            request.extensions_mut().insert(reviewer);
            next.run(request).await
        }
        Ok(None) => see_other("/console/signin"),
        Err(error) => error.into_response(),
    }
}

pub async fn signin_page() -> Result<Response, ConsoleError> {
    let token = random(16)?;
    Ok(signin_form(&token, None, StatusCode::OK))
}

fn signin_form(token: &str, problem: Option<&str>, status: StatusCode) -> Response {
    let body = html! {
        main.narrow {
            h1 { "Cordon review console" }
            p { "Sign in with your reviewer key. Media is blurred until you choose to see it." }
            @if let Some(problem) = problem {
                p.problem role="alert" { (problem) }
            }
            form method="post" action="/console/signin" {
                input type="hidden" name="csrf" value=(token);
                label for="key" { "Reviewer key" }
                input #key type="password" name="key" autocomplete="off" required autofocus;
                button type="submit" { "Sign in" }
            }
        }
    };
    let page = page::bare("Sign in", body);
    let mut response = (status, page).into_response();
    if let Ok(value) = set_cookie(SIGNIN_COOKIE, token, 600).parse() {
        response.headers_mut().insert(SET_COOKIE, value);
    }
    response
}

#[derive(Deserialize)]
pub struct SigninForm {
    key: String,
    csrf: String,
}

pub async fn signin(
    State(state): Shared,
    connection: Option<Extension<axum::extract::ConnectInfo<std::net::SocketAddr>>>,
    headers: HeaderMap,
    Form(form): Form<SigninForm>,
) -> Result<Response, ConsoleError> {
    let address = connection.map(|Extension(info)| info.0.ip());
    let now = std::time::Instant::now();
    if let Some(wait) = address.and_then(|a| state.throttle.locked_out(a, now)) {
        let message = format!(
            "Too many wrong keys from this address: try again in {} s.",
            wait.as_secs() + 1
        );
        return Ok(signin_form(
            &random(16)?,
            Some(&message),
            StatusCode::TOO_MANY_REQUESTS,
        ));
    }
    let echoed = cookie(&headers, SIGNIN_COOKIE).unwrap_or_default();
    if echoed.is_empty() || !constant_time_eq(echoed.as_bytes(), form.csrf.as_bytes()) {
        return Ok(signin_form(
            &random(16)?,
            Some("The sign-in form expired. Please try again."),
            StatusCode::FORBIDDEN,
        ));
    }
    let presented = form.key.trim().to_string();
    let shared = state.clone();
    let checked = blocking(move || {
        let found = check_key(&shared.store(), &presented)?;
        let Some((key, role)) = found else {
            return Ok(None);
        };
        if !(role == Role::Reviewer || role == Role::Admin) {
            return Ok(Some(Err(format!(
                "Key {} has the role {role}: the console needs a reviewer key.",
                key.name
            ))));
        }
        let token = random(32)?;
        let now = time::OffsetDateTime::now_utc();
        let session = ConsoleSession {
            reviewer: key.name.clone(),
            role: role.name().to_string(),
            csrf: random(32)?,
            expires_at: cordon_store::format_time(now + time::Duration::hours(SESSION_HOURS)),
        };
        shared.store().create_console_session(
            &token_hash(&token),
            &session,
            &cordon_store::format_time(now),
        )?;
        Ok(Some(Ok(token)))
    })
    .await?;
    match checked {
        None => {
            if let Some(address) = address {
                state.throttle.failed(address, now);
            }
            Ok(signin_form(
                &random(16)?,
                Some("That key is unknown or revoked."),
                StatusCode::UNAUTHORIZED,
            ))
        }
        Some(Err(problem)) => Ok(signin_form(&random(16)?, Some(&problem), StatusCode::FORBIDDEN)),
        Some(Ok(token)) => {
            let mut response = see_other("/console/queue");
            let headers = response.headers_mut();
            for cookie in [
                set_cookie(SESSION_COOKIE, &token, SESSION_HOURS * 3600),
                set_cookie(SIGNIN_COOKIE, "", 0),
            ] {
                if let Ok(value) = cookie.parse() {
                    headers.append(SET_COOKIE, value);
                }
            }
            Ok(response)
        }
    }
}

#[derive(Deserialize)]
pub struct CsrfOnly {
    csrf: String,
}

pub async fn signout(
    State(state): Shared,
    Extension(reviewer): Extension<Reviewer>,
    headers: HeaderMap,
    Form(form): Form<CsrfOnly>,
) -> Result<Response, ConsoleError> {
    reviewer.check_csrf(&form.csrf)?;
    let token = cookie(&headers, SESSION_COOKIE).unwrap_or_default().to_string();
    blocking(move || Ok(state.store().end_console_session(&token_hash(&token))?)).await?;
    let mut response = see_other("/console/signin");
    if let Ok(value) = set_cookie(SESSION_COOKIE, "", 0).parse() {
        response.headers_mut().insert(SET_COOKIE, value);
    }
    Ok(response)
}
