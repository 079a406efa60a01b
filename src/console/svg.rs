//! Drawings made by the server: the AFME Sankey (laid out from the API's d3-sankey JSON), the
//! territory map (outlines of départements and régions from the reference GeoJSON, actors,
//! synergies, pooling groups) and small bars. Every text put in an SVG goes through [`esc`].

use std::collections::HashMap;
use std::fmt::Write as _;
use std::path::Path;

use serde::Deserialize;

use crate::afme::sankey::{NodeKind, Sankey};

/// XML/HTML escaping of text and attribute values.
pub fn esc(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            _ => out.push(c),
        }
    }
    out
}

/// The colour of an AFME family (also used for actors on the map).
pub fn family_colour(family: &str) -> &'static str {
    match family {
        "agricultural_food" => "#2e7d32",
        "ores_metallurgical" => "#6d4c41",
        "construction_materials" => "#8d6e63",
        "fertilisers_chemicals" => "#7b1fa2",
        "manufactured_products" => "#1565c0",
        "fossil_fuels" => "#424242",
        "waste" => "#c62828",
        "other" => "#00838f",
        _ => "#757575",
    }
}

/// The colour of a synergy status (map lines, board).
pub fn status_colour(status: &str) -> &'static str {
    match status {
        "detected" => "#6b7280",
        "proposed" => "#1d4ed8",
        "in_study" => "#b45309",
        "implemented" => "#15803d",
        "rejected" | "abandoned" => "#b91c1c",
        _ => "#6b7280",
    }
}

// ---------------------------------------------------------------------------------------------
// Sankey

