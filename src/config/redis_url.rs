//! `redis_url`: one Redis server, or the seed nodes of a Redis Cluster.
//!
//! A cluster is written `redis+cluster://[user:password@]host:port,host:port,...` (the form an
//! environment variable can carry), or in `sesame.toml` as a list of `redis://host:port` URLs; a
//! list is kept as the equivalent `redis+cluster://` URL, so `redis_url` stays one string.

use serde::de::{self, Deserializer, SeqAccess, Visitor};

pub const CLUSTER_SCHEME: &str = "redis+cluster://";
const DEFAULT_PORT: u16 = 6379;

/// What `redis_url` names, parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RedisTarget {
    /// A `redis://`, `rediss://` or `redis+unix://` URL, as the redis crate takes it.
    Single(String),
    /// The seed nodes of a cluster, each a `redis://[user:password@]host:port` URL; the client
    /// learns the rest of the cluster from whichever answers first.
    Cluster(Vec<String>),
}

impl RedisTarget {
    pub fn parse(url: &str) -> Result<Self, String> {
        if let Some(rest) = url.strip_prefix(CLUSTER_SCHEME) {
            return parse_seeds(rest).map(RedisTarget::Cluster);
        }
        if ["redis://", "rediss://", "redis+unix://"].iter().any(|scheme| url.starts_with(scheme)) {
            return Ok(RedisTarget::Single(url.to_string()));
        }
        Err("must start with redis://, rediss://, redis+unix:// or redis+cluster://".into())
    }

    /// For the start-up log: `redis`, or `redis cluster (N seeds)`.
    pub fn describe(&self) -> String {
        match self {
            RedisTarget::Single(_) => "redis".into(),
            RedisTarget::Cluster(seeds) => format!("redis cluster ({} seed{})", seeds.len(), if seeds.len() == 1 { "" } else { "s" }),
        }
    }
}

/// `[user:password@]host:port,host:port,...`: the credentials, when given on the first seed (or
/// on every seed alike), are the cluster's.
fn parse_seeds(rest: &str) -> Result<Vec<String>, String> {
    let rest = rest.strip_suffix('/').unwrap_or(rest);
    if rest.contains(['/', '?', '#']) {
        return Err("a redis+cluster:// URL is only seeds, host:port,host:port: a cluster has no database number and takes no parameters".into());
    }
    let mut credentials: Option<&str> = None;
    let mut seeds = Vec::new();
    for (i, part) in rest.split(',').enumerate() {
        let (userinfo, address) = match part.rsplit_once('@') {
            Some((userinfo, address)) => (Some(userinfo), address),
            None => (None, part),
        };
        match (i, userinfo, credentials) {
            (0, Some(u), _) => credentials = Some(u),
            (_, Some(u), Some(c)) if u == c => {}
            (_, Some(_), _) => return Err(format!("seed {}: every seed must use the credentials of the first (a cluster has one set)", i + 1)),
            _ => {}
        }
        if address.is_empty() {
            return Err(format!("seed {} is empty (a stray comma?)", i + 1));
        }
        let userinfo = credentials.map(|c| format!("{c}@")).unwrap_or_default();
        let seed = format!("redis://{userinfo}{address}");
        let parsed = url::Url::parse(&seed).map_err(|e| format!("seed {} `{address}` is not host:port ({e})", i + 1))?;
        let host = parsed.host_str().filter(|h| !h.is_empty()).ok_or_else(|| format!("seed {} `{address}` has no host", i + 1))?;
        let port = parsed.port().unwrap_or(DEFAULT_PORT);
        seeds.push(format!("redis://{userinfo}{host}:{port}"));
    }
    Ok(seeds)
}

/// Deserializes `redis_url` from a string, or from a list: one element is that URL, several are
/// the seeds of a cluster (each `redis://host:port`), kept as one `redis+cluster://` URL.
pub fn one_or_list<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<String>, D::Error> {
    struct OneOrList;

    impl<'de> Visitor<'de> for OneOrList {
        type Value = Option<String>;

        fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
            f.write_str("a Redis URL, or a list of redis:// URLs naming the seed nodes of a Redis Cluster")
        }

        fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
            Ok(None)
        }

        fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
            Ok(None)
        }

        fn visit_some<D: Deserializer<'de>>(self, deserializer: D) -> Result<Self::Value, D::Error> {
            deserializer.deserialize_any(OneOrList)
        }

        fn visit_str<E: de::Error>(self, url: &str) -> Result<Self::Value, E> {
            Ok(Some(url.to_string()))
        }

        fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
            let mut urls: Vec<String> = Vec::new();
            while let Some(url) = seq.next_element::<String>()? {
                urls.push(url);
            }
            match urls.len() {
                0 => Err(de::Error::custom("redis_url: an empty list names no server; leave redis_url out for the in-process store")),
                1 => Ok(urls.pop()),
                _ => join_seeds(&urls).map(Some).map_err(de::Error::custom),
            }
        }
    }

    deserializer.deserialize_any(OneOrList)
}

