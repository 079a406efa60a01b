//! The account as a d3-sankey diagram: `{nodes: [{name, …}], links: [{source, target, value, …}]}`
//! with `source`/`target` as node indices and values in kt.
//!
//! Layout: inputs on the left (DE; IMP, one node per partner when known; BI_IN) → one node for the
//! territory → outputs on the right (EXP per partner; DPO parts, or undivided DPO; NAS; BI_OUT). One
//! link per family (family `all` carries the part of a flow not broken down by family). Every link
//! touches the territory node, so the graph has no cycle. Only mass rows (t) are drawn; UDE and the
//! recycling memo are outside the balance and left out.
//!
//! NAS: the declared rows when there are some; otherwise the balance residual, when positive, drawn as
//! a link marked `estimated`.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::indicators::{AccountView, Cell};
use super::model::{AccountRow, Family, FlowType, Partner, Unit};

/// Side of a node.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
#[schema(as = AfmeSankeyNodeKind)]
pub enum NodeKind {
    Input,
    Territory,
    Output,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[schema(as = AfmeSankeyNode)]
pub struct SankeyNode {
    pub name: String,
    pub kind: NodeKind,
    /// The flow this node stands for (none for the territory node).
    pub flow: Option<FlowType>,
    pub partner: Option<Partner>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[schema(as = AfmeSankeyLink)]
pub struct SankeyLink {
    /// Index into `nodes`.
    pub source: usize,
    /// Index into `nodes`.
    pub target: usize,
    /// kt.
    pub value: f64,
    pub family: Family,
    pub flow: FlowType,
    /// Computed (NAS as residual) rather than declared.
    pub estimated: bool,
    /// Indices of the account rows behind the link.
    pub from_rows: Vec<usize>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[schema(as = AfmeSankey)]
pub struct Sankey {
    pub territory: String,
    pub year: i32,
    pub unit: String,
    pub nodes: Vec<SankeyNode>,
    pub links: Vec<SankeyLink>,
    /// Σ links into the territory − Σ links out of it, kt (the balance gap as drawn).
    pub imbalance: f64,
    pub warnings: Vec<String>,
}

fn node_name(flow: FlowType, partner: Option<&Partner>) -> String {
    let base = match flow {
        FlowType::De => "Domestic extraction (DE)".to_string(),
        FlowType::Imp => "Imports (IMP)".to_string(),
        FlowType::Exp => "Exports (EXP)".to_string(),
        FlowType::BiIn => "Balancing items, input (BI_IN)".to_string(),
        FlowType::BiOut => "Balancing items, output (BI_OUT)".to_string(),
        FlowType::Nas => "Net addition to stock (NAS)".to_string(),
        FlowType::Dpo => "Emissions and waste, undivided (DPO)".to_string(),
        FlowType::DpoAir => "Emissions to air (DPO)".to_string(),
        FlowType::DpoWater => "Emissions to water (DPO)".to_string(),
        FlowType::DpoSoil => "Emissions to soil, dissipative (DPO)".to_string(),
        FlowType::DpoLandfill => "Waste landfilled (DPO)".to_string(),
        other => other.as_str().to_string(),
    };
    match partner {
        Some(Partner::RestOfFrance) => format!("{base} — rest of France"),
        Some(Partner::Abroad) => format!("{base} — abroad"),
        Some(Partner::Territory(code)) => format!("{base} — {code}"),
        None => base,
    }
}

struct Builder {
    nodes: Vec<SankeyNode>,
    links: Vec<SankeyLink>,
}

impl Builder {
    fn node(&mut self, kind: NodeKind, flow: FlowType, partner: Option<&Partner>) -> usize {
        let name = node_name(flow, partner);
        if let Some(i) = self.nodes.iter().position(|n| n.name == name) {
            return i;
        }
        self.nodes.push(SankeyNode {
            name,
            kind,
            flow: Some(flow),
            partner: partner.cloned(),
        });
        self.nodes.len() - 1
    }

