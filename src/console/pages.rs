//! The console's pages. Each handler reads the session, calls the API in-process under its key
//! ([`InnerApi`]) and renders a template; forms post back here with the session's CSRF token.

use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;

use actix_web::cookie::time::Duration;
use actix_web::http::{Method, StatusCode, header};
use actix_web::{HttpRequest, HttpResponse, web};
use askama::Template;
use serde::Deserialize;

use super::i18n::Lang;
use super::inner::{Failure, InnerApi, Reply, enc};
use super::session::{self, LANG_COOKIE, LOGIN_COOKIE, SESSION_COOKIE, Session};
use super::svg::{self, esc};
use crate::afme::families::FamilyTable;
use crate::afme::model::Family;
use crate::auth::{Principal, Role, hash_key};
use crate::db;
use crate::domain::lifecycle::{SynergyStatus, allowed_next};
use crate::domain::resource::{Category, Period, Unit};

type Outlines = web::Data<svg::Outlines>;
type Api = web::Data<InnerApi>;

pub fn routes(cfg: &mut web::ServiceConfig, import_limit: usize) {
    cfg.route("", web::get().to(start))
        .route("/", web::get().to(start))
        .route("/assets/{name}", web::get().to(asset))
        .route("/login", web::get().to(login_form))
        .route("/login", web::post().to(login))
        .route("/logout", web::post().to(logout))
        .route("/lang", web::get().to(switch_lang))
        .route("/territories/{code}", web::get().to(home))
        .route("/territories/{code}/map", web::get().to(map))
        .route("/territories/{code}/actors", web::get().to(actors))
        .route("/territories/{code}/export", web::get().to(export))
        .route("/synergies", web::get().to(synergies))
        .route("/synergies/{id}", web::get().to(synergy))
        .route("/synergies/{id}/status", web::post().to(move_synergy))
        .route("/pipeline", web::get().to(pipeline))
        .route("/actors/{id}", web::get().to(actor))
        .route("/actors/{id}/resources", web::post().to(declare))
        .route("/codes/{list}", web::get().to(codes))
        .service(
            web::resource("/import")
                .app_data(web::PayloadConfig::new(import_limit))
                .route(web::get().to(import_form))
                .route(web::post().to(import)),
        );
}

// ---------------------------------------------------------------------------------------------
// request context

/// What every page shows around its content.
pub struct Chrome {
    pub lang: Lang,
    pub title: String,
    pub user: String,
    pub role: String,
    pub scope: String,
    pub csrf: String,
    /// The territory the navigation links point to.
    pub territory: String,
    /// This page's path and query (for the language switch).
    pub here: String,
    pub can_write: bool,
}

impl Chrome {
    pub fn t(&self, key: &str) -> &'static str {
        self.lang.t(key)
    }

    pub fn other_lang(&self) -> &'static str {
        self.lang.other().code()
    }

    pub fn here_enc(&self) -> String {
        enc(&self.here)
    }

    pub fn territory_enc(&self) -> String {
        enc(&self.territory)
    }

    pub fn status(&self, status: &str) -> &'static str {
        self.lang.status(status)
    }

    pub fn num(&self, value: impl Number, decimals: usize) -> String {
        self.lang.num(value.value(), decimals)
    }

    pub fn pct(&self, value: impl Number) -> String {
        format!("{} %", self.lang.num(value.value() * 100.0, 0))
    }

    pub fn family(&self, code: &str) -> String {
        family_label(self.lang, code)
    }
}

/// A number as templates hand it over: by value or behind references.
pub trait Number {
    fn value(&self) -> f64;
}

impl Number for f64 {
    fn value(&self) -> f64 {
        *self
    }
}

impl<T: Number + ?Sized> Number for &T {
    fn value(&self) -> f64 {
        (**self).value()
    }
}

/// A signed-in request.
struct Ctx {
    session: Session,
    principal: Principal,
    lang: Lang,
    peer: Option<SocketAddr>,
    here: String,
}

impl Ctx {
    fn chrome(&self, title: impl Into<String>, territory: &str) -> Chrome {
        let role = match self.principal.role {
            Role::Admin => "role.admin",
            Role::Facilitator => "role.facilitator",
            Role::Partner => "role.partner",
        };
        Chrome {
            lang: self.lang,
            title: title.into(),
            user: self.principal.name.clone(),
            role: self.lang.t(role).to_owned(),
            scope: if self.principal.territories.is_empty() {
                self.lang.t("scope.national").to_owned()
            } else {
                self.principal.territories.join(", ")
            },
            csrf: self.session.csrf.clone(),
            territory: territory.to_owned(),
            here: self.here.clone(),
            can_write: self.principal.role != Role::Partner,
        }
    }

    fn default_territory(&self) -> String {
        self.principal
            .territories
            .first()
            .cloned()
            .unwrap_or_default()
    }

    async fn get(&self, api: &InnerApi, path: &str) -> Result<Reply, Failure> {
        api.get(path, &self.session.key, self.peer).await
    }

    async fn read<T: serde::de::DeserializeOwned>(
        &self,
        api: &InnerApi,
        path: &str,
    ) -> Result<T, Failure> {
        api.read(path, &self.session.key, self.peer).await
    }

