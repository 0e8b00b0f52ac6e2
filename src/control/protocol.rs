//! The control protocol's framing: JSON lines over the project's Unix socket.
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
//!
//! The commands themselves (their payloads, replies, handling and printing) live one per
//! file in [`super::cmd`]; this file holds only what every conversation shares.

use serde::{Deserialize, Serialize};

pub use super::cmd::Request;
use super::cmd::{events::Event, logs::Line, topics::TopicMessage};

/// Protocol version spoken by this build.
pub const VERSION: u32 = 1;
/// Longest request line accepted.
pub const MAX_REQUEST: usize = 64 * 1024;

/// The request line: the version beside the command's own fields.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Envelope {
    pub v: u32,
    #[serde(flatten)]
    pub request: Request,
}

/// One reply line.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Reply {
    Ok(serde_json::Value),
    Error(String),
    Log(Line),
    Event(Event),
    Message(TopicMessage),
    /// A follower fell behind and this many items were skipped.
    Missed(u64),
}

impl Reply {
    /// The `ok` line carrying `value`: the one place a typed reply becomes JSON, so the
    /// server and the controller cannot disagree on how an encoding failure reads.
    pub fn ok<T: Serialize>(value: &T) -> Reply {
        match serde_json::to_value(value) {
            Ok(value) => Reply::Ok(value),
            Err(e) => Reply::Error(format!("cannot encode the reply: {e}")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::cmd::{events::EventsRequest, logs::LogsRequest, topics::TailRequest};
    use super::*;

    fn round_trip(request: Request, line: &str) {
        let text = serde_json::to_string(&Envelope {
            v: VERSION,
            request: request.clone(),
        })
        .expect("json");
        assert_eq!(text, line, "the bytes on the wire are unchanged");
        let back: Envelope = serde_json::from_str(line).expect("parse");
        assert_eq!(back.request, request);
    }

    #[test]
    fn requests_round_trip_and_are_versioned() {
        let line = r#"{"v":1,"cmd":"logs","follow":true,"tail":5}"#;
        let env: Envelope = serde_json::from_str(line).expect("parse");
        assert_eq!(env.v, 1);
        assert_eq!(
            env.request,
            Request::Logs(LogsRequest {
                follow: true,
                tail: Some(5),
                since: None,
                names: vec![]
            })
        );
        let reply = serde_json::to_string(&Reply::Error("x".into())).expect("json");
        assert_eq!(reply, r#"{"error":"x"}"#);
    }

    #[test]
    fn every_request_keeps_its_wire_form() {
        round_trip(Request::Info, r#"{"v":1,"cmd":"info"}"#);
        round_trip(Request::Ps, r#"{"v":1,"cmd":"ps"}"#);
        round_trip(Request::Stats, r#"{"v":1,"cmd":"stats"}"#);
        round_trip(
            Request::Logs(LogsRequest {
                follow: false,
                tail: None,
                since: Some(1.5),
                names: vec!["a".into()],
            }),
            r#"{"v":1,"cmd":"logs","follow":false,"tail":null,"since":1.5,"names":["a"]}"#,
        );
        round_trip(
            Request::Events(EventsRequest { follow: true }),
            r#"{"v":1,"cmd":"events","follow":true}"#,
        );
        round_trip(
            Request::Stop {
                names: vec!["a".into()],
                timeout: None,
            },
            r#"{"v":1,"cmd":"stop","names":["a"]}"#,
        );
        round_trip(
            Request::Stop {
                names: vec![],
                timeout: Some(0),
            },
            r#"{"v":1,"cmd":"stop","names":[],"timeout":0}"#,
        );
        round_trip(
            Request::Unpause { names: vec![] },
            r#"{"v":1,"cmd":"unpause","names":[]}"#,
        );
        round_trip(Request::Reload { files: vec![] }, r#"{"v":1,"cmd":"reload"}"#);
        round_trip(
            Request::Reload {
                files: vec!["/a/shoal.yaml".into()],
            },
            r#"{"v":1,"cmd":"reload","files":["/a/shoal.yaml"]}"#,
        );
        round_trip(Request::Down { timeout: None }, r#"{"v":1,"cmd":"down"}"#);
        round_trip(
            Request::Down { timeout: Some(3) },
            r#"{"v":1,"cmd":"down","timeout":3}"#,
        );
        round_trip(
            Request::TopicsTail(TailRequest {
                prefix: "sensors/".into(),
            }),
            r#"{"v":1,"cmd":"topics-tail","prefix":"sensors/"}"#,
        );
        // Fields a client may leave out still default.
        let env: Envelope = serde_json::from_str(r#"{"v":1,"cmd":"events"}"#).expect("parse");
        assert_eq!(env.request, Request::Events(EventsRequest { follow: false }));
    }

    #[test]
    fn ok_wraps_a_typed_value() {
        assert_eq!(Reply::ok(&vec![1, 2]), Reply::Ok(serde_json::json!([1, 2])));
    }
}
