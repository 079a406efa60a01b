//! The demo's activity of a site, guessed from its name: keyword rules giving a NAF rév.2 sub-class and
//! the resource profile that goes with it (the IREP extract carries no activity code).

use crate::reference::text::fold;

use super::*;

/// What a site is taken to do: its NAF rév.2 sub-class and the resource profile that goes with it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Activity {
    pub naf: &'static str,
    pub profile: Profile,
}

/// Families of sites that share the same kind of offers and needs. Named in snake case in
/// `knowledge/demo_resources.toml` (`PigFarm` → `pig_farm`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Profile {
    PigFarm,
    PoultryFarm,
    MixedFarm,
    /// A farm whose name says nothing of its animals (EARL, GAEC, SCEA…): resolved per site.
    AnyFarm,
    Methanisation,
    Quarry,
    CivilWorks,
    Bitumen,
    Concrete,
    Cement,
    Bricks,
    ContainerGlass,
    GlassWool,
    Sawmill,
    Joinery,
    Panels,
    PaperMill,
    Board,
    Printing,
    Dairy,
    Cheese,
    Meat,
    Bakery,
    FruitProcessing,
    Condiments,
    ReadyMeals,
    Sugar,
    Malting,
    Winery,
    Distillery,
    Chemicals,
    Gases,
    Paints,
    Pharma,
    Lab,
    Plastics,
    Rubber,
    Retread,
    Steelworks,
    SteelProcessing,
    Forge,
    AluminiumExtrusion,
    SecondaryAluminium,
    Foundry,
    Engineering,
    Galvanizing,
    SurfaceTreatment,
    MetalPackaging,
    Cables,
    HeatNetwork,
    PowerPlant,
    Incinerator,
    Landfill,
    InertLandfill,
    Composting,
    Wastewater,
    Sorting,
    PlasticsRecycling,
    MetalRecycling,
    Dismantler,
    HazardousWaste,
    Laundry,
    Logistics,
    FuelDepot,
    Pipeline,
    Generic,
}

/// A keyword rule: the first rule with a pattern found in the folded name wins.
///
/// Patterns are lower-case, accent-free words separated by single spaces; they match whole words of
/// the name (« auto » does not match « automotive »), and a final `*` makes the last word a prefix.
#[derive(Debug)]
pub(super) struct Rule {
    patterns: &'static [&'static str],
    naf: &'static str,
    profile: Profile,
}

pub(super) const fn rule(
    naf: &'static str,
    profile: Profile,
    patterns: &'static [&'static str],
) -> Rule {
    Rule {
        patterns,
        naf,
        profile,
    }
}

