//! Delivery signatures: HMAC-SHA256 with the subscription's secret over `"{timestamp}.{body}"`,
//! sent as `X-Symbiose-Signature: t=<unix seconds>,v1=<lower-case hex>` (docs/WEBHOOKS.md shows
//! how a receiver checks it).

use hmac::{Hmac, Mac};
use rand::RngCore;
use sha2::Sha256;

pub const SIGNATURE_HEADER: &str = "X-Symbiose-Signature";
pub const EVENT_ID_HEADER: &str = "X-Symbiose-Event-Id";
pub const EVENT_TYPE_HEADER: &str = "X-Symbiose-Event";

/// A new signing secret: `whsec_` and 32 random bytes in hex.
pub fn new_secret() -> String {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    format!("whsec_{}", hex::encode(bytes))
}

/// Lower-case hex HMAC-SHA256 of `"{timestamp}.{body}"` under `secret`.
pub fn signature(secret: &str, timestamp: i64, body: &[u8]) -> String {
    // HMAC accepts keys of any length: `new_from_slice` cannot fail for it.
    let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(secret.as_bytes()) else {
        return String::new();
    };
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    hex::encode(mac.finalize().into_bytes())
}

/// The `X-Symbiose-Signature` header value.
pub fn header_value(secret: &str, timestamp: i64, body: &[u8]) -> String {
    format!("t={timestamp},v1={}", signature(secret, timestamp, body))
}

/// Checks a header value as a receiver would: the `v1` signature matches (constant-time) and the
/// timestamp is within `tolerance_secs` of `now`. Returns the timestamp.
pub fn verify(
    secret: &str,
    header: &str,
    body: &[u8],
    now: i64,
    tolerance_secs: i64,
) -> Result<i64, &'static str> {
    let mut timestamp = None;
    let mut signatures = Vec::new();
    for part in header.split(',') {
        match part.trim().split_once('=') {
            Some(("t", t)) => timestamp = t.parse::<i64>().ok(),
            Some(("v1", s)) => signatures.push(s),
            _ => {}
        }
    }
    let timestamp = timestamp.ok_or("no timestamp")?;
    if (now - timestamp).abs() > tolerance_secs {
        return Err("timestamp out of tolerance");
    }
    let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(secret.as_bytes()) else {
        return Err("bad secret");
    };
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    let ok = signatures.iter().any(|s| {
        hex::decode(s)
            .ok()
            .is_some_and(|bytes| mac.clone().verify_slice(&bytes).is_ok())
    });
    if ok {
        Ok(timestamp)
    } else {
        Err("signature mismatch")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_vector_and_round_trip() {
        // python3 -c 'import hmac,hashlib;print(hmac.new(b"whsec_test",b"1700000000.{\"a\":1}",hashlib.sha256).hexdigest())'
        let sig = signature("whsec_test", 1_700_000_000, br#"{"a":1}"#);
        assert_eq!(
            sig,
            "38877139021993b830af32feea6e18a8da83eb2f6e49ee50bd9e4cf4ca4d3789"
        );
        let header = header_value("whsec_test", 1_700_000_000, br#"{"a":1}"#);
        assert_eq!(header, format!("t=1700000000,v1={sig}"));
        assert_eq!(
            verify("whsec_test", &header, br#"{"a":1}"#, 1_700_000_100, 300),
            Ok(1_700_000_000)
        );
        assert!(verify("whsec_other", &header, br#"{"a":1}"#, 1_700_000_000, 300).is_err());
        assert!(verify("whsec_test", &header, br#"{"a":2}"#, 1_700_000_000, 300).is_err());
        assert!(verify("whsec_test", &header, br#"{"a":1}"#, 1_700_001_000, 300).is_err());
        let secret = new_secret();
        assert!(secret.starts_with("whsec_") && secret.len() == 6 + 64);
    }
}
