//! The fleet's MQTT topics, one function per topic, and the targets documents name.
//!
//! ```text
//! shoal/v1/devices/<id>/desired    retained signed deployment for one device
//! shoal/v1/groups/<group>/desired  retained signed deployment for a group
//! shoal/v1/groups/<group>/previous retained: the group's desired before the current one
//! shoal/v1/devices/<id>/vars       retained signed variables of one device
//! shoal/v1/groups/<group>/vars     retained signed variables of a group
//! shoal/v1/devices/<id>/reported   retained JSON report of the agent
//! shoal/v1/devices/<id>/status     retained `online` / `offline` (the agent's last will)
//! ```
//! Ids are checked ([`check_id`]) before they go into a topic, so an id can never carry a
//! `/`, `+` or `#` and reach another device's topics or widen a subscription.

use std::fmt;
use std::str::FromStr;

/// Every fleet topic starts with this; the version lets a later protocol live beside.
pub const PREFIX: &str = "shoal/v1";

/// The longest device or group id.
pub const MAX_ID_LEN: usize = 64;

/// An id that cannot be a device or group id.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid {what} id `{id}`: ids are 1 to 64 letters, digits, `.`, `_` or `-`, starting with a letter or digit")]
pub struct InvalidId {
    pub what: &'static str,
    pub id: String,
}

/// Whether `id` matches `[A-Za-z0-9][A-Za-z0-9._-]{0,63}`.
pub fn is_valid_id(id: &str) -> bool {
    let mut bytes = id.bytes();
    match bytes.next() {
        Some(first) if first.is_ascii_alphanumeric() => {}
        _ => return false,
    }
    id.len() <= MAX_ID_LEN && bytes.all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
}

/// `id` if it is valid, else the error naming `what` it was meant to be (`device`, `group`).
pub fn check_id(what: &'static str, id: &str) -> Result<(), InvalidId> {
    if is_valid_id(id) {
        Ok(())
    } else {
        Err(InvalidId {
            what,
            id: id.to_owned(),
        })
    }
}

pub fn device_desired(id: &str) -> String {
    format!("{PREFIX}/devices/{id}/desired")
}

pub fn group_desired(group: &str) -> String {
    format!("{PREFIX}/groups/{group}/desired")
}

pub fn group_previous(group: &str) -> String {
    format!("{PREFIX}/groups/{group}/previous")
}

pub fn device_vars(id: &str) -> String {
    format!("{PREFIX}/devices/{id}/vars")
}

pub fn group_vars(group: &str) -> String {
    format!("{PREFIX}/groups/{group}/vars")
}

pub fn device_reported(id: &str) -> String {
    format!("{PREFIX}/devices/{id}/reported")
}

pub fn device_status(id: &str) -> String {
    format!("{PREFIX}/devices/{id}/status")
}

/// The agent's own marker topic (read and write, never retained). MQTT says nothing when
/// a subscription's retained messages are all sent, so after subscribing the agent
/// publishes a marker here: when it comes back, every retained document it is owed has
/// arrived, and a document topic that sent nothing was deleted while it was away.
pub fn device_sync(id: &str) -> String {
    format!("{PREFIX}/devices/{id}/sync")
}

/// Every device's report (for `fleet ls`): `shoal/v1/devices/+/reported`.
pub fn all_reported() -> String {
    format!("{PREFIX}/devices/+/reported")
}

/// Every device's status: `shoal/v1/devices/+/status`.
pub fn all_status() -> String {
    format!("{PREFIX}/devices/+/status")
}

/// The payload of the status topic while the agent is connected.
pub const ONLINE: &str = "online";
/// The status the broker publishes for the agent when its session ends uncleanly (the
/// last will), and the agent publishes itself before a clean disconnect.
pub const OFFLINE: &str = "offline";

/// Who a document is for: one device or one group. Written `device:<id>` / `group:<name>`
/// in documents and reports.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Target {
    Device(String),
    Group(String),
}

impl Target {
    /// A device target, checked.
    pub fn device(id: &str) -> Result<Self, InvalidId> {
        check_id("device", id)?;
        Ok(Target::Device(id.to_owned()))
    }

