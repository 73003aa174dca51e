//! Fetching a cluster's OpenAPI v3 documents through a kubeconfig:
//! `GET /openapi/v3` (an index of paths), then each group/version's
//! `serverRelativeURL`, every response bounded in size and time.

use std::path::Path;
use std::time::Duration;

use http_body_util::BodyExt;
use kube::client::Body;
use kube::config::{KubeConfigOptions, Kubeconfig};
use serde_json::Value;

use super::openapi::{self, Document, MAX_DOCUMENTS, MAX_DOCUMENT_BYTES, MAX_TOTAL_BYTES};
use super::{Error, Result};

/// One request, body included.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(60);
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// The index lists a few hundred paths even with many CRDs.
const MAX_INDEX_BYTES: u64 = 8 << 20;

/// What a cluster served.
#[derive(Debug)]
pub struct Fetched {
    /// `(path, document)` of each group/version (`api/v1`,
    /// `apis/apps/v1`, ...), sorted by path.
    pub documents: Vec<(String, Document)>,
    /// `gitVersion` of `/version`, when the server said.
    pub server_version: Option<String>,
}

/// Whether an index path is a group/version's document: `api/v1` or
/// `apis/<group>/<version>` (not `apis/<group>`, `version`, `openid/...`).
pub fn is_group_version(path: &str) -> bool {
    let parts: Vec<&str> = path.split('/').collect();
    match parts.as_slice() {
        ["api", version] => !version.is_empty(),
        ["apis", group, version] => !group.is_empty() && !version.is_empty(),
        _ => false,
    }
}

/// Fetches every group/version document of the cluster the kubeconfig
/// (`None`: `$KUBECONFIG` or `~/.kube/config`) and context name.
pub fn fetch(kubeconfig: Option<&Path>, context: Option<&str>) -> Result<Fetched> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| Error::Fetch {
            url: "/openapi/v3".into(),
            message: format!("starting the runtime: {e}"),
        })?;
    runtime.block_on(fetch_async(kubeconfig, context))
}

async fn fetch_async(kubeconfig: Option<&Path>, context: Option<&str>) -> Result<Fetched> {
    let kc = match kubeconfig {
        Some(path) => Kubeconfig::read_from(path)
            .map_err(|e| Error::Kubeconfig(format!("{}: {}", path.display(), chain(&e))))?,
        None => Kubeconfig::read().map_err(|e| Error::Kubeconfig(chain(&e)))?,
    };
    let options = KubeConfigOptions {
        context: context.map(str::to_owned),
        ..KubeConfigOptions::default()
    };
    let mut config = kube::Config::from_custom_kubeconfig(kc, &options)
        .await
        .map_err(|e| Error::Kubeconfig(chain(&e)))?;
    config.connect_timeout = Some(CONNECT_TIMEOUT);
    config.read_timeout = Some(REQUEST_TIMEOUT);
    let server = config.cluster_url.to_string();
    let client = kube::Client::try_from(config).map_err(|e| Error::Kubeconfig(chain(&e)))?;
    let get = |url: String, limit: u64| {
        let client = client.clone();
        let server = server.clone();
        async move { get(&client, &server, &url, limit).await }
    };

    let index = get("/openapi/v3".into(), MAX_INDEX_BYTES).await?;
    let index: Value = serde_json::from_slice(&index).map_err(|e| Error::Json {
        doc: "/openapi/v3".into(),
        message: e.to_string(),
    })?;
    let paths = index
        .get("paths")
        .and_then(Value::as_object)
        .ok_or_else(|| Error::Malformed {
            doc: "/openapi/v3".into(),
            at: "paths".into(),
            message: "missing or not an object".into(),
        })?;
    let mut wanted = Vec::new();
    for (path, entry) in paths {
        if !is_group_version(path) {
            continue;
        }
        let url = entry
            .get("serverRelativeURL")
            .and_then(Value::as_str)
            .ok_or_else(|| Error::Malformed {
                doc: "/openapi/v3".into(),
                at: format!("paths.{path}"),
                message: "no serverRelativeURL".into(),
            })?;
        if !url.starts_with('/') {
            return Err(Error::Malformed {
                doc: "/openapi/v3".into(),
                at: format!("paths.{path}"),
                message: format!("serverRelativeURL {url:?} is not a path on the server"),
            });
        }
        wanted.push((path.clone(), url.to_owned()));
    }
    if wanted.len() > MAX_DOCUMENTS {
        return Err(Error::TooMany {
            limit: MAX_DOCUMENTS,
        });
    }
    wanted.sort();
    let mut total = 0u64;
    let mut documents = Vec::with_capacity(wanted.len());
    for (path, url) in wanted {
        let bytes = get(url, MAX_DOCUMENT_BYTES).await?;
        total += bytes.len() as u64;
        if total > MAX_TOTAL_BYTES {
            return Err(Error::TooLarge {
                doc: "/openapi/v3 (all documents)".into(),
                limit: MAX_TOTAL_BYTES,
            });
        }
        let doc = openapi::parse(&format!("/openapi/v3/{path}"), &bytes)?;
        documents.push((path, doc));
    }
    let server_version = get("/version".into(), 1 << 16)
        .await
        .ok()
        .and_then(|b| serde_json::from_slice::<Value>(&b).ok())
        .and_then(|v| v.get("gitVersion")?.as_str().map(str::to_owned));
    Ok(Fetched {
        documents,
        server_version,
    })
}

/// `GET url` with the kubeconfig's credentials; the body, at most `limit`
/// bytes, when the answer is 200.
async fn get(client: &kube::Client, server: &str, url: &str, limit: u64) -> Result<Vec<u8>> {
    let fail = |message: String| Error::Fetch {
        url: format!("{}{url}", server.trim_end_matches('/')),
        message,
    };
    let request = http::Request::get(url)
        .body(Body::empty())
        .map_err(|e| fail(e.to_string()))?;
    let read = async {
        let response = client.send(request).await.map_err(|e| fail(chain(&e)))?;
        let status = response.status();
        let mut body = response.into_body();
        let mut bytes = Vec::new();
        while let Some(frame) = body.frame().await {
            let frame = frame.map_err(|e| fail(chain(&e)))?;
            if let Ok(data) = frame.into_data() {
                if (bytes.len() + data.len()) as u64 > limit {
                    return Err(Error::TooLarge {
                        doc: format!("{}{url}", server.trim_end_matches('/')),
                        limit,
                    });
                }
                bytes.extend_from_slice(&data);
            }
        }
        if !status.is_success() {
            let text = String::from_utf8_lossy(&bytes);
            let text: String = text.chars().take(300).collect();
            return Err(fail(format!("HTTP {status}: {}", text.trim())));
        }
        Ok(bytes)
    };
    tokio::time::timeout(REQUEST_TIMEOUT, read)
        .await
        .map_err(|_| fail(format!("no complete answer within {REQUEST_TIMEOUT:?}")))?
}

/// An error with its causes, `outer: inner: ...`.
fn chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        let text = s.to_string();
        if !out.contains(&text) {
            out.push_str(": ");
            out.push_str(&text);
        }
        source = s.source();
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_group_version_documents_are_fetched() {
        for (path, want) in [
            ("api/v1", true),
            ("apis/apps/v1", true),
            ("apis/stable.example.com/v1beta1", true),
            ("api", false),
            ("apis", false),
            ("apis/apps", false),
            ("version", false),
            (".well-known/openid-configuration", false),
            ("openid/v1/jwks", false),
            ("apis//v1", false),
        ] {
            assert_eq!(is_group_version(path), want, "{path}");
        }
    }
}
