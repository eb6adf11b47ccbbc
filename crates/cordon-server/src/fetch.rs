//! Media fetched by URL, for HMA's `?url=` parameters, without becoming a proxy into the
//! network behind the server (SSRF).
//!
//! Off unless `[fetch] allow_hosts` lists hosts. A listed host is still refused when it
//! resolves to a loopback, private, link-local, cloud-metadata or otherwise non-public
//! address. The check runs in the DNS resolver the client connects with, so the address
//! checked is the address connected to (a second DNS answer cannot swap it), and again on
//! every redirect. Downloads stop at the upload size limit and after a timeout. No proxy
//! is used: a proxy would connect where the check never looked.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;

use axum::body::Bytes;
use axum::http::StatusCode;
use cordon_engine::policy::FetchPolicy;
use ipnet::IpNet;
use reqwest::Url;
use reqwest::dns::{Addrs, Name, Resolve, Resolving};

use crate::error::ApiError;

/// How many redirects are followed before giving up.
const MAX_REDIRECTS: usize = 5;

/// Downloads media from the hosts the policy allows.
pub struct MediaFetcher {
    client: reqwest::Client,
    policy: Arc<FetchPolicy>,
    max_bytes: u64,
}

impl MediaFetcher {
    pub fn new(policy: FetchPolicy, max_bytes: u64) -> Result<MediaFetcher, String> {
        let policy = Arc::new(policy);
        let guard = policy.clone();
        let client = reqwest::Client::builder()
            .no_proxy()
            .timeout(policy.timeout())
            .connect_timeout(policy.timeout().min(std::time::Duration::from_secs(5)))
            .dns_resolver(PublicOnlyResolver {
                policy: policy.clone(),
            })
            .redirect(reqwest::redirect::Policy::custom(move |attempt| {
                if attempt.previous().len() >= MAX_REDIRECTS {
                    return attempt.error(format!("more than {MAX_REDIRECTS} redirects"));
                }
                match check_url(&guard, attempt.url()) {
                    Ok(()) => attempt.follow(),
                    Err(refusal) => attempt.error(refusal),
                }
            }))
            .user_agent(concat!("cordon/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| format!("building the HTTP client: {e}"))?;
        Ok(MediaFetcher {
            client,
            policy,
            max_bytes,
        })
    }

    /// The body at `url`, at most the upload size limit.
    pub async fn fetch(&self, url: &str) -> Result<Bytes, ApiError> {
        let url = Url::parse(url).map_err(|e| ApiError::bad_request(format!("bad url {url:?}: {e}")))?;
        check_url(&self.policy, &url)
            .map_err(|refusal| ApiError::bad_request(format!("{url}: {refusal}")))?;
        let mut response = self
            .client
            .get(url.clone())
            .send()
            .await
            .map_err(|e| failed(&url, &e))?;
        if !response.status().is_success() {
            return Err(ApiError::new(
                StatusCode::BAD_GATEWAY,
                format!("fetching {url}: the server answered {}", response.status()),
            ));
        }
        let too_large = || {
            ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                format!("{url}: the media is larger than {} bytes", self.max_bytes),
            )
        };
        if response.content_length().is_some_and(|n| n > self.max_bytes) {
            return Err(too_large());
        }
        // The declared length may be absent or false: count what actually arrives.
        let mut body = Vec::new();
        while let Some(chunk) = response.chunk().await.map_err(|e| failed(&url, &e))? {
            if (body.len() + chunk.len()) as u64 > self.max_bytes {
                return Err(too_large());
            }
            body.extend_from_slice(&chunk);
        }
        Ok(Bytes::from(body))
    }
}

/// A failed download: refused by the guard or the redirect rules (400), too slow (504), or
/// the remote side failed (502).
fn failed(url: &Url, error: &reqwest::Error) -> ApiError {
    let mut message = error.to_string();
    let mut refused = false;
    let mut source = std::error::Error::source(error);
    while let Some(cause) = source {
        message = format!("{message}: {cause}");
        // Only the guard's own refusal, found by its type in the chain, blames the client:
        // the remote side's "Connection refused (os error 111)" is a failure upstream.
        refused |= cause.is::<Refused>();
        source = cause.source();
    }
    let status = if refused {
        StatusCode::BAD_REQUEST
    } else if error.is_timeout() {
        StatusCode::GATEWAY_TIMEOUT
    } else {
        StatusCode::BAD_GATEWAY
    };
    ApiError::new(status, format!("fetching {url}: {message}"))
}

/// The guard's refusal of a URL or an address: the client asked for something it may not
/// have (400). A type of its own, so that it is told apart from the other errors in the
/// chains reqwest builds around it (the DNS resolver's, the redirect policy's).
#[derive(Debug, thiserror::Error)]
#[error("refused: {0}")]
struct Refused(String);

/// Scheme, host and (for an address written in the URL) address checks; names are
/// checked when they resolve.
fn check_url(policy: &FetchPolicy, url: &Url) -> Result<(), Refused> {
    let refuse = |why: String| Err(Refused(why));
    if !matches!(url.scheme(), "http" | "https") {
        return refuse("only http and https URLs are fetched".into());
    }
    if !url.username().is_empty() || url.password().is_some() {
        return refuse("URLs with credentials are not fetched".into());
    }
    let host = match url.host() {
        Some(url::Host::Domain(name)) => name.to_string(),
        Some(url::Host::Ipv4(ip)) => ip.to_string(),
        Some(url::Host::Ipv6(ip)) => ip.to_string(),
        None => return refuse("the URL has no host".into()),
    };
    if policy.allow_hosts.is_empty() {
        return refuse(
            "fetching media by URL is off on this server (see [fetch] in cordon.toml); \
             upload the file instead"
                .into(),
        );
    }
    if !policy.allows_host(&host) {
        return refuse(format!("host {host} is not in [fetch] allow_hosts"));
    }
    let literal = match url.host() {
        Some(url::Host::Ipv4(ip)) => Some(IpAddr::V4(ip)),
        Some(url::Host::Ipv6(ip)) => Some(IpAddr::V6(ip)),
        _ => None,
    };
    match literal {
        Some(ip) => check_address(policy, ip),
        None => Ok(()),
    }
}

fn check_address(policy: &FetchPolicy, ip: IpAddr) -> Result<(), Refused> {
    match non_public(ip) {
        Some(kind)
            if !policy
                .allow_addresses
                .iter()
                .any(|range: &IpNet| range.contains(&ip)) =>
        {
            Err(Refused(format!("{ip} is a {kind} address")))
        }
        _ => Ok(()),
    }
}

/// Resolves names, then refuses the whole answer if any address in it is not public: a
/// name that points partly inside is not trusted for its other addresses either.
struct PublicOnlyResolver {
    policy: Arc<FetchPolicy>,
}

impl Resolve for PublicOnlyResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let policy = self.policy.clone();
        Box::pin(async move {
            let host = name.as_str().to_string();
            let addresses: Vec<SocketAddr> = tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            if addresses.is_empty() {
                return Err(format!("{host} has no address").into());
            }
            for address in &addresses {
                check_address(&policy, address.ip())
                    .map_err(|refusal| Refused(format!("{host}: {}", refusal.0)))?;
            }
            Ok(Box::new(addresses.into_iter()) as Addrs)
        })
    }
}

