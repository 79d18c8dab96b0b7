//! The CLI's changes to a running broker through the management API: `warren purge`,
//! `warren delete`, `warren redrive`.

use serde_json::Value;

use crate::api_client::{ApiClient, segment};

/// What `warren delete` deletes.
#[derive(clap::ValueEnum, Clone, Copy, Debug)]
pub enum Deletable {
    /// A queue, with its messages.
    Queue,
    /// An exchange, with its bindings.
    Exchange,
}

/// `warren purge QUEUE`: removes its ready messages.
pub async fn purge(api: &ApiClient, vhost: &str, queue: &str) -> Result<String, String> {
    let path = format!("/api/queues/{}/{}/contents", segment(vhost), segment(queue));
    let done = api.delete(&path).await?;
    Ok(format!(
        "purged {} from queue '{queue}'\n",
        messages(count(&done["message_count"]))
    ))
}

/// `warren delete queue|exchange NAME`.
pub async fn delete(
    api: &ApiClient,
    vhost: &str,
    what: Deletable,
    name: &str,
    if_empty: bool,
    if_unused: bool,
) -> Result<String, String> {
    let mut query = Vec::new();
    if if_empty {
        query.push("if-empty=true");
    }
    if if_unused {
        query.push("if-unused=true");
    }
    let query = if query.is_empty() {
        String::new()
    } else {
        format!("?{}", query.join("&"))
    };
    let (kind, plural) = match what {
        Deletable::Queue => ("queue", "queues"),
        Deletable::Exchange => ("exchange", "exchanges"),
    };
    let path = format!("/api/{plural}/{}/{}{query}", segment(vhost), segment(name));
    let done = api.delete(&path).await?;
    Ok(match what {
        Deletable::Queue => format!(
            "deleted {kind} '{name}' ({})\n",
            messages(count(&done["message_count"]))
        ),
        Deletable::Exchange => format!("deleted {kind} '{name}'\n"),
    })
}

/// `warren redrive DLQ`: dead-lettered messages back to the queues they died in.
pub async fn redrive(api: &ApiClient, vhost: &str, queue: &str) -> Result<String, String> {
    let path = format!("/api/queues/{}/{}/redrive", segment(vhost), segment(queue));
    let done = api.post(&path, &Value::Null).await?;
    let to: Vec<String> = done["to"]
        .as_object()
        .into_iter()
        .flatten()
        .map(|(queue, n)| format!("{} to '{queue}'", count(n)))
        .collect();
    let mut out = format!("moved {}", messages(count(&done["moved"])));
    if !to.is_empty() {
        out.push_str(&format!(" ({})", to.join(", ")));
    }
    let kept = count(&done["kept"]);
    if kept > 0 {
        out.push_str(&format!(
            "; kept {} in '{queue}' (never dead-lettered, or their queue is gone)",
            messages(kept)
        ));
    }
    out.push('\n');
    Ok(out)
}

fn count(value: &Value) -> u64 {
    value.as_u64().unwrap_or(0)
}

fn messages(n: u64) -> String {
    if n == 1 {
        "1 message".into()
    } else {
        format!("{n} messages")
    }
}
