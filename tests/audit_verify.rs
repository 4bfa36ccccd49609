//! Offline verification of audit exports against the pinned key: every way an editor of an
//! export can tamper with it fails, naming what failed; a checkpoint saved earlier catches a
//! truncation to an older checkpoint and a history rewritten by the hub itself.
mod common;

use cbm_hub::{
    audit::{LogState, signing::Signer, verify_export},
    pb::{
        self, Checkpoint, ExportItem, PublishRequest, audit_client::AuditClient, export_item::Item,
    },
};
use common::{TestHub, samples};

async fn publish(t: &TestHub, n: usize) {
    let mut ee = t.hub("EE-MFA").await;
    for _ in 0..n {
        ee.publish(PublishRequest {
            content: Some(samples::envelope("n", "TLP:CLEAR", samples::notice())),
            idempotency_key: String::new(),
            ..Default::default()
        })
        .await
        .unwrap();
    }
}

pub async fn export(t: &TestHub) -> Vec<ExportItem> {
    let mut audit = AuditClient::new(t.channel("AUDITOR").await);
    let mut stream = audit
        .export(pb::ExportRequest::default())
        .await
        .unwrap()
        .into_inner();
    let mut items = Vec::new();
    while let Some(item) = stream.message().await.unwrap() {
        items.push(item);
    }
    items
}

fn verify(items: &[ExportItem], key: &[u8], since: Option<Checkpoint>) -> pb::VerifyReport {
    let lines = items.iter().map(|i| Ok(serde_json::to_string(i).unwrap()));
    verify_export(lines, key, since).unwrap()
}

fn entry_pos(items: &[ExportItem], seq: u64) -> usize {
    items
        .iter()
        .position(|i| matches!(&i.item, Some(Item::Entry(e)) if e.sequence == seq))
        .unwrap()
}

fn checkpoints(items: &[ExportItem]) -> Vec<(usize, Checkpoint)> {
    items
        .iter()
        .enumerate()
        .filter_map(|(i, it)| match &it.item {
            Some(Item::Checkpoint(c)) => Some((i, c.clone())),
            _ => None,
        })
        .collect()
}

fn edit(items: &mut [ExportItem], seq: u64, f: impl FnOnce(&mut pb::AuditEntry)) {
    let i = entry_pos(items, seq);
    if let Some(Item::Entry(e)) = items[i].item.as_mut() {
        f(e);
    }
}

/// Recomputes every chain hash, as an editor holding the export can.
fn rechain(items: &mut [ExportItem]) {
    let mut state = LogState::default();
    for item in items.iter_mut() {
        if let Some(Item::Entry(e)) = item.item.as_mut() {
            *e = state.seal(e.clone());
        }
    }
}

/// Re-signs every checkpoint over the (re-chained) entries with `signer`, as a holder of a
/// signing key can.
fn resign(items: &mut [ExportItem], signer: &Signer) {
    let mut state = LogState::default();
    let mut roots = vec![state.frontier.root()];
    for item in items.iter() {
        if let Some(Item::Entry(e)) = &item.item {
            state.seal(e.clone());
            roots.push(state.frontier.root());
        }
    }
    for item in items.iter_mut() {
        if let Some(Item::Checkpoint(c)) = item.item.as_mut() {
            *c = signer.checkpoint(c.tree_size, &roots[c.tree_size as usize], c.at.clone());
        }
    }
}

fn without(items: &[ExportItem], drop: &[usize]) -> Vec<ExportItem> {
    items
        .iter()
        .enumerate()
        .filter(|(i, _)| !drop.contains(i))
        .map(|(_, it)| it.clone())
        .collect()
}

