//! The control protocol: JSON lines over the project's Unix socket.
//!
//! A client connects, writes **one request line** and reads reply lines until the server
//! closes the connection (or, for `follow` requests, until the client hangs up):
//!
//! ```text
//! -> {"v":1,"cmd":"ps"}
//! <- {"ok":[{"name":"collector","state":"running",...}]}
//! -> {"v":1,"cmd":"logs","follow":true,"tail":10}
//! <- {"log":{"time":1764370000.1,"container":"collector","stream":"stdout","text":"..."}}
//! <- {"missed":12}                        (a slow follower skipped 12 lines)
//! -> {"v":1,"cmd":"stop","names":["collector"]}
//! <- {"ok":[{"name":"collector","result":"exited with code 0"}]}
//! <- {"error":"no container named `x` in this stack"}
//! ```
//!
//! `v` is [`VERSION`]; a server refuses any other with an error naming both versions, so
//! an old client against a new server fails loudly instead of misreading replies. New
//! optional fields may be added within a version; removing or changing one bumps it.

use serde::{Deserialize, Serialize};

use crate::logs::LogLine;
use crate::supervisor::Event;

/// Protocol version spoken by this build.
pub const VERSION: u32 = 1;
/// Longest request line accepted.
pub const MAX_REQUEST: usize = 64 * 1024;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Envelope {
    pub v: u32,
    #[serde(flatten)]
    pub request: Request,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "cmd", rename_all = "kebab-case")]
pub enum Request {
    /// Project name, compose file, pid, version.
    Info,
    Ps,
    Stats,
    Logs {
        #[serde(default)]
        follow: bool,
        /// Last N lines per container.
        #[serde(default)]
        tail: Option<usize>,
        /// Only lines at or after this time (seconds since the Unix epoch).
        #[serde(default)]
        since: Option<f64>,
        #[serde(default)]
        names: Vec<String>,
    },
    Events {
        #[serde(default)]
        follow: bool,
    },
    Stop {
        names: Vec<String>,
    },
    Start {
        names: Vec<String>,
    },
    Restart {
        names: Vec<String>,
    },
    Kill {
        names: Vec<String>,
    },
    Pause {
        names: Vec<String>,
    },
    Unpause {
        names: Vec<String>,
    },
    /// Re-read the compose file and apply the difference (what `up -d` on a running
    /// project does).
    Reload,
    /// Stop everything, report the memory, and end the `up` process.
    Down,
    /// Messages under a topic prefix as they flow.
    TopicsTail {
        prefix: String,
    },
}

impl Request {
    /// Requests that change the stack go through the controller, one at a time.
    pub fn is_mutation(&self) -> bool {
        matches!(
            self,
            Request::Stop { .. }
                | Request::Start { .. }
                | Request::Restart { .. }
                | Request::Kill { .. }
                | Request::Pause { .. }
                | Request::Unpause { .. }
                | Request::Reload
                | Request::Down
        )
    }
}

/// One reply line.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Reply {
    Ok(serde_json::Value),
    Error(String),
    Log(LogLine),
    Event(Event),
    Message(TopicMessage),
    /// A follower fell behind and this many items were skipped.
    Missed(u64),
}

/// A message seen by `topics tail`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TopicMessage {
    pub time: f64,
    pub topic: String,
    pub content_type: String,
    /// The payload as text when it is UTF-8, else `None` (see `hex`).
    pub text: Option<String>,
    /// The payload in hex when it is not UTF-8.
    pub hex: Option<String>,
    pub bytes: usize,
}

/// What `info` returns.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Info {
    pub project: String,
    pub file: std::path::PathBuf,
    pub pid: u32,
    pub version: String,
    pub protocol: u32,
    pub started_at: f64,
    pub containers: usize,
    pub watching: bool,
}

/// Result of a lifecycle verb for one container.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct VerbResult {
    pub name: String,
    /// What happened (`stopped: exited with code 0`), or why nothing did.
    pub result: String,
    pub ok: bool,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_round_trip_and_are_versioned() {
        let line = r#"{"v":1,"cmd":"logs","follow":true,"tail":5}"#;
        let env: Envelope = serde_json::from_str(line).expect("parse");
        assert_eq!(env.v, 1);
        assert_eq!(
            env.request,
            Request::Logs {
                follow: true,
                tail: Some(5),
                since: None,
                names: vec![]
            }
        );
        let back = serde_json::to_string(&Envelope {
            v: VERSION,
            request: Request::Stop {
                names: vec!["a".into()],
            },
        })
        .expect("json");
        assert_eq!(back, r#"{"v":1,"cmd":"stop","names":["a"]}"#);
        let reply = serde_json::to_string(&Reply::Error("x".into())).expect("json");
        assert_eq!(reply, r#"{"error":"x"}"#);
    }
}
