//! Who may do what: the [`Role`] a token carries, the [`Permission`] each
//! API route requires (the route table in `api` names one per route), and
//! the [`TokenHash`] a token's secret is kept as.
//!
//! A leaf: `config` reads roles from the file, `api` checks them, and
//! neither needs the other for it.

use std::fmt;
use std::str::FromStr;

use serde::{Serialize, Serializer};
use sha2::{Digest as _, Sha256};

/// The workspace that always exists: objects and tokens that name none
/// belong to it, so a single-team install never sees the concept.
pub const DEFAULT_WORKSPACE: &str = "default";

/// What a token may do. Every role but `instance-admin` is bound to one
/// workspace and sees only that workspace's objects.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Role {
    /// Everything, in every workspace, and the instance itself (plugins,
    /// metrics).
    InstanceAdmin,
    /// Reads, operates and edits one workspace.
    WorkspaceAdmin,
    /// Reads one workspace and acts on it (test push, retry, cancel a
    /// timer; later activate), edits nothing.
    Operator,
    /// Reads one workspace.
    Viewer,
    /// Posts events into one workspace, and nothing else.
    Ingest,
}

impl Role {
    /// Every role, most powerful first.
    pub const ALL: [Role; 5] = [
        Role::InstanceAdmin,
        Role::WorkspaceAdmin,
        Role::Operator,
        Role::Viewer,
        Role::Ingest,
    ];

    /// The role's name in the config and the API.
    pub fn name(self) -> &'static str {
        match self {
            Role::InstanceAdmin => "instance-admin",
            Role::WorkspaceAdmin => "workspace-admin",
            Role::Operator => "operator",
            Role::Viewer => "viewer",
            Role::Ingest => "ingest",
        }
    }

    /// Does this role hold `permission`?
    pub fn grants(self, permission: Permission) -> bool {
        use Permission as P;
        match permission {
            P::Public => true,
            P::Ingest => self == Role::Ingest,
            P::Read => self != Role::Ingest,
            P::Operate => matches!(
                self,
                Role::InstanceAdmin | Role::WorkspaceAdmin | Role::Operator
            ),
            P::Edit => matches!(self, Role::InstanceAdmin | Role::WorkspaceAdmin),
            P::Instance => self == Role::InstanceAdmin,
        }
    }

    /// Is this role bound to no workspace (it sees them all)?
    pub fn is_instance_wide(self) -> bool {
        self == Role::InstanceAdmin
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Role {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Role::ALL
            .into_iter()
            .find(|r| r.name() == s)
            .ok_or_else(|| {
                format!(
                    "unknown role {s:?}, expected one of {}",
                    Role::ALL
                        .iter()
                        .map(|r| format!("`{r}`"))
                        .collect::<Vec<_>>()
                        .join(", ")
                )
            })
    }
}

impl Serialize for Role {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.name())
    }
}

/// What a route requires of the token presented with it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Permission {
    /// No token: health, readiness, the published documents.
    Public,
    /// Posting events (the `ingest` role only; an admin's token is not an
    /// application's).
    Ingest,
    /// Reading a workspace's objects.
    Read,
    /// Acting on a workspace's objects without changing the configuration:
    /// test push, retry, cancel a timer.
    Operate,
    /// Changing a workspace's configuration.
    Edit,
    /// What spans every workspace: plugins' reload, metrics.
    Instance,
}

impl Permission {
    /// Every permission, in the order the docs list them.
    pub const ALL: [Permission; 6] = [
        Permission::Public,
        Permission::Ingest,
        Permission::Read,
        Permission::Operate,
        Permission::Edit,
        Permission::Instance,
    ];

    /// Its name in the docs.
    pub fn name(self) -> &'static str {
        match self {
            Permission::Public => "public",
            Permission::Ingest => "ingest",
            Permission::Read => "read",
            Permission::Operate => "operate",
            Permission::Edit => "edit",
            Permission::Instance => "instance",
        }
    }
}

impl fmt::Display for Permission {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The SHA-256 of a token: all the gateway keeps of it. A presented token
/// is hashed once and compared with every stored hash in constant time.
/// Neither `Debug` nor `Serialize` shows it (a short token's hash can be
/// searched for).
#[derive(Clone, PartialEq, Eq)]
pub struct TokenHash([u8; 32]);

impl TokenHash {
    /// The hash of `token`.
    pub fn of(token: &[u8]) -> TokenHash {
        TokenHash(Sha256::digest(token).into())
    }

    /// Reads 64 hex digits (either case).
    pub fn from_hex(text: &str) -> Option<TokenHash> {
        let mut out = [0u8; 32];
        hex::decode_to_slice(text, &mut out).ok()?;
        Some(TokenHash(out))
    }

    /// Is this the hash of the token whose hash is `presented`? Constant
    /// time.
    pub fn matches(&self, presented: &TokenHash) -> bool {
        use subtle::ConstantTimeEq as _;
        bool::from(self.0.ct_eq(&presented.0))
    }
}

impl fmt::Debug for TokenHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("TokenHash(<redacted>)")
    }
}

impl Serialize for TokenHash {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str("<redacted>")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roles_read_back_and_unknown_ones_list_the_choices() {
        for role in Role::ALL {
            assert_eq!(role.name().parse::<Role>(), Ok(role));
        }
        let e = "admin".parse::<Role>().unwrap_err();
        assert!(
            e.contains("`instance-admin`") && e.contains("`ingest`"),
            "{e}"
        );
    }

    #[test]
    fn each_role_holds_exactly_its_permissions() {
        let held = |r: Role| -> Vec<&str> {
            Permission::ALL
                .into_iter()
                .filter(|p| r.grants(*p))
                .map(Permission::name)
                .collect()
        };
        assert_eq!(
            held(Role::InstanceAdmin),
            ["public", "read", "operate", "edit", "instance"]
        );
        assert_eq!(
            held(Role::WorkspaceAdmin),
            ["public", "read", "operate", "edit"]
        );
        assert_eq!(held(Role::Operator), ["public", "read", "operate"]);
        assert_eq!(held(Role::Viewer), ["public", "read"]);
        assert_eq!(held(Role::Ingest), ["public", "ingest"]);
    }

    #[test]
    fn a_hash_matches_only_its_token_and_never_prints() {
        let h = TokenHash::of(b"s3cret-token");
        assert!(h.matches(&TokenHash::of(b"s3cret-token")));
        assert!(!h.matches(&TokenHash::of(b"s3cret-tokem")));
        let hex = hex::encode(Sha256::digest(b"s3cret-token"));
        assert_eq!(TokenHash::from_hex(&hex.to_uppercase()), Some(h.clone()));
        assert_eq!(TokenHash::from_hex("abc"), None);
        assert!(!format!("{h:?}").contains(&hex[..8]));
        assert_eq!(serde_json::to_string(&h).unwrap(), "\"<redacted>\"");
    }
}
