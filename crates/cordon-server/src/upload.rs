//! Multipart uploads: one file field and any number of text fields.

use std::collections::BTreeMap;

use axum::body::Bytes;
use axum::extract::Multipart;
use axum::http::StatusCode;

use crate::error::ApiError;

/// An upload: the file's bytes and the text fields beside it.
pub struct Upload {
    pub bytes: Bytes,
    pub fields: BTreeMap<String, String>,
}

/// Reads a form whose file is in the field `file_field`. A field named `video` is refused
/// (video is not supported yet), as is a second file.
pub async fn read_upload(mut multipart: Multipart, file_field: &str) -> Result<Upload, ApiError> {
    let mut file: Option<Bytes> = None;
    let mut fields = BTreeMap::new();
    while let Some(field) = multipart
        .next_field()
        .await
        .map_err(|e| ApiError::bad_request(format!("malformed multipart body: {e}")))?
    {
        let name = field.name().unwrap_or_default().to_string();
        if name == file_field {
            if file.is_some() {
                return Err(ApiError::bad_request("exactly one file is expected"));
            }
            let bytes = field
                .bytes()
                .await
                .map_err(|e| ApiError::bad_request(format!("reading the upload: {e}")))?;
            file = Some(bytes);
        } else if name == "video" {
            return Err(ApiError::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "video is not supported yet; send a photo",
            ));
        } else {
            let text = field
                .text()
                .await
                .map_err(|e| ApiError::bad_request(format!("reading field {name}: {e}")))?;
            fields.insert(name, text);
        }
    }
    let bytes = file
        .ok_or_else(|| ApiError::bad_request(format!("expected one file in a field named `{file_field}`")))?;
    Ok(Upload { bytes, fields })
}
