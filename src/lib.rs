//! cedar-authorizer: a Kubernetes authorization webhook that decides
//! SubjectAccessReviews with Cedar policies.
//!
//! The decision path is plain synchronous code: [`sar::parse_review`] reads
//! a review, [`engine::Engine::decide`] answers it against the live
//! [`policy::Snapshot`], and [`sar::response_json`] writes the answer. The
//! server ([`server`]), the offline commands ([`commands`]) and the tests
//! all go through those same functions.

pub mod certs;
pub mod cli;
pub mod commands;
pub mod deadline;
pub mod engine;
pub mod entities;
pub mod format;
pub mod metrics;
pub mod policy;
pub mod policytest;
pub mod rbac;
pub mod reload;
pub mod sar;
pub mod server;
pub mod tls;
pub mod toolkit;
pub mod walk;
