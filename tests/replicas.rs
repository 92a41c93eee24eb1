//! Replicas: several real `chanmon run` processes on one PostgreSQL database against the mock
//! upstream. Every due check is run exactly once (results carry the slot they were due for,
//! so slots can be counted in the database: none twice, none skipped); a replica killed with
//! SIGKILL while it holds leases loses only those, and each of its slots is run once by
//! another replica after the lease expires; a replica whose config differs is reported; two
//! replicas in two locations, one cut off from the upstream, make one incident (not two) only
//! when both locations fail, with `min_failing_locations = 2`.
//! Time bounds are generous: nothing here asserts how fast anything is.

mod harness;
mod support;

use std::collections::BTreeMap;
use std::time::Duration;

use harness::{Daemon, Env, monitor, preamble, text, wait_until};
use support::mock::MockUpstream;
use support::pg::fresh_database;
use support::receiver::Receiver;

const T: Duration = Duration::from_secs(150);
const INTERVAL_MS: i64 = 10_000;

fn config(url: &str, mock: &MockUpstream, monitors: usize, model: &str, extra: &str) -> String {
    let mut c = format!("database = \"{url}\"\n");
    c.push_str(&preamble("workers = 4\ntick = \"200ms\""));
    for i in 0..monitors {
        c.push_str(&monitor(
            &format!("rep-{i}"),
            "openai",
            &mock.origin(),
            mock.key(),
            &[model],
            &format!("interval = \"{INTERVAL_MS}ms\"\ntimeout = \"1s\"\n{extra}"),
        ));
    }
    c
}

fn client(url: &str) -> postgres::Client {
    postgres::Client::connect(url, postgres::NoTls).expect("connect")
}

/// Recorded slots per monitor, and how often each was recorded.
fn slots(url: &str) -> BTreeMap<String, BTreeMap<i64, i64>> {
    let mut out: BTreeMap<String, BTreeMap<i64, i64>> = BTreeMap::new();
    let mut c = client(url);
    let migrated: bool = c
        .query_one("SELECT to_regclass('history') IS NOT NULL", &[])
        .unwrap()
        .get(0);
    if !migrated {
        return out;
    }
    for r in c
        .query(
            "SELECT m.id, h.due_at, count(*) FROM history h
             JOIN series s ON s.pk = h.series JOIN monitors m ON m.pk = s.monitor
             WHERE h.due_at IS NOT NULL GROUP BY m.id, h.due_at",
            &[],
        )
        .unwrap()
    {
        out.entry(r.get(0)).or_default().insert(r.get(1), r.get(2));
    }
    out
}

/// No slot recorded twice, none skipped between a monitor's first and last.
fn assert_each_slot_once(all: &BTreeMap<String, BTreeMap<i64, i64>>) {
    for (id, slots) in all {
        for (slot, n) in slots {
            assert_eq!(*n, 1, "{id}: slot {slot} recorded {n} times: {slots:?}");
        }
        let keys: Vec<i64> = slots.keys().copied().collect();
        for w in keys.windows(2) {
            assert_eq!(
                w[1] - w[0],
                INTERVAL_MS,
                "{id}: slots {} and {} are not one interval apart (a slot was skipped): {keys:?}",
                w[0],
                w[1]
            );
        }
    }
}

fn stop(mut daemons: Vec<Daemon>) {
    for d in &daemons {
        d.signal("TERM");
    }
    for d in &mut daemons {
        let st = d.wait_exit(T);
        assert!(st.success(), "replica exited with {st}:\n{}", d.log());
    }
}

#[test]
fn three_replicas_run_every_due_check_exactly_once() {
    let Some(url) = fresh_database() else { return };
    let mock = MockUpstream::start();
    let env = Env::new(&config(&url, &mock, 12, "gpt-ok", ""));
    let daemons: Vec<Daemon> = (0..3).map(|_| env.spawn_daemon(&[])).collect();
    wait_until(T, "three slots of every monitor recorded", || {
        let s = slots(&url);
        s.len() == 12 && s.values().all(|m| m.len() >= 3)
    });
    let logs: Vec<String> = daemons.iter().map(Daemon::log).collect();
    stop(daemons);
    let all = slots(&url);
    assert_each_slot_once(&all);
    for log in &logs {
        assert!(log.contains("running as a replica"), "{log}");
    }
    // Every result carries its slot, and started at or after it (within the tick).
    let mut c = client(&url);
    let off_grid: i64 = c
        .query_one(
            "SELECT count(*) FROM history WHERE due_at IS NULL OR started_at < due_at - 1000",
            &[],
        )
        .unwrap()
        .get(0);
    assert_eq!(off_grid, 0, "every result carries the slot it ran for");
}

