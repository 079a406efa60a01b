//! Where a subscription may send: `http`/`https` URLs whose host is on `webhooks.allowed_hosts`, or,
//! with an empty list, any public host — never a private, loopback, link-local or otherwise
//! internal address, so that an API key cannot make the service call into its own network. With an
//! empty list the check is repeated on the addresses a name resolves to at delivery time
//! ([`PublicOnlyResolver`]), which also defeats DNS rebinding.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use url::{Host, Url};

/// Longest URL accepted.
pub const MAX_URL_CHARS: usize = 2_000;

/// Checks a subscription URL; the error says why, for a 422 on `url`.
pub fn validate(raw: &str, allowed_hosts: &[String]) -> Result<Url, String> {
    let raw = raw.trim();
    if raw.is_empty() {
        return Err("must not be empty".into());
    }
    if raw.chars().count() > MAX_URL_CHARS {
        return Err(format!("must be at most {MAX_URL_CHARS} characters"));
    }
    let url = Url::parse(raw).map_err(|e| format!("is not a URL: {e}"))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(format!(
            "scheme `{}` is not allowed: use http or https",
            url.scheme()
        ));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err("must not contain credentials (the signature authenticates deliveries)".into());
    }
    if url.fragment().is_some() {
        return Err("must not contain a fragment".into());
    }
    let host = url.host().ok_or("must name a host")?;
    check_host(&host, allowed_hosts)?;
    Ok(url)
}

/// Checks the host of a URL against the settings (also before every delivery: the list may have
/// changed since the subscription was made).
pub fn check_host(host: &Host<&str>, allowed_hosts: &[String]) -> Result<(), String> {
    let name = match host {
        Host::Domain(d) => d.trim_end_matches('.').to_ascii_lowercase(),
        Host::Ipv4(ip) => ip.to_string(),
        Host::Ipv6(ip) => ip.to_string(),
    };
    if !allowed_hosts.is_empty() {
        return if allowed_hosts
            .iter()
            .any(|pattern| host_matches(pattern, &name))
        {
            Ok(())
        } else {
            Err(format!(
                "host `{name}` is not on the list of allowed webhook hosts"
            ))
        };
    }
    match host {
        Host::Ipv4(ip) if !is_public(IpAddr::V4(*ip)) => {
            Err(format!("host `{name}` is not a public address"))
        }
        Host::Ipv6(ip) if !is_public(IpAddr::V6(*ip)) => {
            Err(format!("host `{name}` is not a public address"))
        }
        Host::Domain(_)
            if name == "localhost"
                || name.ends_with(".localhost")
                || name.ends_with(".local")
                || name.ends_with(".internal")
                || !name.contains('.') =>
        {
            Err(format!("host `{name}` is not a public host name"))
        }
        _ => Ok(()),
    }
}

/// `example.org` matches itself; `*.example.org` matches its subdomains (not itself).
fn host_matches(pattern: &str, host: &str) -> bool {
    let pattern = pattern.trim().trim_end_matches('.').to_ascii_lowercase();
    let pattern = pattern.trim_start_matches('[').trim_end_matches(']');
    match pattern.strip_prefix("*.") {
        Some(suffix) => host.len() > suffix.len() + 1 && host.ends_with(&format!(".{suffix}")),
        None => match (pattern.parse::<IpAddr>(), host.parse::<IpAddr>()) {
            (Ok(a), Ok(b)) => a == b,
            _ => pattern == host,
        },
    }
}

/// Whether an address is globally routable: not loopback, private, link-local, shared (CGNAT),
/// unspecified, broadcast, multicast, documentation, benchmarking or reserved.
///
/// IPv6 is public only inside the global unicast block `2000::/3`, minus its special ranges. That
/// rule also refuses every form that embeds an IPv4 address a gateway could translate to an internal
/// one: IPv4-compatible `::a.b.c.d`, SIIT `::ffff:0:a.b.c.d`, NAT64 `64:ff9b::/96` and
/// `64:ff9b:1::/48` (outside `2000::/3`), Teredo `2001::/32` (in `2001::/23`), 6to4 `2002::/16`,
/// and ISATAP interface ids (`…:5efe:a.b.c.d`) naming a non-public IPv4. IPv4-mapped
/// `::ffff:a.b.c.d` is the IPv4 address itself and judged as such.
pub fn is_public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => is_public_v4(v4),
        IpAddr::V6(v6) => {
            if let Some(v4) = v6.to_ipv4_mapped() {
                return is_public_v4(v4);
            }
            let s = v6.segments();
            let global_unicast = (s[0] & 0xe000) == 0x2000;
            let special = (s[0] == 0x2001 && s[1] < 0x0200) // IETF protocol assignments: Teredo, benchmarking, ORCHID…
                || (s[0] == 0x2001 && s[1] == 0x0db8) // documentation
                || s[0] == 0x2002 // 6to4 (embeds IPv4)
                || (s[0] & 0xfff0) == 0x3ff0; // documentation 3fff::/20
            let isatap = (s[4] & 0xfdff) == 0 && s[5] == 0x5efe;
            let isatap_internal = isatap && !is_public_v4(embedded_v4(&v6));
            global_unicast && !special && !isatap_internal
        }
    }
}