    async fn send(
        &self,
        api: &InnerApi,
        method: Method,
        path: &str,
        body: Option<(&str, Vec<u8>)>,
    ) -> Result<Reply, Failure> {
        api.call(method, path, &self.session.key, self.peer, body)
            .await
    }
}

fn lang_of(req: &HttpRequest) -> Lang {
    req.cookie(LANG_COOKIE)
        .and_then(|c| Lang::parse(c.value()))
        .unwrap_or(Lang::Fr)
}

fn here_of(req: &HttpRequest) -> String {
    match req.uri().query() {
        Some(q) => format!("{}?{q}", req.path()),
        None => req.path().to_owned(),
    }
}

/// A path inside the console, for redirects after sign-in or a language switch (never elsewhere).
fn safe_next(next: Option<&str>) -> String {
    match next {
        Some(n)
            if n.starts_with("/console")
                && !n.starts_with("//")
                && !n.contains('\\')
                && n.chars().all(|c| c.is_ascii_graphic()) =>
        {
            n.to_owned()
        }
        _ => "/console".to_owned(),
    }
}

fn redirect(to: &str) -> HttpResponse {
    HttpResponse::SeeOther()
        .insert_header((header::LOCATION, to.to_owned()))
        .finish()
}

fn to_login(req: &HttpRequest) -> HttpResponse {
    redirect(&format!("/console/login?next={}", enc(&here_of(req))))
}

/// The signed-in context, or the redirect to the sign-in page.
async fn ctx(req: &HttpRequest, api: &InnerApi) -> Result<Ctx, HttpResponse> {
    let state = api.state();
    let Some(session) = Session::of(req, &state.settings.auth.anonymisation_secret) else {
        return Err(to_login(req));
    };
    match principal(api, &session.key).await {
        Ok(Some(principal)) => Ok(Ctx {
            session,
            principal,
            lang: lang_of(req),
            peer: req.peer_addr(),
            here: here_of(req),
        }),
        Ok(None) => Err(to_login(req)),
        Err(f) => Err(error_page(lang_of(req), &f)),
    }
}

/// The holder of `key` (the gate's own lookup), `None` when unknown or revoked.
async fn principal(api: &InnerApi, key: &str) -> Result<Option<Principal>, Failure> {
    let hash = hash_key(key);
    let row = db::run(&api.state().pool, move |conn| {
        db::keys::find_active(conn, &hash)
    })
    .await
    .map_err(|e| Failure::internal(e.to_string()))?;
    Ok(row.as_ref().and_then(Principal::from_row))
}

/// The session's CSRF token must come with every form.
fn csrf_refusal(ctx: &Ctx, submitted: Option<&str>) -> Option<HttpResponse> {
    if submitted.is_some_and(|t| ctx.session.check_csrf(t)) {
        None
    } else {
        Some(error_page(
            ctx.lang,
            &Failure::status(
                StatusCode::FORBIDDEN,
                "CSRF token missing or wrong: reload the page and try again",
            ),
        ))
    }
}

/// The message of a refused change, carried to the next page in a short-lived cookie (never in
/// the URL, where a link could put any text on a page).
const FLASH_COOKIE: &str = "symbiose_flash";

fn flash(req: &HttpRequest, text: &str) -> actix_web::cookie::Cookie<'static> {
    let text: String = text.chars().take(600).collect();
    session::cookie(req, FLASH_COOKIE, hex::encode(text), Duration::minutes(5))
}

/// The flash message of this request, if any, and the response cookie that clears it.
fn take_flash(req: &HttpRequest) -> Option<String> {
    let cookie = req.cookie(FLASH_COOKIE)?;
    let bytes = hex::decode(cookie.value()).ok()?;
    String::from_utf8(bytes).ok().filter(|t| !t.is_empty())
}

/// `response`, clearing the flash cookie when the request had one.
fn flashed(req: &HttpRequest, mut response: HttpResponse) -> HttpResponse {
    if req.cookie(FLASH_COOKIE).is_some() {
        let _ = response.add_cookie(&session::removal(req, FLASH_COOKIE));
    }
    response
}

fn html(status: StatusCode, body: String) -> HttpResponse {
    HttpResponse::build(status)
        .content_type("text/html; charset=utf-8")
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .body(body)
}

fn render(page: &impl Template) -> HttpResponse {
    match page.render() {
        Ok(body) => html(StatusCode::OK, body),
        Err(e) => html(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!(
                "<!doctype html><title>error</title><p>{}</p>",
                esc(&e.to_string())
            ),
        ),
    }
}

#[derive(Template)]
#[template(path = "console/error.html")]
struct ErrorPage {
    c: Chrome,
    status: u16,
    detail: String,
}

fn error_page(lang: Lang, failure: &Failure) -> HttpResponse {
    let page = ErrorPage {
        c: Chrome {
            lang,
            title: lang.t("error.title").to_owned(),
            user: String::new(),
            role: String::new(),
            scope: String::new(),
            csrf: String::new(),
            territory: String::new(),
            here: "/console".into(),
            can_write: false,
        },
        status: failure.status.as_u16(),
        detail: failure.detail.clone(),
    };
    match page.render() {
        Ok(body) => html(failure.status, body),
        Err(_) => html(failure.status, esc(&failure.detail)),
    }
}