#[test]
fn a_killed_replica_loses_only_its_leases() {
    let Some(url) = fresh_database() else { return };
    let mock = MockUpstream::start();
    // Slow replies (0.6 s), so a replica is often in the middle of a check.
    let env = Env::new(&config(&url, &mock, 6, "delay-100-600", ""));
    let victim = env.spawn_daemon(&[]);
    wait_until(T, "the victim running checks", || {
        victim.log().contains("first check queued")
    });
    // Kill the victim while it holds leases: those slots are claimed but never recorded. The
    // other replica starts as it dies (replicas started together split the slots at random;
    // this way the victim surely holds some).
    let owner = format!("%/{}", victim.pid());
    let mut held: Vec<(String, i64)> = Vec::new();
    let mut other = None;
    wait_until(T, "the victim holding a lease", || {
        held = client(&url)
            .query(
                "SELECT m.id, s.next_due FROM schedule s JOIN monitors m ON m.pk = s.monitor
                 WHERE s.lease_owner LIKE $1",
                &[&owner],
            )
            .unwrap()
            .iter()
            .map(|r| (r.get(0), r.get(1)))
            .collect();
        if held.is_empty() {
            return false;
        }
        other = Some(env.spawn_daemon(&[]));
        victim.signal("KILL");
        true
    });
    let other = other.unwrap();
    let mut victim = victim;
    let _ = victim.wait_exit(T);

    // The other replica takes over each of those slots once the lease (timeout 1 s + 3 s)
    // expires, and goes on with the monitor's later slots.
    wait_until(
        T,
        "every slot the victim held recorded, and later ones",
        || {
            let all = slots(&url);
            held.iter().all(|(id, slot)| {
                all.get(id).is_some_and(|m| {
                    m.contains_key(slot) && m.keys().any(|s| *s > *slot + INTERVAL_MS)
                })
            })
        },
    );
    stop(vec![other]);
    let all = slots(&url);
    assert_each_slot_once(&all);
    for (id, slot) in &held {
        assert_eq!(
            all[id][slot], 1,
            "{id}: the killed replica's slot {slot} ran once"
        );
    }
}

#[test]
fn a_replica_with_another_config_is_reported() {
    let Some(url) = fresh_database() else { return };
    let mock = MockUpstream::start();
    let env = Env::new(&config(&url, &mock, 2, "gpt-ok", ""));
    let first = env.spawn_daemon(&[]);
    wait_until(T, "the first replica running", || {
        first.log().contains("first check queued")
    });
    // A second replica on the same database with a config that differs (one more monitor).
    let other = Env::new(&config(&url, &mock, 3, "gpt-ok", ""));
    let second = other.spawn_daemon(&[]);
    wait_until(T, "the difference reported by a replica", || {
        first.log().contains("REPLICAS RUN DIFFERENT CONFIGS")
            || second.log().contains("REPLICAS RUN DIFFERENT CONFIGS")
    });
    let status = env.run(&["status"]);
    let out = harness::text(&status.stdout);
    assert!(status.status.success(), "{}", harness::text(&status.stderr));
    assert!(out.contains("Replicas alive: 2"), "{out}");
    assert!(out.contains("DIFFERENT CONFIG"), "{out}");
    assert!(out.contains(&format!("/{}", first.pid())), "{out}");
    stop(vec![first, second]);
}

/// Nothing listens here: a location "cut off" from the upstream gets connection refused.
const DEAD: &str = "http://127.0.0.1:9";

