//! The console's territory pages: its home (KPIs, indicators, account, priorities), its synergies as
//! the API lists them (list, detail, pipeline, status moves) and its actors.

use std::collections::BTreeMap;

use actix_web::http::{Method, StatusCode};
use actix_web::{HttpRequest, HttpResponse, web};
use askama::Template;
use serde::Deserialize;

use crate::afme::families::FamilyTable;
use crate::afme::model::Family;
use crate::console::i18n::Lang;
use crate::console::inner::enc;
use crate::console::svg;
use crate::domain::lifecycle::{SynergyStatus, allowed_next};

use super::*;

// ---------------------------------------------------------------------------------------------
// synergies as the API lists them

#[derive(Debug, Clone, Deserialize, Default)]
#[serde(default)]
pub struct Components {
    pub resource_fit: f64,
    pub quantity_coverage: f64,
    pub distance: f64,
    pub time_overlap: f64,
    pub quality: f64,
    pub regulatory_risk: f64,
    pub confidence: f64,
    pub territorial_priority: f64,
}

#[derive(Debug, Clone, Deserialize, Default)]
#[serde(default)]
pub struct ImpactView {
    pub quantity_per_year: f64,
    pub base_unit: String,
    pub diverted_tonnes: f64,
    pub co2e_avoided_t: f64,
    pub transport_co2e_t: f64,
    pub net_co2e_t: f64,
}

#[derive(Debug, Clone, Deserialize, Default)]
#[serde(default)]
pub struct MemberView {
    pub actor_id: String,
}

#[derive(Debug, Clone, Deserialize, Default)]
#[serde(default)]
pub struct LatLngView {
    pub lat: f64,
    pub lng: f64,
}

/// A synergy item of `/synergies`, `/actors/{id}/synergies`, `/resources/{id}/matches`.
#[derive(Debug, Clone, Deserialize, Default)]
#[serde(default)]
pub struct SynergyView {
    pub kind: String,
    pub id: String,
    pub status: String,
    pub score: f64,
    pub provider_actor_id: String,
    pub receiver_actor_id: String,
    pub offer_id: String,
    pub need_id: Option<String>,
    pub provider_name: String,
    pub receiver_name: String,
    pub offer_label: Option<String>,
    pub need_label: Option<String>,
    pub class: String,
    pub ewc_code: Option<String>,
    pub latent: bool,
    pub distance_km: Option<f64>,
    pub distance_band: Option<String>,
    pub quantity: Option<f64>,
    pub base_unit: Option<String>,
    pub components: Option<Components>,
    pub explanation_fr: String,
    pub explanation_en: String,
    pub impact: Option<ImpactView>,
    // pooling groups
    pub key_kind: String,
    pub key: String,
    pub members: Vec<MemberView>,
    pub total_yearly_quantity: Option<f64>,
    pub centroid: Option<LatLngView>,
    pub radius_km: Option<f64>,
}

impl SynergyView {
    pub fn is_pooling(&self) -> bool {
        self.kind == "pooling"
    }

    pub fn explanation(&self, lang: &Lang) -> &str {
        match lang {
            Lang::Fr => &self.explanation_fr,
            Lang::En => &self.explanation_en,
        }
    }

    pub fn title(&self, lang: &Lang) -> String {
        if self.is_pooling() {
            format!(
                "{} · {} {}",
                self.key,
                self.members.len(),
                lang.t("syn.members")
            )
        } else {
            format!(
                "{} → {} · {}",
                self.provider_name,
                self.receiver_name,
                self.offer_label.as_deref().unwrap_or(&self.class)
            )
        }
    }

    pub fn distance(&self, lang: &Lang) -> String {
        match (&self.distance_band, self.distance_km) {
            (Some(band), _) => band.clone(),
            (None, Some(km)) => format!("{} km", lang.num(km, 1)),
            (None, None) => match self.radius_km {
                Some(r) => format!("r = {} km", lang.num(r, 1)),
                None => "—".into(),
            },
        }
    }

    pub fn quantity_text(&self, lang: &Lang) -> String {
        match (
            self.quantity.or(self.total_yearly_quantity),
            &self.base_unit,
        ) {
            (Some(q), Some(u)) => format!("{} {u}", lang.num(q, 1)),
            (Some(q), None) => lang.num(q, 1),
            _ => "—".into(),
        }
    }

