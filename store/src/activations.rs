//! Contact methods' activation: a method receives alerts only once its
//! owner opened the single-use link sent through it (or an admin forced
//! it). The store keeps the state per (contact, method fingerprint) and
//! only the SHA-256 of each link's token.

use sqlx::Row as _;

use crate::audit::{self, Action, Actor, Entry};
use crate::{Store, StoreError};

/// Where a method stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Activation {
    /// The contact.
    pub contact: String,
    /// The method's fingerprint.
    pub method_key: String,
    /// Active (receives alerts) or pending.
    pub active: bool,
    /// When the pending link expires (unix ms); `None` once used.
    pub expires_at_ms: Option<i64>,
    /// When the last link was sent.
    pub sent_at_ms: i64,
    /// When it turned active.
    pub activated_at_ms: Option<i64>,
    /// `link`, or the name of the admin token that forced it.
    pub activated_by: Option<String>,
}

/// Why a link does not activate anything.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LinkError {
    /// No pending method has this link (never sent, already used, or
    /// replaced by a resend).
    #[error(
        "this activation link is not valid: it was used already, replaced by a newer one, or never sent"
    )]
    Unknown,
    /// The link's 24 hours are over.
    #[error("this activation link expired; ask an admin to send a new one")]
    Expired,
}

fn from_row(row: &sqlx::sqlite::SqliteRow) -> Result<Activation, sqlx::Error> {
    Ok(Activation {
        contact: row.try_get("contact")?,
        method_key: row.try_get("method_key")?,
        active: row.try_get::<String, _>("state")? == "active",
        expires_at_ms: row.try_get("expires_at_ms")?,
        sent_at_ms: row.try_get("sent_at_ms")?,
        activated_at_ms: row.try_get("activated_at_ms")?,
        activated_by: row.try_get("activated_by")?,
    })
}

impl Store {
    /// Every method's state.
    pub async fn activations(&self) -> Result<Vec<Activation>, StoreError> {
        let rows = sqlx::query(
            "SELECT contact, method_key, state, expires_at_ms, sent_at_ms, activated_at_ms, activated_by
             FROM activations ORDER BY contact, method_key",
        )
            .fetch_all(&self.pool)
            .await?;
        Ok(rows.iter().map(from_row).collect::<Result<_, _>>()?)
    }

    /// Records a method as pending with a new link, unless it is known
    /// already; `true` when it was new (and its link must be sent).
    pub async fn pend(
        &self,
        contact: &str,
        method_key: &str,
        token_sha256: &str,
        expires_at_ms: i64,
        now_ms: i64,
    ) -> Result<bool, StoreError> {
        let new = self
            .pend_all(
                &[(contact, method_key, token_sha256)],
                expires_at_ms,
                now_ms,
            )
            .await?;
        Ok(new.first().copied().unwrap_or(false))
    }

    /// [`Store::pend`] for many methods (contact, fingerprint, token
    /// SHA-256) in one transaction, so a start with thousands of new
    /// methods commits once; for each, `true` when it was new. All or
    /// nothing: on an error none is recorded.
    pub async fn pend_all(
        &self,
        methods: &[(&str, &str, &str)],
        expires_at_ms: i64,
        now_ms: i64,
    ) -> Result<Vec<bool>, StoreError> {
        let mut tx = self.pool.begin_with("BEGIN IMMEDIATE").await?;
        let mut new = Vec::with_capacity(methods.len());
        for (contact, method_key, token_sha256) in methods {
            let done = sqlx::query(
                "INSERT OR IGNORE INTO activations
                     (contact, method_key, state, token_sha256, expires_at_ms, sent_at_ms)
                 VALUES (?, ?, 'pending', ?, ?, ?)",
            )
            .bind(contact)
            .bind(method_key)
            .bind(token_sha256)
            .bind(expires_at_ms)
            .bind(now_ms)
            .execute(&mut *tx)
            .await?;
            new.push(done.rows_affected() == 1);
        }
        tx.commit().await?;
        Ok(new)
    }

