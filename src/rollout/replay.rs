//! Replaying decision records: each recorded request is decided again
//! under a candidate policy set and compared with the recorded answer (or
//! with a baseline set's answer).
//!
//! [`Replayer::feed`] takes one log line at a time and keeps only counts,
//! per-policy tallies and a few examples per kind of change, so memory
//! does not grow with the log. Lines that are not decision records (other
//! log events) are counted and skipped.

use std::collections::{BTreeMap, BTreeSet, HashSet};

use cedar_policy::PolicySet;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::record::{RecordedRequest, RECORD_VERSION};
use crate::decision::Verdict;
use crate::engine::Engine;

/// At most this many distinct unrecorded keys are named in a report.
const UNREAD_KEYS_SHOWN: usize = 32;

/// What the policies of a set read of `extra`: tag keys named by literal,
/// or everything (the `extra` attribute, or a tag key computed at run
/// time).
#[derive(Debug, Default)]
pub struct ExtraReads {
    pub all: bool,
    pub keys: HashSet<String>,
}

impl ExtraReads {
    /// What the policies of `set` read.
    pub fn of(set: &PolicySet) -> Self {
        let mut reads = ExtraReads::default();
        for p in set.policies() {
            if let Ok(json) = p.to_json() {
                reads.walk(&json);
            }
        }
        reads
    }

    fn walk(&mut self, v: &Value) {
        match v {
            Value::Object(m) => {
                for op in ["hasTag", "getTag"] {
                    if let Some(call) = m.get(op) {
                        match call["right"]["Value"].as_str() {
                            Some(k) => {
                                self.keys.insert(k.to_owned());
                            }
                            None => self.all = true,
                        }
                    }
                }
                for op in [".", "has"] {
                    if m.get(op).is_some_and(|a| a["attr"] == "extra") {
                        self.all = true;
                    }
                }
                m.values().for_each(|x| self.walk(x));
            }
            Value::Array(a) => a.iter().for_each(|x| self.walk(x)),
            _ => {}
        }
    }

    fn merge(&mut self, other: ExtraReads) {
        self.all |= other.all;
        self.keys.extend(other.keys);
    }

    /// The redacted keys of a record that a policy reads.
    fn unread<'a>(&self, redacted: &'a [String]) -> impl Iterator<Item = &'a String> + 'a {
        let all = self.all;
        let keys: Vec<bool> = redacted.iter().map(|k| self.keys.contains(k)).collect();
        redacted
            .iter()
            .zip(keys)
            .filter(move |(_, read)| all || *read)
            .map(|(k, _)| k)
    }
}

/// One kind of change (`allowed` → `denied`, ...) and what caused it.
#[derive(Debug, Serialize)]
pub struct ChangeKind {
    pub from: &'static str,
    pub to: &'static str,
    pub count: u64,
    /// The determining policies of the new answer (of the old one when the
    /// new answer is no opinion), with how many changed records each
    /// determined.
    pub policies: BTreeMap<String, u64>,
    /// The first few requests that changed this way.
    pub examples: Vec<RecordedRequest>,
}

/// What a replay found.
#[derive(Debug, Default, Serialize)]
pub struct ReplayReport {
    /// Decision records read.
    pub records: u64,
    /// Records decided again.
    pub replayed: u64,
    pub unchanged: u64,
    pub changed: u64,
    pub changes: Vec<ChangeKind>,
    /// Records a policy would read an unrecorded `extra` value of.
    pub not_replayable_exactly: u64,
    /// Which unrecorded keys the policies read (the first few).
    pub unrecorded_keys_read: BTreeSet<String>,
    /// Records without a replayable request (too large to record, an older
    /// record version, or unreadable).
    pub not_recorded: u64,
    /// Log lines that are not decision records.
    pub other_lines: u64,
}

/// The fields of a log line `replay` reads.
#[derive(Deserialize)]
struct Line {
    #[serde(default)]
    target: String,
    #[serde(default)]
    message: String,
    #[serde(default)]
    decision: String,
    #[serde(default)]
    policies: Vec<String>,
    #[serde(default)]
    record_version: Option<u32>,
    #[serde(default)]
    request: Option<RecordedRequest>,
}

