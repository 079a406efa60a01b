//! Building the application: settings → database → reference data → HTTP server.

use std::net::TcpListener;
use std::sync::Arc;

use actix_web::HttpMessage;
use actix_web::ResponseError;
use actix_web::dev::{Server, Service};
use actix_web::http::header::{HeaderName, HeaderValue};
use actix_web::middleware::Condition;
use actix_web::{App, HttpServer, web};
use futures_util::future::{Either, ready};
use tracing_actix_web::{RequestId, TracingLogger};

use crate::api::{self, AppState, error::ApiError};
use crate::config::Settings;
use crate::db::{self, DbPool};
use crate::detection::Detection;
use crate::reference::Reference;

/// The longest path and query string served (16 KiB): the longest list filter needs a few hundred
/// bytes. Longer ones get a 414 problem+json. (A request head past actix's own 128 KiB buffer is
/// refused by its HTTP/1 parser, with a bare 431, before any of our code runs.)
const MAX_URI_BYTES: usize = 16 * 1024;

/// Everything the service needs before it serves: the migrated pool and the reference data.
pub struct Application {
    pub settings: Settings,
    pub pool: DbPool,
    pub reference: Arc<Reference>,
    pub detection: Arc<Detection>,
    /// The webhook delivery worker, once `serve` started it (stopped when dropped).
    webhook_worker: std::sync::Mutex<Option<crate::webhooks::WorkerHandle>>,
    /// Follows what other servers write to the database, once `serve` started it.
    change_follower: std::sync::Mutex<Option<crate::detection::ChangeFollower>>,
    /// The keys this server checked, dropped by revocations here and, through the change
    /// follower, elsewhere.
    pub key_cache: Arc<crate::auth::key_cache::KeyCache>,
    /// Stores the audit log behind the requests.
    pub audit_log: Arc<crate::auth::audit::AuditLog>,
}

impl Application {
    /// Connects, migrates and loads the reference data; any failure is one clear message.
    pub fn prepare(settings: Settings) -> anyhow::Result<Application> {
        // The usual deployment mistake (no `../shared/reference` beside the clone, an unmounted
        // volume) gets a message saying what the directory is, not a missing CSV file's name.
        if !settings.reference.dir.is_dir() {
            anyhow::bail!(
                "key `reference.dir`: {} is not a directory; it must hold the reference data \
                 (ewc/, naf/, geo/ … as in ../shared/reference, see README \"Prerequisites\")",
                settings.reference.dir.display()
            );
        }
        let reference = Reference::load(&settings.reference.dir).map_err(|e| {
            anyhow::anyhow!(
                "{e} (key `reference.dir` = {})",
                settings.reference.dir.display()
            )
        })?;
        Self::prepare_with(settings, Arc::new(reference))
    }

    /// As `prepare`, with reference data already loaded (tests share one copy).
    pub fn prepare_with(
        settings: Settings,
        reference: Arc<Reference>,
    ) -> anyhow::Result<Application> {
        check_sqlite_directory(&settings.database.url)?;
        let pool = db::connect(
            &settings.database.url,
            settings.database.pool_size,
            settings.database.busy_timeout_ms,
        )
        .map_err(|e| match e {
            // Already says what is wrong with the URL: no "pool error" wrapping.
            // libpq's messages run over several lines (a hint on the second): one line here.
            db::DbError::Pool(detail) => anyhow::anyhow!(
                "key `database.url`: {}",
                detail.split_whitespace().collect::<Vec<_>>().join(" ")
            ),
            other => anyhow::anyhow!("key `database.url`: {other}"),
        })?;
        db::migrate(&pool).map_err(|e| anyhow::anyhow!("key `database.url`: {e}"))?;
        let detection = Detection::load(
            &settings.reference.dir,
            settings.matching.clone(),
            settings.pooling.params(),
        )?;
        let seen_by_partners = reference.clone();
        detection.keep_views_current(Arc::new(move |a| {
            crate::auth::anonymise::known_position(
                &seen_by_partners,
                &a.commune,
                a.lat,
                a.lng,
                a.share_with_partners,
            )
        }));
        Ok(Application {
            settings,
            reference,
            detection: Arc::new(detection),
            webhook_worker: std::sync::Mutex::new(None),
            change_follower: std::sync::Mutex::new(None),
            key_cache: Arc::default(),
            audit_log: Arc::new(crate::auth::audit::AuditLog::start(pool.clone())?),
            pool,
        })
    }