    /// Replaces a pending method's link (the old one stops working);
    /// `NotFound` when the method is not pending.
    pub async fn resend(
        &self,
        contact: &str,
        method_key: &str,
        token_sha256: &str,
        expires_at_ms: i64,
        now_ms: i64,
    ) -> Result<(), StoreError> {
        let done = sqlx::query(
            "UPDATE activations SET token_sha256 = ?, expires_at_ms = ?, sent_at_ms = ?
             WHERE contact = ? AND method_key = ? AND state = 'pending'",
        )
        .bind(token_sha256)
        .bind(expires_at_ms)
        .bind(now_ms)
        .bind(contact)
        .bind(method_key)
        .execute(&self.pool)
        .await?;
        if done.rows_affected() == 1 {
            Ok(())
        } else {
            Err(StoreError::NotFound)
        }
    }

    /// Opens a link: the method with this token turns active and the link
    /// is spent. An expired link changes nothing.
    pub async fn activate_link(
        &self,
        token_sha256: &str,
        now_ms: i64,
    ) -> Result<Result<Activation, LinkError>, StoreError> {
        let mut tx = self.pool.begin_with("BEGIN IMMEDIATE").await?;
        let row = sqlx::query(
            "SELECT contact, method_key, state, expires_at_ms, sent_at_ms, activated_at_ms, activated_by
             FROM activations WHERE token_sha256 = ? AND state = 'pending'",
        )
        .bind(token_sha256)
        .fetch_optional(&mut *tx)
        .await?;
        let Some(row) = row else {
            return Ok(Err(LinkError::Unknown));
        };
        let found = from_row(&row)?;
        if found.expires_at_ms.is_some_and(|at| at <= now_ms) {
            return Ok(Err(LinkError::Expired));
        }
        sqlx::query(
            "UPDATE activations SET state = 'active', token_sha256 = NULL, expires_at_ms = NULL,
                 activated_at_ms = ?, activated_by = 'link'
             WHERE contact = ? AND method_key = ?",
        )
        .bind(now_ms)
        .bind(&found.contact)
        .bind(&found.method_key)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(Ok(Activation {
            active: true,
            expires_at_ms: None,
            activated_at_ms: Some(now_ms),
            activated_by: Some("link".into()),
            ..found
        }))
    }

    /// An admin turns a method active without its link, recorded in the
    /// audit log (in the same transaction) as an update of the contact.
    pub async fn force_activate(
        &self,
        workspace: &str,
        contact: &str,
        method_key: &str,
        method_index: usize,
        actor: &Actor,
        now_ms: i64,
    ) -> Result<(), StoreError> {
        let mut tx = self.pool.begin_with("BEGIN IMMEDIATE").await?;
        let done = sqlx::query(
            "INSERT INTO activations
                 (contact, method_key, state, sent_at_ms, activated_at_ms, activated_by)
             VALUES (?, ?, 'active', ?, ?, ?)
             ON CONFLICT (contact, method_key) DO UPDATE SET
                 state = 'active', token_sha256 = NULL, expires_at_ms = NULL,
                 activated_at_ms = excluded.activated_at_ms, activated_by = excluded.activated_by
             WHERE state = 'pending'",
        )
        .bind(contact)
        .bind(method_key)
        .bind(now_ms)
        .bind(now_ms)
        .bind(&actor.token)
        .execute(&mut *tx)
        .await?;
        if done.rows_affected() == 0 {
            return Err(StoreError::Conflict { current: None });
        }
        let before = format!(r#"{{"method":{method_index},"state":"pending"}}"#);
        let after = format!(r#"{{"method":{method_index},"state":"active","forced":true}}"#);
        let entry = Entry {
            at_ms: now_ms,
            actor,
            workspace,
            action: Action::Update,
            kind: "contact",
            name: contact,
            before: Some(&before),
            after: Some(&after),
        };
        audit::append(&mut tx, &entry, self.options.audit_keep).await?;
        tx.commit().await?;
        Ok(())
    }
}
