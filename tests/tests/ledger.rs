//! One behaviour suite for every [`ContactLedger`]: the in-memory one (which
//! defines the semantics), the CLI's SQLite store (two handles on one file,
//! as two processes) and, in `ledger_dynamodb`, the DynamoDB adapter over
//! moto (two SDK clients). [`ledger_suite!`] turns the suite into tests for
//! one implementation.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use rand::{Rng, SeedableRng};
use shared::adapters::memory::MemoryLedger;
use shared::adapters::sqlite::SqliteStore;
use shared::ports::{ContactLedger, LedgerEntry};

const NOW: i64 = 1_763_800_000;
const EXPIRES: i64 = NOW + 30 * 86_400;

/// Two handles on one ledger (the same object, two SQLite connections, two
/// DynamoDB clients), and what must live as long as they do.
pub(crate) struct Ledgers {
    pub a: Arc<dyn ContactLedger>,
    pub b: Arc<dyn ContactLedger>,
    pub _keep: Option<tempfile::TempDir>,
}

/// Generates the suite's tests for the implementation that `$open()`
/// (an async fn returning [`Ledgers`]) opens; attributes (`#[ignore]`) go on each.
macro_rules! ledger_suite {
    ($(#[$attr:meta])* $open:path) => {
        $crate::ledger::ledger_suite!(@each [$(#[$attr])*] $open;
            an_absent_key_is_absent,
            a_push_alone_records_its_fingerprint_and_time,
            overlapping_pushes_leave_the_fingerprint_unknown_in_either_finish_order,
            a_failed_push_leaves_the_fingerprint_unknown,
            a_crashed_push_keeps_the_contact_pending,
            entries_reads_more_keys_than_one_batch_holds,
            concurrent_pushes_never_record_a_state_brevo_does_not_hold
        );
    };
    (@each $attrs:tt $open:path; $($name:ident),*) => {
        $($crate::ledger::ledger_suite!(@one $attrs $open, $name);)*
    };
    (@one [$($attr:tt)*] $open:path, $name:ident) => {
        $($attr)*
        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn $name() {
            $crate::ledger::$name($open().await).await;
        }
    };
}
pub(crate) use ledger_suite;

mod memory {
    async fn open() -> super::Ledgers {
        let l = std::sync::Arc::new(super::MemoryLedger::new());
        super::Ledgers { a: l.clone(), b: l, _keep: None }
    }
    super::ledger_suite!(open);
}

mod sqlite {
    async fn open() -> super::Ledgers {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.db");
        let a = std::sync::Arc::new(super::SqliteStore::open(&path).unwrap());
        let b = std::sync::Arc::new(super::SqliteStore::open(&path).unwrap());
        super::Ledgers { a, b, _keep: Some(dir) }
    }
    super::ledger_suite!(open);
}

fn keys(ks: &[&str]) -> Vec<String> {
    ks.iter().map(|k| (*k).to_owned()).collect()
}

async fn entry(l: &dyn ContactLedger, key: &str) -> Option<LedgerEntry> {
    l.entries(&keys(&[key])).await.unwrap().remove(key)
}

fn known(fp: &str, sent_at: i64, pending: bool) -> Option<LedgerEntry> {
    Some(LedgerEntry { fingerprint: Some(fp.to_owned()), sent_at, pending })
}

fn unknown(sent_at: i64, pending: bool) -> Option<LedgerEntry> {
    Some(LedgerEntry { fingerprint: None, sent_at, pending })
}

/// begin + finish(Some) of one push.
async fn push(l: &dyn ContactLedger, key: &str, token: &str, fp: &str, now: i64) {
    l.begin(key, token, EXPIRES).await.unwrap();
    l.finish(key, token, Some(fp), now, EXPIRES).await.unwrap();
}

pub(crate) async fn an_absent_key_is_absent(ledgers: Ledgers) {
    let l = &*ledgers.a;
    assert!(l.entries(&keys(&["contact#a"])).await.unwrap().is_empty());
    assert!(l.entries(&[]).await.unwrap().is_empty());
    push(l, "contact#b", "t1", "fp-b", NOW).await;
    let got = l.entries(&keys(&["contact#a", "contact#b"])).await.unwrap();
    assert_eq!(got.keys().collect::<Vec<_>>(), ["contact#b"], "only the written key");
}

pub(crate) async fn a_push_alone_records_its_fingerprint_and_time(ledgers: Ledgers) {
    let l = &*ledgers.a;
    let k = "contact#alone";
    l.begin(k, "t1", EXPIRES).await.unwrap();
    assert_eq!(entry(l, k).await, unknown(0, true), "under way");
    l.finish(k, "t1", Some("fp1"), NOW, EXPIRES).await.unwrap();
    assert_eq!(entry(l, k).await, known("fp1", NOW, false));
    // The next push keeps the old fingerprint but is pending (never skipped).
    l.begin(k, "t2", EXPIRES).await.unwrap();
    assert_eq!(entry(l, k).await, known("fp1", NOW, true));
    l.finish(k, "t2", Some("fp2"), NOW + 5, EXPIRES).await.unwrap();
    assert_eq!(entry(l, k).await, known("fp2", NOW + 5, false));
}

pub(crate) async fn overlapping_pushes_leave_the_fingerprint_unknown_in_either_finish_order(ledgers: Ledgers) {
    let l = &*ledgers.a;
    for (k, first, second) in [("contact#o1", "t1", "t2"), ("contact#o2", "t2", "t1")] {
        push(l, k, "t0", "fp0", NOW).await;
        l.begin(k, "t1", EXPIRES).await.unwrap();
        l.begin(k, "t2", EXPIRES).await.unwrap();
        l.finish(k, first, Some("fp-first"), NOW + 1, EXPIRES).await.unwrap();
        assert_eq!(entry(l, k).await, unknown(NOW, true), "{k}: the other push is still under way");
        // Alone in the set now, but Brevo may have received the first push
        // last: the second must not record its fingerprint.
        l.finish(k, second, Some("fp-second"), NOW + 2, EXPIRES).await.unwrap();
        assert_eq!(entry(l, k).await, unknown(NOW, false), "{k}");
        // Once nothing is pending, a push alone records again.
        push(l, k, "t3", "fp3", NOW + 3).await;
        assert_eq!(entry(l, k).await, known("fp3", NOW + 3, false), "{k}");
    }
}

pub(crate) async fn a_failed_push_leaves_the_fingerprint_unknown(ledgers: Ledgers) {
    let l = &*ledgers.a;
    let k = "contact#failed";
    push(l, k, "t1", "fp1", NOW).await;
    l.begin(k, "t2", EXPIRES).await.unwrap();
    l.finish(k, "t2", None, NOW + 1, EXPIRES).await.unwrap();
    assert_eq!(entry(l, k).await, unknown(NOW, false));
    // A finish without a begin (or after its entry expired) still leaves an unknown entry.
    l.finish("contact#never", "t9", None, NOW, EXPIRES).await.unwrap();
    assert_eq!(entry(l, "contact#never").await, unknown(0, false));
    l.finish("contact#never2", "t9", Some("fp9"), NOW, EXPIRES).await.unwrap();
    assert_eq!(entry(l, "contact#never2").await, unknown(0, false), "no begin: not recorded");
}

pub(crate) async fn a_crashed_push_keeps_the_contact_pending(ledgers: Ledgers) {
    let l = &*ledgers.a;
    let k = "contact#crash";
    push(l, k, "t0", "fp0", NOW).await;
    l.begin(k, "crashed", EXPIRES).await.unwrap();
    assert_eq!(entry(l, k).await, known("fp0", NOW, true));
    // Later pushes overlap the crashed one, which stays in the set until
    // the entry expires: never recorded, never skipped.
    for (i, t) in ["t1", "t2"].into_iter().enumerate() {
        push(l, k, t, "fp-later", NOW + 10 + i64::try_from(i).unwrap()).await;
        assert_eq!(entry(l, k).await, unknown(NOW, true), "after {t}");
    }
}

pub(crate) async fn entries_reads_more_keys_than_one_batch_holds(ledgers: Ledgers) {
    let l = &*ledgers.a;
    // 230 keys (3 BatchGetItem chunks), some written on each side of the
    // chunk boundaries, and one asked for twice.
    let all: Vec<String> = (0..230).map(|i| format!("contact#{i:03}")).collect();
    let written: Vec<&String> = [0, 1, 98, 99, 100, 101, 150, 199, 200, 229].iter().map(|&i| &all[i]).collect();
    for k in &written {
        push(l, k, "t", &format!("fp-{k}"), NOW).await;
    }
    let mut asked = all.clone();
    asked.push(all[200].clone());
    let got = l.entries(&asked).await.unwrap();
    let want: HashMap<String, LedgerEntry> = written
        .iter()
        .map(|k| ((*k).clone(), LedgerEntry { fingerprint: Some(format!("fp-{k}")), sent_at: NOW, pending: false }))
        .collect();
    assert_eq!(got, want);
}

/// Two workers (one per handle) push one contact many times, each writing
/// its state to a simulated Brevo between its begin and its finish, with
/// random pauses. Whatever the interleaving, at the end nothing is pending
/// and a recorded fingerprint is the state Brevo holds.
pub(crate) async fn concurrent_pushes_never_record_a_state_brevo_does_not_hold(ledgers: Ledgers) {
    let (a, b) = (ledgers.a.clone(), ledgers.b.clone());
    let k = "contact#hammer";
    for round in 0..16u64 {
        let brevo = Arc::new(Mutex::new(String::new()));
        let worker = |l: Arc<dyn ContactLedger>, who: &'static str| {
            let brevo = brevo.clone();
            tokio::spawn(async move {
                let mut rng = rand::rngs::StdRng::seed_from_u64(round * 2 + u64::from(who == "b"));
                for i in 0..3 {
                    let token = format!("{who}-{round}-{i}");
                    let fp = format!("fp-{token}");
                    l.begin(k, &token, EXPIRES).await.unwrap();
                    for _ in 0..rng.random_range(0..3) {
                        tokio::task::yield_now().await;
                    }
                    fp.clone_into(&mut brevo.lock().unwrap());
                    for _ in 0..rng.random_range(0..3) {
                        tokio::task::yield_now().await;
                    }
                    l.finish(k, &token, Some(&fp), NOW + i, EXPIRES).await.unwrap();
                }
            })
        };
        let (x, y) = tokio::join!(worker(a.clone(), "a"), worker(b.clone(), "b"));
        x.unwrap();
        y.unwrap();
        let e = entry(&*a, k).await.expect("written");
        assert!(!e.pending, "round {round}: every push finished");
        if let Some(fp) = &e.fingerprint {
            assert_eq!(fp, &*brevo.lock().unwrap(), "round {round}: the recorded state is Brevo's");
        }
        assert_eq!(entry(&*b, k).await, Some(e), "round {round}: both handles see one ledger");
    }
    // The ledger still records a push alone after all that.
    push(&*b, k, "last", "fp-last", NOW + 100).await;
    assert_eq!(entry(&*a, k).await, known("fp-last", NOW + 100, false));
}
