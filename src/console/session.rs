//! Console sessions: the signed-in key and the CSRF token, sealed (ChaCha20-Poly1305, key derived
//! from `auth.anonymisation_secret` under a label of its own) in an `HttpOnly`, `SameSite=Strict`
//! cookie, `Secure` when the request came over TLS. The key is checked again by the API gate on
//! every call, so a revoked key ends its sessions at once.

use actix_web::HttpRequest;
use actix_web::cookie::{Cookie, SameSite, time::Duration};
use chacha20poly1305::aead::{Aead, KeyInit};
use chacha20poly1305::{ChaCha20Poly1305, Nonce};
use rand::RngCore;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

pub const SESSION_COOKIE: &str = "symbiose_console";
/// The CSRF token of the sign-in form (double submit: cookie and field must match).
pub const LOGIN_COOKIE: &str = "symbiose_console_login";
pub const LANG_COOKIE: &str = "symbiose_lang";
/// How long a session lasts.
pub const SESSION_HOURS: i64 = 8;

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Session {
    /// The API key (sealed in the cookie; never shown).
    #[serde(rename = "k")]
    pub key: String,
    #[serde(rename = "c")]
    pub csrf: String,
    /// Expiry, Unix seconds.
    #[serde(rename = "e")]
    pub expires: i64,
}

impl Session {
    pub fn new(key: String) -> Session {
        Session {
            key,
            csrf: random_token(),
            expires: chrono::Utc::now().timestamp() + SESSION_HOURS * 3600,
        }
    }

    /// The session of this request, when its cookie opens and has not expired.
    pub fn of(req: &HttpRequest, secret: &str) -> Option<Session> {
        let cookie = req.cookie(SESSION_COOKIE)?;
        let session: Session = serde_json::from_slice(&open(secret, cookie.value())?).ok()?;
        (session.expires > chrono::Utc::now().timestamp()).then_some(session)
    }

    pub fn cookie(&self, req: &HttpRequest, secret: &str) -> Cookie<'static> {
        let sealed = seal(secret, &serde_json::to_vec(self).unwrap_or_default());
        cookie(req, SESSION_COOKIE, sealed, Duration::hours(SESSION_HOURS))
    }

    /// Whether a submitted form's token is this session's.
    pub fn check_csrf(&self, submitted: &str) -> bool {
        same(&self.csrf, submitted)
    }
}

/// A cookie of the console: path `/console`, `HttpOnly`, `SameSite=Strict`, `Secure` over TLS.
pub fn cookie(req: &HttpRequest, name: &str, value: String, age: Duration) -> Cookie<'static> {
    let mut cookie = Cookie::new(name.to_owned(), value);
    cookie.set_path("/console");
    cookie.set_http_only(true);
    cookie.set_same_site(SameSite::Strict);
    cookie.set_secure(req.connection_info().scheme() == "https");
    cookie.set_max_age(age);
    cookie
}

/// A cookie that removes `name`.
pub fn removal(req: &HttpRequest, name: &str) -> Cookie<'static> {
    cookie(req, name, String::new(), Duration::ZERO)
}

/// 32 random bytes, hex.
pub fn random_token() -> String {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    hex::encode(bytes)
}

/// Constant-time comparison of two tokens.
pub fn same(a: &str, b: &str) -> bool {
    a.len() == b.len()
        && !a.is_empty()
        && a.bytes()
            .zip(b.bytes())
            .fold(0u8, |acc, (x, y)| acc | (x ^ y))
            == 0
}

fn cipher(secret: &str) -> ChaCha20Poly1305 {
    let key: [u8; 32] =
        Sha256::digest(format!("symbiose-console-session:{secret}").as_bytes()).into();
    ChaCha20Poly1305::new(&key.into())
}

const NONCE_LEN: usize = 12;

fn seal(secret: &str, plain: &[u8]) -> String {
    let mut nonce = [0u8; NONCE_LEN];
    rand::rng().fill_bytes(&mut nonce);
    // Encryption fails only past ChaCha20's 256 GiB limit.
    let sealed = cipher(secret)
        .encrypt(Nonce::from_slice(&nonce), plain)
        .unwrap_or_default();
    let mut bytes = nonce.to_vec();
    bytes.extend(sealed);
    hex::encode(bytes)
}

fn open(secret: &str, text: &str) -> Option<Vec<u8>> {
    let bytes = hex::decode(text).ok()?;
    if bytes.len() <= NONCE_LEN {
        return None;
    }
    let (nonce, sealed) = bytes.split_at(NONCE_LEN);
    cipher(secret)
        .decrypt(Nonce::from_slice(nonce), sealed)
        .ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sealed_values_open_only_with_their_secret_and_unaltered() {
        let sealed = seal("s1", b"hello");
        assert_eq!(open("s1", &sealed).as_deref(), Some(&b"hello"[..]));
        assert_eq!(open("s2", &sealed), None);
        let mut altered = sealed.clone().into_bytes();
        let last = altered.len() - 1;
        altered[last] = if altered[last] == b'0' { b'1' } else { b'0' };
        assert_eq!(
            open("s1", &String::from_utf8(altered).unwrap_or_default()),
            None
        );
        assert!(!sealed.contains("hello") && !sealed.contains(&hex::encode("hello")));
    }

    #[test]
    fn tokens_compare_whole() {
        assert!(same("abc", "abc"));
        assert!(!same("abc", "abd"));
        assert!(!same("abc", "ab"));
        assert!(!same("", ""));
    }
}