/// The IPv4 address in the last 32 bits of an IPv6 address.
fn embedded_v4(v6: &Ipv6Addr) -> Ipv4Addr {
    let o = v6.octets();
    Ipv4Addr::new(o[12], o[13], o[14], o[15])
}

fn is_public_v4(ip: Ipv4Addr) -> bool {
    let o = ip.octets();
    !(ip.is_private()
        || ip.is_loopback()
        || ip.is_link_local()
        || ip.is_unspecified()
        || ip.is_broadcast()
        || ip.is_multicast()
        || ip.is_documentation()
        || o[0] == 0
        || (o[0] == 100 && (o[1] & 0xc0) == 64) // shared address space 100.64/10
        || (o[0] == 192 && o[1] == 0 && o[2] == 0) // IETF protocol assignments
        || (o[0] == 198 && (o[1] & 0xfe) == 18) // benchmarking 198.18/15
        || o[0] >= 240)
}

/// A DNS resolver for the delivery client that drops every non-public address (used when no
/// allow-list is configured): a name that only resolves to internal addresses fails to connect.
#[derive(Debug, Default, Clone)]
pub struct PublicOnlyResolver;

impl reqwest::dns::Resolve for PublicOnlyResolver {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let host = name.as_str().to_owned();
        Box::pin(async move {
            let addrs: Vec<SocketAddr> = tokio::net::lookup_host((host.as_str(), 0))
                .await?
                .filter(|a| is_public(a.ip()))
                .collect();
            if addrs.is_empty() {
                return Err(format!("`{host}` resolves to no public address").into());
            }
            Ok(Box::new(addrs.into_iter()) as Box<dyn Iterator<Item = SocketAddr> + Send>)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schemes_hosts_and_addresses() {
        let none: Vec<String> = Vec::new();
        assert!(validate("https://hooks.example.org/symbiose", &none).is_ok());
        assert!(validate("http://93.184.216.34:8080/x", &none).is_ok());
        for good in [
            "http://[2606:2800:220:1:248:1893:25c8:1946]/x",
            "http://[::ffff:93.184.216.34]/x",
            "http://[2a01:db8:1::5efe:5db8:d822]/x",
        ] {
            assert!(validate(good, &none).is_ok(), "{good} refused");
        }
        for bad in [
            "ftp://example.org/x",
            "file:///etc/passwd",
            "gopher://example.org",
            "http://127.0.0.1:8080/",
            "http://localhost/",
            "http://api.localhost/",
            "http://10.0.0.5/",
            "http://172.16.1.1/",
            "http://192.168.1.1/",
            "http://169.254.169.254/latest/meta-data",
            "http://100.64.0.1/",
            "http://0.0.0.0/",
            "http://[::1]/",
            "http://[fd00::1]/",
            "http://[fe80::1]/",
            "http://[::ffff:127.0.0.1]/",
            "http://[::ffff:10.0.0.1]/",
            // IPv4-compatible, SIIT, NAT64 (well-known and local-use), Teredo, 6to4, ISATAP
            "http://[::127.0.0.1]/",
            "http://[::10.0.0.1]/",
            "http://[::93.184.216.34]/",
            "http://[::ffff:0:127.0.0.1]/",
            "http://[::ffff:0:a9fe:a9fe]/",
            "http://[64:ff9b::7f00:1]/",
            "http://[64:ff9b::a00:1]/",
            "http://[64:ff9b:1::a00:1]/",
            "http://[2001:0:4136:e378:8000:63bf:f5ff:fffe]/",
            "http://[2001::1]/",
            "http://[2002:7f00:1::1]/",
            "http://[2002:a00:1::1]/",
            "http://[2a01:db8:1::5efe:a00:1]/",
            "http://[2a01:db8:1:0:200:5efe:c0a8:101]/",
            "http://[3fff::1]/",
            "http://[100::1]/",
            "http://[ff02::1]/",
            "http://[::]/",
            "http://2130706433/",
            "http://0x7f.1/",
            "http://metadata/",
            "https://user:pw@example.org/",
            "not a url",
            "",
        ] {
            assert!(validate(bad, &none).is_err(), "{bad} accepted");
        }
        let allowed = vec!["127.0.0.1".to_owned(), "*.partner.example".to_owned()];
        assert!(validate("http://127.0.0.1:9000/hook", &allowed).is_ok());
        assert!(validate("https://a.partner.example/hook", &allowed).is_ok());
        assert!(validate("https://partner.example/hook", &allowed).is_err());
        assert!(validate("https://example.org/hook", &allowed).is_err());
        assert!(validate("http://localhost:9000/hook", &allowed).is_err());
    }

    /// The same rule applies to what a name resolves to at delivery time.
    #[tokio::test]
    async fn resolver_drops_internal_addresses() {
        use reqwest::dns::Resolve;
        let name: reqwest::dns::Name = "localhost".parse().expect("a name");
        assert!(PublicOnlyResolver.resolve(name).await.is_err());
    }
}