    pub fn state(&self) -> AppState {
        AppState {
            pool: self.pool.clone(),
            reference: self.reference.clone(),
            classifier: self.detection.taxonomy.clone(),
            detection: self.detection.clone(),
            settings: self.settings.clone(),
            rate_limit: Arc::new(crate::auth::rate::RateLimiter::new(&self.settings.auth)),
            keys: self.key_cache.clone(),
            audit: self.audit_log.clone(),
        }
    }

    /// Binds `server.host:server.port` (port 0 picks a free one) and returns the server and its port.
    pub fn serve(&self) -> anyhow::Result<(Server, u16)> {
        let address = format!(
            "{}:{}",
            self.settings.server.host, self.settings.server.port
        );
        let listener = TcpListener::bind(&address)
            .map_err(|e| anyhow::anyhow!("key `server.port`: cannot listen on {address}: {e}"))?;
        let port = listener.local_addr()?.port();
        let state = web::Data::new(self.state());
        let json_limit = self.settings.server.json_limit_bytes;
        let workers = self.settings.server.workers;
        let cors_origins = self.settings.server.cors_origins.clone();
        // Built once, shared by the workers.
        let api_document = Arc::new(api::openapi::document(self.settings.auth.public_read));
        // The facilitator console (`/console`, and `/` redirecting to it): pages built from the API.
        let console = crate::console::Console::load(&self.settings)?;
        let mut server = HttpServer::new(move || {
            App::new()
                .wrap_fn(|req, srv| {
                    // A NUL in a path segment can never name anything, and PostgreSQL refuses it.
                    let refused = if req.path().contains("%00") {
                        Some(ApiError::NotFound("path".into()))
                    } else if req.uri().path().len() + req.uri().query().map_or(0, str::len)
                        > MAX_URI_BYTES
                    {
                        Some(ApiError::UriTooLong(format!(
                            "the request's path and query are longer than {MAX_URI_BYTES} bytes"
                        )))
                    } else {
                        None
                    };
                    if let Some(error) = refused {
                        let problem = error.error_response();
                        Either::Left(ready(Ok(req.into_response(problem).map_into_right_body())))
                    } else {
                        // The request id of the tracing span, echoed so clients can quote it.
                        let request_id =
                            req.extensions().get::<RequestId>().map(|id| id.to_string());
                        let call = srv.call(req);
                        Either::Right(async move {
                            let mut response = call.await?;
                            if let Some(value) =
                                request_id.and_then(|id| HeaderValue::from_str(&id).ok())
                            {
                                response
                                    .headers_mut()
                                    .insert(HeaderName::from_static("x-request-id"), value);
                            }
                            Ok(response.map_into_left_body())
                        })
                    }
                })
                .wrap(Condition::new(
                    !cors_origins.is_empty(),
                    cors(&cors_origins),
                ))
                .wrap(TracingLogger::default())
                .app_data(state.clone())
                .app_data(web::PayloadConfig::new(json_limit))
                .app_data(
                    web::QueryConfig::default()
                        .error_handler(|e, _| ApiError::field("query", e.to_string()).into()),
                )
                .app_data(
                    web::PathConfig::default()
                        .error_handler(|e, _| ApiError::field("path", e.to_string()).into()),
                )
                .configure(|cfg| api::routes(cfg, &api_document))
                .configure(|cfg| {
                    crate::console::routes(
                        cfg,
                        &console,
                        state.clone(),
                        api_document.clone(),
                        json_limit,
                    )
                })
                .default_service(web::to({
                    // A documented path asked with another method: 405 naming the allowed ones.
                    let document = api_document.clone();
                    move |req: actix_web::HttpRequest| {
                        // The decoded path, as the router matched it.
                        let allowed =
                            api::openapi::allowed_methods(&document, req.match_info().as_str());
                        ready(Err::<actix_web::HttpResponse, _>(if allowed.is_empty() {
                            ApiError::NotFound("route".into())
                        } else {
                            ApiError::MethodNotAllowed(allowed)
                        }))
                    }
                }))
        })
        .listen(listener)?;
        if workers > 0 {
            server = server.workers(workers);
        }
        // The first full build, before the first request: the baseline against which later builds
        // announce the synergies that enter (`synergy.detected`).
        let started = std::time::Instant::now();
        self.detection
            .current(&self.pool)
            .map_err(|e| anyhow::anyhow!("the first detection failed: {e}"))?;
        tracing::info!(
            ms = started.elapsed().as_millis() as u64,
            "first detection built"
        );
        let poll = std::time::Duration::from_millis(self.settings.database.change_poll_ms.max(1));
        let key_cache = self.key_cache.clone();
        let follower = self.detection.follow_changes(
            &self.pool,
            poll,
            Arc::new(move |version| key_cache.saw_keys_version(version)),
        )?;
        let url = &self.settings.database.url;
        let key_cache = self.key_cache.clone();
        // A revocation through another server drops this server's keys as its notification
        // arrives, before the follower has read the counters.
        let noticed = move |kind: Option<&str>| {
            if kind.is_none_or(|k| k == db::changes::KEYS) {
                key_cache.clear();
            }
        };
        if db::Backend::of_url(url) == db::Backend::Postgres
            && let Err(error) = follower.listen(url, noticed)
        {
            tracing::warn!(%error, "change listener: polling only");
        }
        *self
            .change_follower
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner()) = Some(follower);
        if self.settings.webhooks.worker {
            self.start_webhooks()?;
        }
        Ok((server.run(), port))
    }

    /// Starts the webhook delivery worker on the current runtime (`serve` does, when
    /// `webhooks.worker` is on); a running one is replaced.
    pub fn start_webhooks(&self) -> anyhow::Result<()> {
        let handle = crate::webhooks::start_worker(
            self.pool.clone(),
            self.reference.clone(),
            self.detection.clone(),
            self.settings.webhooks.clone(),
            self.settings.auth.anonymisation_secret.clone(),
        )?;
        *self
            .webhook_worker
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner()) = Some(handle);
        Ok(())
    }

    /// Stops the webhook delivery worker (pending deliveries stay in the outbox).
    pub fn stop_webhooks(&self) {
        self.webhook_worker
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .take();
    }
}