/// What kind of non-public address `ip` is, or `None` for a public one.
pub fn non_public(ip: IpAddr) -> Option<&'static str> {
    match ip {
        IpAddr::V4(v4) => non_public_v4(v4),
        IpAddr::V6(v6) => non_public_v6(v6),
    }
}

fn non_public_v4(ip: Ipv4Addr) -> Option<&'static str> {
    let [a, b, c, _] = ip.octets();
    let kind = match (a, b, c) {
        (0, ..) => "this-network",
        (127, ..) => "loopback",
        (10, ..) | (172, 16..=31, _) | (192, 168, _) => "private",
        (169, 254, _) => "link-local (cloud metadata)",
        (100, 64..=127, _) => "shared (carrier NAT)",
        (192, 0, 0) => "protocol-assignment",
        (192, 0, 2) | (198, 51, 100) | (203, 0, 113) => "documentation",
        (198, 18..=19, _) => "benchmarking",
        (224..=239, ..) => "multicast",
        (240..=255, ..) => "reserved or broadcast",
        _ => return None,
    };
    Some(kind)
}

fn non_public_v6(ip: Ipv6Addr) -> Option<&'static str> {
    let segments = ip.segments();
    // Addresses that carry an IPv4 address inside are judged by it.
    if let Some(v4) = ip.to_ipv4_mapped() {
        return non_public_v4(v4);
    }
    if segments[..6] == [0x64, 0xff9b, 0, 0, 0, 0] {
        return non_public_v4(embedded_v4(segments[6], segments[7]));
    }
    // The local-use NAT64 prefix 64:ff9b:1::/48 (RFC 8215) reaches, through the
    // operator's own NAT64, whatever IPv4 address it carries: judged by that address, like
    // the well-known prefix.
    if segments[..3] == [0x64, 0xff9b, 1] {
        return nat64_local_use(segments);
    }
    if segments[0] == 0x2002 {
        return non_public_v4(embedded_v4(segments[1], segments[2]));
    }
    let kind = match segments {
        [0, 0, 0, 0, 0, 0, 0, 0] => "unspecified",
        [0, 0, 0, 0, 0, 0, 0, 1] => "loopback",
        [0, 0, 0, 0, 0, 0, ..] => "IPv4-compatible",
        [0x100, 0, 0, 0, ..] => "discard",
        [0x2001, 0, ..] => "Teredo",
        [0x2001, 0xdb8, ..] => "documentation",
        [first, ..] if first & 0xfe00 == 0xfc00 => "unique-local (private)",
        [first, ..] if first & 0xffc0 == 0xfe80 => "link-local",
        [first, ..] if first & 0xffc0 == 0xfec0 => "site-local",
        [first, ..] if first & 0xff00 == 0xff00 => "multicast",
        _ => return None,
    };
    Some(kind)
}

