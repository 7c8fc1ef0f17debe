//! First contact: handshake, hello, subscribe, broadcast, receive.

mod support;

use serde_json::json;
use support::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_subscribes_and_receives_a_stamped_broadcast() {
    let ts = TestServer::start(standalone());
    let mut c = ts.client().await;
    let ready = c.expect_type("server_ready").await;
    assert_eq!(ready["p"]["details"]["features"]["recovery"], true);
    c.send_json(&json!({"c":"WSE","t":"client_hello","p":{"protocol_version":1}}))
        .await;
    let hello = c.expect_type("server_hello").await;
    assert_eq!(hello["p"]["protocol_version"], 1);
    let reply = c.subscribe(&["chat"], None).await;
    assert_eq!(reply["p"]["success_topics"], json!(["chat"]));
    ts.server
        .broadcast_local("chat", r#"{"t":"chat_message","p":{"text":"hi"}}"#)
        .unwrap();
    let m = c.expect_type("chat_message").await;
    assert_eq!(m["tp"], "chat");
    assert_eq!(m["o"], 0);
    assert_eq!(m["c"], "U");
    assert_eq!(m["e"].as_str().unwrap().len(), 8);
}
