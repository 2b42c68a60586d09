//! Contact methods turn active only when their owner confirms them: a new
//! or changed method that delivers (an email address, a personal robot) is
//! *pending*; Carillon sends a link through that very method (valid 24
//! hours, single use, its token stored as a SHA-256), and opening it
//! (`GET /v1/activate/{token}`, a small HTML page) makes the method active.
//! Pending methods receive no alert: routing skips them and records each
//! skip on the event. An operator may send a new link or force a method
//! active (audited).
//!
//! A method is known by a fingerprint of what it is (the address, or the
//! robot's plugin and resolved config), so editing it makes it pending
//! again while editing anything else of the contact does not.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, RwLock};

use axum::Json;
use axum::extract::rejection::PathRejection;
use axum::extract::{Extension, Path, State as Extract};
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Response};
use carillon_store::{Activation, Actor, LinkError, StoreError};
use futures_util::StreamExt as _;
use serde::Serialize;
use sha2::{Digest as _, Sha256};

use super::config_store::{api_error, millis};
use super::error::ApiError;
use super::method_keys::{Keyed, MethodKeys, method_key};
use super::{Live, Principal, State};
use crate::config::{Config, Contact};
use crate::event::Event;

/// Activation links enqueued at once by a sync.
const LINKS_AT_ONCE: usize = 32;

/// How long an activation link is valid.
pub const LINK_VALIDITY_MS: i64 = 24 * 3600 * 1000;

/// Where one contact method stands, by the destination that delivers to it.
#[derive(Debug, Clone, Serialize)]
pub struct MethodState {
    /// `active` or `pending`.
    pub state: &'static str,
    /// When the pending link expires.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<String>,
    /// When the last link was sent.
    pub sent_at: String,
    /// When it turned active.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub activated_at: Option<String>,
    /// `link`, or the admin token that forced it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub activated_by: Option<String>,
}

/// The methods' states, shared by every config version (a link changes
/// them without a config change).
#[derive(Debug, Default)]
pub struct Activations {
    by_destination: RwLock<HashMap<String, MethodState>>,
    /// The methods' fingerprints, kept between syncs.
    keys: MethodKeys,
}

impl Activations {
    /// May an alert go to `destination` of `config`? Every destination
    /// that is not a contact's method may; a method only once active.
    pub fn allows(&self, config: &Config, destination: &str) -> bool {
        match config.destinations.get(destination) {
            Some(d) if d.contact.is_some() => self
                .by_destination
                .read()
                .unwrap_or_else(|p| p.into_inner())
                .get(destination)
                .is_some_and(|m| m.state == "active"),
            _ => true,
        }
    }

    /// The state of the method `destination` delivers to.
    pub fn state(&self, destination: &str) -> Option<MethodState> {
        self.by_destination
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .get(destination)
            .cloned()
    }

    fn replace(&self, states: HashMap<String, MethodState>) {
        *self
            .by_destination
            .write()
            .unwrap_or_else(|p| p.into_inner()) = states;
    }
}

