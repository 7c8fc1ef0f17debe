//! `wse cluster ...`: look at a running cluster, and change its
//! membership, through a node's peer port.

use std::time::Duration;

use serde_json::Value;
use wse_replication::membership::{self, MembershipChange, MembershipError, Report};
use wse_replication::net::NetOptions;

use crate::error::CliError;

subcommands! {
    /// The `wse cluster` subcommands.
    pub enum ClusterCommand {
        /// Members, and per shard the leader, term, last log and applied
        /// index, and on the leader how far each follower lags.
        Status(StatusArgs),
        /// Make a running node (started to join: see docs/OPERATIONS.md)
        /// a voter of every shard: a learner first, until it caught up
        /// from the Raft log. Idempotent.
        AddNode(AddNodeArgs),
        /// Take a node out of every shard's membership (a leader steps
        /// down first). Idempotent.
        RemoveNode(RemoveNodeArgs),
        /// Disaster recovery, on a STOPPED node whose shards lost their
        /// majority for good: make `--members` (this node included) every
        /// shard's membership, in a new term this node leads, and start a
        /// new epoch for every topic (clients holding old positions get
        /// not-recovered). Run it on the survivor with the longest log;
        /// never restart the lost nodes on their old data.
        ForceMembership(ForceMembershipArgs),
    }
}

/// Arguments of `wse cluster force-membership`.
#[derive(Debug, clap::Args)]
pub struct ForceMembershipArgs {
    /// The stopped node's data directory (its --data-dir).
    #[arg(long, value_name = "DIR")]
    data_dir: std::path::PathBuf,
    /// The node's id (its --node-id).
    #[arg(long)]
    node_id: u64,
    /// The new voters, id=host:port,... (their peer addresses), this node
    /// included.
    #[arg(long, value_name = "ID=HOST:PORT,...")]
    members: String,
}

impl crate::Run for ForceMembershipArgs {
    fn run(self) -> Result<u8, CliError> {
        let members = wse::config::ClusterConfig::parse_peers(&self.members)
            .map_err(|e| CliError::Usage(e.to_string()))?;
        let members = members
            .into_iter()
            .map(|(id, addr)| (id, openraft_node(addr)))
            .collect();
        if !self.data_dir.join("cluster").is_dir() {
            let dir = self.data_dir.display();
            return Err(CliError::Usage(format!("{dir} holds no cluster shards")));
        }
        // Refuses a directory a running server holds (its lock).
        let log = wse_log::Log::open(&self.data_dir, wse_log::LogConfig::default())?;
        log.close()?;
        drop(log);
        let forced = wse_replication::force::force_node(&self.data_dir, self.node_id, &members)
            .map_err(|e| CliError::Usage(format!("force-membership: {e}")))?;
        for f in &forced {
            println!(
                "shard {}: membership forced at {}, topics deleted at {} (each starts a new epoch when written next)",
                f.shard, f.membership, f.new_epoch
            );
        }
        println!(
            "start the node again: it leads every shard; add replacement nodes with `wse cluster add-node`"
        );
        Ok(0)
    }
}

/// A member as the Raft membership stores it.
fn openraft_node(addr: String) -> wse_replication::membership::Node {
    wse_replication::membership::Node::new(addr)
}

/// Arguments of `wse cluster add-node`.
#[derive(Debug, clap::Args)]
pub struct AddNodeArgs {
    /// Any member's peer address (its --cluster-listen), host:port; it
    /// sends each shard's change to that shard's leader.
    #[arg(long, value_name = "PEER_ADDR")]
    peer: String,
    /// The new node's id (its --node-id).
    #[arg(long)]
    id: u64,
    /// The new node's peer address (its --cluster-listen), host:port.
    #[arg(long, value_name = "HOST:PORT")]
    addr: String,
    /// Seconds the shards may take (the new node catches up meanwhile).
    #[arg(long, default_value_t = 60)]
    timeout: u64,
}

/// Arguments of `wse cluster remove-node`.
#[derive(Debug, clap::Args)]
pub struct RemoveNodeArgs {
    /// Any member's peer address (its --cluster-listen), host:port.
    #[arg(long, value_name = "PEER_ADDR")]
    peer: String,
    /// The id of the node to remove.
    #[arg(long)]
    id: u64,
    /// Seconds the shards may take.
    #[arg(long, default_value_t = 60)]
    timeout: u64,
}

impl crate::Run for AddNodeArgs {
    fn run(self) -> Result<u8, CliError> {
        let change = MembershipChange::Add {
            id: self.id,
            addr: self.addr,
        };
        change_membership(&self.peer, change, self.timeout)
    }
}

