//! TLS to PostgreSQL on libpq's terms, which operators know from `psql`.
//!
//! tokio-postgres reads `sslmode` as `disable`, `prefer` or `require` only, and leaves the
//! certificate to the TLS connector. libpq's meaning, which this module gives:
//! - `disable`: no TLS; `allow` and `prefer` (the default): TLS when the server offers it;
//!   `require`: TLS or nothing. None of the three checks the server's certificate (TLS
//!   then keeps the password and the data from being read on the wire, not from a server
//!   that impersonates the database); `require` with `sslrootcert` is `verify-ca`, as in
//!   libpq with a root certificate file.
//! - `verify-ca`: TLS, and the certificate is signed by an authority of `sslrootcert`;
//! - `verify-full`: the same, and the certificate names the host connected to.
//!
//! `sslrootcert` is a PEM file of authorities, or `system` for the public roots (libpq 16's
//! word), which are also taken when `verify-ca` or `verify-full` comes without one.

use std::{path::PathBuf, sync::Arc};

use rustls::{
    DigitallySignedStruct, SignatureScheme,
    client::{
        WebPkiServerVerifier,
        danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier},
    },
    crypto::{CryptoProvider, verify_tls12_signature, verify_tls13_signature},
    pki_types::{CertificateDer, ServerName, UnixTime, pem::PemObject},
};

/// How the server's certificate is checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Check {
    /// Not at all (`prefer`, `require`): the connection is encrypted only.
    Nothing,
    /// Signed by one of the authorities (`verify-ca`, or `sslrootcert` with a weaker mode).
    Authority(Roots),
    /// Signed by one of them and naming the host (`verify-full`).
    AuthorityAndHost(Roots),
}

/// Where the trusted authorities come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Roots {
    /// The public roots (`sslrootcert=system`, or none given).
    System,
    /// A PEM file.
    File(PathBuf),
}

/// `url` as tokio-postgres reads it, and how the server's certificate is checked: libpq's
/// `sslmode` values and `sslrootcert`, which tokio-postgres does not know, are taken out.
pub fn split(url: &str) -> Result<(String, Check), String> {
    let Some((base, query)) = url.split_once('?') else {
        return Ok((url.to_owned(), Check::Nothing));
    };
    let mut kept = Vec::new();
    let mut mode = None;
    let mut roots = None;
    for pair in query.split('&').filter(|pair| !pair.is_empty()) {
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        match key {
            "sslmode" => mode = Some(decode(value)?),
            "sslrootcert" => {
                let value = decode(value)?;
                roots = Some(if value == "system" {
                    Roots::System
                } else {
                    Roots::File(PathBuf::from(value))
                });
            }
            _ => kept.push(pair),
        }
    }
    let (tokio_mode, check) = match mode.as_deref().unwrap_or("prefer") {
        "disable" => ("disable", Check::Nothing),
        "allow" | "prefer" => ("prefer", Check::Nothing),
        "require" => match roots {
            Some(roots) => ("require", Check::Authority(roots)),
            None => ("require", Check::Nothing),
        },
        "verify-ca" => ("require", Check::Authority(roots.unwrap_or(Roots::System))),
        "verify-full" => (
            "require",
            Check::AuthorityAndHost(roots.unwrap_or(Roots::System)),
        ),
        other => {
            return Err(format!(
                "sslmode={other} is not one of disable, allow, prefer, require, verify-ca, verify-full"
            ));
        }
    };
    kept.push(match tokio_mode {
        "disable" => "sslmode=disable",
        "require" => "sslmode=require",
        _ => "sslmode=prefer",
    });
    Ok((format!("{base}?{}", kept.join("&")), check))
}

/// `value` with its `%XX` escapes decoded.
fn decode(value: &str) -> Result<String, String> {
    let bytes = value.as_bytes();
    let mut decoded = Vec::with_capacity(bytes.len());
    let mut at = 0;
    while at < bytes.len() {
        if bytes[at] == b'%' {
            let byte = value
                .get(at + 1..at + 3)
                .and_then(|hex| u8::from_str_radix(hex, 16).ok())
                .ok_or_else(|| format!("{value:?} has a broken %-escape"))?;
            decoded.push(byte);
            at += 3;
        } else {
            decoded.push(bytes[at]);
            at += 1;
        }
    }
    String::from_utf8(decoded).map_err(|_| format!("{value:?} is not UTF-8 once decoded"))
}