#[tokio::test]
async fn every_tampering_of_an_export_fails_and_says_what_failed() {
    let t = TestHub::start().await;
    let key = t.store().audit_public_key();
    publish(&t, 4).await;
    t.store().checkpoint().await.unwrap();
    publish(&t, 4).await;
    t.store().checkpoint().await.unwrap();
    publish(&t, 4).await;
    let good = export(&t).await;
    let report = verify(&good, &key, None);
    assert!(report.ok, "{report:?}");
    let cps = checkpoints(&good);
    assert!(cps.len() >= 3, "{cps:?}");
    // The export ends with its own checkpoint, covering every entry.
    let (last_pos, last) = cps.last().unwrap().clone();
    assert_eq!(last_pos, good.len() - 1);
    assert_eq!(
        (report.covered, report.entries),
        (last.tree_size, last.tree_size)
    );
    let (mid_pos, mid) = cps[cps.len() - 2].clone();
    let n = last.tree_size;
    assert!(mid.tree_size + 2 < n && mid.tree_size > 3, "{cps:?}");
    let attacker_dir = tempfile::tempdir().unwrap();
    let attacker = Signer::load_or_create(attacker_dir.path()).unwrap();

    let mut cases: Vec<(&str, Vec<ExportItem>, String)> = Vec::new();
    let mut x = good.clone();
    edit(&mut x, 3, |e| e.outcome = "refused".into());
    cases.push((
        "edited entry",
        x,
        "entry 3 does not match its chain hash".into(),
    ));

    let mut x = good.clone();
    edit(&mut x, 3, |e| e.chain_hash = vec![0u8; 32].into());
    cases.push((
        "altered chain hash",
        x,
        "entry 3 does not match its chain hash".into(),
    ));

    let mut x = good.clone();
    edit(&mut x, 2, |e| e.member = "FORGED".into());
    rechain(&mut x);
    cases.push((
        "edited and re-chained",
        x,
        "do not match the signed checkpoint".into(),
    ));

    let x = without(&good, &[entry_pos(&good, 3)]);
    cases.push(("deleted entry", x, "entry 3 expected, entry 4 found".into()));

    let mut x = good.clone();
    x.swap(entry_pos(&good, 5), entry_pos(&good, 6));
    cases.push((
        "reordered entries",
        x,
        "entry 5 expected, entry 6 found".into(),
    ));

    let mut x = good.clone();
    x.insert(entry_pos(&good, 4), good[entry_pos(&good, 2)].clone());
    cases.push((
        "inserted entry",
        x,
        "entry 4 expected, entry 2 found".into(),
    ));

    let x = good[..good.len() - 3].to_vec();
    cases.push((
        "tail cut with the final checkpoint",
        x,
        format!(
            "entries {}..={} are covered by no checkpoint",
            mid.tree_size + 1,
            n - 2
        ),
    ));

    let x = without(&good, &[entry_pos(&good, n), entry_pos(&good, n - 1)]);
    cases.push((
        "tail entries cut, checkpoint kept",
        x,
        format!("truncated: a signed checkpoint covers {n} entries"),
    ));

    let mut x: Vec<_> = good
        .iter()
        .filter(|i| !matches!(i.item, Some(Item::Checkpoint(_))))
        .cloned()
        .collect();
    edit(&mut x, 2, |e| e.outcome = "refused".into());
    rechain(&mut x);
    cases.push((
        "all checkpoints stripped, re-chained",
        x,
        "no checkpoint signed by the pinned key".into(),
    ));

    let mut x = without(&good, &[last_pos]);
    edit(&mut x, mid.tree_size + 1, |e| e.outcome = "refused".into());
    rechain(&mut x);
    cases.push((
        "last checkpoint stripped, tail re-chained",
        x,
        format!(
            "entries {}..={n} are covered by no checkpoint",
            mid.tree_size + 1
        ),
    ));

    let mut x = without(&good, &[mid_pos]);
    edit(&mut x, mid.tree_size, |e| e.outcome = "refused".into());
    rechain(&mut x);
    cases.push((
        "middle checkpoint stripped, re-chained",
        x,
        format!("entries 1..={n} do not match the signed checkpoint at size {n}"),
    ));

    let mut x = good.clone();
    edit(&mut x, 2, |e| e.outcome = "refused".into());
    rechain(&mut x);
    resign(&mut x, &attacker);
    x[0].item = Some(Item::PublicKey(attacker.public_key().to_vec().into()));
    cases.push((
        "re-signed with another key",
        x,
        "is not the pinned key".into(),
    ));

    let mut x = good.clone();
    resign(&mut x, &attacker);
    cases.push((
        "checkpoints signed by another key",
        x,
        "not the pinned key".into(),
    ));

    let mut x = good.clone();
    resign(&mut x, &attacker);
    for item in x.iter_mut() {
        if let Some(Item::Checkpoint(c)) = item.item.as_mut() {
            c.key_id = last.key_id.clone();
        }
    }
    cases.push((
        "another key's signatures under the pinned key id",
        x,
        "has an invalid signature".into(),
    ));

    let forge = |f: &dyn Fn(&mut Checkpoint)| {
        let mut x = good.clone();
        if let Some(Item::Checkpoint(c)) = x[last_pos].item.as_mut() {
            f(c);
        }
        x
    };
    let invalid = format!("checkpoint at size {n}");
    cases.push((
        "forged signature",
        forge(&|c| c.signature = vec![7u8; 64].into()),
        invalid.clone(),
    ));
    cases.push((
        "altered tree size",
        forge(&|c| c.tree_size -= 1),
        format!("checkpoint at size {} (made at", n - 1),
    ));
    cases.push((
        "altered root",
        forge(&|c| c.root_hash = "00".repeat(32)),
        invalid.clone(),
    ));
    cases.push((
        "altered time",
        forge(&|c| c.at = "2020-01-01T00:00:00Z".into()),
        invalid,
    ));

    let mut x = good.clone();
    let moved = x.remove(cps[0].0);
    x.push(moved);
    cases.push(("checkpoint moved", x, "comes after entry".into()));

    for (what, items, expected) in &cases {
        let r = verify(items, &key, None);
        assert!(!r.ok, "{what}: verified");
        assert!(
            r.problem.contains(expected.as_str()),
            "{what}: {}",
            r.problem
        );
    }
    assert!(cases.len() >= 13);

    // Without a checkpoint a verifier saw before, a log cut back to an older checkpoint is
    // a valid older log; with it, the cut is found.
    let older = good[..=mid_pos].to_vec();
    assert!(verify(&older, &key, None).ok);
    let r = verify(&older, &key, Some(last.clone()));
    assert!(!r.ok && r.problem.contains("fewer than the"), "{r:?}");
    // The saved checkpoint must itself be signed by the pinned key.
    let mut fake = last.clone();
    fake.tree_size = 2;
    let r = verify(&good, &key, Some(fake));
    assert!(
        !r.ok && r.problem.contains("the earlier checkpoint at size 2"),
        "{r:?}"
    );
    assert!(verify(&good, &key, Some(mid.clone())).ok);
    t.stop().await;
}