/// A failed API call as a page: a revoked key (401) goes back to the sign-in page.
fn failed(req: &HttpRequest, ctx: &Ctx, failure: &Failure) -> HttpResponse {
    if failure.status == StatusCode::UNAUTHORIZED {
        return to_login(req);
    }
    error_page(ctx.lang, failure)
}

macro_rules! try_page {
    ($req:expr, $ctx:expr, $e:expr) => {
        match $e {
            Ok(v) => v,
            Err(f) => return failed($req, &$ctx, &f),
        }
    };
}

macro_rules! signed_in {
    ($req:expr, $api:expr) => {
        match ctx(&$req, &$api).await {
            Ok(c) => c,
            Err(response) => return response,
        }
    };
}

fn family_label(lang: Lang, code: &str) -> String {
    Family::parse(code)
        .and_then(|f| FamilyTable::builtin().info(f))
        .map(|i| match lang {
            Lang::Fr => i.label_fr.clone(),
            Lang::En => i.label_en.clone(),
        })
        .unwrap_or_else(|| code.to_owned())
}

// ---------------------------------------------------------------------------------------------
// assets, sign-in, language

const CSS: &str = include_str!("../../assets/console/console.css");
const JS: &str = include_str!("../../assets/console/console.js");

async fn asset(name: web::Path<String>) -> HttpResponse {
    let (body, kind) = match name.as_str() {
        "console.css" => (CSS, "text/css; charset=utf-8"),
        "console.js" => (JS, "text/javascript; charset=utf-8"),
        _ => return HttpResponse::NotFound().finish(),
    };
    HttpResponse::Ok()
        .content_type(kind)
        .insert_header((header::CACHE_CONTROL, "public, max-age=3600"))
        .body(body)
}

#[derive(Template)]
#[template(path = "console/login.html")]
struct LoginPage {
    c: Chrome,
    next: String,
    error: Option<&'static str>,
}

#[derive(Deserialize)]
struct NextQuery {
    next: Option<String>,
}

fn login_page(req: &HttpRequest, next: String, error: Option<&'static str>) -> HttpResponse {
    let lang = lang_of(req);
    let token = session::random_token();
    let page = LoginPage {
        c: Chrome {
            lang,
            title: lang.t("login.title").to_owned(),
            user: String::new(),
            role: String::new(),
            scope: String::new(),
            csrf: token.clone(),
            territory: String::new(),
            here: here_of(req),
            can_write: false,
        },
        next,
        error,
    };
    let mut response = render(&page);
    if error.is_some() {
        *response.status_mut() = StatusCode::UNAUTHORIZED;
    }
    let cookie = session::cookie(req, LOGIN_COOKIE, token, Duration::hours(1));
    let _ = response.add_cookie(&cookie);
    response
}

async fn login_form(req: HttpRequest, query: web::Query<NextQuery>) -> HttpResponse {
    login_page(&req, safe_next(query.next.as_deref()), None)
}

#[derive(Deserialize)]
struct LoginForm {
    key: String,
    csrf: String,
    next: Option<String>,
}

async fn login(req: HttpRequest, api: Api, form: web::Form<LoginForm>) -> HttpResponse {
    let next = safe_next(form.next.as_deref());
    let expected = req.cookie(LOGIN_COOKIE);
    if !expected.is_some_and(|c| session::same(c.value(), &form.csrf)) {
        return login_page(&req, next, Some("login.expired"));
    }
    let key = form.key.trim().to_owned();
    match principal(&api, &key).await {
        Ok(Some(_)) => {
            let secret = &api.state().settings.auth.anonymisation_secret;
            let cookie = Session::new(key).cookie(&req, secret);
            let mut response = redirect(&next);
            let _ = response.add_cookie(&cookie);
            let _ = response.add_cookie(&session::removal(&req, LOGIN_COOKIE));
            response
        }
        Ok(None) => login_page(&req, next, Some("login.bad")),
        Err(f) => error_page(lang_of(&req), &f),
    }
}

#[derive(Deserialize)]
struct CsrfForm {
    csrf: Option<String>,
}

async fn logout(req: HttpRequest, api: Api, form: web::Form<CsrfForm>) -> HttpResponse {
    let c = signed_in!(req, api);
    if let Some(r) = csrf_refusal(&c, form.csrf.as_deref()) {
        return r;
    }
    let mut response = redirect("/console/login");
    let _ = response.add_cookie(&session::removal(&req, SESSION_COOKIE));
    response
}

#[derive(Deserialize)]
struct LangQuery {
    to: Option<String>,
    next: Option<String>,
}

async fn switch_lang(req: HttpRequest, query: web::Query<LangQuery>) -> HttpResponse {
    let lang = query
        .to
        .as_deref()
        .and_then(Lang::parse)
        .unwrap_or(Lang::Fr);
    let mut response = redirect(&safe_next(query.next.as_deref()));
    let mut cookie = session::cookie(
        &req,
        LANG_COOKIE,
        lang.code().to_owned(),
        Duration::days(365),
    );
    cookie.set_http_only(false);
    let _ = response.add_cookie(&cookie);
    response
}

// ---------------------------------------------------------------------------------------------
// territory picker