/// Written after reading the 301 names. Order matters: specific names come before the generic words
/// they contain (« Paprec Métal » before « Paprec », « Lafarge Granulats » before « Lafarge », the
/// slaughterhouses before the farms, « recyclage automobile » before « recycl* »).
pub(super) const RULES: &[Rule] = &[
    // Agriculture and anaerobic digestion.
    rule(
        "35.21Z",
        Profile::Methanisation,
        &["agri energie", "methanis*", "biogaz", "biomethane"],
    ),
    rule(
        "10.11Z",
        Profile::Meat,
        &["abattoir*", "bigard", "viande*", "sva", "salaison*"],
    ),
    rule("10.12Z", Profile::Meat, &["ldc", "duc", "volailler*"]),
    rule(
        "01.46Z",
        Profile::PigFarm,
        &["porcherie*", "porc", "porcs", "porcin*"],
    ),
    rule(
        "01.47Z",
        Profile::PoultryFarm,
        &["volaille*", "eggfarm*", "avicole*", "oeufs"],
    ),
    rule(
        "01.41Z",
        Profile::MixedFarm,
        &["vaches laitieres", "elevage laitier"],
    ),
    rule(
        "01.50Z",
        Profile::AnyFarm,
        &[
            "earl",
            "gaec",
            "scea",
            "elevage*",
            "ferme",
            "fermes",
            "villegardin",
        ],
    ),
    // Food and drink.
    rule(
        "10.51C",
        Profile::Cheese,
        &["fromagerie*", "fromage*", "laiterie*", "lactalis"],
    ),
    rule(
        "10.51A",
        Profile::Dairy,
        &["yoplait", "ultra frais", "eurial", "yaourt*"],
    ),
    rule(
        "10.71A",
        Profile::Bakery,
        &["brioche*", "boulangerie*", "viennoiserie*", "biscuit*"],
    ),
    rule(
        "10.84Z",
        Profile::Condiments,
        &["amora", "moutarde*", "condiment*"],
    ),
    rule(
        "10.85Z",
        Profile::ReadyMeals,
        &["daunat", "traiteur*", "plats cuisines"],
    ),
    rule("10.32Z", Profile::FruitProcessing, &["granini", "jus"]),
    rule(
        "11.07B",
        Profile::FruitProcessing,
        &["refresco", "boisson*"],
    ),
    rule("10.81Z", Profile::Sugar, &["sucrerie*", "sucre"]),
    rule("11.06Z", Profile::Malting, &["malterie*", "soufflet"]),
    rule("11.01Z", Profile::Distillery, &["distiller*", "biodepe"]),
    rule(
        "11.02B",
        Profile::Winery,
        &[
            "cave",
            "caves",
            "vinicole*",
            "viticole*",
            "loron",
            "vins",
            "domaine",
        ],
    ),
    // Energy and waste (before the generic words « énergie », « recyclage », « déchets »).
    rule(
        "38.21Z",
        Profile::Incinerator,
        &[
            "agglomeration dijonnaise",
            "incinerat*",
            "uiom",
            "uve",
            "valorisation energetique",
        ],
    ),
    rule("38.21Z", Profile::Composting, &["compost*", "terralia"]),
    rule(
        "35.30Z",
        Profile::HeatNetwork,
        &[
            "chauffage urbain",
            "chaufferie*",
            "reseau de chaleur",
            "reseaux de chaleur",
            "energie*",
            "soccram",
            "secua",
        ],
    ),
    rule(
        "35.11Z",
        Profile::PowerPlant,
        &["centrale*", "edf", "cogeneration"],
    ),
    rule(
        "37.00Z",
        Profile::Wastewater,
        &[
            "station d epuration",
            "epuration",
            "step",
            "metropole",
            "assainissement",
            "veolia wts",
            "eaux usees",
        ],
    ),
    rule(
        "38.22Z",
        Profile::HazardousWaste,
        &[
            "chimirec",
            "sarp",
            "sarpi",
            "sevia",
            "epur",
            "resoclean",
            "dechets dangereux",
            "isdd",
            "tredi",
        ],
    ),
    rule(
        "38.21Z",
        Profile::InertLandfill,
        &["dechets inertes", "isdi"],
    ),
    rule(
        "38.31Z",
        Profile::Dismantler,
        &[
            "casse",
            "auto",
            "autos",
            "recyclage automobile",
            "demolition auto",
            "vhu",
            "epave*",
        ],
    ),
    rule(
        "24.42Z",
        Profile::SecondaryAluminium,
        &["refinal", "affinage"],
    ),
    rule("25.99B", Profile::Engineering, &["metaux blancs"]),
    rule(
        "38.32Z",
        Profile::MetalRecycling,
        &[
            "revival",
            "paprec metal",
            "ferraill*",
            "metaux",
            "hensel",
            "shamrock",
            "derichebourg",
        ],
    ),
    rule(
        "38.32Z",
        Profile::PlasticsRecycling,
        &[
            "plastic recycling",
            "paprec plastique*",
            "recyclage plastique*",
        ],
    ),
    rule(
        "38.21Z",
        Profile::Landfill,
        &[
            "coved",
            "isdnd",
            "centre de stockage",
            "installation de stockage",
        ],
    ),
    rule(
        "38.32Z",
        Profile::Sorting,
        &[
            "recycl*",
            "recup*",
            "paprec",
            "reval",
            "acyclea",
            "astra",
            "astradec",
            "astradeis",
            "centre de tri",
            "cdt",
            "bourgogne dechets",
        ],
    ),
    rule(
        "38.21Z",
        Profile::Landfill,
        &[
            "smet",
            "sivom",
            "smevom",
            "smictom",
            "sirtom",
            "syndicat mixte",
            "communaute de communes",
            "com com",
            "mairie",
            "commune",
            "suez",
            "sita",
            "veolia",
            "dechet*",
        ],
    ),
    // Minerals.
    rule(
        "08.11Z",
        Profile::Quarry,
        &["omya", "comblanchien", "pierres", "calcaire*"],
    ),
    rule(
        "08.12Z",
        Profile::Quarry,
        &["granulat*", "carriere*", "sabliere*", "graviere*"],
    ),
    rule(
        "23.51Z",
        Profile::Cement,
        &["ciment*", "vicat", "lafarge", "calcia", "holcim"],
    ),
    rule("23.63Z", Profile::Concrete, &["beton*", "eqiom", "prefa*"]),
    rule(
        "23.32Z",
        Profile::Bricks,
        &[
            "tuilerie*",
            "briqueterie*",
            "terreal",
            "imerys",
            "wienerberger",
            "terre cuite",
        ],
    ),
    rule("23.14Z", Profile::GlassWool, &["isover", "laine de verre"]),
    rule(
        "23.13Z",
        Profile::ContainerGlass,
        &["verrerie*", "verallia", "saint gobain"],
    ),
    rule(
        "23.99Z",
        Profile::Bitumen,
        &["bitume*", "soprema", "etancheite"],
    ),
    // Wood, paper, packaging, printing.
    rule(
        "16.21Z",
        Profile::Panels,
        &["kronospan", "panneau*", "isorel"],
    ),
    rule(
        "16.23Z",
        Profile::Joinery,
        &["arbonis", "charpente*", "menuiserie*", "ossature*"],
    ),
    rule("16.10A", Profile::Sawmill, &["scierie*", "sciage*", "bois"]),
    rule("17.12Z", Profile::PaperMill, &["papeterie*", "papier*"]),
    rule(
        "17.21A",
        Profile::Board,
        &[
            "smurfit",
            "saica",
            "international paper",
            "carton ondule",
            "cartonnerie*",
        ],
    ),
    rule(
        "17.21B",
        Profile::Board,
        &["mayr melnhof", "cartonnage*", "carton*"],
    ),
    rule(
        "25.92Z",
        Profile::MetalPackaging,
        &["massilly", "capsule*", "boites metalliques"],
    ),
    rule(
        "18.12Z",
        Profile::Printing,
        &["imprim*", "printing", "paragon"],
    ),
    // Chemicals and pharmaceuticals.
    rule(
        "49.50Z",
        Profile::Pipeline,
        &["grtgaz", "grt gaz", "gazoduc"],
    ),
    rule(
        "20.11Z",
        Profile::Gases,
        &[
            "air liquide",
            "westfalen",
            "linde",
            "messer",
            "gaz industriel*",
        ],
    ),
    rule(
        "72.19Z",
        Profile::Lab,
        &["laboratoire de chimie", "recherche"],
    ),
    rule(
        "71.20B",
        Profile::Lab,
        &["mistras", "essais", "laboratoire d analyse*"],
    ),
    rule(
        "20.51Z",
        Profile::Chemicals,
        &[
            "titanobel",
            "davey bickford",
            "explosif*",
            "eurenco",
            "pyrotechn*",
        ],
    ),
    rule(
        "20.30Z",
        Profile::Paints,
        &["ppg", "valspar", "peinture*", "vernis", "akzo"],
    ),
    rule(
        "20.41Z",
        Profile::Chemicals,
        &["hygiene et nature", "detergent*", "savon*"],
    ),
    rule(
        "20.52Z",
        Profile::Chemicals,
        &["adhex", "colle", "colles", "adhesi*"],
    ),
    rule("20.16Z", Profile::Plastics, &["benvic", "rtp", "polymere*"]),
    rule(
        "20.14Z",
        Profile::Chemicals,
        &[
            "premester",
            "specialty operations",
            "rhodia",
            "solvay",
            "chimie organique",
        ],
    ),
    rule(
        "20.59Z",
        Profile::Chemicals,
        &["chemetall", "bioxal", "chimi*", "chemical*"],
    ),
    rule("21.10Z", Profile::Pharma, &["pharma*", "corden"]),
    rule(
        "21.20Z",
        Profile::Pharma,
        &["urgo", "laboratoires", "medicament*"],
    ),
    // Rubber and plastics.
    rule("22.11Z", Profile::Retread, &["pneu", "rechap*"]),
    rule("22.11Z", Profile::Rubber, &["michelin", "pneumatique*"]),
    rule(
        "22.19Z",
        Profile::Rubber,
        &["gates", "sumiriko", "caoutchouc", "rubber", "elastomere*"],
    ),
    rule(
        "22.21Z",
        Profile::Plastics,
        &["knauf", "renolit", "polystyrene", "isba"],
    ),
    rule(
        "22.22Z",
        Profile::Plastics,
        &[
            "amcor",
            "berry",
            "superfos",
            "plastipack",
            "packaging",
            "emballage*",
        ],
    ),
    rule(
        "22.29A",
        Profile::Plastics,
        &["plast*", "dynaplast", "ese", "injection plastique"],
    ),
    // Metals.
    rule("24.10Z", Profile::SteelProcessing, &["aperam stainless"]),
    rule(
        "24.10Z",
        Profile::Steelworks,
        &["aperam", "industeel", "ugitech", "acierie*", "siderurg*"],
    ),
    rule(
        "24.20Z",
        Profile::SteelProcessing,
        &["salzgitter", "valti", "tube", "tubes", "etirage"],
    ),
    rule(
        "24.42Z",
        Profile::AluminiumExtrusion,
        &["constellium", "alcan", "pechiney", "aluminium"],
    ),
    rule(
        "24.53Z",
        Profile::Foundry,
        &[
            "fonderie d aluminium",
            "fonderie alu*",
            "fonderie de metaux legers",
        ],
    ),
    rule("24.51Z", Profile::Foundry, &["fonderie*", "fondeur*"]),
    rule(
        "25.50A",
        Profile::Forge,
        &[
            "forge",
            "forges",
            "setforge",
            "aubert",
            "gevelot",
            "estampage",
            "matricage",
        ],
    ),
    rule("25.30Z", Profile::Engineering, &["framatome", "chaudiere*"]),
    rule("25.61Z", Profile::Galvanizing, &["galva*"]),
    rule(
        "25.61Z",
        Profile::SurfaceTreatment,
        &[
            "metal protection",
            "traitement de surface*",
            "thermie",
            "traitement thermique",
            "anodis*",
            "chromage",
        ],
    ),
    rule(
        "25.11Z",
        Profile::Engineering,
        &["conimast", "charpente metallique", "pylone*"],
    ),
    rule(
        "25.93Z",
        Profile::Engineering,
        &["metal deploye", "ressort*", "trefil*"],
    ),
    rule("25.99A", Profile::Engineering, &["tefal"]),
    // Vehicles, machinery, electrical equipment.
    rule(
        "29.31Z",
        Profile::Engineering,
        &["lighting", "electronique automobile"],
    ),
    rule("29.10Z", Profile::Engineering, &["powertrain", "fpt"]),
    rule(
        "29.20Z",
        Profile::Engineering,
        &["fruehauf", "remorque*", "carrosserie*"],
    ),
    rule(
        "29.32Z",
        Profile::Engineering,
        &[
            "automotive",
            "eurostyle",
            "tubauto",
            "al ko",
            "u shin",
            "valeo",
            "equipementier*",
        ],
    ),
    rule(
        "30.30Z",
        Profile::Engineering,
        &["figeac aero", "safran", "snecma", "aero*", "aeronaut*"],
    ),
    rule(
        "28.22Z",
        Profile::Engineering,
        &["haulotte", "levage", "manutention"],
    ),
    rule("28.12Z", Profile::Engineering, &["parker", "hydraul*"]),
    rule(
        "28.13Z",
        Profile::Engineering,
        &["mouvex", "pompe*", "suntec", "compresseur*"],
    ),
    rule(
        "28.15Z",
        Profile::Engineering,
        &["skf", "roulement*", "engrenage*"],
    ),
    rule("28.11Z", Profile::Engineering, &["thermodyn", "turbine*"]),
    rule(
        "28.25Z",
        Profile::Engineering,
        &["alfa laval", "echangeur*"],
    ),
    rule(
        "27.32Z",
        Profile::Cables,
        &["nexans", "prysmian", "cable*", "cablerie*"],
    ),
    rule("27.33Z", Profile::Engineering, &["gewiss", "appareillage"]),
    rule("27.51Z", Profile::Engineering, &["seb", "electromenager"]),
    rule(
        "26.11Z",
        Profile::Engineering,
        &["kyocera", "avx", "composant*"],
    ),
    rule(
        "31.01Z",
        Profile::Engineering,
        &["tolix", "hmy", "meuble*", "agencement"],
    ),
    rule(
        "32.30Z",
        Profile::Engineering,
        &["look fixations", "fixations", "article de sport"],
    ),
    rule(
        "33.17Z",
        Profile::Engineering,
        &["technicentre", "ferroviaire"],
    ),
    // Services.
    rule(
        "96.01A",
        Profile::Laundry,
        &["elis", "initial", "blanchisserie*", "lavandiere*"],
    ),
    rule(
        "46.71Z",
        Profile::FuelDepot,
        &["butagaz", "primagaz", "antargaz"],
    ),
    rule(
        "52.10B",
        Profile::FuelDepot,
        &[
            "entrepot petrolier",
            "depot petrolier",
            "raffinerie du midi",
            "hydrocarbure*",
        ],
    ),
    rule(
        "46.75Z",
        Profile::Logistics,
        &["brenntag", "distribution chimique"],
    ),
    rule(
        "52.10B",
        Profile::Logistics,
        &["lyreco", "entrepot*", "plateforme logistique"],
    ),
    rule(
        "49.41A",
        Profile::Logistics,
        &["transport*", "sobotram", "logistique"],
    ),
    rule("42.21Z", Profile::CivilWorks, &["sade", "canalisation*"]),
    rule(
        "42.11Z",
        Profile::CivilWorks,
        &[
            "tp",
            "travaux publics",
            "colas",
            "eurovia",
            "routier*",
            "terrassement*",
            "demolition",
        ],
    ),
    // Generic metalworking last: « métal » is in many names that a rule above already placed.
    rule(
        "25.62B",
        Profile::Engineering,
        &[
            "metal*",
            "usinage",
            "mecani*",
            "chaudronnerie",
            "ateliers",
            "decolletage",
        ],
    ),
];