fn join_seeds(urls: &[String]) -> Result<String, String> {
    let mut parts = Vec::with_capacity(urls.len());
    for (i, url) in urls.iter().enumerate() {
        let seeds = url.strip_prefix("redis://").or_else(|| url.strip_prefix(CLUSTER_SCHEME)).ok_or_else(|| {
            format!("redis_url: element {} `{url}`: a list names the seeds of a Redis Cluster, each redis://host:port", i + 1)
        })?;
        parts.push(seeds.strip_suffix('/').unwrap_or(seeds).to_string());
    }
    Ok(format!("{CLUSTER_SCHEME}{}", parts.join(",")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;

    fn seeds(url: &str) -> Vec<String> {
        match RedisTarget::parse(url).unwrap() {
            RedisTarget::Cluster(seeds) => seeds,
            single => panic!("not a cluster: {single:?}"),
        }
    }

    #[test]
    fn a_cluster_url_lists_its_seeds() {
        assert_eq!(seeds("redis+cluster://10.0.0.1:7000,10.0.0.2:7001/"), ["redis://10.0.0.1:7000", "redis://10.0.0.2:7001"]);
        assert_eq!(seeds("redis+cluster://node-a,[::1]:7002"), ["redis://node-a:6379", "redis://[::1]:7002"], "the default port");
        assert_eq!(seeds("redis+cluster://:s%40cret@a:1,b:2"), ["redis://:s%40cret@a:1", "redis://:s%40cret@b:2"], "the first seed's credentials are everyone's");
        assert_eq!(RedisTarget::parse("redis://127.0.0.1:6379").unwrap(), RedisTarget::Single("redis://127.0.0.1:6379".into()));
        assert_eq!(RedisTarget::parse("redis+cluster://a:1,b:2,c:3").unwrap().describe(), "redis cluster (3 seeds)");
    }

    #[test]
    fn a_bad_cluster_url_is_explained() {
        let err = |url: &str| RedisTarget::parse(url).unwrap_err();
        assert!(err("redis+cluster://a:1,,b:2").contains("seed 2 is empty"));
        assert!(err("redis+cluster://a:1,b:x").contains("seed 2 `b:x` is not host:port"));
        assert!(err("redis+cluster://a:1/3").contains("no database number"));
        assert!(err("redis+cluster://u:p@a:1,v:q@b:2").contains("credentials of the first"));
        assert!(err("redis+cluster://").contains("seed 1 is empty"));
        assert!(err("http://a:1").contains("redis+cluster://"));
    }

    #[test]
    fn redis_url_may_be_a_list_of_seeds() {
        let config = Config::from_toml("redis_url = [\"redis://10.0.0.1:7000\", \"redis://10.0.0.2:7001/\"]").unwrap();
        assert_eq!(config.redis_url.as_deref(), Some("redis+cluster://10.0.0.1:7000,10.0.0.2:7001"));
        assert_eq!(config.redis_target(), Some(RedisTarget::Cluster(vec!["redis://10.0.0.1:7000".into(), "redis://10.0.0.2:7001".into()])));
        let one = Config::from_toml("redis_url = [\"redis://10.0.0.1:6379\"]").unwrap();
        assert_eq!(one.redis_target(), Some(RedisTarget::Single("redis://10.0.0.1:6379".into())), "one element is one server");
        let one_cluster = Config::from_toml("redis_url = [\"redis+cluster://10.0.0.1:7000\"]").unwrap();
        assert_eq!(one_cluster.redis_target(), Some(RedisTarget::Cluster(vec!["redis://10.0.0.1:7000".into()])), "unless it says cluster");
        let err = Config::from_toml("redis_url = [\"redis://a:1\", \"rediss://b:2\"]").unwrap_err();
        assert!(err.0.iter().any(|m| m.contains("element 2 `rediss://b:2`")), "{err:?}");
        let err = Config::from_toml("redis_url = []").unwrap_err();
        assert!(err.0.iter().any(|m| m.contains("empty list")), "{err:?}");
        let err = Config::from_toml("redis_url = \"redis+cluster://a:1,b:nope\"").unwrap_err();
        assert!(err.0.iter().any(|m| m.starts_with("redis_url: seed 2")), "{err:?}");
        assert_eq!(Config::from_toml("").unwrap().redis_url, None);
    }

    #[test]
    fn the_environment_names_a_cluster_in_one_url() {
        use figment::providers::{Env, Serialized};
        // A prefix of its own: no other test reads this variable.
        std::env::set_var("SESAME_CLUSTER_TEST_REDIS_URL", "redis+cluster://10.0.0.1:7000,10.0.0.2:7001");
        let figment = figment::Figment::from(Serialized::defaults(Config::default())).merge(Env::prefixed("SESAME_CLUSTER_TEST_"));
        let config: Config = figment.extract().unwrap();
        assert_eq!(config.redis_target(), Some(RedisTarget::Cluster(vec!["redis://10.0.0.1:7000".into(), "redis://10.0.0.2:7001".into()])));
    }
}
