//! Per-key rate limit (actix-governor): a token bucket per API key, or per client address for
//! requests without a key, refilled at `auth.rate_limit_per_second` up to `auth.rate_limit_burst`.

use actix_governor::governor::NotUntil;
use actix_governor::governor::clock::{Clock, DefaultClock, QuantaInstant};
use actix_governor::governor::middleware::NoOpMiddleware;
use actix_governor::{
    GovernorConfig, GovernorConfigBuilder, KeyExtractor, SimpleKeyExtractionError,
};
use actix_web::dev::ServiceRequest;
use actix_web::http::header::AUTHORIZATION;
use actix_web::{HttpResponse, HttpResponseBuilder};

use crate::config::AuthSettings;

/// Buckets by the SHA-256 of the presented key (never the key itself), else by peer address.
#[derive(Debug, Clone, Copy)]
pub struct KeyOrAddress;

impl KeyExtractor for KeyOrAddress {
    type Key = String;
    type KeyExtractionError = SimpleKeyExtractionError<&'static str>;

    fn extract(&self, req: &ServiceRequest) -> Result<String, Self::KeyExtractionError> {
        if let Some(key) = req.headers().get(AUTHORIZATION) {
            return Ok(format!(
                "key:{}",
                super::hash_key(&String::from_utf8_lossy(key.as_bytes()))
            ));
        }
        let address = req
            .peer_addr()
            .map(|a| a.ip().to_string())
            .unwrap_or_default();
        Ok(format!("address:{address}"))
    }

    fn exceed_rate_limit_response(
        &self,
        negative: &NotUntil<QuantaInstant>,
        mut response: HttpResponseBuilder,
    ) -> HttpResponse {
        let wait = negative
            .wait_time_from(DefaultClock::default().now())
            .as_secs()
            .max(1);
        response
            .insert_header(("Retry-After", wait.to_string()))
            .content_type("application/problem+json")
            .json(serde_json::json!({
                "type": "https://symbiose.example/problems/too-many-requests",
                "title": "Too Many Requests",
                "status": 429,
                "detail": format!("rate limit of this key reached; retry in {wait} s"),
            }))
    }
}

pub type RateLimit = GovernorConfig<KeyOrAddress, NoOpMiddleware<QuantaInstant>>;

/// The shared limiter: build it once, outside the per-worker app factory, so workers share buckets.
pub fn rate_limit(settings: &AuthSettings) -> anyhow::Result<RateLimit> {
    let period_ns = 1_000_000_000 / u64::from(settings.rate_limit_per_second.max(1));
    GovernorConfigBuilder::default()
        .key_extractor(KeyOrAddress)
        .nanoseconds_per_request(period_ns.max(1))
        .burst_size(settings.rate_limit_burst.max(1))
        .finish()
        .ok_or_else(|| anyhow::anyhow!("key `auth.rate_limit_per_second`: invalid rate limit"))
}
