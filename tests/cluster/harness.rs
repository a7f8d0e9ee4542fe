//! The cluster harness: N `ticketsync serve` processes on one fresh PostgreSQL database (small
//! lease TTL, 16 shards), one Freshdesk simulator per org (so each org has its own webhook
//! rules, request log and faults), the orgs' webhooks spread over the nodes, a load generator,
//! and the checks every test ends with. Dropping the [`Cluster`] kills every node (SIGKILL,
//! also when paused), stops the simulators and proxies and drops the database, whether the
//! test passed or not; a failing test prints the end of each node's log and keeps its
//! directory.

use crate::audit::{self, Audit};
use crate::proxy::RecordingProxy;
use freshdesk_sim::{
    DeliveryKnobs, DeliveryRecord, FaultsConfig, NewTicket, SimClient, SimConfig, SimHandle,
    WebhookConfig,
};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};
use testkit::pg::{PgCluster, TestDatabase};
use testkit::process::toml_string;
use testkit::sim::{AI_KEY, FAQ_ANSWER, FAQ_QUESTION};
use testkit::{eventually, json_response, ServiceProcess};

/// The admin token of every node.
pub const ADMIN_TOKEN: &str = "cluster-admin-token-3e8a41";
/// The storage encryption key every node shares (base64 of 32 bytes).
const ENCRYPTION_KEY: &str = "XFxcXFxcXFxcXFxcXFxcXFxcXFxcXFxcXFxcXFxcXFw=";
/// Logical shards.
pub const SHARDS: usize = 16;
/// `cluster.lease_ttl_secs`.
pub const LEASE_TTL: Duration = Duration::from_secs(4);
/// `freshdesk.request_timeout_ms`: small, so that a node may write to Freshdesk for most of
/// its lease (it stops a request timeout plus a margin before the lease can lapse).
pub const REQUEST_TIMEOUT: Duration = Duration::from_millis(1000);
/// A new owner's settle window (docs/cluster.md: the request timeout plus a 1 s margin).
pub const SETTLE_WINDOW: Duration = Duration::from_millis(2000);
/// Freshdesk retries a failed webhook delivery after these delays (the simulator, faster).
pub const RETRY_DELAYS_MS: [u64; 5] = [500, 1000, 2000, 4000, 8000];
/// How long a start may take.
const READY_TIMEOUT: Duration = Duration::from_secs(30);
/// Between two tickets of the load.
const LOAD_GAP: Duration = Duration::from_millis(120);

/// Only one cluster at a time in this test process: with a 4 s lease, two clusters of three
/// nodes competing for two cores would test the scheduler more than the leases.
static ONE_CLUSTER_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// Where the database lives: a fresh database on the shared server, or a throwaway server
/// the test owns (and may stop and start).
pub enum Database {
    Shared(TestDatabase),
    /// Database [`OWNED_DATABASE`] of the server; both go with it.
    Owned(PgCluster),
}

/// The database of the nodes on a server the test owns.
const OWNED_DATABASE: &str = "ticketsync";

/// How to build a cluster.
pub struct Plan {
    pub nodes: usize,
    pub orgs: usize,
    /// Run PostgreSQL on a throwaway server the test owns.
    pub own_server: bool,
    pub seed: u64,
}

/// One `ticketsync serve` node and the proxy its Freshdesk requests go through.
pub struct Node {
    pub id: String,
    pub process: ServiceProcess,
    pub proxy: RecordingProxy,
}

/// An org, its simulated Freshdesk account and the node its webhooks are delivered to.
pub struct Org {
    pub id: String,
    pub shard: usize,
    pub simc: SimClient,
    /// `127.0.0.1:PORT` of its simulator.
    pub host: String,
    /// `/webhooks/freshdesk/<token>`: valid on every node.
    pub webhook_path: String,
    /// Kept alive for the test's duration.
    _sim: SimHandle,
}

