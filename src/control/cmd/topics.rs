//! `topics tail`: the broker's messages under a prefix, as they flow.

use std::process::ExitCode;

use serde::{Deserialize, Serialize};

use super::print::{print_stream, rfc3339};
use super::Request;
use crate::broker::Message;
use crate::control::protocol::Reply;
use crate::control::server::{Connection, ServerContext};
use crate::control::{Client, ControlError, OutputFormat, ProjectArgs};

/// Messages a `topics tail` may have queued before the oldest are dropped.
const TAIL_QUEUE: usize = 1024;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TailRequest {
    /// Topic prefix, as a subscription takes it.
    pub prefix: String,
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
    /// Where the message entered the stack: `local` (a container or shoal) or `bridge`
    /// (imported from an external broker).
    #[serde(default)]
    pub origin: String,
    /// Who published it: the container's name, `bridge:NAME` for a bridge's imports, or
    /// `shoal`. Empty from a server that predates the field.
    #[serde(default)]
    pub publisher: String,
}

impl TopicMessage {
    /// `message` as seen now.
    fn seen(message: &Message) -> Self {
        let payload = message.payload();
        let text = std::str::from_utf8(payload).ok().map(str::to_owned);
        TopicMessage {
            time: crate::procstat::unix_now(),
            topic: message.topic().to_owned(),
            content_type: message.content_type().to_owned(),
            hex: text.is_none().then(|| hex::encode(payload)),
            text,
            bytes: payload.len(),
            origin: match message.origin {
                crate::broker::Origin::Local => "local".to_owned(),
                crate::broker::Origin::Bridge => "bridge".to_owned(),
            },
            publisher: message.publisher().to_owned(),
        }
    }
}

/// The text line `topics tail` prints: `TIME [PUBLISHER] TOPIC [CONTENT TYPE] BODY`.
impl std::fmt::Display for TopicMessage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} ", rfc3339(self.time))?;
        if !self.publisher.is_empty() {
            write!(f, "[{}] ", self.publisher)?;
        }
        write!(f, "{} [{}] ", self.topic, self.content_type)?;
        match (&self.text, &self.hex) {
            (Some(text), _) => f.write_str(text),
            (None, Some(hex)) => write!(f, "0x{hex}"),
            _ => Ok(()),
        }
    }
}

/// Subscribe a mailbox of its own to the prefix and forward what arrives; when it
/// overflows, say how many were dropped instead of holding the broker up.
pub(super) async fn serve(request: TailRequest, conn: &mut Connection, context: &ServerContext) {
    let mailbox = context.broker.mailbox(TAIL_QUEUE);
    mailbox.subscribe(&request.prefix);
    let signal = mailbox.signal();
    let mut reported_drops = 0;
    loop {
        while let Some(message) = mailbox.try_recv() {
            if !conn.send(&Reply::Message(TopicMessage::seen(&message))).await {
                return;
            }
        }
        if mailbox.dropped() > reported_drops {
            let missed = mailbox.dropped() - reported_drops;
            reported_drops = mailbox.dropped();
            if !conn.send(&Reply::Missed(missed)).await {
                return;
            }
        }
        signal.wait().await;
    }
}

/// `shoal topics tail`: one line per message, its publisher in brackets, the payload as
/// text or `0x` hex.
pub fn print(client: &Client, prefix: String, json: bool) -> Result<ExitCode, ControlError> {
    let request = Request::TopicsTail(TailRequest { prefix });
    print_stream(client, request, "messages", json, |reply| match reply {
        Reply::Message(message) => Some(message),
        _ => None,
    })
}

/// `shoal topics`'s arguments.
#[derive(clap::Args, Debug)]
pub struct TopicsArgs {
    #[command(subcommand)]
    pub command: TopicsCommand,
}

#[derive(clap::Subcommand, Debug)]
pub enum TopicsCommand {
    /// Print messages under a topic prefix as they are published
    Tail {
        #[command(flatten)]
        project: ProjectArgs,
        /// Topic prefix ('' for all)
        prefix: String,
        /// `json`: one object per message (time, topic, content_type, text or hex, bytes, origin, publisher)
        #[arg(long, value_enum, default_value = "table")]
        format: OutputFormat,
    },
}

pub fn run(args: TopicsArgs) -> anyhow::Result<ExitCode> {
    match args.command {
        TopicsCommand::Tail {
            project,
            prefix,
            format,
        } => Ok(print(&project.client()?, prefix, format == OutputFormat::Json)?),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_tail_line_names_the_publisher_and_shows_binary_payloads_in_hex() {
        let mut message = TopicMessage {
            time: 1_795_860_000.25,
            topic: "seq/1".into(),
            content_type: "text/plain".into(),
            text: Some("hello".into()),
            hex: None,
            bytes: 5,
            origin: "local".into(),
            publisher: "sensor".into(),
        };
        assert_eq!(
            message.to_string(),
            "2026-11-28T10:00:00.250Z [sensor] seq/1 [text/plain] hello"
        );
        message.publisher.clear();
        message.text = None;
        message.hex = Some("00ff".into());
        assert_eq!(
            message.to_string(),
            "2026-11-28T10:00:00.250Z seq/1 [text/plain] 0x00ff"
        );
    }
}