    /// Tonnes a year, for line widths (0 when the unit is not the tonne).
    pub fn tonnes(&self) -> f64 {
        match self.base_unit.as_deref() {
            Some("t") => self.quantity.or(self.total_yearly_quantity).unwrap_or(0.0),
            _ => 0.0,
        }
    }

    pub fn family(&self) -> Family {
        let class = if self.is_pooling() && self.key_kind == "need_class" {
            &self.key
        } else {
            &self.class
        };
        let ewc = if self.is_pooling() && self.key_kind != "need_class" {
            Some(self.key.as_str())
        } else {
            self.ewc_code.as_deref()
        };
        FamilyTable::builtin().family_for_resource(class, ewc)
    }

    /// (label, value in [0, 1]) for the score bars.
    pub fn bars(&self, lang: &Lang) -> Vec<(&'static str, f64)> {
        let Some(c) = &self.components else {
            return Vec::new();
        };
        let fr = matches!(lang, Lang::Fr);
        vec![
            (
                if fr { "ressource" } else { "resource fit" },
                c.resource_fit,
            ),
            (
                if fr { "couverture" } else { "coverage" },
                c.quantity_coverage,
            ),
            ("distance", c.distance),
            (
                if fr { "calendrier" } else { "time overlap" },
                c.time_overlap,
            ),
            (if fr { "qualité" } else { "quality" }, c.quality),
            (
                if fr { "risque régl." } else { "regulatory" },
                c.regulatory_risk,
            ),
            (if fr { "confiance" } else { "confidence" }, c.confidence),
            (
                if fr {
                    "priorité terr."
                } else {
                    "territorial priority"
                },
                c.territorial_priority,
            ),
        ]
    }

    /// The statuses it may move to (the domain's rule, also enforced by the API).
    pub fn next_statuses(&self) -> Vec<&'static str> {
        SynergyStatus::parse(&self.status)
            .map(|s| allowed_next(s).iter().map(|n| n.as_str()).collect())
            .unwrap_or_default()
    }
}

#[derive(Debug, Deserialize, Default)]
#[serde(default)]
pub struct PageView {
    pub items: Vec<SynergyView>,
    pub next_cursor: Option<String>,
}

// ---------------------------------------------------------------------------------------------
// territory home

#[derive(Debug, Deserialize, Default)]
#[serde(default)]
pub struct FunnelStepView {
    pub stage: String,
    pub reached: usize,
    pub rate: Option<f64>,
}

#[derive(Debug, Deserialize, Default)]
#[serde(default)]
pub struct OutcomeView {
    pub synergies: usize,
    pub tonnes_exchanged_t: f64,
    pub tonnes_diverted_t: f64,
    pub co2e_avoided_t: f64,
    pub imports_avoided_t: f64,
}

#[derive(Debug, Deserialize, Default)]
#[serde(default)]
pub struct KpiBlockView {
    pub synergies: usize,
    pub funnel: Vec<FunnelStepView>,
    pub implemented: OutcomeView,
    pub in_progress: OutcomeView,
    pub counts: BTreeMap<String, usize>,
}

#[derive(Debug, Deserialize, Default)]
#[serde(default)]
pub struct KpisView {
    pub totals: KpiBlockView,
}

#[derive(Debug, Deserialize, Default)]
#[serde(default)]
pub struct IndicatorView {
    pub code: String,
    pub label: String,
    pub value: f64,
    pub per_capita: Option<f64>,
}

#[derive(Debug, Deserialize, Default)]
#[serde(default)]
pub struct IndicatorsView {
    pub de: IndicatorView,
    pub imp: IndicatorView,
    pub exp: IndicatorView,
    pub dmi: IndicatorView,
    pub dmc: IndicatorView,
    pub ptb: IndicatorView,
    pub dpo: IndicatorView,
    pub nas_residual: IndicatorView,
}

#[derive(Debug, Deserialize, Default)]
#[serde(default)]
pub struct AccountView {
    pub year: i32,
    pub years: Vec<i32>,
    pub indicators: IndicatorsView,
}

