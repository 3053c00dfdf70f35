//! The ephemeral store on Redis, shared by every node: one server, or a Redis Cluster. One
//! multiplexed connection (a connection manager, or the cluster client's connections to every
//! master) that reconnects by itself; every key carries a prefix so several deployments (or
//! tests) can share a server.
//!
//! On a cluster each command goes to the master of its key's slot (the redis crate follows
//! MOVED and ASK). `add` is a MULTI/EXEC of two commands on one key, so one slot. Keys read
//! together by `get_many` share a hash tag (the deny list's `{atdeny}`, the DPoP nonces'
//! `{dpop-nonce}`), so an MGET is one round trip to one master; keys without a common tag would
//! still be read correctly, split by the crate into one MGET per slot.

use std::time::Duration;

use async_trait::async_trait;
use redis::aio::{ConnectionLike, ConnectionManager, ConnectionManagerConfig};
use redis::cluster::ClusterClientBuilder;
use redis::cluster_async::ClusterConnection;
use redis::{AsyncCommands, Cmd, Pipeline, RedisFuture, Value};

use super::Ephemeral;
use crate::config::RedisTarget;
use crate::store::{StoreError, StoreResult};

const CONNECTION_TIMEOUT: Duration = Duration::from_secs(2);
const RESPONSE_TIMEOUT: Duration = Duration::from_secs(2);

#[derive(Clone)]
pub struct RedisStore {
    conn: Connection,
    /// Where subscriptions are made: the server, or each seed of a cluster in turn.
    subscribe_to: Vec<redis::Client>,
    prefix: String,
}

#[derive(Clone)]
enum Connection {
    Single(ConnectionManager),
    Cluster(ClusterConnection),
}

impl ConnectionLike for Connection {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        match self {
            Connection::Single(c) => c.req_packed_command(cmd),
            Connection::Cluster(c) => c.req_packed_command(cmd),
        }
    }

    fn req_packed_commands<'a>(&'a mut self, pipeline: &'a Pipeline, offset: usize, count: usize) -> RedisFuture<'a, Vec<Value>> {
        match self {
            Connection::Single(c) => c.req_packed_commands(pipeline, offset, count),
            Connection::Cluster(c) => c.req_packed_commands(pipeline, offset, count),
        }
    }

    fn get_db(&self) -> i64 {
        match self {
            Connection::Single(c) => c.get_db(),
            Connection::Cluster(c) => c.get_db(),
        }
    }
}

impl RedisStore {
    /// `url` as `redis_url` takes it: one server, or `redis+cluster://host:port,...`.
    pub async fn connect(url: &str, prefix: &str) -> StoreResult<Self> {
        let target = RedisTarget::parse(url).map_err(|e| StoreError::Other(format!("redis_url: {e}")))?;
        // A hash tag is the first {...} of the whole key: braces in the prefix would take its place.
        if prefix.contains(['{', '}']) {
            return Err(StoreError::Other(format!("redis key prefix `{prefix}`: must not contain {{ or }} (the keys' hash tags must be their first braces)")));
        }
        let config_err = |e: redis::RedisError| StoreError::Other(format!("redis_url: {e}"));
        let (conn, subscribe_to) = match target {
            RedisTarget::Single(url) => {
                let client = redis::Client::open(url).map_err(config_err)?;
                let config = ConnectionManagerConfig::new()
                    .set_connection_timeout(CONNECTION_TIMEOUT)
                    .set_response_timeout(RESPONSE_TIMEOUT)
                    .set_number_of_retries(1)
                    .set_max_delay(500);
                let conn = ConnectionManager::new_with_config(client.clone(), config).await.map_err(map_err)?;
                (Connection::Single(conn), vec![client])
            }
            RedisTarget::Cluster(seeds) => {
                let clients = seeds.iter().map(|s| redis::Client::open(s.as_str())).collect::<Result<Vec<_>, _>>().map_err(config_err)?;
                // Retries cover redirections (MOVED, ASK) during a resharding or a failover;
                // `store_timeout` bounds the whole call anyway.
                let cluster = ClusterClientBuilder::new(seeds)
                    .connection_timeout(CONNECTION_TIMEOUT)
                    .response_timeout(RESPONSE_TIMEOUT)
                    .retries(3)
                    .min_retry_wait(10)
                    .max_retry_wait(200)
                    .build()
                    .map_err(config_err)?;
                let conn = cluster.get_async_connection().await.map_err(map_err)?;
                (Connection::Cluster(conn), clients)
            }
        };
        Ok(Self { conn, subscribe_to, prefix: prefix.to_string() })
    }

    fn key(&self, key: &str) -> String {
        format!("{}{}", self.prefix, key)
    }

    fn is_cluster(&self) -> bool {
        matches!(self.conn, Connection::Cluster(_))
    }
}

fn map_err(e: redis::RedisError) -> StoreError {
    let unreachable = e.is_io_error() || e.is_connection_dropped() || e.is_connection_refusal() || e.is_timeout();
    // A cluster with a master out of reach: no connection to the node of a slot, or a cluster
    // that knows its slots are not all covered (CLUSTERDOWN).
    let cluster_down = matches!(e.kind(), redis::ErrorKind::ClusterConnectionNotFound | redis::ErrorKind::ClusterDown);
    if unreachable || cluster_down {
        StoreError::Unavailable(e.to_string())
    } else {
        StoreError::Other(e.to_string())
    }
}

