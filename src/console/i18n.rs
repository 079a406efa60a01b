//! The console's words, in French (default) and English.

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lang {
    Fr,
    En,
}

impl Lang {
    pub fn parse(text: &str) -> Option<Lang> {
        match text {
            "fr" => Some(Lang::Fr),
            "en" => Some(Lang::En),
            _ => None,
        }
    }

    pub fn code(self) -> &'static str {
        match self {
            Lang::Fr => "fr",
            Lang::En => "en",
        }
    }

    pub fn other(self) -> Lang {
        match self {
            Lang::Fr => Lang::En,
            Lang::En => Lang::Fr,
        }
    }

    pub fn t(self, key: &str) -> &'static str {
        match WORDS.iter().find(|(k, _, _)| *k == key) {
            Some((_, fr, en)) => match self {
                Lang::Fr => fr,
                Lang::En => en,
            },
            None => "?",
        }
    }

    /// A number with a thin grouping and `decimals` digits, in the reader's convention.
    pub fn num(self, value: f64, decimals: usize) -> String {
        if !value.is_finite() {
            return "—".into();
        }
        let text = format!("{:.*}", decimals, value.abs());
        let (int, frac) = text.split_once('.').unwrap_or((&text, ""));
        let mut grouped = String::new();
        for (i, c) in int.chars().enumerate() {
            if i > 0 && (int.len() - i) % 3 == 0 {
                grouped.push(match self {
                    Lang::Fr => '\u{202f}',
                    Lang::En => ',',
                });
            }
            grouped.push(c);
        }
        let sign = if value < 0.0 && text.chars().any(|c| c.is_ascii_digit() && c != '0') {
            "−"
        } else {
            ""
        };
        if frac.is_empty() {
            format!("{sign}{grouped}")
        } else {
            let point = match self {
                Lang::Fr => ',',
                Lang::En => '.',
            };
            format!("{sign}{grouped}{point}{frac}")
        }
    }

    /// The label of a synergy status.
    pub fn status(self, status: &str) -> &'static str {
        match status {
            "detected" => self.t("status.detected"),
            "proposed" => self.t("status.proposed"),
            "in_study" => self.t("status.in_study"),
            "implemented" => self.t("status.implemented"),
            "rejected" => self.t("status.rejected"),
            "abandoned" => self.t("status.abandoned"),
            _ => "?",
        }
    }
}

