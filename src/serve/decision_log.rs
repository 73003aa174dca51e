//! The decision log: one structured event per answer, at the level chosen
//! with `--decision-log`.
//!
//! Lists are written as lists (a JSON array with `--log-format json`), and
//! every field a client controls is bounded: a few entries and a count,
//! long strings cut with their length, so one request cannot make a
//! megabyte log line. `extra` values are logged only for the allow-listed
//! keys of the replayable request (never `accessKeyId`: EKS puts access
//! key ids there); of the others, only the keys are.

use std::time::Duration;

use crate::admission::AdmissionInput;
use crate::decision::{truncate, Decision, Verdict};
use crate::engine::Outcome;
use crate::sar::{AccessRequest, Attributes};

/// How many entries of a list a record shows before counting the rest.
const LIST_ENTRIES: usize = 16;
/// Longest string a record shows whole.
const STRING_BYTES: usize = 256;
/// Longest path a record shows whole (resource paths hold five names).
const PATH_BYTES: usize = 1024;

/// Which answers get a decision log line.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DecisionLog {
    None,
    Denied,
    All,
}

impl std::str::FromStr for DecisionLog {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "none" => Ok(DecisionLog::None),
            "denied" => Ok(DecisionLog::Denied),
            "all" => Ok(DecisionLog::All),
            other => Err(format!("{other:?}: expected none, denied or all")),
        }
    }
}

impl DecisionLog {
    fn wants(self, verdict: Verdict) -> bool {
        match self {
            DecisionLog::None => false,
            DecisionLog::Denied => verdict == Verdict::Denied,
            DecisionLog::All => true,
        }
    }
}

/// A list as the log shows it: the first entries, each bounded, then
/// `"... and N more"`.
fn bounded<'a>(items: impl ExactSizeIterator<Item = &'a str>) -> Vec<String> {
    let total = items.len();
    let mut out: Vec<String> = items
        .take(LIST_ENTRIES)
        .map(|s| truncate(s, STRING_BYTES).into_owned())
        .collect();
    if total > LIST_ENTRIES {
        out.push(format!("... and {} more", total - LIST_ENTRIES));
    }
    out
}

/// One decision, as logged. With `--log-format json` each record is one
/// JSON line on stderr, beside the JSON lines of the other events and with
/// the same `timestamp`, `level`, `target` and `message` keys; lists are
/// JSON arrays. The schema is documented in docs/operations.md.
#[derive(Debug, serde::Serialize)]
pub struct Record<'a> {
    pub user: std::borrow::Cow<'a, str>,
    pub group_count: usize,
    pub groups: Vec<String>,
    pub extra_keys: Vec<String>,
    pub verb: std::borrow::Cow<'a, str>,
    pub path: String,
    pub decision: &'static str,
    /// Why, also for no-opinion answers (`no policy matched`, `exempt principal`).
    pub why: String,
    pub policies: Vec<String>,
    pub policy_count: usize,
    pub exempt: bool,
    pub cache_hit: bool,
    pub generation: u64,
    pub latency_us: u64,
    pub evaluation_error: &'a str,
    /// Version of the replayable part below (docs/operations.md).
    pub record_version: u32,
    /// The normalised request, for `replay`; `null` when too large to record.
    pub request: Option<crate::rollout::RecordedRequest>,
}

impl<'a> Record<'a> {
    /// The record of one answer.
    pub fn new(req: &'a AccessRequest, outcome: &'a Outcome, total: Duration) -> Self {
        let d = &outcome.decision;
        let (verb, path) = match &req.attributes {
            Attributes::Resource(r) => (r.verb.as_str(), crate::entities::resource_path(r)),
            Attributes::NonResource(n) => (n.verb.as_str(), n.path.clone()),
        };
        Record {
            user: truncate(&req.user, STRING_BYTES),
            group_count: req.groups.len(),
            groups: bounded(req.groups.iter().map(String::as_str)),
            extra_keys: bounded(req.extra.keys().map(String::as_str)),
            verb: truncate(verb, STRING_BYTES),
            path: truncate(&path, PATH_BYTES).into_owned(),
            decision: d.verdict.as_str(),
            why: d.explanation(),
            policies: bounded(d.policies.iter().map(String::as_str)),
            policy_count: d.policies.len(),
            exempt: d.exempt,
            cache_hit: outcome.cache_hit,
            generation: outcome.generation,
            latency_us: u64::try_from(total.as_micros()).unwrap_or(u64::MAX),
            evaluation_error: &d.status.evaluation_error,
            record_version: crate::rollout::RECORD_VERSION,
            request: crate::rollout::RecordedRequest::of(req),
        }
    }
}

