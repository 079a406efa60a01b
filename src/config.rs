//! Typed settings: `config/default.toml` < `config/{SYMBIOSE_ENV}.toml` < environment variables
//! `SYMBIOSE__SECTION__KEY`. A wrong or missing setting is one error line naming the key.

use std::path::{Path, PathBuf};

use serde::Deserialize;

/// Every section, and the top level, refuses unknown keys: a misspelt key (`[databse]`, `urll`)
/// would otherwise be ignored and leave its default in force, e.g. production on SQLite.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    pub server: ServerSettings,
    pub database: DatabaseSettings,
    pub reference: ReferenceSettings,
    #[serde(default)]
    pub demo: DemoSettings,
    #[serde(default)]
    pub log: LogSettings,
    /// Matching engine: thresholds and score weights (`[matching]`, `[matching.weights]`).
    #[serde(default)]
    pub matching: crate::matching::MatchingSettings,
    /// Pooling groups (`[pooling]`: radius_km, min_members, max_members).
    #[serde(default)]
    pub pooling: PoolingSettings,
    /// API keys, public reads, anonymisation and rate limits (`[auth]`).
    #[serde(default)]
    pub auth: AuthSettings,
    /// Partner webhooks: target hosts, delivery worker, retries (`[webhooks]`).
    #[serde(default)]
    pub webhooks: WebhookSettings,
    /// Material flow accounts: weights of the territorial priority (`[afme.priority]`).
    #[serde(default)]
    pub afme: AfmeSettings,
}

/// `[afme]`: how a territory's account turns into the priority of each family.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AfmeSettings {
    /// Weights of import dependence, landfill share and weight in DMC (normalised to sum 1).
    pub priority: crate::afme::priority::PriorityWeights,
}

/// `[webhooks]`: where subscriptions may point and how the delivery worker retries.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct WebhookSettings {
    /// Run the delivery worker in `serve` (several instances may run it on one database).
    pub worker: bool,
    /// Hosts (names or IP literals, exact, case-insensitive; `*.example.org` for subdomains) that
    /// subscriptions may target. Empty: any public host; IP literals that are private, loopback,
    /// link-local, … and `localhost` are refused, and names must resolve to public addresses.
    pub allowed_hosts: Vec<String>,
    /// How often the worker looks for events to fan out and deliveries that are due.
    pub poll_interval_ms: u64,
    /// Delay before the first retry; doubles with every failed attempt (with jitter)…
    pub backoff_base_ms: u64,
    /// …up to this delay.
    pub backoff_max_ms: u64,
    /// An event still failing this long after it happened is given up (`expired`) after its
    /// next failed attempt, and the subscription moves on to the next one.
    pub max_age_secs: u64,
    /// Consecutive failed attempts after which a subscription is paused (until resumed).
    pub failures_before_pause: u32,
    /// Timeout of one delivery request (connect + response).
    pub timeout_ms: u64,
    /// Events fanned out, and deliveries made per subscription, per worker round.
    pub batch_size: i64,
    /// Subscriptions delivered concurrently.
    pub concurrency: usize,
    /// Delivered and expired events (with their attempts) are deleted after this many days.
    pub retention_days: u32,
}

