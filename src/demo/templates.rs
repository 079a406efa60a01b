//! The demo's resource templates: for each activity profile, the offers and needs a facilitator would
//! expect, with magnitudes from sector averages (cited in each description), and the shared needs
//! neighbours can pool.

use crate::domain::resource::{
    Availability, AvailabilityKind, Category, Period, PhysicalState, Quantity, ResourceInput,
    ResourceKind, Unit,
};

use super::*;

/// A resource template: a yearly quantity at the scale of a typical site, varied per site.
#[derive(Debug, Clone)]
pub(super) struct Spec {
    pub(super) kind: ResourceKind,
    pub(super) category: Category,
    /// Only for resources without an EWC code (heat, water, services, products): with a code, the
    /// class is derived from it.
    pub(super) class: Option<&'static str>,
    pub(super) label: &'static str,
    /// What it is and what grounds the magnitude.
    pub(super) note: &'static str,
    /// As printed in the List of Waste: `10 01 02`, with `*` for hazardous entries.
    pub(super) ewc: Option<&'static str>,
    pub(super) accepts: &'static [&'static str],
    pub(super) value: f64,
    pub(super) unit: Unit,
    /// Empty: all year.
    pub(super) months: &'static [u8],
    pub(super) temperature_c: Option<f64>,
    pub(super) max_distance_km: Option<f64>,
    pub(super) state: PhysicalState,
}

impl Spec {
    pub(super) fn new(
        kind: ResourceKind,
        category: Category,
        label: &'static str,
        value: f64,
        unit: Unit,
    ) -> Spec {
        Spec {
            kind,
            category,
            class: None,
            label,
            note: "",
            ewc: None,
            accepts: &[],
            value,
            unit,
            months: &[],
            temperature_c: None,
            max_distance_km: None,
            state: PhysicalState::Solid,
        }
    }

    pub(super) fn note(mut self, note: &'static str) -> Spec {
        self.note = note;
        self
    }

    pub(super) fn months(mut self, months: &'static [u8]) -> Spec {
        self.months = months;
        self
    }

    pub(super) fn within(mut self, km: f64) -> Spec {
        self.max_distance_km = Some(km);
        self
    }

    pub(super) fn state(mut self, state: PhysicalState) -> Spec {
        self.state = state;
        self
    }

    pub(super) fn liquid(self) -> Spec {
        self.state(PhysicalState::Liquid)
    }

    pub(super) fn sludge(self) -> Spec {
        self.state(PhysicalState::Sludge)
    }

    pub(super) fn powder(self) -> Spec {
        self.state(PhysicalState::Powder)
    }

    /// For EWC codes whose class is not a material one (refuse-derived fuel, leachate).
    pub(super) fn category(mut self, category: Category) -> Spec {
        self.category = category;
        self
    }

    pub(super) fn accepts(mut self, codes: &'static [&'static str]) -> Spec {
        self.accepts = codes;
        self
    }

    /// The resource input for one site, its quantity scaled by `factor`.
    pub(super) fn input(&self, factor: f64) -> ResourceInput {
        let what = if self.note.is_empty() {
            self.label
        } else {
            self.note
        };
        let value = if self.unit == Unit::Piece {
            (self.value * factor).round().max(1.0)
        } else {
            round2(self.value * factor)
        };
        ResourceInput {
            kind: self.kind,
            category: self.category,
            class: self.class.map(str::to_owned),
            label: self.label.to_owned(),
            description: Some(format!(
                "{ILLUSTRATIVE_PREFIX}{what} Ressource déduite de l'activité probable du site, non déclarée par l'établissement."
            )),
            ewc_code: self.ewc.map(str::to_owned),
            accepted_ewc: self.accepts.iter().map(|c| (*c).to_owned()).collect(),
            quantity: Some(Quantity {
                value,
                unit: self.unit,
                period: Period::Year,
            }),
            availability: Some(if self.months.is_empty() {
                Availability::default()
            } else {
                Availability {
                    kind: AvailabilityKind::Seasonal,
                    months: self.months.to_vec(),
                    from: None,
                    until: None,
                }
            }),
            temperature_c: self.temperature_c,
            max_distance_km: self.max_distance_km,
            physical_state: Some(self.state),
        }
    }
}

/// A waste or by-product offered, in tonnes a year.
pub(super) fn offer(label: &'static str, ewc: &'static str, tonnes: f64) -> Spec {
    let mut s = Spec::new(
        ResourceKind::Offer,
        Category::Material,
        label,
        tonnes,
        Unit::Tonne,
    );
    s.ewc = Some(ewc);
    s
}

/// A material wanted, in tonnes a year: `ewc` sets its class, `accepts` the codes it takes.
pub(super) fn need(
    label: &'static str,
    ewc: &'static str,
    accepts: &'static [&'static str],
    tonnes: f64,
) -> Spec {
    let mut s = Spec::new(
        ResourceKind::Need,
        Category::Material,
        label,
        tonnes,
        Unit::Tonne,
    );
    s.ewc = Some(ewc);
    s.accepts = accepts;
    s
}

/// A product that is no longer a waste (standardised compost, recycled pellets), in tonnes a year.
pub(super) fn product(label: &'static str, class: &'static str, tonnes: f64) -> Spec {
    let mut s = Spec::new(
        ResourceKind::Offer,
        Category::Material,
        label,
        tonnes,
        Unit::Tonne,
    );
    s.class = Some(class);
    s
}

/// The heat class of a temperature, as the taxonomy bands it (< 90 °C, 90–200 °C, > 200 °C).
pub(super) fn heat_class(celsius: f64) -> &'static str {
    if celsius < 90.0 {
        "energy/heat/low_temperature"
    } else if celsius <= 200.0 {
        "energy/heat/medium_temperature"
    } else {
        "energy/heat/high_temperature"
    }
}

pub(super) fn heat(kind: ResourceKind, label: &'static str, celsius: f64, mwh: f64) -> Spec {
    let mut s = Spec::new(kind, Category::Energy, label, mwh, Unit::Megawatthour);
    s.class = Some(heat_class(celsius));
    s.temperature_c = Some(celsius);
    s.state = if celsius > 100.0 {
        PhysicalState::Gas
    } else {
        PhysicalState::Liquid
    };
    s
}

/// Waste heat or delivered heat, MWh a year at `celsius`.
pub(super) fn heat_offer(label: &'static str, celsius: f64, mwh: f64) -> Spec {
    heat(ResourceKind::Offer, label, celsius, mwh)
}

/// Heat wanted, MWh a year at `celsius`.
pub(super) fn heat_need(label: &'static str, celsius: f64, mwh: f64) -> Spec {
    heat(ResourceKind::Need, label, celsius, mwh)
}

pub(super) fn water(kind: ResourceKind, label: &'static str, class: &'static str, m3: f64) -> Spec {
    let mut s = Spec::new(kind, Category::Water, label, m3, Unit::CubicMetre);
    s.class = Some(class);
    s.state = PhysicalState::Liquid;
    s
}

pub(super) fn service(
    kind: ResourceKind,
    label: &'static str,
    class: &'static str,
    count: f64,
) -> Spec {
    let category = if class.starts_with("equipment") {
        Category::Equipment
    } else {
        Category::Service
    };
    let mut s = Spec::new(kind, category, label, count, Unit::Piece);
    s.class = Some(class);
    s.state = PhysicalState::NotApplicable;
    s
}

