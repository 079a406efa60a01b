//! Exports for the tools facilitators use: JSON nodes/links (d3), GraphML (Gephi), GeoJSON.

use super::*;

/// Node of the JSON export (d3 force-layout shape).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct JsonNode {
    pub id: Uuid,
    pub name: String,
    pub naf_code: Option<String>,
    pub lat: f64,
    pub lng: f64,
    pub in_degree: usize,
    pub out_degree: usize,
}

/// Link of the JSON export; `source`/`target` are actor ids.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct JsonLink {
    pub source: Uuid,
    pub target: Uuid,
    pub synergy_id: Uuid,
    pub offer_id: Uuid,
    pub need_id: Option<Uuid>,
    pub score: f64,
    pub class: String,
    pub distance_km: f64,
    /// Potential yearly quantity (see [`GraphEdge::potential_quantity`]), in `base_unit`.
    pub quantity: Option<f64>,
    pub base_unit: String,
    pub latent: bool,
}

/// `{nodes, links}`, the shape d3 and most JS graph libraries read.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct GraphJson {
    /// Sorted by actor id.
    pub nodes: Vec<JsonNode>,
    /// Sorted by synergy id.
    pub links: Vec<JsonLink>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub enum FeatureCollectionType {
    FeatureCollection,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub enum FeatureType {
    Feature,
}

/// GeoJSON geometry; coordinates are `[longitude, latitude]` (RFC 7946).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(tag = "type")]
pub enum GeoGeometry {
    Point { coordinates: [f64; 2] },
    LineString { coordinates: Vec<[f64; 2]> },
}

/// What a feature stands for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum FeatureKind {
    Actor,
    Synergy,
}

/// Properties of an actor (Point) feature.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct ActorProperties {
    pub kind: FeatureKind,
    pub id: Uuid,
    pub name: String,
    pub naf_code: Option<String>,
    pub in_degree: usize,
    pub out_degree: usize,
}

/// Properties of a synergy (LineString) feature.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct SynergyProperties {
    pub kind: FeatureKind,
    pub synergy_id: Uuid,
    pub source: Uuid,
    pub target: Uuid,
    pub offer_id: Uuid,
    pub need_id: Option<Uuid>,
    pub score: f64,
    pub class: String,
    pub distance_km: f64,
    pub quantity: Option<f64>,
    pub base_unit: String,
    pub latent: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(untagged)]
pub enum GeoProperties {
    Actor(ActorProperties),
    Synergy(SynergyProperties),
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct GeoFeature {
    #[serde(rename = "type")]
    pub kind: FeatureType,
    pub id: Uuid,
    pub geometry: GeoGeometry,
    pub properties: GeoProperties,
}

/// GeoJSON FeatureCollection: actors as Points, then synergies as two-point LineStrings from provider
/// to receiver.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct GeoJsonCollection {
    #[serde(rename = "type")]
    pub kind: FeatureCollectionType,
    pub features: Vec<GeoFeature>,
}

impl SynergyGraph {
    fn degrees(&self, node: NodeIndex) -> (usize, usize) {
        (
            self.graph.edges_directed(node, Direction::Incoming).count(),
            self.graph.edges_directed(node, Direction::Outgoing).count(),
        )
    }

    /// `{nodes, links}` JSON export.
    pub fn to_json(&self) -> GraphJson {
        let nodes = self
            .graph
            .node_indices()
            .map(|node| {
                let actor = &self.graph[node];
                let (in_degree, out_degree) = self.degrees(node);
                JsonNode {
                    id: actor.id,
                    name: actor.name.clone(),
                    naf_code: actor.naf_code.clone(),
                    lat: actor.lat,
                    lng: actor.lng,
                    in_degree,
                    out_degree,
                }
            })
            .collect();
        let links = self
            .graph
            .edge_weights()
            .map(|e| JsonLink {
                source: e.from_actor,
                target: e.to_actor,
                synergy_id: e.synergy_id,
                offer_id: e.offer_id,
                need_id: e.need_id,
                score: e.score,
                class: e.class.clone(),
                distance_km: e.distance_km,
                quantity: e.potential_quantity(),
                base_unit: e.base_unit.clone(),
                latent: e.latent,
            })
            .collect();
        GraphJson { nodes, links }
    }

