//! The suite tests itself: every deliberately broken server is caught by at least one named case,
//! and the unbroken control server passes. Prints the kill matrix (mutant × killing cases).

use crate::mutant;
use crate::pyserver;

use std::time::Duration;

use echowire_conformance::split::{Cut, Strategy};
use echowire_conformance::target::{ExecSpec, TargetSpec};
use echowire_conformance::verdict::Outcome;
use echowire_conformance::{Options, case};
use mutant::{FAULTS, Fault};

/// The case each mutant must fail (more may, see the printed matrix).
fn killer(f: Fault) -> &'static str {
    match f {
        Fault::None => "",
        Fault::OneReadOneFrame => "3.1-valid-preface",
        Fault::LittleEndianLength => "2.2-two-frames-one-write",
        Fault::NoMaxFrameCheck => "2.2-length-limit-plus-1",
        Fault::DropSecondFrameInRead => "2.2-two-frames-one-write",
        Fault::StopAfterHalfClose => "3.9-after-one-echo",
        Fault::WrongIdOutOfOrder => "3.6-slow-request-does-not-block",
        Fault::IgnoreVersionNegotiation => "3.3-welcome-within-offer",
        Fault::CloseOnUnknownType => "5.4-unknown-type-7f",
        Fault::PickLowestVersion => "3.3-offer-1-255-v2",
    }
}

fn failing_cases(f: Fault, strategies: Vec<Strategy>, select: &[String]) -> Vec<String> {
    let m = mutant::spawn(f);
    let opts = Options {
        targets: vec![TargetSpec::Tcp(m.addr.to_string())],
        strategies,
        timeout: Duration::from_secs(10),
        jobs: 4,
        liveness: false,
        force: true,
        shrink: false,
        // The control must pass: a failure it has on a loaded machine is run again alone. A
        // mutant's failures are kills and are never re-run.
        retries: if f == Fault::None { 2 } else { 0 },
        ..Options::default()
    };
    // The timing cases (section 8.3) are informational and slow; they cannot kill anything.
    let cases = echowire_conformance::select(case::builtin(), select, &[], &["8.3-*".into()]);
    let report = echowire_conformance::run(cases, opts, &|_| {});
    let t = &report.targets[0];
    assert!(t.error.is_none(), "{f:?}: {:?}", t.error);
    report
        .cases
        .iter()
        .zip(&t.results)
        .filter(|(_, r)| matches!(r.outcome, Outcome::Fail | Outcome::NonStrict))
        .map(|(c, r)| {
            if f == Fault::None {
                eprintln!(
                    "control fails {}: {:?}",
                    c.id,
                    r.failures.first().map(|x| (&x.cut, &x.failure))
                );
            }
            c.id.clone()
        })
        .collect()
}

#[test]
fn the_unbroken_control_server_passes() {
    let control = failing_cases(Fault::None, vec![Strategy::Whole, Strategy::Bytewise], &[]);
    assert!(
        control.is_empty(),
        "the unbroken control server fails {control:?}"
    );
}

#[test]
fn every_mutant_is_killed_by_a_named_case() {
    // The mutants side by side: each is a server of its own, and most of a mutant's time is a
    // case waiting for an answer that never comes.
    let killers: Vec<String> = FAULTS.iter().map(|&g| killer(g).to_string()).collect();
    let matrix: Vec<(Fault, Vec<String>, Vec<String>)> = std::thread::scope(|s| {
        let runs: Vec<_> = FAULTS
            .into_iter()
            .map(|f| {
                let killers = &killers;
                s.spawn(move || {
                    // The named killer under whole and bytewise writes...
                    let named = failing_cases(
                        f,
                        vec![Strategy::Whole, Strategy::Bytewise],
                        &[killer(f).to_string()],
                    );
                    // ...and which of all the named killers it fails under whole writes.
                    let all = failing_cases(f, vec![Strategy::Whole], killers);
                    (f, named, all)
                })
            })
            .collect();
        runs.into_iter().map(|h| h.join().unwrap()).collect()
    });
    for (f, _, all) in &matrix {
        println!(
            "{f:?}: named killer {} fails; of the {} named killers, {} fail: {}",
            killer(*f),
            killers.len(),
            all.len(),
            all.join(" ")
        );
    }
    for (f, named, _) in &matrix {
        assert_eq!(
            named,
            &vec![killer(*f).to_string()],
            "{f:?} is not caught by {}",
            killer(*f)
        );
    }
    let counts: Vec<(Fault, usize)> = matrix.iter().map(|(f, _, all)| (*f, all.len())).collect();
    println!("\nkill matrix (mutant, named killers it fails under whole): {counts:?}");
}