fn ttl_millis(ttl: Duration) -> u64 {
    (ttl.as_millis() as u64).max(1)
}

#[async_trait]
impl Ephemeral for RedisStore {
    async fn put(&self, key: &str, value: &[u8], ttl: Duration) -> StoreResult<()> {
        let mut conn = self.conn.clone();
        redis::cmd("SET").arg(self.key(key)).arg(value).arg("PX").arg(ttl_millis(ttl))
            .query_async::<()>(&mut conn).await.map_err(map_err)
    }

    async fn put_if_absent(&self, key: &str, value: &[u8], ttl: Duration) -> StoreResult<bool> {
        let mut conn = self.conn.clone();
        let stored: Option<String> = redis::cmd("SET").arg(self.key(key)).arg(value).arg("NX").arg("PX").arg(ttl_millis(ttl))
            .query_async(&mut conn).await.map_err(map_err)?;
        Ok(stored.is_some())
    }

    async fn take(&self, key: &str) -> StoreResult<Option<Vec<u8>>> {
        let mut conn = self.conn.clone();
        redis::cmd("GETDEL").arg(self.key(key)).query_async(&mut conn).await.map_err(map_err)
    }

    async fn get(&self, key: &str) -> StoreResult<Option<Vec<u8>>> {
        let mut conn = self.conn.clone();
        conn.get(self.key(key)).await.map_err(map_err)
    }

    async fn get_many(&self, keys: &[&str]) -> StoreResult<Vec<Option<Vec<u8>>>> {
        let mut conn = self.conn.clone();
        let mut cmd = redis::cmd("MGET");
        for key in keys {
            cmd.arg(self.key(key));
        }
        cmd.query_async(&mut conn).await.map_err(map_err)
    }

    async fn delete(&self, key: &str) -> StoreResult<()> {
        let mut conn = self.conn.clone();
        conn.del::<_, ()>(self.key(key)).await.map_err(map_err)
    }

    async fn add(&self, key: &str, delta: i64, ttl: Duration) -> StoreResult<i64> {
        let mut conn = self.conn.clone();
        let key = self.key(key);
        // One round trip, atomic: the TTL is set only by the increment that created the key.
        let (count,): (i64,) = redis::pipe()
            .atomic()
            .incr(&key, delta)
            .cmd("PEXPIRE").arg(&key).arg(ttl_millis(ttl)).arg("NX").ignore()
            .query_async(&mut conn)
            .await
            .map_err(map_err)?;
        Ok(count)
    }

    async fn add_member(&self, key: &str, member: &str, ttl: Duration) -> StoreResult<()> {
        let mut conn = self.conn.clone();
        let key = self.key(key);
        redis::pipe()
            .atomic()
            .sadd(&key, member).ignore()
            .cmd("PEXPIRE").arg(&key).arg(ttl_millis(ttl)).arg("NX").ignore()
            .query_async::<()>(&mut conn)
            .await
            .map_err(map_err)
    }

    async fn members(&self, key: &str) -> StoreResult<Vec<String>> {
        let mut conn = self.conn.clone();
        conn.smembers(self.key(key)).await.map_err(map_err)
    }

    async fn ping(&self) -> StoreResult<()> {
        let mut conn = self.conn.clone();
        redis::cmd("PING").query_async::<()>(&mut conn).await.map_err(map_err)
    }

    async fn publish(&self, channel: &str, message: &[u8]) -> StoreResult<()> {
        let mut conn = self.conn.clone();
        conn.publish::<_, _, ()>(self.key(channel), message).await.map_err(map_err)
    }

    /// On a cluster, a classic PUBLISH reaches every node's subscribers, so one connection to
    /// any node will do: the first seed that answers, the next one when it goes away.
    fn subscribe(&self, channel: &str) -> tokio::sync::mpsc::UnboundedReceiver<Vec<u8>> {
        let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
        let endpoints = self.subscribe_to.clone();
        let channel = self.key(channel);
        tokio::spawn(async move {
            let mut first = true;
            let mut next = 0;
            while !tx.is_closed() {
                let client = &endpoints[next % endpoints.len()];
                next += 1;
                let connected = tokio::time::timeout(CONNECTION_TIMEOUT, client.get_async_pubsub()).await;
                let mut pubsub = match connected.unwrap_or_else(|_| Err((redis::ErrorKind::IoError, "no answer within the connection timeout").into())) {
                    Ok(p) => p,
                    Err(e) => {
                        tracing::warn!(error = %e, "redis subscription failed; retrying");
                        // A full round of seeds failed: wait before the next one.
                        if next % endpoints.len() == 0 {
                            tokio::time::sleep(Duration::from_millis(500)).await;
                        }
                        continue;
                    }
                };
                if pubsub.subscribe(&channel).await.is_err() {
                    tokio::time::sleep(Duration::from_millis(500)).await;
                    continue;
                }
                if !first && tx.send(Vec::new()).is_err() {
                    return;
                }
                first = false;
                let mut messages = pubsub.on_message();
                while let Some(message) = futures_util::StreamExt::next(&mut messages).await {
                    if tx.send(message.get_payload_bytes().to_vec()).is_err() {
                        return;
                    }
                }
                tracing::warn!("redis subscription dropped; reconnecting");
            }
        });
        rx
    }

    fn backend(&self) -> &'static str {
        if self.is_cluster() { "redis cluster" } else { "redis" }
    }
}