fn verdict(s: &str) -> Option<Verdict> {
    match s {
        "allowed" => Some(Verdict::Allowed),
        "denied" => Some(Verdict::Denied),
        "no_opinion" => Some(Verdict::NoOpinion),
        _ => None,
    }
}

/// Decides recorded requests again, one line at a time.
pub struct Replayer {
    candidate: Engine,
    baseline: Option<Engine>,
    reads: ExtraReads,
    examples: usize,
    kinds: BTreeMap<(&'static str, &'static str), ChangeKind>,
    report: ReplayReport,
}

impl Replayer {
    /// Replays under `candidate`, against `baseline`'s answers when given
    /// and the recorded answers otherwise; keeps `examples` per kind.
    pub fn new(candidate: Engine, baseline: Option<Engine>, examples: usize) -> Self {
        let mut reads = ExtraReads::of(&candidate.snapshot().set);
        if let Some(b) = &baseline {
            reads.merge(ExtraReads::of(&b.snapshot().set));
        }
        Replayer {
            candidate,
            baseline,
            reads,
            examples,
            kinds: BTreeMap::new(),
            report: ReplayReport::default(),
        }
    }

    /// Records read so far.
    pub fn records(&self) -> u64 {
        self.report.records
    }

    /// Takes one log line.
    pub fn feed(&mut self, line: &str) {
        let line = line.trim();
        if line.is_empty() {
            return;
        }
        let Ok(line) = serde_json::from_str::<Line>(line) else {
            self.report.other_lines += 1;
            return;
        };
        if line.target != "cedar_authorizer::decision" || line.message != "decision" {
            self.report.other_lines += 1;
            return;
        }
        self.report.records += 1;
        let (Some(RECORD_VERSION), Some(recorded)) = (line.record_version, line.request) else {
            self.report.not_recorded += 1;
            return;
        };
        let Ok(req) = recorded.to_request() else {
            self.report.not_recorded += 1;
            return;
        };
        let unread: Vec<&String> = self.reads.unread(&recorded.extra_redacted).collect();
        if !unread.is_empty() {
            self.report.not_replayable_exactly += 1;
            for k in unread {
                if self.report.unrecorded_keys_read.len() < UNREAD_KEYS_SHOWN {
                    self.report.unrecorded_keys_read.insert(k.clone());
                }
            }
            return;
        }
        let (from, from_policies) = match &self.baseline {
            Some(b) => {
                let d = b.decide(&req).decision;
                (d.verdict, d.policies.clone())
            }
            None => match verdict(&line.decision) {
                Some(v) => (v, line.policies),
                None => {
                    self.report.not_recorded += 1;
                    return;
                }
            },
        };
        let to = self.candidate.decide(&req).decision;
        self.report.replayed += 1;
        if from == to.verdict {
            self.report.unchanged += 1;
            return;
        }
        self.report.changed += 1;
        let key = (from.as_str(), to.verdict.as_str());
        let kind = self.kinds.entry(key).or_insert_with(|| ChangeKind {
            from: key.0,
            to: key.1,
            count: 0,
            policies: BTreeMap::new(),
            examples: Vec::new(),
        });
        kind.count += 1;
        let causes = if to.verdict == Verdict::NoOpinion {
            &from_policies
        } else {
            &to.policies
        };
        for p in causes {
            *kind.policies.entry(p.clone()).or_default() += 1;
        }
        if kind.examples.len() < self.examples {
            kind.examples.push(recorded);
        }
    }

    /// The report of everything fed.
    pub fn finish(mut self) -> ReplayReport {
        self.report.changes = self.kinds.into_values().collect();
        self.report
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::str::FromStr;

    #[test]
    fn tag_reads_are_found_by_key_and_the_extra_attribute_reads_everything() {
        let set = PolicySet::from_str(
            r#"permit(principal is k8s::User, action, resource) when { principal.hasTag("arn") && principal.getTag("arn").contains("x") };"#,
        )
        .unwrap();
        let reads = ExtraReads::of(&set);
        assert!(!reads.all);
        assert!(reads.keys.contains("arn"));
        let set = PolicySet::from_str(
            r#"permit(principal is k8s::User, action, resource) when { principal has extra };"#,
        )
        .unwrap();
        assert!(ExtraReads::of(&set).all);
    }
}