fn token_hash(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

fn new_token() -> Result<String, getrandom::Error> {
    let mut bytes = [0u8; 24];
    getrandom::fill(&mut bytes)?;
    Ok(hex::encode(bytes))
}

fn now_ms(state: &State) -> i64 {
    i64::try_from(state.clock.now().as_millis()).unwrap_or(i64::MAX)
}

/// After a start or a config change: every method that delivers and is
/// not known yet becomes pending and is sent its link; then the states
/// are read back for routing. The states are read once, and again only
/// when a method was made pending.
pub async fn sync(state: &State) {
    let live = state.live();
    let Some(rows) = read(state).await else {
        return;
    };
    let methods = state.activations.keys.of(&live.config);
    let known: HashSet<(&str, &str)> = rows
        .iter()
        .map(|a| (a.contact.as_str(), a.method_key.as_str()))
        .collect();
    // Every unknown method is made pending in one transaction (a start
    // with a new directory has thousands), then sent its link.
    let mut unknown = Vec::new();
    for m in &methods {
        if known.contains(&(m.contact, m.key.as_str())) {
            continue;
        }
        let Some(contact) = live.config.contacts.get(m.contact) else {
            continue;
        };
        let Ok(token) = new_token() else {
            tracing::error!("no randomness for an activation link");
            return;
        };
        unknown.push((m, contact, token));
    }
    let pended = !unknown.is_empty();
    if pended {
        let now = now_ms(state);
        let hashes: Vec<String> = unknown.iter().map(|(_, _, t)| token_hash(t)).collect();
        let batch: Vec<(&str, &str, &str)> = unknown
            .iter()
            .zip(&hashes)
            .map(|((m, _, _), hash)| (m.contact, m.key.as_str(), hash.as_str()))
            .collect();
        match state
            .store
            .pend_all(&batch, now + LINK_VALIDITY_MS, now)
            .await
        {
            Ok(new) => {
                // Enqueued a group at a time: the outbox commits
                // concurrent enqueues together.
                let mut links = Vec::new();
                for ((m, contact, token), new) in unknown.iter().zip(new) {
                    if new {
                        links.push(send_link(
                            state,
                            &live,
                            m.contact,
                            contact,
                            m.index,
                            m.destination,
                            token,
                        ));
                    }
                }
                let mut sending = futures_util::stream::iter(links).buffer_unordered(LINKS_AT_ONCE);
                while sending.next().await.is_some() {}
            }
            Err(error) => {
                tracing::error!(%error, methods = batch.len(), "cannot record the pending methods")
            }
        }
    }
    let rows = match pended {
        true => match read(state).await {
            Some(rows) => rows,
            None => return,
        },
        false => rows,
    };
    publish(state, &live, &rows, &methods);
}

/// Reads every method's state back into [`Activations`].
pub async fn refresh(state: &State) {
    let live = state.live();
    let Some(rows) = read(state).await else {
        return;
    };
    let methods = state.activations.keys.of(&live.config);
    publish(state, &live, &rows, &methods);
}

/// Every activation row; `None` (logged) when the store fails.
async fn read(state: &State) -> Option<Vec<Activation>> {
    match state.store.activations().await {
        Ok(rows) => Some(rows),
        Err(error) => {
            tracing::error!(%error, "cannot read the contact methods' activation");
            None
        }
    }
}

/// The states of `methods` (of `live`'s config) from `rows`, for routing:
/// a method without an active row takes no alert.
fn publish(state: &State, live: &Live, rows: &[Activation], methods: &[Keyed<'_>]) {
    let by_key: HashMap<(&str, &str), &Activation> = rows
        .iter()
        .map(|a| ((a.contact.as_str(), a.method_key.as_str()), a))
        .collect();
    let mut states = HashMap::new();
    for m in methods {
        if let Some(a) = by_key.get(&(m.contact, m.key.as_str())) {
            states.insert(
                m.destination.to_owned(),
                MethodState {
                    state: if a.active { "active" } else { "pending" },
                    expires_at: a.expires_at_ms.map(millis),
                    sent_at: millis(a.sent_at_ms),
                    activated_at: a.activated_at_ms.map(millis),
                    activated_by: a.activated_by.clone(),
                },
            );
        }
    }
    let inactive = live
        .config
        .destinations
        .iter()
        .filter(|(name, d)| {
            d.contact.is_some() && states.get(*name).is_none_or(|m| m.state != "active")
        })
        .map(|(name, _)| name.clone())
        .collect();
    state.destinations.set_inactive(inactive);
    state.activations.replace(states);
}

/// The link's base: `server.public_url`, else the listen address.
fn link(live: &Live, token: &str) -> String {
    let base = match &live.config.server.public_url {
        Some(url) => url.as_str().trim_end_matches('/').to_owned(),
        None => format!("http://{}", live.config.server.listen),
    };
    format!("{base}/v1/activate/{token}")
}

/// Sends the activation message through the method itself, in the
/// contact's language.
async fn send_link(
    state: &State,
    live: &Live,
    name: &str,
    contact: &Contact,
    index: usize,
    destination: &str,
    token: &str,
) {
    let url = link(live, token);
    let chinese = contact
        .locale
        .as_deref()
        .is_some_and(|l| l.starts_with("zh"));
    let now = crate::timestamp::to_jiff(state.clock.now());
    let mut event = Event::new("contact.activation", "carillon".to_owned(), now);
    event.subject = Some(name.to_owned());
    event.locale = contact.locale.clone();
    event.destinations = Some(vec![destination.to_owned()]);
    let who = &contact.display_name;
    if chinese {
        event.title = Some("请确认接收 Carillon 告警".into());
        event.message = Some(format!(
            "{who}，您好：\n\nCarillon 将通过此渠道向您发送告警。请在 24 小时内打开以下链接确认（仅可使用一次）：\n\n{url}"
        ));
    } else {
        event.title = Some("Confirm your Carillon alerts".into());
        event.message = Some(format!(
            "Hello {who},\n\nCarillon will send alerts to you here. Open this link within 24 hours to confirm (it works once):\n\n{url}"
        ));
    }
    let result =
        match super::ingest::prepare_unfiltered(live, "carillon", &contact.workspace, event) {
            Ok(p) => state
                .outbox
                .enqueue(p.event, p.deliveries)
                .await
                .map_err(|e| e.to_string()),
            Err(e) => Err(e.to_string()),
        };
    match result {
        Ok(_) => {
            state.waker.wake();
            tracing::info!(contact = %name, method = index, "activation link sent");
        }
        Err(error) => {
            tracing::error!(contact = %name, method = index, %error, "cannot send an activation link")
        }
    }
}

/// `GET /v1/activate/{token}`: the link a contact opens.
pub async fn open(
    Extract(state): Extract<Arc<State>>,
    token: Result<Path<String>, PathRejection>,
) -> Response {
    let page = |status: StatusCode, title: &str, text: &str| {
        let html = format!(
            "<!doctype html><html lang=\"en\"><meta charset=\"utf-8\"><title>{title}</title>\
             <body style=\"font-family:sans-serif;max-width:36em;margin:4em auto\">\
             <h1>{title}</h1><p>{text}</p></body></html>"
        );
        (status, Html(html)).into_response()
    };
    let Ok(Path(token)) = token else {
        return page(
            StatusCode::NOT_FOUND,
            "Unknown link",
            "This link is not valid.",
        );
    };
    match state
        .store
        .activate_link(&token_hash(&token), now_ms(&state))
        .await
    {
        Ok(Ok(a)) => {
            refresh(&state).await;
            tracing::info!(contact = %a.contact, "contact method activated by its link");
            page(
                StatusCode::OK,
                "Activated · 已激活",
                "This channel now receives your alerts. · 此渠道将开始接收您的告警。",
            )
        }
        Ok(Err(LinkError::Expired)) => page(
            StatusCode::GONE,
            "Link expired · 链接已过期",
            "This activation link is older than 24 hours. Ask your Carillon admin to send a new one. · 激活链接已超过 24 小时，请联系管理员重新发送。",
        ),
        Ok(Err(LinkError::Unknown)) => page(
            StatusCode::NOT_FOUND,
            "Unknown link · 无效链接",
            "This link was used already, replaced by a newer one, or never sent. · 此链接已使用、已被新链接取代或不存在。",
        ),
        Err(error) => {
            tracing::error!(%error, "cannot read an activation link");
            page(
                StatusCode::INTERNAL_SERVER_ERROR,
                "Error",
                "Try again later.",
            )
        }
    }
}

/// The contact `name` of workspace `ws` the token sees, its method
/// `index` that delivers, and that method's fingerprint.
fn method_of(
    principal: &Principal,
    ws: &str,
    name: &str,
    index: &str,
) -> Result<(Contact, usize, String, String), ApiError> {
    let live = &principal.live;
    let not_found = || ApiError::NotFound(format!("no contact {name:?} in workspace {ws:?}"));
    let contact = live
        .config
        .contacts
        .get(name)
        .filter(|c| c.workspace == ws && principal.sees(ws))
        .ok_or_else(not_found)?;
    let index: usize = index.parse().map_err(|_| ApiError::InvalidParameter {
        name: "index",
        message: format!("{index:?} is not a method index"),
    })?;
    let method = contact
        .methods
        .get(index)
        .ok_or_else(|| ApiError::NotFound(format!("contact {name:?} has no method {index}")))?;
    match (method.destination(), method_key(&live.config, method)) {
        (Some(destination), Some(key)) => Ok((contact.clone(), index, destination.to_owned(), key)),
        _ => Err(ApiError::Conflict(format!(
            "method {index} of {name:?} delivers nothing (mobile numbers and user ids serve mentions) and needs no activation"
        ))),
    }
}

type MethodPath = Result<Path<(String, String, String)>, PathRejection>;

fn three(path: MethodPath) -> Result<(String, String, String), ApiError> {
    path.map(|Path(p)| p)
        .map_err(|e| ApiError::InvalidParameter {
            name: "path",
            message: e.body_text(),
        })
}

/// `POST /v1/workspaces/{ws}/contacts/{name}/methods/{index}/resend`: a new
/// link for a pending method (the old one stops working).
pub async fn resend(
    Extract(state): Extract<Arc<State>>,
    Extension(principal): Extension<Principal>,
    path: MethodPath,
) -> Result<Response, ApiError> {
    let (ws, name, index) = three(path)?;
    let (contact, index, destination, key) = method_of(&principal, &ws, &name, &index)?;
    let token = new_token().map_err(|e| ApiError::Internal(format!("no randomness: {e}")))?;
    let now = now_ms(&state);
    match state
        .store
        .resend(
            &name,
            &key,
            &token_hash(&token),
            now + LINK_VALIDITY_MS,
            now,
        )
        .await
    {
        Ok(()) => {}
        Err(StoreError::NotFound) => {
            return Err(ApiError::Conflict(format!(
                "method {index} of {name:?} is active already"
            )));
        }
        Err(e) => return Err(api_error(e, "the method")),
    }
    let live = state.live();
    send_link(&state, &live, &name, &contact, index, &destination, &token).await;
    refresh(&state).await;
    Ok((
        StatusCode::ACCEPTED,
        Json(state.activations.state(&destination)),
    )
        .into_response())
}

/// `POST /v1/workspaces/{ws}/contacts/{name}/methods/{index}/activate`: an
/// operator turns a pending method active without its link (audited).
pub async fn force(
    Extract(state): Extract<Arc<State>>,
    Extension(principal): Extension<Principal>,
    path: MethodPath,
) -> Result<Response, ApiError> {
    let (ws, name, index) = three(path)?;
    let (_, index, destination, key) = method_of(&principal, &ws, &name, &index)?;
    let actor = Actor {
        token: principal.token().name.clone(),
        role: principal.role().name().to_owned(),
    };
    match state
        .store
        .force_activate(&ws, &name, &key, index, &actor, now_ms(&state))
        .await
    {
        Ok(()) => {}
        Err(StoreError::Conflict { .. }) => {
            return Err(ApiError::Conflict(format!(
                "method {index} of {name:?} is active already"
            )));
        }
        Err(e) => return Err(api_error(e, "the method")),
    }
    refresh(&state).await;
    tracing::info!(contact = %name, method = index, token = %actor.token, "contact method activated by an admin");
    Ok(Json(state.activations.state(&destination)).into_response())
}