/// (key, French, English).
const WORDS: &[(&str, &str, &str)] = &[
    ("app", "Console symbiose", "symbiose console"),
    ("skip", "Aller au contenu", "Skip to content"),
    ("switch", "English", "Français"),
    ("nav.home", "Territoire", "Territory"),
    ("nav.map", "Carte", "Map"),
    ("nav.synergies", "Synergies", "Synergies"),
    ("nav.pipeline", "Suivi", "Pipeline"),
    ("nav.import", "Import", "Import"),
    ("nav.actors", "Acteurs", "Actors"),
    (
        "actors.naf",
        "Activité : code NAF ou début de code (ex. 16.10, 38), recherche en tapant",
        "Activity: NAF code or prefix (e.g. 16.10, 38), searched as you type",
    ),
    (
        "actors.q",
        "Nom, adresse ou SIRET",
        "Name, address or SIRET",
    ),
    (
        "actors.none",
        "Aucun acteur ne correspond.",
        "No actor matches.",
    ),
    (
        "actor.accepted",
        "Codes déchets acceptés (besoins ; séparés par des virgules)",
        "Accepted waste codes (needs; comma-separated)",
    ),
    (
        "nav.territories",
        "Choisir un territoire",
        "Pick a territory",
    ),
    ("logout", "Se déconnecter", "Sign out"),
    ("login.title", "Connexion", "Sign in"),
    ("login.key", "Clé d’API", "API key"),
    (
        "login.help",
        "Collez la clé qui vous a été remise (sym_…). Elle décide de ce que vous voyez et pouvez faire, comme dans l’API.",
        "Paste the key you were given (sym_…). It decides what you see and may do, as in the API.",
    ),
    ("login.submit", "Se connecter", "Sign in"),
    (
        "login.bad",
        "Clé inconnue ou révoquée.",
        "Unknown or revoked key.",
    ),
    (
        "login.expired",
        "Le formulaire a expiré : réessayez.",
        "The form expired: try again.",
    ),
    ("role", "Rôle", "Role"),
    ("role.admin", "administration", "admin"),
    ("role.facilitator", "animation", "facilitator"),
    (
        "role.partner",
        "partenaire (vue anonymisée)",
        "partner (anonymised view)",
    ),
    ("scope.national", "national", "national"),
    ("pick.title", "Territoires", "Territories"),
    (
        "pick.search",
        "Rechercher un territoire (nom ou code)",
        "Search a territory (name or code)",
    ),
    ("pick.go", "Chercher", "Search"),
    (
        "pick.none",
        "Aucun territoire trouvé.",
        "No territory found.",
    ),
    ("pick.yours", "Vos territoires", "Your territories"),
    ("pick.zones", "Zones personnalisées", "Custom zones"),
    ("kind.country", "pays", "country"),
    ("kind.region", "région", "region"),
    ("kind.departement", "département", "département"),
    ("kind.epci", "EPCI", "EPCI"),
    ("kind.commune", "commune", "commune"),
    ("kind.zone", "zone", "zone"),
    ("home.funnel", "Entonnoir des synergies", "Synergy funnel"),
    ("home.outcomes", "Résultats", "Outcomes"),
    ("home.implemented", "Mises en œuvre", "Implemented"),
    (
        "home.in_progress",
        "En cours (proposées, à l’étude)",
        "Under way (proposed, in study)",
    ),
    (
        "home.diverted",
        "t/an détournées de l’élimination",
        "t/yr diverted from disposal",
    ),
    ("home.co2", "t CO2e/an évitées", "t CO2e/yr avoided"),
    ("home.exchanged", "t/an échangées", "t/yr exchanged"),
    (
        "home.imports",
        "t/an d’importations évitées",
        "t/yr of imports avoided",
    ),
    ("home.best", "Meilleures synergies", "Best synergies"),
    ("home.all", "Toutes les synergies", "All synergies"),
    (
        "home.afme",
        "Analyse des flux de matières (AFME)",
        "Material flow accounts (AFME)",
    ),
    (
        "home.no_afme",
        "Pas de compte AFME pour ce territoire.",
        "No AFME account for this territory.",
    ),
    ("home.year", "Année", "Year"),
    ("home.indicator", "Indicateur", "Indicator"),
    ("home.value", "Valeur (t)", "Value (t)"),
    ("home.per_capita", "t/hab.", "t/inh."),
    (
        "home.sankey",
        "Diagramme de Sankey des flux (kt)",
        "Sankey diagram of the flows (kt)",
    ),
    (
        "home.priorities",
        "Priorités territoriales par famille",
        "Territorial priorities by family",
    ),
    ("home.family", "Famille", "Family"),
    (
        "home.import_dep",
        "Dépendance aux importations",
        "Import dependence",
    ),
    ("home.landfill", "Part enfouie", "Landfill share"),
    ("home.dmc_weight", "Poids dans la DMC", "Weight in DMC"),
    ("home.priority", "Priorité", "Priority"),
    (
        "home.neutral",
        "Sans compte AFME, toutes les familles ont la priorité neutre 0,5.",
        "Without an AFME account, every family has the neutral priority 0.5.",
    ),
    ("home.balance", "Écart de bilan", "Balance gap"),
    ("syn.provider", "Fournisseur", "Provider"),
    ("syn.receiver", "Receveur", "Receiver"),
    ("syn.offer", "Offre", "Offer"),
    ("syn.score", "Score", "Score"),
    ("syn.status", "Statut", "Status"),
    ("syn.class", "Classe", "Class"),
    ("syn.kind", "Type", "Kind"),
    ("syn.distance", "Distance", "Distance"),
    ("syn.quantity", "Quantité/an", "Quantity/yr"),
    ("syn.latent", "latente", "latent"),
    ("syn.declared", "déclarée", "declared"),
    ("syn.substitution", "substitution", "substitution"),
    ("syn.pooling", "mutualisation", "pooling"),
    ("syn.members", "membres", "members"),
    ("syn.why", "Pourquoi", "Why"),
    ("syn.components", "Composantes du score", "Score components"),
    ("syn.impact", "Impacts", "Impacts"),
    (
        "syn.none",
        "Aucune synergie ne correspond.",
        "No synergy matches.",
    ),
    ("syn.next", "Page suivante", "Next page"),
    ("filter.title", "Filtres", "Filters"),
    ("filter.territory", "Territoire (code)", "Territory (code)"),
    ("filter.kind", "Type", "Kind"),
    ("filter.any", "tous", "any"),
    (
        "filter.class",
        "Classe (préfixe, ex. material/biomass)",
        "Class (prefix, e.g. material/biomass)",
    ),
    ("filter.status", "Statut", "Status"),
    (
        "filter.min_score",
        "Score minimal (0–1)",
        "Minimum score (0–1)",
    ),
    ("filter.latent", "Latentes", "Latent"),
    ("filter.latent_only", "seulement latentes", "latent only"),
    (
        "filter.declared_only",
        "seulement déclarées",
        "declared only",
    ),
    ("filter.apply", "Filtrer", "Filter"),
    ("status.detected", "détectée", "detected"),
    ("status.proposed", "proposée", "proposed"),
    ("status.in_study", "à l’étude", "in study"),
    ("status.implemented", "mise en œuvre", "implemented"),
    ("status.rejected", "refusée", "rejected"),
    ("status.abandoned", "abandonnée", "abandoned"),
    ("pipe.title", "Suivi des synergies", "Synergy pipeline"),
    ("pipe.comment", "Commentaire", "Comment"),
    (
        "pipe.reason",
        "Motif (pour refus ou abandon)",
        "Reason (to reject or abandon)",
    ),
    ("pipe.move", "Passer à", "Move to"),
    ("pipe.moved", "Statut changé.", "Status changed."),
    (
        "pipe.more",
        "synergies de plus, non affichées (voir la liste filtrée)",
        "more synergies not shown (see the filtered list)",
    ),
    (
        "pipe.truncated",
        "Le tableau lit les 500 synergies les mieux classées ; les comptes exacts sont sur la page du territoire.",
        "The board reads the 500 best-ranked synergies; exact counts are on the territory page.",
    ),
    ("pipe.history", "Historique", "History"),
    ("actor.resources", "Ressources", "Resources"),
    ("actor.matches", "Correspondances", "Matches"),
    (
        "actor.no_match",
        "Aucune correspondance pour l’instant.",
        "No match yet.",
    ),
    (
        "actor.declare",
        "Déclarer une offre ou un besoin",
        "Declare an offer or a need",
    ),
    ("actor.kind", "Nature", "Kind"),
    ("actor.offer", "offre", "offer"),
    ("actor.need", "besoin", "need"),
    ("actor.category", "Catégorie", "Category"),
    ("actor.label", "Libellé", "Label"),
    (
        "actor.ewc",
        "Code déchet (LoW/EWC, ex. 03 01 05)",
        "Waste code (LoW/EWC, e.g. 03 01 05)",
    ),
    ("actor.quantity", "Quantité", "Quantity"),
    ("actor.unit", "Unité", "Unit"),
    ("actor.period", "Période", "Period"),
    (
        "actor.temperature",
        "Température (°C, chaleur)",
        "Temperature (°C, heat)",
    ),
    ("actor.description", "Description", "Description"),
    ("actor.submit", "Déclarer", "Declare"),
    ("actor.created", "Ressource déclarée.", "Resource declared."),
    (
        "actor.invalid",
        "Le formulaire contient des erreurs.",
        "The form has errors.",
    ),
    ("actor.naf", "Activité (NAF)", "Activity (NAF)"),
    ("actor.commune", "Commune", "Commune"),
    (
        "actor.hidden",
        "Acteur anonymisé : il n’a pas consenti au partage.",
        "Anonymised actor: it did not consent to sharing.",
    ),
    (
        "actor.illustrative",
        "Données illustratives (démo).",
        "Illustrative data (demo).",
    ),
    (
        "actor.partner_readonly",
        "Les clés partenaires lisent seulement.",
        "Partner keys read only.",
    ),
    ("map.title", "Carte", "Map"),
    ("map.legend", "Légende", "Legend"),
    (
        "map.actor",
        "acteur (couleur : famille AFME principale)",
        "actor (colour: main AFME family)",
    ),
    (
        "map.line",
        "synergie (épaisseur : tonnage, couleur : statut)",
        "synergy (width: tonnage, colour: status)",
    ),
    ("map.pool", "groupe de mutualisation", "pooling group"),
    ("map.exports", "Exports", "Exports"),
    ("map.n_actors", "acteurs", "actors"),
    (
        "map.n_lines",
        "synergies (les mieux classées)",
        "synergies (best ranked)",
    ),
    ("map.n_pools", "groupes de mutualisation", "pooling groups"),
    (
        "map.anon",
        "Les acteurs anonymisés sont placés au centroïde de leur commune.",
        "Anonymised actors sit at their commune's centroid.",
    ),
    ("import.title", "Import en masse (CSV)", "Bulk import (CSV)"),
    (
        "import.file",
        "Fichier CSV (format docs/IMPORT.md)",
        "CSV file (format docs/IMPORT.md)",
    ),
    ("import.submit", "Importer", "Import"),
    ("import.ok", "Import réussi.", "Import done."),
    (
        "import.bad",
        "Rien n’a été enregistré : corrigez ces lignes.",
        "Nothing was stored: fix these rows.",
    ),
    ("import.line", "Ligne", "Line"),
    ("import.column", "Colonne", "Column"),
    ("import.message", "Message", "Message"),
    ("import.empty", "Choisissez un fichier.", "Choose a file."),
    ("error.title", "Erreur", "Error"),
    ("error.back", "Retour", "Back"),
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_follow_the_reader() {
        assert_eq!(Lang::Fr.num(1234567.891, 1), "1\u{202f}234\u{202f}567,9");
        assert_eq!(Lang::En.num(1234567.891, 0), "1,234,568");
        assert_eq!(Lang::En.num(-12.5, 1), "−12.5");
        assert_eq!(Lang::En.num(-0.01, 1), "0.0");
        assert_eq!(Lang::En.num(f64::NAN, 1), "—");
    }

    #[test]
    fn every_word_exists_in_both_languages() {
        for (key, fr, en) in WORDS {
            assert!(!fr.is_empty() && !en.is_empty(), "{key}");
        }
        assert_eq!(Lang::Fr.t("nav.map"), "Carte");
        assert_eq!(Lang::En.t("nav.map"), "Map");
    }
}