#[derive(Debug, Deserialize, Default)]
#[serde(default)]
pub struct PriorityView {
    pub family: String,
    pub import_dependence: Option<f64>,
    pub landfill_share: Option<f64>,
    pub dmc_weight: Option<f64>,
    pub priority: f64,
}

#[derive(Debug, Deserialize, Default)]
#[serde(default)]
pub struct PrioritiesView {
    pub year: Option<i32>,
    pub neutral: bool,
    pub families: Vec<PriorityView>,
}

#[derive(Template)]
#[template(path = "console/home.html")]
pub(super) struct HomePage {
    c: Chrome,
    t: TerritoryView,
    kpis: KpisView,
    funnel_max: usize,
    best: Vec<SynergyView>,
    account: Option<AccountView>,
    indicators: Vec<(String, String, f64, Option<f64>)>,
    sankey_svg: String,
    /// The families the Sankey's bands stand for: (label, colour).
    sankey_families: Vec<(String, &'static str)>,
    priorities: Option<PrioritiesView>,
}

pub(super) async fn home(req: HttpRequest, api: Api, code: web::Path<String>) -> HttpResponse {
    let c = signed_in!(req, api);
    let code = code.into_inner();
    let e = enc(&code);
    // The API calls of the page at once: the page costs its slowest call, not their sum.
    let paths = [
        format!("/territories/{e}"),
        format!("/territories/{e}/kpis"),
        format!("/synergies?territory={e}&limit=8"),
        format!("/territories/{e}/afme"),
        format!("/territories/{e}/afme/sankey"),
        format!("/territories/{e}/priorities"),
    ];
    let (t, kpis, best, account_reply, sankey_reply, priorities) = futures_util::join!(
        c.read::<TerritoryView>(&api, &paths[0]),
        c.read::<KpisView>(&api, &paths[1]),
        c.read::<PageView>(&api, &paths[2]),
        c.get(&api, &paths[3]),
        c.get(&api, &paths[4]),
        c.read::<PrioritiesView>(&api, &paths[5]),
    );
    let t = try_page!(&req, c, t);
    let kpis = try_page!(&req, c, kpis);
    let best = try_page!(&req, c, best);
    let account_reply = try_page!(&req, c, account_reply);
    // No account: a 404, and no AFME section.
    let account: Option<AccountView> = match account_reply.status {
        StatusCode::NOT_FOUND => None,
        _ => Some(try_page!(&req, c, account_reply.parse())),
    };
    let priorities = priorities.ok();
    let mut sankey_svg = String::new();
    let mut sankey_families = Vec::new();
    let mut indicators = Vec::new();
    if let Some(a) = &account {
        // Both answers are of the latest year with an account.
        let s: crate::afme::sankey::Sankey =
            try_page!(&req, c, try_page!(&req, c, sankey_reply).parse());
        sankey_svg = svg::sankey(
            &s,
            |f| family_label(c.lang, f),
            |n| sankey_node_label(c.lang, n),
            "kt",
        );
        let mut families: Vec<&str> = s.links.iter().map(|l| l.family.as_str()).collect();
        families.sort_unstable();
        families.dedup();
        sankey_families = families
            .into_iter()
            .map(|f| (family_label(c.lang, f), svg::family_colour(f)))
            .collect();
        let i = &a.indicators;
        for ind in [
            &i.de,
            &i.imp,
            &i.exp,
            &i.dmi,
            &i.dmc,
            &i.ptb,
            &i.dpo,
            &i.nas_residual,
        ] {
            indicators.push((
                ind.code.clone(),
                ind.label.clone(),
                ind.value,
                ind.per_capita,
            ));
        }
    }
    let funnel_max = kpis
        .totals
        .funnel
        .iter()
        .map(|s| s.reached)
        .max()
        .unwrap_or(0)
        .max(1);
    let page = HomePage {
        c: c.chrome(t.name.clone(), &t.code),
        t,
        kpis,
        funnel_max,
        best: best.items,
        account,
        indicators,
        sankey_svg,
        sankey_families,
        priorities,
    };
    render(&page)
}

/// A Sankey node's name in the reader's language (the API names them in English).
pub(super) fn sankey_node_label(lang: Lang, node: &crate::afme::sankey::SankeyNode) -> String {
    use crate::afme::model::{FlowType, Partner};
    let (Lang::Fr, Some(flow)) = (lang, node.flow) else {
        return node.name.clone();
    };
    let base = match flow {
        FlowType::De => "Extraction intérieure (DE)",
        FlowType::Imp => "Importations (IMP)",
        FlowType::Exp => "Exportations (EXP)",
        FlowType::BiIn => "Éléments d’équilibrage, entrée (BI_IN)",
        FlowType::BiOut => "Éléments d’équilibrage, sortie (BI_OUT)",
        FlowType::Nas => "Addition nette au stock (NAS)",
        FlowType::Dpo => "Émissions et déchets (DPO)",
        FlowType::DpoAir => "Émissions dans l’air (DPO)",
        FlowType::DpoWater => "Émissions dans l’eau (DPO)",
        FlowType::DpoSoil => "Émissions au sol, dissipatives (DPO)",
        FlowType::DpoLandfill => "Déchets mis en décharge (DPO)",
        _ => return node.name.clone(),
    };
    match &node.partner {
        Some(Partner::RestOfFrance) => format!("{base} — reste de la France"),
        Some(Partner::Abroad) => format!("{base} — étranger"),
        Some(Partner::Territory(code)) => format!("{base} — {code}"),
        None => base.to_owned(),
    }
}

// ---------------------------------------------------------------------------------------------
// synergy list, detail, pipeline

#[derive(Debug, Deserialize, Default, Clone)]
#[serde(default)]
pub struct SynergyFilter {
    pub territory: Option<String>,
    pub kind: Option<String>,
    pub class: Option<String>,
    pub status: Option<String>,
    pub min_score: Option<String>,
    pub latent: Option<String>,
    pub cursor: Option<String>,
    pub done: Option<String>,
}

pub(super) fn nonblank(v: &Option<String>) -> Option<&str> {
    v.as_deref().map(str::trim).filter(|s| !s.is_empty())
}

impl SynergyFilter {
    /// The API query: every filter the API has, passed as typed (the API validates).
    fn api_query(&self, territory: &str, limit: usize) -> String {
        let mut q = vec![format!("limit={limit}")];
        if !territory.is_empty() {
            q.push(format!("territory={}", enc(territory)));
        }
        for (name, value) in [
            ("kind", &self.kind),
            ("class", &self.class),
            ("min_score", &self.min_score),
            ("latent", &self.latent),
            ("cursor", &self.cursor),
        ] {
            if let Some(v) = nonblank(value) {
                q.push(format!("{name}={}", enc(v)));
            }
        }
        q.join("&")
    }

