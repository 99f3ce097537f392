//! The suite tests itself: every deliberately broken server is caught by at least one named case,
//! and the unbroken control server passes. Prints the kill matrix (mutant × killing cases).

mod mutant;

use std::time::Duration;

use echowire_conformance::split::Strategy;
use echowire_conformance::target::TargetSpec;
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
        ..Options::default()
    };
    // The timing cases (section 8.3) are informational and slow; they cannot kill anything.
    let cases = echowire_conformance::select(case::builtin(), select, &[], &["8.3-*".into()]);
    let report = echowire_conformance::run(cases, opts, &|_, _, _, _, _| {});
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
    let mut matrix = Vec::new();
    for f in FAULTS {
        // The named killer under whole and bytewise writes...
        let named = failing_cases(
            f,
            vec![Strategy::Whole, Strategy::Bytewise],
            &[killer(f).to_string()],
        );
        assert_eq!(
            named,
            vec![killer(f).to_string()],
            "{f:?} is not caught by {}",
            killer(f)
        );
        // ...and everything it fails under whole writes, for the kill matrix.
        let all = failing_cases(f, vec![Strategy::Whole], &[]);
        println!(
            "{f:?}: named killer {} fails; under `whole` {} case(s) fail: {}",
            killer(f),
            all.len(),
            all.join(" ")
        );
        matrix.push((f, all.len()));
    }
    println!("\nkill matrix (mutant, cases failing under whole): {matrix:?}");
}