/// The TLS connector for `check`.
pub fn connector(check: &Check) -> Result<tokio_postgres_rustls::MakeRustlsConnect, String> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|error| error.to_string())?;
    let verifier: Arc<dyn ServerCertVerifier> = match check {
        Check::Nothing => Arc::new(EncryptOnly(provider)),
        Check::Authority(roots) => Arc::new(AuthorityOnly(webpki(roots, provider)?)),
        Check::AuthorityAndHost(roots) => webpki(roots, provider)?,
    };
    let config = builder
        .dangerous()
        .with_custom_certificate_verifier(verifier)
        .with_no_client_auth();
    Ok(tokio_postgres_rustls::MakeRustlsConnect::new(config))
}

/// The standard check (chain and host name) against `roots`.
fn webpki(
    roots: &Roots,
    provider: Arc<CryptoProvider>,
) -> Result<Arc<WebPkiServerVerifier>, String> {
    let mut store = rustls::RootCertStore::empty();
    match roots {
        Roots::System => store.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned()),
        Roots::File(path) => {
            let shown = path.display();
            let certificates = CertificateDer::pem_file_iter(path)
                .map_err(|error| format!("sslrootcert {shown}: {error}"))?;
            for certificate in certificates {
                let certificate =
                    certificate.map_err(|error| format!("sslrootcert {shown}: {error}"))?;
                store
                    .add(certificate)
                    .map_err(|error| format!("sslrootcert {shown}: {error}"))?;
            }
            if store.is_empty() {
                return Err(format!("sslrootcert {shown} holds no certificate"));
            }
        }
    }
    WebPkiServerVerifier::builder_with_provider(Arc::new(store), provider)
        .build()
        .map_err(|error| error.to_string())
}

/// libpq's `require`: the handshake is checked, the certificate is not.
#[derive(Debug)]
struct EncryptOnly(Arc<CryptoProvider>);

impl ServerCertVerifier for EncryptOnly {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

/// libpq's `verify-ca`: the chain is checked, the host name is not.
#[derive(Debug)]
struct AuthorityOnly(Arc<WebPkiServerVerifier>);

impl ServerCertVerifier for AuthorityOnly {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        match self
            .0
            .verify_server_cert(end_entity, intermediates, server_name, ocsp_response, now)
        {
            Err(rustls::Error::InvalidCertificate(
                rustls::CertificateError::NotValidForName
                | rustls::CertificateError::NotValidForNameContext { .. },
            )) => Ok(ServerCertVerified::assertion()),
            other => other,
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.supported_verify_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn libpq_modes_become_what_tokio_postgres_reads_and_a_check() {
        let base = "postgresql://u:p@db:5432/mcps";
        let cases = [
            ("", "", Check::Nothing),
            ("?sslmode=disable", "?sslmode=disable", Check::Nothing),
            ("?sslmode=allow", "?sslmode=prefer", Check::Nothing),
            (
                "?application_name=x&sslmode=require",
                "?application_name=x&sslmode=require",
                Check::Nothing,
            ),
            (
                "?sslmode=require&sslrootcert=%2Fetc%2Fca.pem",
                "?sslmode=require",
                Check::Authority(Roots::File("/etc/ca.pem".into())),
            ),
            (
                "?sslmode=verify-ca",
                "?sslmode=require",
                Check::Authority(Roots::System),
            ),
            (
                "?sslrootcert=/ca.pem&sslmode=verify-full",
                "?sslmode=require",
                Check::AuthorityAndHost(Roots::File("/ca.pem".into())),
            ),
            (
                "?sslmode=verify-full&sslrootcert=system",
                "?sslmode=require",
                Check::AuthorityAndHost(Roots::System),
            ),
        ];
        for (query, expected, check) in cases {
            let (url, got) = split(&format!("{base}{query}")).unwrap();
            assert_eq!(url, format!("{base}{expected}"), "{query}");
            assert_eq!(got, check, "{query}");
        }
    }

    #[test]
    fn an_unknown_mode_or_a_broken_escape_is_refused() {
        let error = split("postgresql://db/mcps?sslmode=verify").unwrap_err();
        assert!(error.contains("sslmode=verify is not one of"), "{error}");
        let error = split("postgresql://db/mcps?sslrootcert=%2").unwrap_err();
        assert!(error.contains("broken %-escape"), "{error}");
    }

    #[test]
    fn a_missing_root_file_is_named() {
        let check = Check::AuthorityAndHost(Roots::File("/nowhere/ca.pem".into()));
        let error = connector(&check).err().unwrap();
        assert!(error.contains("sslrootcert /nowhere/ca.pem"), "{error}");
    }
}
