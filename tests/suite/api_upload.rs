//! `POST /api/v1/system/upload`: a file lands under the data directory's `uploads/`; an
//! oversized one is refused (and not kept), and no name can leave that directory. Gateways on
//! one PostgreSQL registry share their uploads.

use crate::common;

use common::{
    api::{Answer, Api, admin_env},
    http::client,
    postgres::fresh_database,
    process::{ConfigDir, ServeProcess},
};
use reqwest::StatusCode;

const BOUNDARY: &str = "mcps-test-boundary";

/// A multipart form with one file field.
fn form(field: &str, file_name: &str, content: &[u8]) -> Vec<u8> {
    let mut body = format!(
        "--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"{field}\"; filename=\"{file_name}\"\r\nContent-Type: application/octet-stream\r\n\r\n"
    )
    .into_bytes();
    body.extend_from_slice(content);
    body.extend_from_slice(format!("\r\n--{BOUNDARY}--\r\n").as_bytes());
    body
}

async fn upload(api: &Api, body: Vec<u8>) -> Answer {
    let mut request = client()
        .post(format!("{}/api/v1/system/upload", api.base))
        .header(
            "content-type",
            format!("multipart/form-data; boundary={BOUNDARY}"),
        )
        .body(body);
    if let Some(token) = &api.token {
        request = request.bearer_auth(token);
    }
    Api::answer(request.send().await.expect("upload")).await
}

#[tokio::test]
async fn uploads_are_stored_capped_and_kept_inside_the_data_directory() {
    let gateway = ServeProcess::start_in(
        ConfigDir::new("limits:\n  max_upload_bytes: 1000\n"),
        &admin_env(),
    );
    let uploads = gateway.config.dir.path().join("data/uploads");
    let api = Api::logged_in(&gateway).await;

    let stored = upload(&api, form("file", "notes.txt", b"hello")).await;
    assert_eq!(stored.status, StatusCode::CREATED, "{stored:?}");
    assert_eq!(stored.body["name"], "notes.txt");
    assert_eq!(stored.body["size"], 5);
    assert_eq!(std::fs::read(uploads.join("notes.txt")).unwrap(), b"hello");

    let again = upload(&api, form("file", "notes.txt", b"other")).await;
    assert_eq!(again.status, StatusCode::CONFLICT, "{again:?}");
    assert_eq!(
        std::fs::read(uploads.join("notes.txt")).unwrap(),
        b"hello",
        "not replaced"
    );

    let large = upload(&api, form("file", "big.bin", &[b'x'; 1001])).await;
    assert_eq!(large.status, StatusCode::PAYLOAD_TOO_LARGE, "{large:?}");
    assert!(
        !uploads.join("big.bin").exists(),
        "a refused upload is not kept"
    );
    let huge = upload(&api, form("file", "huge.bin", &vec![b'x'; 200_000])).await;
    assert_eq!(huge.status, StatusCode::PAYLOAD_TOO_LARGE, "{huge:?}");

    for name in [
        "../escape.txt",
        "../../etc/passwd",
        "a/b.txt",
        "..",
        ".hidden",
        "..\\\\x.txt",
    ] {
        let refused = upload(&api, form("file", name, b"x")).await;
        assert_eq!(
            refused.status,
            StatusCode::BAD_REQUEST,
            "{name}: {refused:?}"
        );
    }
    assert!(!gateway.config.dir.path().join("data/escape.txt").exists());
    assert!(!gateway.config.dir.path().join("escape.txt").exists());

    let no_file = upload(&api, form("other", "x.txt", b"x")).await;
    assert_eq!(no_file.status, StatusCode::BAD_REQUEST, "{no_file:?}");
    let anonymous = upload(&api.with_token(None), form("file", "x.txt", b"x")).await;
    assert_eq!(anonymous.status, StatusCode::UNAUTHORIZED);
    let mut entries: Vec<String> = std::fs::read_dir(&uploads)
        .unwrap()
        .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    entries.sort();
    assert_eq!(entries, ["notes.txt"]);
}

/// Waits up to 2 s for `path` to hold `content`.
async fn file_within(path: &std::path::Path, content: &[u8]) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(2);
    while std::fs::read(path).ok().as_deref() != Some(content) {
        assert!(
            std::time::Instant::now() < deadline,
            "{} does not hold {:?}",
            path.display(),
            String::from_utf8_lossy(content)
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn gateways_on_one_registry_share_their_uploads() {
    let url = fresh_database().await;
    let yaml = format!("database:\n  url: {url:?}\n  secret_key: shared by the replicas\n");
    // A file an operator put in A's uploads/ by hand (or an SQLite registry's, copied over).
    let config = ConfigDir::new(&yaml);
    let by_hand = config.dir.path().join("data/uploads");
    std::fs::create_dir_all(&by_hand).unwrap();
    std::fs::write(by_hand.join("by-hand.txt"), b"placed").unwrap();
    let a = ServeProcess::start_in(config, &admin_env());
    let b = ServeProcess::start_in(ConfigDir::new(&yaml), &[]);
    let b_uploads = b.config.dir.path().join("data/uploads");
    file_within(&b_uploads.join("by-hand.txt"), b"placed").await;

    let api = Api::logged_in(&a).await;
    let stored = upload(&api, form("file", "shared.txt", b"from A")).await;
    assert_eq!(stored.status, StatusCode::CREATED, "{stored:?}");
    file_within(&b_uploads.join("shared.txt"), b"from A").await;

    // Never replaced, through either gateway.
    let api_b = Api::logged_in(&b).await;
    let again = upload(&api_b, form("file", "shared.txt", b"from B")).await;
    assert_eq!(again.status, StatusCode::CONFLICT, "{again:?}");
    assert_eq!(
        std::fs::read(b_uploads.join("shared.txt")).unwrap(),
        b"from A"
    );
    let mut entries: Vec<String> = std::fs::read_dir(&b_uploads)
        .unwrap()
        .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    entries.sort();
    assert_eq!(
        entries,
        ["by-hand.txt", "shared.txt"],
        "no partial file left"
    );
}