impl crate::Run for RemoveNodeArgs {
    fn run(self) -> Result<u8, CliError> {
        change_membership(
            &self.peer,
            MembershipChange::Remove { id: self.id },
            self.timeout,
        )
    }
}

/// Ask the node at `peer` to apply `change` to every shard; print what
/// each shard did. Exit 0 when every shard is done, 1 when some failed
/// (listed; the others are done: run the command again).
fn change_membership(peer: &str, change: MembershipChange, timeout: u64) -> Result<u8, CliError> {
    let runtime = runtime()?;
    let options = NetOptions::default();
    let timeout = Duration::from_secs(timeout);
    let answer = runtime.block_on(membership::request_change(peer, change, &options, timeout));
    match answer {
        Ok(report) => {
            print!("{}", render_report(&report));
            Ok(0)
        }
        Err(MembershipError::Shards { failed, done }) => {
            print!("{}", render_report(&done));
            for (shard, why) in &failed {
                eprintln!("shard {shard}: failed: {why}");
            }
            eprintln!(
                "{} shard(s) failed; the change is idempotent: run it again",
                failed.len()
            );
            Ok(1)
        }
        Err(e) => Err(CliError::Usage(format!(
            "membership change via {peer}: {e}"
        ))),
    }
}

/// Which shards changed and which already were as asked.
fn render_report(report: &Report) -> String {
    let list = |v: &[u32]| {
        if v.is_empty() {
            "-".to_owned()
        } else {
            v.iter().map(u32::to_string).collect::<Vec<_>>().join(",")
        }
    };
    format!(
        "changed shards: {}\nunchanged shards: {}\n",
        list(&report.changed),
        list(&report.unchanged)
    )
}

/// A runtime for one request.
fn runtime() -> Result<tokio::runtime::Runtime, CliError> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| CliError::io("start the runtime", e))
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
        let runtime = runtime()?;
        let options = NetOptions::default();
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
    out.push_str("shard  state      leader  term  last_index  applied  voters    learners  lag\n");
    for s in status["shards"].as_array().into_iter().flatten() {
        // Per follower: entries behind, and for how long (`2:40/1.5s`).
        let lag = s["lag"].as_object().map_or_else(
            || "-".to_owned(),
            |l| {
                let parts: Vec<String> = l
                    .iter()
                    .map(|(id, n)| match s["lag_millis"][id].as_u64() {
                        Some(ms) => format!("{id}:{n}/{:.1}s", ms as f64 / 1000.0),
                        None => format!("{id}:{n}"),
                    })
                    .collect();
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
        let ids = |v: &Value| {
            let ids: Vec<String> = v
                .as_array()
                .into_iter()
                .flatten()
                .map(Value::to_string)
                .collect();
            if ids.is_empty() {
                "-".to_owned()
            } else {
                ids.join(",")
            }
        };
        out.push_str(&format!(
            "{:<6} {:<10} {:<7} {:<5} {:<11} {:<8} {:<9} {:<9} {lag}\n",
            s["shard"].to_string(),
            s["state"].as_str().unwrap_or("?"),
            cell(&s["leader"]),
            cell(&s["term"]),
            cell(&s["last_log_index"]),
            cell(&s["applied"]),
            ids(&s["voters"]),
            ids(&s["learners"]),
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_report_lists_changed_and_unchanged_shards() {
        let report = Report {
            changed: vec![0, 2],
            unchanged: vec![],
        };
        assert_eq!(
            render_report(&report),
            "changed shards: 0,2\nunchanged shards: -\n"
        );
    }

    #[test]
    fn the_table_shows_every_shard_and_follower_lag() {
        let status = serde_json::json!({"node_id": 1, "members": {"1": "a:1", "2": "b:2"},
            "shards": [{"shard": 0, "state": "leader", "leader": 1, "term": 3,
                        "last_log_index": 10, "applied": 10, "lag": {"2": 4},
                        "lag_millis": {"2": 1500},
                        "voters": [1, 2], "learners": [3]},
                       {"shard": 1, "state": "follower", "leader": null, "term": 2,
                        "last_log_index": 5, "applied": 5, "lag": null}]});
        let text = render(&status);
        assert!(text.contains("members 1=a:1,2=b:2"), "{text}");
        assert!(
            text.lines().any(|l| l.starts_with("0 ")
                && l.contains(" 1,2 ")
                && l.contains(" 3 ")
                && l.ends_with("2:4/1.5s")),
            "{text}"
        );
        assert!(
            text.lines()
                .any(|l| l.starts_with("1 ") && l.contains("follower") && l.ends_with('-')),
            "{text}"
        );
    }
}