    pub fn is(&self, name: &str, value: &str) -> bool {
        let v = match name {
            "kind" => &self.kind,
            "status" => &self.status,
            "latent" => &self.latent,
            _ => &None,
        };
        nonblank(v) == Some(value) || (value.is_empty() && nonblank(v).is_none())
    }

    pub fn text(&self, name: &str) -> String {
        let v = match name {
            "class" => &self.class,
            "min_score" => &self.min_score,
            _ => &None,
        };
        nonblank(v).unwrap_or_default().to_owned()
    }

    fn next_link(&self, territory: &str, cursor: &str) -> String {
        let mut q = vec![format!("territory={}", enc(territory))];
        for (name, value) in [
            ("kind", &self.kind),
            ("class", &self.class),
            ("status", &self.status),
            ("min_score", &self.min_score),
            ("latent", &self.latent),
        ] {
            if let Some(v) = nonblank(value) {
                q.push(format!("{name}={}", enc(v)));
            }
        }
        q.push(format!("cursor={}", enc(cursor)));
        format!("/console/synergies?{}", q.join("&"))
    }
}

#[derive(Template)]
#[template(path = "console/synergies.html")]
pub(super) struct SynergiesPage {
    c: Chrome,
    f: SynergyFilter,
    items: Vec<SynergyView>,
    next: Option<String>,
    statuses: &'static [&'static str],
}

pub(super) const STATUSES: &[&str] = &[
    "detected",
    "proposed",
    "in_study",
    "implemented",
    "rejected",
    "abandoned",
];

