//! OLD against NEW, one request environment at a time.
//!
//! For each environment of the schema (sorted, so the output is stable):
//! the policies of each set whose scope and types can apply there
//! (`Policy::get_valid_request_envs`) are collected; when both sides hold
//! the same policy texts the environment is identical and never reaches
//! the solver. Otherwise, with the guard added to every set, four
//! questions go to the solver: is there a request NEW allows and OLD does
//! not, and the other way round; and is there one a NEW forbid matches
//! and no OLD forbid does, and the other way round (the forbids compiled
//! as permits, so "the set allows" reads "some forbid matches"). Each
//! counterexample becomes a review that both engines decide again.
//!
//! Cedar's model skips an erroring policy, where the webhook denies on an
//! erroring forbid; `--never-errors` proves separately that no forbid of
//! NEW can error, which closes that gap.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use cedar_policy::{Effect, Policy, PolicyId, PolicySet, RequestEnv, Schema};
use cedar_policy_symcc::{CompiledPolicy, CompiledPolicySet, Env};
use serde::Serialize;
use serde_json::Value;

use super::counterexample;
use super::guard::{self, Guard, Literals, GUARD_ID};
use super::solver::{Prover, SolverConfig, SolverError};
use crate::decision::{Decision, Verdict};
use crate::engine::{Engine, Exemptions};
use crate::policy::Snapshot;
use crate::sar;

/// How to compare.
#[derive(Clone, Debug)]
pub struct DiffOptions {
    /// The exemptions the server runs with: exempt principals are never
    /// evaluated, so no difference can show for them.
    pub exemptions: Exemptions,
    /// Also prove that no forbid of NEW can error.
    pub never_errors: bool,
    pub solver: SolverConfig,
}

/// Which way the answers moved.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Change {
    /// NEW allows a request OLD does not.
    NewlyAllowed,
    /// OLD allows a request NEW does not.
    NoLongerAllowed,
    /// A forbid of NEW denies a request no forbid of OLD denies.
    NewlyDenied,
    /// A forbid of OLD denies a request no forbid of NEW denies.
    NoLongerDenied,
}

impl Change {
    /// In words, for people.
    pub fn describe(self) -> &'static str {
        match self {
            Change::NewlyAllowed => "NEW allows a request OLD does not",
            Change::NoLongerAllowed => "OLD allows a request NEW does not",
            Change::NewlyDenied => "NEW denies a request OLD does not deny",
            Change::NoLongerDenied => "OLD denies a request NEW does not deny",
        }
    }

    /// Whether the two verdicts are the ones this change claims.
    pub fn holds(self, old: Verdict, new: Verdict) -> bool {
        match self {
            Change::NewlyAllowed => new == Verdict::Allowed && old != Verdict::Allowed,
            Change::NoLongerAllowed => old == Verdict::Allowed && new != Verdict::Allowed,
            Change::NewlyDenied => new == Verdict::Denied && old != Verdict::Denied,
            Change::NoLongerDenied => old == Verdict::Denied && new != Verdict::Denied,
        }
    }
}

/// One side's answer to a counterexample review, as the engine gives it.
#[derive(Clone, Debug, Serialize)]
pub struct Answer {
    pub decision: &'static str,
    pub policies: Vec<String>,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub evaluation_error: String,
}

impl Answer {
    fn of(d: &Decision) -> Self {
        Answer {
            decision: d.verdict.as_str(),
            policies: d.policies.clone(),
            evaluation_error: d.status.evaluation_error.clone(),
        }
    }
}

/// A difference between the two sets in one environment.
#[derive(Clone, Debug, Serialize)]
pub struct Finding {
    pub change: Change,
    /// `principal type, action, resource type`.
    pub environment: String,
    /// The engine gives the review the two answers the change claims.
    pub confirmed: bool,
    /// The counterexample as a SubjectAccessReview, when it has one.
    pub review: Option<Value>,
    pub old: Option<Answer>,
    pub new: Option<Answer>,
    /// Why the difference is not confirmed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
    /// The solver's request and entities, as Cedar prints them.
    pub counterexample: String,
}