/// One monitor probed from locations a and b; where each replica reaches comes from its
/// environment (`UPSTREAM`), so both run the same config file.
fn two_location_config(url: &str, mock: &MockUpstream, r: &Receiver) -> String {
    let mut c = format!("database = \"{url}\"\n");
    c.push_str(&preamble("workers = 2\ntick = \"200ms\""));
    c.push_str(&monitor(
        "m",
        "openai",
        "${UPSTREAM}",
        mock.key(),
        &["good"],
        "interval = \"10s\"\ntimeout = \"2s\"\nlocations = [\"a\", \"b\"]",
    ));
    c.push_str(&format!(
        "\n[[alert]]\nid = \"hook\"\ntype = \"webhook\"\nurl = \"{}\"\ntimeout = \"2s\"\n[alert.network]\nallow_http = true\nallow_cidrs = [\"127.0.0.0/8\"]\n",
        r.url("/hook")
    ));
    c.push_str(
        "\n[alerts]\nsinks = [\"hook\"]\nfailure_threshold = 2\nsuccess_threshold = 1\nmin_failing_locations = 2\ngroup_window = \"0s\"\nretry_base = \"100ms\"\nretry_cap = \"200ms\"\nmax_attempts = 3\n",
    );
    c
}

fn replica_at(env: &Env, location: &str, upstream: &str) -> Daemon {
    let log = env.path(&format!("replica-{location}-{}.log", fastrand::u32(..)));
    let child = env
        .command(&["run", "--location", location])
        .env("RUST_LOG", "chanmon=debug")
        .env("UPSTREAM", upstream)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::from(
            std::fs::File::create(&log).unwrap(),
        ))
        .spawn()
        .expect("spawn replica");
    Daemon { child, log }
}

fn status_json(env: &Env) -> Vec<serde_json::Value> {
    let out = env
        .command(&["status", "m", "--format", "json"])
        .env("UPSTREAM", DEAD)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    serde_json::from_slice::<serde_json::Value>(&out.stdout)
        .unwrap()
        .as_array()
        .cloned()
        .unwrap()
}

fn incidents(env: &Env) -> Vec<serde_json::Value> {
    let out = env
        .command(&["incidents", "--format", "json"])
        .env("UPSTREAM", DEAD)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    serde_json::from_slice::<serde_json::Value>(&out.stdout)
        .unwrap()
        .as_array()
        .cloned()
        .unwrap()
}

fn results_at(url: &str, location: &str) -> i64 {
    let mut c = client(url);
    let ready: bool = c
        .query_one("SELECT to_regclass('history') IS NOT NULL", &[])
        .unwrap()
        .get(0);
    if !ready {
        return 0;
    }
    c.query_one(
        "SELECT count(*) FROM history h JOIN series s ON s.pk = h.series WHERE s.location = $1",
        &[&location],
    )
    .unwrap()
    .get(0)
}

#[test]
fn two_locations_one_cut_off_is_no_outage_and_both_down_is_one_incident() {
    let Some(url) = fresh_database() else { return };
    let mock = MockUpstream::start();
    let r = Receiver::start();
    let env = Env::new(&two_location_config(&url, &mock, &r));
    let a = replica_at(&env, "a", &mock.origin());
    let b = replica_at(&env, "b", DEAD);
    // b fails past the threshold (two results) while a answers.
    wait_until(T, "three results from each location", || {
        results_at(&url, "a") >= 3 && results_at(&url, "b") >= 3
    });
    let rows = status_json(&env);
    assert_eq!(rows.len(), 2, "a row per location: {rows:?}");
    let at = |l: &str| rows.iter().find(|x| x["location"] == l).cloned().unwrap();
    assert_eq!(at("a")["latest"]["status"], "operational", "{rows:?}");
    assert_eq!(at("b")["latest"]["status"], "error", "{rows:?}");
    assert_eq!(
        at("a")["locations"]["summary"],
        "down from 1 of 2 locations"
    );
    assert!(
        incidents(&env).is_empty(),
        "one location down is not an outage"
    );
    assert!(
        r.received().is_empty(),
        "no alert with min_failing_locations = 2"
    );

    // Now a is cut off too: one incident for the model, one notification, though two
    // replicas decide it and both drain the outbox.
    stop(vec![a]);
    let a = replica_at(&env, "a", DEAD);
    wait_until(T, "the incident's notification", || {
        !r.event_ids().is_empty()
    });
    let n = results_at(&url, "a");
    wait_until(T, "two more results from a", || {
        results_at(&url, "a") >= n + 2
    });
    let list = incidents(&env);
    assert_eq!(
        list.len(),
        1,
        "one incident, not one per location: {list:?}"
    );
    let ids = r.event_ids();
    assert_eq!(ids.len(), 1, "one notification: {ids:?}");
    assert!(ids[0].ends_with(":opened"), "{ids:?}");
    assert_eq!(
        status_json(&env)[0]["locations"]["summary"],
        "down from 2 of 2 locations"
    );
    stop(vec![a, b]);
}
