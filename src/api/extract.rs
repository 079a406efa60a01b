//! Request extractors that turn malformed input into problem+json naming the field.

use actix_web::dev::Payload;
use actix_web::web::Bytes;
use actix_web::{FromRequest, HttpRequest};
use futures_util::future::LocalBoxFuture;
use serde::de::DeserializeOwned;

use super::error::ApiError;
use crate::domain::validation::text_problem;

/// A JSON body deserialised with the path of the first bad field: `{"quantity":{"unit":"ton"}}`
/// answers 422 with field `quantity.unit`. Size is capped by the app's `PayloadConfig` (413).
pub struct ValidJson<T>(pub T);

impl<T: DeserializeOwned + 'static> FromRequest for ValidJson<T> {
    type Error = ApiError;
    type Future = LocalBoxFuture<'static, Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let content_type = req
            .headers()
            .get(actix_web::http::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_ascii_lowercase();
        let bytes = Bytes::from_request(req, payload);
        Box::pin(async move {
            if !content_type.starts_with("application/json") {
                return Err(ApiError::Unsupported(
                    "send the body as application/json".into(),
                ));
            }
            let bytes = bytes.await.map_err(payload_error)?;
            parse_json(&bytes).map(ValidJson)
        })
    }
}

/// Deserialises one JSON document, naming the failing field path. Text anywhere in it may not hold
/// control or bidirectional formatting characters (`domain::validation::forbidden_char`): NUL cannot
/// be stored by PostgreSQL, and the others make a name display as something else.
pub fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    // `from_slice` to a value also refuses anything after the document (`{…} junk`): a body we
    // half-understood must not be stored.
    let document: serde_json::Value = serde_json::from_slice(bytes)
        .map_err(|e| ApiError::BadRequest(format!("malformed JSON: {e}")))?;
    if let Some((field, problem)) = unsafe_text(&document, String::new()) {
        return Err(ApiError::field(field, problem));
    }
    serde_path_to_error::deserialize(document).map_err(|err| {
        let path = err.path().to_string();
        let message = strip_position(&err.into_inner().to_string());
        ApiError::field(field_of(&path, &message, "body"), message)
    })
}

/// The path (`contact.name`, `communes[2]`) and problem of the first string or key of `value`
/// holding a character no text may hold.
fn unsafe_text(value: &serde_json::Value, path: String) -> Option<(String, String)> {
    use serde_json::Value;
    let at = |path: String| {
        if path.is_empty() {
            "body".to_owned()
        } else {
            path
        }
    };
    match value {
        Value::String(text) => text_problem(text).map(|p| (at(path), p)),
        Value::Array(items) => items
            .iter()
            .enumerate()
            .find_map(|(i, item)| unsafe_text(item, format!("{}[{i}]", at(path.clone())))),
        Value::Object(fields) => fields.iter().find_map(|(name, item)| {
            let field = if path.is_empty() {
                name.clone()
            } else {
                format!("{path}.{name}")
            };
            match text_problem(name) {
                Some(problem) => Some((at(path.clone()), problem)),
                None => unsafe_text(item, field),
            }
        }),
        _ => None,
    }
}

/// The field a serde error is about: its path, completed by the name in "missing field `x`".
fn field_of(path: &str, message: &str, whole: &str) -> String {
    let missing = message
        .strip_prefix("missing field `")
        .and_then(|m| m.split('`').next());
    match (path, missing) {
        (".", Some(name)) => name.to_owned(),
        (".", None) => whole.to_owned(),
        (p, Some(name)) => format!("{p}.{name}"),
        (p, None) => p.to_owned(),
    }
}

/// serde_json appends " at line 1 column 42"; the field path says more.
fn strip_position(message: &str) -> String {
    match message.rfind(" at line ") {
        Some(i) => message[..i].to_owned(),
        None => message.to_owned(),
    }
}

pub fn payload_error(err: actix_web::Error) -> ApiError {
    let text = err.to_string();
    if err.as_response_error().status_code() == actix_web::http::StatusCode::PAYLOAD_TOO_LARGE {
        ApiError::PayloadTooLarge(format!("request body too large: {text}"))
    } else {
        ApiError::BadRequest(format!("cannot read the body: {text}"))
    }
}

/// Query string parameters, with a 422 naming the bad parameter.
pub struct ValidQuery<T>(pub T);

impl<T: DeserializeOwned + 'static> FromRequest for ValidQuery<T> {
    type Error = ApiError;
    type Future = std::future::Ready<Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        std::future::ready(parse_query(req.query_string()).map(ValidQuery))
    }
}

/// Deserialises a query string, naming the failing parameter.
pub fn parse_query<T: DeserializeOwned>(query: &str) -> Result<T, ApiError> {
    let pairs = url::form_urlencoded::parse(query.as_bytes());
    if let Some((name, _)) = pairs
        .clone()
        .find(|(k, v)| k.contains('\0') || v.contains('\0'))
    {
        return Err(ApiError::field(
            name.replace('\0', ""),
            "must not contain NUL characters",
        ));
    }
    let de = serde_urlencoded::Deserializer::new(pairs);
    serde_path_to_error::deserialize(de).map_err(|err| {
        let path = err.path().to_string();
        let message = err.into_inner().to_string();
        ApiError::field(field_of(&path, &message, "query"), message)
    })
}

/// Reads a request body up to `limit` bytes; beyond it, 413 problem+json.
pub async fn read_limited(
    mut payload: actix_web::web::Payload,
    limit: usize,
) -> Result<Bytes, ApiError> {
    use futures_util::StreamExt;
    let mut body = actix_web::web::BytesMut::new();
    while let Some(chunk) = payload.next().await {
        let chunk =
            chunk.map_err(|e| ApiError::BadRequest(format!("cannot read the body: {e}")))?;
        if body.len() + chunk.len() > limit {
            return Err(ApiError::PayloadTooLarge(format!(
                "the body is larger than {limit} bytes"
            )));
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body.freeze())
}