/// A forbid of NEW that can error on some request (and so deny it).
#[derive(Clone, Debug, Serialize)]
pub struct ErrorFinding {
    pub policy: String,
    pub environment: String,
    pub review: Option<Value>,
    pub answer: Option<Answer>,
    pub counterexample: String,
}

/// Something worth a look that is not a difference.
#[derive(Clone, Debug, Serialize)]
pub struct Warning {
    pub policy: String,
    pub file: String,
    pub message: String,
}

/// Everything `diff` found.
#[derive(Debug, Default, Serialize)]
pub struct Report {
    pub findings: Vec<Finding>,
    pub errors: Vec<ErrorFinding>,
    pub warnings: Vec<Warning>,
    /// Questions that got no answer: never read as "no difference".
    pub trouble: Vec<String>,
    /// Request environments of the schema.
    pub environments: usize,
    /// Environments where both sets hold the same policies.
    pub identical: usize,
    /// Environments no SubjectAccessReview reaches (a group principal).
    pub unreachable: usize,
    /// Solver queries sent.
    pub queries: usize,
    pub seconds: f64,
}

impl Report {
    /// `diff(1)`'s exit codes: 2 trouble, 1 differences (or an erroring
    /// forbid under `--never-errors`), 0 none.
    pub fn exit_code(&self) -> i32 {
        if !self.trouble.is_empty() {
            2
        } else if !self.findings.is_empty() || !self.errors.is_empty() {
            1
        } else {
            0
        }
    }
}

type EnvKey = (String, String, String);

fn env_key(env: &RequestEnv) -> EnvKey {
    (
        env.principal().to_string(),
        env.action().to_string(),
        env.resource().to_string(),
    )
}

fn env_name(env: &RequestEnv) -> String {
    let (p, a, r) = env_key(env);
    format!("{p}, {a}, {r}")
}

/// One policy set, prepared for comparison.
struct Side {
    engine: Engine,
    snapshot: Arc<Snapshot>,
    policies: Vec<Policy>,
    /// The same policies with every forbid turned into a permit: "this set
    /// allows" then reads "some forbid matches".
    as_permit: Vec<Policy>,
    texts: Vec<String>,
    /// Per environment, the indexes of the policies that can apply there.
    by_env: HashMap<EnvKey, Vec<usize>>,
    /// Per policy, the environments it can apply in.
    envs: Vec<Vec<RequestEnv>>,
}

fn as_permit(policy: &Policy) -> Result<Policy, String> {
    if policy.effect() == Effect::Permit {
        return Ok(policy.clone());
    }
    let mut json = policy.to_json().map_err(|e| e.to_string())?;
    json["effect"] = Value::String("permit".into());
    Policy::from_json(Some(policy.id().clone()), json).map_err(|e| e.to_string())
}

impl Side {
    fn new(snapshot: Snapshot, exemptions: &Exemptions) -> Result<Self, String> {
        let engine = Engine::new(snapshot, exemptions.clone(), 0);
        let snapshot = engine.snapshot();
        let schema = &snapshot.schema.schema;
        let mut policies: Vec<Policy> = snapshot.set.policies().cloned().collect();
        policies.sort_by(|a, b| a.id().cmp(b.id()));
        let mut side = Side {
            as_permit: policies.iter().map(as_permit).collect::<Result<_, _>>()?,
            texts: policies.iter().map(|p| p.to_string()).collect(),
            by_env: HashMap::new(),
            envs: Vec::with_capacity(policies.len()),
            policies,
            engine,
            snapshot: Arc::clone(&snapshot),
        };
        for (i, p) in side.policies.iter().enumerate() {
            let envs: Vec<RequestEnv> = p.get_valid_request_envs(schema).collect();
            for env in &envs {
                side.by_env.entry(env_key(env)).or_default().push(i);
            }
            side.envs.push(envs);
        }
        Ok(side)
    }

    fn applicable(&self, key: &EnvKey) -> &[usize] {
        self.by_env.get(key).map_or(&[], Vec::as_slice)
    }

