//! Symbolic analysis of policy sets: what `diff` proves.
//!
//! Cedar's symbolic compiler (`cedar-policy-symcc`) turns a policy set,
//! for one request environment of the schema (principal type × action ×
//! resource type), into SMT terms; cvc5 then decides questions such as
//! "does everything NEW allows, OLD allow too?" for *every* request of that
//! environment, not for a sample, and answers "no" with a counterexample.
//!
//! The webhook's answer has three values, so [`compare`] asks two questions
//! per direction: the *allowed* set (a permit matches, no forbid does) and
//! the *denied* set (a forbid matches). Cedar's symbolic model is looser
//! than what a SubjectAccessReview can produce (any entity id with any
//! attributes, groups of groups, `system:` users that are exempt), so both
//! sets are first restricted by a guard ([`guard`]) to requests the entity
//! model can build, and every counterexample is turned into a review
//! ([`counterexample`]) and decided again by the engine: a difference is
//! *confirmed* only when the engine gives the two answers it claims.

pub mod compare;
pub mod counterexample;
pub mod guard;
mod solver;

pub use compare::{compare, Answer, Change, DiffOptions, ErrorFinding, Finding, Report, Warning};
pub use solver::{SolverConfig, SolverError};
