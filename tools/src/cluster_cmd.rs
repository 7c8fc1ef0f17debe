//! `wse cluster ...`: look at a running cluster through a node's peer port.

use std::time::Duration;

use serde_json::Value;

use crate::error::CliError;

subcommands! {
    /// The `wse cluster` subcommands.
    pub enum ClusterCommand {
        /// Members, and per shard the leader, term, last log and applied
        /// index, and on the leader how far each follower lags.
        Status(StatusArgs),
    }
}

/// Arguments of `wse cluster status`.
#[derive(Debug, clap::Args)]
pub struct StatusArgs {
    /// A node's peer address (its --cluster-listen), host:port.
    #[arg(value_name = "PEER_ADDR")]
    addr: String,
    /// Print the node's answer as JSON.
    #[arg(long)]
    json: bool,
    /// Seconds to wait for the answer.
    #[arg(long, default_value_t = 5)]
    timeout: u64,
}

impl crate::Run for StatusArgs {
    fn run(self) -> Result<u8, CliError> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| CliError::io("start the runtime", e))?;
        let options = wse_replication::net::NetOptions::default();
        let timeout = Duration::from_secs(self.timeout);
        let status = runtime
            .block_on(wse_replication::net::query_status(
                &self.addr, &options, timeout,
            ))
            .map_err(|e| CliError::Usage(format!("cluster status from {}: {e}", self.addr)))?;
        if self.json {
            println!("{status}");
        } else {
            print!("{}", render(&status));
        }
        Ok(0)
    }
}

/// The status as a table for people.
fn render(status: &Value) -> String {
    let mut out = format!("node {}\n", status["node_id"]);
    if let Some(members) = status["members"].as_object() {
        let list: Vec<String> = members
            .iter()
            .map(|(id, addr)| format!("{id}={}", addr.as_str().unwrap_or("?")))
            .collect();
        out.push_str(&format!("members {}\n", list.join(",")));
    }
    out.push_str("shard  state      leader  term  last_index  applied  lag\n");
    for s in status["shards"].as_array().into_iter().flatten() {
        let lag = s["lag"].as_object().map_or_else(
            || "-".to_owned(),
            |l| {
                let parts: Vec<String> = l.iter().map(|(id, n)| format!("{id}:{n}")).collect();
                parts.join(",")
            },
        );
        let cell = |v: &Value| {
            if v.is_null() {
                "-".to_owned()
            } else {
                v.to_string()
            }
        };
        out.push_str(&format!(
            "{:<6} {:<10} {:<7} {:<5} {:<11} {:<8} {lag}\n",
            s["shard"].to_string(),
            s["state"].as_str().unwrap_or("?"),
            cell(&s["leader"]),
            cell(&s["term"]),
            cell(&s["last_log_index"]),
            cell(&s["applied"]),
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_table_shows_every_shard_and_follower_lag() {
        let status = serde_json::json!({"node_id": 1, "members": {"1": "a:1", "2": "b:2"},
            "shards": [{"shard": 0, "state": "leader", "leader": 1, "term": 3,
                        "last_log_index": 10, "applied": 10, "lag": {"2": 4}},
                       {"shard": 1, "state": "follower", "leader": null, "term": 2,
                        "last_log_index": 5, "applied": 5, "lag": null}]});
        let text = render(&status);
        assert!(text.contains("members 1=a:1,2=b:2"), "{text}");
        assert!(
            text.lines()
                .any(|l| l.starts_with("0 ") && l.ends_with("2:4")),
            "{text}"
        );
        assert!(
            text.lines()
                .any(|l| l.starts_with("1 ") && l.contains("follower") && l.ends_with('-')),
            "{text}"
        );
    }
}