    /// Sorted texts of the applicable policies (of forbids only when
    /// `forbids_only`): equal texts mean equal answers.
    fn texts_in(&self, key: &EnvKey, forbids_only: bool) -> Vec<&str> {
        let mut t: Vec<&str> = self
            .applicable(key)
            .iter()
            .filter(|&&i| !forbids_only || self.policies[i].effect() == Effect::Forbid)
            .map(|&i| self.texts[i].as_str())
            .collect();
        t.sort_unstable();
        t
    }

    /// The allowed set of an environment (guard added) and its denied set.
    fn sets(&self, key: &EnvKey, guard: &Policy) -> Result<(PolicySet, PolicySet), String> {
        let mut allow = PolicySet::new();
        let mut deny = PolicySet::new();
        allow.add(guard.clone()).map_err(|e| e.to_string())?;
        deny.add(guard.clone()).map_err(|e| e.to_string())?;
        for &i in self.applicable(key) {
            allow
                .add(self.policies[i].clone())
                .map_err(|e| e.to_string())?;
            if self.policies[i].effect() == Effect::Forbid {
                deny.add(self.as_permit[i].clone())
                    .map_err(|e| e.to_string())?;
            }
        }
        Ok((allow, deny))
    }
}

struct Compiled {
    allow: CompiledPolicySet,
    deny: CompiledPolicySet,
}

fn compile_sets(
    side: &Side,
    key: &EnvKey,
    env: &RequestEnv,
    guard: &Policy,
    schema: &Schema,
) -> Result<Compiled, String> {
    let (allow, deny) = side.sets(key, guard)?;
    let compile = |set: &PolicySet| {
        CompiledPolicySet::compile(set, env, schema)
            .map_err(|e| format!("symbolic compilation: {}", symcc_error(&e)))
    };
    Ok(Compiled {
        allow: compile(&allow)?,
        deny: compile(&deny)?,
    })
}

/// A symcc error with the validator's reasons when it has them.
fn symcc_error(e: &cedar_policy_symcc::err::Error) -> String {
    match e {
        cedar_policy_symcc::err::Error::PolicyNotWellTyped { errs } => {
            let reasons: Vec<String> = errs.iter().map(|v| v.to_string()).collect();
            format!("{e}: {}", reasons.join("; "))
        }
        other => other.to_string(),
    }
}

/// The review of a counterexample and both engines' answers to it.
fn recheck(
    cex: &Env,
    old: &Engine,
    new: &Engine,
) -> Result<(Value, Arc<Decision>, Arc<Decision>), String> {
    let review = counterexample::review(cex).map_err(|e| e.to_string())?;
    let body = serde_json::to_vec(&review).map_err(|e| e.to_string())?;
    let parsed = sar::parse_review(&body).map_err(|e| format!("the review does not parse: {e}"))?;
    let o = old.decide(&parsed.request).decision;
    let n = new.decide(&parsed.request).decision;
    Ok((review, o, n))
}

fn finding(change: Change, environment: String, cex: &Env, old: &Side, new: &Side) -> Finding {
    let counterexample = cex.to_string();
    match recheck(cex, &old.engine, &new.engine) {
        Ok((review, o, n)) => {
            let confirmed = change.holds(o.verdict, n.verdict);
            Finding {
                change,
                environment,
                confirmed,
                review: Some(review),
                old: Some(Answer::of(&o)),
                new: Some(Answer::of(&n)),
                note: (!confirmed).then(|| {
                    "the engine does not give this review the two answers claimed: the solver's \
                     request has a shape no review produces (docs/policy-authoring.md, \"What diff \
                     proves\")"
                        .to_owned()
                }),
                counterexample,
            }
        }
        Err(note) => Finding {
            change,
            environment,
            confirmed: false,
            review: None,
            old: None,
            new: None,
            note: Some(note),
            counterexample,
        },
    }
}

