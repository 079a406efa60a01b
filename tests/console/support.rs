//! A cookie-keeping client of the console (no redirects followed, so tests see each 303), and the
//! small fixtures the tests share.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::helpers::TestApp;

pub struct Page {
    pub status: u16,
    pub location: Option<String>,
    pub set_cookies: Vec<String>,
    pub body: String,
    pub elapsed: Duration,
}

impl Page {
    /// The value of the first hidden `csrf` field.
    pub fn csrf(&self) -> String {
        hidden(&self.body, "csrf").unwrap_or_default()
    }
}

/// The value of `<input type="hidden" name="NAME" value="…">`.
pub fn hidden(html: &str, name: &str) -> Option<String> {
    let marker = format!(r#"name="{name}" value=""#);
    let start = html.find(&marker)? + marker.len();
    let end = html[start..].find('"')? + start;
    Some(html[start..end].to_owned())
}

pub struct Console<'a> {
    pub app: &'a TestApp,
    client: reqwest::Client,
    pub cookies: HashMap<String, String>,
}

impl<'a> Console<'a> {
    pub fn new(app: &'a TestApp) -> Console<'a> {
        Console {
            app,
            client: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .expect("client"),
            cookies: HashMap::new(),
        }
    }

    fn cookie_header(&self) -> String {
        self.cookies
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join("; ")
    }

    async fn send(&mut self, request: reqwest::RequestBuilder) -> Page {
        let started = Instant::now();
        let request = if self.cookies.is_empty() {
            request
        } else {
            request.header("cookie", self.cookie_header())
        };
        let response = request.send().await.expect("request sent");
        let elapsed = started.elapsed();
        let status = response.status().as_u16();
        let location = response
            .headers()
            .get("location")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let set_cookies: Vec<String> = response
            .headers()
            .get_all("set-cookie")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .map(str::to_owned)
            .collect();
        for c in &set_cookies {
            let pair = c.split(';').next().unwrap_or_default();
            if let Some((name, value)) = pair.split_once('=') {
                if value.is_empty() {
                    self.cookies.remove(name);
                } else {
                    self.cookies.insert(name.to_owned(), value.to_owned());
                }
            }
        }
        let body = response.text().await.unwrap_or_default();
        Page {
            status,
            location,
            set_cookies,
            body,
            elapsed,
        }
    }

    pub async fn get(&mut self, path: &str) -> Page {
        let request = self.client.get(self.app.url(path));
        self.send(request).await
    }

    pub async fn post(&mut self, path: &str, form: &[(&str, &str)]) -> Page {
        let request = self.client.post(self.app.url(path)).form(form);
        self.send(request).await
    }

    /// The import form as a browser sends it (`multipart/form-data`, a `csrf` field and a file).
    pub async fn post_multipart(&mut self, path: &str, csrf: &str, file: &str) -> Page {
        let boundary = "----symbioseTestBoundary7MA4YWxkTrZu0gW";
        let body = format!(
            "--{boundary}\r\nContent-Disposition: form-data; name=\"csrf\"\r\n\r\n{csrf}\r\n\
             --{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"actors.csv\"\r\n\
             Content-Type: text/csv\r\n\r\n{file}\r\n--{boundary}--\r\n"
        );
        let request = self
            .client
            .post(self.app.url(path))
            .header(
                "content-type",
                format!("multipart/form-data; boundary={boundary}"),
            )
            .body(body);
        self.send(request).await
    }

    /// Signs in with `key`; panics unless the console answers with a session.
    pub async fn sign_in(&mut self, key: &str) {
        let form = self.get("/console/login").await;
        assert_eq!(form.status, 200, "{}", form.body);
        let token = form.csrf();
        let reply = self
            .post(
                "/console/login",
                &[("key", key), ("csrf", &token), ("next", "/console")],
            )
            .await;
        assert_eq!(reply.status, 303, "sign-in: {}", reply.body);
        assert!(self.cookies.contains_key("symbiose_console"));
    }
}

pub const HIDDEN_NAME: &str = "Scierie Discrète du Morvan";
pub const HIDDEN_SIRET: &str = "73282932000074";
pub const OPEN_NAME: &str = "Chaufferie Ouverte de Dijon";

/// A sawmill that did not consent offers sawdust to a boiler house that did, both in Dijon (21);
/// and a foundry in Nevers (58). Returns (sawmill id, boiler id, offer id).
pub async fn fixture(app: &TestApp) -> (String, String, String) {
    let sawmill = app
        .create_actor(
            json!({"name": HIDDEN_NAME, "siret": HIDDEN_SIRET, "naf_code": "16.10A",
            "commune_insee": "21231", "share_with_partners": false}),
        )
        .await;
    let boiler = app
        .create_actor(json!({"name": OPEN_NAME, "naf_code": "35.30Z",
            "commune_insee": "21231", "share_with_partners": true}))
        .await;
    let offer = app
        .create_resource(
            &sawmill,
            json!({"kind": "offer", "category": "material", "label": "Sciures de hêtre",
                "ewc_code": "03 01 05", "quantity": {"value": 40, "unit": "t", "period": "month"}}),
        )
        .await;
    app.create_resource(
        &boiler,
        json!({"kind": "need", "category": "material", "label": "Sciures pour chaudière",
            "ewc_code": "03 01 05", "quantity": {"value": 300, "unit": "t", "period": "year"}}),
    )
    .await;
    let foundry = app
        .create_actor(json!({"name": "Fonderie de Nevers", "naf_code": "24.51Z",
            "commune_insee": "58194", "share_with_partners": true}))
        .await;
    app.create_resource(
        &foundry,
        json!({"kind": "offer", "category": "material", "label": "Sables de fonderie",
            "ewc_code": "10 09 08", "quantity": {"value": 500, "unit": "t", "period": "year"}}),
    )
    .await;
    let offer_id = offer["id"].as_str().expect("offer id").to_owned();
    (sawmill, boiler, offer_id)
}

/// The first substitution synergy of a territory as the admin reads it.
pub async fn first_synergy(app: &TestApp, territory: &str) -> Value {
    let list = app
        .get(&format!(
            "/api/v1/synergies?territory={territory}&kind=substitution&limit=5"
        ))
        .await;
    assert_eq!(list.status, 200, "{}", list.text);
    list.body["items"][0].clone()
}
