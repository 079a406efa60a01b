use super::*;
use crate::matching::knowledge::Knowledge;
use crate::matching::score::NeutralPriority;
use crate::matching::snapshot::{SnapActor, SnapResource};
use crate::matching::taxonomy::Taxonomy;
use std::path::Path;

const LAT: f64 = 47.32;
const LNG: f64 = 5.04;

#[derive(Default)]
struct World {
    actors: Vec<SnapActor>,
    resources: Vec<SnapResource>,
    next: u128,
}

impl World {
    fn id(&mut self) -> Uuid {
        self.next += 1;
        Uuid::from_u128(self.next * 7919)
    }

    /// An actor `east` and `north` km from the origin.
    fn actor(&mut self, name: &str, naf: &str, east: f64, north: f64) -> Uuid {
        let id = self.id();
        self.actors.push(SnapActor {
            id,
            name: name.into(),
            naf_code: Some(naf.into()),
            lat: LAT + north / 111.2,
            lng: LNG + east / (111.2 * LAT.to_radians().cos()),
            commune: "21231".into(),
        });
        id
    }

    fn add(
        &mut self,
        actor: Uuid,
        kind: ResourceKind,
        class: &str,
        code: Option<&str>,
        qty: Option<f64>,
        label: &str,
    ) -> &mut SnapResource {
        let id = self.id();
        let tax = Taxonomy::builtin().expect("taxonomy");
        let unit = tax.get(class).map(|c| c.base_unit);
        self.resources.push(SnapResource {
            id,
            actor_id: actor,
            kind,
            class: class.into(),
            ewc_code: code.map(Into::into),
            accepted_ewc: vec![],
            hazardous: false,
            yearly_quantity: qty,
            base_unit: unit,
            months: 0,
            temperature_c: None,
            max_distance_km: None,
            label: label.into(),
        });
        self.resources.last_mut().expect("just pushed")
    }

    fn snapshot(&self) -> Snapshot {
        let t = Taxonomy::builtin().expect("taxonomy");
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../shared/reference/cases/maestri_exchanges_part_a.csv"
        );
        let k = Knowledge::load(Path::new(path), &t).expect("knowledge");
        let snap = Snapshot::build(self.actors.clone(), self.resources.clone(), &t, &k);
        assert!(snap.skipped().is_empty(), "{:?}", snap.skipped());
        snap
    }
}

fn matches(snap: &Snapshot, id: Uuid) -> Vec<Synergy> {
    matches_for_resource(snap, id, &MatchingSettings::default(), &NeutralPriority).expect("matches")
}

fn receivers(found: &[Synergy], snap: &Snapshot) -> Vec<String> {
    found
        .iter()
        .map(|s| {
            snap.actors()[snap.actor_index(s.receiver_actor_id).expect("actor") as usize]
                .name
                .clone()
        })
        .collect()
}

/// Fly ash from a power plant: a cement works that accepts the code, a brick works needing ash but
/// farther, a concrete plant needing aggregates (profile level).
fn fly_ash_world() -> (World, Uuid) {
    let mut w = World::default();
    let plant = w.actor("Centrale", "35.11Z", 0.0, 0.0);
    let cement = w.actor("Cimenterie", "23.51Z", 20.0, 0.0);
    let bricks = w.actor("Briqueterie", "23.32Z", 0.0, 60.0);
    let concrete = w.actor("Béton", "23.63Z", -15.0, 0.0);
    let offer = w
        .add(
            plant,
            ResourceKind::Offer,
            "material/mineral/ash",
            Some("100102"),
            Some(1000.0),
            "Cendres volantes",
        )
        .id;
    w.add(
        cement,
        ResourceKind::Need,
        "material/mineral/ash",
        None,
        Some(800.0),
        "Ajouts cimentiers",
    )
    .accepted_ewc = vec!["10 01 02".into()];
    w.add(
        bricks,
        ResourceKind::Need,
        "material/mineral/ash",
        None,
        Some(5000.0),
        "Dégraissant",
    );
    w.add(
        concrete,
        ResourceKind::Need,
        "material/mineral/aggregates",
        None,
        Some(500.0),
        "Sables",
    );
    (w, offer)
}