/// Space heating, October to April.
pub(super) const HEATING_SEASON: &[u8] = &[1, 2, 3, 4, 10, 11, 12];
/// Livestock buildings are heated a little longer (spring batches).
pub(super) const LIVESTOCK_HEATING: &[u8] = &[1, 2, 3, 4, 5, 10, 11, 12];
pub(super) const HARVEST: &[u8] = &[7, 8, 9];
pub(super) const VINTAGE: &[u8] = &[9, 10, 11];
/// Spreading windows of organic fertilisers (nitrates directive calendars).
pub(super) const SPREADING: &[u8] = &[2, 3, 4, 8, 9];
/// Distillation campaign of marcs and lees.
pub(super) const DISTILLING: &[u8] = &[1, 2, 3, 9, 10, 11, 12];
pub(super) const BUILDING_SEASON: &[u8] = &[3, 4, 5, 6, 7, 8, 9, 10, 11];
pub(super) const SUGAR_CAMPAIGN: &[u8] = &[1, 9, 10, 11, 12];
pub(super) const HAY_DRYING: &[u8] = &[5, 6, 7, 8, 9];

/// Hazardous codes that the hazardous-waste operators of the demo accept: every hazardous offer of
/// every profile must be in one of these lists (checked by a test).
pub(super) const HAZ_LIQUIDS: &[&str] = &[
    "07 01 04*",
    "07 05 04*",
    "08 01 11*",
    "08 03 12*",
    "14 06 03*",
];
pub(super) const HAZ_OILS: &[&str] = &["13 02 05*", "12 01 09*", "13 05 02*", "13 01 10*"];
pub(super) const HAZ_MINERAL: &[&str] = &[
    "19 01 13*",
    "10 02 07*",
    "10 03 08*",
    "10 03 19*",
    "11 01 09*",
    "11 01 05*",
    "16 06 01*",
];
pub(super) const HAZ_PACKAGING: &[&str] = &["15 01 10*", "16 05 06*"];