    /// GraphML document (UTF-8), directed, with typed `<key>` declarations so that Gephi imports the
    /// attributes with their types: nodes carry `label`, `naf`, `lat`, `lng`; edges carry `synergy_id`,
    /// `weight` (= score, which Gephi uses as edge weight), `score`, `class`, `distance_km`, `latent`,
    /// `quantity` (when known) and `base_unit`. Every text is XML-escaped.
    pub fn to_graphml(&self) -> String {
        const KEYS: &[(&str, &str, &str, &str)] = &[
            ("label", "node", "label", "string"),
            ("naf", "node", "naf", "string"),
            ("lat", "node", "lat", "double"),
            ("lng", "node", "lng", "double"),
            ("synergy_id", "edge", "synergy_id", "string"),
            ("weight", "edge", "weight", "double"),
            ("score", "edge", "score", "double"),
            ("class", "edge", "class", "string"),
            ("distance_km", "edge", "distance_km", "double"),
            ("latent", "edge", "latent", "boolean"),
            ("quantity", "edge", "quantity", "double"),
            ("base_unit", "edge", "base_unit", "string"),
        ];
        let mut out =
            String::with_capacity(512 + 256 * (self.actor_count() + self.synergy_count()));
        out.push_str("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
        out.push_str(
            "<graphml xmlns=\"http://graphml.graphdrawing.org/xmlns\" \
             xmlns:xsi=\"http://www.w3.org/2001/XMLSchema-instance\" \
             xsi:schemaLocation=\"http://graphml.graphdrawing.org/xmlns \
             http://graphml.graphdrawing.org/xmlns/1.0/graphml.xsd\">\n",
        );
        for (id, domain, name, kind) in KEYS {
            // Writing to a String cannot fail; the results are ignored on purpose.
            let _ = writeln!(
                out,
                "  <key id=\"{id}\" for=\"{domain}\" attr.name=\"{name}\" attr.type=\"{kind}\"/>"
            );
        }
        out.push_str("  <graph id=\"synergies\" edgedefault=\"directed\">\n");
        for actor in self.graph.node_weights() {
            let _ = writeln!(out, "    <node id=\"{}\">", actor.id);
            push_data(&mut out, "label", &xml_escape(&actor.name));
            if let Some(naf) = &actor.naf_code {
                push_data(&mut out, "naf", &xml_escape(naf));
            }
            push_data(&mut out, "lat", &actor.lat.to_string());
            push_data(&mut out, "lng", &actor.lng.to_string());
            out.push_str("    </node>\n");
        }
        for edge in self.graph.edge_weights() {
            let _ = writeln!(
                out,
                "    <edge id=\"{}\" source=\"{}\" target=\"{}\">",
                edge.synergy_id, edge.from_actor, edge.to_actor
            );
            push_data(&mut out, "synergy_id", &edge.synergy_id.to_string());
            push_data(&mut out, "weight", &edge.score.to_string());
            push_data(&mut out, "score", &edge.score.to_string());
            push_data(&mut out, "class", &xml_escape(&edge.class));
            push_data(&mut out, "distance_km", &edge.distance_km.to_string());
            push_data(
                &mut out,
                "latent",
                if edge.latent { "true" } else { "false" },
            );
            if let Some(q) = edge.potential_quantity() {
                push_data(&mut out, "quantity", &q.to_string());
            }
            push_data(&mut out, "base_unit", &xml_escape(&edge.base_unit));
            out.push_str("    </edge>\n");
        }
        out.push_str("  </graph>\n</graphml>\n");
        out
    }

    /// GeoJSON FeatureCollection (RFC 7946: `[lng, lat]` order, WGS 84).
    pub fn to_geojson(&self) -> GeoJsonCollection {
        let mut features = Vec::with_capacity(self.actor_count() + self.synergy_count());
        for node in self.graph.node_indices() {
            let actor = &self.graph[node];
            let (in_degree, out_degree) = self.degrees(node);
            features.push(GeoFeature {
                kind: FeatureType::Feature,
                id: actor.id,
                geometry: GeoGeometry::Point {
                    coordinates: [actor.lng, actor.lat],
                },
                properties: GeoProperties::Actor(ActorProperties {
                    kind: FeatureKind::Actor,
                    id: actor.id,
                    name: actor.name.clone(),
                    naf_code: actor.naf_code.clone(),
                    in_degree,
                    out_degree,
                }),
            });
        }
        for edge in self.graph.edge_references() {
            let from = &self.graph[edge.source()];
            let to = &self.graph[edge.target()];
            let e = edge.weight();
            features.push(GeoFeature {
                kind: FeatureType::Feature,
                id: e.synergy_id,
                geometry: GeoGeometry::LineString {
                    coordinates: vec![[from.lng, from.lat], [to.lng, to.lat]],
                },
                properties: GeoProperties::Synergy(SynergyProperties {
                    kind: FeatureKind::Synergy,
                    synergy_id: e.synergy_id,
                    source: e.from_actor,
                    target: e.to_actor,
                    offer_id: e.offer_id,
                    need_id: e.need_id,
                    score: e.score,
                    class: e.class.clone(),
                    distance_km: e.distance_km,
                    quantity: e.potential_quantity(),
                    base_unit: e.base_unit.clone(),
                    latent: e.latent,
                }),
            });
        }
        GeoJsonCollection {
            kind: FeatureCollectionType::FeatureCollection,
            features,
        }
    }
}

/// `<data key="…">value</data>`; `value` must already be escaped.
fn push_data(out: &mut String, key: &str, value: &str) {
    let _ = writeln!(out, "      <data key=\"{key}\">{value}</data>");
}

/// Escapes text for XML content and attribute values. Characters XML 1.0 forbids (control characters
/// other than tab, newline and carriage return) cannot be escaped at all, so they are dropped.
fn xml_escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            '\t' | '\n' | '\r' => out.push(c),
            c if (c as u32) < 0x20 || c == '\u{FFFE}' || c == '\u{FFFF}' => {}
            c => out.push(c),
        }
    }
    out
}