/// Compares OLD with NEW (both loaded with one schema). A missing solver is
/// an error; a question the solver did not answer is trouble in the report.
pub fn compare(old: Snapshot, new: Snapshot, options: &DiffOptions) -> Result<Report, SolverError> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| SolverError::Query(format!("starting a runtime: {e}")))?;
    runtime.block_on(compare_async(old, new, options))
}

async fn compare_async(
    old: Snapshot,
    new: Snapshot,
    options: &DiffOptions,
) -> Result<Report, SolverError> {
    let started = Instant::now();
    let mut prover = Prover::start(options.solver.clone())?;
    let mut report = Report::default();
    let literals = Literals::of([&old.set, &new.set]);
    let schema_bundle = Arc::clone(&new.schema);
    let schema = &schema_bundle.schema;
    let (old, new) = match (
        Side::new(old, &options.exemptions),
        Side::new(new, &options.exemptions),
    ) {
        (Ok(o), Ok(n)) => (o, n),
        (Err(e), _) | (_, Err(e)) => {
            report.trouble.push(format!("preparing the policies: {e}"));
            return Ok(report);
        }
    };

    let mut envs: Vec<RequestEnv> = schema.request_envs().collect();
    envs.sort_by_key(env_key);
    report.environments = envs.len();
    // The guard of each reachable environment, kept for the warnings below.
    let mut guards: BTreeMap<EnvKey, Policy> = BTreeMap::new();
    for env in &envs {
        let key = env_key(env);
        let condition = match guard::guard(env, &literals, &options.exemptions) {
            Guard::Unreachable => {
                report.unreachable += 1;
                continue;
            }
            Guard::Condition(c) => c,
        };
        let name = env_name(env);
        let guard = match Policy::parse(
            Some(PolicyId::new(GUARD_ID)),
            guard::guard_policy_text(&condition),
        ) {
            Ok(p) => p,
            Err(e) => {
                report
                    .trouble
                    .push(format!("{name}: the guard does not parse: {e}"));
                continue;
            }
        };
        guards.insert(key.clone(), guard.clone());
        let forbids_same = old.texts_in(&key, true) == new.texts_in(&key, true);
        if forbids_same && old.texts_in(&key, false) == new.texts_in(&key, false) {
            report.identical += 1;
            continue;
        }
        let (o, n) = match (
            compile_sets(&old, &key, env, &guard, schema),
            compile_sets(&new, &key, env, &guard, schema),
        ) {
            (Ok(o), Ok(n)) => (o, n),
            (Err(e), _) | (_, Err(e)) => {
                report.trouble.push(format!("{name}: {e}"));
                continue;
            }
        };
        let mut questions = vec![
            (Change::NewlyAllowed, &n.allow, &o.allow),
            (Change::NoLongerAllowed, &o.allow, &n.allow),
        ];
        if !forbids_same {
            questions.push((Change::NewlyDenied, &n.deny, &o.deny));
            questions.push((Change::NoLongerDenied, &o.deny, &n.deny));
        }
        for (change, a, b) in questions {
            match prover.allowed_by_not(a, b).await {
                Ok(Some(cex)) => {
                    report
                        .findings
                        .push(finding(change, name.clone(), &cex, &old, &new))
                }
                Ok(None) => {}
                Err(e) => report
                    .trouble
                    .push(format!("{name}: {}: {e}", change.describe())),
            }
        }
    }

    never_matching(&old, &new, &guards, schema, &mut prover, &mut report).await;
    if options.never_errors {
        erroring_forbids(&new, &guards, schema, &mut prover, &mut report).await;
    }
    report.queries = prover.queries;
    report.seconds = started.elapsed().as_secs_f64();
    Ok(report)
}

