//! Safe policy rollout: the replayable decision record, shared by the
//! decision log and `replay`, and the replay of recorded decisions under
//! a candidate policy set.

pub mod record;
pub mod replay;

pub use record::{RecordedRequest, RECORDED_EXTRA_KEYS, RECORD_VERSION};
pub use replay::{ChangeKind, ReplayReport, Replayer};
