//! Labels of the account in the reader's language (French by default, English): indicators, flow
//! types, Sankey nodes and families. The engine computes with codes; the API calls these before it
//! answers.

use super::families::FamilyTable;
use super::indicators::AccountIndicators;
use super::model::{Family, FlowType, Partner};
use super::sankey::Sankey;
use crate::reference::Lang;

/// The label of an indicator code (`DMI`, `DPO_LANDFILL`, `E_IMP`…), `None` for an unknown code.
pub fn indicator_label(code: &str, lang: Lang) -> Option<&'static str> {
    let (fr, en) = match code {
        "DE" => ("extraction intérieure utilisée", "domestic extraction used"),
        "UDE" => (
            "extraction intérieure inutilisée",
            "unused domestic extraction",
        ),
        "IMP" => ("importations", "imports"),
        "EXP" => ("exportations", "exports"),
        "DPO_AIR" => ("émissions vers l'air", "emissions to air"),
        "DPO_WATER" => ("émissions vers l'eau", "emissions to water"),
        "DPO_SOIL" => (
            "émissions vers le sol et flux dissipatifs",
            "emissions to soil and dissipative flows",
        ),
        "DPO_LANDFILL" => ("déchets mis en décharge", "waste landfilled"),
        "DPO" => (
            "émissions et déchets vers la nature (DPO)",
            "domestic processed output",
        ),
        "BI_IN" => (
            "éléments d'équilibrage (entrées)",
            "balancing items (input side)",
        ),
        "BI_OUT" => (
            "éléments d'équilibrage (sorties)",
            "balancing items (output side)",
        ),
        "NAS" => ("addition nette au stock", "net addition to stock"),
        "NAS_RESIDUAL" => (
            "addition nette au stock, résidu du bilan",
            "net addition to stock, as the balance residual",
        ),
        "RECYCLING" => ("recyclage (pour mémoire)", "recycling (memo item)"),
        "DMI" => (
            "besoin apparent en matières (entrées directes, DMI)",
            "direct material input",
        ),
        "DMC" => (
            "consommation intérieure apparente de matières (DMC)",
            "domestic material consumption",
        ),
        "PTB" => ("balance commerciale physique", "physical trade balance"),
        "LEPO" => (
            "sorties locales et exportées vers la nature (LEPO, Barles 2009)",
            "local and exported processed output (Barles 2009)",
        ),
        "DMC_CORR" => (
            "DMC corrigée des échanges de déchets (Barles 2009)",
            "DMC corrected for waste trade (Barles 2009)",
        ),
        "E_DE" => ("production locale d'énergie", "local energy production"),
        "E_IMP" => ("importations d'énergie", "energy imports"),
        "E_EXP" => ("exportations d'énergie", "energy exports"),
        "E_CONSUMPTION" => (
            "consommation apparente d'énergie",
            "apparent energy consumption",
        ),
        _ => return None,
    };
    Some(lang.pick(fr, en))
}

/// The label of a flow type.
pub fn flow_label(flow: FlowType, lang: Lang) -> &'static str {
    indicator_label(flow.as_str(), lang).unwrap_or_else(|| flow.label())
}

/// A family's label from the family table (`Matériaux de construction`); the code for `all` and
/// for a family the table does not describe.
pub fn family_label(family: Family, lang: Lang) -> String {
    if family.is_all() {
        return lang.pick("toutes familles", "all families").to_owned();
    }
    FamilyTable::builtin()
        .info(family)
        .map(|info| lang.pick(&info.label_fr, &info.label_en).to_owned())
        .unwrap_or_else(|| family.as_str().to_owned())
}

/// Rewrites every indicator label in the reader's language.
pub fn localise_indicators(indicators: &mut AccountIndicators, lang: Lang) {
    let mut all: Vec<&mut super::indicators::Indicator> = vec![
        &mut indicators.de,
        &mut indicators.ude,
        &mut indicators.imp,
        &mut indicators.exp,
        &mut indicators.bi_in,
        &mut indicators.bi_out,
        &mut indicators.dmi,
        &mut indicators.dmc,
        &mut indicators.ptb,
        &mut indicators.dpo,
        &mut indicators.nas_residual,
    ];
    all.extend(indicators.dpo_parts.iter_mut());
    all.extend(indicators.nas_declared.iter_mut());
    all.extend(indicators.recycling.iter_mut());
    all.extend(indicators.lepo.iter_mut());
    all.extend(indicators.dmc_corr.iter_mut());
    if let Some(energy) = indicators.energy.as_mut() {
        all.extend([
            &mut energy.production,
            &mut energy.imports,
            &mut energy.exports,
            &mut energy.apparent_consumption,
        ]);
    }
    for indicator in all {
        if let Some(label) = indicator_label(&indicator.code, lang) {
            indicator.label = label.to_owned();
        }
    }
}