/// The offers and needs of a profile, at the scale of a typical site.
pub(super) fn specs(profile: Profile) -> Vec<Spec> {
    match profile {
        Profile::PigFarm => vec![
            offer("Lisier de porcs", "02 01 06", 4000.0).liquid().within(30.0).note(
                "Lisier d'un élevage porcin soumis à autorisation (≈ 2 000 places) ; CORPEN/IFIP : ≈ 1,2 à 1,5 m³ de lisier par place d'engraissement et par an. Débouchés : épandage, méthanisation.",
            ),
            offer("Films et bâches agricoles usagés", "02 01 04", 4.0).note(
                "Films d'enrubannage et bâches ; collecte organisée par la filière A.D.I.Valor.",
            ),
            need("Lactosérum et coproduits pour soupe", "02 05 01", &["02 05 01", "02 03 04", "02 06 01"], 1500.0)
                .liquid()
                .within(80.0)
                .note(
                    "Alimentation liquide des porcs ; Réséda (2017) : environ 4/5 des coproduits des IAA vont à l'alimentation animale.",
                ),
            heat_need("Chauffage des salles de maternité et post-sevrage", 40.0, 150.0).note(
                "Chaleur basse température pour les porcelets ; IFIP : ≈ 200 à 400 kWh par truie et par an.",
            ),
        ],
        Profile::PoultryFarm => vec![
            offer("Fumier de volailles", "02 01 06", 600.0).within(40.0).note(
                "Fumier et litière usagée ; ITAVI : ≈ 1,5 kg de fumier par poulet produit, 6 à 7 bandes par an. Débouchés : épandage, méthanisation, compostage.",
            ),
            need("Litière (copeaux de bois, paille)", "03 01 05", &["03 01 05", "02 01 03"], 150.0).note(
                "Copeaux ou paille pour la litière ; ITAVI : ≈ 2 à 4 kg/m² par bande.",
            ),
            heat_need("Chauffage des bâtiments d'élevage", 40.0, 300.0).months(LIVESTOCK_HEATING).note(
                "Démarrage des bandes ; ITAVI : ≈ 100 à 150 kWh/m²/an en volailles de chair.",
            ),
        ],
        Profile::MixedFarm => vec![
            offer("Fumier bovin", "02 01 06", 1500.0).within(30.0).note(
                "Fumier pailleux ; Institut de l'élevage : ≈ 10 t de fumier par UGB logée et par an.",
            ),
            offer("Pailles et menues pailles", "02 01 03", 200.0).months(HARVEST).within(50.0).note(
                "Pailles non utilisées en litière, disponibles après moisson.",
            ),
            offer("Films et bâches agricoles usagés", "02 01 04", 3.0).note(
                "Films d'enrubannage et bâches ; collecte organisée par la filière A.D.I.Valor.",
            ),
            need(
                "Digestat ou compost pour la fertilisation",
                "19 06 06",
                &["19 06 06", "19 05 03", "19 08 05", "10 01 03", "02 04 02"],
                800.0,
            )
            .months(SPREADING)
            .within(30.0)
            .note(
                "Retour au sol de matières organiques et amendements calciques (ADEME, Retour au sol des matières organiques).",
            ),
            heat_need("Séchage en grange du fourrage", 50.0, 100.0).months(HAY_DRYING).note(
                "Séchage de foin en grange ; ≈ 100 à 200 kWh par tonne de foin séché (chambres d'agriculture).",
            ),
        ],
        // Resolved per site before resources are built; kept for completeness.
        Profile::AnyFarm => specs(Profile::MixedFarm),
        Profile::Methanisation => vec![
            need("Effluents d'élevage (lisier, fumier)", "02 01 06", &["02 01 06"], 12000.0).within(30.0).note(
                "Ration d'un méthaniseur agricole d'≈ 500 kWe ; ADEME (fiche méthanisation 2023) : les effluents forment la base de la ration.",
            ),
            need(
                "Coproduits agroalimentaires et biodéchets",
                "02 03 04",
                &[
                    "02 05 01", "02 05 02", "02 02 01", "02 02 03", "02 02 04", "02 03 04", "02 03 05", "02 06 01",
                    "02 07 02", "02 07 04", "20 01 08", "20 01 25", "19 08 09",
                ],
                5000.0,
            )
            .within(80.0)
            .note("Substrats méthanogènes complémentaires (ATEE Club Biogaz)."),
            need("Pailles et cultures intermédiaires", "02 01 03", &["02 01 03"], 2000.0).months(HARVEST).note(
                "CIVE et menues pailles ensilées, récoltées l'été.",
            ),
            offer("Digestat", "19 06 06", 17000.0).liquid().months(SPREADING).within(30.0).note(
                "Digestat brut épandable ; ≈ 85 à 90 % du tonnage entrant (ADEME).",
            ),
            heat_offer("Chaleur de cogénération", 85.0, 4000.0).note(
                "Moteur de cogénération : ≈ 1 MWh thermique par MWh électrique (ATEE Club Biogaz), en partie inutilisé hors hiver.",
            ),
        ],
        Profile::Quarry => vec![
            offer("Fines de lavage et stériles argilo-sableux", "01 04 09", 25000.0).within(50.0).note(
                "Fines de lavage des granulats ; UNPG : ≈ 10 à 20 % de la production d'une carrière alluvionnaire.",
            ),
            offer("Déchets de graviers et débris de pierres", "01 04 08", 12000.0).within(50.0).note(
                "Refus de criblage et stériles ; utilisables en remblai ou sous-couche.",
            ),
            offer("Terres de découverte", "01 01 02", 8000.0).within(30.0).note(
                "Terres de découverte non réutilisées sur site.",
            ),
            need(
                "Matériaux inertes pour le réaménagement",
                "17 05 04",
                &["17 05 04", "17 01 01", "17 01 07", "20 02 02", "17 03 02"],
                20000.0,
            )
            .within(30.0)
            .note(
                "Remblayage de carrière avec des déchets inertes (arrêté du 22 septembre 1994 ; liste d'admission de l'arrêté du 12 décembre 2014).",
            ),
            water(Need, "Eau d'appoint pour le lavage des granulats", "water/process", 40000.0).note(
                "Appoint du circuit de lavage ; UNPG : ≈ 0,2 à 1 m³ d'eau neuve par tonne lavée, le reste est recyclé.",
            ),
            service(Need, "Maintenance mutualisée des engins", "service/maintenance", 12.0).note(
                "Interventions d'entretien d'engins que des carrières voisines peuvent grouper.",
            ),
        ],
        Profile::CivilWorks => vec![
            offer("Terres et cailloux de chantier", "17 05 04", 15000.0).within(30.0).note(
                "Déblais inertes de terrassement ; ADEME / FNTP : les travaux publics produisent ≈ 180 Mt de déblais par an en France.",
            ),
            offer("Agrégats d'enrobés (fraisats)", "17 03 02", 3000.0).within(60.0).note(
                "Fraisats de chaussée recyclables en centrale d'enrobage (engagement FNTP / Routes de France).",
            ),
            need(
                "Granulats recyclés et matériaux alternatifs",
                "19 12 09",
                &["19 12 09", "17 01 01", "17 01 07", "19 01 12", "10 02 02", "10 09 08", "10 12 08", "01 04 08"],
                10000.0,
            )
            .within(50.0)
            .note(
                "Sous-couches routières ; guide CEREMA/SETRA « Acceptabilité de matériaux alternatifs en technique routière » (2011).",
            ),
            water(Need, "Eau de compactage et d'arrosage", "water/process", 3000.0).months(BUILDING_SEASON).note(
                "Humidification des couches de forme et abattage des poussières en saison de chantier.",
            ),
        ],
        Profile::Bitumen => vec![
            offer("Chutes de membranes et produits bitumineux", "17 03 02", 400.0).note(
                "Chutes de fabrication recyclables en enrobés ou en nouvelles membranes.",
            ),
            need("Fillers calcaires", "01 04 10", &["01 04 10", "01 04 09", "10 01 02"], 2000.0).powder().note(
                "Charges minérales des membranes et liants ; poussières de carrière ou cendres volantes.",
            ),
            heat_need("Maintien en température du bitume", 170.0, 4000.0).note(
                "Bitume stocké et travaillé à ≈ 160–180 °C.",
            ),
        ],
        Profile::Concrete => vec![
            need("Granulats recyclés", "19 12 09", &["19 12 09", "17 01 01", "17 01 07", "01 04 08", "01 04 09"], 15000.0)
                .within(50.0)
                .note("NF EN 206/CN admet des granulats recyclés dans le béton (SNBPE, CERIB)."),
            need("Additions minérales", "10 01 02", &["10 01 02", "10 02 02", "10 09 08", "10 01 01"], 3000.0)
                .powder()
                .note("Cendres volantes, laitiers et sables de fonderie en addition ou substitution (NF EN 206/CN)."),
            offer("Retours de béton et boues de lavage", "10 13 14", 1500.0).within(40.0).note(
                "Bétons retournés et boues de lavage des toupies ; ≈ 1 à 3 % du volume livré (SNBPE).",
            ),
            water(Need, "Eau de gâchage et de lavage", "water/process", 15000.0).note(
                "≈ 150 à 180 L d'eau par m³ de béton, plus le lavage des toupies.",
            ),
        ],
        Profile::Cement => vec![
            need(
                "Combustibles de substitution (CSR, bois, pneus, boues)",
                "19 12 10",
                &["19 12 10", "03 01 05", "16 01 03", "19 08 05", "19 12 07", "20 01 38", "14 06 03*", "13 02 05*"],
                40000.0,
            )
            .category(Category::Energy)
            .note(
                "Co-traitement en four : ≈ 40 % du combustible des cimenteries françaises vient de déchets (SFIC / ATILH ; BREF CLM 2013).",
            ),
            need(
                "Matières premières de substitution",
                "10 01 02",
                &["10 01 02", "10 02 02", "10 02 10", "10 09 08", "19 01 12", "10 13 14"],
                60000.0,
            )
            .powder()
            .note("Correcteurs du cru : cendres, laitiers, calamine, sables de fonderie (BREF CLM)."),
            heat_offer("Chaleur fatale des gaz du four et du refroidisseur", 300.0, 40000.0).note(
                "Gaz chauds du refroidisseur à clinker ; ADEME, La chaleur fatale (2017).",
            ),
            offer("Poussières de by-pass", "10 13 06", 3000.0).powder().note(
                "Poussières extraites du by-pass de chlore (BREF CLM).",
            ),
        ],
        Profile::Bricks => vec![
            need(
                "Agents porogènes (sciures, boues papetières)",
                "03 01 05",
                &["03 01 05", "03 03 11", "03 03 05"],
                4000.0,
            )
            .note("Porogènes ajoutés à l'argile ; BREF CER (2007), CTMNC."),
            need("Cendres et fines minérales pour la pâte", "10 01 01", &["10 01 01", "10 01 02", "10 01 03", "01 04 09"], 3000.0)
                .powder()
                .note("Dégraissants et correcteurs de la pâte argileuse (MAESTRI : 10 01 01 vers 23.32)."),
            offer("Tessons et produits cuits déclassés", "10 12 08", 6000.0).within(50.0).note(
                "Casse de cuisson ; ≈ 3 à 5 % de la production, broyée en granulats ou chamotte.",
            ),
            heat_offer("Air chaud de la zone de refroidissement du four", 150.0, 8000.0).note(
                "Récupérable pour les séchoirs ou des voisins ; BREF CER.",
            ),
        ],
        Profile::ContainerGlass => vec![
            need("Calcin", "15 01 07", &["15 01 07", "20 01 02", "19 12 05", "10 11 12", "16 01 20"], 60000.0).note(
                "Verre d'emballage recyclé ; FEVE : chaque 10 % de calcin réduit ≈ 3 % l'énergie du four.",
            ),
            offer("Déchets de verre de production", "10 11 12", 1500.0).note(
                "Rebuts de production hors calcin interne.",
            ),
            heat_offer("Fumées du four après régénérateurs", 250.0, 25000.0).note(
                "ADEME, La chaleur fatale (2017) : le verre est parmi les premiers gisements industriels.",
            ),
        ],
        Profile::GlassWool => vec![
            need("Calcin pour laine de verre", "15 01 07", &["15 01 07", "19 12 05", "10 11 12", "20 01 02", "16 01 20"], 25000.0)
                .note("La laine de verre contient jusqu'à 80 % de verre recyclé (Isover)."),
            offer("Déchets de laine de verre", "10 11 03", 2500.0).note(
                "Chutes de production et rebuts, reprenables dans la filière de recyclage des isolants.",
            ),
            heat_offer("Fumées des fours de fusion et d'étuvage", 220.0, 10000.0).note(
                "ADEME, La chaleur fatale (2017).",
            ),
        ],
        Profile::Sawmill => vec![
            offer("Plaquettes et chutes de scierie", "03 01 05", 6000.0).note(
                "FCBA : ≈ 40 à 50 % du volume de grumes devient connexes (plaquettes, sciures, écorces).",
            ),
            offer("Sciures", "03 01 05", 2500.0).note("Sciures de sciage ; débouchés : panneaux, granulés, litière."),
            offer("Écorces", "03 01 01", 2000.0).note("Écorces de grumes ; débouchés : chaufferies, paillage."),
            heat_need("Chaleur pour les séchoirs à bois", 75.0, 3000.0).note(
                "Séchage artificiel ; ≈ 0,2 à 0,4 MWh par m³ séché (FCBA).",
            ),
        ],
        Profile::Joinery => vec![
            offer("Copeaux et chutes de bois", "03 01 05", 1500.0).note(
                "Chutes d'usinage des charpentes et menuiseries (FCBA).",
            ),
            offer("Emballages bois et palettes usagées", "15 01 03", 100.0).note("Palettes et calages bois."),
            heat_need("Chaleur pour le séchage et les ateliers", 70.0, 1200.0).months(HEATING_SEASON).note(
                "Séchage des bois et chauffage des ateliers.",
            ),
        ],
        Profile::Panels => vec![
            need(
                "Bois de recyclage et connexes de scierie",
                "03 01 05",
                &["03 01 05", "03 01 01", "15 01 03", "17 02 01", "19 12 07", "20 01 38"],
                200000.0,
            )
            .within(150.0)
            .note("BREF WBP (2015) : les panneaux de particules consomment connexes et bois de recyclage."),
            offer("Cendres de chaudière biomasse", "10 01 01", 3000.0).powder().note(
                "Cendres de la chaudière qui brûle les poussières de ponçage et écorces.",
            ),
            heat_offer("Chaleur des sécheurs et des presses", 65.0, 15000.0).note(
                "Buées et air chaud récupérables ; ADEME, La chaleur fatale (2017).",
            ),
        ],
        Profile::PaperMill => vec![
            need("Papiers-cartons à recycler", "15 01 01", &["15 01 01", "20 01 01", "19 12 01", "03 03 08"], 40000.0)
                .note("COPACEL : les fibres recyclées font ≈ 2/3 du papier-carton produit en France."),
            offer("Refus de pulpeur", "03 03 07", 3000.0).note(
                "Plastiques, agrafes et fibres non recyclables séparés au pulpage ; ≈ 5 à 10 % des PCR (BREF PP).",
            ),
            offer("Boues de station papetière", "03 03 11", 6000.0).sludge().within(80.0).note(
                "Boues fibreuses ; débouchés : épandage, briqueteries, chaudières (BREF PP 2015).",
            ),
            heat_need("Vapeur pour les sécheurs", 150.0, 60000.0).note(
                "BREF PP : ≈ 1,2 à 1,8 MWh de vapeur par tonne de papier recyclé.",
            ),
            heat_offer("Buées et eaux chaudes de la machine", 45.0, 8000.0).note(
                "ADEME, La chaleur fatale (2017).",
            ),
            water(Need, "Eau de procédé", "water/process", 400000.0).note(
                "BREF PP : ≈ 5 à 15 m³ d'eau par tonne de papier recyclé.",
            ),
        ],
        Profile::Board => vec![
            offer("Chutes et rognures de carton", "15 01 01", 2500.0).note(
                "Rognures et gâches ; ≈ 8 à 12 % du carton transformé, repris par les papeteries.",
            ),
            heat_need("Vapeur pour l'onduleuse", 180.0, 8000.0).note(
                "Collage à l'amidon et préchauffage du papier ; ≈ 0,1 MWh par 1 000 m² de carton ondulé.",
            ),
            offer("Déchets d'encres et de colles aqueuses", "08 04 10", 80.0).liquid().note(
                "Fonds de colle amidon et encres à l'eau.",
            ),
        ],
        Profile::Printing => vec![
            offer("Gâches papier d'impression", "20 01 01", 400.0).note(
                "Gâches de calage et rognures (≈ 5 à 10 % du papier imprimé).",
            ),
            offer("Plaques offset en aluminium", "12 01 03", 30.0).note("Plaques d'impression usagées."),
            offer("Encres usagées", "08 03 12*", 5.0).liquid().note("Encres à solvants, déchet dangereux."),
        ],
        Profile::Dairy => vec![
            offer("Produits laitiers déclassés et lactosérum acide", "02 05 01", 4000.0).liquid().within(100.0).note(
                "Retours, fins de série et lactosérum acide ; BREF FDM, CNIEL : alimentation animale ou méthanisation.",
            ),
            offer("Boues de station d'épuration laitière", "02 05 02", 2500.0).sludge().within(50.0).note(
                "Boues biologiques épandables ou méthanisables.",
            ),
            heat_offer("Chaleur des condenseurs frigorifiques", 40.0, 4000.0).note(
                "ADEME, La chaleur fatale (2017) : les IAA rejettent ≈ 20 % de leur énergie sous 60 °C.",
            ),
            heat_need("Eau chaude et vapeur pour pasteurisation et nettoyage", 110.0, 12000.0).note(
                "Pasteurisation et NEP ; BREF FDM.",
            ),
            water(Need, "Eau de procédé", "water/process", 150000.0).note("BREF FDM : ≈ 1 à 2 L d'eau par litre de lait."),
        ],
        Profile::Cheese => vec![
            offer("Lactosérum", "02 05 01", 20000.0).liquid().within(100.0).note(
                "≈ 9 L de lactosérum par kg de fromage (CNIEL) ; débouchés : poudre, alimentation porcine, méthanisation.",
            ),
            offer("Boues de station d'épuration laitière", "02 05 02", 2000.0).sludge().within(50.0).note(
                "Boues biologiques épandables ou méthanisables.",
            ),
            heat_offer("Chaleur des condenseurs frigorifiques", 40.0, 3000.0).note("ADEME, La chaleur fatale (2017)."),
            heat_need("Vapeur et eau chaude de fabrication", 110.0, 10000.0).note("BREF FDM (chapitre laitier)."),
        ],
        Profile::Meat => vec![
            offer("Sous-produits animaux de catégorie 3", "02 02 02", 6000.0).within(150.0).note(
                "Règlement (CE) 1069/2009 ; BREF SA (2023) : ≈ 30 à 40 % du poids vif devient sous-produits.",
            ),
            offer("Matières stercoraires et boues de lavage", "02 02 01", 1500.0).sludge().within(50.0).note(
                "Contenus digestifs et boues de lavage des camions ; débouchés : méthanisation, compostage.",
            ),
            offer("Graisses et boues de prétraitement", "02 02 04", 800.0).sludge().within(80.0).note(
                "Boues de flottation, très méthanogènes.",
            ),
            heat_offer("Chaleur des condenseurs frigorifiques", 35.0, 2500.0).note("ADEME, La chaleur fatale (2017)."),
            heat_need("Eau chaude de nettoyage et d'échaudage", 60.0, 5000.0).note(
                "Eau à 60–82 °C pour l'hygiène ; BREF SA.",
            ),
        ],
        Profile::Bakery => vec![
            offer("Invendus et rebuts de viennoiserie", "02 06 01", 800.0).within(100.0).note(
                "Rebuts de production ; Réséda : la plupart des coproduits de panification vont à l'alimentation animale.",
            ),
            heat_offer("Chaleur des fumées de fours", 120.0, 1500.0).note("Fours de cuisson ; ADEME, La chaleur fatale (2017)."),
            heat_need("Eau chaude de nettoyage", 60.0, 500.0).note("Nettoyage des lignes."),
        ],
        Profile::FruitProcessing => vec![
            offer("Pulpes, marcs de fruits et jus déclassés", "02 03 04", 3000.0).liquid().within(100.0).note(
                "Réséda : pulpes et marcs vont à l'alimentation animale ou à la méthanisation.",
            ),
            offer("Boues de traitement des effluents", "02 03 05", 800.0).sludge().within(50.0).note(
                "Boues biologiques de la station interne.",
            ),
            heat_need("Vapeur de pasteurisation", 110.0, 6000.0).note("BREF FDM (jus et boissons)."),
            heat_offer("Chaleur des groupes froid", 35.0, 1500.0).note("ADEME, La chaleur fatale (2017)."),
        ],
        Profile::Condiments => vec![
            offer("Sons de moutarde et rebuts de fabrication", "02 03 04", 2000.0).within(100.0).note(
                "Tégument de graines et rebuts ; débouchés : alimentation animale, méthanisation.",
            ),
            offer("Boues de traitement des effluents", "02 03 05", 600.0).sludge().within(50.0).note(
                "Boues biologiques de la station interne.",
            ),
            heat_need("Vapeur de cuisson et de nettoyage", 120.0, 5000.0).note("BREF FDM."),
        ],
        Profile::ReadyMeals => vec![
            offer("Rebuts de fabrication (pain, garnitures)", "02 03 04", 1500.0).within(80.0).note(
                "Coproduits de fabrication ; ADEME, Gaspillage alimentaire (2016).",
            ),
            heat_offer("Chaleur des groupes froid", 35.0, 1200.0).note("ADEME, La chaleur fatale (2017)."),
            heat_need("Eau chaude de nettoyage", 60.0, 800.0).note("Hygiène des lignes."),
        ],
        Profile::Sugar => vec![
            offer("Écumes de carbonatation", "02 04 02", 30000.0).months(SUGAR_CAMPAIGN).note(
                "AIBS : écumes épandues comme amendement calcique.",
            ),
            offer("Terres de lavage des betteraves", "02 04 01", 50000.0).months(SUGAR_CAMPAIGN).within(40.0).note(
                "Terres rendues aux champs ou valorisées en remblai.",
            ),
            heat_need("Vapeur de campagne", 150.0, 150000.0).months(SUGAR_CAMPAIGN).note("BREF FDM (sucre)."),
        ],
        Profile::Malting => vec![
            offer("Radicelles et poussières de malt", "02 03 04", 3000.0).within(100.0).note(
                "≈ 3 à 4 % du malt produit ; débouchés : alimentation animale, méthanisation (Réséda).",
            ),
            water(Offer, "Eaux de trempe", "water/wastewater", 250000.0).note(
                "≈ 2 à 4 m³ d'eau par tonne d'orge trempée (BREF FDM, malterie).",
            ),
            heat_need("Chaleur pour le touraillage", 70.0, 50000.0).note(
                "Air de touraille à 60–85 °C ; ≈ 0,6 à 0,8 MWh thermique par tonne de malt (BREF FDM).",
            ),
        ],
        Profile::Winery => vec![
            offer("Marcs et lies de vinification", "02 07 04", 600.0).months(VINTAGE).note(
                "Prestations viniques livrées aux distilleries (FranceAgriMer, IFV).",
            ),
            water(Offer, "Effluents vinicoles", "water/wastewater", 6000.0).months(VINTAGE).note(
                "IFV : ≈ 0,5 à 1,5 L d'effluent par litre de vin, surtout en vendanges.",
            ),
            offer("Bouteilles et verre de casse", "15 01 07", 20.0).note("Verre d'emballage recyclable en calcin."),
        ],
        Profile::Distillery => vec![
            need("Marcs et lies de raisin", "02 07 04", &["02 07 04"], 25000.0).months(DISTILLING).note(
                "Union nationale des distilleries vinicoles : marcs et lies des vinifications de la région.",
            ),
            offer("Vinasses et marcs épuisés", "02 07 02", 15000.0).liquid().within(60.0).note(
                "Débouchés : épandage, méthanisation, combustion des marcs épuisés.",
            ),
            heat_need("Vapeur de distillation", 120.0, 12000.0).months(DISTILLING).note("Campagne de distillation."),
        ],
        Profile::Chemicals => vec![
            offer("Solvants usagés", "07 01 04*", 150.0).liquid().note(
                "Solvants de lavage et de synthèse ; régénérables par distillation (BREF LVOC 2017).",
            ),
            offer("Emballages souillés (fûts, GRV)", "15 01 10*", 40.0).note("Fûts et GRV contaminés."),
            heat_offer("Chaleur des condenseurs et eaux de refroidissement", 50.0, 3000.0).note(
                "ADEME, La chaleur fatale (2017).",
            ),
            heat_need("Vapeur de procédé", 150.0, 15000.0).note("Réacteurs et distillations."),
            water(Need, "Eau de procédé et de refroidissement", "water/process", 80000.0).note(
                "Appoints d'eau de procédé.",
            ),
            service(Need, "Collecte mutualisée des déchets dangereux", "service/collection", 12.0).note(
                "Enlèvements groupés de déchets dangereux avec les voisins.",
            ),
        ],
        Profile::Gases => vec![
            heat_offer("Chaleur de compression", 55.0, 6000.0).note(
                "Compresseurs d'air de l'unité de séparation ; ≈ 80 % de l'énergie électrique part en chaleur (ADEME).",
            ),
            water(Need, "Eau d'appoint des tours de refroidissement", "water/cooling", 100000.0).note(
                "Appoint compensant évaporation et purges.",
            ),
            service(Offer, "Transport de gaz en retour à vide", "service/logistics", 200.0).note(
                "Tournées de livraison avec capacité de retour.",
            ),
        ],
        Profile::Paints => vec![
            offer("Déchets de peintures et vernis solvantés", "08 01 11*", 80.0).liquid().note(
                "Fonds de cuves et lots déclassés (BREF STS).",
            ),
            offer("Eaux de lavage des cuves", "08 01 20", 300.0).liquid().note("Suspensions aqueuses de peinture."),
            need("Solvants régénérés", "14 06 03*", &["14 06 03*", "07 01 04*", "07 05 04*"], 200.0).liquid().note(
                "BREF STS : les solvants régénérés servent au lavage et à la formulation.",
            ),
            service(Need, "Collecte mutualisée des déchets dangereux", "service/collection", 12.0).note(
                "Enlèvements groupés de déchets dangereux avec les voisins.",
            ),
        ],
        Profile::Pharma => vec![
            offer("Solvants usagés de synthèse", "07 05 04*", 300.0).liquid().note(
                "Solvants de synthèse et de purification ; régénérables (BREF OFC).",
            ),
            offer("Boues de station d'épuration", "07 05 12", 400.0).sludge().note("Boues biologiques non dangereuses."),
            heat_need("Vapeur de procédé", 150.0, 10000.0).note("Réacteurs et séchage."),
            water(Need, "Eau de procédé", "water/process", 60000.0).note("Eau purifiée produite sur site."),
            offer("Emballages souillés", "15 01 10*", 30.0).note("Fûts et sacs contaminés."),
        ],
        Profile::Lab => vec![
            offer("Produits chimiques de laboratoire", "16 05 06*", 2.0).liquid().note("Réactifs usagés et périmés."),
            offer("Films radiographiques argentiques", "09 01 07", 1.0).note("Films de contrôle non destructif, argent récupérable."),
            service(Need, "Collecte mutualisée des déchets dangereux", "service/collection", 6.0).note(
                "Enlèvements groupés de petites quantités.",
            ),
        ],
        Profile::Plastics => vec![
            offer("Chutes et rebuts de production plastique", "07 02 13", 300.0).note(
                "Carottes, purges et rebuts ; Polyvia : ≈ 3 à 5 % de la matière transformée.",
            ),
            need(
                "Matières plastiques recyclées",
                "19 12 04",
                &["19 12 04", "07 02 13", "12 01 05", "15 01 02", "20 01 39", "16 01 19", "17 02 03"],
                500.0,
            )
            .note("Broyats et régénérés ; ADEME, Bilan national du recyclage."),
            heat_offer("Chaleur des refroidisseurs et compresseurs", 45.0, 1200.0).note(
                "Refroidissement des moules et presses ; ADEME, La chaleur fatale (2017).",
            ),
        ],
        Profile::Rubber => vec![
            offer("Déchets de caoutchouc", "07 02 99", 500.0).note("Bavures, chutes de mélanges et rebuts vulcanisés."),
            heat_need("Vapeur de vulcanisation", 180.0, 10000.0).note("Presses de vulcanisation à 150–190 °C."),
            heat_offer("Chaleur des mélangeurs et compresseurs", 50.0, 2000.0).note("ADEME, La chaleur fatale (2017)."),
        ],
        Profile::Retread => vec![
            need("Carcasses de pneus rechapables", "16 01 03", &["16 01 03"], 800.0).note(
                "Carcasses triées parmi les pneus usagés (filière Aliapur).",
            ),
            offer("Poudrette de râpage", "19 12 04", 150.0).powder().note("Gomme râpée avant rechapage."),
            offer("Pneus non rechapables", "16 01 03", 200.0).note("Carcasses refusées au contrôle."),
        ],
        Profile::Steelworks => vec![
            need(
                "Ferrailles",
                "17 04 05",
                &["12 01 01", "17 04 05", "19 12 02", "16 01 17", "19 10 01", "20 01 40", "19 01 02"],
                150000.0,
            )
            .note("Fédération française de l'acier : la ferraille fait ≈ 40 % de l'acier produit en France."),
            offer("Laitiers d'aciérie électrique", "10 02 02", 25000.0).within(100.0).note(
                "BREF IS (2012) : ≈ 100 à 150 kg de laitier par tonne d'acier ; usages routiers.",
            ),
            offer("Calamine", "10 02 10", 3000.0).note("Battitures de laminage ; usages : cimenterie, sidérurgie."),
            offer("Réfractaires usagés", "16 11 04", 1200.0).note("Garnissages de fours et poches."),
            offer("Poussières d'aciérie", "10 02 07*", 2500.0).powder().note(
                "Poussières riches en zinc, recyclables en four Waelz (BREF NFM).",
            ),
            heat_offer("Chaleur fatale des fours de réchauffage", 300.0, 30000.0).note(
                "ADEME, La chaleur fatale (2017) : la métallurgie est le premier gisement à plus de 200 °C.",
            ),
        ],
        Profile::SteelProcessing => vec![
            offer("Chutes et rives d'acier", "12 01 01", 8000.0).note("Chutes de découpe et bouts de tubes."),
            offer("Calamine", "10 02 10", 1500.0).note("Battitures ; usages : cimenterie, sidérurgie."),
            offer("Acides de décapage usés", "11 01 05*", 2000.0).liquid().note("Bains de décapage (BREF STM)."),
            heat_offer("Fumées des fours de recuit", 250.0, 8000.0).note("ADEME, La chaleur fatale (2017)."),
        ],
        Profile::Forge => vec![
            offer("Bavures et chutes de forge", "12 01 01", 2500.0).note("≈ 10 à 20 % du lopin part en bavures (BREF SF)."),
            offer("Calamine de forge", "10 02 10", 400.0).note("Oxydes de chauffe."),
            heat_offer("Chaleur des fours de forge", 250.0, 6000.0).note("ADEME, La chaleur fatale (2017)."),
            offer("Huiles de trempe usagées", "13 01 10*", 10.0).liquid().note("Huiles de trempe et hydrauliques."),
        ],
        Profile::AluminiumExtrusion => vec![
            offer("Chutes de filage d'aluminium", "12 01 03", 3000.0).note("Culots, talons et chutes de profilés."),
            need("Déchets d'aluminium pour refonte", "12 01 03", &["12 01 03", "17 04 02", "19 12 03", "16 01 18"], 8000.0)
                .note("Refonte de billettes ; BREF NFM (2016)."),
            heat_offer("Chaleur des fours d'homogénéisation", 250.0, 5000.0).note("ADEME, La chaleur fatale (2017)."),
        ],
        Profile::SecondaryAluminium => vec![
            need(
                "Déchets d'aluminium",
                "17 04 02",
                &["12 01 03", "17 04 02", "19 12 03", "16 01 18", "15 01 04", "19 10 02"],
                60000.0,
            )
            .note("Affinage de deuxième fusion (BREF NFM 2016)."),
            offer("Scories salées", "10 03 08*", 12000.0).note("BREF NFM : ≈ 200 à 500 kg par tonne en four rotatif à sel."),
            offer("Écumes d'aluminium", "10 03 16", 2000.0).note("Crasses recyclables pour leur aluminium."),
            offer("Poussières de filtration des fumées", "10 03 19*", 800.0).powder().note("Poussières de filtres à manches."),
            heat_offer("Fumées des fours de fusion", 350.0, 10000.0).note("ADEME, La chaleur fatale (2017)."),
        ],
        Profile::Foundry => vec![
            offer("Sables de fonderie usagés", "10 09 08", 6000.0).within(100.0).note(
                "Fondeurs de France : ≈ 0,5 à 1 t de sable par tonne de pièces ; usages : ciment, béton, routes.",
            ),
            offer("Laitiers de four de fonderie", "10 09 03", 600.0).note("≈ 5 % de la fonte coulée."),
            offer("Poussières de dépoussiérage", "10 09 10", 300.0).powder().note("Poussières de sablerie et de fusion."),
            need("Ferrailles et retours", "17 04 05", &["12 01 01", "17 04 05", "19 12 02", "16 01 17"], 10000.0)
                .note("Charge métallique des fours (BREF SF 2005)."),
            need("Sable siliceux", "01 04 09", &["01 04 09"], 3000.0).note("Appoint de sable neuf."),
            heat_offer("Chaleur des fours de fusion", 250.0, 4000.0).note("ADEME, La chaleur fatale (2017)."),
        ],
        Profile::Engineering => vec![
            offer("Copeaux et chutes d'acier", "12 01 01", 300.0).note(
                "CETIM : les copeaux et chutes sont le premier déchet de la mécanique.",
            ),
            offer("Chutes de métaux non ferreux", "12 01 03", 40.0).note("Aluminium, cuivre et laiton."),
            offer("Émulsions d'usinage usées", "12 01 09*", 40.0).liquid().note("Fluides de coupe usés."),
            offer("Huiles usagées", "13 02 05*", 8.0).liquid().note("Huiles hydrauliques et de lubrification."),
            service(Need, "Collecte mutualisée des déchets dangereux", "service/collection", 6.0).note(
                "Enlèvements groupés d'huiles et d'émulsions avec les voisins.",
            ),
        ],
        Profile::Galvanizing => vec![
            offer("Mattes de zinc", "11 05 01", 150.0).note("Zinc dur de fond de bain, recyclé par les affineurs."),
            offer("Cendres de zinc", "11 05 02", 200.0).powder().note("Oxydes de surface du bain."),
            offer("Acides de décapage usés", "11 01 05*", 400.0).liquid().note("Bains de décapage chlorhydrique (BREF STM)."),
            heat_offer("Fumées du bain de zinc", 150.0, 1500.0).note("Bain à ≈ 450 °C ; ADEME, La chaleur fatale (2017)."),
            heat_need("Chauffage des bains de dégraissage", 60.0, 1500.0).note("Bains à 40–70 °C."),
        ],
        Profile::SurfaceTreatment => vec![
            offer("Boues d'hydroxydes métalliques", "11 01 09*", 150.0).sludge().note("Boues de la station de détoxication (BREF STM)."),
            offer("Bains usés", "11 01 05*", 200.0).liquid().note("Bains acides épuisés."),
            heat_offer("Chaleur des fours de traitement thermique", 300.0, 3000.0).note("ADEME, La chaleur fatale (2017)."),
            heat_need("Chauffage des bains de traitement", 70.0, 1000.0).note("Bains à 50–80 °C."),
        ],
        Profile::MetalPackaging => vec![
            offer("Chutes de fer-blanc et d'aluminium", "12 01 01", 1500.0).note("Squelettes de découpe (≈ 10 % de la tôle)."),
            offer("Encres et vernis usagés", "08 03 12*", 20.0).liquid().note("Encres et vernis d'impression sur métal."),
            heat_offer("Chaleur des fours de cuisson des vernis", 180.0, 3000.0).note("Oxydateur thermique ; ADEME, La chaleur fatale (2017)."),
        ],
        Profile::Cables => vec![
            offer("Déchets de câbles", "17 04 11", 500.0).note("Rebuts et fins de bobines."),
            offer("Chutes de cuivre et d'aluminium", "12 01 03", 300.0).note("Chutes de tréfilage."),
            offer("Chutes d'isolants PVC et PE", "07 02 13", 400.0).note("Purges d'extrusion."),
            service(Need, "Tourets bois réutilisables", "equipment/container", 3000.0).note(
                "Tourets à reprendre et réparer plutôt qu'à racheter.",
            ),
        ],
        Profile::HeatNetwork => vec![
            need(
                "Bois-énergie (plaquettes, connexes, bois de rebut)",
                "03 01 05",
                &["03 01 01", "03 01 05", "02 01 07", "19 12 07", "20 01 38", "15 01 03"],
                25000.0,
            )
            .within(100.0)
            .note("ADEME Fonds Chaleur : ≈ 1 t de plaquettes à 30 % d'humidité ≈ 3 MWh."),
            heat_need("Chaleur de récupération pour le réseau", 90.0, 30000.0).note(
                "SNCU / FEDENE : les réseaux de chaleur intègrent de plus en plus de chaleur fatale.",
            ),
            heat_offer("Chaleur du réseau pour les clients industriels", 105.0, 20000.0).note(
                "Départ du réseau à 90–110 °C.",
            ),
            offer("Cendres volantes de chaudière bois", "10 01 03", 1200.0).powder().note(
                "≈ 1 à 3 % du bois brûlé ; amendement calcique ou matériau (ADEME).",
            ),
            offer("Cendres sous foyer de chaudière bois", "10 01 01", 1500.0).note("Mâchefers de chaudière bois."),
        ],
        Profile::PowerPlant => vec![
            need(
                "Biomasse et combustibles solides de récupération",
                "19 12 10",
                &["19 12 10", "03 01 05", "03 01 01", "19 12 07", "20 01 38", "02 01 03"],
                80000.0,
            )
            .category(Category::Energy)
            .note("BREF LCP (2017)."),
            heat_offer("Chaleur de cogénération", 120.0, 50000.0).note("Soutirage de vapeur."),
            offer("Cendres volantes", "10 01 02", 5000.0).powder().note("Usages : béton, ciment (NF EN 450)."),
            offer("Mâchefers de chaudière", "10 01 01", 4000.0).note("Usages routiers."),
        ],
        Profile::Incinerator => vec![
            need(
                "Déchets non dangereux résiduels",
                "20 03 01",
                &["20 03 01", "19 12 12", "19 12 10", "19 08 01", "19 05 01", "20 03 03"],
                120000.0,
            )
            .note("Capacité d'une unité de valorisation énergétique d'agglomération (AMORCE)."),
            heat_offer("Vapeur et eau surchauffée de l'UVE", 130.0, 90000.0).note(
                "≈ 2 MWh de chaleur par tonne incinérée ; AMORCE, ADEME.",
            ),
            offer("Mâchefers d'incinération", "19 01 12", 28000.0).within(80.0).note(
                "≈ 20 à 25 % du tonnage incinéré ; usages routiers (arrêté du 18 novembre 2011).",
            ),
            offer("Ferreux extraits des mâchefers", "19 01 02", 2000.0).note("Métaux ferreux triés sur les mâchefers."),
            offer("Résidus d'épuration des fumées (REFIOM)", "19 01 13*", 3500.0).powder().note(
                "≈ 2 à 4 % du tonnage incinéré, vers stockage de déchets dangereux.",
            ),
        ],
        Profile::Landfill => vec![
            need(
                "Matériaux de couverture inertes",
                "17 05 04",
                &["17 05 04", "19 12 09", "01 04 08", "01 01 02", "20 02 02", "10 13 14"],
                8000.0,
            )
            .within(30.0)
            .note("Couverture des alvéoles d'ISDND (arrêté du 15 février 2016)."),
            water(Offer, "Lixiviats", "water/wastewater", 8000.0).note(
                "Lixiviats à traiter ; ≈ 0,1 à 0,3 m³ par tonne stockée et par an selon la pluviométrie.",
            ),
            heat_offer("Chaleur des moteurs à biogaz de décharge", 85.0, 2500.0).note(
                "Valorisation du biogaz d'ISDND (ADEME).",
            ),
        ],
        Profile::InertLandfill => vec![
            need("Déchets inertes", "17 05 04", &["17 05 04", "17 01 01", "17 01 07", "20 02 02", "17 03 02"], 20000.0)
                .within(30.0)
                .note("Liste d'admission de l'arrêté du 12 décembre 2014 (ISDI)."),
            offer("Granulats recyclés", "19 12 09", 5000.0).within(40.0).note("Concassage des bétons et briques reçus."),
        ],
        Profile::Composting => vec![
            need(
                "Déchets verts et biodéchets",
                "20 02 01",
                &["20 02 01", "02 01 03", "03 01 01", "20 01 08", "20 03 02", "02 03 04", "19 08 05"],
                15000.0,
            )
            .within(40.0)
            .note("Plateforme de compostage ; ADEME, Déchets chiffres-clés."),
            product("Compost normé (NF U 44-051)", "material/biomass/digestate_compost", 7000.0)
                .months(SPREADING)
                .within(40.0)
                .note("≈ 40 à 50 % du tonnage entrant ; produit normé, plus un déchet."),
            offer("Refus de criblage", "19 05 01", 1500.0).note("Indésirables et refus, vers valorisation énergétique."),
        ],
        Profile::Wastewater => vec![
            offer("Boues d'épuration urbaines", "19 08 05", 8000.0).sludge().within(50.0).note(
                "≈ 15 à 20 kg de matière sèche par équivalent-habitant et par an (ADEME) ; épandage, compostage, méthanisation.",
            ),
            water(Offer, "Eaux usées traitées (REUT)", "water/process", 300000.0).note(
                "Eaux traitées réutilisables (décret du 10 mars 2022) pour l'arrosage, le lavage, l'industrie.",
            ),
            offer("Sables de dessablage", "19 08 02", 400.0).note("Sables lavés réutilisables en remblai."),
            offer("Graisses de prétraitement", "19 08 09", 200.0).sludge().note("Graisses méthanogènes."),
            water(Need, "Effluents industriels et lixiviats à traiter", "water/wastewater", 20000.0)
                .accepts(&["19 07 03", "16 10 02"])
                .note("Capacité de traitement disponible pour des effluents compatibles (convention de déversement)."),
        ],
        Profile::Sorting => vec![
            need(
                "Déchets d'activités économiques et emballages en mélange",
                "15 01 06",
                &["15 01 01", "15 01 02", "15 01 03", "15 01 06", "20 01 01", "20 01 39", "17 02 01", "20 01 38"],
                20000.0,
            )
            .note("FEDEREC, Panorama du recyclage ; ADEME, Bilan national du recyclage."),
            offer("Papiers-cartons triés", "19 12 01", 6000.0).note("Balles de papiers-cartons pour les papeteries."),
            offer("Plastiques triés", "19 12 04", 1500.0).note("Films et corps creux en balles."),
            offer("Bois de recyclage broyé", "19 12 07", 4000.0).note("Broyat de bois B pour panneaux ou chaufferies."),
            offer("Combustible solide de récupération (CSR)", "19 12 10", 3000.0).category(Category::Energy).note(
                "Refus de tri préparés ; ADEME, CSR.",
            ),
            offer("Métaux ferreux triés", "19 12 02", 500.0).note("Ferrailles extraites du tri."),
            service(Offer, "Collecte de déchets d'entreprises", "service/collection", 5000.0).note(
                "Tournées de collecte disponibles pour les entreprises voisines.",
            ),
        ],
        Profile::PlasticsRecycling => vec![
            need(
                "Déchets plastiques",
                "19 12 04",
                &["15 01 02", "20 01 39", "19 12 04", "02 01 04", "07 02 13", "12 01 05", "16 01 19", "17 02 03"],
                8000.0,
            )
            .note("Régénération des plastiques (Polyvia, FEDEREC)."),
            product("Granulés de plastique régénéré", "material/plastic", 6000.0).note(
                "Matière première de recyclage pour les plasturgistes.",
            ),
            offer("Refus de tri plastique", "19 12 12", 1000.0).note("Refus vers valorisation énergétique."),
        ],
        Profile::MetalRecycling => vec![
            need(
                "Ferrailles et métaux en mélange",
                "17 04 07",
                &[
                    "12 01 01", "12 01 03", "15 01 04", "16 01 17", "16 01 18", "17 04 05", "17 04 07", "17 04 11",
                    "20 01 40", "17 04 02", "19 01 02",
                ],
                25000.0,
            )
            .note("FEDEREC, Panorama du recyclage."),
            offer("Ferrailles préparées", "19 12 02", 20000.0).note("Ferrailles cisaillées et broyées pour aciéries et fonderies."),
            offer("Métaux non ferreux triés", "19 12 03", 3000.0).note("Aluminium, cuivre, laiton."),
            service(Offer, "Enlèvement de ferrailles sur site", "service/collection", 1500.0).note(
                "Bennes et enlèvements chez les industriels.",
            ),
        ],
        Profile::Dismantler => vec![
            need("Véhicules hors d'usage", "16 01 04*", &["16 01 04*", "16 01 06"], 1500.0).note(
                "Centre VHU agréé ; ADEME, rapport annuel de la filière VHU.",
            ),
            offer("Carcasses et métaux ferreux", "16 01 17", 1000.0).note("≈ 70 % de la masse d'un VHU (ADEME)."),
            offer("Métaux non ferreux", "16 01 18", 60.0).note("Radiateurs, jantes et faisceaux."),
            offer("Pneus usagés", "16 01 03", 80.0).note("Pneus déposés."),
            offer("Huiles moteur usagées", "13 02 05*", 8.0).liquid().note("Vidange des VHU."),
            offer("Batteries au plomb", "16 06 01*", 15.0).note("Batteries déposées."),
            offer("Vitrages", "16 01 20", 15.0).note("Pare-brise et vitres."),
            offer("Pièces plastiques", "16 01 19", 40.0).note("Pare-chocs et planches de bord."),
        ],
        Profile::HazardousWaste => vec![
            need("Solvants et déchets chimiques liquides", "14 06 03*", HAZ_LIQUIDS, 3000.0).liquid().note(
                "Regroupement, régénération ou traitement thermique (FNADE / SYVED).",
            ),
            need("Huiles, émulsions et boues hydrocarburées", "13 02 05*", HAZ_OILS, 4000.0).liquid().note(
                "Régénération des huiles et traitement des émulsions.",
            ),
            need("Déchets dangereux minéraux", "19 01 13*", HAZ_MINERAL, 10000.0).note(
                "REFIOM, poussières, scories salées, bains et batteries : stabilisation, stockage ou recyclage.",
            ),
            need("Emballages souillés et produits de laboratoire", "15 01 10*", HAZ_PACKAGING, 500.0).note(
                "Regroupement et traitement.",
            ),
            service(Offer, "Collecte de déchets dangereux", "service/collection", 3000.0).note(
                "Tournées de collecte de déchets dangereux.",
            ),
        ],
        Profile::Laundry => vec![
            heat_need("Vapeur de lavage et de repassage", 120.0, 6000.0).note("≈ 1 à 1,5 kWh par kg de linge (ADEME)."),
            heat_offer("Chaleur des eaux de lavage", 40.0, 1500.0).note("Eaux tièdes rejetées ; ADEME, La chaleur fatale (2017)."),
            offer("Linge et textiles réformés", "20 01 11", 150.0).note("Textiles en fin de vie, réutilisables en chiffons."),
            water(Offer, "Eaux de lavage", "water/wastewater", 60000.0).note("≈ 5 à 10 L d'eau par kg de linge."),
        ],
        Profile::Logistics => vec![
            service(Offer, "Palettes bois réutilisables", "equipment/container", 5000.0).note(
                "Palettes reçues en surplus, réemployables.",
            ),
            offer("Films plastiques d'emballage", "15 01 02", 60.0).note("Films étirables et housses."),
            offer("Cartons d'emballage", "15 01 01", 150.0).note("Cartons de déballage."),
            service(Offer, "Capacité de transport en retour à vide", "service/logistics", 300.0).note(
                "ADEME / EVE « Objectif CO2 » : retours à vide mutualisables.",
            ),
        ],
        Profile::FuelDepot => vec![
            offer("Boues de séparateurs à hydrocarbures", "13 05 02*", 20.0).sludge().note("Curage des séparateurs."),
            service(Offer, "Capacité de transport en retour à vide", "service/logistics", 200.0).note(
                "Citernes revenant à vide.",
            ),
            offer("Emballages souillés", "15 01 10*", 5.0).note("Emballages de produits pétroliers."),
        ],
        Profile::Pipeline => vec![heat_offer("Gaz d'échappement des turbocompresseurs", 400.0, 15000.0).note(
            "Station de compression ; ADEME, La chaleur fatale (2017).",
        )],
        Profile::Generic => vec![
            offer("Déchets d'emballages en mélange", "15 01 06", 60.0).note("Emballages de production non triés."),
            offer("Chutes métalliques", "12 01 01", 50.0).note("Chutes de fabrication."),
            service(Need, "Collecte mutualisée des déchets d'activités économiques", "service/collection", 52.0).note(
                "Collecte hebdomadaire groupée avec les voisins.",
            ),
        ],
    }
}