impl Default for WebhookSettings {
    fn default() -> Self {
        WebhookSettings {
            worker: true,
            allowed_hosts: Vec::new(),
            poll_interval_ms: 1_000,
            backoff_base_ms: 5_000,
            backoff_max_ms: 3_600_000,
            max_age_secs: 3 * 24 * 3600,
            failures_before_pause: 15,
            timeout_ms: 10_000,
            batch_size: 100,
            concurrency: 8,
            retention_days: 30,
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AuthSettings {
    /// Reads (GET, and the ad-hoc match) without a key are allowed, with actors that did not consent
    /// anonymised as for partners. Off by default; the demo turns it on.
    pub public_read: bool,
    /// Secret from which the stable opaque ids of anonymised actors are derived. Set it in production:
    /// with the default, anyone who knows an actor's real id could recompute its opaque id.
    pub anonymisation_secret: String,
    /// Sustained requests per second allowed per key (all spellings of one key share it).
    pub rate_limit_per_second: u32,
    /// Requests a key may send in a burst above the sustained rate.
    pub rate_limit_burst: u32,
    /// Sustained requests per second per client address (an IPv6 client by its /64) of the
    /// requests without a recently accepted key — no key, or an unknown or revoked one —,
    /// charged before the key lookup.
    pub address_rate_limit_per_second: u32,
    /// Burst above that rate, per client address.
    pub address_rate_limit_burst: u32,
    /// Most clients (addresses, and keys) the rate limiter tracks at once; beyond, after dropping
    /// idle ones, new clients are refused (503) rather than letting memory grow.
    pub rate_limit_max_clients: usize,
    /// Networks of the reverse proxies in front of the servers (CIDR, e.g. `172.16.0.0/12`): for a
    /// request from one of them, the client address (for rate limits) is the last address of
    /// `X-Forwarded-For` that is not a trusted proxy. Empty: the connection's peer is the client,
    /// and `X-Forwarded-For` is ignored (anyone can write it).
    pub trusted_proxies: Vec<String>,
}

impl Default for AuthSettings {
    fn default() -> Self {
        AuthSettings {
            public_read: false,
            anonymisation_secret: PUBLIC_ANONYMISATION_SECRET.into(),
            rate_limit_per_second: 200,
            rate_limit_burst: 400,
            address_rate_limit_per_second: 100,
            address_rate_limit_burst: 200,
            rate_limit_max_clients: 100_000,
            trusted_proxies: Vec::new(),
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PoolingSettings {
    pub radius_km: f64,
    pub min_members: usize,
    pub max_members: usize,
}

impl Default for PoolingSettings {
    fn default() -> Self {
        let p = crate::matching::pooling::PoolingParams::default();
        PoolingSettings {
            radius_km: p.radius_km,
            min_members: p.min_members,
            max_members: p.max_members,
        }
    }
}

impl PoolingSettings {
    pub fn params(&self) -> crate::matching::pooling::PoolingParams {
        crate::matching::pooling::PoolingParams {
            radius_km: self.radius_km,
            min_members: self.min_members,
            max_members: self.max_members,
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServerSettings {
    pub host: String,
    pub port: u16,
    pub json_limit_bytes: usize,
    pub import_limit_bytes: usize,
    #[serde(default)]
    pub workers: usize,
    /// Origins allowed to call the API from a browser (CORS), e.g. `["https://portail.example"]`.
    /// Empty: no cross-origin access.
    #[serde(default)]
    pub cors_origins: Vec<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DatabaseSettings {
    pub url: String,
    pub pool_size: u32,
    pub busy_timeout_ms: u32,
    /// How often a server looks at the database's change counters (what another server or the CLI
    /// wrote); on PostgreSQL a notification wakes it at once and this is the fallback.
    #[serde(default = "default_change_poll_ms")]
    pub change_poll_ms: u64,
}

fn default_change_poll_ms() -> u64 {
    200
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReferenceSettings {
    pub dir: PathBuf,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DemoSettings {
    #[serde(default)]
    pub enabled: bool,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LogSettings {
    pub filter: String,
    pub format: String,
}

impl Default for LogSettings {
    fn default() -> Self {
        LogSettings {
            filter: "info".into(),
            format: "pretty".into(),
        }
    }
}

/// The anonymisation secret shipped in `config/default.toml`: public, so refused in production.
pub const PUBLIC_ANONYMISATION_SECRET: &str = "symbiose-anonymisation";

#[derive(Debug, thiserror::Error)]
#[error("configuration: {0}")]
pub struct ConfigError(String);

impl Settings {
    /// Loads the layered settings from `config_dir` for the environment named by `SYMBIOSE_ENV`
    /// (default `default` alone).
    pub fn load(config_dir: &Path) -> Result<Settings, ConfigError> {
        let env = std::env::var("SYMBIOSE_ENV").ok().filter(|e| !e.is_empty());
        Self::load_for(config_dir, env.as_deref())
    }

    pub fn load_for(config_dir: &Path, env: Option<&str>) -> Result<Settings, ConfigError> {
        Self::load_with_vars(config_dir, env, None)
    }

    /// As [`Settings::load_for`], reading `SYMBIOSE__…` variables from `vars` instead of the process
    /// environment when given (tests). List settings take comma-separated values
    /// (`SYMBIOSE__WEBHOOKS__ALLOWED_HOSTS=hooks.example.org,10.0.0.5`).
    pub fn load_with_vars(
        config_dir: &Path,
        env: Option<&str>,
        vars: Option<std::collections::HashMap<String, String>>,
    ) -> Result<Settings, ConfigError> {
        let default = config_dir.join("default.toml");
        if !default.is_file() {
            return Err(ConfigError(format!("missing file {}", default.display())));
        }
        let mut builder = config::Config::builder().add_source(config::File::from(default));
        if let Some(env) = env.filter(|e| *e != "default") {
            let file = config_dir.join(format!("{env}.toml"));
            if !file.is_file() {
                return Err(ConfigError(format!(
                    "SYMBIOSE_ENV={env} but {} does not exist",
                    file.display()
                )));
            }
            builder = builder.add_source(config::File::from(file));
        }
        let settings: Settings = builder
            .add_source(
                config::Environment::with_prefix("SYMBIOSE")
                    .prefix_separator("__")
                    .separator("__")
                    .try_parsing(true)
                    .list_separator(",")
                    .with_list_parse_key("webhooks.allowed_hosts")
                    .with_list_parse_key("server.cors_origins")
                    .source(vars),
            )
            .build()
            .and_then(|c| c.try_deserialize())
            .map_err(|e| ConfigError(e.to_string()))?;
        settings.check(env)?;
        Ok(settings)
    }

    /// Checks what serde cannot: ranges, non-empty values, the database URL's form, and (for
    /// `SYMBIOSE_ENV=production`) that no public default secret is left, naming the key.
    fn check(&self, env: Option<&str>) -> Result<(), ConfigError> {
        let fail = |key: &str, why: &str| Err(ConfigError(format!("key `{key}`: {why}")));
        if self.server.host.trim().is_empty() {
            return fail("server.host", "must not be empty");
        }
        if let Err(why) = check_database_url(&self.database.url) {
            return fail("database.url", &why);
        }
        if env == Some("production")
            && self.auth.anonymisation_secret == PUBLIC_ANONYMISATION_SECRET
        {
            return fail(
                "auth.anonymisation_secret",
                "is still the public default with SYMBIOSE_ENV=production: set your own in \
                 SYMBIOSE__AUTH__ANONYMISATION_SECRET",
            );
        }
        if let Some(bad) = self.server.cors_origins.iter().find(|o| {
            url::Url::parse(o).map_or(true, |u| {
                !matches!(u.scheme(), "http" | "https") || u.path() != "/"
            })
        }) {
            return Err(ConfigError(format!(
                "key `server.cors_origins`: `{bad}` is not an http(s) origin"
            )));
        }
        if self.database.pool_size == 0 {
            return fail("database.pool_size", "must be at least 1");
        }
        if self.server.json_limit_bytes == 0 {
            return fail("server.json_limit_bytes", "must be positive");
        }
        if !matches!(self.log.format.as_str(), "json" | "pretty") {
            return fail("log.format", "must be \"json\" or \"pretty\"");
        }
        if let Err(e) = self.afme.priority.normalised() {
            return Err(ConfigError(format!("section `afme.priority`: {e}")));
        }
        if let Err(e) = self.matching.validate() {
            return Err(ConfigError(format!("section `matching`: {e}")));
        }
        if !(self.pooling.radius_km.is_finite() && self.pooling.radius_km > 0.0) {
            return fail("pooling.radius_km", "must be a positive number of km");
        }
        if self.pooling.min_members < 3 || self.pooling.max_members < self.pooling.min_members {
            return fail(
                "pooling.min_members",
                "must be at least 3 and at most pooling.max_members",
            );
        }
        if self.auth.rate_limit_per_second == 0 || self.auth.rate_limit_burst == 0 {
            return fail(
                "auth.rate_limit_per_second",
                "the rate and the burst must both be at least 1",
            );
        }
        if self.auth.address_rate_limit_per_second == 0 || self.auth.address_rate_limit_burst == 0 {
            return fail(
                "auth.address_rate_limit_per_second",
                "the rate and the burst must both be at least 1",
            );
        }
        for (i, network) in self.auth.trusted_proxies.iter().enumerate() {
            if network.trim().parse::<ipnet::IpNet>().is_err() {
                return fail(
                    &format!("auth.trusted_proxies[{i}]"),
                    "must be a network in CIDR notation, such as 172.16.0.0/12",
                );
            }
        }
        if self.auth.rate_limit_max_clients == 0 {
            return fail("auth.rate_limit_max_clients", "must be at least 1");
        }
        if self.auth.anonymisation_secret.trim().is_empty() {
            return fail("auth.anonymisation_secret", "must not be empty");
        }
        let hooks = &self.webhooks;
        if let Some(bad) = hooks.allowed_hosts.iter().find(|h| {
            let h = h.trim();
            h.is_empty()
                || h.contains(['/', ':', '@', ' ']) && h.parse::<std::net::IpAddr>().is_err()
        }) {
            return Err(ConfigError(format!(
                "key `webhooks.allowed_hosts`: `{bad}` is not a host name or IP address"
            )));
        }
        for (key, value) in [
            ("webhooks.poll_interval_ms", hooks.poll_interval_ms),
            ("webhooks.backoff_base_ms", hooks.backoff_base_ms),
            ("webhooks.max_age_secs", hooks.max_age_secs),
            ("webhooks.timeout_ms", hooks.timeout_ms),
            (
                "webhooks.failures_before_pause",
                u64::from(hooks.failures_before_pause),
            ),
            ("webhooks.concurrency", hooks.concurrency as u64),
            ("webhooks.retention_days", u64::from(hooks.retention_days)),
        ] {
            if value == 0 {
                return fail(key, "must be positive");
            }
        }
        if hooks.backoff_max_ms < hooks.backoff_base_ms {
            return fail(
                "webhooks.backoff_max_ms",
                "must be at least webhooks.backoff_base_ms",
            );
        }
        if !(1..=10_000).contains(&hooks.batch_size) {
            return fail("webhooks.batch_size", "must be between 1 and 10000");
        }
        Ok(())
    }
}

/// `database.url` must say which backend it means: `sqlite://PATH`, a plain path ending in `.db`,
/// or `postgres://…` (`postgresql://…`). Anything else is refused rather than taken as an SQLite
/// file name, which SQLite would happily create (`mysql://…` would "work" on a new empty file).
/// The message quotes the scheme only: the URL may hold a password.
fn check_database_url(url: &str) -> Result<(), String> {
    let url = url.trim();
    if url.is_empty() {
        return Err("must not be empty".into());
    }
    if let Some((scheme, rest)) = url.split_once("://") {
        return match scheme {
            "postgres" | "postgresql" if !rest.is_empty() => Ok(()),
            "sqlite" if !rest.is_empty() => Ok(()),
            "postgres" | "postgresql" | "sqlite" => Err(format!("`{scheme}://` names no database")),
            other => Err(format!(
                "scheme `{other}://` is not supported: use sqlite://PATH, a path ending in .db, \
                 or postgres://USER@HOST:PORT/DATABASE"
            )),
        };
    }
    if url.ends_with(".db") {
        Ok(())
    } else {
        Err(
            "a plain path must end in .db (or write sqlite://PATH); for PostgreSQL use \
             postgres://USER@HOST:PORT/DATABASE"
                .into(),
        )
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;
    use std::path::Path;

    use super::*;

    fn load(env: Option<&str>, vars: &[(&str, &str)]) -> Result<Settings, String> {
        let vars: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        Settings::load_with_vars(Path::new("config"), env, Some(vars)).map_err(|e| e.to_string())
    }

    /// A config dir holding the project's default.toml with `extra` appended to `section`.
    fn with_line(section: &str, extra: &str) -> tempfile::TempDir {
        let dir = tempfile::tempdir().expect("temp dir");
        let default = std::fs::read_to_string("config/default.toml").expect("default.toml");
        let header = format!("[{section}]\n");
        assert!(default.contains(&header), "{section} in default.toml");
        let edited = default.replacen(&header, &format!("{header}{extra}\n"), 1);
        std::fs::write(dir.path().join("default.toml"), edited).expect("write default.toml");
        dir
    }

    #[test]
    fn every_section_refuses_an_unknown_key() {
        for section in [
            "server",
            "database",
            "reference",
            "demo",
            "log",
            "auth",
            "webhooks",
            "matching",
            "afme.priority",
        ] {
            let dir = with_line(section, "typo_key = 1");
            let message = match Settings::load_for(dir.path(), None) {
                Ok(_) => panic!("[{section}] accepted an unknown key"),
                Err(e) => e.to_string(),
            };
            assert!(message.contains("typo_key"), "[{section}]: {message}");
            assert_eq!(message.lines().count(), 1, "one line: {message}");
        }
    }

    #[test]
    fn an_unknown_section_or_variable_is_refused() {
        let dir = tempfile::tempdir().expect("temp dir");
        let default = std::fs::read_to_string("config/default.toml").expect("default.toml");
        std::fs::write(
            dir.path().join("default.toml"),
            format!("{default}\n[databse]\nurl = \"postgres://x@db/y\"\n"),
        )
        .expect("write default.toml");
        let message = Settings::load_for(dir.path(), None)
            .expect_err("refused")
            .to_string();
        assert!(message.contains("databse"), "{message}");

        let message = load(None, &[("SYMBIOSE__DATABASE__URLL", "x.db")]).expect_err("refused");
        assert!(message.contains("urll"), "{message}");
    }

    #[test]
    fn environment_variables_still_override_nested_keys() {
        let settings = load(
            None,
            &[
                ("SYMBIOSE__SERVER__PORT", "9090"),
                ("SYMBIOSE__DATABASE__URL", "postgres://u@127.0.0.1:5432/s"),
                ("SYMBIOSE__AUTH__PUBLIC_READ", "true"),
                ("SYMBIOSE__MATCHING__MAX_STALENESS_MS", "5"),
                (
                    "SYMBIOSE__SERVER__CORS_ORIGINS",
                    "https://a.example,https://b.example",
                ),
            ],
        )
        .expect("loads");
        assert_eq!(settings.server.port, 9090);
        assert_eq!(settings.database.url, "postgres://u@127.0.0.1:5432/s");
        assert!(settings.auth.public_read);
        assert_eq!(settings.server.cors_origins.len(), 2);
    }

    #[test]
    fn the_database_url_names_its_backend() {
        for good in [
            "data/symbiose.db",
            "/var/lib/symbiose/s.db",
            "sqlite://data/s.sqlite",
            "sqlite://:memory:",
            "postgres://u@db:5432/s",
            "postgresql://u:p@db/s?sslmode=disable",
        ] {
            assert!(check_database_url(good).is_ok(), "{good}");
        }
        for bad in [
            "mysql://root:hunter2@db/s",
            "data/symbiose",
            "postgress://u@db/s",
            "postgres://",
            ":memory:",
            "  ",
        ] {
            let message = load(None, &[("SYMBIOSE__DATABASE__URL", bad)])
                .err()
                .unwrap_or_else(|| panic!("{bad} accepted"));
            assert!(message.contains("database.url"), "{bad}: {message}");
            assert!(!message.contains("hunter2"), "password quoted: {message}");
        }
    }

    #[test]
    fn production_refuses_the_public_anonymisation_secret() {
        let message = load(Some("production"), &[]).expect_err("refused");
        assert!(message.contains("auth.anonymisation_secret"), "{message}");
        assert!(
            message.contains("SYMBIOSE__AUTH__ANONYMISATION_SECRET"),
            "{message}"
        );
        let settings = load(
            Some("production"),
            &[(
                "SYMBIOSE__AUTH__ANONYMISATION_SECRET",
                "a-long-private-secret",
            )],
        )
        .expect("loads with a secret of its own");
        assert!(settings.database.url.starts_with("postgres://"));
        // Elsewhere the default stays usable (the README's first command, the tests).
        assert!(load(None, &[]).is_ok());
    }
}