/// The Python server's mutants (`impls/python/mutants.py`): each is the second implementation
/// with one realistic bug, a one-line edit of its source, spread over every section of the spec.
/// Each must fail the case named beside it in the mutant table (under `whole` and `bytewise`; a
/// SHOULD case counts, as `--strict` would fail it). The matrix printed is mutant × killer.
#[test]
fn every_python_mutant_is_killed_by_its_named_case() {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../impls/python");
    let list = std::process::Command::new("python3")
        .arg(format!("{dir}/mutants.py"))
        .arg("--list")
        .output()
        .expect("python3 runs (the tests need it; see README)");
    assert!(
        list.status.success(),
        "mutants.py --list: {}",
        String::from_utf8_lossy(&list.stderr)
    );
    let mutants: Vec<serde_json::Value> =
        serde_json::from_slice(&list.stdout).expect("mutants.py --list prints JSON");
    let sections: std::collections::BTreeSet<String> = mutants
        .iter()
        .map(|m| m["section"].as_str().unwrap_or("").to_string())
        .collect();
    assert!(
        mutants.len() >= 40,
        "{} Python mutants: the corpus is to hold at least 40",
        mutants.len()
    );
    let all = case::builtin();
    let mutants = std::sync::Mutex::new(mutants.into_iter());
    let results = std::sync::Mutex::new(Vec::new());
    // Four mutants at a time: each is a Python process, mostly waiting on the runner's cases.
    std::thread::scope(|s| {
        for _ in 0..4 {
            s.spawn(|| {
                loop {
                    let Some(m) = mutants.lock().unwrap().next() else {
                        break;
                    };
                    let name = m["name"].as_str().unwrap().to_string();
                    let killer = m["killer"].as_str().unwrap().to_string();
                    assert!(
                        all.iter().any(|c| c.id == killer),
                        "mutant {name} names {killer}, which is not a case"
                    );
                    let outcome = python_mutant_outcome(&name, &killer);
                    results.lock().unwrap().push((name, killer, outcome));
                }
            });
        }
    });
    let mut results = results.into_inner().unwrap();
    results.sort();
    let survivors: Vec<String> = results
        .iter()
        .filter(|(_, _, o)| !matches!(o, Outcome::Fail | Outcome::NonStrict))
        .map(|(n, k, o)| format!("{n} ({k}: {o:?})"))
        .collect();
    println!("Python mutant kill matrix (mutant, killer, outcome):");
    for (n, k, o) in &results {
        println!("  {n:45} {k:48} {o:?}");
    }
    println!(
        "{} of {} Python mutants killed, over spec sections {sections:?}",
        results.len() - survivors.len(),
        results.len()
    );
    assert!(survivors.is_empty(), "surviving mutants: {survivors:?}");
}

fn python_mutant_outcome(name: &str, killer: &str) -> Outcome {
    let template = pyserver::template(&format!("mutants.py {name}"));
    // Whole writes, bytewise, and the HELLO's Length field written one octet at a time with
    // pauses (a server that reads quickly coalesces bytewise writes; these pieces it cannot).
    let length_field = Cut::Set(std::sync::Arc::from([9u64, 10, 11]));
    let opts = Options {
        targets: vec![TargetSpec::Exec(ExecSpec {
            template,
            unix: false,
            name: None,
        })],
        strategies: vec![
            Strategy::Whole,
            Strategy::Bytewise,
            Strategy::Exactly(length_field),
        ],
        timeout: Duration::from_secs(10),
        jobs: 1,
        liveness: false,
        force: true,
        shrink: false,
        ..Options::default()
    };
    let cases = echowire_conformance::select(case::builtin(), &[killer.to_string()], &[], &[]);
    let report = echowire_conformance::run(cases, opts, &|_| {});
    let t = &report.targets[0];
    // A mutant that does not start is not "killed": its edit broke the server, not a rule.
    assert!(
        t.error.is_none(),
        "mutant {name} did not serve: {:?} (stderr: {:?})",
        t.error,
        t.log_tail
    );
    t.results[0].outcome
}