/// Whether a profile gets the common packaging offers and shared needs of industrial sites.
pub(super) fn gets_shared(profile: Profile) -> bool {
    !matches!(
        profile,
        Profile::PigFarm
            | Profile::PoultryFarm
            | Profile::MixedFarm
            | Profile::AnyFarm
            | Profile::Methanisation
            | Profile::Quarry
            | Profile::Landfill
            | Profile::InertLandfill
            | Profile::Composting
            | Profile::Wastewater
            | Profile::Incinerator
            | Profile::HeatNetwork
            | Profile::PowerPlant
            | Profile::Sorting
            | Profile::PlasticsRecycling
            | Profile::MetalRecycling
            | Profile::Dismantler
            | Profile::HazardousWaste
            | Profile::Pipeline
    )
}

/// Offers and needs common to most industrial sites, each drawn per site with a probability (%).
/// They make pooling visible: neighbours sharing a collection need or the same packaging waste.
pub(super) fn shared_specs() -> Vec<(Spec, u64)> {
    vec![
        (
            offer("Cartons d'emballage", "15 01 01", 40.0).note(
                "Cartons de réception ; ADEME : les emballages forment une large part des DAE.",
            ),
            60,
        ),
        (
            offer("Palettes bois usagées", "15 01 03", 25.0)
                .note("Palettes cassées ou hors standard."),
            40,
        ),
        (
            offer("Films plastiques d'emballage", "15 01 02", 10.0)
                .note("Films étirables et housses."),
            35,
        ),
        (
            service(
                Need,
                "Collecte mutualisée des déchets d'activités économiques",
                "service/collection",
                52.0,
            )
            .note("Collecte hebdomadaire groupée avec les voisins (décret « 5 flux »)."),
            50,
        ),
        (
            service(
                Need,
                "Palettes reconditionnées",
                "equipment/container",
                1500.0,
            )
            .note("Palettes de réemploi pour les expéditions."),
            30,
        ),
        (
            heat_need("Chauffage des locaux", 60.0, 300.0)
                .months(HEATING_SEASON)
                .note("Ateliers et bureaux ; ≈ 100 à 150 kWh/m²/an (ADEME)."),
            30,
        ),
    ]
}
