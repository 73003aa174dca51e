//! The decision rules and the words the apiserver receives.
//!
//! Cedar's own answer ([`RawOutcome`]) becomes a webhook answer here, in
//! the order of the entity model (docs/policy-model.md):
//!
//! 1. an exempt principal gets no opinion, without evaluation;
//! 2. a satisfied `forbid` denies;
//! 3. a `forbid` whose evaluation errored denies too;
//! 4. a satisfied `permit` allows;
//! 5. otherwise no opinion.
//!
//! The `reason` and `evaluationError` wording is a public contract: it
//! shows in users' 403 messages and in audit logs. A no-opinion answer has
//! an empty `reason` (the apiserver appends every no-opinion reason to the
//! 403 that RBAC's refusal produces), and both strings are bounded, so
//! thousands of matching policies never become a megabyte audit-log line.

use std::collections::HashSet;

use crate::eval::RawOutcome;
use crate::sar::Status;

/// How many policy ids `reason` names before "and N more".
const REASON_IDS: usize = 8;
/// How many errors `evaluationError` lists before "and N more".
const REASON_ERRORS: usize = 8;
/// Longest policy id or error message quoted in `reason`/`evaluationError`.
const MAX_ITEM_BYTES: usize = 256;
/// Upper bound of `reason` and of `evaluationError`, each.
pub const MAX_STATUS_TEXT_BYTES: usize = 4096;

/// The three answers an authorizer webhook can give.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Verdict {
    Allowed,
    Denied,
    NoOpinion,
}

impl Verdict {
    /// The `decision` label value of the request metrics.
    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Allowed => "allowed",
            Verdict::Denied => "denied",
            Verdict::NoOpinion => "no_opinion",
        }
    }
}

/// An answered request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Decision {
    pub verdict: Verdict,
    /// The determining policies, sorted.
    pub policies: Vec<String>,
    /// (policy id, message) of policies whose evaluation errored.
    pub errors: Vec<(String, String)>,
    /// No evaluation took place: the principal is exempt.
    pub exempt: bool,
    /// The status the apiserver receives.
    pub status: Status,
}

/// Cuts `s` to at most `max` bytes on a character boundary, saying so.
pub fn truncate(s: &str, max: usize) -> std::borrow::Cow<'_, str> {
    if s.len() <= max {
        return s.into();
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}... ({} bytes)", &s[..end], s.len()).into()
}

/// `items` joined by `sep`, at most `shown` of them, then "and N more".
fn bounded_list(items: impl ExactSizeIterator<Item = String>, shown: usize, sep: &str) -> String {
    let total = items.len();
    let mut out = items.take(shown).collect::<Vec<_>>().join(sep);
    if total > shown {
        out.push_str(&format!("{sep}and {} more", total - shown));
    }
    truncate(&out, MAX_STATUS_TEXT_BYTES).into_owned()
}

fn reason_for(verdict: Verdict, policies: &[String]) -> String {
    let word = match verdict {
        Verdict::Allowed => "allowed",
        Verdict::Denied => "denied",
        Verdict::NoOpinion => return String::new(),
    };
    let plural = if policies.len() == 1 {
        "policy"
    } else {
        "policies"
    };
    let ids = bounded_list(
        policies
            .iter()
            .map(|p| truncate(p, MAX_ITEM_BYTES).into_owned()),
        REASON_IDS,
        ", ",
    );
    format!("cedar: {word} by {plural} {ids}")
}

fn evaluation_error_for(errors: &[(String, String)]) -> String {
    bounded_list(
        errors.iter().map(|(id, message)| {
            format!(
                "policy {}: {}",
                truncate(id, MAX_ITEM_BYTES),
                truncate(message, MAX_ITEM_BYTES)
            )
        }),
        REASON_ERRORS,
        "; ",
    )
}

impl Decision {
    fn new(verdict: Verdict, policies: Vec<String>, errors: Vec<(String, String)>) -> Self {
        Decision {
            status: Status {
                allowed: verdict == Verdict::Allowed,
                denied: verdict == Verdict::Denied,
                reason: reason_for(verdict, &policies),
                evaluation_error: evaluation_error_for(&errors),
            },
            verdict,
            policies,
            errors,
            exempt: false,
        }
    }

    /// No opinion without evaluation. The reason stays empty, like every
    /// no-opinion answer; logs and metrics say the principal was exempt.
    pub fn exempt() -> Self {
        Decision {
            exempt: true,
            ..Decision::new(Verdict::NoOpinion, Vec::new(), Vec::new())
        }
    }

    /// Rules 2 and 3: a satisfied forbid denies, and so does one whose
    /// evaluation errored.
    fn forbidden(
        raw_forbids: std::collections::BTreeSet<String>,
        errors: &[(String, String)],
        forbids: &HashSet<String>,
    ) -> Option<Self> {
        if !raw_forbids.is_empty() {
            return Some(Decision::new(
                Verdict::Denied,
                raw_forbids.into_iter().collect(),
                errors.to_vec(),
            ));
        }
        let mut failed_forbids: Vec<String> = errors
            .iter()
            .filter(|(id, _)| forbids.contains(id))
            .map(|(id, _)| id.clone())
            .collect();
        if failed_forbids.is_empty() {
            return None;
        }
        failed_forbids.dedup();
        let mut d = Decision::new(Verdict::Denied, failed_forbids, errors.to_vec());
        d.status
            .reason
            .push_str(" (the forbid could not be evaluated)");
        Some(d)
    }