    /// A group target, checked.
    pub fn group(name: &str) -> Result<Self, InvalidId> {
        check_id("group", name)?;
        Ok(Target::Group(name.to_owned()))
    }

    /// The id or group name.
    pub fn id(&self) -> &str {
        match self {
            Target::Device(id) | Target::Group(id) => id,
        }
    }

    /// The target's desired-deployment topic.
    pub fn desired_topic(&self) -> String {
        match self {
            Target::Device(id) => device_desired(id),
            Target::Group(g) => group_desired(g),
        }
    }

    /// The target's variables topic.
    pub fn vars_topic(&self) -> String {
        match self {
            Target::Device(id) => device_vars(id),
            Target::Group(g) => group_vars(g),
        }
    }
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Target::Device(id) => write!(f, "device:{id}"),
            Target::Group(g) => write!(f, "group:{g}"),
        }
    }
}

/// Text that is not `device:<id>` or `group:<name>`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InvalidTarget {
    #[error("`{0}` is not a target: write `device:<id>` or `group:<name>`")]
    Form(String),
    #[error(transparent)]
    Id(#[from] InvalidId),
}

impl FromStr for Target {
    type Err = InvalidTarget;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        match text.split_once(':') {
            Some(("device", id)) => Ok(Target::device(id)?),
            Some(("group", name)) => Ok(Target::group(name)?),
            _ => Err(InvalidTarget::Form(text.to_owned())),
        }
    }
}

impl serde::Serialize for Target {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> serde::Deserialize<'de> for Target {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

/// What a fleet topic carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Channel {
    Desired,
    Previous,
    Vars,
    Reported,
    Status,
}

/// A fleet topic taken apart: whose it is and what it carries. `None` for anything else
/// (another prefix, an invalid id, a channel the target does not have).
pub fn parse(topic: &str) -> Option<(Target, Channel)> {
    let rest = topic.strip_prefix(PREFIX)?.strip_prefix('/')?;
    let mut parts = rest.split('/');
    let (kind, id, channel) = (parts.next()?, parts.next()?, parts.next()?);
    if parts.next().is_some() || !is_valid_id(id) {
        return None;
    }
    let target = match kind {
        "devices" => Target::Device(id.to_owned()),
        "groups" => Target::Group(id.to_owned()),
        _ => return None,
    };
    let channel = match (channel, &target) {
        ("desired", _) => Channel::Desired,
        ("vars", _) => Channel::Vars,
        ("previous", Target::Group(_)) => Channel::Previous,
        ("reported", Target::Device(_)) => Channel::Reported,
        ("status", Target::Device(_)) => Channel::Status,
        _ => return None,
    };
    Some((target, channel))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_cannot_reach_other_topics() {
        for good in ["a", "board-7", "line_3.cell", &"x".repeat(64)] {
            assert!(is_valid_id(good), "{good}");
        }
        for bad in ["", "-a", ".a", "a/b", "a+", "#", "a b", "ä", &"x".repeat(65)] {
            assert!(!is_valid_id(bad), "{bad}");
        }
        assert!(Target::device("a/b").is_err());
        assert!("group:+".parse::<Target>().is_err());
    }

    #[test]
    fn topics_round_trip() {
        assert_eq!(device_desired("d1"), "shoal/v1/devices/d1/desired");
        assert_eq!(group_previous("g"), "shoal/v1/groups/g/previous");
        let t: Target = "group:line-3".parse().unwrap();
        assert_eq!(t.to_string(), "group:line-3");
        assert_eq!(parse(&t.desired_topic()), Some((t.clone(), Channel::Desired)));
        assert_eq!(parse(&t.vars_topic()), Some((t, Channel::Vars)));
        assert_eq!(
            parse(&device_status("d")),
            Some((Target::Device("d".into()), Channel::Status))
        );
        assert_eq!(parse("shoal/v1/groups/g/reported"), None);
        assert_eq!(parse("shoal/v1/devices/d/desired/x"), None);
        assert_eq!(parse("shoal/v2/devices/d/desired"), None);
        assert!("box:1".parse::<Target>().is_err());
    }
}