pub(super) async fn synergies(
    req: HttpRequest,
    api: Api,
    query: web::Query<SynergyFilter>,
) -> HttpResponse {
    let c = signed_in!(req, api);
    let f = query.into_inner();
    let territory = nonblank(&f.territory)
        .map(str::to_owned)
        .unwrap_or_else(|| c.default_territory());
    let status = nonblank(&f.status).map(str::to_owned);
    // The API lists by score; a status filter reads a larger page and keeps that status.
    let limit = if status.is_some() { 500 } else { 50 };
    let page: PageView = try_page!(
        &req,
        c,
        c.read(
            &api,
            &format!("/synergies?{}", f.api_query(&territory, limit))
        )
        .await
    );
    let items: Vec<SynergyView> = page
        .items
        .into_iter()
        .filter(|s| status.as_deref().is_none_or(|st| s.status == st))
        .collect();
    let next = page
        .next_cursor
        .filter(|_| status.is_none())
        .map(|cursor| f.next_link(&territory, &cursor));
    let page = SynergiesPage {
        c: c.chrome(c.lang.t("nav.synergies"), &territory),
        f,
        items,
        next,
        statuses: STATUSES,
    };
    render(&page)
}

#[derive(Debug, Deserialize, Default)]
#[serde(default)]
pub struct HistoryView {
    pub changed_by: String,
    pub changed_at: String,
    pub from: String,
    pub to: String,
    pub comment: Option<String>,
    pub reason: Option<String>,
}

#[derive(Template)]
#[template(path = "console/synergy.html")]
pub(super) struct SynergyPage {
    c: Chrome,
    s: SynergyView,
    history: Vec<HistoryView>,
    back: String,
    error: Option<String>,
    done: bool,
}

pub(super) async fn synergy(
    req: HttpRequest,
    api: Api,
    id: web::Path<String>,
    query: web::Query<SynergyFilter>,
) -> HttpResponse {
    let c = signed_in!(req, api);
    let id = enc(&id);
    let s: SynergyView = try_page!(&req, c, c.read(&api, &format!("/synergies/{id}")).await);
    let history: Vec<HistoryView> = c
        .read::<Items<HistoryView>>(&api, &format!("/synergies/{id}/history?limit=100"))
        .await
        .map(|h| h.items)
        .unwrap_or_default();
    let territory = nonblank(&query.territory)
        .map(str::to_owned)
        .unwrap_or_else(|| c.default_territory());
    let page = SynergyPage {
        c: c.chrome(s.title(&c.lang), &territory),
        back: format!("/console/synergies/{id}"),
        error: take_flash(&req),
        done: nonblank(&query.done).is_some(),
        s,
        history,
    };
    flashed(&req, render(&page))
}

#[derive(Deserialize)]
pub(super) struct MoveForm {
    csrf: Option<String>,
    status: String,
    comment: Option<String>,
    reason: Option<String>,
    back: Option<String>,
}

/// A status change from the board or the synergy page: `PATCH /synergies/{id}` (the API's
/// transition rules, history and audit), then back where it came from.
pub(super) async fn move_synergy(
    req: HttpRequest,
    api: Api,
    id: web::Path<String>,
    form: web::Form<MoveForm>,
) -> HttpResponse {
    let c = signed_in!(req, api);
    if let Some(r) = csrf_refusal(&c, form.csrf.as_deref()) {
        return r;
    }
    let mut body = serde_json::Map::new();
    body.insert("status".into(), form.status.clone().into());
    for (name, value) in [("comment", &form.comment), ("reason", &form.reason)] {
        if let Some(v) = nonblank(value) {
            body.insert(name.into(), v.into());
        }
    }
    let reply = try_page!(
        &req,
        c,
        c.send(
            &api,
            Method::PATCH,
            &format!("/synergies/{}", enc(&id)),
            Some((
                "application/json",
                serde_json::to_vec(&body).unwrap_or_default()
            )),
        )
        .await
    );
    let back = safe_next(form.back.as_deref());
    let sep = if back.contains('?') { '&' } else { '?' };
    if reply.ok() {
        redirect(&format!("{back}{sep}done={}", enc(&id)))
    } else if reply.status == StatusCode::UNAUTHORIZED {
        to_login(&req)
    } else {
        let mut response = redirect(&back);
        let _ = response.add_cookie(&flash(&req, &reply.detail()));
        response
    }
}

pub(super) struct Column {
    status: &'static str,
    items: Vec<SynergyView>,
    hidden: usize,
}