#[derive(Debug, Clone, Deserialize)]
pub struct TerritoryView {
    pub code: String,
    pub kind: String,
    pub name: String,
    #[serde(default)]
    pub parent: Option<String>,
    #[serde(default)]
    pub population: u64,
    #[serde(default)]
    pub lat: f64,
    #[serde(default)]
    pub lng: f64,
}

impl TerritoryView {
    pub fn kind_label(&self, lang: &Lang) -> &'static str {
        lang.t(&format!("kind.{}", self.kind))
    }
}

#[derive(Template)]
#[template(path = "console/pick.html")]
struct PickPage {
    c: Chrome,
    q: String,
    yours: Vec<TerritoryView>,
    found: Vec<TerritoryView>,
    searched: bool,
}

#[derive(Deserialize)]
struct PickQuery {
    q: Option<String>,
}

async fn start(req: HttpRequest, api: Api, query: web::Query<PickQuery>) -> HttpResponse {
    let c = signed_in!(req, api);
    let q = query.q.clone().unwrap_or_default();
    if q.trim().is_empty() && c.principal.territories.len() == 1 {
        return redirect(&format!(
            "/console/territories/{}",
            enc(&c.principal.territories[0])
        ));
    }
    let mut yours = Vec::new();
    for code in &c.principal.territories {
        if let Ok(t) = c
            .read::<TerritoryView>(&api, &format!("/territories/{}", enc(code)))
            .await
        {
            yours.push(t);
        }
    }
    let found = if q.trim().is_empty() {
        Vec::new()
    } else {
        search_territories(&c, &api, q.trim()).await
    };
    let page = PickPage {
        c: c.chrome(c.lang.t("pick.title"), &c.default_territory()),
        searched: !q.trim().is_empty(),
        q,
        yours,
        found,
    };
    render(&page)
}

