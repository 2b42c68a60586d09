//! `quota = { max = 20, per = "1h" }` on a contact or a route (see
//! [`crate::quota`]): checked here, where durations are read.

use crate::problem::{Findings, KeyPath};
use crate::quota::{MAX_PER_WINDOW, MAX_WINDOW, MIN_WINDOW, Quota, RawQuota};

/// `raw` checked; every problem at `path.max` / `path.per`.
pub(super) fn check(raw: &RawQuota, path: &KeyPath, f: &mut Findings) -> Option<Quota> {
    let max = match u32::try_from(raw.max) {
        Ok(n) if n >= 1 && i64::from(n) <= MAX_PER_WINDOW => Some(n),
        _ => {
            f.add(
                &path.key("max"),
                format!(
                    "must be from 1 to {MAX_PER_WINDOW} alerts per window, not {}",
                    raw.max
                ),
            );
            None
        }
    };
    let per = match super::timeouts::parse_duration_text(&raw.per) {
        Ok(d) if (MIN_WINDOW..=MAX_WINDOW).contains(&d) => Some(d),
        Ok(d) => {
            f.add(
                &path.key("per"),
                format!(
                    "is {}s; a quota's window is from 1 minute to 7 days",
                    d.as_secs()
                ),
            );
            None
        }
        Err(e) => {
            f.add(&path.key("per"), e);
            None
        }
    };
    Some(Quota {
        max: max?,
        per: per?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_quota_names_each_bad_key() {
        let mut f = Findings::default();
        let p = KeyPath::root().key("contacts").key("a").key("quota");
        let ok = check(
            &RawQuota {
                max: 20,
                per: "1h".into(),
            },
            &p,
            &mut f,
        );
        assert_eq!(ok.map(|q| (q.max, q.per.as_secs())), Some((20, 3600)));
        for (max, per, key) in [
            (0, "1h", "contacts.a.quota.max"),
            (-3, "1h", "contacts.a.quota.max"),
            (5, "soon", "contacts.a.quota.per"),
            (5, "10s", "contacts.a.quota.per"),
            (5, "30d", "contacts.a.quota.per"),
        ] {
            let mut f = Findings::default();
            let q = check(
                &RawQuota {
                    max,
                    per: per.into(),
                },
                &p,
                &mut f,
            );
            assert!(q.is_none());
            let problems: Vec<(String, String)> =
                f.drain().map(|(p, m)| (p.to_string(), m)).collect();
            assert!(
                problems.iter().any(|(p, _)| p == key),
                "{max} {per}: {problems:?}"
            );
        }
    }
}