#[test]
fn the_right_partner_ranks_first_with_an_explanation() {
    let (w, offer) = fly_ash_world();
    let snap = w.snapshot();
    let found = matches(&snap, offer);
    // The concrete plant needs aggregates, not ash: it comes last, as a latent receiver of its
    // activity (fly ash → division 23 is documented), below the brick works' declared need.
    assert_eq!(
        receivers(&found, &snap),
        ["Cimenterie", "Briqueterie", "Béton"]
    );
    let best = &found[0];
    assert_eq!(best.fit_level, FitLevel::Code);
    assert!(!best.latent);
    assert_eq!(best.quantity, Some(800.0));
    assert_eq!(best.coverage, Some(1.0));
    assert!(
        (best.distance_km - 20.0).abs() < 0.5,
        "{}",
        best.distance_km
    );
    assert!(best.score > found[1].score && (0.0..=1.0).contains(&best.score));
    assert!(
        best.explanation_fr.starts_with("Cendres volantes (10 01 02) de Centrale : couvre 100 % du besoin de Cimenterie (Ajouts cimentiers) à 20 km"),
        "{}",
        best.explanation_fr
    );
    assert!(
        best.explanation_en
            .contains("covers 100 % of Cimenterie's need"),
        "{}",
        best.explanation_en
    );
    assert_eq!(best.id, synergy_id(offer, best.need_id.expect("declared")));
    let impact = best.impact.as_ref().expect("impact");
    assert!(impact.co2e_avoided_t > impact.transport_co2e_t && impact.net_co2e_t > 0.0);
    assert_eq!(found[1].fit_level, FitLevel::SameClass);
    assert_eq!(found[2].fit_level, FitLevel::Pathway);
    assert!(found[2].latent && found[2].need_id.is_none());
    // The same synergy seen from the need's side has the same id and score.
    let from_need = matches(&snap, best.need_id.expect("need"));
    let same = from_need
        .iter()
        .find(|s| s.id == best.id)
        .expect("found from the need side");
    assert!((same.score - best.score).abs() < 1e-12);
}

#[test]
fn distance_rules_change_the_outcome() {
    let mut w = World::default();
    let sawmill = w.actor("Scierie", "16.10A", 0.0, 0.0);
    let near = w.actor("Chaufferie proche", "35.30Z", 10.0, 0.0);
    let far = w.actor("Chaufferie lointaine", "35.30Z", 90.0, 0.0);
    let too_far = w.actor("Chaufferie hors rayon", "35.30Z", 0.0, 200.0);
    let picky = w.actor("Chaufferie exigeante", "35.30Z", 0.0, 12.0);
    let offer = w
        .add(
            sawmill,
            ResourceKind::Offer,
            "material/biomass/wood",
            Some("030105"),
            Some(500.0),
            "Sciure",
        )
        .id;
    for a in [far, near, too_far] {
        w.add(
            a,
            ResourceKind::Need,
            "material/biomass/wood",
            None,
            Some(500.0),
            "Plaquettes",
        );
    }
    w.add(
        picky,
        ResourceKind::Need,
        "material/biomass/wood",
        None,
        Some(500.0),
        "Plaquettes",
    )
    .max_distance_km = Some(5.0);
    let snap = w.snapshot();
    let names = receivers(&matches(&snap, offer), &snap);
    assert_eq!(names, ["Chaufferie proche", "Chaufferie lointaine"]);
}

#[test]
fn quantity_rules_change_the_outcome() {
    let mut w = World::default();
    let dairy = w.actor("Laiterie", "10.51A", 0.0, 0.0);
    let small = w.actor("Petit élevage", "01.41Z", 8.0, 0.0);
    let sized = w.actor("Élevage à la taille", "01.41Z", -8.0, 0.0);
    let huge = w.actor("Grand élevage", "01.41Z", 0.0, 8.0);
    let offer = w
        .add(
            dairy,
            ResourceKind::Offer,
            "material/biomass/food",
            Some("020501"),
            Some(100.0),
            "Lactosérum",
        )
        .id;
    w.add(
        small,
        ResourceKind::Need,
        "material/biomass/food",
        None,
        Some(10.0),
        "Aliment",
    );
    w.add(
        sized,
        ResourceKind::Need,
        "material/biomass/food",
        None,
        Some(100.0),
        "Aliment",
    );
    w.add(
        huge,
        ResourceKind::Need,
        "material/biomass/food",
        None,
        Some(5000.0),
        "Aliment",
    );
    let snap = w.snapshot();
    let found = matches(&snap, offer);
    assert_eq!(
        receivers(&found, &snap),
        ["Élevage à la taille", "Petit élevage", "Grand élevage"]
    );
    assert_eq!(found[2].coverage, Some(0.02));
    assert_eq!(found[2].quantity, Some(100.0));
}

