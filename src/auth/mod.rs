//! Who may do what: API keys and roles, territory scopes, anonymisation for partners, the audit log
//! of writes.
//!
//! - A key is `sym_` + 64 hex characters, shown once; the database keeps its SHA-256 only.
//! - The middleware ([`middleware::authenticate`]) resolves the `Authorization: Bearer` key on every
//!   `/api/v1` request, checks the route's coarse right (read, write, subscribe, admin) from the
//!   method and path, and leaves a [`Caller`] in the request for handlers, which check territory
//!   scopes ([`scope`]). Partners and keyless public readers get JSON responses with the actors that did
//!   not consent anonymised ([`anonymise`]).

pub mod anonymise;
pub mod audit;
pub mod key_cache;
pub mod middleware;
pub mod rate;
pub mod scope;

use std::future::{Ready, ready};

use actix_web::{FromRequest, HttpMessage, HttpRequest};
use rand::RngCore;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use utoipa::ToSchema;

use crate::api::error::ApiError;
use crate::db::keys::ApiKeyRow;
use crate::domain::validation::FieldError;

pub use anonymise::Anonymiser;
pub use scope::{Coverage, territories_cover_commune};

/// What a key may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// Everything, including keys and the audit log.
    Admin,
    /// Reads and writes within its territories.
    Facilitator,
    /// Reads within its territories (actors that did not consent anonymised) and its own webhooks.
    Partner,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Admin => "admin",
            Role::Facilitator => "facilitator",
            Role::Partner => "partner",
        }
    }

    pub fn parse(text: &str) -> Option<Role> {
        match text {
            "admin" => Some(Role::Admin),
            "facilitator" => Some(Role::Facilitator),
            "partner" => Some(Role::Partner),
            _ => None,
        }
    }
}

/// The holder of a valid, unrevoked key.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct Principal {
    pub key_id: String,
    pub name: String,
    pub role: Role,
    /// Territory codes the key is limited to; empty = national.
    pub territories: Vec<String>,
}

impl Principal {
    pub fn from_row(row: &ApiKeyRow) -> Option<Principal> {
        Some(Principal {
            key_id: row.id.clone(),
            name: row.name.clone(),
            role: Role::parse(&row.role)?,
            territories: serde_json::from_str(&row.territories).ok()?,
        })
    }
}

/// Who sends the request: a key holder, or a keyless reader when `auth.public_read` is on.
#[derive(Debug, Clone, PartialEq)]
pub enum Caller {
    Public,
    Key(Principal),
}

impl Caller {
    pub fn principal(&self) -> Option<&Principal> {
        match self {
            Caller::Key(p) => Some(p),
            Caller::Public => None,
        }
    }

    /// Partners and public readers see actors that did not consent as anonymous.
    pub fn anonymises(&self) -> bool {
        !matches!(
            self,
            Caller::Key(Principal {
                role: Role::Admin | Role::Facilitator,
                ..
            })
        )
    }

    /// The territories the caller is limited to (empty = national).
    pub fn territories(&self) -> &[String] {
        match self {
            Caller::Key(p) => &p.territories,
            Caller::Public => &[],
        }
    }

    /// Who made a change, for histories and notes: the key's name.
    pub fn who(&self) -> String {
        match self {
            Caller::Key(p) => p.name.clone(),
            Caller::Public => "public".into(),
        }
    }
}

impl FromRequest for Caller {
    type Error = ApiError;
    type Future = Ready<Result<Caller, ApiError>>;

    fn from_request(req: &HttpRequest, _: &mut actix_web::dev::Payload) -> Self::Future {
        // The middleware always leaves a caller on `/api/v1`; elsewhere there is none.
        ready(
            req.extensions()
                .get::<Caller>()
                .cloned()
                .ok_or_else(|| ApiError::Unauthorized("an API key is required".into())),
        )
    }
}

/// A new key: the secret to hand over once, and the row to store.
pub struct NewKey {
    pub secret: String,
    pub row: ApiKeyRow,
}

/// Generates a key for `name` with `role`, limited to `territories` (already validated).
pub fn generate_key(name: &str, role: Role, territories: &[String]) -> NewKey {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    let secret = format!("sym_{}", hex::encode(bytes));
    let row = ApiKeyRow {
        id: uuid::Uuid::new_v4().to_string(),
        name: name.to_owned(),
        role: role.as_str().to_owned(),
        territories: serde_json::to_string(territories).unwrap_or_else(|_| "[]".into()),
        key_hash: hash_key(&secret),
        key_prefix: secret.chars().take(12).collect(),
        created_at: crate::db::now(),
        revoked_at: None,
    };
    NewKey { secret, row }
}

/// Validates and stores a new key; returns it with its secret (shown once). Territories must be
/// reference codes (`R27`, `21`, EPCI SIREN, commune) or custom zones.
pub fn create_key(
    conn: &mut crate::db::DbConnection,
    reference: &crate::reference::Reference,
    name: &str,
    role: Role,
    territories: &[String],
) -> Result<NewKey, ApiError> {
    let mut errors = Vec::new();
    let name = name.trim();
    if name.is_empty() || name.chars().count() > 200 || name.contains('\0') {
        errors.push(FieldError {
            field: "name".into(),
            message: "must be 1 to 200 characters".into(),
            row: None,
        });
    }
    let mut codes = Vec::with_capacity(territories.len());
    for (i, code) in territories.iter().enumerate() {
        let code = code.trim();
        let known = match reference.geo.territory(code) {
            Some(t) => Some(t.code),
            None if !code.is_empty() && !code.contains('\0') => {
                crate::db::zones::get(conn, code)?.map(|z| z.code)
            }
            None => None,
        };
        match known {
            Some(code) => codes.push(code),
            None => errors.push(FieldError {
                field: format!("territories[{i}]"),
                message: format!("`{code}` is not a known territory"),
                row: None,
            }),
        }
    }
    if !errors.is_empty() {
        return Err(ApiError::Validation(errors));
    }
    codes.sort();
    codes.dedup();
    let key = generate_key(name, role, &codes);
    crate::db::keys::insert(conn, &key.row)?;
    Ok(key)
}

/// SHA-256 of a key, hex: what the database stores and looks keys up by.
pub fn hash_key(secret: &str) -> String {
    hex::encode(Sha256::digest(secret.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_random_and_only_their_hash_is_stored() {
        let a = generate_key("portail", Role::Partner, &["21".into()]);
        let b = generate_key("portail", Role::Partner, &["21".into()]);
        assert_ne!(a.secret, b.secret);
        assert!(a.secret.starts_with("sym_") && a.secret.len() == 68);
        assert_eq!(a.row.key_hash, hash_key(&a.secret));
        assert!(!a.row.key_hash.contains(&a.secret[4..]));
        assert_eq!(a.row.key_prefix, a.secret[..12]);
        assert_eq!(a.row.territories, r#"["21"]"#);
        let principal = Principal::from_row(&a.row).expect("valid row");
        assert_eq!(principal.role, Role::Partner);
        assert_eq!(principal.territories, vec!["21".to_owned()]);
    }

    #[test]
    fn only_partners_and_public_readers_get_anonymised_views() {
        let key = |role| {
            Caller::Key(Principal {
                key_id: "k".into(),
                name: "n".into(),
                role,
                territories: vec![],
            })
        };
        assert!(Caller::Public.anonymises());
        assert!(key(Role::Partner).anonymises());
        assert!(!key(Role::Facilitator).anonymises());
        assert!(!key(Role::Admin).anonymises());
    }
}