/// Where decision records go.
#[derive(Clone, Copy, Debug)]
pub struct DecisionLogger {
    pub level: DecisionLog,
    /// One JSON object per line (`--log-format json`) instead of a tracing
    /// event in the text format.
    pub json: bool,
}

impl DecisionLogger {
    /// Whether an answer with this verdict gets a line.
    pub fn wants(&self, verdict: Verdict) -> bool {
        self.level.wants(verdict)
    }

    /// Logs one answer if the level asks for it.
    pub fn record(&self, req: &AccessRequest, outcome: &Outcome, total: Duration) {
        if !self.level.wants(outcome.decision.verdict) {
            return;
        }
        let record = Record::new(req, outcome, total);
        if self.json {
            write_json_line(&record, "decision");
        } else {
            tracing::info!(
                target: "cedar_authorizer::decision",
                user = %record.user,
                groups = %record.groups.join(","),
                extra_keys = %record.extra_keys.join(","),
                verb = %record.verb,
                path = %record.path,
                decision = record.decision,
                why = %record.why,
                policies = %record.policies.join(","),
                exempt = record.exempt,
                cache_hit = record.cache_hit,
                generation = record.generation,
                latency_us = record.latency_us,
                evaluation_error = %record.evaluation_error,
                "decision"
            );
        }
    }
}

/// One admission answer: who, which operation on which object, and why.
#[derive(Debug, serde::Serialize)]
pub struct AdmissionRecord<'a> {
    pub uid: std::borrow::Cow<'a, str>,
    pub operation: &'static str,
    /// The object's Cedar type (`core::v1::ConfigMap`).
    pub kind: String,
    pub path: String,
    pub user: std::borrow::Cow<'a, str>,
    pub group_count: usize,
    pub groups: Vec<String>,
    pub decision: &'static str,
    pub why: String,
    pub policies: Vec<String>,
    pub policy_count: usize,
    pub exempt: bool,
    pub generation: u64,
    pub latency_us: u64,
    pub evaluation_error: &'a str,
}

impl<'a> AdmissionRecord<'a> {
    pub fn new(input: &'a AdmissionInput, outcome: &'a Outcome, total: Duration) -> Self {
        let d = &outcome.decision;
        AdmissionRecord {
            uid: truncate(&input.uid, STRING_BYTES),
            operation: crate::admission::operation_name(&input.operation),
            kind: truncate(&input.type_name(), STRING_BYTES).into_owned(),
            path: truncate(&input.path(), PATH_BYTES).into_owned(),
            user: truncate(&input.user, STRING_BYTES),
            group_count: input.groups.len(),
            groups: bounded(input.groups.iter().map(String::as_str)),
            decision: super::metrics::admission_label(d.verdict),
            why: d.explanation(),
            policies: bounded(d.policies.iter().map(String::as_str)),
            policy_count: d.policies.len(),
            exempt: d.exempt,
            generation: outcome.generation,
            latency_us: u64::try_from(total.as_micros()).unwrap_or(u64::MAX),
            evaluation_error: &d.status.evaluation_error,
        }
    }
}

impl DecisionLogger {
    /// Records one admission answer at the configured level (a refusal
    /// counts as denied).
    pub fn record_admission(&self, input: &AdmissionInput, outcome: &Outcome, total: Duration) {
        if !self.level.wants(outcome.decision.verdict) {
            return;
        }
        let record = AdmissionRecord::new(input, outcome, total);
        if self.json {
            write_json_line(&record, "admission");
        } else {
            tracing::info!(
                target: "cedar_authorizer::decision",
                uid = %record.uid,
                operation = record.operation,
                kind = %record.kind,
                path = %record.path,
                user = %record.user,
                groups = %record.groups.join(","),
                decision = record.decision,
                why = %record.why,
                policies = %record.policies.join(","),
                exempt = record.exempt,
                generation = record.generation,
                latency_us = record.latency_us,
                evaluation_error = %record.evaluation_error,
                "admission"
            );
        }
    }
}