#[derive(Template)]
#[template(path = "console/pipeline.html")]
pub(super) struct PipelinePage {
    c: Chrome,
    columns: Vec<Column>,
    /// The territory has more synergies than the board read (counts are then lower bounds).
    truncated: bool,
    back: String,
    error: Option<String>,
    done: Option<String>,
}

/// Cards shown per column (the best by score); the rest is counted.
pub(super) const CARDS_PER_COLUMN: usize = 25;

pub(super) async fn pipeline(
    req: HttpRequest,
    api: Api,
    query: web::Query<SynergyFilter>,
) -> HttpResponse {
    let c = signed_in!(req, api);
    let f = query.into_inner();
    let territory = nonblank(&f.territory)
        .map(str::to_owned)
        .unwrap_or_else(|| c.default_territory());
    let page: PageView = try_page!(
        &req,
        c,
        c.read(
            &api,
            &format!("/synergies?{}", f.api_query(&territory, 500))
        )
        .await
    );
    let truncated = page.next_cursor.is_some();
    let mut columns: Vec<Column> = STATUSES
        .iter()
        .map(|&status| Column {
            status,
            items: Vec::new(),
            hidden: 0,
        })
        .collect();
    for s in page.items {
        if let Some(col) = columns.iter_mut().find(|col| col.status == s.status) {
            if col.items.len() < CARDS_PER_COLUMN {
                col.items.push(s);
            } else {
                col.hidden += 1;
            }
        }
    }
    let back = if territory.is_empty() {
        "/console/pipeline".to_owned()
    } else {
        format!("/console/pipeline?territory={}", enc(&territory))
    };
    let page = PipelinePage {
        c: c.chrome(c.lang.t("pipe.title"), &territory),
        columns,
        truncated,
        back,
        error: take_flash(&req),
        done: nonblank(&f.done).map(str::to_owned),
    };
    flashed(&req, render(&page))
}

// ---------------------------------------------------------------------------------------------
// actors of a territory

#[derive(Debug, Deserialize, Default)]
#[serde(default)]
pub(super) struct ActorsQuery {
    naf: Option<String>,
    q: Option<String>,
    cursor: Option<String>,
}

#[derive(Debug, Deserialize, Default)]
#[serde(default)]
pub(super) struct ActorsPage {
    items: Vec<ActorView>,
    next_cursor: Option<String>,
}

#[derive(Template)]
#[template(path = "console/actors.html")]
pub(super) struct ActorsListPage {
    c: Chrome,
    t: TerritoryView,
    naf: String,
    q: String,
    items: Vec<ActorView>,
    next: Option<String>,
}

/// The territory's actors (`GET /actors?territory=…`), filtered by NAF prefix (searched as you
/// type) and words.
pub(super) async fn actors(
    req: HttpRequest,
    api: Api,
    code: web::Path<String>,
    query: web::Query<ActorsQuery>,
) -> HttpResponse {
    let c = signed_in!(req, api);
    let e = enc(&code);
    let naf = nonblank(&query.naf).unwrap_or_default().to_owned();
    let q = nonblank(&query.q).unwrap_or_default().to_owned();
    let mut path = format!("/actors?territory={e}&limit=50");
    for (name, value) in [("naf", &naf), ("q", &q)] {
        if !value.is_empty() {
            path.push_str(&format!("&{name}={}", enc(value)));
        }
    }
    if let Some(cursor) = nonblank(&query.cursor) {
        path.push_str(&format!("&cursor={}", enc(cursor)));
    }
    let territory_path = format!("/territories/{e}");
    let (t, page) = futures_util::join!(
        c.read::<TerritoryView>(&api, &territory_path),
        c.read::<ActorsPage>(&api, &path),
    );
    let t = try_page!(&req, c, t);
    let page = try_page!(&req, c, page);
    let next = page.next_cursor.map(|cursor| {
        format!(
            "/console/territories/{e}/actors?naf={}&q={}&cursor={}",
            enc(&naf),
            enc(&q),
            enc(&cursor)
        )
    });
    render(&ActorsListPage {
        c: c.chrome(format!("{} — {}", t.name, c.lang.t("nav.actors")), &t.code),
        t,
        naf,
        q,
        items: page.items,
        next,
    })
}
