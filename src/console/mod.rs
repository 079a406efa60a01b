//! The facilitator console: server-rendered pages under `/console` (askama templates checked at
//! compile time, CSS and JavaScript embedded in the binary, SVG drawn by the server).
//!
//! Every figure, list and change goes through the API in-process ([`inner::InnerApi`]) under the
//! signed-in key: the gate, the territory scopes, the anonymisation of partners' views, the
//! validation and the lifecycle rules are the API's own. The console adds sessions
//! ([`session`]), words ([`i18n`]) and drawings ([`svg`]).

pub mod i18n;
pub mod inner;
pub mod multipart;
pub mod pages;
pub mod session;
pub mod svg;

use std::sync::Arc;

use actix_web::{HttpResponse, web};

use crate::api::AppState;
use crate::config::Settings;

pub use inner::InnerApi;

/// What the console loads once at start: the outlines of départements and régions.
#[derive(Clone)]
pub struct Console {
    pub outlines: Arc<svg::Outlines>,
}

impl Console {
    /// Reads the outlines from `reference.dir/geo`; a bad file stops the start naming it.
    pub fn load(settings: &Settings) -> anyhow::Result<Console> {
        let outlines = svg::Outlines::load(&settings.reference.dir.join("geo"))
            .map_err(|e| anyhow::anyhow!("{e} (key `reference.dir`)"))?;
        Ok(Console {
            outlines: Arc::new(outlines),
        })
    }
}

/// Mounts `/` (→ `/console`) and the `/console` pages. Called in each worker's app factory.
pub fn routes(
    cfg: &mut web::ServiceConfig,
    console: &Console,
    state: web::Data<AppState>,
    document: Arc<serde_json::Value>,
    json_limit: usize,
) {
    let import_limit = state.settings.server.import_limit_bytes;
    let api = web::Data::new(InnerApi::new(state, document, json_limit));
    let outlines = web::Data::from(console.outlines.clone());
    cfg.route(
        "/",
        web::get().to(|| async {
            HttpResponse::Found()
                .insert_header(("Location", "/console"))
                .finish()
        }),
    )
    .service(
        web::scope("/console")
            .app_data(api)
            .app_data(outlines)
            .wrap(actix_web::middleware::DefaultHeaders::new()
                .add(("X-Content-Type-Options", "nosniff"))
                .add(("X-Frame-Options", "DENY"))
                .add(("Referrer-Policy", "same-origin"))
                .add((
                    "Content-Security-Policy",
                    "default-src 'none'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; \
                     script-src 'self'; connect-src 'self'; form-action 'self'; \
                     frame-ancestors 'none'; base-uri 'none'",
                )))
            .configure(|cfg| pages::routes(cfg, import_limit)),
    );
}
