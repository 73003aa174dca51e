//! `certs` and `kubeconfig`: the admin's kit for wiring the apiserver to
//! the webhook with mutual TLS.

use std::path::PathBuf;

use clap::Args;

#[derive(Debug, Args)]
pub struct CertsArgs {
    /// Directory to write the PEM files into.
    #[arg(long)]
    pub out: PathBuf,
    /// DNS names and IP addresses of the serving certificate.
    #[arg(long, value_delimiter = ',', default_value = "localhost,127.0.0.1")]
    pub hosts: Vec<String>,
    /// Subject CN of the apiserver's client certificate.
    #[arg(long, default_value = "system:apiserver")]
    pub client_cn: String,
    /// Overwrite existing files.
    #[arg(long)]
    pub force: bool,
}

#[derive(Debug, Args)]
pub struct KubeconfigArgs {
    /// Webhook URL, path included, e.g. https://127.0.0.1:10288/authorize.
    #[arg(long)]
    pub server: String,
    /// CA that signed the webhook's serving certificate.
    #[arg(long)]
    pub ca: PathBuf,
    /// The apiserver's client certificate.
    #[arg(long)]
    pub client_cert: PathBuf,
    /// The apiserver's client key.
    #[arg(long)]
    pub client_key: PathBuf,
}

/// `certs`: a CA, a serving pair and an apiserver client pair.
pub(super) fn certs(args: &CertsArgs) -> i32 {
    match crate::certs::generate(&args.out, &args.hosts, &args.client_cn, args.force) {
        Ok(()) => {
            println!(
                "wrote {}, {}, {}, {}, {}, {} to {}",
                crate::certs::CA_CERT,
                crate::certs::CA_KEY,
                crate::certs::SERVING_CERT,
                crate::certs::SERVING_KEY,
                crate::certs::CLIENT_CERT,
                crate::certs::CLIENT_KEY,
                args.out.display()
            );
            0
        }
        Err(e) => {
            eprintln!("error: {e}");
            1
        }
    }
}

/// `kubeconfig`: the webhook kubeconfig the apiserver reads.
pub(super) fn kubeconfig(args: &KubeconfigArgs) -> i32 {
    print!(
        "{}",
        crate::certs::kubeconfig(&args.server, &args.ca, &args.client_cert, &args.client_key)
    );
    0
}
