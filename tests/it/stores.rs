//! The shared suites every store implementation must pass.

use std::time::Duration;

use sesame::store::{AuthMethod, Client, StoreError, StoredSigningKey, User};

use crate::support::{backends, ephemeral, TestDatabase};

#[tokio::test]
async fn ephemeral_store_contract() {
    for backend in backends() {
        let store = ephemeral(backend).await;
        store.ping().await.unwrap();
        let ttl = Duration::from_secs(60);

        store.put("a", b"1", ttl).await.unwrap();
        assert_eq!(store.get("a").await.unwrap().as_deref(), Some(&b"1"[..]), "{backend:?}");
        assert_eq!(store.take("a").await.unwrap().as_deref(), Some(&b"1"[..]));
        assert_eq!(store.take("a").await.unwrap(), None, "{backend:?}: taken twice");
        assert_eq!(store.get("a").await.unwrap(), None);

        assert!(store.put_if_absent("jti", b"x", ttl).await.unwrap());
        assert!(!store.put_if_absent("jti", b"y", ttl).await.unwrap(), "{backend:?}: replay accepted");
        assert_eq!(store.get("jti").await.unwrap().as_deref(), Some(&b"x"[..]));

        store.put("d", b"1", ttl).await.unwrap();
        store.delete("d").await.unwrap();
        assert_eq!(store.get("d").await.unwrap(), None);

        assert_eq!(store.incr("n", ttl).await.unwrap(), 1);
        assert_eq!(store.incr("n", ttl).await.unwrap(), 2);
        assert_eq!(store.incr("n", ttl).await.unwrap(), 3);

        // Expiry, for values and counters alike.
        let short = Duration::from_millis(300);
        store.put("e", b"1", short).await.unwrap();
        assert_eq!(store.incr("c", short).await.unwrap(), 1);
        assert_eq!(store.incr("c", Duration::from_secs(60)).await.unwrap(), 2, "later increments keep the first TTL");
        assert!(!store.put_if_absent("e", b"2", short).await.unwrap());
        tokio::time::sleep(Duration::from_millis(600)).await;
        assert_eq!(store.get("e").await.unwrap(), None, "{backend:?}: did not expire");
        assert_eq!(store.take("e").await.unwrap(), None);
        assert_eq!(store.incr("c", short).await.unwrap(), 1, "{backend:?}: counter did not expire");
        assert!(store.put_if_absent("e", b"2", short).await.unwrap());
    }
}

#[tokio::test]
async fn take_is_atomic_under_contention() {
    for backend in backends() {
        let store = ephemeral(backend).await;
        store.put("code", b"v", Duration::from_secs(60)).await.unwrap();
        let tasks: Vec<_> = (0..16)
            .map(|_| {
                let s = store.clone();
                tokio::spawn(async move { s.take("code").await.unwrap().is_some() })
            })
            .collect();
        let mut winners = 0;
        for t in tasks {
            winners += t.await.unwrap() as usize;
        }
        assert_eq!(winners, 1, "{backend:?}");
    }
}

fn client(id: &str) -> Client {
    Client {
        id: id.into(),
        name: "App".into(),
        secret_hash: Some(vec![1, 2, 3]),
        auth_method: AuthMethod::ClientSecretBasic,
        redirect_uris: vec!["https://app.example.com/cb".into()],
        post_logout_redirect_uris: vec![],
        grant_types: vec!["authorization_code".into(), "refresh_token".into()],
        scopes: vec!["openid".into(), "email".into()],
        jwks_uri: None,
        jwks: None,
        first_party: true,
        access_token_alg: Some("ES256".into()),
        access_token_ttl: Some(300),
        created_at: 1_700_000_000,
    }
}

#[tokio::test]
async fn durable_clients_and_users() {
    for backend in backends() {
        let db = TestDatabase::new(backend).await;
        let store = db.open().await;
        store.ping().await.unwrap();

        let c = client("c1");
        store.insert_client(&c).await.unwrap();
        assert_eq!(store.client("c1").await.unwrap(), Some(c.clone()), "{backend:?}: round trip");
        assert!(matches!(store.insert_client(&c).await, Err(StoreError::Conflict(_))));
        assert_eq!(store.client("nope").await.unwrap(), None);
        let mut public = client("c2");
        public.secret_hash = None;
        public.auth_method = AuthMethod::None;
        public.access_token_alg = None;
        public.access_token_ttl = None;
        store.insert_client(&public).await.unwrap();
        assert_eq!(store.clients().await.unwrap().len(), 2);
        assert_eq!(store.client("c2").await.unwrap(), Some(public));
        assert!(store.set_client_secret_hash("c1", &[9; 32]).await.unwrap());
        assert_eq!(store.client("c1").await.unwrap().unwrap().secret_hash, Some(vec![9; 32]));
        assert!(!store.set_client_secret_hash("nope", &[9; 32]).await.unwrap());
        assert!(store.delete_client("c1").await.unwrap());
        assert!(!store.delete_client("c1").await.unwrap());

        let u = User {
            sub: "s1".into(),
            username: "alice".into(),
            password_hash: "$argon2id$x".into(),
            email: Some("alice@example.com".into()),
            name: None,
            disabled: false,
            created_at: 5,
        };
        store.insert_user(&u).await.unwrap();
        assert_eq!(store.user_by_username("alice").await.unwrap(), Some(u.clone()));
        assert_eq!(store.user("s1").await.unwrap(), Some(u.clone()));
        let mut dup = u.clone();
        dup.sub = "s2".into();
        assert!(matches!(store.insert_user(&dup).await, Err(StoreError::Conflict(_))), "{backend:?}: usernames are unique");
        assert!(store.set_password_hash("alice", "$argon2id$y").await.unwrap());
        assert!(store.set_user_disabled("alice", true).await.unwrap());
        let now = store.user("s1").await.unwrap().unwrap();
        assert_eq!((now.password_hash.as_str(), now.disabled), ("$argon2id$y", true));
        assert!(!store.set_user_disabled("bob", true).await.unwrap());
        assert_eq!(store.users().await.unwrap().len(), 1);
    }
}

#[tokio::test]
async fn signing_key_changes_are_compare_and_set() {
    for backend in backends() {
        let db = TestDatabase::new(backend).await;
        let store = db.open().await;
        let key = |kid: &str| StoredSigningKey {
            kid: kid.into(),
            alg: "ES256".into(),
            private_key_sealed: vec![1, 2, 3],
            public_jwk: "{}".into(),
            created_at: 1,
            activates_at: 2,
        };
        let g0 = store.key_generation("ES256").await.unwrap();
        assert!(store.change_keys("ES256", g0, Some(&key("k1")), &[]).await.unwrap());
        assert!(!store.change_keys("ES256", g0, Some(&key("k2")), &[]).await.unwrap(), "{backend:?}: stale generation accepted");
        assert_eq!(store.signing_keys().await.unwrap(), vec![key("k1")]);
        let g1 = store.key_generation("ES256").await.unwrap();
        assert_eq!(g1, g0 + 1);
        assert!(store.change_keys("ES256", g1, Some(&key("k2")), &["k1".to_string()]).await.unwrap());
        assert_eq!(store.signing_keys().await.unwrap(), vec![key("k2")]);
        assert_eq!(store.key_generation("RS256").await.unwrap(), 0, "generations are per algorithm");
    }
}
