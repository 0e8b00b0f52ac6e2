//! `restart:` policies, with Docker's spellings recognised.

use super::Ctx;
use crate::diagnostic::did_you_mean_hint;
use crate::model::RestartPolicy;
use crate::node::Pos;

pub(super) fn parse_restart(s: &str, pos: Pos, key: &str, ctx: &mut Ctx) -> Option<RestartPolicy> {
    match s {
        "no" => Some(RestartPolicy::No),
        "always" => Some(RestartPolicy::Always),
        "on-failure" => Some(RestartPolicy::OnFailure { max_retries: None }),
        // Docker's `unless-stopped` differs from `always` only across daemon restarts, which
        // shoal does not have; refusing it (rather than silently aliasing) keeps files honest.
        "unless-stopped" => {
            ctx.error(
                pos,
                key,
                "`restart: unless-stopped` is not supported: shoal has no daemon that outlives the stack",
                Some("use `restart: always`".into()),
            );
            None
        }
        _ => {
            if let Some(n) = s.strip_prefix("on-failure:") {
                match n.trim().parse::<u32>() {
                    Ok(n) => return Some(RestartPolicy::OnFailure { max_retries: Some(n) }),
                    Err(_) => {
                        ctx.error(
                            pos,
                            key,
                            format!("invalid retry count in `restart: {s}`"),
                            Some("write `on-failure:N` with N a whole number, e.g. `on-failure:5`".into()),
                        );
                        return None;
                    }
                }
            }
            let hint = did_you_mean_hint(s, ["no", "always", "on-failure"])
                .or(Some("use `no`, `on-failure`, `on-failure:N` or `always`".into()));
            ctx.error(pos, key, format!("unknown restart policy `{s}`"), hint);
            None
        }
    }
}