#[tokio::test]
async fn a_history_rewritten_by_the_key_holder_is_caught_by_an_earlier_checkpoint() {
    let t = TestHub::start().await;
    let key = t.store().audit_public_key();
    publish(&t, 5).await;
    let first = export(&t).await;
    let (_, seen) = checkpoints(&first).pop().unwrap();
    publish(&t, 3).await;
    let mut rewritten = export(&t).await;
    // Whoever holds the hub's key (the hub itself) rewrites entry 2 and signs again: the
    // export alone verifies...
    let signer = Signer::load_or_create(&t.config.data_dir).unwrap();
    edit(&mut rewritten, 2, |e| e.member = "SOMEONE-ELSE".into());
    rechain(&mut rewritten);
    resign(&mut rewritten, &signer);
    assert!(verify(&rewritten, &key, None).ok);
    // ...but not against the checkpoint an auditor saved before.
    let r = verify(&rewritten, &key, Some(seen.clone()));
    assert!(!r.ok, "{r:?}");
    assert!(
        r.problem.contains(&format!(
            "entries 1..={} do not match the earlier checkpoint",
            seen.tree_size
        )) && r.problem.contains("fork"),
        "{}",
        r.problem
    );
    t.stop().await;
}

#[tokio::test]
async fn the_hub_proves_its_log_extends_a_saved_checkpoint_and_a_bad_proof_is_refused() {
    use cbm_hub::audit::check_served;
    let t = TestHub::start().await;
    let key = t.store().audit_public_key();
    let mut audit = AuditClient::new(t.channel("AUDITOR").await);
    let ask = |from_size, to_size| pb::ConsistencyProofRequest {
        from_size,
        to_size,
        cover_sequence: 0,
    };
    let first = audit
        .consistency_proof(ask(0, 0))
        .await
        .unwrap()
        .into_inner();
    let saved = check_served(&key, None, &first).unwrap();
    assert_eq!(first.proof.len(), 0);
    publish(&t, 3).await;
    // As the hub's interval signer (or a receipt) does: a checkpoint younger than a few
    // seconds is the one served for the whole log.
    t.store().checkpoint().await.unwrap();
    let served = audit
        .consistency_proof(ask(saved.tree_size, 0))
        .await
        .unwrap()
        .into_inner();
    let later = check_served(&key, Some(&saved), &served).unwrap();
    assert!(later.tree_size > saved.tree_size && !served.proof.is_empty());
    // Between two stored checkpoints: the later one comes with the proof.
    let between = audit
        .consistency_proof(ask(saved.tree_size, later.tree_size))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(between.checkpoint.as_ref(), Some(&later));
    check_served(&key, Some(&saved), &between).unwrap();

    // Every damage to the served proof or checkpoints is refused, saying why.
    let damaged: Vec<(&str, pb::ConsistencyProofResponse, Checkpoint, &str)> = vec![
        (
            "flipped proof hash",
            {
                let mut s = served.clone();
                // Change the first hex digit to another one: writing a fixed "ff" would leave
                // a hash that already starts with it unchanged (one run in 256 did).
                let first = if s.proof[0].starts_with('0') {
                    "1"
                } else {
                    "0"
                };
                s.proof[0] = format!("{first}{}", &s.proof[0][1..]);
                s
            },
            saved.clone(),
            "does not provably extend",
        ),
        (
            "dropped proof hash",
            {
                let mut s = served.clone();
                s.proof.pop();
                s
            },
            saved.clone(),
            "does not provably extend",
        ),
        (
            "altered later checkpoint",
            {
                let mut s = served.clone();
                s.checkpoint.as_mut().unwrap().root_hash = "00".repeat(32);
                s
            },
            saved.clone(),
            "invalid signature",
        ),
        (
            "no checkpoint",
            {
                let mut s = served.clone();
                s.checkpoint = None;
                s
            },
            saved.clone(),
            "no signed checkpoint",
        ),
        (
            "unsigned earlier checkpoint",
            served.clone(),
            {
                let mut c = saved.clone();
                c.root_hash = "11".repeat(32);
                c
            },
            "the earlier checkpoint",
        ),
        (
            "another size",
            served.clone(),
            {
                let mut c = saved.clone();
                c.tree_size += 1;
                c
            },
            "invalid signature",
        ),
    ];
    for (what, s, earlier, expected) in damaged {
        let e = check_served(&key, Some(&earlier), &s).unwrap_err();
        assert!(e.contains(expected), "{what}: {e}");
    }
    // A fork: an earlier checkpoint with the same key at the same size but another root (the
    // hub rewrote its history since) is refused against the hub's current log.
    let signer = Signer::load_or_create(&t.config.data_dir).unwrap();
    let forked = signer.checkpoint(saved.tree_size, &[9u8; 32], saved.at.clone());
    let e = check_served(&key, Some(&forked), &served).unwrap_err();
    assert!(e.contains("fork"), "{e}");

    // Bad sizes are refused naming the field; only auditors and admins may ask; asking is
    // audited with the sizes.
    let e = audit
        .consistency_proof(ask(later.tree_size + 1, later.tree_size))
        .await
        .unwrap_err();
    assert_eq!(e.code(), tonic::Code::InvalidArgument);
    assert!(e.message().contains("from_size"), "{}", e.message());
    let e = audit
        .consistency_proof(ask(0, later.tree_size + 1000))
        .await
        .unwrap_err();
    assert!(
        e.message().contains("to_size") && e.message().contains("latest signed checkpoint"),
        "{}",
        e.message()
    );
    // Any member may ask (sizes and hashes only): a subscriber checks its history with it.
    let mut ee = AuditClient::new(t.channel("EE-MFA").await);
    let served = ee
        .consistency_proof(ask(saved.tree_size, 0))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(served.public_key.as_ref(), key.as_slice());
    check_served(&key, Some(&saved), &served).unwrap();
    t.store().checkpoint().await.unwrap();
    let logged: Vec<_> = t
        .store()
        .audit_after(0)
        .map(|e| e.unwrap())
        .filter(|e| e.action == "audit.consistency")
        .map(|e| (e.member, e.outcome, e.detail))
        .collect();
    let expected_detail = format!("from {} to 0", saved.tree_size);
    assert!(
        logged
            .iter()
            .any(|(m, o, d)| m == "AUDITOR" && o == "allowed" && *d == expected_detail),
        "{logged:?}"
    );
    assert!(
        logged
            .iter()
            .any(|(m, o, _)| m == "EE-MFA" && o == "allowed"),
        "{logged:?}"
    );
    t.stop().await;
}