#[test]
fn temperature_rule_changes_the_outcome() {
    let mut w = World::default();
    let dc = w.actor("Data center", "63.11Z", 0.0, 0.0);
    let pool = w.actor("Piscine", "93.11Z", 1.0, 0.0);
    let network = w.actor("Réseau de chaleur", "35.30Z", 0.0, 1.5);
    let offer = w.add(
        dc,
        ResourceKind::Offer,
        "energy/heat/low_temperature",
        None,
        Some(2000.0),
        "Chaleur fatale",
    );
    offer.temperature_c = Some(60.0);
    let offer = offer.id;
    w.add(
        pool,
        ResourceKind::Need,
        "energy/heat/low_temperature",
        None,
        Some(800.0),
        "Chauffage bassin",
    )
    .temperature_c = Some(45.0);
    w.add(
        network,
        ResourceKind::Need,
        "energy/heat/low_temperature",
        None,
        Some(800.0),
        "Retour réseau",
    )
    .temperature_c = Some(55.0);
    let snap = w.snapshot();
    let found = matches(&snap, offer);
    // 60 °C serves the pool directly; the network's 55 °C + ΔT 10 needs a heat pump (5 K lift),
    // which ranks below direct use.
    assert_eq!(receivers(&found, &snap), ["Piscine", "Réseau de chaleur"]);
    assert!(found[0].heat_pump.is_none());
    assert!(
        found[0]
            .explanation_fr
            .contains("chaleur à 60 °C pour 45 °C requis"),
        "{}",
        found[0].explanation_fr
    );
    let hp = found[1].heat_pump.expect("heat pump variant");
    assert!((hp.lift_k - 5.0).abs() < 1e-9);
    // Carnot 338.15 K / 5 K × 0.5.
    assert!((hp.cop - 338.15 / 5.0 * 0.5).abs() < 1e-6, "{hp:?}");
    // The exchangeable heat is the need's 800 MWh; the pump's electricity is that over the COP.
    let e = hp.electricity_mwh_per_year.expect("electricity");
    assert!((e - 800.0 / hp.cop).abs() < 1e-6, "{e}");
    assert!(
        found[1].explanation_en.contains("heat pump"),
        "{}",
        found[1].explanation_en
    );
    let lax = MatchingSettings {
        heat_delta_t_c: 3.0,
        ..MatchingSettings::default()
    };
    let found = matches_for_resource(&snap, offer, &lax, &NeutralPriority).expect("matches");
    assert_eq!(receivers(&found, &snap), ["Piscine", "Réseau de chaleur"]);
}

#[test]
fn hazardous_wastes_only_go_to_receivers_accepting_the_code() {
    let mut w = World::default();
    let garage = w.actor("Garage", "45.20A", 0.0, 0.0);
    let generic = w.actor("Collecteur", "38.12Z", 5.0, 0.0);
    let regenerator = w.actor("Régénérateur", "38.22Z", 30.0, 0.0);
    let refinery = w.actor("Raffinerie", "19.20Z", 3.0, 0.0);
    let offer = w.add(
        garage,
        ResourceKind::Offer,
        "material/oil/mineral_oil",
        Some("130205*"),
        Some(12.0),
        "Huiles moteur usagées",
    );
    offer.hazardous = true;
    let offer = offer.id;
    w.add(
        generic,
        ResourceKind::Need,
        "material/oil/mineral_oil",
        None,
        Some(100.0),
        "Huiles",
    );
    w.add(
        regenerator,
        ResourceKind::Need,
        "material/oil",
        None,
        Some(100.0),
        "Huiles à régénérer",
    )
    .accepted_ewc = vec!["130205".into()];
    let _ = refinery;
    let snap = w.snapshot();
    let found = matches(&snap, offer);
    let declared: Vec<&Synergy> = found.iter().filter(|s| !s.latent).collect();
    assert_eq!(declared.len(), 1);
    assert_eq!(
        snap.actor_index(declared[0].receiver_actor_id)
            .map(|i| snap.actor(i).name.as_str()),
        Some("Régénérateur")
    );
    assert!(declared[0].components.regulatory_risk < 0.5);
    // The refinery declared nothing: a latent receiver, flagged, with the permit in the sentence.
    let latent: Vec<&Synergy> = found.iter().filter(|s| s.latent).collect();
    assert!(!latent.is_empty());
    assert!(found.iter().all(|s| s.requires_authorisation));
    assert!(
        latent[0].explanation_fr.contains("autorisation ICPE"),
        "{}",
        latent[0].explanation_fr
    );
    assert!(latent.iter().all(|s| s.components.regulatory_risk < 0.5));
    // The collector's need for oils does not accept the code: never matched as a declared need.
    assert!(found.iter().all(|s| {
        snap.actor_index(s.receiver_actor_id)
            .map(|i| snap.actor(i).name.as_str())
            != Some("Collecteur")
    }));
}

