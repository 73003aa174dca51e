//! Admission: an `admission.k8s.io/v1` AdmissionReview decided by the same
//! policies as authorization (docs/policy-model.md, "Admission").

pub mod naming;
pub mod schemagen;