/// A farm whose name does not say its animals: IREP farms are intensive pig and poultry units
/// (the IED thresholds), with a few mixed ones. Chosen per site, deterministically.
pub(super) const FARM_CHOICES: &[(&str, Profile)] = &[
    ("01.46Z", Profile::PigFarm),
    ("01.47Z", Profile::PoultryFarm),
    ("01.50Z", Profile::MixedFarm),
];

/// Unknown names: « other manufacturing n.e.c. » says honestly that we do not know the trade.
pub(super) const DEFAULT_ACTIVITY: Activity = Activity {
    naf: "32.99Z",
    profile: Profile::Generic,
};

/// Every NAF code the rules can give, for the tests.
pub fn all_naf_codes() -> Vec<&'static str> {
    let mut codes: Vec<&str> = RULES
        .iter()
        .filter(|r| r.profile != Profile::AnyFarm)
        .map(|r| r.naf)
        .collect();
    codes.extend(FARM_CHOICES.iter().map(|(naf, _)| *naf));
    codes.push(DEFAULT_ACTIVITY.naf);
    codes.sort_unstable();
    codes.dedup();
    codes
}

/// Every profile the rules can give (farms resolved): the ones the templates must describe.
pub(super) fn all_profiles() -> Vec<Profile> {
    let mut profiles: Vec<Profile> = RULES
        .iter()
        .map(|r| r.profile)
        .filter(|p| *p != Profile::AnyFarm)
        .collect();
    profiles.extend(FARM_CHOICES.iter().map(|(_, p)| *p));
    profiles.push(DEFAULT_ACTIVITY.profile);
    let mut seen = HashSet::new();
    profiles.retain(|p| seen.insert(*p));
    profiles
}

