//! cedar-authorizer: a Kubernetes authorization webhook that decides
//! SubjectAccessReviews with Cedar policies.
//!
//! Modules in data-flow order; each depends only on those below it:
//!
//! | module | holds |
//! |---|---|
//! | [`cmd`] | clap definitions and one file per subcommand; `serve`'s process concerns (runtime, logging, signals) |
//! | [`serve`] | [`serve::run`]: webhook handlers, decision log, admin listener, listener limits, TLS, reload, metrics |
//! | [`engine`] | the live snapshot with its decision cache, exemptions: [`engine::Engine::decide`] |
//! | [`decision`] | rules 1–5 and the `reason`/`evaluationError` wording |
//! | [`eval`] | Cedar's answer over the index's candidates ([`eval::RawOutcome`]) |
//! | [`policy`] | source files, schema, compile, index, the immutable [`policy::Snapshot`] |
//! | [`entities`] | an access request to Cedar principal, action, resource and entities |
//! | [`sar`] | SubjectAccessReview in and out, the normalised [`sar::AccessRequest`] |
//! | [`rollout`] | the replayable decision record and `replay` |
//! | [`analysis`] | symbolic comparison of two policy sets behind `diff` (cedar-policy-symcc, cvc5) |
//! | [`authoring`] | the author's toolkit behind `test`, `fmt` and `convert-rbac` |
//! | [`certs`], [`walk`], [`yaml`] | certificate generation; the one directory walker; the one YAML reader |
//!
//! The decision path is plain synchronous code: [`sar::parse_review`] reads
//! a review, [`engine::Engine::decide`] answers it, and
//! [`sar::response_json`] writes the answer. The server, the offline
//! commands, the tests and the benches all go through those functions.

pub mod admission;
pub mod analysis;
pub mod authoring;
pub mod certs;
pub mod cmd;
pub mod decision;
pub mod engine;
pub mod entities;
pub mod eval;
pub mod policy;
pub mod rollout;
pub mod sar;
pub mod serve;
pub mod store;
pub(crate) mod walk;
pub mod yaml;