/// Warns about the policies new or changed in NEW that match no request
/// the webhook evaluates (under the guard: exempt principals included).
async fn never_matching(
    old: &Side,
    new: &Side,
    guards: &BTreeMap<EnvKey, Policy>,
    schema: &Schema,
    prover: &mut Prover,
    report: &mut Report,
) {
    let old_texts: HashSet<&str> = old.texts.iter().map(String::as_str).collect();
    for (i, policy) in new.policies.iter().enumerate() {
        if old_texts.contains(new.texts[i].as_str()) {
            continue;
        }
        let id = policy.id().to_string();
        let mut can_match = false;
        let mut unanswered = false;
        for env in &new.envs[i] {
            let Some(guard) = guards.get(&env_key(env)) else {
                continue;
            };
            let mut set = PolicySet::new();
            let compiled = set
                .add(guard.clone())
                .map_err(|e| e.to_string())
                .and_then(|()| set.add(new.as_permit[i].clone()).map_err(|e| e.to_string()))
                .and_then(|()| {
                    CompiledPolicySet::compile(&set, env, schema).map_err(|e| symcc_error(&e))
                });
            let answer = match compiled {
                Ok(c) => prover.allows_nothing(&c).await.map_err(|e| e.to_string()),
                Err(e) => Err(e),
            };
            match answer {
                Ok(true) => {}
                Ok(false) => {
                    can_match = true;
                    break;
                }
                Err(e) => {
                    report
                        .trouble
                        .push(format!("{}: can policy {id} match: {e}", env_name(env)));
                    unanswered = true;
                    break;
                }
            }
        }
        if !can_match && !unanswered {
            report.warnings.push(Warning {
                file: new
                    .snapshot
                    .policies
                    .iter()
                    .find(|m| m.id == id)
                    .map(|m| m.file.clone())
                    .unwrap_or_default(),
                policy: id,
                message: if policy.effect() == Effect::Forbid {
                    "can never match a request the webhook evaluates (a forbid that errors still \
                     denies: --never-errors shows where)"
                } else {
                    "can never match a request the webhook evaluates"
                }
                .into(),
            });
        }
    }
}

/// The policy with the guard's condition put first: it then errors only
/// on requests the guard lets through (the guard itself cannot error, and
/// `&&` stops at a false guard).
fn guarded(policy: &Policy, guard: &Policy) -> Result<Policy, String> {
    let mut json = policy.to_json().map_err(|e| e.to_string())?;
    let guard = guard.to_json().map_err(|e| e.to_string())?;
    let condition = serde_json::json!({ "kind": "when", "body": guard["conditions"][0]["body"] });
    json["conditions"]
        .as_array_mut()
        .ok_or("a policy without conditions")?
        .insert(0, condition);
    Policy::from_json(Some(policy.id().clone()), json).map_err(|e| e.to_string())
}

/// `--never-errors`: one counterexample per forbid of NEW that can error.
async fn erroring_forbids(
    new: &Side,
    guards: &BTreeMap<EnvKey, Policy>,
    schema: &Schema,
    prover: &mut Prover,
    report: &mut Report,
) {
    for (i, policy) in new.policies.iter().enumerate() {
        if policy.effect() != Effect::Forbid {
            continue;
        }
        for env in &new.envs[i] {
            let Some(guard) = guards.get(&env_key(env)) else {
                continue;
            };
            let compiled = guarded(policy, guard).and_then(|p| {
                CompiledPolicy::compile(&p, env, schema).map_err(|e| symcc_error(&e))
            });
            let answer = match compiled {
                Ok(c) => prover.error_example(&c).await.map_err(|e| e.to_string()),
                Err(e) => Err(e),
            };
            match answer {
                Ok(None) => {}
                Ok(Some(cex)) => {
                    let rechecked = recheck(&cex, &new.engine, &new.engine).ok();
                    report.errors.push(ErrorFinding {
                        policy: policy.id().to_string(),
                        environment: env_name(env),
                        answer: rechecked.as_ref().map(|(_, _, d)| Answer::of(d)),
                        review: rechecked.map(|(r, _, _)| r),
                        counterexample: cex.to_string(),
                    });
                    break;
                }
                Err(e) => {
                    report.trouble.push(format!(
                        "{}: can forbid {} error: {e}",
                        env_name(env),
                        policy.id()
                    ));
                    break;
                }
            }
        }
    }
}

/// The per-query limit `diff` uses unless told otherwise.
pub const DEFAULT_QUERY_LIMIT: Duration = Duration::from_secs(60);
