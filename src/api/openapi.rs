//! The OpenAPI 3 document (utoipa) and the interactive docs (Swagger UI, assets embedded in the
//! binary, so `/docs` works offline).

use utoipa::OpenApi;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityRequirement, SecurityScheme};
use utoipa_swagger_ui::SwaggerUi;

use super::{actors, codes, health, import, resources, synergies, territories};

#[derive(OpenApi)]
#[openapi(
    info(
        title = "symbiose",
        description = "Synergy matching for industrial and territorial ecology (EIT): actors, their offers and needs, ranked synergies, and the territory's material flow accounts (AFME).",
        version = env!("CARGO_PKG_VERSION")
    ),
    paths(
        health::live, health::ready,
        codes::search_ewc, codes::get_ewc, codes::search_naf, codes::get_naf,
        territories::list_zones, territories::create_zone, territories::get_territory, territories::children,
        territories::territory_actors, territories::delete_zone,
        actors::list_actors, actors::create_actor, actors::get_actor, actors::replace_actor, actors::patch_actor,
        actors::delete_actor,
        resources::list_resources, resources::list_for_actor, resources::create_resource, resources::get_resource,
        resources::replace_resource, resources::patch_resource, resources::delete_resource,
        import::import_csv,
        synergies::list_synergies, synergies::detect_now, synergies::get_synergy, synergies::actor_synergies,
        synergies::resource_matches, synergies::match_adhoc, synergies::territory_graph,
        synergies::territory_allocation, synergies::territory_chains, synergies::territory_hubs,
    ),
    tags(
        (name = "actors", description = "Companies and sites"),
        (name = "resources", description = "Offers and needs of actors"),
        (name = "territories", description = "Administrative hierarchy and custom zones"),
        (name = "codes", description = "List of Waste and NAF rév.2"),
        (name = "import", description = "Bulk CSV import"),
        (name = "synergies", description = "Ranked, explained substitution and pooling synergies"),
        (name = "graph", description = "The territory's synergy graph: exports, allocation, chains, hubs"),
        (name = "health", description = "Probes"),
        (name = "keys", description = "API keys and the audit log of writes (admin)"),
    )
)]
pub struct ApiDoc;

pub fn document_json() -> utoipa::openapi::OpenApi {
    let mut doc = ApiDoc::openapi();
    // Handlers declared with actix's route macros are mounted in the `/api/v1` scope, which utoipa
    // cannot see: give their paths the prefix they are served under.
    let paths = std::mem::take(&mut doc.paths.paths);
    doc.paths.paths = paths
        .into_iter()
        .map(|(path, item)| {
            if path.starts_with("/api/") || path.starts_with("/health") {
                (path, item)
            } else {
                (format!("/api/v1{path}"), item)
            }
        })
        .collect();
    doc.merge(super::afme::AfmeApiDoc::openapi());
    doc.merge(super::lifecycle::LifecycleApiDoc::openapi());
    doc.merge(super::keys::KeysDoc::openapi());
    doc.merge(super::webhooks::WebhooksApiDoc::openapi());
    // Every /api/v1 operation takes `Authorization: Bearer <key>` (reads may go without one when
    // `auth.public_read` is on).
    doc.components
        .get_or_insert_with(Default::default)
        .add_security_scheme(
            "bearer",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
    doc.security = Some(vec![SecurityRequirement::new(
        "bearer",
        Vec::<String>::new(),
    )]);
    doc
}

/// Interactive API documentation at `/docs` (Swagger UI; its assets are vendored into the binary,
/// so it works offline), reading the document at `/api/v1/openapi.json`.
pub fn docs() -> SwaggerUi {
    SwaggerUi::new("/docs/{_:.*}").url("/api/v1/openapi.json", document_json())
}