/// Territories whose name or code matches `q` (accent- and case-insensitive): the reference
/// hierarchy and the custom zones this key may read.
async fn search_territories(c: &Ctx, api: &InnerApi, q: &str) -> Vec<TerritoryView> {
    use crate::reference::text::fold;
    let state = api.state();
    let geo = &state.reference.geo;
    let wanted = fold(q);
    let mut found = Vec::new();
    if let Some(t) = geo.territory(q) {
        found.push(t);
    }
    let mut queue = geo.territory("FR").map(|t| vec![t]).unwrap_or_default();
    while let Some(t) = queue.pop() {
        for child in geo.children(&t) {
            if fold(&child.name).contains(&wanted) && found.iter().all(|f| f.code != child.code) {
                found.push(child.clone());
            }
            if !matches!(
                child.kind,
                crate::reference::TerritoryKind::Commune | crate::reference::TerritoryKind::Zone
            ) {
                queue.push(child);
            }
        }
        if found.len() > 200 {
            break;
        }
    }
    let mut out: Vec<TerritoryView> = found
        .into_iter()
        .filter_map(|t| serde_json::to_value(t).ok())
        .filter_map(|v| serde_json::from_value(v).ok())
        .collect();
    // Custom zones (the first 500; the API pages them).
    if let Ok(zones) = c
        .read::<Items<TerritoryView>>(api, "/territories?limit=500")
        .await
    {
        out.extend(
            zones
                .items
                .into_iter()
                .filter(|z| fold(&z.name).contains(&wanted) || fold(&z.code).contains(&wanted)),
        );
    }
    // Larger territories first, then by name.
    let rank = |k: &str| match k {
        "country" => 0,
        "region" => 1,
        "departement" => 2,
        "zone" => 3,
        "epci" => 4,
        _ => 5,
    };
    out.sort_by(|a, b| {
        rank(&a.kind)
            .cmp(&rank(&b.kind))
            .then(b.population.cmp(&a.population))
    });
    out.truncate(40);
    out
}

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
pub struct BalanceView {
    pub gap: Option<f64>,
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
struct HomePage {
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

async fn home(req: HttpRequest, api: Api, code: web::Path<String>) -> HttpResponse {
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
fn sankey_node_label(lang: Lang, node: &crate::afme::sankey::SankeyNode) -> String {
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

fn nonblank(v: &Option<String>) -> Option<&str> {
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
struct SynergiesPage {
    c: Chrome,
    f: SynergyFilter,
    items: Vec<SynergyView>,
    next: Option<String>,
    statuses: &'static [&'static str],
}

const STATUSES: &[&str] = &[
    "detected",
    "proposed",
    "in_study",
    "implemented",
    "rejected",
    "abandoned",
];

async fn synergies(req: HttpRequest, api: Api, query: web::Query<SynergyFilter>) -> HttpResponse {
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
struct SynergyPage {
    c: Chrome,
    s: SynergyView,
    history: Vec<HistoryView>,
    back: String,
    error: Option<String>,
    done: bool,
}

async fn synergy(
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
struct MoveForm {
    csrf: Option<String>,
    status: String,
    comment: Option<String>,
    reason: Option<String>,
    back: Option<String>,
}

/// A status change from the board or the synergy page: `PATCH /synergies/{id}` (the API's
/// transition rules, history and audit), then back where it came from.
async fn move_synergy(
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

struct Column {
    status: &'static str,
    items: Vec<SynergyView>,
    hidden: usize,
}

#[derive(Template)]
#[template(path = "console/pipeline.html")]
struct PipelinePage {
    c: Chrome,
    columns: Vec<Column>,
    /// The territory has more synergies than the board read (counts are then lower bounds).
    truncated: bool,
    back: String,
    error: Option<String>,
    done: Option<String>,
}

/// Cards shown per column (the best by score); the rest is counted.
const CARDS_PER_COLUMN: usize = 25;

async fn pipeline(req: HttpRequest, api: Api, query: web::Query<SynergyFilter>) -> HttpResponse {
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
struct ActorsQuery {
    naf: Option<String>,
    q: Option<String>,
    cursor: Option<String>,
}

#[derive(Debug, Deserialize, Default)]
#[serde(default)]
struct ActorsPage {
    items: Vec<ActorView>,
    next_cursor: Option<String>,
}

#[derive(Template)]
#[template(path = "console/actors.html")]
struct ActorsListPage {
    c: Chrome,
    t: TerritoryView,
    naf: String,
    q: String,
    items: Vec<ActorView>,
    next: Option<String>,
}

/// The territory's actors (`GET /actors?territory=…`), filtered by NAF prefix (searched as you
/// type) and words.
async fn actors(
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

// ---------------------------------------------------------------------------------------------
// actor page and declaration form

#[derive(Debug, Deserialize, Default, Clone)]
#[serde(default)]
pub struct ActorView {
    pub id: String,
    pub name: String,
    pub siret: Option<String>,
    pub naf_code: String,
    pub naf_label: Option<String>,
    pub address: Option<String>,
    pub commune_insee: String,
    pub commune_name: Option<String>,
    pub share_with_partners: bool,
    pub illustrative: bool,
    pub anonymous: bool,
}

impl ActorView {
    pub fn place(&self) -> String {
        match &self.commune_name {
            Some(name) => format!("{name} ({})", self.commune_insee),
            None => self.commune_insee.clone(),
        }
    }
}

#[derive(Debug, Deserialize, Default, Clone)]
#[serde(default)]
pub struct QuantityView {
    pub value: f64,
    pub unit: String,
    pub period: String,
}

#[derive(Debug, Deserialize, Default, Clone)]
#[serde(default)]
pub struct ResourceView {
    pub id: String,
    pub kind: String,
    pub category: String,
    pub class: String,
    pub label: String,
    pub ewc_code: Option<String>,
    pub quantity: Option<QuantityView>,
}

/// A page of the API, its items only.
#[derive(Debug, Deserialize)]
struct Items<T> {
    items: Vec<T>,
}

pub struct ResourceBlock {
    pub r: ResourceView,
    pub matches: Vec<SynergyView>,
}

/// The declaration form as typed, to show it again with the API's messages.
#[derive(Debug, Deserialize, Default, Clone)]
#[serde(default)]
pub struct DeclareForm {
    pub csrf: Option<String>,
    pub kind: String,
    pub category: String,
    pub label: String,
    pub ewc_code: String,
    /// Needs: the EWC codes accepted, separated by commas or semicolons.
    pub accepted_ewc: String,
    pub quantity: String,
    pub unit: String,
    pub period: String,
    pub temperature_c: String,
    pub description: String,
}

impl DeclareForm {
    pub fn is(&self, name: &str, value: &str) -> bool {
        let v = match name {
            "kind" => &self.kind,
            "category" => &self.category,
            "unit" => &self.unit,
            "period" => &self.period,
            _ => return false,
        };
        v == value
    }
}

#[derive(Template)]
#[template(path = "console/actor.html")]
struct ActorPage {
    c: Chrome,
    a: ActorView,
    resources: Vec<ResourceBlock>,
    form: DeclareForm,
    errors: Vec<(String, String)>,
    created: bool,
    categories: Vec<&'static str>,
    units: Vec<&'static str>,
    periods: Vec<&'static str>,
}

impl ActorPage {
    /// The messages of the API for a form field (`quantity` also gets `quantity.value`…).
    pub fn errors_for(&self, field: &str) -> Vec<String> {
        self.errors
            .iter()
            .filter(|(f, _)| {
                f == field
                    || f.strip_prefix(field)
                        .is_some_and(|rest| rest.starts_with('.'))
            })
            .map(|(_, m)| m.clone())
            .collect()
    }

    /// Messages for fields that have no input of their own.
    pub fn other_errors(&self) -> Vec<String> {
        const FIELDS: [&str; 8] = [
            "kind",
            "category",
            "label",
            "ewc_code",
            "accepted_ewc",
            "quantity",
            "temperature_c",
            "description",
        ];
        self.errors
            .iter()
            .filter(|(f, _)| {
                !FIELDS.iter().any(|field| {
                    f == field
                        || f.strip_prefix(field)
                            .is_some_and(|r| r.starts_with(['.', '[']))
                })
            })
            .map(|(f, m)| format!("{f}: {m}"))
            .collect()
    }
}

#[derive(Deserialize)]
struct CreatedQuery {
    created: Option<String>,
}

async fn actor_page(
    req: &HttpRequest,
    api: &InnerApi,
    c: &Ctx,
    id: &str,
    form: DeclareForm,
    errors: Vec<(String, String)>,
    created: bool,
) -> HttpResponse {
    let e = enc(id);
    let a: ActorView = try_page!(req, c, c.read(api, &format!("/actors/{e}")).await);
    let list: Items<ResourceView> = try_page!(
        req,
        c,
        c.read(api, &format!("/actors/{e}/resources?limit=100"))
            .await
    );
    let mut resources = Vec::new();
    for r in list.items {
        let matches: PageView = c
            .read(api, &format!("/resources/{}/matches?limit=5", enc(&r.id)))
            .await
            .unwrap_or_default();
        resources.push(ResourceBlock {
            r,
            matches: matches.items,
        });
    }
    let status = if errors.is_empty() {
        StatusCode::OK
    } else {
        StatusCode::UNPROCESSABLE_ENTITY
    };
    let page = ActorPage {
        c: c.chrome(a.name.clone(), &c.default_territory()),
        a,
        resources,
        form,
        errors,
        created,
        categories: Category::ALL.iter().map(|v| v.as_str()).collect(),
        units: Unit::ALL.iter().map(|v| v.as_str()).collect(),
        periods: Period::ALL.iter().map(|v| v.as_str()).collect(),
    };
    let mut response = render(&page);
    if response.status() == StatusCode::OK {
        *response.status_mut() = status;
    }
    response
}

async fn actor(
    req: HttpRequest,
    api: Api,
    id: web::Path<String>,
    query: web::Query<CreatedQuery>,
) -> HttpResponse {
    let c = signed_in!(req, api);
    let form = DeclareForm {
        kind: "offer".into(),
        category: "material".into(),
        unit: "t".into(),
        period: "year".into(),
        ..DeclareForm::default()
    };
    actor_page(
        &req,
        &api,
        &c,
        &id,
        form,
        Vec::new(),
        query.created.is_some(),
    )
    .await
}

/// The JSON body of `POST /actors/{id}/resources` from the form; numbers the form cannot read are
/// passed as text so that the API names the field.
fn resource_body(form: &DeclareForm) -> serde_json::Value {
    use serde_json::{Value, json};
    let number = |text: &str| -> Option<Value> {
        let t = text.trim().replace(',', ".");
        if t.is_empty() {
            None
        } else {
            Some(
                t.parse::<f64>()
                    .ok()
                    .and_then(|n| serde_json::Number::from_f64(n).map(Value::Number))
                    .unwrap_or_else(|| Value::String(text.trim().to_owned())),
            )
        }
    };
    let mut body = json!({
        "kind": form.kind.trim(),
        "category": form.category.trim(),
        "label": form.label,
    });
    let text = |v: &str| (!v.trim().is_empty()).then(|| Value::String(v.trim().to_owned()));
    if let Some(ewc) = text(&form.ewc_code) {
        body["ewc_code"] = ewc;
    }
    let accepted: Vec<Value> = form
        .accepted_ewc
        .split([',', ';'])
        .map(str::trim)
        .filter(|c| !c.is_empty())
        .map(|c| Value::String(c.to_owned()))
        .collect();
    if !accepted.is_empty() {
        body["accepted_ewc"] = Value::Array(accepted);
    }
    if let Some(d) = text(&form.description) {
        body["description"] = d;
    }
    if let Some(t) = number(&form.temperature_c) {
        body["temperature_c"] = t;
    }
    if let Some(value) = number(&form.quantity) {
        body["quantity"] = json!({
            "value": value,
            "unit": form.unit.trim(),
            "period": form.period.trim(),
        });
    }
    body
}

async fn declare(
    req: HttpRequest,
    api: Api,
    id: web::Path<String>,
    form: web::Form<DeclareForm>,
) -> HttpResponse {
    let c = signed_in!(req, api);
    let form = form.into_inner();
    if let Some(r) = csrf_refusal(&c, form.csrf.as_deref()) {
        return r;
    }
    let body = serde_json::to_vec(&resource_body(&form)).unwrap_or_default();
    let reply = try_page!(
        &req,
        c,
        c.send(
            &api,
            Method::POST,
            &format!("/actors/{}/resources", enc(&id)),
            Some(("application/json", body)),
        )
        .await
    );
    if reply.ok() {
        let created = reply
            .body
            .get("id")
            .and_then(|v| v.as_str())
            .unwrap_or_default()
            .to_owned();
        return redirect(&format!(
            "/console/actors/{}?created={}#resource-{}",
            enc(&id),
            enc(&created),
            enc(&created)
        ));
    }
    if reply.status == StatusCode::UNPROCESSABLE_ENTITY {
        let errors = reply.field_errors();
        return actor_page(&req, &api, &c, &id, form, errors, false).await;
    }
    failed(&req, &c, &Failure::from_reply(&reply))
}

#[derive(Deserialize)]
struct CodeQuery {
    q: Option<String>,
}

/// Code search for the form (EWC or NAF, accent-insensitive): the API's `/codes/…`, as JSON.
async fn codes(
    req: HttpRequest,
    api: Api,
    list: web::Path<String>,
    query: web::Query<CodeQuery>,
) -> HttpResponse {
    let Ok(c) = ctx(&req, &api).await else {
        return HttpResponse::Unauthorized().finish();
    };
    let list = match list.as_str() {
        "ewc" => "ewc",
        "naf" => "naf",
        _ => return HttpResponse::NotFound().finish(),
    };
    let q = query.q.clone().unwrap_or_default();
    match c
        .get(&api, &format!("/codes/{list}?q={}&limit=15", enc(&q)))
        .await
    {
        Ok(reply) => HttpResponse::build(reply.status)
            .content_type("application/json")
            .body(reply.text),
        Err(f) => HttpResponse::build(f.status).body(f.detail),
    }
}

// ---------------------------------------------------------------------------------------------
// map

#[derive(Debug, Deserialize, Default)]
#[serde(default)]
struct GeoCollection {
    features: Vec<GeoFeature>,
}

#[derive(Debug, Deserialize, Default)]
#[serde(default)]
struct GeoFeature {
    geometry: serde_json::Value,
    properties: serde_json::Value,
}

#[derive(Template)]
#[template(path = "console/map.html")]
struct MapPage {
    c: Chrome,
    t: TerritoryView,
    svg: String,
    actors: usize,
    lines: usize,
    pools: usize,
    families: Vec<(String, &'static str)>,
    statuses: Vec<(&'static str, &'static str)>,
}

async fn map(
    req: HttpRequest,
    api: Api,
    outlines: Outlines,
    code: web::Path<String>,
) -> HttpResponse {
    let c = signed_in!(req, api);
    let e = enc(&code);
    let paths = [
        format!("/territories/{e}"),
        // `min_score=1`: the territory's actors without the edges (drawn from the list below).
        format!("/territories/{e}/graph?format=geojson&min_score=1"),
        format!("/synergies?territory={e}&limit=300"),
    ];
    let (t, graph, list) = futures_util::join!(
        c.read::<TerritoryView>(&api, &paths[0]),
        c.read::<GeoCollection>(&api, &paths[1]),
        c.read::<PageView>(&api, &paths[2]),
    );
    let t = try_page!(&req, c, t);
    let graph = try_page!(&req, c, graph);
    let list = try_page!(&req, c, list);
    // Actor positions as the API gives them to this reader (anonymised ones at their commune).
    let mut positions: HashMap<String, (f64, f64, String, bool)> = HashMap::new();
    for f in &graph.features {
        if f.properties.get("kind").and_then(|k| k.as_str()) != Some("actor") {
            continue;
        }
        let coords = f.geometry.get("coordinates").and_then(|c| c.as_array());
        let (Some(id), Some(lng), Some(lat)) = (
            f.properties.get("id").and_then(|v| v.as_str()),
            coords.and_then(|c| c.first()).and_then(|v| v.as_f64()),
            coords.and_then(|c| c.get(1)).and_then(|v| v.as_f64()),
        ) else {
            continue;
        };
        let name = f
            .properties
            .get("name")
            .and_then(|v| v.as_str())
            .unwrap_or_default()
            .to_owned();
        // Anonymised actors carry the anonymiser's opaque id, a UUID v5 (auth::anonymise), where
        // actors have v4 ids: they have no page of their own for this reader.
        let anonymous = f.properties.get("anonymous").and_then(|v| v.as_bool()) == Some(true)
            || (c.principal.role == Role::Partner
                && uuid::Uuid::parse_str(id).is_ok_and(|u| u.get_version_num() == 5));
        positions.insert(id.to_owned(), (lng, lat, name, anonymous));
    }
    let mut families: HashMap<String, Vec<String>> = HashMap::new();
    let mut lines = Vec::new();
    let mut pools = Vec::new();
    for s in &list.items {
        let family = s.family().as_str().to_owned();
        if s.is_pooling() {
            if let (Some(centroid), Some(r)) = (&s.centroid, s.radius_km) {
                pools.push(svg::MapPool {
                    id: s.id.clone(),
                    lng: centroid.lng,
                    lat: centroid.lat,
                    radius_km: r,
                    title: s.title(&c.lang),
                });
            }
            continue;
        }
        let (Some(from), Some(to)) = (
            positions.get(&s.provider_actor_id),
            positions.get(&s.receiver_actor_id),
        ) else {
            continue;
        };
        families
            .entry(s.provider_actor_id.clone())
            .or_default()
            .push(family.clone());
        lines.push(svg::MapLine {
            id: s.id.clone(),
            from: (from.0, from.1),
            to: (to.0, to.1),
            tonnes: s.tonnes(),
            status: s.status.clone(),
            title: format!(
                "{} · {} · {}",
                s.title(&c.lang),
                c.lang.status(&s.status),
                s.quantity_text(&c.lang)
            ),
        });
    }
    let actors: Vec<svg::MapActor> = positions
        .iter()
        .map(|(id, (lng, lat, name, anonymous))| svg::MapActor {
            id: id.clone(),
            link: !anonymous,
            name: name.clone(),
            lng: *lng,
            lat: *lat,
            family: families.get(id).and_then(|f| svg::most_frequent(f.clone())),
        })
        .collect();
    // Zoom: the territory's outline when it has one, else its actors.
    let geo = &api.state().reference.geo;
    let mut focus: Vec<&svg::Outline> = Vec::new();
    match t.kind.as_str() {
        "region" => {
            if let Some(o) = outlines.region(t.code.trim_start_matches('R')) {
                focus.push(o);
            }
        }
        "departement" => {
            if let Some(o) = outlines.departement(&t.code) {
                focus.push(o);
            }
        }
        _ => {}
    }
    let mut bbox = svg::BBox::empty();
    for o in &focus {
        bbox.union(&o.bbox);
    }
    if bbox.is_empty() {
        if let Some(reference) = geo.territory(&t.code) {
            for commune in geo.children(&reference) {
                bbox.add(commune.lng, commune.lat);
            }
        }
        for a in &actors {
            bbox.add(a.lng, a.lat);
        }
        if bbox.is_empty() {
            bbox.add(t.lng, t.lat);
        }
    }
    let bbox = bbox.padded(0.05, 0.15);
    let svg = svg::map(
        &outlines,
        &focus,
        bbox,
        &actors,
        &lines,
        &pools,
        &format!("{} — {}", t.name, c.lang.t("map.title")),
    );
    let mut used: Vec<String> = actors.iter().filter_map(|a| a.family.clone()).collect();
    used.sort();
    used.dedup();
    let page = MapPage {
        c: c.chrome(format!("{} — {}", t.name, c.lang.t("map.title")), &t.code),
        svg,
        actors: actors.len(),
        lines: lines.len(),
        pools: pools.len(),
        families: used
            .into_iter()
            .map(|f| {
                let colour = svg::family_colour(&f);
                (family_label(c.lang, &f), colour)
            })
            .collect(),
        statuses: STATUSES
            .iter()
            .map(|s| (c.lang.status(s), svg::status_colour(s)))
            .collect(),
        t,
    };
    render(&page)
}

#[derive(Deserialize)]
struct ExportQuery {
    format: Option<String>,
}

/// The graph exports (GeoJSON, GraphML) of the API, downloaded through the session.
async fn export(
    req: HttpRequest,
    api: Api,
    code: web::Path<String>,
    query: web::Query<ExportQuery>,
) -> HttpResponse {
    let c = signed_in!(req, api);
    let (format, kind, ext) = match query.format.as_deref() {
        Some("graphml") => ("graphml", "application/graphml+xml", "graphml"),
        _ => ("geojson", "application/geo+json", "geojson"),
    };
    let reply = try_page!(
        &req,
        c,
        c.get(
            &api,
            &format!("/territories/{}/graph?format={format}", enc(&code))
        )
        .await
    );
    if !reply.ok() {
        return failed(&req, &c, &Failure::from_reply(&reply));
    }
    let file: String = code
        .chars()
        .filter(|ch| ch.is_ascii_alphanumeric() || *ch == '-')
        .collect();
    HttpResponse::Ok()
        .content_type(kind)
        .insert_header((
            header::CONTENT_DISPOSITION,
            format!("attachment; filename=\"symbiose-{file}.{ext}\""),
        ))
        .body(reply.text)
}

// ---------------------------------------------------------------------------------------------
// import

#[derive(Debug, Deserialize, Default)]
#[serde(default)]
pub struct ImportErrorView {
    pub field: String,
    pub message: String,
    pub row: Option<u64>,
}

#[derive(Template)]
#[template(path = "console/import.html")]
struct ImportPage {
    c: Chrome,
    ok: Option<String>,
    problem: Option<String>,
    errors: Vec<ImportErrorView>,
}

async fn import_form(req: HttpRequest, api: Api) -> HttpResponse {
    let c = signed_in!(req, api);
    render(&ImportPage {
        c: c.chrome(c.lang.t("import.title"), &c.default_territory()),
        ok: None,
        problem: None,
        errors: Vec::new(),
    })
}

/// The upload: a `multipart/form-data` form with `csrf` and `file`, read up to the API's import
/// limit, then `POST /import` as `text/csv` (all rows or none, the API's row errors shown).
async fn import(req: HttpRequest, api: Api, body: web::Bytes) -> HttpResponse {
    let c = signed_in!(req, api);
    let content_type = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    let parts = match super::multipart::parse(&content_type, &body) {
        Ok(parts) => parts,
        Err(e) => {
            return error_page(c.lang, &Failure::status(StatusCode::BAD_REQUEST, e));
        }
    };
    let token = parts
        .iter()
        .find(|p| p.name == "csrf")
        .map(|p| String::from_utf8_lossy(&p.data).into_owned());
    if let Some(r) = csrf_refusal(&c, token.as_deref()) {
        return r;
    }
    let chrome = c.chrome(c.lang.t("import.title"), &c.default_territory());
    let Some(file) = parts
        .into_iter()
        .find(|p| p.name == "file" && !p.data.is_empty())
    else {
        let mut r = render(&ImportPage {
            c: chrome,
            ok: None,
            problem: Some(c.lang.t("import.empty").to_owned()),
            errors: Vec::new(),
        });
        *r.status_mut() = StatusCode::UNPROCESSABLE_ENTITY;
        return r;
    };
    let reply = try_page!(
        &req,
        c,
        c.send(&api, Method::POST, "/import", Some(("text/csv", file.data)))
            .await
    );
    let (ok, problem, errors, status) = if reply.ok() {
        (Some(reply.text.clone()), None, Vec::new(), StatusCode::OK)
    } else {
        let errors: Vec<ImportErrorView> = reply
            .body
            .get("errors")
            .cloned()
            .and_then(|e| serde_json::from_value(e).ok())
            .unwrap_or_default();
        (None, Some(reply.detail()), errors, reply.status)
    };
    let mut r = render(&ImportPage {
        c: chrome,
        ok,
        problem,
        errors,
    });
    *r.status_mut() = status;
    r
}
