//! A lane's request answered with a redirect: sent again where it leads, while that stays
//! within the upstream's origin (see `upstream/redirects.rs`).

use bytes::Bytes;
use http::{Request, Response, Uri, header};
use http_body_util::Full;
use hyper::body::Incoming as IncomingBody;
use url::Position;

use super::HttpLane;
use crate::upstream::{lane::LaneError, redirects};

/// Follows the redirect `response` answered: `build` makes the request again for each target.
/// The redirects the handshake met were logged by rmcp's client (`redirects::policy`).
pub(super) async fn redirects<F>(
    lane: &HttpLane,
    mut response: Response<IncomingBody>,
    build: &F,
) -> Result<Response<IncomingBody>, LaneError>
where
    F: Fn(&Uri) -> Result<Request<Full<Bytes>>, LaneError>,
{
    let mut from = lane.parsed_url.clone();
    let mut followed = 0;
    while redirects::is_redirect(response.status()) {
        let status = response.status();
        let location = response
            .headers()
            .get(header::LOCATION)
            .and_then(|value| value.to_str().ok())
            .ok_or_else(|| {
                LaneError::Http(format!("it answered HTTP {status} without a Location"))
            })?;
        let to = from.join(location).map_err(|error| {
            LaneError::Http(format!(
                "it answered HTTP {status} with Location {location:?}: {error}"
            ))
        })?;
        if let Some(why) = redirects::refusal(status, &from, &to, followed) {
            return Err(LaneError::Http(why));
        }
        let target = Uri::try_from(&to[Position::BeforePath..Position::AfterQuery])
            .map_err(|error| LaneError::Http(format!("it redirects to {to}: {error}")))?;
        tracing::debug!(upstream = %lane.upstream, %from, %to, "following a redirect");
        // Its connection goes back to the pool before the next request looks for one.
        drop(response);
        response = lane
            .send_request(build(&target)?)
            .await
            .map_err(LaneError::Http)?;
        lane.keep_cookies(&response, &target);
        from = to;
        followed += 1;
    }
    Ok(response)
}
