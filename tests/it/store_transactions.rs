//! The durable store's multi-row writes are all or nothing, on SQLite and PostgreSQL. Each test
//! makes a write fail part-way, with no mock (a duplicate key, or the audit table renamed away),
//! checks that nothing of it is left, then that the same write, unobstructed, leaves exactly its
//! new state.

use sesame::store::{AuditEvent, RefreshToken};

use crate::stores::{api_key, audit_event, family, is_conflict, refresh_token, store_for};
use crate::support::harness::{Database, Tests};
use crate::support::TestDatabase;

pub fn tests(t: &mut Tests) {
    t.each_database("a_failed_refresh_rotation_leaves_the_token_unused", a_failed_refresh_rotation_leaves_the_token_unused)
        .each_database("a_failed_grace_successor_records_no_access_token", a_failed_grace_successor_records_no_access_token)
        .each_database("a_failed_family_start_leaves_no_family", a_failed_family_start_leaves_no_family)
        .each_database("a_failed_api_key_rotation_leaves_the_old_key_active", a_failed_api_key_rotation_leaves_the_old_key_active)
        .each_database("an_api_key_change_commits_with_its_audit_event", an_api_key_change_commits_with_its_audit_event);
}

fn successor(hash: u8) -> RefreshToken {
    refresh_token(hash, "f1")
}

/// The (jti, exp) pairs the family holds, read the only way the store gives them: by revoking it.
async fn family_access_tokens(store: &dyn sesame::store::Durable, family_id: &str) -> Vec<(String, i64)> {
    let mut jtis = store.revoke_refresh_family(family_id, 1_000).await.unwrap();
    jtis.sort();
    jtis
}

async fn a_failed_refresh_rotation_leaves_the_token_unused(database: Database) {
    let (_db, store) = store_for(database).await;
    let presented = refresh_token(1, "f1");
    store.start_refresh_family(&family("f1"), &presented, "jti-1", 9_000).await.unwrap();
    let other = refresh_token(9, "f1");
    store.add_refresh_successor(&other, "jti-9", 9_000).await.unwrap();

    // The successor insert fails (its hash is another token's): the mark before it is undone.
    let result = store.rotate_refresh_token(&presented.token_hash, 200, &successor(9), "jti-2", 9_000).await;
    assert!(is_conflict(result), "{database:?}: a successor with a taken hash was stored");
    assert_eq!(store.refresh_token(&presented.token_hash).await.unwrap(), Some(presented.clone()), "{database:?}: a failed successor insert used the token");
    // The access jti insert, the last statement, fails (the jti is taken): the mark and the
    // successor before it are undone.
    let result = store.rotate_refresh_token(&presented.token_hash, 200, &successor(2), "jti-1", 9_000).await;
    assert!(is_conflict(result), "{database:?}: a taken access jti was recorded again");
    assert_eq!(store.refresh_token(&presented.token_hash).await.unwrap(), Some(presented.clone()), "{database:?}: a failed jti insert used the token");
    assert_eq!(store.refresh_token(&[2; 32]).await.unwrap(), None, "{database:?}: a failed rotation left its successor");

    // The same rotation, unobstructed: used, one successor, its jti; and only once.
    assert!(store.rotate_refresh_token(&presented.token_hash, 200, &successor(2), "jti-2", 9_500).await.unwrap(), "{database:?}: the token was spent by the failures");
    assert_eq!(store.refresh_token(&presented.token_hash).await.unwrap().unwrap().used_at, Some(200));
    assert_eq!(store.refresh_token(&[2; 32]).await.unwrap(), Some(successor(2)));
    assert!(!store.rotate_refresh_token(&presented.token_hash, 201, &successor(3), "jti-3", 9_000).await.unwrap());
    assert_eq!(store.refresh_token(&[3; 32]).await.unwrap(), None);
    let expected = [("jti-1", 9_000), ("jti-2", 9_500), ("jti-9", 9_000)].map(|(j, e)| (j.to_string(), e)).to_vec();
    assert_eq!(family_access_tokens(store.as_ref(), "f1").await, expected, "{database:?}: exactly the committed rotations' access tokens");
}

async fn a_failed_grace_successor_records_no_access_token(database: Database) {
    let (_db, store) = store_for(database).await;
    let presented = refresh_token(1, "f1");
    store.start_refresh_family(&family("f1"), &presented, "jti-1", 9_000).await.unwrap();
    assert!(store.rotate_refresh_token(&presented.token_hash, 200, &successor(2), "jti-2", 9_000).await.unwrap());

    // A retry's successor whose hash is taken: its access token's jti is not recorded either.
    assert!(is_conflict(store.add_refresh_successor(&successor(2), "jti-retry", 9_000).await), "{database:?}");
    // One whose jti is taken: the successor is not kept.
    assert!(is_conflict(store.add_refresh_successor(&successor(3), "jti-2", 9_000).await), "{database:?}");
    assert_eq!(store.refresh_token(&[3; 32]).await.unwrap(), None, "{database:?}: a failed retry left its successor");

    store.add_refresh_successor(&successor(3), "jti-3", 9_000).await.unwrap();
    assert_eq!(store.refresh_token(&[3; 32]).await.unwrap(), Some(successor(3)));
    assert_eq!(store.refresh_token(&presented.token_hash).await.unwrap().unwrap().used_at, Some(200), "a retry leaves the presented token as it was");
    let expected = ["jti-1", "jti-2", "jti-3"].map(|j| (j.to_string(), 9_000)).to_vec();
    assert_eq!(family_access_tokens(store.as_ref(), "f1").await, expected, "{database:?}");
}