    fn cells(&mut self, flow: FlowType, cells: Vec<Cell>, input: bool, centre: usize) {
        for c in cells {
            if c.value <= 0.0 {
                continue;
            }
            let kind = if input {
                NodeKind::Input
            } else {
                NodeKind::Output
            };
            let n = self.node(kind, flow, c.partner.as_ref());
            let (source, target) = if input { (n, centre) } else { (centre, n) };
            self.links.push(SankeyLink {
                source,
                target,
                value: c.value / 1_000.0,
                family: c.family,
                flow,
                estimated: false,
                from_rows: c.rows,
            });
        }
    }
}

/// Builds the Sankey of `territory` and `year` from `rows` (other territories and years ignored).
/// `label` names the territory node (e.g. "Bourgogne"); the code is used when it is empty.
pub fn build_sankey(rows: &[AccountRow], territory: &str, year: i32, label: &str) -> Sankey {
    let view = AccountView::new(rows, territory, year, Unit::Tonne);
    let mut warnings = Vec::new();
    let mut b = Builder {
        nodes: vec![SankeyNode {
            name: if label.is_empty() {
                territory.to_string()
            } else {
                label.to_string()
            },
            kind: NodeKind::Territory,
            flow: None,
            partner: None,
        }],
        links: Vec::new(),
    };
    let centre = 0;

    for flow in [FlowType::De, FlowType::Imp, FlowType::BiIn] {
        let (cells, w) = view.breakdown(flow);
        warnings.extend(w);
        b.cells(flow, cells, true, centre);
    }
    {
        let (cells, w) = view.breakdown(FlowType::Exp);
        warnings.extend(w);
        b.cells(FlowType::Exp, cells, false, centre);
    }
    // DPO: parts, plus the undivided remainder when an undivided total is larger than the parts
    let mut parts_total = 0.0;
    for part in FlowType::DPO_PARTS {
        let (cells, w) = view.breakdown(*part);
        warnings.extend(w);
        parts_total += cells.iter().map(|c| c.value).sum::<f64>();
        b.cells(*part, cells, false, centre);
    }
    if view.has(FlowType::Dpo) {
        let (cells, w) = view.breakdown(FlowType::Dpo);
        warnings.extend(w);
        let undivided: f64 = cells.iter().map(|c| c.value).sum();
        let rest = undivided - parts_total;
        if parts_total == 0.0 {
            b.cells(FlowType::Dpo, cells, false, centre);
        } else if rest > 1e-9 * undivided.max(1.0) {
            let rows = view.total(FlowType::Dpo).rows;
            b.cells(
                FlowType::Dpo,
                vec![Cell {
                    family: Family::All,
                    partner: None,
                    value: rest,
                    rows,
                }],
                false,
                centre,
            );
        }
    }
    {
        let (cells, w) = view.breakdown(FlowType::BiOut);
        warnings.extend(w);
        b.cells(FlowType::BiOut, cells, false, centre);
    }
    if view.has(FlowType::Nas) {
        let (cells, w) = view.breakdown(FlowType::Nas);
        warnings.extend(w);
        b.cells(FlowType::Nas, cells, false, centre);
    } else {
        let inflow: f64 = b
            .links
            .iter()
            .filter(|l| l.target == centre)
            .map(|l| l.value)
            .sum();
        let outflow: f64 = b
            .links
            .iter()
            .filter(|l| l.source == centre)
            .map(|l| l.value)
            .sum();
        let residual = inflow - outflow;
        if residual > 0.0 {
            let n = b.node(NodeKind::Output, FlowType::Nas, None);
            b.links.push(SankeyLink {
                source: centre,
                target: n,
                value: residual,
                family: Family::All,
                flow: FlowType::Nas,
                estimated: true,
                from_rows: view.indices().to_vec(),
            });
            warnings.push("NAS not declared: drawn as the balance residual".into());
        } else if residual < 0.0 {
            warnings.push(format!(
                "NAS not declared and outputs exceed inputs by {} kt: no NAS drawn",
                -residual
            ));
        }
    }

    let inflow: f64 = b
        .links
        .iter()
        .filter(|l| l.target == centre)
        .map(|l| l.value)
        .sum();
    let outflow: f64 = b
        .links
        .iter()
        .filter(|l| l.source == centre)
        .map(|l| l.value)
        .sum();
    Sankey {
        territory: territory.to_string(),
        year,
        unit: "kt".into(),
        nodes: b.nodes,
        links: b.links,
        imbalance: inflow - outflow,
        warnings,
    }
}

impl Sankey {
    /// Whether the links contain a directed cycle (d3-sankey cannot lay one out).
    pub fn has_cycle(&self) -> bool {
        // Kahn's algorithm: a cycle leaves nodes with incoming edges
        let n = self.nodes.len();
        let mut indegree = vec![0usize; n];
        for l in &self.links {
            if let Some(d) = indegree.get_mut(l.target) {
                *d += 1;
            }
        }
        let mut queue: Vec<usize> = (0..n).filter(|i| indegree[*i] == 0).collect();
        let mut seen = 0;
        while let Some(u) = queue.pop() {
            seen += 1;
            for l in self.links.iter().filter(|l| l.source == u) {
                if let Some(d) = indegree.get_mut(l.target) {
                    *d -= 1;
                    if *d == 0 {
                        queue.push(l.target);
                    }
                }
            }
        }
        seen < n
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::afme::indicators::{IndicatorOptions, compute_indicators};

    fn row(flow: FlowType, family: Family, value: f64) -> AccountRow {
        AccountRow::new("21", 2015, flow, family, value)
    }

    fn small() -> Vec<AccountRow> {
        vec![
            row(FlowType::De, Family::ConstructionMaterials, 80_000.0),
            row(FlowType::De, Family::AgriculturalFood, 20_000.0),
            row(FlowType::Imp, Family::FossilFuels, 40_000.0).with_partner(Partner::Abroad),
            row(FlowType::Imp, Family::ConstructionMaterials, 20_000.0)
                .with_partner(Partner::RestOfFrance),
            row(FlowType::BiIn, Family::All, 10_000.0),
            row(FlowType::Exp, Family::ConstructionMaterials, 30_000.0),
            row(FlowType::Exp, Family::Waste, 20_000.0),
            row(FlowType::DpoAir, Family::All, 20_000.0),
            row(FlowType::DpoWater, Family::All, 5_000.0),
            row(FlowType::DpoSoil, Family::All, 3_000.0),
            row(FlowType::DpoLandfill, Family::Waste, 12_000.0),
            row(FlowType::Nas, Family::All, 70_000.0),
            row(FlowType::BiOut, Family::All, 10_000.0),
            row(FlowType::Recycling, Family::All, 4_000.0),
            row(FlowType::Ude, Family::All, 9_000.0),
        ]
    }

    fn check_shape(s: &Sankey) {
        for l in &s.links {
            assert!(
                l.source < s.nodes.len() && l.target < s.nodes.len(),
                "{l:?}"
            );
            assert!(l.value > 0.0);
            assert!(
                l.source == 0 || l.target == 0,
                "every link touches the territory"
            );
        }
        assert!(!s.has_cycle());
        // inputs only feed the territory, outputs only drain it
        for l in &s.links {
            if l.target == 0 {
                assert_eq!(s.nodes[l.source].kind, NodeKind::Input);
            } else {
                assert_eq!(s.nodes[l.target].kind, NodeKind::Output);
            }
        }
    }

    #[test]
    fn shape_and_conservation() {
        let rows = small();
        let s = build_sankey(&rows, "21", 2015, "Côte-d'Or");
        check_shape(&s);
        assert_eq!(s.nodes[0].name, "Côte-d'Or");
        assert_eq!(s.unit, "kt");
        let inflow: f64 = s
            .links
            .iter()
            .filter(|l| l.target == 0)
            .map(|l| l.value)
            .sum();
        let outflow: f64 = s
            .links
            .iter()
            .filter(|l| l.source == 0)
            .map(|l| l.value)
            .sum();
        assert!((inflow - 170.0).abs() < 1e-9, "{inflow}");
        assert!(
            (inflow - outflow).abs() < 1e-9,
            "the balance closes, so the node conserves"
        );
        assert!(s.imbalance.abs() < 1e-9);
        // imports by partner
        assert!(s.nodes.iter().any(|n| n.name == "Imports (IMP) — abroad"));
        assert!(
            s.nodes
                .iter()
                .any(|n| n.name == "Imports (IMP) — rest of France")
        );
        // families as separate links
        let de_links: Vec<&SankeyLink> =
            s.links.iter().filter(|l| l.flow == FlowType::De).collect();
        assert_eq!(de_links.len(), 2);
        assert!(
            de_links
                .iter()
                .any(|l| l.family == Family::ConstructionMaterials && l.value == 80.0)
        );
        // memo items and UDE are not drawn
        assert!(
            s.links
                .iter()
                .all(|l| l.flow != FlowType::Recycling && l.flow != FlowType::Ude)
        );
        // serialises in d3-sankey form
        let json = serde_json::to_value(&s).unwrap();
        assert!(json["nodes"][0]["name"].is_string());
        assert!(json["links"][0]["source"].is_u64() && json["links"][0]["value"].is_f64());
    }

    #[test]
    fn gap_shows_as_imbalance_and_residual_nas_closes_it() {
        let mut rows = small();
        rows[11].value = 65_000.0;
        let s = build_sankey(&rows, "21", 2015, "");
        check_shape(&s);
        assert!((s.imbalance - 5.0).abs() < 1e-9);
        assert_eq!(s.nodes[0].name, "21");
        let ind = compute_indicators(&rows, "21", 2015, &IndicatorOptions::default());
        assert!((s.imbalance * 1000.0 - ind.balance.gap).abs() < 1e-6);
        // no NAS declared: the residual is drawn, estimated, and the node conserves
        rows.remove(11);
        let s = build_sankey(&rows, "21", 2015, "");
        check_shape(&s);
        let nas = s.links.iter().find(|l| l.flow == FlowType::Nas).unwrap();
        assert!(nas.estimated);
        assert!((nas.value - 70.0).abs() < 1e-9);
        assert!(s.imbalance.abs() < 1e-9);
    }

    #[test]
    fn bourgogne_sankey() {
        let file = std::fs::File::open("../shared/reference/afme/bourgogne_2010.csv").unwrap();
        let acc = crate::afme::csv::parse_published_csv(file).unwrap();
        let s = build_sankey(&acc.rows, "27-BOURGOGNE", 2010, "Bourgogne");
        check_shape(&s);
        let inflow: f64 = s
            .links
            .iter()
            .filter(|l| l.target == 0)
            .map(|l| l.value)
            .sum();
        let outflow: f64 = s
            .links
            .iter()
            .filter(|l| l.source == 0)
            .map(|l| l.value)
            .sum();
        assert!((inflow - 70_700.0).abs() < 1e-6, "{inflow}");
        assert!((outflow - 70_600.0).abs() < 1e-6, "{outflow}");
        assert!((s.imbalance - 100.0).abs() < 1e-6);
        // IMP: three families published plus the unallocated rest (27,100 − 18,428 = 8,672 kt)
        let imp: Vec<&SankeyLink> = s.links.iter().filter(|l| l.flow == FlowType::Imp).collect();
        assert_eq!(imp.len(), 4);
        let rest = imp.iter().find(|l| l.family == Family::All).unwrap();
        assert!((rest.value - 8_672.0).abs() < 1e-6);
        // undivided DPO drawn as one link
        assert_eq!(
            s.links.iter().filter(|l| l.flow == FlowType::Dpo).count(),
            1
        );
        assert!(s.warnings.is_empty(), "{:?}", s.warnings);
    }

    #[test]
    fn undivided_dpo_larger_than_parts_shows_the_rest() {
        let rows = vec![
            row(FlowType::De, Family::All, 100_000.0),
            row(FlowType::Dpo, Family::All, 60_000.0),
            row(FlowType::DpoLandfill, Family::All, 20_000.0),
            row(FlowType::Nas, Family::All, 40_000.0),
        ];
        let s = build_sankey(&rows, "21", 2015, "");
        check_shape(&s);
        let dpo: f64 = s
            .links
            .iter()
            .filter(|l| l.flow.is_dpo())
            .map(|l| l.value)
            .sum();
        assert!((dpo - 60.0).abs() < 1e-9);
        assert!(s.imbalance.abs() < 1e-9);
    }

    #[test]
    fn cycle_detection_works() {
        let mut s = build_sankey(&small(), "21", 2015, "");
        assert!(!s.has_cycle());
        // a link back from an output to an input makes a cycle
        let out = s.links.iter().find(|l| l.source == 0).unwrap().target;
        let inp = s.links.iter().find(|l| l.target == 0).unwrap().source;
        s.links.push(SankeyLink {
            source: out,
            target: inp,
            value: 1.0,
            family: Family::Other,
            flow: FlowType::Exp,
            estimated: false,
            from_rows: vec![],
        });
        assert!(s.has_cycle());
    }
}
