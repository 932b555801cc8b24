//! Amendment proposals and votes on five real `senatus node` processes:
//! `senatus amend propose` records a signed proposal only if every
//! validator admits it, each validator reviews it on its own and casts a
//! signed vote through Raft, and every validator's tally (rebuilt from its
//! own ledger, also after a restart) reaches the same outcome with the same
//! votes.

mod common;

use std::path::{Path, PathBuf};
use std::process::Output;
use std::time::{Duration, Instant};

use common::*;
use senatus_proto::v1 as pb;
use senatus_testnet::RaftOverrides;

const TEST_BOUND: Duration = Duration::from_secs(180);
const VOTES_WITHIN: Duration = Duration::from_secs(30);

async fn cli(args: &[&str]) -> Output {
    let args: Vec<String> = args.iter().map(|s| s.to_string()).collect();
    tokio::task::spawn_blocking(move || senatus_cli(args))
        .await
        .expect("cli task")
}

fn s(p: &Path) -> &str {
    p.to_str().expect("utf-8 path")
}

/// The testnet's policy layer as version 2, with `edit` applied to its
/// directory.
fn proposed(tmp: &Path, name: &str, edit: impl FnOnce(&Path)) -> PathBuf {
    let dir = tmp.join(name);
    copy_dir(&tmp.join("net/policy"), &dir);
    let c = dir.join("constitution.toml");
    let text = std::fs::read_to_string(&c).expect("constitution");
    assert!(text.contains("\nversion = 1\n"), "{text}");
    std::fs::write(&c, text.replace("\nversion = 1\n", "\nversion = 2\n")).expect("write");
    edit(&dir);
    dir
}

/// The proposal id `amend propose` printed.
fn proposal_id(o: &Output) -> String {
    let out = String::from_utf8_lossy(&o.stdout);
    out.split_whitespace()
        .nth(1)
        .filter(|w| w.len() == 64)
        .unwrap_or_else(|| panic!("no proposal id in: {}", show(o)))
        .to_string()
}

async fn amend_status(net: &senatus_testnet::Testnet, id: u64) -> Vec<pb::ProposalView> {
    let mut c = net.client(id).expect("client");
    tokio::time::timeout(
        Duration::from_secs(10),
        c.amend_status(pb::AmendStatusRequest {
            proposal_id: Vec::new(),
        }),
    )
    .await
    .expect("AmendStatus answered in time")
    .expect("AmendStatus")
    .into_inner()
    .proposals
}