/// An address under the local-use NAT64 prefix 64:ff9b:1::/48. Its operator may use it
/// as a /96 (the IPv4 address is the last 32 bits, the bits between are zero) or as a
/// /48 to /64, and RFC 6052 then places the IPv4 address elsewhere: which one the address
/// alone does not tell. The /96 form is judged by the address it carries (under any other
/// placement, zero bits there would carry a 0.x.x.x address, never a public one); any
/// other form is refused, which errs on the safe side (`[fetch] allow_addresses` can
/// still let a range through).
fn nat64_local_use(segments: [u16; 8]) -> Option<&'static str> {
    if segments[3..6] == [0, 0, 0] {
        return non_public_v4(embedded_v4(segments[6], segments[7]));
    }
    Some("local-use NAT64 (the IPv4 address inside cannot be told)")
}

/// The IPv4 address two segments of an IPv6 address carry.
fn embedded_v4(high: u16, low: u16) -> Ipv4Addr {
    let [a, b] = high.to_be_bytes();
    let [c, d] = low.to_be_bytes();
    Ipv4Addr::new(a, b, c, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kind(text: &str) -> Option<&'static str> {
        non_public(text.parse().unwrap())
    }

    #[test]
    fn inside_addresses_are_named_and_public_ones_pass() {
        for (address, expected) in [
            ("127.0.0.1", "loopback"),
            ("127.255.0.9", "loopback"),
            ("10.1.2.3", "private"),
            ("172.16.0.1", "private"),
            ("172.31.255.255", "private"),
            ("192.168.1.1", "private"),
            ("169.254.169.254", "link-local (cloud metadata)"),
            ("100.100.100.200", "shared (carrier NAT)"),
            ("0.0.0.0", "this-network"),
            ("255.255.255.255", "reserved or broadcast"),
            ("224.0.0.1", "multicast"),
            ("::1", "loopback"),
            ("::", "unspecified"),
            ("::ffff:127.0.0.1", "loopback"),
            ("::ffff:169.254.169.254", "link-local (cloud metadata)"),
            ("64:ff9b::a9fe:a9fe", "link-local (cloud metadata)"),
            ("2002:0a00:0001::1", "private"),
            ("fd00:ec2::254", "unique-local (private)"),
            ("fe80::1", "link-local"),
            ("ff02::1", "multicast"),
            ("2001:db8::1", "documentation"),
        ] {
            assert_eq!(kind(address), Some(expected), "{address}");
        }
        for public in [
            "93.184.216.34",
            "172.32.0.1",
            "8.8.8.8",
            "2606:4700::1111",
            "::ffff:8.8.8.8",
        ] {
            assert_eq!(kind(public), None, "{public}");
        }
    }

    #[test]
    fn the_local_use_nat64_prefix_is_judged_by_the_ipv4_address_inside() {
        // RFC 8215's 64:ff9b:1::/48 used as a /96: judged by the IPv4 address inside,
        // like the well-known 64:ff9b::/96.
        for (address, expected) in [
            ("64:ff9b:1::a9fe:a9fe", "link-local (cloud metadata)"),
            ("64:ff9b:1::7f00:1", "loopback"),
            ("64:ff9b:1::a00:1", "private"),
            ("64:ff9b:1::c0a8:101", "private"),
        ] {
            assert_eq!(kind(address), Some(expected), "{address}");
        }
        assert_eq!(kind("64:ff9b:1::808:808"), None, "a public address inside passes");
        // Used with a shorter prefix, the IPv4 address could be anywhere: refused.
        for address in ["64:ff9b:1:a01:0:203::", "64:ff9b:1:808:8:808::"] {
            assert!(
                kind(address).is_some_and(|k| k.contains("local-use NAT64")),
                "{address}"
            );
        }
        // The allow-list can still let such a range through.
        let policy = FetchPolicy {
            allow_addresses: vec!["64:ff9b:1::/48".parse().unwrap()],
            ..FetchPolicy::default()
        };
        assert!(check_address(&policy, "64:ff9b:1::a00:1".parse().unwrap()).is_ok());
        assert!(check_address(&FetchPolicy::default(), "64:ff9b:1::a00:1".parse().unwrap()).is_err());
    }

    #[test]
    fn urls_are_checked_before_any_connection() {
        let policy = FetchPolicy {
            allow_hosts: vec!["*".to_string()],
            ..FetchPolicy::default()
        };
        let check = |url: &str| check_url(&policy, &Url::parse(url).unwrap());
        assert!(check("https://media.example.com/a.jpg").is_ok());
        for (url, words) in [
            ("ftp://media.example.com/a.jpg", "only http and https"),
            ("file:///etc/passwd", "only http and https"),
            ("http://user:pw@media.example.com/", "credentials"),
            ("http://169.254.169.254/latest/meta-data/", "cloud metadata"),
            ("http://[::ffff:127.0.0.1]:8080/", "loopback"),
            ("http://2130706433/", "loopback"),
            ("http://0x7f.1/", "loopback"),
        ] {
            let refusal = check(url).unwrap_err().to_string();
            assert!(refusal.contains(words), "{url}: {refusal}");
        }
        let off = FetchPolicy::default();
        let refusal = check_url(&off, &Url::parse("https://media.example.com/").unwrap())
            .unwrap_err()
            .to_string();
        assert!(refusal.contains("off on this server"), "{refusal}");
        let mirror = FetchPolicy {
            allow_hosts: vec!["10.1.2.3".to_string()],
            allow_addresses: vec!["10.1.0.0/16".parse().unwrap()],
            ..FetchPolicy::default()
        };
        assert!(check_url(&mirror, &Url::parse("http://10.1.2.3/a.jpg").unwrap()).is_ok());
        assert!(check_url(&mirror, &Url::parse("http://10.2.2.3/a.jpg").unwrap()).is_err());
    }
}
