//! Who may do what over HTTP. Inference, listings and receipts are public;
//! operator actions (pushing models, uploading blobs, pinning, running an
//! audit on this node's hardware) need the admin token as
//! `Authorization: Bearer TOKEN`. Against a web page the operator visits:
//! every request must name this node in `Host` (a page cannot rebind its
//! own name to the node's address), and an operator action that a browser
//! marks as coming from another origin (`Origin`, `Sec-Fetch-Site`) is
//! refused even with the token. No operator route answers CORS.

use std::net::IpAddr;
use std::sync::Arc;

use axum::extract::{MatchedPath, Request, State};
use axum::http::{HeaderMap, Method, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use vouch_network::Node;
use vouch_service::config::ADMIN_TOKEN_FILE;
use vouch_service::error::NodeError;

/// Operator actions: the routes (method, path pattern) that need the token.
pub const OPERATOR_ROUTES: [(&str, &str); 8] = [
    ("GET", "/v1/operator"),
    ("POST", "/v1/hub/models"),
    ("DELETE", "/v1/hub/models/{name}"),
    ("POST", "/v1/hub/gc"),
    ("POST", "/v1/hub/blobs"),
    ("POST", "/v1/hub/models/{name}/pin"),
    ("POST", "/v1/audit/llm"),
    ("POST", "/v1/ledger/operator-tx"),
];

/// Whether `method` on the route `path` is an operator action.
pub fn is_operator_action(method: &Method, path: &str) -> bool {
    OPERATOR_ROUTES
        .iter()
        .any(|(m, p)| method.as_str() == *m && path == *p)
}

/// The host part of a `Host` header (`name`, `name:port`, `1.2.3.4:80`,
/// `[::1]:80`), lowercased.
fn host_name(host: &str) -> String {
    let host = host.trim();
    let name = if let Some(rest) = host.strip_prefix('[') {
        rest.split_once(']').map_or(rest, |(ip, _)| ip)
    } else {
        host.rsplit_once(':')
            .filter(|(_, port)| port.bytes().all(|b| b.is_ascii_digit()))
            .map_or(host, |(name, _)| name)
    };
    name.trim_end_matches('.').to_ascii_lowercase()
}

/// Whether a request naming `host` is for this node: an IP address (no
/// page can rebind one), `localhost` (browsers resolve it to loopback
/// themselves) or a name the operator allowed.
pub fn host_allowed(host: &str, allowed: &[String]) -> bool {
    let name = host_name(host);
    name.parse::<IpAddr>().is_ok()
        || name == "localhost"
        || name.ends_with(".localhost")
        || allowed
            .iter()
            .any(|a| a.trim_end_matches('.').eq_ignore_ascii_case(&name))
}

/// Why a browser-made request is from another origin than `host`'s, if it
/// is: an `Origin` other than `http(s)://HOST`, or a `Sec-Fetch-Site`
/// other than `same-origin` or `none` (typed by the user).
pub fn cross_origin(headers: &HeaderMap, host: Option<&str>) -> Option<String> {
    if let Some(origin) = headers.get(header::ORIGIN) {
        let origin = origin.to_str().unwrap_or("");
        let same = host.is_some_and(|h| {
            origin
                .strip_prefix("http://")
                .or_else(|| origin.strip_prefix("https://"))
                .is_some_and(|o| o.eq_ignore_ascii_case(h))
        });
        if !same {
            return Some(format!("Origin `{origin}`"));
        }
    }
    match headers
        .get("sec-fetch-site")
        .map(|v| v.to_str().unwrap_or(""))
    {
        None | Some("same-origin") | Some("none") => None,
        Some(site) => Some(format!("Sec-Fetch-Site `{site}`")),
    }
}

/// The bearer token of an `Authorization` header.
fn bearer(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
}

/// The checks above, on every request.
fn check(node: &Node, req: &Request) -> Result<(), NodeError> {
    let headers = req.headers();
    let host = headers.get(header::HOST).and_then(|h| h.to_str().ok());
    if let Some(h) = host
        && !host_allowed(h, &node.config().allowed_hosts)
    {
        return Err(NodeError::Forbidden(format!(
            "this node does not answer for host `{h}`; reach it by IP address or localhost, or start it with --allow-host {}",
            host_name(h)
        )));
    }
    let route = req.extensions().get::<MatchedPath>().map(|p| p.as_str());
    if !route.is_some_and(|r| is_operator_action(req.method(), r)) {
        return Ok(());
    }
    if let Some(why) = cross_origin(headers, host) {
        return Err(NodeError::Forbidden(format!(
            "operator actions are refused from other sites ({why}); run them with the vouch CLI or from this node's own origin"
        )));
    }
    match bearer(headers) {
        Some(token) if node.is_admin_token(token) => Ok(()),
        Some(_) => Err(NodeError::Unauthorized(format!(
            "the bearer token is not this node's admin token; use the one in its data directory's `{ADMIN_TOKEN_FILE}` file"
        ))),
        None => Err(NodeError::Unauthorized(format!(
            "this is an operator action: send `Authorization: Bearer TOKEN` with the token in the node's data directory (`{ADMIN_TOKEN_FILE}`); the vouch CLI reads it from $VOUCH_TOKEN or --data-dir"
        ))),
    }
}

/// Middleware: refuses what [`check`] refuses, before the handler reads a
/// byte of the body.
pub(crate) async fn guard(State(node): State<Arc<Node>>, req: Request, next: Next) -> Response {
    match check(&node, &req) {
        Ok(()) => next.run(req).await,
        Err(e) => crate::error::ApiError(e).into_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts() {
        let allowed = vec!["node.example.org".to_string()];
        for ok in [
            "127.0.0.1:8080",
            "127.0.0.1",
            "[::1]:8080",
            "10.1.2.3:80",
            "localhost:8080",
            "LOCALHOST",
            "app.localhost:3000",
            "node.example.org",
            "Node.Example.Org.:443",
        ] {
            assert!(host_allowed(ok, &allowed), "{ok}");
        }
        for bad in [
            "evil.example:8080",
            "evil.example",
            "localhost.evil.example",
            "127.0.0.1.nip.io:8080",
            "example.org",
        ] {
            assert!(!host_allowed(bad, &allowed), "{bad}");
        }
    }

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.insert(*k, v.parse().unwrap());
        }
        h
    }

    #[test]
    fn origins() {
        let host = Some("127.0.0.1:8080");
        assert_eq!(cross_origin(&headers(&[]), host), None);
        assert_eq!(
            cross_origin(&headers(&[("origin", "http://127.0.0.1:8080")]), host),
            None
        );
        assert_eq!(
            cross_origin(&headers(&[("sec-fetch-site", "same-origin")]), host),
            None
        );
        for bad in [
            headers(&[("origin", "http://evil.example")]),
            headers(&[("origin", "null")]),
            headers(&[("origin", "http://127.0.0.1:9999")]),
            headers(&[("sec-fetch-site", "cross-site")]),
            // another port on the same host is the same site, not origin
            headers(&[("sec-fetch-site", "same-site")]),
        ] {
            assert!(cross_origin(&bad, host).is_some(), "{bad:?}");
        }
        assert!(cross_origin(&headers(&[("origin", "http://a")]), None).is_some());
    }

    #[test]
    fn operator_actions_and_tokens() {
        assert!(is_operator_action(&Method::POST, "/v1/hub/models"));
        assert!(!is_operator_action(&Method::GET, "/v1/hub/models"));
        assert!(!is_operator_action(&Method::POST, "/v1/infer/{name}"));
        let h = headers(&[("authorization", "Bearer abc")]);
        assert_eq!(bearer(&h), Some("abc"));
        assert_eq!(bearer(&headers(&[("authorization", "Basic abc")])), None);
    }
}
