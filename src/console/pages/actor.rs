//! The console's actor pages: an actor and its resources, the declaration form, the map of a
//! territory's actors and the CSV import.

use std::collections::HashMap;

use actix_web::http::{Method, StatusCode, header};
use actix_web::{HttpRequest, HttpResponse, web};
use askama::Template;
use serde::Deserialize;

use crate::auth::Role;
use crate::console::inner::{Failure, InnerApi, enc};
use crate::console::svg;
use crate::domain::resource::{Category, Period, Unit};

use super::*;

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
pub(super) struct ActorPage {
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
pub(super) struct CreatedQuery {
    created: Option<String>,
}

pub(super) async fn actor_page(
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

pub(super) async fn actor(
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
pub(super) fn resource_body(form: &DeclareForm) -> serde_json::Value {
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

pub(super) async fn declare(
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
pub(super) struct CodeQuery {
    q: Option<String>,
}

/// Code search for the form (EWC or NAF, accent-insensitive): the API's `/codes/…`, as JSON.
pub(super) async fn codes(
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
pub(super) struct GeoCollection {
    features: Vec<GeoFeature>,
}

#[derive(Debug, Deserialize, Default)]
#[serde(default)]
pub(super) struct GeoFeature {
    geometry: serde_json::Value,
    properties: serde_json::Value,
}

#[derive(Template)]
#[template(path = "console/map.html")]
pub(super) struct MapPage {
    c: Chrome,
    t: TerritoryView,
    svg: String,
    actors: usize,
    lines: usize,
    pools: usize,
    families: Vec<(String, &'static str)>,
    statuses: Vec<(&'static str, &'static str)>,
}

pub(super) async fn map(
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
pub(super) struct ExportQuery {
    format: Option<String>,
}

/// The graph exports (GeoJSON, GraphML) of the API, downloaded through the session.
pub(super) async fn export(
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
pub(super) struct ImportPage {
    c: Chrome,
    ok: Option<String>,
    problem: Option<String>,
    errors: Vec<ImportErrorView>,
}

pub(super) async fn import_form(req: HttpRequest, api: Api) -> HttpResponse {
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
pub(super) async fn import(req: HttpRequest, api: Api, body: web::Bytes) -> HttpResponse {
    let c = signed_in!(req, api);
    let content_type = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    let parts = match crate::console::multipart::parse(&content_type, &body) {
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