async fn a_failed_family_start_leaves_no_family(database: Database) {
    let (_db, store) = store_for(database).await;
    store.start_refresh_family(&family("f0"), &refresh_token(1, "f0"), "jti-0", 9_000).await.unwrap();

    // The first token's hash is taken: the family row before it is undone.
    assert!(is_conflict(store.start_refresh_family(&family("f1"), &refresh_token(1, "f1"), "jti-1", 9_000).await), "{database:?}");
    // Were the family left behind, starting it again would conflict on its id.
    let first = refresh_token(2, "f1");
    store.start_refresh_family(&family("f1"), &first, "jti-1", 9_000).await.unwrap();
    assert_eq!(store.refresh_token(&first.token_hash).await.unwrap(), Some(first));
    assert_eq!(family_access_tokens(store.as_ref(), "f1").await, vec![("jti-1".to_string(), 9_000)], "{database:?}");
}

async fn a_failed_api_key_rotation_leaves_the_old_key_active(database: Database) {
    let (_db, store) = store_for(database).await;
    let old = api_key("ak_1", 1, 100);
    store.insert_api_key(&old, &audit_event("api_key.generate", "ak_1")).await.unwrap();
    store.insert_api_key(&api_key("ak_2", 2, 100), &audit_event("api_key.generate", "ak_2")).await.unwrap();
    let rotated = audit_event("api_key.rotate", "ak_1");

    // The successor insert fails (its key hash, then its id, is another key's): the old key is not retired.
    for taken in [api_key("ak_3", 2, 200), api_key("ak_2", 3, 200)] {
        assert!(is_conflict(store.rotate_api_key("ak_1", &taken, 500, &rotated).await), "{database:?}: {taken:?}");
        assert_eq!(store.api_key("ak_1").await.unwrap(), Some(old.clone()), "{database:?}: a failed rotation retired the old key");
    }
    assert_eq!(store.api_key("ak_3").await.unwrap(), None);
    assert_eq!(store.api_key("ak_2").await.unwrap(), Some(api_key("ak_2", 2, 100)), "the key in the way is untouched");

    // Unobstructed: retired, with its successor.
    let successor = api_key("ak_3", 3, 200);
    assert!(store.rotate_api_key("ak_1", &successor, 500, &rotated).await.unwrap(), "{database:?}: the failures retired the key");
    let retired = store.api_key("ak_1").await.unwrap().unwrap();
    assert_eq!((retired.replaced_by.as_deref(), retired.grace_until, retired.revoked_at), (Some("ak_3"), Some(500), None));
    assert_eq!(store.api_key("ak_3").await.unwrap(), Some(successor));
}

/// Runs one statement on the test database beside the store's pool: here, to take a table away.
pub(crate) async fn sql(db: &TestDatabase, statement: &str) {
    use sqlx::Connection;
    let mut conn = sqlx::AnyConnection::connect(&db.url).await.unwrap();
    sqlx::query(statement).execute(&mut conn).await.unwrap();
    conn.close().await.unwrap();
}

async fn an_api_key_change_commits_with_its_audit_event(database: Database) {
    let (db, store) = store_for(database).await;
    let k1 = api_key("ak_1", 1, 100);
    let k2 = api_key("ak_2", 2, 100);
    store.insert_api_key(&k1, &audit_event("api_key.generate", "ak_1")).await.unwrap();
    store.insert_api_key(&k2, &audit_event("api_key.generate", "ak_2")).await.unwrap();

    // With the audit table gone, the audit insert (the last statement) fails: so does the change.
    sql(&db, "ALTER TABLE audit_events RENAME TO audit_events_away").await;
    assert!(store.insert_api_key(&api_key("ak_3", 3, 100), &audit_event("api_key.generate", "ak_3")).await.is_err());
    assert!(store.rotate_api_key("ak_1", &api_key("ak_4", 4, 200), 500, &audit_event("api_key.rotate", "ak_1")).await.is_err());
    assert!(store.revoke_api_key("ak_2", 600, &key_tokens("ak_2", 600), &audit_event("api_key.revoke", "ak_2")).await.is_err());
    assert_eq!(store.api_key("ak_3").await.unwrap(), None, "{database:?}: a key was issued without its audit event");
    assert_eq!(store.api_key("ak_4").await.unwrap(), None, "{database:?}: a successor was stored without its audit event");
    assert_eq!(store.api_key("ak_1").await.unwrap(), Some(k1), "{database:?}: a key was retired without its audit event");
    assert_eq!(store.api_key("ak_2").await.unwrap(), Some(k2), "{database:?}: a key was revoked without its audit event");

    // Back, the same changes commit, each with its event.
    sql(&db, "ALTER TABLE audit_events_away RENAME TO audit_events").await;
    store.insert_api_key(&api_key("ak_3", 3, 100), &audit_event("api_key.generate", "ak_3")).await.unwrap();
    assert!(store.rotate_api_key("ak_1", &api_key("ak_4", 4, 200), 500, &audit_event("api_key.rotate", "ak_1")).await.unwrap());
    assert!(store.revoke_api_key("ak_2", 600, &key_tokens("ak_2", 600), &audit_event("api_key.revoke", "ak_2")).await.unwrap());
    let kinds: Vec<(String, String)> = store.recent_audit(None, 100).await.unwrap().into_iter().map(|e: AuditEvent| (e.kind, e.subject)).collect();
    let expected = [("generate", "ak_1"), ("generate", "ak_2"), ("generate", "ak_3"), ("rotate", "ak_1"), ("revoke", "ak_2")]
        .map(|(k, s)| (format!("api_key.{k}"), s.to_string()))
        .to_vec();
    assert_eq!(kinds, expected, "{database:?}");
}

/// The denial of the tokens bought with API key `id`, revoked at `now`.
fn key_tokens(id: &str, now: i64) -> sesame::store::Denial {
    sesame::tokens::deny_list::client_denial(id, std::time::Duration::from_secs(300), now)
}
