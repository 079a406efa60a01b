//! The two sentences (French, English) that say why a synergy was proposed.

use super::*;

/// "de Lafarge", "d’Établissement anonyme…", "d’Arcelor".
fn de(name: &str) -> String {
    let elides = name
        .chars()
        .next()
        .is_some_and(|c| "aeiouyhàâäéèêëîïôöùûüAEIOUYHÀÂÄÉÈÊËÎÏÔÖÙÛÜ".contains(c));
    if elides {
        format!("d’{name}")
    } else {
        format!("de {name}")
    }
}

/// One-line explanations, French and English.
pub(super) fn explain(
    tax: &Taxonomy,
    offer: Party,
    need: Option<Party>,
    receiver: &IndexedActor,
    a: &Assessment,
) -> (String, String) {
    let code = offer.res.ewc.map(|c| format!(" ({c})")).unwrap_or_default();
    let class = tax.class(offer.res.class);
    let declared = offer.res.label.trim();
    let (label_fr, label_en) = if declared.is_empty() {
        (class.label_fr.as_str(), class.label_en.as_str())
    } else {
        (declared, declared)
    };
    // "Cendres (10 01 02) de Lafarge" / "Fly ash (10 01 02) from Lafarge"; an ad-hoc query's resource
    // has no provider name.
    let provider = offer.actor.name.trim();
    let (from_fr, from_en) = if provider.is_empty() {
        (String::new(), String::new())
    } else {
        (format!(" {}", de(provider)), format!(" from {provider}"))
    };
    let subject_fr = format!("{label_fr}{code}{from_fr}");
    let subject_en = format!("{label_en}{code}{from_en}");
    let who = receiver.name.as_str();
    let (dfr, den) = (km_fr(a.distance_km), km_en(a.distance_km));
    let Some(need) = need else {
        let naf = receiver.naf_code.as_deref().unwrap_or("?");
        let pct = a.rule.map_or(a.fit.value, |r| r.probability) * 100.0;
        let pct_fr = format!("{pct:.0} %");
        let n = a.rule.map_or(0.0, |r| r.exchanges).round();
        let (kfr, ken) = match a.rule.map(|r| (r.level, r.basis)) {
            Some((FitLevel::Pathway, basis)) => {
                let (on_fr, on_en) = match basis {
                    Basis::Provider => (
                        "pour ce type de déchet venant de la même activité",
                        "for this kind of waste from the same activity",
                    ),
                    Basis::Code => ("pour ce code", "for this code"),
                    Basis::Subchapter => ("pour ce sous-chapitre", "for this subchapter"),
                    Basis::Chapter => ("pour ce chapitre", "for this chapter"),
                    Basis::Class | Basis::ParentClass | Basis::Prior => (
                        "pour cette famille de ressources",
                        "for this family of resources",
                    ),
                };
                (
                    format!("activité receveuse documentée, {n} échange(s) {on_fr}"),
                    format!("a documented receiving activity, {n} exchange(s) {on_en}"),
                )
            }
            Some((FitLevel::Profile, _)) => (
                "ressource listée parmi les intrants de son secteur".to_owned(),
                "listed among its sector's inputs".to_owned(),
            ),
            _ => (
                "activité qui reçoit souvent des ressources de cette catégorie".to_owned(),
                "an activity that often takes resources of this category".to_owned(),
            ),
        };
        // The probability is the division's (the fit may be raised for a documented class within it).
        let division = a
            .rule
            .map(|r| r.key.division().to_string())
            .unwrap_or_default();
        let (scope_fr, scope_en) = (
            format!("la division {division} :"),
            format!("division {division}:"),
        );
        let mut fr = format!(
            "{subject_fr} : pourrait intéresser {who} (activité {naf}, {kfr} ; probabilité estimée pour {scope_fr} {pct_fr}) à {dfr}"
        );
        let mut en = format!(
            "{subject_en} could interest {who} (activity {naf}, {ken}; estimated probability for {scope_en} {pct:.0} %) at {den}"
        );
        if offer.res.hazardous {
            fr.push_str(
                " ; déchet dangereux : le receveur doit détenir l’autorisation ICPE pour ce code (rubriques 2770, 2790 ou 3510 à 3560)",
            );
            en.push_str(
                "; hazardous waste: the receiver must hold the permit for this code (French ICPE rubriques 2770, 2790 or 3510–3560)",
            );
        }
        return (fr, en);
    };
    let need_label = need.res.label.trim();
    let (nfr, nen) = if need_label.is_empty() || need_label.eq_ignore_ascii_case(declared) {
        (String::new(), String::new())
    } else {
        (format!(" ({need_label})"), format!(" ({need_label})"))
    };
    let (mut fr, mut en) = match a.coverage {
        Some(c) => {
            let pct = (c * 100.0).round();
            (
                format!(
                    "{subject_fr} : couvre {pct} % du besoin {}{nfr} à {dfr}",
                    de(who)
                ),
                format!("{subject_en} covers {pct} % of {who}'s need{nen} at {den}"),
            )
        }
        None => (
            format!(
                "{subject_fr} : peut répondre au besoin {}{nfr} à {dfr}",
                de(who)
            ),
            format!("{subject_en} could meet {who}'s need{nen} at {den}"),
        ),
    };
    let (why_fr, why_en) = match a.fit.level {
        FitLevel::Code => ("code déchet accepté", "accepted waste code"),
        FitLevel::ParentClass => ("classe voisine", "related class"),
        _ => ("", ""),
    };
    if !why_fr.is_empty() {
        fr.push_str(&format!(" ; {why_fr}"));
        en.push_str(&format!("; {why_en}"));
    }
    if let (Some(to), Some(tn)) = (offer.res.temperature_c, need.res.temperature_c) {
        fr.push_str(&format!(" ; chaleur à {to:.0} °C pour {tn:.0} °C requis"));
        en.push_str(&format!("; heat at {to:.0} °C for {tn:.0} °C required"));
    }
    if let Some(hp) = a.heat_pump {
        let cop_fr = format!("{:.1}", hp.cop).replace('.', ",");
        let elec = hp
            .electricity_mwh_per_year
            .map(|e| {
                (
                    format!(", {e:.0} MWh/an d’électricité"),
                    format!(", {e:.0} MWh/yr of electricity"),
                )
            })
            .unwrap_or_default();
        fr.push_str(&format!(
            " ; via une pompe à chaleur : relèvement de {:.0} K, COP {cop_fr}{}",
            hp.lift_k, elec.0
        ));
        en.push_str(&format!(
            "; through a heat pump: {:.0} K lift, COP {:.1}{}",
            hp.lift_k, hp.cop, elec.1
        ));
    }
    if offer.res.hazardous {
        fr.push_str(" ; déchet dangereux : autorisation ICPE du receveur requise pour ce code");
        en.push_str("; hazardous waste: the receiver needs the permit for this code");
    }
    (fr, en)
}
