//! Territory graph exports (JSON, GraphML, GeoJSON, SVG), hubs and chains; an XML check.

use super::*;

// ---------------------------------------------------------------------------------------------------
// 10. Exports
// ---------------------------------------------------------------------------------------------------

/// Checks that `text` is a well-formed XML document as far as these tests need: a declaration, one
/// root element, balanced and properly nested tags, quoted unique attributes, only the predefined or
/// numeric entities, no markup character left unescaped. Returns the element names in order.
fn xml_elements(text: &str) -> Result<Vec<String>, String> {
    fn check_text(text: &str) -> Result<(), String> {
        if text.contains('<') {
            return Err(format!("unescaped `<` in {text:?}"));
        }
        let mut rest = text;
        while let Some(i) = rest.find('&') {
            let tail = &rest[i + 1..];
            let end = tail
                .find(';')
                .ok_or_else(|| format!("bare `&` in {text:?}"))?;
            let entity = &tail[..end];
            let numeric = entity
                .strip_prefix("#x")
                .map(|h| !h.is_empty() && h.chars().all(|c| c.is_ascii_hexdigit()))
                .or_else(|| {
                    entity
                        .strip_prefix('#')
                        .map(|d| !d.is_empty() && d.chars().all(|c| c.is_ascii_digit()))
                })
                .unwrap_or(false);
            if !numeric && !matches!(entity, "amp" | "lt" | "gt" | "quot" | "apos") {
                return Err(format!("unknown entity `&{entity};`"));
            }
            rest = &tail[end + 1..];
        }
        Ok(())
    }
    fn is_name(name: &str) -> bool {
        !name.is_empty()
            && !name.starts_with(|c: char| c.is_ascii_digit() || c == '-' || c == '.')
            && name
                .chars()
                .all(|c| c.is_alphanumeric() || matches!(c, ':' | '_' | '-' | '.'))
    }
    fn check_attributes(mut rest: &str) -> Result<(), String> {
        let mut seen = HashSet::new();
        loop {
            rest = rest.trim_start();
            if rest.is_empty() {
                return Ok(());
            }
            let eq = rest
                .find('=')
                .ok_or_else(|| format!("attribute without value: {rest:?}"))?;
            let name = rest[..eq].trim();
            if !is_name(name) || !seen.insert(name.to_owned()) {
                return Err(format!("bad or duplicate attribute name {name:?}"));
            }
            let after = rest[eq + 1..].trim_start();
            let quote = after
                .chars()
                .next()
                .filter(|c| *c == '"' || *c == '\'')
                .ok_or("unquoted attribute")?;
            let close = after[1..]
                .find(quote)
                .ok_or("unterminated attribute value")?;
            check_text(&after[1..1 + close])?;
            rest = &after[close + 2..];
        }
    }

    let mut rest = text.strip_prefix('\u{feff}').unwrap_or(text);
    if !rest.starts_with("<?xml") {
        return Err("no XML declaration at the start".into());
    }
    let mut stack: Vec<String> = Vec::new();
    let mut elements = Vec::new();
    let mut roots = 0;
    loop {
        let start = rest.find('<').unwrap_or(rest.len());
        let between = &rest[..start];
        if stack.is_empty() && !between.trim().is_empty() {
            return Err(format!("text outside the root element: {between:?}"));
        }
        check_text(between)?;
        if start == rest.len() {
            break;
        }
        let markup = &rest[start..];
        if let Some(r) = markup.strip_prefix("<?") {
            let end = r.find("?>").ok_or("unterminated processing instruction")?;
            rest = &r[end + 2..];
            continue;
        }
        if let Some(r) = markup.strip_prefix("<!--") {
            let end = r.find("-->").ok_or("unterminated comment")?;
            rest = &r[end + 3..];
            continue;
        }
        let end = markup.find('>').ok_or("unterminated tag")?;
        let tag = &markup[1..end];
        rest = &markup[end + 1..];
        if let Some(name) = tag.strip_prefix('/') {
            let open = stack
                .pop()
                .ok_or_else(|| format!("closing `{name}` without an open element"))?;
            if open != name.trim_end() {
                return Err(format!("`<{open}>` closed by `</{name}>`"));
            }
            continue;
        }
        let (inner, empty) = match tag.strip_suffix('/') {
            Some(inner) => (inner, true),
            None => (tag, false),
        };
        let name_end = inner.find(char::is_whitespace).unwrap_or(inner.len());
        let name = &inner[..name_end];
        if !is_name(name) {
            return Err(format!("bad element name {name:?}"));
        }
        check_attributes(&inner[name_end..])?;
        if stack.is_empty() {
            roots += 1;
        }
        elements.push(name.to_owned());
        if !empty {
            stack.push(name.to_owned());
        }
    }
    if let Some(open) = stack.last() {
        return Err(format!("`<{open}>` never closed"));
    }
    if roots != 1 {
        return Err(format!("{roots} root elements"));
    }
    Ok(elements)
}