/// Asking for the whole log (to_size 0) serves the latest signed checkpoint while it is a few
/// seconds old: any member asking again and again (every subscriber's reconnect does) cannot
/// make the hub sign and flush once per call. Over gRPC as a member that is no auditor.
#[tokio::test]
async fn asking_for_the_whole_log_again_and_again_signs_no_checkpoint_per_call() {
    use cbm_hub::audit::check_served;
    let t = TestHub::start().await;
    let key = t.store().audit_public_key();
    publish(&t, 2).await;
    let mut ee = AuditClient::new(t.channel("EE-MFA").await);
    let started = std::time::Instant::now();
    let mut seen: Option<Checkpoint> = None;
    let mut distinct = Vec::new();
    for _ in 0..20 {
        let served = ee
            .consistency_proof(pb::ConsistencyProofRequest {
                from_size: seen.as_ref().map_or(0, |c| c.tree_size),
                to_size: 0,
                cover_sequence: 0,
            })
            .await
            .unwrap()
            .into_inner();
        let c = check_served(&key, seen.as_ref(), &served).unwrap();
        if !distinct.contains(&c) {
            distinct.push(c.clone());
        }
        seen = Some(c);
    }
    // One new checkpoint at most per FRESH_FOR (5 s) of the loop, not one per call.
    let allowed = 2 + started.elapsed().as_secs() as usize / 5;
    assert!(
        distinct.len() <= allowed && distinct.len() < 20,
        "{} checkpoints for 20 calls in {:?}",
        distinct.len(),
        started.elapsed()
    );

    // A subscriber asks with the last sequence it received: the checkpoint served covers that
    // event's audit entry (signed for the call when the latest does not), once, not per call.
    let response = t
        .hub("EE-MFA")
        .await
        .publish(PublishRequest {
            content: Some(samples::envelope("n", "TLP:CLEAR", samples::notice())),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    let entry = t
        .store()
        .audit_after(0)
        .map(|e| e.unwrap())
        .find(|e| e.feed_sequence == response.sequence && e.action == "submission.publish")
        .unwrap()
        .sequence;
    let mut covering = Vec::new();
    let started = std::time::Instant::now();
    for _ in 0..10 {
        let served = ee
            .consistency_proof(pb::ConsistencyProofRequest {
                from_size: seen.as_ref().map_or(0, |c| c.tree_size),
                to_size: 0,
                cover_sequence: response.sequence,
            })
            .await
            .unwrap()
            .into_inner();
        let c = check_served(&key, seen.as_ref(), &served).unwrap();
        assert!(
            c.tree_size >= entry,
            "{} does not cover entry {entry}",
            c.tree_size
        );
        if !covering.contains(&c) {
            covering.push(c.clone());
        }
        seen = Some(c);
    }
    // One signed for the first call at most, then one more per FRESH_FOR (5 s) of the loop
    // (the latest, covering, is served while recent), never one per call.
    let allowed = 2 + started.elapsed().as_secs() as usize / 5;
    assert!(
        covering.len() <= allowed && covering.len() < 10,
        "{covering:?}"
    );
    // A sequence the feed does not reach (a subscriber of a hub rolled back) is named.
    let e = ee
        .consistency_proof(pb::ConsistencyProofRequest {
            from_size: 0,
            to_size: 0,
            cover_sequence: response.sequence + 1000,
        })
        .await
        .unwrap_err();
    assert_eq!(e.code(), tonic::Code::InvalidArgument);
    assert!(e.message().starts_with("cover_sequence"), "{}", e.message());
    t.stop().await;
}
