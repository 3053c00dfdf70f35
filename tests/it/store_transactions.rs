//! The durable store's multi-row writes are all or nothing, on SQLite and PostgreSQL. Each test
//! makes a write fail part-way, with no mock (a duplicate key),
//! checks that nothing of it is left, then that the same write, unobstructed, leaves exactly its
//! new state.

use sesame::store::RefreshToken;

use crate::stores::{family, is_conflict, refresh_token, store_for};
use crate::support::harness::{Database, Tests};

pub fn tests(t: &mut Tests) {
    t.each_database("a_failed_refresh_rotation_leaves_the_token_unused", a_failed_refresh_rotation_leaves_the_token_unused)
        .each_database("a_failed_grace_successor_records_no_access_token", a_failed_grace_successor_records_no_access_token)
        .each_database("a_failed_family_start_leaves_no_family", a_failed_family_start_leaves_no_family);
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
