//! Which principals are never evaluated (decision rule 1).

use crate::entities::{self, Identity};

/// Which principals get no opinion without evaluation.
#[derive(Clone, Debug)]
pub struct Exemptions {
    /// Apply the built-in rule: `system:` usernames other than service
    /// accounts, nodes and `system:anonymous`.
    pub control_plane: bool,
    /// Further exempt usernames, exactly.
    pub users: Vec<String>,
}

impl Default for Exemptions {
    fn default() -> Self {
        Exemptions {
            control_plane: true,
            users: Vec::new(),
        }
    }
}

impl Exemptions {
    /// True when the username gets no opinion without evaluation.
    pub fn is_exempt(&self, user: &str) -> bool {
        (self.control_plane
            && user.starts_with("system:")
            && user != "system:anonymous"
            && entities::identity(user) == Identity::User)
            || self.users.iter().any(|u| u == user)
    }
}