    /// Applies the decision rules to Cedar's answer; `forbids` are the ids
    /// of the set's forbid policies.
    pub fn from_outcome(raw: RawOutcome, forbids: &HashSet<String>) -> Self {
        let errors: Vec<(String, String)> = raw.errors.into_iter().collect();
        if let Some(denied) = Self::forbidden(raw.forbids, &errors, forbids) {
            return denied;
        }
        if !raw.permits.is_empty() {
            return Decision::new(Verdict::Allowed, raw.permits.into_iter().collect(), errors);
        }
        Decision::new(Verdict::NoOpinion, Vec::new(), errors)
    }

    /// The admission rules: refused when a forbid is satisfied or errors
    /// (rules 2 and 3), admitted otherwise; permits do not matter.
    pub fn admission(raw: RawOutcome, forbids: &HashSet<String>) -> Self {
        let errors: Vec<(String, String)> = raw.errors.into_iter().collect();
        Self::forbidden(raw.forbids, &errors, forbids).unwrap_or_else(|| {
            let mut d = Decision::admitted();
            d.status.evaluation_error = evaluation_error_for(&errors);
            d.errors = errors;
            d
        })
    }

    /// Admitted with no policy involved. The reason is empty: admission
    /// answers carry a message only when they refuse.
    pub fn admitted() -> Self {
        let mut d = Decision::new(Verdict::Allowed, Vec::new(), Vec::new());
        d.status.reason = String::new();
        d
    }

    /// A request that could not be evaluated is denied: an unknown answer
    /// must never become an allow, and a forbid might have applied.
    pub fn unevaluable(message: String) -> Self {
        let mut d = Decision::new(Verdict::Denied, Vec::new(), Vec::new());
        d.status.reason = "cedar: denied: the request could not be evaluated".to_owned();
        d.status.evaluation_error = truncate(&message, MAX_STATUS_TEXT_BYTES).into_owned();
        d
    }

    /// A rough size in bytes of what the decision holds, for the cache's
    /// weight.
    pub fn approximate_size(&self) -> usize {
        let strings = |v: &[String]| v.iter().map(|s| s.len() + 24).sum::<usize>();
        192 + strings(&self.policies)
            + self
                .errors
                .iter()
                .map(|(a, b)| a.len() + b.len() + 48)
                .sum::<usize>()
            + self.status.reason.len()
            + self.status.evaluation_error.len()
    }

    /// Why, in words, for logs and `check --explain`: unlike `reason`, also
    /// for no-opinion answers.
    pub fn explanation(&self) -> String {
        match (self.verdict, self.exempt) {
            (_, true) => "exempt principal".to_owned(),
            (Verdict::NoOpinion, false) => "no policy matched".to_owned(),
            (Verdict::Allowed, false) if self.policies.is_empty() => {
                "admitted: no forbid applies".to_owned()
            }
            _ => self.status.reason.clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn outcome(permits: &[&str], forbids: &[&str], errors: &[(&str, &str)]) -> RawOutcome {
        RawOutcome {
            permits: permits.iter().map(|s| s.to_string()).collect(),
            forbids: forbids.iter().map(|s| s.to_string()).collect(),
            errors: errors
                .iter()
                .map(|(a, b)| (a.to_string(), b.to_string()))
                .collect(),
        }
    }

    #[test]
    fn no_opinion_and_exempt_answers_carry_an_empty_reason() {
        let none = Decision::from_outcome(outcome(&[], &[], &[]), &HashSet::new());
        assert_eq!(none.verdict, Verdict::NoOpinion);
        assert_eq!(none.status.reason, "");
        assert_eq!(none.explanation(), "no policy matched");
        let exempt = Decision::exempt();
        assert_eq!(exempt.status.reason, "");
        assert_eq!(exempt.explanation(), "exempt principal");
    }

    #[test]
    fn reason_names_a_few_policies_then_counts_the_rest() {
        let ids: Vec<String> = (0..5000).map(|i| format!("rbac/binding-{i:05}")).collect();
        let refs: Vec<&str> = ids.iter().map(String::as_str).collect();
        let d = Decision::from_outcome(outcome(&refs, &[], &[]), &HashSet::new());
        assert_eq!(d.policies.len(), 5000);
        assert!(d
            .status
            .reason
            .starts_with("cedar: allowed by policies rbac/binding-00000, "));
        assert!(
            d.status.reason.ends_with(", and 4992 more"),
            "{}",
            d.status.reason
        );
        assert!(d.status.reason.len() <= MAX_STATUS_TEXT_BYTES + 64);
    }

    #[test]
    fn evaluation_error_is_bounded_in_items_and_bytes() {
        let long = "x".repeat(1 << 20);
        let ids: Vec<String> = (0..100).map(|i| format!("p{i:03}")).collect();
        let errors: Vec<(&str, &str)> = ids.iter().map(|i| (i.as_str(), long.as_str())).collect();
        let d = Decision::from_outcome(outcome(&["ok"], &[], &errors), &HashSet::new());
        assert_eq!(d.verdict, Verdict::Allowed);
        assert!(d.status.evaluation_error.len() <= MAX_STATUS_TEXT_BYTES + 64);
        assert!(d.status.evaluation_error.contains("(1048576 bytes)"));
        assert!(d.status.evaluation_error.starts_with("policy p000: xxx"));
    }

    #[test]
    fn truncation_respects_character_boundaries() {
        let s = "é".repeat(10);
        let t = truncate(&s, 5);
        assert!(t.starts_with("éé..."), "{t}");
    }
}