/// Waits until every running node reports `want` votes on proposal `pid`
/// with the given status, and all report the same view; returns it.
async fn settled(
    net: &senatus_testnet::Testnet,
    pid: &str,
    status: &str,
    want: usize,
) -> pb::ProposalView {
    let deadline = Instant::now() + VOTES_WITHIN;
    loop {
        let mut views = Vec::new();
        for id in net.running() {
            let v = amend_status(net, id)
                .await
                .into_iter()
                .find(|p| hex::encode(&p.id) == pid);
            views.push((id, v));
        }
        let all_done = views.iter().all(|(_, v)| {
            v.as_ref()
                .is_some_and(|p| p.status == status && p.votes.len() == want)
        });
        if all_done {
            let first = views[0].1.clone().expect("view");
            for (id, v) in &views {
                assert_eq!(v.as_ref(), Some(&first), "node {id} disagrees");
            }
            return first;
        }
        if Instant::now() > deadline {
            panic!(
                "proposal {pid} not {status} with {want} votes everywhere within {VOTES_WITHIN:?}: {views:#?}"
            );
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn proposals_are_admitted_reviewed_by_every_validator_and_tallied_identically() {
    let _serial = serial().await;
    bounded(TEST_BOUND, "amendments", async {
        let tmp = tempfile::tempdir().expect("tempdir");
        let net = cluster(tmp.path(), RaftOverrides::default()).await;
        let api = |id: u64| net.spec(id).expect("spec").api.clone();
        let genesis = tmp.path().join("net/genesis.json");
        let authority = tmp.path().join("net/authority.key");

        // 1. An edit of an immutable clause (its listed digest updated so
        //    the layer itself is valid): every validator rejects it, naming
        //    the clause.
        let bad = proposed(tmp.path(), "bad", |dir| {
            let clause = dir.join("policies/payments.blocklist.cedar");
            let mut text = std::fs::read(&clause).expect("clause");
            text.extend_from_slice(b"\n// loosened\n");
            std::fs::write(&clause, &text).expect("write");
            let old = senatus_genesis::policy::clause_digest(
                "payments.blocklist",
                &std::fs::read(
                    tmp.path()
                        .join("net/policy/policies/payments.blocklist.cedar"),
                )
                .expect("old clause"),
            );
            let new = senatus_genesis::policy::clause_digest("payments.blocklist", &text);
            let c = dir.join("constitution.toml");
            let t = std::fs::read_to_string(&c).expect("constitution");
            assert!(t.contains(&old.to_hex()));
            std::fs::write(&c, t.replace(&old.to_hex(), &new.to_hex())).expect("write");
        });
        let out = cli(&[
            "amend",
            "propose",
            "--api",
            &api(2),
            "--policy",
            s(&bad),
            "--justification",
            "loosen the blocklist",
            "--key",
            s(&authority),
            "--genesis",
            s(&genesis),
        ])
        .await;
        assert!(out.status.success(), "propose bad: {}", show(&out));
        let bad_id = proposal_id(&out);
        let view = settled(&net, &bad_id, "rejected", 5).await;
        assert_eq!(view.role, "authority");
        assert_eq!(view.proposed_version, 2);
        for v in &view.votes {
            assert_eq!(v.verdict, "reject", "{v:?}");
            assert_eq!(
                v.reasons,
                ["immutable-clause-changed:payments.blocklist"],
                "{v:?}"
            );
        }
        let voters: std::collections::BTreeSet<u64> = view.votes.iter().map(|v| v.voter).collect();
        assert_eq!(voters.len(), 5, "one vote per validator: {view:?}");
        assert!(view.approvers.is_empty());

        // 2. A proposer no genesis authorizes: refused on apply by every
        //    validator, nothing appended.
        let head_before = net
            .wait_converged(Duration::from_secs(10))
            .await
            .expect("converged");
        let other = tmp.path().join("other");
        let o = cli(&["genesis", "init", "--out", s(&other)]).await;
        assert!(o.status.success(), "{}", show(&o));
        let good = proposed(tmp.path(), "good", |_| {});
        let out = cli(&[
            "amend",
            "propose",
            "--api",
            &api(4),
            "--policy",
            s(&good),
            "--justification",
            "an outsider",
            "--key",
            s(&other.join("authority.key")),
        ])
        .await;
        assert_eq!(out.status.code(), Some(2), "{}", show(&out));
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            err.contains("proposal not admitted") && err.contains("is not authorized"),
            "{err}"
        );
        let head_after = net
            .wait_converged(Duration::from_secs(10))
            .await
            .expect("converged");
        assert_eq!(
            head_after, head_before,
            "a refused proposal appends nothing"
        );

        // 3. A valid amendment, proposed by a validator: every validator
        //    approves; it passes with exactly the first three approvers.
        let out = cli(&[
            "amend",
            "propose",
            "--api",
            &api(5),
            "--policy",
            s(&good),
            "--justification",
            "version 2 of the example policy",
            "--key",
            s(&tmp.path().join("net/node-3/identity.key")),
        ])
        .await;
        assert!(out.status.success(), "propose good: {}", show(&out));
        let good_id = proposal_id(&out);
        let view = settled(&net, &good_id, "passed", 5).await;
        assert_eq!(view.role, "validator 3");
        assert_eq!(view.approvers.len(), 3, "{view:?}");
        let counted: Vec<u64> = view
            .votes
            .iter()
            .filter(|v| v.effect == "counted")
            .map(|v| v.voter)
            .collect();
        assert_eq!(counted, view.approvers, "the first three approvals pass it");
        assert!(
            view.votes.iter().all(|v| v.verdict == "approve"),
            "{view:?}"
        );
        assert_eq!(
            view.votes.iter().filter(|v| v.effect == "late").count(),
            2,
            "{view:?}"
        );

        // 4. The base is closed: a competing proposal is refused.
        let again = proposed(tmp.path(), "again", |_| {});
        let out = cli(&[
            "amend",
            "propose",
            "--api",
            &api(1),
            "--policy",
            s(&again),
            "--justification",
            "a competitor",
            "--key",
            s(&authority),
        ])
        .await;
        assert_eq!(out.status.code(), Some(2), "{}", show(&out));
        assert!(
            String::from_utf8_lossy(&out.stderr).contains("already passed on this base"),
            "{}",
            show(&out)
        );

        // 5. The CLI shows it; a restarted validator rebuilds the same
        //    tally from its own ledger.
        let st = cli(&["amend", "status", "--api", &api(3), &good_id]).await;
        assert!(st.status.success(), "{}", show(&st));
        let text = String::from_utf8_lossy(&st.stdout);
        assert!(text.contains("PASSED"), "{text}");
        assert!(text.contains("approvers: "), "{text}");
        let before = amend_status(&net, 2).await;
        net.stop(2).await.expect("stop");
        net.start(2).expect("start");
        net.wait_converged(Duration::from_secs(20))
            .await
            .expect("converged");
        assert_eq!(
            amend_status(&net, 2).await,
            before,
            "rebuilt from the ledger"
        );

        let unknown = cli(&["amend", "status", "--api", &api(1), &"cd".repeat(32)]).await;
        assert_eq!(unknown.status.code(), Some(2), "{}", show(&unknown));
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_validator_down_during_the_vote_catches_up_by_snapshot_with_the_same_tally() {
    let _serial = serial().await;
    bounded(TEST_BOUND, "amendment catch-up", async {
        let tmp = tempfile::tempdir().expect("tempdir");
        // Snapshots every 50 entries, 10 logs kept: the returning node
        // cannot be fed from the log and must rebuild its tally from the
        // snapshot's ledger.
        let raft = RaftOverrides {
            snapshot_logs_since_last: Some(50),
            logs_kept_after_snapshot: Some(10),
            ..RaftOverrides::default()
        };
        let net = cluster(tmp.path(), raft).await;
        let api = |id: u64| net.spec(id).expect("spec").api.clone();
        let leader = net
            .wait_leader(Duration::from_secs(10))
            .await
            .expect("leader");
        let down = other_than(&net, &[leader]);
        net.kill(down).expect("kill");

        // The other four vote; it passes with three of them.
        let good = proposed(tmp.path(), "good", |_| {});
        let out = cli(&[
            "amend",
            "propose",
            "--api",
            &api(leader),
            "--policy",
            s(&good),
            "--justification",
            "while one validator is down",
            "--key",
            s(&tmp.path().join("net/authority.key")),
        ])
        .await;
        assert!(out.status.success(), "propose: {}", show(&out));
        let id = proposal_id(&out);
        let view = settled(&net, &id, "passed", 4).await;
        assert!(!view.votes.iter().any(|v| v.voter == down), "{view:?}");

        write_many(&net, leader, "after-the-vote", 120, 16).await;
        net.start(down).expect("restart");
        net.wait_converged(Duration::from_secs(30))
            .await
            .expect("converged");
        let log = net.last_run_log(down).expect("log");
        assert!(
            log.contains("installed snapshot"),
            "node {down} caught up without a snapshot; its log:\n{log}"
        );
        assert_eq!(
            amend_status(&net, down).await,
            amend_status(&net, leader).await,
            "the returning validator's tally, rebuilt from the snapshot"
        );
    })
    .await;
}
