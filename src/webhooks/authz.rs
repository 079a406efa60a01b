//! TEMPORARY stand-in for the lead's `crate::auth` (same names), until it lands: replaced by
//! `pub use crate::auth::{…}` on merge.

use std::future::{Ready, ready};

use actix_web::dev::Payload;
use actix_web::{FromRequest, HttpRequest};

use crate::db::{DbConnection, DbError};
use crate::reference::Reference;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    Admin,
    Facilitator,
    Partner,
}

#[derive(Debug, Clone)]
pub struct Principal {
    pub key_id: String,
    pub name: String,
    pub role: Role,
    pub territories: Vec<String>,
}

#[derive(Debug, Clone)]
pub enum Caller {
    Public,
    Key(Principal),
}

impl Caller {
    pub fn principal(&self) -> Option<&Principal> {
        match self {
            Caller::Public => None,
            Caller::Key(p) => Some(p),
        }
    }
}

/// Shim: `Authorization: Bearer <role>:<key id>[:<territory>,…]`.
impl FromRequest for Caller {
    type Error = actix_web::Error;
    type Future = Ready<Result<Caller, actix_web::Error>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let caller = req
            .headers()
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .and_then(|token| {
                let mut parts = token.splitn(3, ':');
                let role = match parts.next()? {
                    "admin" => Role::Admin,
                    "facilitator" => Role::Facilitator,
                    "partner" => Role::Partner,
                    _ => return None,
                };
                let key_id = parts.next()?.to_owned();
                let territories = parts
                    .next()
                    .map(|t| t.split(',').map(str::to_owned).collect())
                    .unwrap_or_default();
                Some(Caller::Key(Principal {
                    name: key_id.clone(),
                    key_id,
                    role,
                    territories,
                }))
            })
            .unwrap_or(Caller::Public);
        ready(Ok(caller))
    }
}

/// Shim: départements and communes only.
pub fn territories_cover_commune(
    _conn: &mut DbConnection,
    reference: &Reference,
    territories: &[String],
    commune: &str,
) -> Result<bool, DbError> {
    let dep = reference
        .geo
        .commune(commune)
        .map(|c| c.departement.clone())
        .unwrap_or_default();
    Ok(territories.is_empty() || territories.iter().any(|t| t == commune || *t == dep))
}

/// Shim: drops names.
pub fn anonymise_json(
    _conn: &mut DbConnection,
    _reference: &Reference,
    _secret: &str,
    value: &mut serde_json::Value,
) -> Result<(), DbError> {
    match value {
        serde_json::Value::Object(map) => {
            map.remove("name");
            for v in map.values_mut() {
                anonymise_json(_conn, _reference, _secret, v)?;
            }
        }
        serde_json::Value::Array(items) => {
            for v in items {
                anonymise_json(_conn, _reference, _secret, v)?;
            }
        }
        _ => {}
    }
    Ok(())
}

/// Shim: the secret of anonymised actor ids.
pub fn anonymise_secret(_settings: &crate::config::Settings) -> String {
    "shim".into()
}
