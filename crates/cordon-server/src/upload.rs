//! Multipart uploads: one file field and any number of text fields.

use std::collections::BTreeMap;

use axum::body::Bytes;
use axum::extract::Multipart;
use axum::extract::multipart::{Field, MultipartError};
use axum::http::StatusCode;

use crate::error::ApiError;

/// An upload: the file's bytes and the text fields beside it.
pub struct Upload {
    pub bytes: Bytes,
    pub fields: BTreeMap<String, String>,
}

/// The longest text field kept: ids, a URL, a time, a note and a metadata object fit many
/// times over; the file alone may use the body limit, else each submission could store
/// that much JSON beside its sighting.
pub const MAX_TEXT_FIELD_BYTES: usize = 64 * 1024;

/// Reads a form whose file is in the field `file_field`. A field named `video` is refused
/// (video is not supported yet), as is a second file or any other field given twice, and a
/// text field longer than [`MAX_TEXT_FIELD_BYTES`].
pub async fn read_upload(mut multipart: Multipart, file_field: &str) -> Result<Upload, ApiError> {
    let mut file: Option<Bytes> = None;
    let mut fields = BTreeMap::new();
    while let Some(mut field) = multipart
        .next_field()
        .await
        .map_err(|e| unreadable("malformed multipart body", &e))?
    {
        let name = field.name().unwrap_or_default().to_string();
        if name == file_field {
            if file.is_some() {
                return Err(given_twice(&name));
            }
            let bytes = field
                .bytes()
                .await
                .map_err(|e| unreadable("reading the upload", &e))?;
            file = Some(bytes);
        } else if name == "video" {
            return Err(ApiError::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "video is not supported yet; send a photo",
            ));
        } else {
            // Refused rather than "the last one wins": two `content_id`s or `account_id`s
            // are a client bug, and deciding on either one silently could act on the
            // wrong content or account.
            if fields.contains_key(&name) {
                return Err(given_twice(&name));
            }
            let Some(text) = read_text(&mut field, &name).await? else {
                // The rest of the body is read and dropped first, so that the client,
                // still sending, gets the answer rather than a broken connection.
                drain(&mut field).await?;
                // The next field is only read once this one is dropped.
                drop(field);
                while let Some(mut rest) = multipart
                    .next_field()
                    .await
                    .map_err(|e| unreadable("malformed multipart body", &e))?
                {
                    drain(&mut rest).await?;
                }
                return Err(ApiError::bad_request(format!(
                    "field `{name}` is longer than {MAX_TEXT_FIELD_BYTES} bytes"
                )));
            };
            fields.insert(name, text);
        }
    }
    let bytes = file
        .ok_or_else(|| ApiError::bad_request(format!("expected one file in a field named `{file_field}`")))?;
    Ok(Upload { bytes, fields })
}

/// A text field, or `None` once it is longer than [`MAX_TEXT_FIELD_BYTES`] (the rest of it
/// unread).
async fn read_text(field: &mut Field<'_>, name: &str) -> Result<Option<String>, ApiError> {
    let mut text = Vec::new();
    while let Some(chunk) = field
        .chunk()
        .await
        .map_err(|e| unreadable(&format!("reading field {name}"), &e))?
    {
        if text.len() + chunk.len() > MAX_TEXT_FIELD_BYTES {
            return Ok(None);
        }
        text.extend_from_slice(&chunk);
    }
    String::from_utf8(text)
        .map(Some)
        .map_err(|_| ApiError::bad_request(format!("field `{name}` is not UTF-8")))
}

/// Reads the rest of a field and drops it.
async fn drain(field: &mut Field<'_>) -> Result<(), ApiError> {
    while field
        .chunk()
        .await
        .map_err(|e| unreadable("reading the upload", &e))?
        .is_some()
    {}
    Ok(())
}

fn given_twice(name: &str) -> ApiError {
    ApiError::bad_request(format!("field `{name}` given twice"))
}

/// A form that could not be read: 413 when the body is over the size limit (as the JSON
/// routes answer), else 400. axum knows which from the error multer raised; everything
/// else (a broken form, a client that hung up mid-way) is the client's doing, never 500.
fn unreadable(doing: &str, error: &MultipartError) -> ApiError {
    if error.status() == StatusCode::PAYLOAD_TOO_LARGE {
        ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!("the request body is too large ({doing}); uploads are limited by --max-bytes"),
        )
    } else {
        ApiError::bad_request(format!("{doing}: {error}"))
    }
}
