//! The policy author's toolkit: policy tests, Cedar formatting, and RBAC
//! conversion. The commands in [`crate::cmd`] are thin shells around these.

pub mod format;
pub mod policytest;
pub mod rbac;
