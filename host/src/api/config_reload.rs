//! `POST /v1/config/reload`: reads `carillon.toml` again and applies it
//! (see [`super::reconfigure`]); the same as sending the process SIGHUP,
//! with the outcome in the answer.

use std::sync::Arc;

use axum::Json;
use axum::extract::State as Extract;

use super::State;
use super::error::ApiError;
use super::reconfigure::{self, ReloadError};
use crate::event::FieldError;

/// Answers what changed and what waits for a restart; a file that does not
/// pass changes nothing and answers 422 with every problem.
pub async fn reload(
    Extract(state): Extract<Arc<State>>,
) -> Result<Json<serde_json::Value>, ApiError> {
    match reconfigure::reload(&state).await {
        Ok(reloaded) => Ok(Json(serde_json::json!({
            "file": reloaded.file.display().to_string(),
            "changed": reloaded.changed,
            "restart_required": reloaded.restart_required,
        }))),
        Err(error) => {
            tracing::warn!(%error, "config reload refused; the running config stays");
            Err(api_error(error))
        }
    }
}

fn api_error(error: ReloadError) -> ApiError {
    let message = error.to_string();
    match error {
        ReloadError::NoFile => ApiError::Conflict(message),
        ReloadError::Invalid(problems) => ApiError::InvalidConfig {
            message: format!(
                "the config has {} problem(s); nothing was changed",
                problems.len()
            ),
            errors: problems
                .iter()
                .map(|p| {
                    let at = match (p.line, p.column) {
                        (Some(line), Some(column)) => format!("line {line}, column {column}: "),
                        _ => String::new(),
                    };
                    FieldError::new(p.path.clone(), format!("{at}{}", p.message))
                })
                .collect(),
        },
        ReloadError::Refused(reasons) => ApiError::InvalidConfig {
            message: "a plugin refuses the new settings; nothing was changed".to_owned(),
            errors: reasons
                .into_iter()
                .map(|r| FieldError::new("destinations", r))
                .collect(),
        },
        ReloadError::Read(_) | ReloadError::Templates(_) => ApiError::InvalidConfig {
            message,
            errors: Vec::new(),
        },
        ReloadError::Tokens(_) => ApiError::Internal(message),
    }
}