/// The Sankey as SVG: inputs on the left, the territory in the middle, outputs on the right; one
/// band per link, as wide as its value, coloured by family. Empty when there is nothing to draw.
pub fn sankey(
    s: &Sankey,
    family_label: impl Fn(&str) -> String,
    node_label: impl Fn(&crate::afme::sankey::SankeyNode) -> String,
    unit: &str,
) -> String {
    const W: f64 = 960.0;
    const H: f64 = 440.0;
    const NODE_W: f64 = 14.0;
    const GAP: f64 = 10.0;
    const LEFT: f64 = 240.0;
    const RIGHT: f64 = 290.0;
    /// Room above the drawing for the territory's label.
    const TOP: f64 = 24.0;
    let n = s.nodes.len();
    if n == 0 || s.links.is_empty() {
        return String::new();
    }
    let mut inflow = vec![0.0f64; n];
    let mut outflow = vec![0.0f64; n];
    for l in &s.links {
        if l.source < n && l.target < n && l.value.is_finite() && l.value > 0.0 {
            outflow[l.source] += l.value;
            inflow[l.target] += l.value;
        }
    }
    let size: Vec<f64> = (0..n).map(|i| inflow[i].max(outflow[i])).collect();
    let column = |i: usize| match s.nodes[i].kind {
        NodeKind::Input => 0usize,
        NodeKind::Territory => 1,
        NodeKind::Output => 2,
    };
    let mut columns: [Vec<usize>; 3] = [vec![], vec![], vec![]];
    for i in 0..n {
        if size[i] > 0.0 {
            columns[column(i)].push(i);
        }
    }
    // One scale for all columns: the fullest column fills the height.
    let scale = columns
        .iter()
        .filter(|c| !c.is_empty())
        .map(|c| {
            let total: f64 = c.iter().map(|&i| size[i]).sum();
            (H - GAP * (c.len() as f64 - 1.0).max(0.0)) / total.max(f64::MIN_POSITIVE)
        })
        .fold(f64::INFINITY, f64::min);
    if !scale.is_finite() || scale <= 0.0 {
        return String::new();
    }
    let xs = [
        LEFT,
        LEFT + (W - LEFT - RIGHT - NODE_W) / 2.0,
        W - RIGHT - NODE_W,
    ];
    let mut y0 = vec![0.0f64; n];
    for nodes in &columns {
        let total: f64 = nodes.iter().map(|&i| size[i] * scale).sum::<f64>()
            + GAP * (nodes.len() as f64 - 1.0).max(0.0);
        let mut y = TOP + (H - total) / 2.0;
        for &i in nodes {
            y0[i] = y;
            y += size[i] * scale + GAP;
        }
    }
    let mut out = String::new();
    let _ = write!(
        out,
        r##"<svg class="sankey" viewBox="0 0 {W} {h}" role="img" aria-labelledby="sankey-title" xmlns="http://www.w3.org/2000/svg"><title id="sankey-title">{title}</title>"##,
        h = H + TOP + 10.0,
        title = esc(&format!("{} {} ({unit})", s.territory, s.year)),
    );
    // Links, ordered so that bands leave and enter nodes without crossing inside them.
    let mut order: Vec<usize> = (0..s.links.len())
        .filter(|&k| {
            let l = &s.links[k];
            l.source < n && l.target < n && l.value.is_finite() && l.value > 0.0
        })
        .collect();
    order.sort_by(|&a, &b| {
        let (la, lb) = (&s.links[a], &s.links[b]);
        y0[la.source]
            .total_cmp(&y0[lb.source])
            .then(y0[la.target].total_cmp(&y0[lb.target]))
    });
    let mut out_off = vec![0.0f64; n];
    let mut in_off = vec![0.0f64; n];
    out.push_str(r#"<g fill="none" stroke-opacity="0.5">"#);
    for k in order {
        let l = &s.links[k];
        let w = l.value * scale;
        let sy = y0[l.source] + out_off[l.source] + w / 2.0;
        let ty = y0[l.target] + in_off[l.target] + w / 2.0;
        out_off[l.source] += w;
        in_off[l.target] += w;
        let sx = xs[column(l.source)] + NODE_W;
        let tx = xs[column(l.target)];
        let mx = (sx + tx) / 2.0;
        let family = l.family.as_str();
        let _ = write!(
            out,
            r#"<path d="M{sx:.1},{sy:.1}C{mx:.1},{sy:.1} {mx:.1},{ty:.1} {tx:.1},{ty:.1}" stroke="{colour}" stroke-width="{sw:.1}"{dash}><title>{title}</title></path>"#,
            colour = family_colour(family),
            sw = w.max(0.5),
            dash = if l.estimated {
                r#" stroke-dasharray="4 3""#
            } else {
                ""
            },
            title = esc(&format!(
                "{} → {} : {:.1} {unit} — {}",
                node_label(&s.nodes[l.source]),
                node_label(&s.nodes[l.target]),
                l.value,
                family_label(family)
            )),
        );
    }
    out.push_str("</g>");
    for (c, nodes) in columns.iter().enumerate() {
        for &i in nodes {
            let h = (size[i] * scale).max(1.0);
            let _ = write!(
                out,
                r##"<rect x="{x:.1}" y="{y:.1}" width="{NODE_W}" height="{h:.1}" fill="#334155"><title>{t}</title></rect>"##,
                x = xs[c],
                y = y0[i],
                t = esc(&format!(
                    "{} : {:.1} {unit}",
                    node_label(&s.nodes[i]),
                    size[i]
                )),
            );
            let (tx, ty, anchor) = match c {
                0 => (xs[c] - 6.0, y0[i] + h / 2.0, "end"),
                1 => (xs[c] + NODE_W / 2.0, TOP / 2.0, "middle"),
                _ => (xs[c] + NODE_W + 6.0, y0[i] + h / 2.0, "start"),
            };
            let _ = write!(
                out,
                r#"<text x="{tx:.1}" y="{ty:.1}" text-anchor="{anchor}" dominant-baseline="middle" font-size="12">{name} ({v})</text>"#,
                name = esc(&node_label(&s.nodes[i])),
                v = esc(&format!("{:.0}", size[i])),
            );
        }
    }
    out.push_str("</svg>");
    out
}

// ---------------------------------------------------------------------------------------------
// Map

/// One outline: a département or a région, as rings of (lng, lat).
#[derive(Debug, Clone)]
pub struct Outline {
    pub code: String,
    pub name: String,
    pub rings: Vec<Vec<(f64, f64)>>,
    pub bbox: BBox,
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BBox {
    pub min_lng: f64,
    pub min_lat: f64,
    pub max_lng: f64,
    pub max_lat: f64,
}

impl BBox {
    pub fn empty() -> BBox {
        BBox {
            min_lng: f64::INFINITY,
            min_lat: f64::INFINITY,
            max_lng: f64::NEG_INFINITY,
            max_lat: f64::NEG_INFINITY,
        }
    }

    pub fn add(&mut self, lng: f64, lat: f64) {
        if lng.is_finite() && lat.is_finite() {
            self.min_lng = self.min_lng.min(lng);
            self.max_lng = self.max_lng.max(lng);
            self.min_lat = self.min_lat.min(lat);
            self.max_lat = self.max_lat.max(lat);
        }
    }

    pub fn union(&mut self, other: &BBox) {
        self.add(other.min_lng, other.min_lat);
        self.add(other.max_lng, other.max_lat);
    }

    pub fn is_empty(&self) -> bool {
        !(self.min_lng <= self.max_lng && self.min_lat <= self.max_lat)
    }

    fn intersects(&self, o: &BBox) -> bool {
        self.min_lng <= o.max_lng
            && o.min_lng <= self.max_lng
            && self.min_lat <= o.max_lat
            && o.min_lat <= self.max_lat
    }

    /// Grown by `share` of its size on each side, at least `min_deg` degrees wide and high.
    pub fn padded(&self, share: f64, min_deg: f64) -> BBox {
        let (cx, cy) = (
            (self.min_lng + self.max_lng) / 2.0,
            (self.min_lat + self.max_lat) / 2.0,
        );
        let w = ((self.max_lng - self.min_lng) * (1.0 + 2.0 * share)).max(min_deg);
        let h = ((self.max_lat - self.min_lat) * (1.0 + 2.0 * share)).max(min_deg);
        BBox {
            min_lng: cx - w / 2.0,
            max_lng: cx + w / 2.0,
            min_lat: cy - h / 2.0,
            max_lat: cy + h / 2.0,
        }
    }
}

/// The outlines of France's départements and régions (reference `geo/*_contours_simplified.geojson`).
#[derive(Debug, Default)]
pub struct Outlines {
    pub departements: Vec<Outline>,
    pub regions: Vec<Outline>,
}

#[derive(Deserialize)]
struct FeatureCollection {
    features: Vec<Feature>,
}

#[derive(Deserialize)]
struct Feature {
    properties: Properties,
    geometry: Geometry,
}

#[derive(Deserialize)]
struct Properties {
    code: String,
    nom: String,
}

#[derive(Deserialize)]
#[serde(tag = "type", content = "coordinates")]
enum Geometry {
    Polygon(Vec<Vec<[f64; 2]>>),
    MultiPolygon(Vec<Vec<Vec<[f64; 2]>>>),
}

impl Outlines {
    pub fn load(dir: &Path) -> Result<Outlines, String> {
        Ok(Outlines {
            departements: read_outlines(&dir.join("fr_departements_contours_simplified.geojson"))?,
            regions: read_outlines(&dir.join("fr_regions_contours_simplified.geojson"))?,
        })
    }

    pub fn departement(&self, code: &str) -> Option<&Outline> {
        self.departements.iter().find(|o| o.code == code)
    }

    pub fn region(&self, code: &str) -> Option<&Outline> {
        self.regions.iter().find(|o| o.code == code)
    }
}

fn read_outlines(path: &Path) -> Result<Vec<Outline>, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let collection: FeatureCollection =
        serde_json::from_str(&text).map_err(|e| format!("{}: {e}", path.display()))?;
    Ok(collection
        .features
        .into_iter()
        .map(|f| {
            let polygons = match f.geometry {
                Geometry::Polygon(p) => vec![p],
                Geometry::MultiPolygon(m) => m,
            };
            let rings: Vec<Vec<(f64, f64)>> = polygons
                .into_iter()
                .flatten()
                .map(|ring| ring.into_iter().map(|[x, y]| (x, y)).collect())
                .collect();
            let mut bbox = BBox::empty();
            for &(x, y) in rings.iter().flatten() {
                bbox.add(x, y);
            }
            Outline {
                code: f.properties.code,
                name: f.properties.nom,
                rings,
                bbox,
            }
        })
        .collect())
}

/// An equirectangular projection of `bbox` onto a `width`-pixel-wide frame.
#[derive(Debug, Clone, Copy)]
pub struct Projection {
    bbox: BBox,
    kx: f64,
    ky: f64,
    pub width: f64,
    pub height: f64,
}

impl Projection {
    pub fn new(bbox: BBox, width: f64) -> Projection {
        let lat0 = ((bbox.min_lat + bbox.max_lat) / 2.0).to_radians();
        let dx = (bbox.max_lng - bbox.min_lng) * lat0.cos();
        let dy = bbox.max_lat - bbox.min_lat;
        let k = width / dx.max(1e-9);
        let height = (dy * k).clamp(200.0, 1.4 * width);
        let ky = height / dy.max(1e-9);
        Projection {
            bbox,
            kx: k * lat0.cos(),
            ky,
            width,
            height,
        }
    }

    pub fn xy(&self, lng: f64, lat: f64) -> (f64, f64) {
        (
            (lng - self.bbox.min_lng) * self.kx,
            (self.bbox.max_lat - lat) * self.ky,
        )
    }

    /// Pixels per km (north–south).
    pub fn px_per_km(&self) -> f64 {
        self.ky / 111.2
    }
}

/// An actor on the map.
pub struct MapActor {
    pub id: String,
    /// Anonymised actors have no page of their own for this reader.
    pub link: bool,
    pub name: String,
    pub lng: f64,
    pub lat: f64,
    pub family: Option<String>,
}

/// A synergy line on the map.
pub struct MapLine {
    pub id: String,
    pub from: (f64, f64),
    pub to: (f64, f64),
    pub tonnes: f64,
    pub status: String,
    pub title: String,
}

pub struct MapPool {
    pub id: String,
    pub lng: f64,
    pub lat: f64,
    pub radius_km: f64,
    pub title: String,
}

/// The map as SVG: outlines around `bbox`, then pooling circles, synergy lines (width from the
/// tonnage, colour from the status) and actors (colour from their main family), each a link.
pub fn map(
    outlines: &Outlines,
    focus: &[&Outline],
    bbox: BBox,
    actors: &[MapActor],
    lines: &[MapLine],
    pools: &[MapPool],
    title: &str,
) -> String {
    let p = Projection::new(bbox, 960.0);
    let mut out = String::new();
    let _ = write!(
        out,
        r##"<svg class="map" viewBox="0 0 {w:.0} {h:.0}" role="img" aria-labelledby="map-title" xmlns="http://www.w3.org/2000/svg"><title id="map-title">{t}</title><rect width="100%" height="100%" fill="#f8fafc"/>"##,
        w = p.width,
        h = p.height,
        t = esc(title),
    );
    let path_of = |o: &Outline| {
        let mut d = String::new();
        for ring in &o.rings {
            let mut last: Option<(i64, i64)> = None;
            for (i, &(x, y)) in ring.iter().enumerate() {
                let (px, py) = p.xy(x, y);
                // Points closer than a pixel add bytes and nothing else.
                let key = ((px * 2.0) as i64, (py * 2.0) as i64);
                if last == Some(key) && i + 1 != ring.len() {
                    continue;
                }
                last = Some(key);
                let _ = write!(d, "{}{px:.1},{py:.1}", if i == 0 { "M" } else { "L" });
            }
            d.push('Z');
        }
        d
    };
    out.push_str(r##"<g fill="#fff" stroke="#cbd5e1" stroke-width="0.8">"##);
    for o in outlines
        .departements
        .iter()
        .filter(|o| o.bbox.intersects(&bbox))
    {
        let _ = write!(
            out,
            r#"<path d="{}"><title>{} ({})</title></path>"#,
            path_of(o),
            esc(&o.name),
            esc(&o.code)
        );
    }
    out.push_str("</g>");
    out.push_str(r##"<g fill="none" stroke="#64748b" stroke-width="1.6">"##);
    for o in outlines.regions.iter().filter(|o| o.bbox.intersects(&bbox)) {
        let _ = write!(out, r#"<path d="{}"/>"#, path_of(o));
    }
    out.push_str("</g>");
    if !focus.is_empty() {
        out.push_str(r##"<g fill="none" stroke="#0f172a" stroke-width="2.2">"##);
        for o in focus {
            let _ = write!(out, r#"<path d="{}"/>"#, path_of(o));
        }
        out.push_str("</g>");
    }
    out.push_str(
        r##"<g fill="#0ea5e9" fill-opacity="0.12" stroke="#0369a1" stroke-dasharray="3 2">"##,
    );
    for g in pools {
        let (x, y) = p.xy(g.lng, g.lat);
        let r = (g.radius_km * p.px_per_km()).max(6.0);
        let _ = write!(
            out,
            r#"<a href="/console/synergies/{id}"><circle cx="{x:.1}" cy="{y:.1}" r="{r:.1}"><title>{t}</title></circle></a>"#,
            id = esc(&g.id),
            t = esc(&g.title),
        );
    }
    out.push_str("</g>");
    let max_t = lines
        .iter()
        .map(|l| l.tonnes)
        .filter(|t| t.is_finite())
        .fold(0.0f64, f64::max);
    out.push_str(r#"<g stroke-linecap="round" stroke-opacity="0.75">"#);
    for l in lines {
        let (x1, y1) = p.xy(l.from.0, l.from.1);
        let (x2, y2) = p.xy(l.to.0, l.to.1);
        let w = if max_t > 0.0 && l.tonnes.is_finite() {
            1.0 + 7.0 * (l.tonnes / max_t).sqrt()
        } else {
            1.0
        };
        let _ = write!(
            out,
            r#"<a href="/console/synergies/{id}"><line x1="{x1:.1}" y1="{y1:.1}" x2="{x2:.1}" y2="{y2:.1}" stroke="{c}" stroke-width="{w:.1}"><title>{t}</title></line></a>"#,
            id = esc(&l.id),
            c = status_colour(&l.status),
            t = esc(&l.title),
        );
    }
    out.push_str("</g>");
    out.push_str(r##"<g stroke="#fff" stroke-width="1">"##);
    for a in actors {
        let (x, y) = p.xy(a.lng, a.lat);
        let circle = format!(
            r#"<circle cx="{x:.1}" cy="{y:.1}" r="4.5" fill="{c}"><title>{t}</title></circle>"#,
            c = family_colour(a.family.as_deref().unwrap_or("")),
            t = esc(&a.name),
        );
        if a.link {
            let _ = write!(
                out,
                r#"<a href="/console/actors/{id}">{circle}</a>"#,
                id = esc(&a.id)
            );
        } else {
            out.push_str(&circle);
        }
    }
    out.push_str("</g></svg>");
    out
}

/// Counts by key, most frequent first (ties by key).
pub fn most_frequent(values: impl IntoIterator<Item = String>) -> Option<String> {
    let mut counts: HashMap<String, f64> = HashMap::new();
    for v in values {
        *counts.entry(v).or_default() += 1.0;
    }
    counts
        .into_iter()
        .max_by(|a, b| a.1.total_cmp(&b.1).then_with(|| b.0.cmp(&a.0)))
        .map(|(k, _)| k)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::afme::model::{Family, FlowType};
    use crate::afme::sankey::{SankeyLink, SankeyNode};

    #[test]
    fn text_is_escaped() {
        assert_eq!(
            esc(r#"<a href="x">&'"#),
            "&lt;a href=&quot;x&quot;&gt;&amp;&#39;"
        );
    }

    #[test]
    fn sankey_draws_one_band_per_link_and_escapes_names() {
        let node = |name: &str, kind| SankeyNode {
            name: name.into(),
            kind,
            flow: None,
            partner: None,
        };
        let link = |source, target, value| SankeyLink {
            source,
            target,
            value,
            family: Family::Waste,
            flow: FlowType::Imp,
            estimated: false,
            from_rows: vec![],
        };
        let s = Sankey {
            territory: "T<1>".into(),
            year: 2010,
            unit: "kt".into(),
            nodes: vec![
                node("in", NodeKind::Input),
                node("T<1>", NodeKind::Territory),
                node("out", NodeKind::Output),
            ],
            links: vec![link(0, 1, 10.0), link(1, 2, 6.0), link(1, 2, f64::NAN)],
            imbalance: 4.0,
            warnings: vec![],
        };
        let svg = sankey(&s, |f| f.to_owned(), |n| n.name.clone(), "kt");
        assert_eq!(svg.matches("<path ").count(), 2);
        assert_eq!(svg.matches("<rect ").count(), 3);
        assert!(svg.contains("T&lt;1&gt;") && !svg.contains("T<1>"));
    }

    #[test]
    fn projection_keeps_the_frame() {
        let bbox = BBox {
            min_lng: 3.0,
            min_lat: 46.0,
            max_lng: 5.0,
            max_lat: 48.0,
        };
        let p = Projection::new(bbox, 960.0);
        let (x0, y0) = p.xy(3.0, 48.0);
        let (x1, y1) = p.xy(5.0, 46.0);
        assert!(x0.abs() < 1e-9 && y0.abs() < 1e-9);
        assert!((x1 - 960.0).abs() < 1e-6 && (y1 - p.height).abs() < 1e-6);
    }
}
