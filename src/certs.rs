//! Certificate generation: a CA, a serving certificate and an apiserver
//! client certificate, as PEM files. Used by `cedar-authorizer certs`, by
//! `serve` when no serving certificate is given, and by the tests (which
//! make every certificate they use at run time).

use std::fs::OpenOptions;
use std::io::Write;
use std::path::{Path, PathBuf};

use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose,
};

/// File names written by [`generate`].
pub const CA_CERT: &str = "ca.pem";
pub const CA_KEY: &str = "ca-key.pem";
pub const SERVING_CERT: &str = "serving.pem";
pub const SERVING_KEY: &str = "serving-key.pem";
pub const CLIENT_CERT: &str = "apiserver-client.pem";
pub const CLIENT_KEY: &str = "apiserver-client-key.pem";

/// Why certificates could not be made or written.
#[derive(Debug, thiserror::Error)]
pub enum CertError {
    /// rcgen refused the parameters (e.g. an invalid host name).
    #[error("generating certificates: {0}")]
    Generate(#[from] rcgen::Error),
    /// A file could not be written.
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    /// A file exists and `--force` was not given.
    #[error("{}: already exists (use --force to overwrite)", .0.display())]
    Exists(PathBuf),
}

/// A certificate and its key, PEM-encoded.
pub struct Pem {
    pub cert: String,
    pub key: String,
}

/// A certificate authority that can sign leaves.
pub struct Authority {
    params: CertificateParams,
    key: KeyPair,
    pub pem: Pem,
}

/// Validity of the CA and of the certificates it signs. Leaves are renewed
/// by running `certs --force` again (or by cert-manager); the CA lives longer.
const CA_DAYS: i64 = 3650;
const LEAF_DAYS: i64 = 365;

fn validity(params: &mut CertificateParams, days: i64) {
    let now = time::OffsetDateTime::now_utc();
    // An hour of slack for clocks that are slightly behind.
    params.not_before = now - time::Duration::hours(1);
    params.not_after = now + time::Duration::days(days);
}

fn dn(common_name: &str) -> DistinguishedName {
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, common_name);
    dn
}

impl Authority {
    /// A new self-signed CA.
    pub fn new(common_name: &str) -> Result<Self, CertError> {
        let key = KeyPair::generate()?;
        let mut params = CertificateParams::new(Vec::<String>::new())?;
        params.distinguished_name = dn(common_name);
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        validity(&mut params, CA_DAYS);
        params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        let cert = params.self_signed(&key)?;
        Ok(Authority {
            pem: Pem {
                cert: cert.pem(),
                key: key.serialize_pem(),
            },
            params,
            key,
        })
    }

    fn sign(
        &self,
        common_name: &str,
        hosts: &[String],
        usage: ExtendedKeyUsagePurpose,
    ) -> Result<Pem, CertError> {
        let key = KeyPair::generate()?;
        let mut params = CertificateParams::new(hosts.to_vec())?;
        params.distinguished_name = dn(common_name);
        params.key_usages = vec![
            KeyUsagePurpose::DigitalSignature,
            KeyUsagePurpose::KeyEncipherment,
        ];
        params.extended_key_usages = vec![usage];
        validity(&mut params, LEAF_DAYS);
        params.use_authority_key_identifier_extension = true;
        let issuer = Issuer::from_params(&self.params, &self.key);
        let cert = params.signed_by(&key, &issuer)?;
        Ok(Pem {
            cert: cert.pem(),
            key: key.serialize_pem(),
        })
    }

    /// A serving certificate for these DNS names and IP addresses.
    pub fn serving(&self, hosts: &[String]) -> Result<Pem, CertError> {
        let cn = hosts.first().map_or("cedar-authorizer", String::as_str);
        self.sign(cn, hosts, ExtendedKeyUsagePurpose::ServerAuth)
    }

    /// A client certificate with this subject common name.
    pub fn client(&self, common_name: &str) -> Result<Pem, CertError> {
        self.sign(common_name, &[], ExtendedKeyUsagePurpose::ClientAuth)
    }
}

/// Writes a file; private keys get mode 0600 from the moment they exist.
pub fn write_file(
    path: &Path,
    contents: &str,
    private: bool,
    force: bool,
) -> Result<(), CertError> {
    let io = |source| CertError::Io {
        path: path.to_owned(),
        source,
    };
    let mut opts = OpenOptions::new();
    opts.write(true);
    if force {
        opts.create(true).truncate(true);
    } else {
        opts.create_new(true);
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(if private { 0o600 } else { 0o644 });
    }
    let mut f = opts.open(path).map_err(|e| {
        if e.kind() == std::io::ErrorKind::AlreadyExists {
            CertError::Exists(path.to_owned())
        } else {
            io(e)
        }
    })?;
    #[cfg(unix)]
    if private {
        use std::os::unix::fs::PermissionsExt;
        f.set_permissions(std::fs::Permissions::from_mode(0o600))
            .map_err(io)?;
    }
    f.write_all(contents.as_bytes()).map_err(io)?;
    f.sync_all().map_err(io)
}

/// Writes a CA, a serving pair for `hosts` and a client pair for
/// `client_cn` into `dir`. Refuses to overwrite unless `force`.
pub fn generate(
    dir: &Path,
    hosts: &[String],
    client_cn: &str,
    force: bool,
) -> Result<(), CertError> {
    std::fs::create_dir_all(dir).map_err(|source| CertError::Io {
        path: dir.to_owned(),
        source,
    })?;
    if !force {
        for name in [
            CA_CERT,
            CA_KEY,
            SERVING_CERT,
            SERVING_KEY,
            CLIENT_CERT,
            CLIENT_KEY,
        ] {
            let p = dir.join(name);
            if p.exists() {
                return Err(CertError::Exists(p));
            }
        }
    }
    let ca = Authority::new("cedar-authorizer CA")?;
    let serving = ca.serving(hosts)?;
    let client = ca.client(client_cn)?;
    for (name, contents, private) in [
        (CA_CERT, &ca.pem.cert, false),
        (CA_KEY, &ca.pem.key, true),
        (SERVING_CERT, &serving.cert, false),
        (SERVING_KEY, &serving.key, true),
        (CLIENT_CERT, &client.cert, false),
        (CLIENT_KEY, &client.key, true),
    ] {
        write_file(&dir.join(name), contents, private, force)?;
    }
    Ok(())
}

/// The webhook kubeconfig the apiserver reads (`connectionInfo.kubeConfigFile`).
pub fn kubeconfig(server: &str, ca: &Path, client_cert: &Path, client_key: &Path) -> String {
    let abs = |p: &Path| {
        std::path::absolute(p)
            .unwrap_or_else(|_| p.to_owned())
            .display()
            .to_string()
    };
    let quote = |s: &str| serde_json::to_string(s).unwrap_or_default();
    format!(
        "# Webhook kubeconfig for kube-apiserver: the cluster is cedar-authorizer,\n\
         # the user is the apiserver's client certificate.\n\
         apiVersion: v1\n\
         kind: Config\n\
         clusters:\n\
         - name: cedar-authorizer\n  \
           cluster:\n    \
             server: {}\n    \
             certificate-authority: {}\n\
         users:\n\
         - name: kube-apiserver\n  \
           user:\n    \
             client-certificate: {}\n    \
             client-key: {}\n\
         contexts:\n\
         - name: webhook\n  \
           context:\n    \
             cluster: cedar-authorizer\n    \
             user: kube-apiserver\n\
         current-context: webhook\n",
        quote(server),
        quote(&abs(ca)),
        quote(&abs(client_cert)),
        quote(&abs(client_key)),
    )
}
