//! Nomenclature search: List of Waste and NAF rév.2.

use actix_web::{HttpResponse, get, web};
use serde::Deserialize;

use super::error::ApiError;
use super::extract::ValidQuery;
use super::{Page, PageParams, State, page_slice};
use crate::matching::ResourceClass;
use crate::reference::{EwcCode, NafEntry};

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.service(search_ewc)
        .service(get_ewc)
        .service(search_naf)
        .service(get_naf)
        .service(list_classes);
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct CodeQuery {
    /// A code prefix (`10 01`, `1001`, `23.5`) or words, French or English, accents and case
    /// ignored, by prefix and stem (`fromagerie` finds « fromage »), plus the trade words of
    /// `knowledge/trade_synonyms.csv` (`scierie` → NAF 16.10, `lactosérum` → EWC 02 05 01).
    pub q: Option<String>,
    pub limit: Option<i64>,
    pub cursor: Option<String>,
}

impl CodeQuery {
    fn page(&self) -> PageParams {
        PageParams {
            limit: self.limit,
            cursor: self.cursor.clone(),
        }
    }
}

/// Search the European List of Waste.
#[utoipa::path(tag = "codes", params(CodeQuery), responses((status = 200, body = Page<EwcCode>), (status = 422, body = super::error::Problem)))]
#[get("/codes/ewc")]
pub async fn search_ewc(
    state: State,
    query: ValidQuery<CodeQuery>,
) -> Result<HttpResponse, ApiError> {
    let query = query.0;
    let hits: Vec<EwcCode> = match query.q.as_deref().map(str::trim).filter(|q| !q.is_empty()) {
        Some(q) => state.reference.search_ewc(q).into_iter().cloned().collect(),
        None => state.reference.ewc.all().to_vec(),
    };
    Ok(HttpResponse::Ok().json(page_slice(&state, &hits, &query.page())?))
}

/// One List of Waste code (`100102`, `10 01 02` or `10 01 02*`).
#[utoipa::path(tag = "codes", responses((status = 200, body = EwcCode), (status = 404, body = super::error::Problem)))]
#[get("/codes/ewc/{code}")]
pub async fn get_ewc(state: State, code: web::Path<String>) -> Result<HttpResponse, ApiError> {
    state
        .reference
        .ewc
        .get(&code)
        .map(|c| HttpResponse::Ok().json(c))
        .ok_or_else(|| ApiError::NotFound(format!("EWC code `{code}`")))
}

/// Search NAF rév.2 (all levels).
#[utoipa::path(tag = "codes", params(CodeQuery), responses((status = 200, body = Page<NafEntry>), (status = 422, body = super::error::Problem)))]
#[get("/codes/naf")]
pub async fn search_naf(
    state: State,
    query: ValidQuery<CodeQuery>,
) -> Result<HttpResponse, ApiError> {
    let query = query.0;
    let hits: Vec<NafEntry> = match query.q.as_deref().map(str::trim).filter(|q| !q.is_empty()) {
        Some(q) => state.reference.search_naf(q).into_iter().cloned().collect(),
        None => state.reference.naf.all().to_vec(),
    };
    Ok(HttpResponse::Ok().json(page_slice(&state, &hits, &query.page())?))
}

/// One NAF code.
#[utoipa::path(tag = "codes", responses((status = 200, body = NafEntry), (status = 404, body = super::error::Problem)))]
#[get("/codes/naf/{code}")]
pub async fn get_naf(state: State, code: web::Path<String>) -> Result<HttpResponse, ApiError> {
    state
        .reference
        .naf
        .get(&code)
        .map(|c| HttpResponse::Ok().json(c))
        .ok_or_else(|| ApiError::NotFound(format!("NAF code `{code}`")))
}

/// The resource-class taxonomy (`knowledge/resource_classes.csv`): every class with its French and
/// English labels, parent, default maximum distance, distance-decay scale and AFME family, in tree
/// order. The values accepted by a resource's `class`.
#[utoipa::path(tag = "codes", responses((status = 200, body = Vec<ResourceClass>)))]
#[get("/codes/classes")]
pub async fn list_classes(state: State) -> HttpResponse {
    HttpResponse::Ok().json(state.detection.taxonomy.classes())
}
