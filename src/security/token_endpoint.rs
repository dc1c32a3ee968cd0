//! A request to an OAuth token endpoint (RFC 6749 §3.2) made by hand: a form POST whose
//! answer is JSON, or an OAuth error answer, whose `error` and description say what is wrong.

use serde::de::DeserializeOwned;

/// Posts `form` with `request` (its URL and client authentication set) and reads the answer.
pub async fn post_form<T: DeserializeOwned>(
    request: reqwest::RequestBuilder,
    form: &[(&str, &str)],
) -> Result<T, String> {
    let body = url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs(form)
        .finish();
    let answer = request
        .header("content-type", "application/x-www-form-urlencoded")
        .header("accept", "application/json")
        .body(body)
        .send()
        .await
        .map_err(|error| {
            format!(
                "the token request failed: {}",
                crate::error::cannot_send(&error)
            )
        })?;
    let status = answer.status();
    let text = answer
        .text()
        .await
        .map_err(|error| format!("the token answer did not arrive: {error}"))?;
    if !status.is_success() {
        // An OAuth error answer holds no secret: its `error` and description explain.
        let shown: String = text.chars().take(300).collect();
        return Err(format!("the token endpoint refused ({status}): {shown}"));
    }
    serde_json::from_str(&text).map_err(|error| format!("the token answer does not read: {error}"))
}