#[test]
fn the_xml_check_rejects_malformed_documents() {
    let ok = "<?xml version=\"1.0\"?>\n<a x=\"1\"><b>t &amp; u</b><c/></a>\n";
    assert_eq!(xml_elements(ok).expect("well formed"), vec!["a", "b", "c"]);
    for bad in [
        "<a></a>",
        "<?xml version=\"1.0\"?><a><b></a></b>",
        "<?xml version=\"1.0\"?><a>",
        "<?xml version=\"1.0\"?><a>x & y</a>",
        "<?xml version=\"1.0\"?><a x=1></a>",
        "<?xml version=\"1.0\"?><a x=\"1\" x=\"2\"></a>",
        "<?xml version=\"1.0\"?><a></a><b></b>",
        "<?xml version=\"1.0\"?><a>&nbsp;</a>",
    ] {
        assert!(xml_elements(bad).is_err(), "{bad}");
    }
}

#[actix_web::test]
async fn graph_exports_parse_and_link_the_actors() {
    let app = spawn_app().await;
    // Names with markup characters: exports must escape them.
    let sawmill = site(
        &app,
        "Bois & Fils <Scierie> \"Côte-d'Or\"",
        "16.10A",
        DIJON,
        near(&app, DIJON, 0.0, 0.0),
    )
    .await;
    let close = site(
        &app,
        "Chaufferie Nord",
        "35.30Z",
        DIJON,
        near(&app, DIJON, 3.0, 0.0),
    )
    .await;
    let far = site(
        &app,
        "Chaufferie de Beaune",
        "35.30Z",
        BEAUNE,
        near(&app, BEAUNE, 0.0, 0.0),
    )
    .await;
    let lonely = site(&app, "Garage", "45.20A", DIJON, near(&app, DIJON, 0.0, 2.0)).await;
    resource(&app, &sawmill, sawdust(500.0)).await;
    resource(&app, &close, boiler_need(tonnes(300.0))).await;
    resource(&app, &far, boiler_need(tonnes(300.0))).await;
    let sites: HashMap<&str, &Site> = [&sawmill, &close, &far, &lonely]
        .into_iter()
        .map(|s| (s.id.as_str(), s))
        .collect();
    let synergies = substitutions(&all_items(&app, "/api/v1/synergies?territory=21").await);
    assert!(synergies.len() >= 2, "{synergies:#?}");

    // JSON: every link joins two nodes.
    let json_graph = ok(&app, "/api/v1/territories/21/graph?format=json").await;
    assert!(
        json_graph.content_type.starts_with("application/json"),
        "{}",
        json_graph.content_type
    );
    let nodes: HashSet<&str> = json_graph.body["nodes"]
        .as_array()
        .expect("nodes")
        .iter()
        .map(|n| str_of(n, "id"))
        .collect();
    let links = json_graph.body["links"].as_array().expect("links");
    assert_eq!(
        nodes,
        sites.keys().copied().collect(),
        "every actor of the territory is a node"
    );
    assert_eq!(links.len(), synergies.len());
    for l in links {
        assert!(
            nodes.contains(str_of(l, "source")) && nodes.contains(str_of(l, "target")),
            "{l}"
        );
    }
    let link_ids: HashSet<&str> = links.iter().map(|l| str_of(l, "synergy_id")).collect();
    assert_eq!(
        link_ids,
        synergies.iter().map(|s| str_of(s, "id")).collect()
    );
    assert_eq!(
        ok(&app, "/api/v1/territories/21/graph").await.body,
        json_graph.body,
        "json by default"
    );

    // GraphML: well-formed, one node per actor, one edge per synergy.
    let graphml = ok(&app, "/api/v1/territories/21/graph?format=graphml").await;
    assert!(
        graphml.content_type.contains("graphml") || graphml.content_type.contains("xml"),
        "{}",
        graphml.content_type
    );
    let elements = xml_elements(&graphml.text)
        .unwrap_or_else(|e| panic!("GraphML not well formed: {e}\n{}", graphml.text));
    assert_eq!(elements.first().map(String::as_str), Some("graphml"));
    assert_eq!(
        elements.iter().filter(|e| *e == "node").count(),
        nodes.len()
    );
    assert_eq!(
        elements.iter().filter(|e| *e == "edge").count(),
        links.len()
    );
    assert!(
        graphml.text.contains("Bois &amp; Fils &lt;Scierie&gt;"),
        "escaped name"
    );
    for id in &nodes {
        assert!(
            graphml.text.contains(&format!("<node id=\"{id}\"")),
            "node {id}"
        );
    }

    // GeoJSON: actors as [lng, lat] points, synergies as lines from provider to receiver.
    let geo = ok(&app, "/api/v1/territories/21/graph?format=geojson").await;
    assert!(geo.content_type.contains("json"), "{}", geo.content_type);
    assert_eq!(geo.body["type"], "FeatureCollection");
    let features = geo.body["features"].as_array().expect("features");
    let point = |v: &Value| -> (f64, f64) {
        let c = v.as_array().expect("a position");
        assert_eq!(c.len(), 2);
        let (lng, lat) = (c[0].as_f64().expect("lng"), c[1].as_f64().expect("lat"));
        assert!(
            (-180.0..=180.0).contains(&lng) && (-90.0..=90.0).contains(&lat),
            "{v}"
        );
        (lng, lat)
    };
    let (mut points, mut lines) = (0, 0);
    for f in features {
        assert_eq!(f["type"], "Feature");
        match str_of(&f["geometry"], "type") {
            "Point" => {
                points += 1;
                let s = sites
                    .get(str_of(&f["properties"], "id"))
                    .unwrap_or_else(|| panic!("unknown actor {f}"));
                let (lng, lat) = point(&f["geometry"]["coordinates"]);
                approx(lng, s.lng, "point longitude first");
                approx(lat, s.lat, "point latitude second");
            }
            "LineString" => {
                lines += 1;
                let coords = f["geometry"]["coordinates"].as_array().expect("line");
                assert_eq!(coords.len(), 2);
                let from = sites
                    .get(str_of(&f["properties"], "source"))
                    .expect("source actor");
                let to = sites
                    .get(str_of(&f["properties"], "target"))
                    .expect("target actor");
                let (a, b) = (point(&coords[0]), point(&coords[1]));
                approx(a.0, from.lng, "line starts at the provider");
                approx(a.1, from.lat, "line starts at the provider");
                approx(b.0, to.lng, "line ends at the receiver");
                approx(b.1, to.lat, "line ends at the receiver");
            }
            other => panic!("unexpected geometry {other}"),
        }
    }
    assert_eq!(points, nodes.len());
    assert_eq!(lines, links.len());

    // Hubs and chains answer for the territory.
    let hubs = ok(&app, "/api/v1/territories/21/hubs").await;
    assert!(
        hubs.body["items"]
            .as_array()
            .is_some_and(|h| h.iter().any(|h| h["actor_id"] == sawmill.id.as_str())),
        "{}",
        hubs.text
    );
    let chains = ok(&app, "/api/v1/territories/21/chains").await;
    assert!(
        chains.body["chains"].is_object() && chains.body["loops"].is_array(),
        "{}",
        chains.text
    );

    // Errors.
    assert_field_error(
        &app.get("/api/v1/territories/21/graph?format=svg").await,
        "format",
    );
    for path in [
        "graph",
        "graph?format=graphml",
        "allocation",
        "chains",
        "hubs",
    ] {
        let reply = app
            .get(&format!("/api/v1/territories/XX-NOWHERE/{path}"))
            .await;
        assert_eq!(reply.status, 404, "{path}: {}", reply.text);
        assert!(reply.content_type.starts_with("application/problem+json"));
    }
}
