//! The HTTP door's check of a 2026-07-28 `tools/call`'s `Mcp-Param-*` headers against its
//! arguments (SEP-2243), for the calls it sends the gateway's own way (`fast`); rmcp's
//! server checks the others. A proxy in front of the gateway may have routed the call on
//! those headers, so a call whose headers and body disagree is refused (-32020, HTTP 400),
//! never served. The checks and their messages are rmcp's, so that a client reads the same
//! refusal whichever way its call went.

use http::HeaderMap;
use serde_json::{Map, Value};

use crate::mcp_headers::arguments::{self, decoded};

/// What rmcp's messages call an argument's header before its `x-mcp-header`.
const PREFIX: &str = "Mcp-Param-";

/// Checks `headers` against the arguments a tool with input schema `schema` is called with:
/// every argument the schema marks comes with its header, with the value the body has (in
/// Base64 or not), and no such header comes for an argument that is absent or null. Other
/// `Mcp-Param-*` headers are not read. `Err` says what disagrees.
pub(super) fn check(
    headers: &HeaderMap,
    schema: &Map<String, Value>,
    arguments: Option<&Map<String, Value>>,
) -> Result<(), String> {
    for marked in arguments::marked(schema, arguments) {
        let header = format!("{PREFIX}{}", marked.header);
        let place = marked.path.join(".");
        match (single(headers, &header)?, marked.text) {
            (None, None) => {}
            (Some(_), None) => {
                return Err(format!(
                    "unexpected {header} header for absent or null `{place}`"
                ));
            }
            (None, Some(_)) => return Err(format!("missing {header} header for `{place}`")),
            (Some(value), Some(expected)) => {
                let sent =
                    decoded(value).ok_or_else(|| format!("{header} header is not valid Base64"))?;
                if sent != expected {
                    return Err(format!(
                        "{header} header `{sent}` does not match body value `{expected}`"
                    ));
                }
            }
        }
    }
    Ok(())
}

/// The one value of header `name` as text, if it came; an error when it came more than once
/// (a proxy may have routed on another of them) or holds what is not visible ASCII.
fn single<'a>(headers: &'a HeaderMap, name: &str) -> Result<Option<&'a str>, String> {
    let mut values = headers.get_all(name).iter();
    let Some(value) = values.next() else {
        return Ok(None);
    };
    if values.next().is_some() {
        return Err(format!("duplicate {name} header"));
    }
    value
        .to_str()
        .map(Some)
        .map_err(|_| format!("{name} header contains invalid characters"))
}

#[cfg(test)]
mod tests {
    use http::{HeaderName, HeaderValue};
    use serde_json::json;

    use super::*;

    /// Headers as a client sends them: names and values' bytes.
    type Sent<'a> = &'a [(&'a str, &'a [u8])];

    fn headers(pairs: Sent<'_>) -> HeaderMap {
        let mut headers = HeaderMap::new();
        for (name, value) in pairs {
            headers.append(
                HeaderName::from_bytes(name.as_bytes()).unwrap(),
                HeaderValue::from_bytes(value).unwrap(),
            );
        }
        headers
    }

    fn schema() -> Map<String, Value> {
        serde_json::from_value(json!({
            "type": "object",
            "properties": {
                "region": {"type": "string", "x-mcp-header": "Region"},
                "shard": {"type": "integer", "x-mcp-header": "Shard"},
                "where": {"properties": {"zone": {"type": "string", "x-mcp-header": "Zone"}}},
                "note": {"type": "string"}
            }
        }))
        .unwrap()
    }

    fn checked(pairs: Sent<'_>, arguments: Value) -> Result<(), String> {
        let arguments = serde_json::from_value(arguments).unwrap();
        check(&headers(pairs), &schema(), Some(&arguments))
    }

    #[test]
    fn headers_that_say_what_the_body_says_pass() {
        let arguments =
            json!({"region": "eu", "shard": 7, "where": {"zone": "Zürich"}, "note": "n"});
        let sent: Sent<'_> = &[
            ("mcp-param-region", b"eu"),
            ("Mcp-Param-Shard", b"7"),
            ("mcp-param-zone", b"=?base64?WsO8cmljaA==?="),
            // Neither marked nor read.
            ("mcp-param-other", b"x"),
        ];
        assert_eq!(checked(sent, arguments), Ok(()));
        // Nothing marked is sent, so no header is asked for.
        assert_eq!(checked(&[], json!({"note": "n", "region": null})), Ok(()));
        assert_eq!(check(&HeaderMap::new(), &schema(), None), Ok(()));
    }

    #[test]
    fn each_disagreement_is_named_as_rmcp_names_it() {
        let cases: [(Sent<'_>, Value, &str); 7] = [
            (
                &[],
                json!({"region": "eu"}),
                "missing Mcp-Param-Region header for `region`",
            ),
            (
                &[("mcp-param-zone", b"a")],
                json!({"where": {"zone": "b"}}),
                "Mcp-Param-Zone header `a` does not match body value `b`",
            ),
            (
                &[("mcp-param-region", b"eu")],
                json!({"region": null}),
                "unexpected Mcp-Param-Region header for absent or null `region`",
            ),
            (
                &[("mcp-param-shard", b"7")],
                json!({}),
                "unexpected Mcp-Param-Shard header for absent or null `shard`",
            ),
            (
                &[("mcp-param-region", b"=?base64?ZXU?=")],
                json!({"region": "eu"}),
                "Mcp-Param-Region header is not valid Base64",
            ),
            (
                &[("mcp-param-region", b"eu"), ("mcp-param-region", b"eu")],
                json!({"region": "eu"}),
                "duplicate Mcp-Param-Region header",
            ),
            (
                &[("mcp-param-region", "Zürich".as_bytes())],
                json!({"region": "Zürich"}),
                "Mcp-Param-Region header contains invalid characters",
            ),
        ];
        for (sent, arguments, expected) in cases {
            assert_eq!(
                checked(sent, arguments.clone()),
                Err(expected.to_owned()),
                "{arguments}"
            );
        }
    }
}
