//! The console reads and writes through the API itself: every page is built from `/api/v1`
//! answers obtained in-process, under the signed-in key, through the same gate
//! (`auth::middleware::authenticate`: key lookup, rate limits, route right, anonymisation of JSON
//! answers for partners, audit log of writes) and the same handlers (territory scopes, validation,
//! lifecycle rules). No rule is implemented twice: the console only lays out what the API answers.
//!
//! The API `App` is built once per worker thread, lazily, from `api::routes`.

use std::cell::RefCell;
use std::net::SocketAddr;
use std::rc::Rc;
use std::sync::Arc;

use actix_service::IntoServiceFactory;
use actix_web::body::{BoxBody, MessageBody};
use actix_web::dev::{AppConfig, Service, ServiceFactory, ServiceResponse};
use actix_web::http::header::{AUTHORIZATION, CONTENT_TYPE, LOCATION};
use actix_web::http::{Method, StatusCode};
use actix_web::{App, ResponseError, web};
use futures_util::future::LocalBoxFuture;
use serde::de::DeserializeOwned;

use crate::api::{self, AppState, error::ApiError};

type Call = Rc<
    dyn Fn(
        actix_http::Request,
    ) -> LocalBoxFuture<'static, Result<ServiceResponse<BoxBody>, actix_web::Error>>,
>;

/// The API as the console calls it (one per worker thread).
pub struct InnerApi {
    state: web::Data<AppState>,
    document: Arc<serde_json::Value>,
    json_limit: usize,
    service: RefCell<Option<Call>>,
}

/// An API answer: status, `Location`, and the body (JSON parsed when it is JSON).
#[derive(Debug)]
pub struct Reply {
    pub status: StatusCode,
    pub location: Option<String>,
    pub body: serde_json::Value,
    pub text: String,
}

impl Reply {
    pub fn ok(&self) -> bool {
        self.status.is_success()
    }

    /// The body as `T`, or the problem this answer stands for.
    pub fn parse<T: DeserializeOwned>(&self) -> Result<T, Failure> {
        if !self.ok() {
            return Err(Failure::from_reply(self));
        }
        serde_json::from_value(self.body.clone())
            .map_err(|e| Failure::internal(format!("reading the API's answer: {e}")))
    }

    /// The `errors` of a 422 problem, as (field, message).
    pub fn field_errors(&self) -> Vec<(String, String)> {
        self.body
            .get("errors")
            .and_then(|e| e.as_array())
            .map(|errors| {
                errors
                    .iter()
                    .map(|e| {
                        let text = |k: &str| {
                            e.get(k)
                                .and_then(|v| v.as_str())
                                .unwrap_or_default()
                                .to_owned()
                        };
                        (text("field"), text("message"))
                    })
                    .collect()
            })
            .unwrap_or_default()
    }

    pub fn detail(&self) -> String {
        let text = |k: &str| self.body.get(k).and_then(|v| v.as_str()).map(str::to_owned);
        let mut detail = text("detail")
            .or_else(|| text("title"))
            .unwrap_or_else(|| self.status.canonical_reason().unwrap_or("error").to_owned());
        let fields = self.field_errors();
        if !fields.is_empty() {
            let listed: Vec<String> = fields.iter().map(|(f, m)| format!("{f}: {m}")).collect();
            detail = format!("{detail} — {}", listed.join("; "));
        }
        detail
    }
}

/// Why a page cannot be shown: the API's status and detail.
#[derive(Debug)]
pub struct Failure {
    pub status: StatusCode,
    pub detail: String,
}

impl Failure {
    pub fn from_reply(reply: &Reply) -> Failure {
        Failure {
            status: reply.status,
            detail: reply.detail(),
        }
    }

    pub fn internal(detail: impl Into<String>) -> Failure {
        Failure {
            status: StatusCode::INTERNAL_SERVER_ERROR,
            detail: detail.into(),
        }
    }

    pub fn status(status: StatusCode, detail: impl Into<String>) -> Failure {
        Failure {
            status,
            detail: detail.into(),
        }
    }
}