fn write_json_line<R: serde::Serialize>(record: &R, message: &'static str) {
    use std::io::Write;
    #[derive(serde::Serialize)]
    struct Line<'a, R> {
        timestamp: String,
        level: &'static str,
        target: &'static str,
        message: &'static str,
        #[serde(flatten)]
        record: &'a R,
    }
    let timestamp = time::OffsetDateTime::now_utc()
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default();
    let line = Line {
        timestamp,
        level: "INFO",
        target: "cedar_authorizer::decision",
        message,
        record,
    };
    let Ok(mut text) = serde_json::to_vec(&line) else {
        return;
    };
    text.push(b'\n');
    // One write of the whole line, so records never interleave with other
    // events; a failed write to stderr has nowhere to be reported.
    let _ = std::io::stderr().lock().write_all(&text);
}

/// A divergence between the live and the shadow answer
/// (`--shadow-policies`), as handed to the logger.
pub enum DivergenceLog<'a> {
    Authorize {
        request: &'a AccessRequest,
        live: &'a Outcome,
        total: Duration,
        shadow: &'a Decision,
        shadow_generation: u64,
    },
    Admit {
        input: &'a AdmissionInput,
        live: &'a Outcome,
        total: Duration,
        shadow: &'a Decision,
        shadow_generation: u64,
    },
}

/// The shadow's side of a divergence record, beside the live record's
/// fields (which stay as in a decision record, the replayable request
/// included).
#[derive(Debug, serde::Serialize)]
pub struct ShadowAnswer<'a> {
    pub shadow_decision: &'static str,
    pub shadow_why: String,
    pub shadow_policies: Vec<String>,
    pub shadow_policy_count: usize,
    pub shadow_generation: u64,
    pub shadow_evaluation_error: &'a str,
}

impl<'a> ShadowAnswer<'a> {
    fn new(d: &'a Decision, generation: u64, admission: bool) -> Self {
        ShadowAnswer {
            shadow_decision: if admission {
                super::metrics::admission_label(d.verdict)
            } else {
                d.verdict.as_str()
            },
            shadow_why: d.explanation(),
            shadow_policies: bounded(d.policies.iter().map(String::as_str)),
            shadow_policy_count: d.policies.len(),
            shadow_generation: generation,
            shadow_evaluation_error: &d.status.evaluation_error,
        }
    }
}

/// One divergence as logged: the live decision record with the shadow's
/// answer beside it.
#[derive(Debug, serde::Serialize)]
pub struct DivergenceRecord<'a, R> {
    #[serde(flatten)]
    pub live: R,
    #[serde(flatten)]
    pub shadow: ShadowAnswer<'a>,
}

impl DecisionLogger {
    /// Logs a divergence: always, unless the decision log is off
    /// (`--decision-log none`), since watching them is the point of a shadow.
    pub fn divergence(&self, event: &DivergenceLog<'_>) {
        if self.level == DecisionLog::None {
            return;
        }
        match *event {
            DivergenceLog::Authorize {
                request,
                live,
                total,
                shadow,
                shadow_generation,
            } => {
                let record = DivergenceRecord {
                    live: Record::new(request, live, total),
                    shadow: ShadowAnswer::new(shadow, shadow_generation, false),
                };
                if self.json {
                    write_json_line(&record, "shadow divergence");
                } else {
                    let (l, s) = (&record.live, &record.shadow);
                    tracing::info!(
                        target: "cedar_authorizer::decision",
                        user = %l.user,
                        groups = %l.groups.join(","),
                        verb = %l.verb,
                        path = %l.path,
                        decision = l.decision,
                        policies = %l.policies.join(","),
                        generation = l.generation,
                        shadow_decision = s.shadow_decision,
                        shadow_why = %s.shadow_why,
                        shadow_policies = %s.shadow_policies.join(","),
                        shadow_generation = s.shadow_generation,
                        "shadow divergence"
                    );
                }
            }
            DivergenceLog::Admit {
                input,
                live,
                total,
                shadow,
                shadow_generation,
            } => {
                let record = DivergenceRecord {
                    live: AdmissionRecord::new(input, live, total),
                    shadow: ShadowAnswer::new(shadow, shadow_generation, true),
                };
                if self.json {
                    write_json_line(&record, "shadow admission divergence");
                } else {
                    let (l, s) = (&record.live, &record.shadow);
                    tracing::info!(
                        target: "cedar_authorizer::decision",
                        uid = %l.uid,
                        operation = l.operation,
                        kind = %l.kind,
                        path = %l.path,
                        user = %l.user,
                        decision = l.decision,
                        policies = %l.policies.join(","),
                        generation = l.generation,
                        shadow_decision = s.shadow_decision,
                        shadow_why = %s.shadow_why,
                        shadow_policies = %s.shadow_policies.join(","),
                        shadow_generation = s.shadow_generation,
                        "shadow admission divergence"
                    );
                }
            }
        }
    }
}