#[test]
fn latent_synergies_appear_and_rank_below_equal_declared_ones() {
    let mut w = World::default();
    let sawmill = w.actor("Scierie", "16.10A", 0.0, 0.0);
    let silent = w.actor("Panneaux silencieux", "16.21Z", 12.0, 0.0);
    let declared = w.actor("Panneaux déclarés", "16.21Z", 0.0, 12.0);
    let offer = w
        .add(
            sawmill,
            ResourceKind::Offer,
            "material/biomass/wood",
            Some("030105"),
            Some(300.0),
            "Sciure",
        )
        .id;
    // Declared, but in another class: the need is not matched; the actor is a latent receiver
    // like its silent neighbour (same activity, same evidence, same fit).
    w.add(
        declared,
        ResourceKind::Need,
        "material/biomass/agricultural",
        None,
        None,
        "Fibres",
    );
    let snap = w.snapshot();
    let found = matches(&snap, offer);
    assert_eq!(found.len(), 2);
    assert!(found.iter().all(|s| s.latent && s.need_id.is_none()));
    assert!((found[0].components.resource_fit - found[1].components.resource_fit).abs() < 1e-12);
    // A declared wood need ranks above the latent receiver of equal distance.
    w.add(
        declared,
        ResourceKind::Need,
        "material/biomass/wood",
        None,
        None,
        "Copeaux",
    );
    let snap = w.snapshot();
    let found = matches(&snap, offer);
    assert_eq!(
        receivers(&found, &snap),
        ["Panneaux déclarés", "Panneaux silencieux"]
    );
    let (d, l) = (&found[0], &found[1]);
    assert!(!d.latent && l.latent);
    assert_eq!(d.fit_level, FitLevel::SameClass);
    assert!(l.components.confidence < d.components.confidence);
    assert!(d.score > l.score);
    assert_eq!(l.need_id, None);
    assert_eq!(l.id, latent_synergy_id(offer, silent));
    assert!(
        l.explanation_fr
            .contains("pourrait intéresser Panneaux silencieux (activité 16.21Z"),
        "{}",
        l.explanation_fr
    );
    assert!(
        l.explanation_en
            .contains("could interest Panneaux silencieux (activity 16.21Z"),
        "{}",
        l.explanation_en
    );
    // Once the silent panel maker declares a wood need, it is no longer latent.
    w.add(
        silent,
        ResourceKind::Need,
        "material/biomass/wood",
        None,
        Some(200.0),
        "Sciure",
    );
    let snap = w.snapshot();
    let found = matches(&snap, offer);
    assert!(found.iter().all(|s| !s.latent));
    assert_eq!(receivers(&found, &snap)[0], "Panneaux silencieux");
    // Disabled by settings.
    let none = MatchingSettings {
        query: SearchLimits {
            max_latent: 0,
            ..SearchLimits::query()
        },
        ..MatchingSettings::default()
    };
    let (w2, offer2) = fly_ash_world();
    let snap2 = w2.snapshot();
    assert!(
        matches_for_resource(&snap2, offer2, &none, &NeutralPriority)
            .expect("ok")
            .iter()
            .all(|s| !s.latent)
    );
}

#[test]
fn base_units_must_agree() {
    let mut w = World::default();
    let a = w.actor("A", "10.51A", 0.0, 0.0);
    let b = w.actor("B", "01.41Z", 5.0, 0.0);
    let offer = w
        .add(
            a,
            ResourceKind::Offer,
            "material/biomass/food",
            None,
            Some(100.0),
            "Lactosérum",
        )
        .id;
    w.add(
        b,
        ResourceKind::Need,
        "material/biomass/food",
        None,
        Some(100.0),
        "Aliment",
    )
    .base_unit = Some(BaseUnit::Megawatthour);
    let snap = w.snapshot();
    assert!(matches(&snap, offer).iter().all(|s| s.need_id.is_none()));
}