/// The name of a Sankey node standing for a flow (and its partner).
pub fn sankey_node_name(flow: FlowType, partner: Option<&Partner>, lang: Lang) -> String {
    let base = match (flow, lang) {
        (FlowType::De, Lang::Fr) => "Extraction intérieure (DE)",
        (FlowType::De, Lang::En) => "Domestic extraction (DE)",
        (FlowType::Imp, Lang::Fr) => "Importations (IMP)",
        (FlowType::Imp, Lang::En) => "Imports (IMP)",
        (FlowType::Exp, Lang::Fr) => "Exportations (EXP)",
        (FlowType::Exp, Lang::En) => "Exports (EXP)",
        (FlowType::BiIn, Lang::Fr) => "Éléments d'équilibrage, entrées (BI_IN)",
        (FlowType::BiIn, Lang::En) => "Balancing items, input (BI_IN)",
        (FlowType::BiOut, Lang::Fr) => "Éléments d'équilibrage, sorties (BI_OUT)",
        (FlowType::BiOut, Lang::En) => "Balancing items, output (BI_OUT)",
        (FlowType::Nas, Lang::Fr) => "Addition nette au stock (NAS)",
        (FlowType::Nas, Lang::En) => "Net addition to stock (NAS)",
        (FlowType::Dpo, Lang::Fr) => "Émissions et déchets, non ventilés (DPO)",
        (FlowType::Dpo, Lang::En) => "Emissions and waste, undivided (DPO)",
        (FlowType::DpoAir, Lang::Fr) => "Émissions vers l'air (DPO)",
        (FlowType::DpoAir, Lang::En) => "Emissions to air (DPO)",
        (FlowType::DpoWater, Lang::Fr) => "Émissions vers l'eau (DPO)",
        (FlowType::DpoWater, Lang::En) => "Emissions to water (DPO)",
        (FlowType::DpoSoil, Lang::Fr) => "Émissions vers le sol, dissipatives (DPO)",
        (FlowType::DpoSoil, Lang::En) => "Emissions to soil, dissipative (DPO)",
        (FlowType::DpoLandfill, Lang::Fr) => "Déchets mis en décharge (DPO)",
        (FlowType::DpoLandfill, Lang::En) => "Waste landfilled (DPO)",
        (other, _) => other.as_str(),
    };
    match partner {
        Some(Partner::RestOfFrance) => {
            format!(
                "{base} — {}",
                lang.pick("reste de la France", "rest of France")
            )
        }
        Some(Partner::Abroad) => format!("{base} — {}", lang.pick("étranger", "abroad")),
        Some(Partner::Territory(code)) => format!("{base} — {code}"),
        None => base.to_owned(),
    }
}

/// Renames the flow nodes of a Sankey in the reader's language (the territory node keeps its
/// name). Nodes stay where they are, so links are unchanged.
pub fn localise_sankey(sankey: &mut Sankey, lang: Lang) {
    for node in &mut sankey.nodes {
        if let Some(flow) = node.flow {
            node.name = sankey_node_name(flow, node.partner.as_ref(), lang);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_flow_has_a_label_in_both_languages() {
        for flow in FlowType::ALL {
            let fr = flow_label(*flow, Lang::Fr);
            let en = flow_label(*flow, Lang::En);
            assert!(!fr.is_empty() && !en.is_empty());
            assert_ne!(fr, en, "{flow}");
            // UDE and the recycling memo are not drawn
            if matches!(flow, FlowType::Ude | FlowType::Recycling) {
                continue;
            }
            assert_ne!(
                sankey_node_name(*flow, None, Lang::Fr),
                sankey_node_name(*flow, None, Lang::En),
                "{flow}"
            );
        }
        assert_eq!(
            family_label(Family::FossilFuels, Lang::Fr),
            "Combustibles fossiles"
        );
        assert_eq!(family_label(Family::FossilFuels, Lang::En), "Fossil fuels");
    }
}
