//! The console's pages. Each handler reads the session, calls the API in-process under its key
//! ([`InnerApi`]) and renders a template; forms post back here with the session's CSRF token.

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

/// A page of the API, its items only.
#[derive(Debug, Deserialize)]
struct Items<T> {
    items: Vec<T>,
}

// After the macros above (`signed_in!`, `try_page!`): a `macro_rules!` is seen by the modules
// declared after it.
mod actor;
mod territory;
use actor::*;
use territory::*;