#[test]
fn detection_is_deterministic_and_ids_are_stable() {
    let (mut w, _) = fly_ash_world();
    let snap = w.snapshot();
    let settings = MatchingSettings {
        threads: 2,
        ..MatchingSettings::default()
    };
    let a = detect_all(&snap, &settings, &NeutralPriority).expect("detect");
    assert!(a.len() >= 3);
    assert!(a.windows(2).all(|p| p[0].score >= p[1].score));
    w.actors.reverse();
    w.resources.reverse();
    let b = detect_all(&w.snapshot(), &settings, &NeutralPriority).expect("detect");
    assert_eq!(a, b);
    let compact = detect(&snap, &settings, &NeutralPriority).expect("detect");
    assert_eq!(compact.len(), a.len());
    let c = compact[0];
    assert_eq!(c.provider_actor(&snap), snap.resource(c.offer).actor);
    assert!(a.iter().any(|s| s.id == c.id(&snap)));
    let s = synergy_of(&snap, &c, &settings, &NeutralPriority).expect("materialise");
    assert_eq!(s.id, c.id(&snap));
}

#[test]
fn territorial_priority_is_pluggable() {
    let (w, offer) = fly_ash_world();
    let snap = w.snapshot();
    let settings = MatchingSettings::default();
    let high = |class: &str, code: Option<&str>| {
        if class.ends_with("ash") && code == Some("100102") {
            1.0
        } else {
            0.0
        }
    };
    let a = matches_for_resource(&snap, offer, &settings, &high).expect("ok");
    let b = matches_for_resource(&snap, offer, &settings, &NeutralPriority).expect("ok");
    assert_eq!(a[0].components.territorial_priority, 1.0);
    assert!(a[0].score > b[0].score);
}

#[test]
fn adhoc_queries() {
    let (w, _) = fly_ash_world();
    let snap = w.snapshot();
    let settings = MatchingSettings::default();
    let q = AdhocQuery {
        kind: ResourceKind::Offer,
        ewc_code: Some("10 01 02".into()),
        class: None,
        accepted_ewc: vec![],
        hazardous: None,
        label: Some("Cendres".into()),
        quantity: Some(10.0),
        unit: Some(Unit::Tonne),
        period: Some(Period::Week),
        yearly_quantity: None,
        base_unit: None,
        lat: LAT,
        lng: LNG + 0.01,
        max_distance_km: None,
        temperature_c: None,
        months: None,
        naf_code: None,
        stored: None,
    };
    let found = match_adhoc(&snap, &q, &settings, &NeutralPriority).expect("adhoc");
    assert_eq!(receivers(&found, &snap)[0], "Cimenterie");
    assert_eq!(found[0].offer_id, Uuid::nil());
    assert_eq!(found[0].quantity, Some(520.0));
    let need = AdhocQuery {
        kind: ResourceKind::Need,
        ewc_code: None,
        class: Some("material/mineral/ash".into()),
        ..q.clone()
    };
    let providers = match_adhoc(&snap, &need, &settings, &NeutralPriority).expect("adhoc need");
    assert_eq!(providers.len(), 1);
    assert_eq!(providers[0].need_id, Some(Uuid::nil()));
    let bad = AdhocQuery {
        lat: 123.0,
        ..q.clone()
    };
    assert!(matches!(
        match_adhoc(&snap, &bad, &settings, &NeutralPriority),
        Err(MatchingError::InvalidQuery { field: "lat", .. })
    ));
    let nothing = AdhocQuery {
        ewc_code: None,
        ..q
    };
    assert!(match_adhoc(&snap, &nothing, &settings, &NeutralPriority).is_err());
    assert!(matches!(
        matches_for_resource(&snap, Uuid::from_u128(1), &settings, &NeutralPriority),
        Err(MatchingError::UnknownResource(_))
    ));
}

#[test]
fn an_unrelated_declared_need_is_not_matched_the_actor_is_latent() {
    // Steel slag and a cement works that declared a need for gypsum: slag → cement is documented
    // (10 02 02 → 23.51), which says the cement works may take slag, not that slag is gypsum.
    let mut w = World::default();
    let steel = w.actor("Aciérie", "24.10Z", 0.0, 0.0);
    let cement = w.actor("Cimenterie", "23.51Z", 30.0, 0.0);
    let offer = w
        .add(
            steel,
            ResourceKind::Offer,
            "material/mineral/slag",
            Some("100202"),
            Some(10_000.0),
            "Laitier",
        )
        .id;
    w.add(
        cement,
        ResourceKind::Need,
        "material/mineral/gypsum",
        None,
        Some(2000.0),
        "Gypse",
    );
    let snap = w.snapshot();
    let found = matches(&snap, offer);
    assert_eq!(found.len(), 1);
    assert!(found[0].latent);
    assert_eq!(found[0].need_id, None);
    assert_eq!(found[0].fit_level, FitLevel::Pathway);
    assert!(
        found[0]
            .explanation_fr
            .contains("activité receveuse documentée"),
        "{}",
        found[0].explanation_fr
    );
}