/// The directory of an SQLite file must exist, except the default `data/` of the README's first
/// command, which `db::connect` creates in a fresh clone: a mistyped path elsewhere must not
/// silently grow a new directory and an empty database.
fn check_sqlite_directory(url: &str) -> anyhow::Result<()> {
    if db::Backend::of_url(url) != db::Backend::Sqlite {
        return Ok(());
    }
    let path = std::path::Path::new(url.strip_prefix("sqlite://").unwrap_or(url));
    match path.parent() {
        Some(dir)
            if !dir.as_os_str().is_empty()
                && dir != std::path::Path::new("data")
                && path != std::path::Path::new(":memory:")
                && !dir.is_dir() =>
        {
            anyhow::bail!(
                "key `database.url`: directory {} does not exist; create it first (only the \
                 default data/ is created)",
                dir.display()
            )
        }
        _ => Ok(()),
    }
}

/// CORS from `server.cors_origins`: those origins may read and write the API from a browser. Without
/// any, the middleware is off: no CORS headers, so browsers refuse cross-origin calls, while
/// same-origin pages (the `/docs` console) keep working.
fn cors(origins: &[String]) -> actix_cors::Cors {
    origins
        .iter()
        .fold(actix_cors::Cors::default(), |cors, origin| {
            cors.allowed_origin(origin.trim_end_matches('/'))
        })
        .allowed_methods(["GET", "POST", "PUT", "PATCH", "DELETE"])
        .allowed_headers([
            actix_web::http::header::CONTENT_TYPE,
            actix_web::http::header::AUTHORIZATION,
            actix_web::http::header::ACCEPT,
        ])
        .expose_headers(["x-request-id", "location"])
        .max_age(3600)
}
