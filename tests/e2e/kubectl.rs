//! The real `kubectl` (from PATH), one kubeconfig per test user.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

/// A token kubeconfig trusting the apiserver's own certificate file.
pub fn write_kubeconfig(path: &Path, port: u16, ca: &Path, token: &str) {
    let text = format!(
        "apiVersion: v1
kind: Config
clusters:
  - name: e2e
    cluster:
      server: https://127.0.0.1:{port}
      certificate-authority: {}
users:
  - name: e2e
    user:
      token: {token}
contexts:
  - name: e2e
    context:
      cluster: e2e
      user: e2e
current-context: e2e
",
        ca.display()
    );
    std::fs::write(path, text).unwrap();
}

/// What one kubectl run did.
pub struct Out {
    pub args: Vec<String>,
    pub code: i32,
    pub stdout: String,
    /// stderr without kubectl's own `-v` log lines: what a user reads.
    pub stderr: String,
    /// The HTTP status of every response kubectl logged, in order.
    pub statuses: Vec<u16>,
    pub elapsed: Duration,
}

impl Out {
    pub fn ok(&self) -> bool {
        self.code == 0
    }

    /// The last HTTP status kubectl saw (0 if none was logged).
    pub fn status(&self) -> u16 {
        self.statuses.last().copied().unwrap_or(0)
    }

    /// One line for the closing note: exit code, statuses, time, message.
    pub fn summary(&self) -> String {
        let msg = if self.ok() {
            self.stdout.trim().to_owned()
        } else {
            format!("{} {}", self.stdout.trim(), self.stderr.trim())
        };
        let msg = msg.split_whitespace().collect::<Vec<_>>().join(" ");
        let msg: String = msg.chars().take(400).collect();
        format!(
            "`kubectl {}` -> exit {} HTTP {:?} in {:.2}s: {}",
            self.args.join(" "),
            self.code,
            self.statuses,
            self.elapsed.as_secs_f64(),
            msg
        )
    }
}

impl std::fmt::Display for Out {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.summary())
    }
}

/// True for a klog line (`I1201 19:46:29.568081    4853 file.go:12] ...`).
fn is_klog(line: &str) -> bool {
    let b = line.as_bytes();
    b.len() > 5 && b"IWEF".contains(&b[0]) && b[1..5].iter().all(u8::is_ascii_digit) && b[5] == b' '
}

/// The status code of a `-v=6` response line, in either klog style:
/// `GET https://... 403 Forbidden in 3 milliseconds` or
/// `"Response" verb="GET" url="..." status="403 Forbidden" milliseconds=3`.
fn response_status(line: &str) -> Option<u16> {
    if let Some((_, rest)) = line.split_once("status=\"") {
        return rest.get(..3)?.parse().ok();
    }
    let (_, rest) = line.split_once("] ")?;
    let mut words = rest.split_whitespace();
    let method = words.next()?;
    if !["GET", "POST", "PUT", "PATCH", "DELETE"].contains(&method) {
        return None;
    }
    let _url = words.next()?;
    let code = words.next()?;
    if rest.contains(" milliseconds") {
        code.parse().ok()
    } else {
        None
    }
}

/// Runs kubectl with this kubeconfig and discovery cache, logging responses.
pub fn run(kubeconfig: &Path, cache: &Path, args: &[&str]) -> Out {
    let started = Instant::now();
    let output = Command::new("kubectl")
        .arg("--kubeconfig")
        .arg(kubeconfig)
        .arg("--cache-dir")
        .arg(cache)
        .args(["--request-timeout", "60s", "-v=6"])
        .args(args)
        .env_remove("KUBECONFIG")
        .output()
        .expect("kubectl is required on PATH (Debian package kubernetes-client)");
    let elapsed = started.elapsed();
    let stderr_all = String::from_utf8_lossy(&output.stderr);
    let mut stderr = String::new();
    let mut statuses = Vec::new();
    // `-v=6` also logs the server's error object over several lines.
    let mut in_object = false;
    for line in stderr_all.lines() {
        if in_object {
            in_object = line != "}]";
        } else if is_klog(line) {
            statuses.extend(response_status(line));
            in_object = line.contains("server response object") && line.ends_with("[{");
        } else {
            stderr.push_str(line);
            stderr.push('\n');
        }
    }
    Out {
        args: args.iter().map(|s| s.to_string()).collect(),
        code: output.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr,
        statuses,
        elapsed,
    }
}
