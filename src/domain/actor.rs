//! Actors: a company, facility or public body at one site.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::validation::{FieldError, Violations, line_problem, text_problem};
use crate::reference::Reference;

/// Contact person of an actor (never shown to partners unless the actor consented).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Contact {
    pub name: Option<String>,
    pub email: Option<String>,
    pub phone: Option<String>,
}

/// An actor as a client creates or replaces it.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ActorInput {
    pub name: String,
    /// 14 digits, Luhn-checked; optional, unique.
    #[serde(default)]
    pub siret: Option<String>,
    /// NAF rév.2 code, any level (`23.51Z` preferred).
    pub naf_code: String,
    #[serde(default)]
    pub address: Option<String>,
    /// INSEE code of the commune.
    pub commune_insee: String,
    /// Defaults to the commune centroid when lat and lng are both absent.
    #[serde(default)]
    pub lat: Option<f64>,
    #[serde(default)]
    pub lng: Option<f64>,
    #[serde(default)]
    pub contact: Option<Contact>,
    /// Whether partner portals may see the actor's identity.
    #[serde(default)]
    pub share_with_partners: bool,
}

/// A validated actor, ready to store.
#[derive(Debug, Clone, PartialEq)]
pub struct ValidActor {
    pub name: String,
    pub siret: Option<String>,
    pub naf_code: String,
    pub address: Option<String>,
    pub commune_insee: String,
    pub departement: String,
    pub region: String,
    pub epci: Option<String>,
    pub lat: f64,
    pub lng: f64,
    pub contact: Contact,
    pub share_with_partners: bool,
}

pub const MAX_TEXT: usize = 1 << 20;

/// Checks a free-text field: optional blank → None; too long → error.
pub fn clean_text(
    v: &mut Violations,
    field: &str,
    text: Option<&str>,
    max: usize,
) -> Option<String> {
    let text = text.map(str::trim).filter(|t| !t.is_empty())?;
    if text.chars().count() > max {
        v.add(field, format!("must be at most {max} characters"));
    }
    if let Some(problem) = text_problem(text) {
        v.add(field, problem);
    }
    Some(text.to_owned())
}

impl ActorInput {
    pub fn validate(&self, reference: &Reference) -> Result<ValidActor, Vec<FieldError>> {
        let mut v = Violations::new();
        let name = self.name.trim().to_owned();
        if name.is_empty() {
            v.add("name", "must not be empty");
        } else if name.chars().count() > 300 {
            v.add("name", "must be at most 300 characters");
        } else if let Some(problem) = line_problem(&name) {
            v.add("name", problem);
        }
        let siret = match self
            .siret
            .as_deref()
            .map(|s| s.replace(' ', ""))
            .filter(|s| !s.is_empty())
        {
            None => None,
            Some(s) => {
                if let Err(message) = check_siret(&s) {
                    v.add("siret", message);
                }
                Some(s)
            }
        };
        let naf_code = match reference.naf.get(&self.naf_code) {
            Some(entry) => entry.code.clone(),
            None => {
                v.add(
                    "naf_code",
                    format!("`{}` is not a NAF rév.2 code", self.naf_code),
                );
                String::new()
            }
        };
        let commune = reference.geo.commune(self.commune_insee.trim());
        if commune.is_none() {
            v.add(
                "commune_insee",
                format!("`{}` is not an INSEE commune code", self.commune_insee),
            );
        }
        let (lat, lng) = match (self.lat, self.lng) {
            (Some(lat), Some(lng)) => {
                if !(-90.0..=90.0).contains(&lat) {
                    v.add("lat", "must be between -90 and 90");
                }
                if !(-180.0..=180.0).contains(&lng) {
                    v.add("lng", "must be between -180 and 180");
                }
                (lat, lng)
            }
            (None, None) => commune.map(|c| (c.lat, c.lng)).unwrap_or((0.0, 0.0)),
            (Some(_), None) => {
                v.add("lng", "must be given with lat");
                (0.0, 0.0)
            }
            (None, Some(_)) => {
                v.add("lat", "must be given with lng");
                (0.0, 0.0)
            }
        };
        let address = clean_text(&mut v, "address", self.address.as_deref(), 1000);
        let contact = self.contact.clone().unwrap_or_default();
        let contact = Contact {
            name: clean_text(&mut v, "contact.name", contact.name.as_deref(), 300),
            email: clean_text(&mut v, "contact.email", contact.email.as_deref(), 320),
            phone: clean_text(&mut v, "contact.phone", contact.phone.as_deref(), 40),
        };
        if let Some(email) = &contact.email
            && (!email.contains('@') || email.starts_with('@') || email.ends_with('@'))
        {
            v.add("contact.email", "is not an e-mail address");
        }
        let (departement, region, epci) = commune
            .map(|c| (c.departement.clone(), c.region.clone(), c.epci.clone()))
            .unwrap_or_default();
        v.finish(ValidActor {
            name,
            siret,
            naf_code,
            address,
            commune_insee: self.commune_insee.trim().to_owned(),
            departement,
            region,
            epci,
            lat,
            lng,
            contact,
            share_with_partners: self.share_with_partners,
        })
    }
}

/// A SIRET is 14 digits whose Luhn sum is a multiple of 10. La Poste's establishments (SIREN
/// 356000000) follow another rule: their digit sum is a multiple of 5.
pub fn check_siret(siret: &str) -> Result<(), String> {
    if siret.len() != 14 || !siret.bytes().all(|b| b.is_ascii_digit()) {
        return Err("must be 14 digits".into());
    }
    let digits: Vec<u32> = siret.bytes().map(|b| u32::from(b - b'0')).collect();
    if siret.starts_with("356000000") && siret != "35600000000048" {
        return if digits.iter().sum::<u32>() % 5 == 0 {
            Ok(())
        } else {
            Err("fails the La Poste check".into())
        };
    }
    let luhn: u32 = digits
        .iter()
        .rev()
        .enumerate()
        .map(|(i, &d)| {
            if i % 2 == 1 {
                if d * 2 > 9 { d * 2 - 9 } else { d * 2 }
            } else {
                d
            }
        })
        .sum();
    if luhn.is_multiple_of(10) {
        Ok(())
    } else {
        Err("fails the Luhn check".into())
    }
}

/// Makes a Luhn-valid SIRET from 13 leading digits (used by the demo and tests).
pub fn complete_siret(first13: &str) -> Option<String> {
    (0..10)
        .map(|d| format!("{first13}{d}"))
        .find(|s| check_siret(s).is_ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn luhn_siret() {
        // SIRET of the INSEE head office (public).
        assert!(check_siret("12002701600357").is_ok());
        assert!(check_siret("12002701600358").is_err());
        assert!(check_siret("1200270160035").is_err());
        assert!(check_siret("1200270160035a").is_err());
        let made = complete_siret("1234567890123").unwrap_or_default();
        assert!(check_siret(&made).is_ok());
    }
}