impl From<ApiError> for Failure {
    fn from(e: ApiError) -> Failure {
        Failure {
            status: e.status_code(),
            detail: e.to_string(),
        }
    }
}

impl InnerApi {
    pub fn new(
        state: web::Data<AppState>,
        document: Arc<serde_json::Value>,
        json_limit: usize,
    ) -> InnerApi {
        InnerApi {
            state,
            document,
            json_limit,
            service: RefCell::new(None),
        }
    }

    pub fn state(&self) -> &web::Data<AppState> {
        &self.state
    }

    async fn service(&self) -> Result<Call, Failure> {
        if let Some(call) = self.service.borrow().as_ref() {
            return Ok(call.clone());
        }
        let document = self.document.clone();
        // The same app data as the served API (startup.rs), so answers are the same.
        let app = App::new()
            .app_data(self.state.clone())
            .app_data(web::PayloadConfig::new(self.json_limit))
            .app_data(
                web::QueryConfig::default()
                    .error_handler(|e, _| ApiError::field("query", e.to_string()).into()),
            )
            .app_data(
                web::PathConfig::default()
                    .error_handler(|e, _| ApiError::field("path", e.to_string()).into()),
            )
            .configure(|cfg| api::routes(cfg, &document));
        let service = app
            .into_factory()
            .new_service(AppConfig::default())
            .await
            .map_err(|_| Failure::internal("starting the console's API"))?;
        let service = Rc::new(service);
        let call: Call = Rc::new(move |req| {
            let service = service.clone();
            Box::pin(async move {
                service
                    .call(req)
                    .await
                    .map(ServiceResponse::map_into_boxed_body)
            })
        });
        *self.service.borrow_mut() = Some(call.clone());
        Ok(call)
    }

    /// `method path` (path and query under `/api/v1`) with `key`, and a body of `content_type`.
    pub async fn call(
        &self,
        method: Method,
        path: &str,
        key: &str,
        peer: Option<SocketAddr>,
        body: Option<(&str, Vec<u8>)>,
    ) -> Result<Reply, Failure> {
        let service = self.service().await?;
        let mut request = actix_web::test::TestRequest::default()
            .method(method)
            .uri(&format!("/api/v1{path}"))
            .insert_header((AUTHORIZATION, format!("Bearer {key}")));
        if let Some(peer) = peer {
            request = request.peer_addr(peer);
        }
        if let Some((content_type, bytes)) = body {
            request = request
                .insert_header((CONTENT_TYPE, content_type.to_owned()))
                .set_payload(bytes);
        }
        let response = match service(request.to_request()).await {
            Ok(response) => response,
            Err(error) => {
                let response = error.error_response();
                return reply_of(response.status(), None, response.into_body()).await;
            }
        };
        let status = response.status();
        let location = response
            .headers()
            .get(LOCATION)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        reply_of(status, location, response.into_body()).await
    }

    pub async fn get(
        &self,
        path: &str,
        key: &str,
        peer: Option<SocketAddr>,
    ) -> Result<Reply, Failure> {
        self.call(Method::GET, path, key, peer, None).await
    }

    /// GET and parse, or the failure.
    pub async fn read<T: DeserializeOwned>(
        &self,
        path: &str,
        key: &str,
        peer: Option<SocketAddr>,
    ) -> Result<T, Failure> {
        self.get(path, key, peer).await?.parse()
    }
}

async fn reply_of(
    status: StatusCode,
    location: Option<String>,
    body: impl MessageBody,
) -> Result<Reply, Failure> {
    let bytes = actix_web::body::to_bytes(body)
        .await
        .map_err(|_| Failure::internal("reading the API's answer"))?;
    let text = String::from_utf8_lossy(&bytes).into_owned();
    let body = serde_json::from_slice(&bytes).unwrap_or(serde_json::Value::Null);
    Ok(Reply {
        status,
        location,
        body,
        text,
    })
}

/// Percent-encodes a query value or path segment.
pub fn enc(text: &str) -> String {
    url::form_urlencoded::byte_serialize(text.as_bytes()).collect()
}