/// The activity guessed from an establishment's name (`id` only breaks the tie for unnamed farms).
pub fn activity(name: &str, id: &str) -> Activity {
    let words: Vec<String> = fold(name)
        .split(|c: char| !c.is_ascii_alphanumeric())
        .filter(|w| !w.is_empty())
        .map(str::to_owned)
        .collect();
    let haystack = format!(" {} ", words.join(" "));
    let found = RULES
        .iter()
        .find(|r| r.patterns.iter().any(|p| contains_pattern(&haystack, p)));
    match found {
        None => DEFAULT_ACTIVITY,
        Some(r) if r.profile == Profile::AnyFarm => {
            // 40 % pigs, 40 % poultry, 20 % mixed farming.
            let (naf, profile) = match hash(id, "farm") % 5 {
                0 | 1 => FARM_CHOICES[0],
                2 | 3 => FARM_CHOICES[1],
                _ => FARM_CHOICES[2],
            };
            Activity { naf, profile }
        }
        Some(r) => Activity {
            naf: r.naf,
            profile: r.profile,
        },
    }
}

/// Whole-word match of `pattern` in ` word word … ` (a final `*` makes the last word a prefix).
pub(super) fn contains_pattern(haystack: &str, pattern: &str) -> bool {
    match pattern.strip_suffix('*') {
        Some(prefix) => haystack.contains(&format!(" {prefix}")),
        None => haystack.contains(&format!(" {pattern} ")),
    }
}