/// A ticket a customer opened: (org index, simulator ticket id).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct TicketRef {
    pub org: usize,
    pub id: u64,
}

/// The cluster of one test.
pub struct Cluster {
    // Dropped in this order: nodes, simulators, database, directory.
    pub nodes: Vec<Node>,
    pub orgs: Vec<Org>,
    /// The node each org's webhooks are delivered to.
    targets: Vec<usize>,
    database: Database,
    url: String,
    pub audit: Audit,
    dir: Option<tempfile::TempDir>,
    pub http: reqwest::Client,
    insecure_hosts: String,
    seed: u64,
    _serial: tokio::sync::MutexGuard<'static, ()>,
}

/// The shard of an org (shared design: the first 8 bytes of its uuid, big-endian, mod shards).
pub fn shard_of(org: &str) -> usize {
    let uuid = uuid::Uuid::parse_str(org).expect("an org id is a uuid");
    let first: [u8; 8] = uuid.as_bytes()[..8].try_into().expect("8 bytes");
    (u64::from_be_bytes(first) % SHARDS as u64) as usize
}

impl Cluster {
    /// Start the simulators and the nodes, connect the orgs, spread their webhooks over the
    /// nodes (org i → node i mod N), wait until the shards are spread evenly, then turn on
    /// the simulators' duplicate deliveries and API faults. `None` when no PostgreSQL is
    /// available (the pg helper printed why).
    pub async fn start(plan: Plan) -> Option<Self> {
        let serial = ONE_CLUSTER_AT_A_TIME.lock().await;
        let database = if plan.own_server {
            let server = PgCluster::start()?;
            testkit::pg::execute(
                &server.url("postgres"),
                &format!("CREATE DATABASE {OWNED_DATABASE}"),
            )
            .expect("the nodes' database is created");
            Database::Owned(server)
        } else {
            Database::Shared(TestDatabase::create()?)
        };
        let url = match &database {
            Database::Shared(database) => database.url().to_string(),
            Database::Owned(server) => server.url(OWNED_DATABASE),
        };
        println!("cluster seed {} (replay with CLUSTER_SEED)", plan.seed);
        let sims: Vec<SimHandle> = (0..plan.orgs)
            .map(|_| {
                freshdesk_sim::spawn(SimConfig {
                    rate_limit_per_min: 10_000,
                    ..SimConfig::default()
                })
                .expect("a simulator starts")
            })
            .collect();
        let hosts: Vec<String> = sims.iter().map(SimHandle::host).collect();
        let insecure_hosts = format!(
            "[{}]",
            hosts
                .iter()
                .map(|h| toml_string(h))
                .collect::<Vec<_>>()
                .join(", ")
        );
        let dir = tempfile::Builder::new()
            .prefix("ticketsync-cluster-")
            .tempdir()
            .expect("temp dir");
        // Idle connections are dropped before the nodes' 5 s keep-alive closes them, so a
        // request never goes out on a connection the server is closing.
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(10))
            .pool_idle_timeout(Duration::from_secs(1))
            .no_proxy()
            .build()
            .expect("http client");
        let mut cluster = Self {
            nodes: Vec::new(),
            orgs: Vec::new(),
            targets: Vec::new(),
            database,
            url: url.clone(),
            audit: Audit::new(&url),
            dir: Some(dir),
            http,
            insecure_hosts,
            seed: plan.seed,
            _serial: serial,
        };
        for _ in 0..plan.nodes {
            cluster.add_node();
        }
        for i in 0..plan.nodes {
            cluster.wait_ready(i).await;
        }
        cluster.audit.install().await;
        for (i, sim) in sims.into_iter().enumerate() {
            cluster.connect_org(i, sim).await;
        }
        let all: Vec<usize> = (0..plan.nodes).collect();
        cluster
            .wait_even_spread(&all, Duration::from_secs(30))
            .await;
        cluster.faults_on().await;
        Some(cluster)
    }

    /// Spawn one more node (not waiting for it); its index.
    pub fn add_node(&mut self) -> usize {
        let index = self.nodes.len();
        let id = format!("n{}", index + 1);
        let root = self
            .dir
            .as_ref()
            .expect("the cluster directory")
            .path()
            .join(&id);
        let proxy = RecordingProxy::start();
        let mut process = ServiceProcess::new(
            env!("CARGO_BIN_EXE_ticketsync"),
            &root,
            include_str!("../../config.toml"),
        )
        .env("TICKETSYNC__SERVER__ADMIN_TOKEN", ADMIN_TOKEN)
        .env("TICKETSYNC__STORAGE__BACKEND", "postgres")
        .env(
            "TICKETSYNC__STORAGE__POSTGRES__URL",
            toml_string(&audit::node_url(&self.url, &id)),
        )
        .env("TICKETSYNC__STORAGE__ENCRYPTION_KEY", ENCRYPTION_KEY)
        // Four nodes and the tests' own connections stay well inside the server's 100.
        .env("TICKETSYNC__STORAGE__POSTGRES__MAX_CONNECTIONS", "8")
        .env("TICKETSYNC__CLUSTER__NODE_ID", toml_string(&id))
        .env(
            "TICKETSYNC__CLUSTER__LEASE_TTL_SECS",
            LEASE_TTL.as_secs().to_string(),
        )
        .env("TICKETSYNC__CLUSTER__SHARDS", SHARDS.to_string())
        .env(
            "TICKETSYNC__FRESHDESK__INSECURE_HOSTS",
            self.insecure_hosts.clone(),
        )
        .env(
            "TICKETSYNC__FRESHDESK__REQUEST_TIMEOUT_MS",
            REQUEST_TIMEOUT.as_millis().to_string(),
        )
        .env("HTTP_PROXY", proxy.url())
        .env("NO_PROXY", "");
        process.spawn();
        self.nodes.push(Node { id, process, proxy });
        index
    }

    /// Wait until node `i` answers `/readyz` 200.
    pub async fn wait_ready(&mut self, i: usize) {
        let http = self.http.clone();
        self.nodes[i].process.wait_ready(&http, READY_TIMEOUT).await;
    }

    /// Create org `i` through node i mod N, connect it to its simulator, and point the
    /// simulator's rules at node i mod N.
    async fn connect_org(&mut self, i: usize, sim: SimHandle) {
        let via = i % self.nodes.len();
        let host = sim.host();
        let (status, org) = self
            .admin(
                via,
                Method::POST,
                "/api/v1/orgs",
                Some(json!({"name": format!("Org {i}")})),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "org {i}: {org}");
        let id = org["id"].as_str().expect("org id").to_string();
        let (status, saved) = self
            .admin(
                via,
                Method::PUT,
                &format!("/api/v1/orgs/{id}/freshdesk"),
                Some(json!({"domain": host, "api_key": AI_KEY})),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "org {i}: {saved}");
        let webhook_url = saved["webhook_url"].as_str().expect("webhook_url");
        let webhook_path = webhook_url
            .strip_prefix(&self.nodes[via].process.base())
            .unwrap_or_else(|| panic!("the webhook URL uses the node's public URL: {webhook_url}"))
            .to_string();
        let simc = sim.client();
        simc.set_delivery(&DeliveryKnobs {
            retry_delays_ms: Some(RETRY_DELAYS_MS.to_vec()),
            ..DeliveryKnobs::default()
        })
        .await
        .expect("delivery retries set");
        self.orgs.push(Org {
            shard: shard_of(&id),
            id,
            simc,
            host,
            webhook_path,
            _sim: sim,
        });
        self.targets.push(via);
        self.retarget(i, via).await;
    }

    /// Deliver org `org`'s webhooks to node `node` from now on (as a load balancer would).
    pub async fn retarget(&mut self, org: usize, node: usize) {
        self.targets[org] = node;
        self.orgs[org]
            .simc
            .set_webhook(&WebhookConfig::to(self.webhook_url(org, node)))
            .await
            .expect("webhook rules set");
    }

    /// Take node `node` out of the load balancer: the orgs whose webhooks it received get
    /// them delivered, round-robin, to the nodes of `to` from now on.
    pub async fn retarget_away_from(&mut self, node: usize, to: &[usize]) {
        let moved: Vec<usize> = (0..self.orgs.len())
            .filter(|&o| self.targets[o] == node)
            .collect();
        for (k, org) in moved.into_iter().enumerate() {
            self.retarget(org, to[k % to.len()]).await;
        }
    }

    /// Org `org`'s webhook URL on node `node` (every node accepts every org's webhooks).
    pub fn webhook_url(&self, org: usize, node: usize) -> String {
        format!(
            "{}{}",
            self.nodes[node].process.base(),
            self.orgs[org].webhook_path
        )
    }

    /// Freshdesk at least once and out of order, and failing now and then: duplicate
    /// deliveries, 5xx answers and client-side timeouts on every simulator.
    async fn faults_on(&self) {
        for (i, org) in self.orgs.iter().enumerate() {
            let seed = self.seed.wrapping_add(i as u64);
            org.simc
                .set_delivery(&DeliveryKnobs {
                    duplicate_rate: Some(0.2),
                    reorder_window_ms: Some(30),
                    seed: Some(seed),
                    ..DeliveryKnobs::default()
                })
                .await
                .expect("delivery knobs set");
            org.simc
                .set_faults(&FaultsConfig {
                    error_rate: Some(0.05),
                    timeout_rate: Some(0.02),
                    // Longer than the nodes' request timeout: client-side timeouts.
                    timeout_ms: Some(REQUEST_TIMEOUT.as_millis() as u64 + 500),
                    seed: Some(seed),
                    ..FaultsConfig::default()
                })
                .await
                .expect("faults set");
        }
    }

    /// The name of the test's database.
    pub fn database_name(&self) -> &str {
        match &self.database {
            Database::Shared(database) => database.name(),
            Database::Owned(_) => OWNED_DATABASE,
        }
    }

    /// The throwaway PostgreSQL server this cluster owns (panics on a shared one).
    pub fn server(&mut self) -> &mut PgCluster {
        match &mut self.database {
            Database::Owned(server) => server,
            Database::Shared(_) => panic!("this cluster runs on the shared server"),
        }
    }

    /// An admin request to node `i`.
    pub async fn admin(
        &self,
        i: usize,
        method: Method,
        path: &str,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        let mut req = self
            .http
            .request(method, format!("{}{path}", self.nodes[i].process.base()))
            .bearer_auth(ADMIN_TOKEN);
        if let Some(body) = body {
            req = req.json(&body);
        }
        match req.send().await {
            Ok(res) => json_response(res).await,
            Err(e) => panic!("node {} does not answer {path}: {e}", self.nodes[i].id),
        }
    }

    /// `GET /api/v1/inspect` of node `i`.
    pub async fn inspect(&self, i: usize) -> Value {
        let (status, body) = self.admin(i, Method::GET, "/api/v1/inspect", None).await;
        assert_eq!(
            status,
            StatusCode::OK,
            "inspect of {}: {body}",
            self.nodes[i].id
        );
        body
    }

    /// The shards node `i` says it holds (inspection's `shards`: [{shard, expires_at}]).
    pub async fn held_shards(&self, i: usize) -> BTreeSet<usize> {
        let inspect = self.inspect(i).await;
        inspect["shards"]
            .as_array()
            .unwrap_or_else(|| panic!("inspection lists the shards held: {inspect}"))
            .iter()
            .map(|s| {
                s["shard"]
                    .as_u64()
                    .unwrap_or_else(|| panic!("a held shard has a number: {s}"))
                    as usize
            })
            .collect()
    }

    /// Which node (index) holds each shard, according to the `live` nodes; Err describes
    /// why that is not an even spread over them (a shard held twice or by none, or shares
    /// differing by more than one).
    pub async fn spread(&self, live: &[usize]) -> Result<BTreeMap<usize, usize>, String> {
        let mut owner = BTreeMap::new();
        let mut counts = Vec::new();
        for &i in live {
            let held = self.held_shards(i).await;
            counts.push((self.nodes[i].id.clone(), held.len()));
            for shard in held {
                if let Some(other) = owner.insert(shard, i) {
                    return Err(format!(
                        "shard {shard} held by {} and {}",
                        self.nodes[other].id, self.nodes[i].id
                    ));
                }
            }
        }
        let missing: Vec<usize> = (0..SHARDS).filter(|s| !owner.contains_key(s)).collect();
        let most = counts.iter().map(|c| c.1).max().unwrap_or(0);
        let least = counts.iter().map(|c| c.1).min().unwrap_or(0);
        if !missing.is_empty() || most - least > 1 {
            return Err(format!(
                "shards held per node {counts:?}; held by no live node: {missing:?}"
            ));
        }
        Ok(owner)
    }

    /// Wait until the `live` nodes hold every shard, evenly, for several polls in a row; the
    /// owner of each shard.
    pub async fn wait_even_spread(
        &self,
        live: &[usize],
        timeout: Duration,
    ) -> BTreeMap<usize, usize> {
        let last = std::cell::RefCell::new((BTreeMap::new(), 0u32));
        let last = &last;
        eventually("an even spread of the shards", timeout, || async move {
            let spread = self.spread(live).await?;
            let mut last = last.borrow_mut();
            if last.0 == spread {
                last.1 += 1;
            } else {
                *last = (spread.clone(), 1);
            }
            if last.1 >= 3 {
                Ok(spread)
            } else {
                Err(format!("spread not yet stable: {spread:?}"))
            }
        })
        .await
    }

    /// The orgs (indexes) whose shard node `node` holds in `spread`.
    pub fn orgs_of(&self, spread: &BTreeMap<usize, usize>, node: usize) -> Vec<usize> {
        (0..self.orgs.len())
            .filter(|&o| spread.get(&self.orgs[o].shard) == Some(&node))
            .collect()
    }

    /// The node among `live` whose shards carry the most orgs.
    pub fn busiest(&self, spread: &BTreeMap<usize, usize>, live: &[usize]) -> usize {
        let busiest = *live
            .iter()
            .max_by_key(|&&n| self.orgs_of(spread, n).len())
            .expect("a live node");
        assert!(
            !self.orgs_of(spread, busiest).is_empty(),
            "no node owns an org: {spread:?}"
        );
        busiest
    }

    /// Customers open FAQ tickets, round-robin over the orgs, until [`Load::finish`].
    pub fn start_load(&self, label: &str) -> Load {
        let stop = Arc::new(AtomicBool::new(false));
        let opened = Arc::new(AtomicUsize::new(0));
        let sims: Vec<SimClient> = self.orgs.iter().map(|o| o.simc.clone()).collect();
        let label = label.to_string();
        let (flag, count) = (stop.clone(), opened.clone());
        let task = tokio::spawn(async move {
            let mut tickets = Vec::new();
            while !flag.load(Ordering::SeqCst) {
                let i = tickets.len();
                let org = i % sims.len();
                tickets.push(TicketRef {
                    org,
                    id: new_faq_ticket(&sims[org], &format!("{label} {i}")).await,
                });
                count.store(tickets.len(), Ordering::SeqCst);
                tokio::time::sleep(LOAD_GAP).await;
            }
            tickets
        });
        Load { stop, opened, task }
    }

    /// A customer of org `org` opens a FAQ ticket.
    pub async fn new_ticket(&self, org: usize, subject: &str) -> TicketRef {
        TicketRef {
            org,
            id: new_faq_ticket(&self.orgs[org].simc, subject).await,
        }
    }

    /// The customer of ticket `t` writes again (the simulator fires rule 2).
    pub async fn customer_writes(&self, t: TicketRef, body: &str) {
        self.orgs[t.org]
            .simc
            .customer_reply(t.id, body)
            .await
            .expect("customer reply");
    }

    /// Every webhook delivery of every org so far (org index, delivery).
    pub async fn deliveries(&self) -> Vec<(usize, DeliveryRecord)> {
        let mut all = Vec::new();
        for (i, org) in self.orgs.iter().enumerate() {
            for d in org.simc.deliveries().await.expect("deliveries") {
                all.push((i, d));
            }
        }
        all
    }

    /// Tickets with at least one delivery a node acknowledged (202).
    pub async fn acknowledged(&self) -> BTreeSet<TicketRef> {
        self.deliveries()
            .await
            .into_iter()
            .filter(|(_, d)| d.status == Some(202))
            .map(|(org, d)| TicketRef {
                org,
                id: d.ticket_id,
            })
            .collect()
    }

    /// The AI agent's posts on a ticket: (private, body_text).
    pub async fn ai_posts(&self, t: TicketRef) -> Vec<(bool, String)> {
        testkit::ai_posts(&self.orgs[t.org].simc, t.id).await
    }

    /// Wait until every ticket among `tickets` that a node acknowledged has an AI answer.
    pub async fn wait_acknowledged_answered(&self, tickets: &[TicketRef], timeout: Duration) {
        eventually(
            "every acknowledged ticket to be answered",
            timeout,
            || async {
                let acked = self.acknowledged().await;
                let mut missing = Vec::new();
                for &t in tickets.iter().filter(|t| acked.contains(t)) {
                    if self.ai_posts(t).await.is_empty() {
                        missing.push(t);
                    }
                }
                if missing.is_empty() {
                    Ok(())
                } else {
                    Err(format!("acknowledged but unanswered: {missing:?}"))
                }
            },
        )
        .await
    }

    /// Wait until every delivery is final, and the `live` nodes have no queued event and no
    /// pending effect, several polls in a row.
    pub async fn settle(&self, live: &[usize], timeout: Duration) {
        let quiet = std::cell::Cell::new(0u32);
        let quiet = &quiet;
        eventually("the cluster to settle", timeout, || async move {
            let open: Vec<(usize, u64)> = self
                .deliveries()
                .await
                .iter()
                .filter(|(_, d)| !delivery_final(d))
                .map(|(o, d)| (*o, d.seq))
                .collect();
            let mut busy = Vec::new();
            for &i in live {
                let inspect = self.inspect(i).await;
                if inspect["inbox_depth"] != 0 || inspect["pending_effects"] != 0 {
                    busy.push(format!(
                        "{}: inbox_depth {}, pending_effects {}",
                        self.nodes[i].id, inspect["inbox_depth"], inspect["pending_effects"]
                    ));
                }
            }
            quiet.set(if open.is_empty() && busy.is_empty() {
                quiet.get() + 1
            } else {
                0
            });
            if quiet.get() >= 5 {
                Ok(())
            } else {
                Err(format!("open deliveries (org, seq) {open:?}; {busy:?}"))
            }
        })
        .await
    }

    /// The guarantee every test ends with, one AI answer per customer message: each
    /// acknowledged ticket has exactly one AI answer (public, the FAQ's) per customer message
    /// — the one it was opened with, and a second for those in `follow_ups` — and Freshdesk
    /// applied exactly as many `POST …/reply` for it; no ticket has more. With
    /// `all_acknowledged`, every ticket must also have been acknowledged (no delivery given up
    /// on). Prints a summary; panics listing every failure.
    pub async fn assert_one_answer_per_message(
        &self,
        tickets: &[TicketRef],
        follow_ups: &BTreeSet<TicketRef>,
        all_acknowledged: bool,
    ) {
        let acked = self.acknowledged().await;
        let mut replies: BTreeMap<TicketRef, usize> = BTreeMap::new();
        let mut retried = 0;
        for (org_index, org) in self.orgs.iter().enumerate() {
            let requests = org.simc.requests().await.expect("simulator requests");
            for (id, n) in testkit::applied_replies(&requests) {
                replies.insert(TicketRef { org: org_index, id }, n);
            }
            retried += org
                .simc
                .deliveries()
                .await
                .expect("deliveries")
                .iter()
                .filter(|d| d.attempts > 1)
                .count();
        }
        let mut failures = Vec::new();
        let mut answered = 0;
        for &t in tickets {
            let posts = self.ai_posts(t).await;
            let applied = replies.get(&t).copied().unwrap_or(0);
            answered += usize::from(!posts.is_empty());
            let is_acked = acked.contains(&t);
            let messages = 1 + usize::from(follow_ups.contains(&t));
            if posts.len() > messages
                || applied > messages
                || (is_acked && (posts.len() != messages || applied != messages))
            {
                failures.push(format!(
                    "{t:?} (acknowledged: {is_acked}, customer messages: {messages}): {} AI \
                     posts, {applied} applied POST …/reply",
                    posts.len()
                ));
            }
            if all_acknowledged && !is_acked {
                failures.push(format!("{t:?}: no delivery was acknowledged"));
            }
            for (private, body) in &posts {
                if *private || !body.contains(FAQ_ANSWER) {
                    failures.push(format!(
                        "{t:?}: unexpected AI post (private {private}): {body}"
                    ));
                }
            }
        }
        println!(
            "{} tickets, {} acknowledged, {} answered; {} deliveries retried",
            tickets.len(),
            tickets.iter().filter(|t| acked.contains(t)).count(),
            answered,
            retried
        );
        assert!(failures.is_empty(), "{}", failures.join("\n"));
    }

    /// No node's log carries the admin token, the API key or a webhook token.
    pub fn assert_logs_clean(&self) {
        for node in &self.nodes {
            let log = node.process.log();
            let mut secrets = vec![("admin token", ADMIN_TOKEN), ("Freshdesk API key", AI_KEY)];
            secrets.extend(self.orgs.iter().map(|o| {
                (
                    "webhook token",
                    o.webhook_path.rsplit('/').next().expect("webhook token"),
                )
            }));
            for (what, secret) in secrets {
                assert!(
                    !log.contains(secret),
                    "the {what} appears in {}'s log ({})",
                    node.id,
                    node.process.log_path().display()
                );
            }
        }
    }

    /// Send a signal to node `i` (`STOP`, `CONT`, `TERM`).
    pub fn signal(&self, i: usize, signal: &str) {
        let status = std::process::Command::new("kill")
            .arg(format!("-{signal}"))
            .arg(self.nodes[i].process.pid().to_string())
            .status()
            .expect("kill runs");
        assert!(status.success(), "kill -{signal} {}", self.nodes[i].id);
    }

    /// Wait until node `i` has stopped (state `T` in /proc), after a `STOP`.
    pub async fn wait_paused(&self, i: usize) {
        let stat = format!("/proc/{}/stat", self.nodes[i].process.pid());
        eventually("the node to be paused", Duration::from_secs(5), || async {
            let line = std::fs::read_to_string(&stat).unwrap_or_default();
            // "pid (comm) STATE ...": the state follows the command's closing parenthesis.
            let state = line.rsplit(')').next().unwrap_or("").trim_start();
            state.starts_with('T')
        })
        .await
    }

    /// Wait (polling, without blocking the runtime) until node `i` exits on its own.
    pub async fn wait_exit(&mut self, i: usize, timeout: Duration) -> std::process::ExitStatus {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = self.nodes[i].process.exited() {
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "{} did not exit within {timeout:?}\n{}",
                self.nodes[i].id,
                self.nodes[i].process.log_tail(40)
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Wait until no delivery to node `i` is still to be attempted.
    pub async fn wait_deliveries_to_node_final(&self, i: usize, timeout: Duration) {
        let base = self.nodes[i].process.base();
        let base = &base;
        eventually(
            "the deliveries to the node to be final",
            timeout,
            || async move {
                let open: Vec<(usize, u64)> = self
                    .deliveries()
                    .await
                    .iter()
                    .filter(|(_, d)| d.url.starts_with(base.as_str()) && !delivery_final(d))
                    .map(|(o, d)| (*o, d.seq))
                    .collect();
                if open.is_empty() {
                    Ok(())
                } else {
                    Err(format!("still open (org, seq): {open:?}"))
                }
            },
        )
        .await
    }

    /// Wait until every ticket of `tickets` has `answers` AI answers.
    pub async fn wait_answered(&self, tickets: &[TicketRef], answers: usize, timeout: Duration) {
        eventually("the tickets to be answered", timeout, || async {
            let mut missing = Vec::new();
            for &t in tickets {
                if self.ai_posts(t).await.len() < answers {
                    missing.push(t);
                }
            }
            if missing.is_empty() {
                Ok(())
            } else {
                Err(format!("unanswered: {missing:?}"))
            }
        })
        .await
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        for node in &mut self.nodes {
            node.process.kill();
        }
        let panicking = std::thread::panicking();
        if panicking {
            for node in &self.nodes {
                eprintln!("===== {} =====\n{}", node.id, node.process.log_tail(60));
            }
        }
        if panicking || std::env::var_os("CLUSTER_KEEP_DIR").is_some() {
            if let Some(dir) = self.dir.take() {
                eprintln!("cluster directory kept: {}", dir.keep().display());
            }
        }
    }
}

/// The load generator of [`Cluster::start_load`].
pub struct Load {
    stop: Arc<AtomicBool>,
    opened: Arc<AtomicUsize>,
    task: tokio::task::JoinHandle<Vec<TicketRef>>,
}

impl Load {
    /// Let customers open `n` more tickets (the load goes on meanwhile).
    pub async fn open_more(&self, n: usize) {
        let start = self.opened.load(Ordering::SeqCst);
        let timeout = LOAD_GAP * (n as u32) * 4 + Duration::from_secs(30);
        eventually(&format!("{n} more tickets opened"), timeout, || async {
            let opened = self.opened.load(Ordering::SeqCst) - start;
            if opened >= n {
                Ok(())
            } else {
                Err(format!("{opened} opened so far"))
            }
        })
        .await
    }

    /// Stop opening tickets; every ticket opened.
    pub async fn finish(self) -> Vec<TicketRef> {
        self.stop.store(true, Ordering::SeqCst);
        self.task.await.expect("the load generator")
    }
}

/// A customer opens a FAQ ticket (the simulator fires rule 1).
async fn new_faq_ticket(simc: &SimClient, subject: &str) -> u64 {
    simc.create_ticket(&NewTicket::new(subject, FAQ_QUESTION))
        .await
        .expect("ticket created")["id"]
        .as_u64()
        .expect("ticket id")
}

/// A delivery the simulator will not attempt again.
pub fn delivery_final(d: &DeliveryRecord) -> bool {
    d.dropped
        || d.status.is_some_and(|s| (200..300).contains(&s))
        || d.attempts as usize > RETRY_DELAYS_MS.len()
}

/// The seed of a test: `CLUSTER_SEED` when set, else the test's fixed default.
pub fn seed(default: u64) -> u64 {
    testkit::seed_from_env("CLUSTER_SEED", default)
}

/// A time as seconds since the start of `since`, for messages.
pub fn secs_after(t: SystemTime, since: SystemTime) -> f64 {
    t.duration_since(since)
        .map(|d| d.as_secs_f64())
        .unwrap_or_else(|e| -e.duration().as_secs_f64())
}
