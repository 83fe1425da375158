//! TLS and SASL for every Kafka client of the scorer (the group consumer, the restore
//! readers, the producers, the admin client), from `[kafka.security]`.
//!
//! Secrets never live in the config: the SASL password is read at start from the file
//! `sasl_password_file` (a mounted Kubernetes Secret) or the environment variable named by
//! `sasl_password_env`, so `--print-config` has nothing to leak (it also masks secret-looking
//! keys of `kafka.extra`). A protocol that needs a setting it lacks is a clear error at start.

use rdkafka::config::ClientConfig;

use crate::config::{SaslMechanism, SecurityConfig, SecurityProtocol};
use crate::{Result, ScorerError};

/// Reads the SASL password from its file (trailing newline removed) or environment variable.
pub fn sasl_password(s: &SecurityConfig) -> Result<Option<String>> {
    match (&s.sasl_password_file, &s.sasl_password_env) {
        (Some(_), Some(_)) => Err(ScorerError::Config(
            "kafka.security: set sasl_password_file or sasl_password_env, not both".into(),
        )),
        (Some(path), None) => {
            let text = std::fs::read_to_string(path).map_err(|e| {
                ScorerError::Config(format!(
                    "kafka.security.sasl_password_file {}: {e}",
                    path.display()
                ))
            })?;
            Ok(Some(text.trim_end_matches(['\r', '\n']).to_string()))
        }
        (None, Some(var)) => std::env::var(var).map(Some).map_err(|_| {
            ScorerError::Config(format!(
                "kafka.security.sasl_password_env: environment variable {var} is not set"
            ))
        }),
        (None, None) => Ok(None),
    }
}

/// Adds the librdkafka properties of `s` to `c`.
pub fn apply(s: &SecurityConfig, c: &mut ClientConfig) -> Result<()> {
    c.set("security.protocol", s.protocol.as_librdkafka());
    let tls = matches!(
        s.protocol,
        SecurityProtocol::Ssl | SecurityProtocol::SaslSsl
    );
    let sasl = matches!(
        s.protocol,
        SecurityProtocol::SaslPlaintext | SecurityProtocol::SaslSsl
    );
    let tls_files = [
        ("ca_file", &s.ca_file, "ssl.ca.location"),
        ("cert_file", &s.cert_file, "ssl.certificate.location"),
        ("key_file", &s.key_file, "ssl.key.location"),
    ];
    for (name, file, key) in tls_files {
        if let Some(path) = file {
            if !tls {
                return Err(ScorerError::Config(format!(
                    "kafka.security.{name} is set but protocol {} has no TLS",
                    s.protocol.as_librdkafka()
                )));
            }
            if !path.is_file() {
                return Err(ScorerError::Config(format!(
                    "kafka.security.{name} {}: no such file",
                    path.display()
                )));
            }
            c.set(key, path.to_string_lossy());
        }
    }
    if s.cert_file.is_some() != s.key_file.is_some() {
        return Err(ScorerError::Config(
            "kafka.security: cert_file and key_file go together (a client certificate)".into(),
        ));
    }
    if tls && !s.verify_hostname {
        c.set("ssl.endpoint.identification.algorithm", "none");
    }
    let password = sasl_password(s)?;
    if sasl {
        let (Some(mechanism), Some(user), Some(password)) =
            (s.sasl_mechanism, s.sasl_username.as_deref(), password)
        else {
            return Err(ScorerError::Config(format!(
                "kafka.security.protocol {} needs sasl_mechanism, sasl_username and a password \
                 (sasl_password_file or sasl_password_env)",
                s.protocol.as_librdkafka()
            )));
        };
        c.set("sasl.mechanism", mechanism.as_librdkafka())
            .set("sasl.username", user)
            .set("sasl.password", password);
    } else if s.sasl_mechanism.is_some() || s.sasl_username.is_some() {
        return Err(ScorerError::Config(format!(
            "kafka.security: SASL settings are set but protocol {} has no SASL",
            s.protocol.as_librdkafka()
        )));
    }
    Ok(())
}

impl SecurityProtocol {
    /// librdkafka's name.
    pub fn as_librdkafka(self) -> &'static str {
        match self {
            SecurityProtocol::Plaintext => "plaintext",
            SecurityProtocol::Ssl => "ssl",
            SecurityProtocol::SaslPlaintext => "sasl_plaintext",
            SecurityProtocol::SaslSsl => "sasl_ssl",
        }
    }
}

impl SaslMechanism {
    /// librdkafka's name.
    pub fn as_librdkafka(self) -> &'static str {
        match self {
            SaslMechanism::Plain => "PLAIN",
            SaslMechanism::ScramSha256 => "SCRAM-SHA-256",
            SaslMechanism::ScramSha512 => "SCRAM-SHA-512",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn props(c: &ClientConfig) -> std::collections::BTreeMap<String, String> {
        c.config_map()
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect()
    }

    #[test]
    fn sasl_ssl_takes_the_password_from_a_file_or_the_environment() {
        let dir = tempfile::tempdir().unwrap();
        let ca = dir.path().join("ca.pem");
        std::fs::write(&ca, "x").unwrap();
        let pw = dir.path().join("pw");
        std::fs::write(&pw, "s3cret\n").unwrap();
        let mut s = SecurityConfig {
            protocol: SecurityProtocol::SaslSsl,
            sasl_mechanism: Some(SaslMechanism::ScramSha512),
            sasl_username: Some("scorer".into()),
            sasl_password_file: Some(pw),
            ca_file: Some(ca),
            ..SecurityConfig::default()
        };
        let mut c = ClientConfig::new();
        apply(&s, &mut c).unwrap();
        let p = props(&c);
        assert_eq!(p["security.protocol"], "sasl_ssl");
        assert_eq!(p["sasl.mechanism"], "SCRAM-SHA-512");
        assert_eq!(p["sasl.password"], "s3cret");
        assert!(p["ssl.ca.location"].ends_with("ca.pem"));
        s.sasl_password_file = None;
        s.sasl_password_env = Some("TRENDSCORE_TEST_UNSET_VAR".into());
        let e = apply(&s, &mut ClientConfig::new()).unwrap_err().to_string();
        assert!(e.contains("TRENDSCORE_TEST_UNSET_VAR is not set"), "{e}");
    }

    #[test]
    fn inconsistent_settings_are_clear_errors() {
        let cases = [
            (
                SecurityConfig {
                    protocol: SecurityProtocol::SaslPlaintext,
                    ..SecurityConfig::default()
                },
                "needs sasl_mechanism",
            ),
            (
                SecurityConfig {
                    ca_file: Some("/nonexistent/ca.pem".into()),
                    ..SecurityConfig::default()
                },
                "has no TLS",
            ),
            (
                SecurityConfig {
                    protocol: SecurityProtocol::Ssl,
                    ca_file: Some("/nonexistent/ca.pem".into()),
                    ..SecurityConfig::default()
                },
                "no such file",
            ),
            (
                SecurityConfig {
                    sasl_username: Some("u".into()),
                    ..SecurityConfig::default()
                },
                "has no SASL",
            ),
        ];
        for (s, want) in cases {
            let e = apply(&s, &mut ClientConfig::new()).unwrap_err().to_string();
            assert!(e.contains(want), "{e} (wanted {want})");
        }
        let plain = apply(&SecurityConfig::default(), &mut ClientConfig::new());
        assert!(plain.is_ok());
    }
}
