//! The harness cleans up after itself: dropping a cluster — what unwinding from a failed
//! assertion does — kills every node, a paused one too, and drops the test's database.

use crate::harness::*;
use std::path::Path;
use testkit::pg::TestPostgres;

#[tokio::test]
async fn a_dropped_cluster_leaves_no_node_running_and_no_database() {
    let Some(c) = Cluster::start(Plan {
        nodes: 2,
        orgs: 2,
        own_server: false,
        seed: seed(0xC1EA_0005),
    })
    .await
    else {
        return;
    };
    let pids: Vec<u32> = c.nodes.iter().map(|n| n.process.pid()).collect();
    c.signal(1, "STOP");
    c.wait_paused(1).await;
    let name = c.database_name().to_string();
    drop(c);

    for pid in pids {
        assert!(
            !Path::new(&format!("/proc/{pid}")).exists(),
            "node process {pid} is gone"
        );
    }
    let admin = TestPostgres::get().expect("the server the cluster ran on");
    let (client, connection) = tokio_postgres::connect(admin.url(), tokio_postgres::NoTls)
        .await
        .expect("the test connects to the server");
    tokio::spawn(connection);
    let left = client
        .query("SELECT 1 FROM pg_database WHERE datname = $1", &[&name])
        .await
        .expect("pg_database");
    assert!(left.is_empty(), "database {name} was dropped");
}
