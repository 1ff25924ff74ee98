//! Every invariant of the judge, both directions: it holds on a correct history and fires
//! on a history a broken engine would produce. Histories are written here as an outside
//! observer would record them — no engine is involved, so what fires is the judge's own
//! model, not a rule it borrowed.

use smsim_judge::*;

const C: &str = "cmp_1";
const T: &str = "ten_1";
const A: &str = "ta_1";

fn setup() -> Setup {
    Setup {
        tenants: vec![TenantSetup {
            tenant: T.into(),
            opening_credits: 1_000,
            rate_limit_per_s: None,
            numbers: ["+301", "+302", "+303", "+300000"].map(String::from).into(),
        }],
        accounts: vec![AccountSetup {
            account: A.into(),
            wire: Wire::Mitto,
            price_per_segment: 10,
            rate_limit_per_s: None,
        }],
        halt_grace_ms: 1_000,
        forbidden_destinations: ["+300000".to_owned()].into(),
        contacts: Default::default(),
        retry: Some(RetrySetup {
            base_delay_ms: 3_000,
            multiplier: 2,
            max_attempts: 5,
            max_delay_ms: 300_000,
            jitter_percent: 20,
        }),
        journal: true,
        rate_at_provider: None,
        rate_strict: false,
    }
}

type History = Vec<(u64, Observation<'static>)>;

/// The driver created campaign `C` of `T` on `A` (the simulator's view: no marker, count
/// or template).
fn created() -> Observation<'static> {
    created_starting(None)
}

/// [`created`], scheduled to start at `starts_at`.
fn created_starting(starts_at: Option<u64>) -> Observation<'static> {
    Observation::CampaignCreated {
        campaign: C,
        tenant: T,
        account: A,
        marker: None,
        contacts: None,
        template: None,
        starts_at,
    }
}

fn row(
    destination: &'static str,
    provider_id: Option<&'static str>,
    error: Option<&'static str>,
) -> MessageRow<'static> {
    MessageRow { destination, body: "hi", provider_id, error_code: error, attempts: Some(1) }
}

fn moved(message: u64, from: Option<&'static str>, to: &'static str, row: MessageRow<'static>) -> Observation<'static> {
    Observation::MessageMoved { message: (1, message), campaign: C, from, to, mover: Mover::Engine, row }
}

fn counts(delivered: u64) -> &'static [(&'static str, u64)] {
    match delivered {
        2 => &[("delivered", 2)],
        _ => &[("delivered", 1), ("queued", 1)],
    }
}

fn reading(
    status: &'static str,
    sent: u64,
    total: u64,
    progress: i64,
    counts: Option<&'static [(&'static str, u64)]>,
) -> Observation<'static> {
    Observation::CampaignRead(CampaignReading {
        campaign: C,
        status,
        counts,
        sent,
        failed: 0,
        total,
        progress,
        pause_reason: None,
        unknown_outcome: None,
        completed_at: None,
    })
}

fn books(balance: i64, reserved: i64, charged: i64) -> Observation<'static> {
    Observation::BooksRead {
        tenant: T,
        balance: Some(balance),
        reserved: Some(reserved),
        charged,
        requested_after: None,
    }
}

/// Two messages of one campaign, sent, accepted, delivered; the campaign completes.
fn correct() -> History {
    vec![
        (0, created()),
        (10, moved(1, None, "queued", row("+301", None, None))),
        (10, moved(2, None, "queued", row("+302", None, None))),
        (10, Observation::CampaignMoved { campaign: C, from: "draft", to: "sending" }),
        (10, books(1_000, 20, 0)),
        (20, moved(1, Some("queued"), "submitting", row("+301", None, None))),
        (20, moved(2, Some("queued"), "submitting", row("+302", None, None))),
        (30, Observation::Received { account: A, destination: "+301", body: Some("hi") }),
        (30, Observation::Accepted { account: A, destination: "+301", body: "hi", provider_id: "p1" }),
        (30, Observation::Accepted { account: A, destination: "+302", body: "hi", provider_id: "p2" }),
        (40, moved(1, Some("submitting"), "accepted", row("+301", Some("p1"), None))),
        (40, moved(2, Some("submitting"), "accepted", row("+302", Some("p2"), None))),
        (40, books(980, 0, 20)),
        (
            50,
            Observation::ReportAnswered {
                account: A,
                provider_id: "p1",
                status: "Delivered",
                error_code: None,
                forged: false,
                answered: Some(200),
            },
        ),
        (
            50,
            Observation::ReportAnswered {
                account: A,
                provider_id: "p2",
                status: "Delivered",
                error_code: None,
                forged: false,
                answered: Some(200),
            },
        ),
        (50, moved(1, Some("accepted"), "delivered", row("+301", None, None))),
        (50, moved(2, Some("accepted"), "delivered", row("+302", None, None))),
        (50, Observation::CampaignMoved { campaign: C, from: "sending", to: "completed" }),
        (60, reading("completed", 2, 2, 100, Some(counts(2)))),
        (60, books(980, 0, 20)),
    ]
}

fn judge(history: &History) -> (Judge, Result<(), Violation>) {
    let mut judge = Judge::new(setup(), &[]);
    for &(at, observation) in history {
        if let Err(violation) = judge.observe(at, observation) {
            return (judge, Err(violation));
        }
    }
    let end = judge.finish(100);
    (judge, end)
}

#[track_caller]
fn fires(history: History, invariant: Invariant) -> Violation {
    match judge(&history).1 {
        Err(violation) => {
            assert_eq!(violation.invariant, invariant, "{violation}");
            violation
        }
        Ok(()) => panic!("`{invariant}` did not fire"),
    }
}

/// `history` with the observation at `index` replaced by `with`.
fn replaced(index: usize, with: Observation<'static>) -> History {
    let mut history = correct();
    history[index].1 = with;
    history
}

/// `history` with `extra` inserted before `index`.
fn inserted(index: usize, extra: Vec<(u64, Observation<'static>)>) -> History {
    let mut history = correct();
    history.splice(index..index, extra);
    history
}

fn position(history: &History, wanted: impl Fn(&Observation<'static>) -> bool) -> usize {
    history.iter().position(|(_, o)| wanted(o)).expect("the correct history has it")
}

#[test]
fn a_correct_history_holds_every_invariant() {
    let (judge, result) = judge(&correct());
    result.unwrap();
    for (invariant, tenant, verdict) in judge.verdicts() {
        match invariant {
            // Nothing in this history exercises these beyond their bookkeeping.
            Invariant::Halt | Invariant::Rate | Invariant::Transitions | Invariant::Liveness => {
                assert!(matches!(verdict, Verdict::Held(_)), "{invariant}: {verdict}")
            }
            _ => assert!(!matches!(verdict, Verdict::Broken), "{invariant} {tenant:?}: {verdict}"),
        }
    }
}

#[test]
fn transitions_fire_on_an_edge_the_design_does_not_have() {
    // A final report overwritten by a later one: delivered → undelivered.
    let mut history = correct();
    history.push((70, moved(1, Some("delivered"), "undelivered", row("+301", None, None))));
    fires(history, Invariant::Transitions);
    // An acceptance undone.
    let at = position(&correct(), |o| matches!(o, Observation::MessageMoved { to: "delivered", .. }));
    fires(
        inserted(at, vec![(45, moved(1, Some("accepted"), "queued", row("+301", None, None)))]),
        Invariant::Transitions,
    );
    // A status the design does not have.
    fires(replaced(at, moved(1, Some("accepted"), "read", row("+301", None, None))), Invariant::Transitions);
    // A move from a status the judge never saw the message in.
    fires(replaced(at, moved(1, Some("unknown"), "accepted", row("+301", None, None))), Invariant::Transitions);
}

#[test]
fn transitions_allow_retry_failed_only_when_the_operator_sent_it() {
    let failed = vec![
        (41, moved(3, None, "queued", row("+303", None, None))),
        (42, moved(3, Some("queued"), "submitting", row("+303", None, None))),
        (43, moved(3, Some("submitting"), "failed", row("+303", None, Some("INVALID_NUMBER")))),
    ];
    let retried = (
        44,
        Observation::MessageMoved {
            message: (1, 3),
            campaign: C,
            from: Some("failed"),
            to: "queued",
            mover: Mover::OperatorRetry,
            row: row("+303", None, None),
        },
    );
    let at = position(&correct(), |o| matches!(o, Observation::CampaignMoved { to: "completed", .. }));
    let mut history = inserted(at, [failed.clone(), vec![retried]].concat());
    history.truncate(at + 4);
    fires(history, Invariant::Transitions);
    let sent = (43, Observation::ActionSent { id: 1, campaign: Some(C), tenant: None, act: Act::RetryFailed });
    let mut history = inserted(at, [failed, vec![sent, retried]].concat());
    history.truncate(at + 5);
    let mut judge = Judge::new(setup(), &[Invariant::Transitions]);
    for &(at, observation) in &history {
        judge.observe(at, observation).unwrap();
    }
}

#[test]
fn money_fires_on_a_wrong_price() {
    // The engine reserved 2 × 15 for two one-segment messages at 10.
    let at = position(&correct(), |o| matches!(o, Observation::BooksRead { .. }));
    let violation = fires(replaced(at, books(1_000, 30, 0)), Invariant::Money);
    assert!(violation.message.contains("reserved 30"), "{violation}");
    let at = position(&correct(), |o| matches!(o, Observation::BooksRead { charged: 20, .. }));
    fires(replaced(at, books(970, 0, 30)), Invariant::Money);
}

#[test]
fn money_fires_on_an_overdraw_or_a_negative_balance() {
    // 1 000 funded; the engine shows 1 010 between balance and charges.
    let at = position(&correct(), |o| matches!(o, Observation::BooksRead { charged: 20, .. }));
    fires(replaced(at, books(990, 0, 20)), Invariant::Money);
    fires(replaced(at, books(-5, 0, 20)), Invariant::Money);
}

#[test]
fn money_follows_acknowledged_top_ups_and_doubts_unanswered_ones() {
    let at = position(&correct(), |o| matches!(o, Observation::BooksRead { charged: 20, .. }));
    let top_up = vec![
        (35, Observation::ActionSent { id: 7, campaign: None, tenant: Some(T), act: Act::Credits(500) }),
        (36, Observation::ActionAnswered { id: 7, status: 200 }),
    ];
    let mut history = inserted(at, top_up.clone());
    let books_at = at + 2;
    history[books_at].1 = books(1_480, 0, 20);
    let last = history.len() - 1;
    history[last].1 = books(1_480, 0, 20);
    judge(&history).1.unwrap();
    // Refused: the books must not show it.
    let mut refused = history.clone();
    refused[at + 1].1 = Observation::ActionAnswered { id: 7, status: 422 };
    fires(refused, Invariant::Money);
    // No answer: either total is possible.
    let mut unanswered = history.clone();
    unanswered[at + 1].1 = Observation::ActionAnswered { id: 7, status: 0 };
    judge(&unanswered).1.unwrap();
}

/// Live mode reads the books beside its actions: a reading asked for before a top-up was
/// acknowledged, and answered after, may show the books without it.
#[test]
fn money_doubts_a_top_up_acknowledged_while_a_reading_of_the_books_was_on_its_way() {
    let at = position(&correct(), |o| matches!(o, Observation::BooksRead { charged: 20, .. }));
    let top_up = vec![
        (35, Observation::ActionSent { id: 7, campaign: None, tenant: Some(T), act: Act::Credits(500) }),
        (36, Observation::ActionAnswered { id: 7, status: 200 }),
    ];
    let before_the_top_up = |requested_after| Observation::BooksRead {
        tenant: T,
        balance: Some(980),
        reserved: Some(0),
        charged: 20,
        requested_after: Some(requested_after),
    };
    let mut history = inserted(at, top_up);
    let last = history.len() - 1;
    history[last].1 = books(1_480, 0, 20);
    // Asked for before the acknowledgement (none had been acknowledged): either total.
    history[at + 2].1 = before_the_top_up(0);
    judge(&history).1.unwrap_or_else(|violation| panic!("{violation}"));
    // Asked for after it: the top-up must show.
    history[at + 2].1 = before_the_top_up(1);
    let violation = fires(history, Invariant::Money);
    assert!(violation.evidence.iter().any(|line| line.contains("0 acknowledged after")), "{violation}");
}

#[test]
fn money_fires_on_a_charge_for_a_message_the_provider_never_accepted() {
    let at = position(&correct(), |o| matches!(o, Observation::Accepted { destination: "+302", .. }));
    let mut history = correct();
    history.remove(at);
    fires(history, Invariant::Money);
}

#[test]
fn money_fires_on_a_refund_of_an_accepted_message() {
    let at = position(&correct(), |o| matches!(o, Observation::MessageMoved { message: (1, 2), to: "accepted", .. }));
    let history = replaced(at, moved(2, Some("submitting"), "failed", row("+302", None, Some("REJECTED"))));
    fires(history, Invariant::Money);
}

/// An unknown outcome stays charged: the provider may have sent it. An engine that
/// refunds it keeps books that agree with themselves, and the judge's ledger says no.
#[test]
fn money_fires_on_a_refunded_unknown_outcome() {
    let settle = |charged: i64| {
        let mut history = correct();
        history.truncate(position(&history, |o| matches!(o, Observation::Received { .. })));
        history.extend([
            (30, Observation::Accepted { account: A, destination: "+301", body: "hi", provider_id: "p1" }),
            (40, moved(1, Some("submitting"), "accepted", row("+301", Some("p1"), None))),
            (40, moved(2, Some("submitting"), "unknown", row("+302", None, None))),
            (90, moved(2, Some("unknown"), "failed", row("+302", None, Some("UNKNOWN_OUTCOME")))),
            (90, Observation::CampaignMoved { campaign: C, from: "sending", to: "completed" }),
            (95, books(1_000 - charged, 0, charged)),
        ]);
        history
    };
    judge(&settle(20)).1.unwrap();
    fires(settle(10), Invariant::Money);
}

#[test]
fn operator_fires_on_an_acceptance_after_an_acknowledged_cancel() {
    let cancel = vec![
        (1, Observation::ActionSent { id: 1, campaign: Some(C), tenant: None, act: Act::Cancel }),
        (2, Observation::ActionAnswered { id: 1, status: 200 }),
    ];
    let at = position(&correct(), |o| matches!(o, Observation::MessageMoved { from: Some("queued"), .. }));
    // Acceptances at 30 ms, more than the 1 000 ms grace after a cancel at 2 ms? No: within.
    let within = inserted(at, cancel.clone());
    let violation = judge(&within).1.unwrap_err();
    assert_eq!(violation.invariant, Invariant::Operator, "the campaign completed instead: {violation}");
    assert!(violation.message.contains("ended completed"), "{violation}");
    // Beyond the grace.
    let mut late = inserted(at, cancel);
    for (at, _) in late.iter_mut().skip(at + 2) {
        *at += 5_000;
    }
    let violation = fires(late, Invariant::Operator);
    assert!(violation.message.contains("after a cancel"), "{violation}");
}

#[test]
fn operator_holds_when_a_cancel_ends_the_campaign_cancelled() {
    let history: History = vec![
        (0, created()),
        (10, moved(1, None, "queued", row("+301", None, None))),
        (10, Observation::CampaignMoved { campaign: C, from: "draft", to: "sending" }),
        (11, Observation::ActionSent { id: 1, campaign: Some(C), tenant: None, act: Act::Cancel }),
        (12, moved(1, Some("queued"), "cancelled", row("+301", None, None))),
        (12, Observation::CampaignMoved { campaign: C, from: "sending", to: "cancelled" }),
        (13, Observation::ActionAnswered { id: 1, status: 200 }),
        (20, reading("cancelled", 0, 1, 100, Some(&[("cancelled", 1)]))),
        (20, books(1_000, 0, 0)),
    ];
    let (judge, result) = judge(&history);
    result.unwrap();
    assert!(judge.checks()[&Invariant::Operator] > 0);
}

#[test]
fn operator_fires_on_a_completion_while_paused_and_a_resume_that_leads_nowhere() {
    let pause = vec![
        (11, Observation::ActionSent { id: 1, campaign: Some(C), tenant: None, act: Act::Pause }),
        (12, Observation::ActionAnswered { id: 1, status: 200 }),
    ];
    let at = position(&correct(), |o| {
        matches!(o, Observation::ActionSent { .. } | Observation::MessageMoved { from: Some("queued"), .. })
    });
    // Paused at 12 ms, yet completed with no resume.
    fires(inserted(at, pause.clone()), Invariant::Operator);
    // Resumed: the correct history holds.
    let resume = vec![
        (13, Observation::ActionSent { id: 2, campaign: Some(C), tenant: None, act: Act::Resume }),
        (14, Observation::ActionAnswered { id: 2, status: 200 }),
    ];
    judge(&inserted(at, [pause.clone(), resume.clone()].concat())).1.unwrap();
    // Resumed, acknowledged, and the campaign still paused at the end.
    let history: History = vec![
        (0, created()),
        (10, moved(1, None, "queued", row("+301", None, None))),
        (10, Observation::CampaignMoved { campaign: C, from: "draft", to: "sending" }),
        (11, Observation::ActionSent { id: 1, campaign: Some(C), tenant: None, act: Act::Pause }),
        (11, Observation::CampaignMoved { campaign: C, from: "sending", to: "paused" }),
        (12, Observation::ActionAnswered { id: 1, status: 200 }),
        (13, Observation::ActionSent { id: 2, campaign: Some(C), tenant: None, act: Act::Resume }),
        (14, Observation::ActionAnswered { id: 2, status: 200 }),
        (20, reading("paused", 0, 1, 0, Some(&[("queued", 1)]))),
    ];
    let violation = fires(history, Invariant::Operator);
    assert!(violation.message.contains("resume"), "{violation}");
}

#[test]
fn attribution_fires_on_an_id_mapped_to_the_wrong_message() {
    // Incident 003: the bulk answer's ids shifted by one.
    let at = position(&correct(), |o| matches!(o, Observation::MessageMoved { message: (1, 1), to: "accepted", .. }));
    let violation = fires(
        replaced(at, moved(1, Some("submitting"), "accepted", row("+301", Some("p2"), None))),
        Invariant::Attribution,
    );
    assert!(violation.message.contains("another message"), "{violation}");
}

#[test]
fn attribution_fires_on_an_acknowledged_report_that_never_landed() {
    let mut history = correct();
    let at = position(&history, |o| matches!(o, Observation::MessageMoved { message: (1, 2), to: "delivered", .. }));
    history[at].1 = moved(2, Some("accepted"), "undelivered", row("+302", None, None));
    history.retain(|(_, o)| !matches!(o, Observation::CampaignRead(_)));
    fires(history, Invariant::Attribution);
    // Left accepted, though the report was acknowledged (the liveness gap: accepted is
    // not settled when a final report for it was acknowledged).
    let mut history = correct();
    history.remove(at);
    history.retain(|(_, o)| {
        !matches!(o, Observation::CampaignMoved { to: "completed", .. } | Observation::CampaignRead(_))
    });
    let mut judge = Judge::new(setup(), &[Invariant::Attribution]);
    for &(at, observation) in &history {
        judge.observe(at, observation).unwrap();
    }
    assert_eq!(judge.finish(100).unwrap_err().invariant, Invariant::Attribution);
}

/// [`correct`], but message 2's report is `Failure` carrying error code `carried`, and its
/// row shows `recorded` once it moved to undelivered.
fn failed_by_report(carried: Option<&'static str>, recorded: Option<&'static str>) -> History {
    let mut history = correct();
    for (_, observation) in history.iter_mut() {
        match observation {
            Observation::ReportAnswered { provider_id: "p2", status, error_code, .. } => {
                (*status, *error_code) = ("Failure", carried);
            }
            Observation::MessageMoved { message: (1, 2), to: "delivered", .. } => {
                *observation = moved(2, Some("accepted"), "undelivered", row("+302", None, recorded));
            }
            _ => {}
        }
    }
    history.retain(|(_, o)| !matches!(o, Observation::CampaignRead(_)));
    history
}

#[test]
fn attribution_fires_on_a_message_that_lost_its_reports_error_code() {
    // The error code a final report carried is the message's last error: dropped, or
    // another code kept, the failures by error code name the wrong cause.
    let dropped = fires(failed_by_report(Some("E42"), None), Invariant::Attribution);
    assert!(dropped.message.contains("carried error E42") && dropped.message.contains("with error none"), "{dropped}");
    let other = fires(failed_by_report(Some("E42"), Some("429")), Invariant::Attribution);
    assert!(other.message.contains("with error 429"), "{other}");
    // Silent when the message records the code, and when the report carried none (its
    // earlier error, if any, stands).
    judge(&failed_by_report(Some("E42"), Some("E42"))).1.unwrap();
    judge(&failed_by_report(None, None)).1.unwrap();
    judge(&failed_by_report(None, Some("429"))).1.unwrap();
}

#[test]
fn completion_fires_on_a_campaign_completed_with_a_message_pending() {
    let mut history = correct();
    let at = position(&history, |o| matches!(o, Observation::CampaignMoved { to: "completed", .. }));
    history.insert(at, (49, moved(3, None, "queued", row("+303", None, None))));
    fires(history, Invariant::Completion);
}

#[test]
fn completion_fires_on_an_acceptance_after_completion() {
    let mut history = correct();
    history.push((70, moved(3, None, "queued", row("+303", None, None))));
    history.push((80, Observation::Accepted { account: A, destination: "+303", body: "hi", provider_id: "p3" }));
    fires(history, Invariant::Completion);
}

#[test]
fn counters_fire_when_shown_numbers_differ_from_the_messages() {
    let at = position(&correct(), |o| matches!(o, Observation::CampaignRead(_)));
    // Incident 000: a counter bumped on every report — more sent than messages.
    fires(replaced(at, reading("completed", 3, 2, 100, None)), Invariant::Counters);
    fires(replaced(at, reading("completed", 2, 2, 100, Some(&[("delivered", 3)]))), Invariant::Counters);
    fires(replaced(at, reading("completed", 1, 2, 100, Some(counts(2)))), Invariant::Counters);
}

#[test]
fn progress_fires_above_100_against_the_messages_or_backwards() {
    let at = position(&correct(), |o| matches!(o, Observation::CampaignRead(_)));
    // Incident 004: 290%.
    fires(replaced(at, reading("completed", 2, 2, 290, Some(counts(2)))), Invariant::Progress);
    fires(replaced(at, reading("completed", 2, 2, 50, Some(counts(2)))), Invariant::Progress);
    let mut history = correct();
    history.insert(at, (55, reading("completed", 2, 2, 100, Some(counts(2)))));
    history.push((
        70,
        Observation::CampaignRead(CampaignReading {
            campaign: C,
            status: "completed",
            counts: None,
            sent: 2,
            failed: 0,
            total: 2,
            progress: 50,
            pause_reason: None,
            unknown_outcome: None,
            completed_at: None,
        }),
    ));
    // Without the messages (live), only the direction is judged.
    let mut judge = Judge::new(setup(), &[Invariant::Progress]);
    let live: Vec<_> = history
        .iter()
        .filter(|(_, o)| matches!(o, Observation::CampaignCreated { .. } | Observation::CampaignRead(_)))
        .collect();
    let result: Result<Vec<()>, _> = live.iter().map(|&&(at, o)| judge.observe(at, o)).collect();
    assert_eq!(result.unwrap_err().invariant, Invariant::Progress);
}

#[test]
fn halt_fires_on_a_claim_while_paused() {
    let at = position(&correct(), |o| matches!(o, Observation::MessageMoved { from: Some("queued"), .. }));
    fires(
        inserted(at, vec![(15, Observation::CampaignMoved { campaign: C, from: "sending", to: "paused" })]),
        Invariant::Halt,
    );
}

#[test]
fn rate_fires_above_twice_the_limit_in_a_second() {
    // The account's limit is 1/s: a bucket of one second's burst plus a refill, at most 2.
    let mut history: History = vec![(0, created())];
    for n in 1..=3 {
        history.push((10, moved(n, None, "queued", row("+301", None, None))));
    }
    history.push((10, Observation::CampaignMoved { campaign: C, from: "draft", to: "sending" }));
    for n in 1..=2 {
        history.push((100 * n, moved(n, Some("queued"), "submitting", row("+301", None, None))));
    }
    let mut limited = setup();
    limited.accounts[0].rate_limit_per_s = Some(1);
    let mut judge = Judge::new(limited, &[Invariant::Rate]);
    for &(at, o) in &history {
        judge.observe(at, o).unwrap();
    }
    let third = moved(3, Some("queued"), "submitting", row("+301", None, None));
    assert_eq!(judge.observe(900, third).unwrap_err().invariant, Invariant::Rate);
}

/// With strict buckets (one token), the bound is the limit plus one: at 2/s, three claims
/// in a second hold and a fourth fires — where one second's burst would allow four.
#[test]
fn rate_with_strict_buckets_fires_above_the_limit_plus_one() {
    let history = |claims: u64| -> History {
        let mut history: History = vec![(0, created())];
        for n in 1..=claims {
            history.push((10, moved(n, None, "queued", row("+301", None, None))));
        }
        history.push((10, Observation::CampaignMoved { campaign: C, from: "draft", to: "sending" }));
        for n in 1..=claims {
            history.push((100 * n, moved(n, Some("queued"), "submitting", row("+301", None, None))));
        }
        history
    };
    let judged = |strict: bool, claims: u64| {
        let mut limited = Setup { rate_strict: strict, ..setup() };
        limited.accounts[0].rate_limit_per_s = Some(2);
        let mut judge = Judge::new(limited, &[Invariant::Rate]);
        history(claims).into_iter().try_for_each(|(at, o)| judge.observe(at, o))
    };
    judged(true, 3).unwrap_or_else(|violation| panic!("the limit plus one: {violation}"));
    let violation = judged(true, 4).expect_err("a fourth claim in the second");
    assert_eq!(violation.invariant, Invariant::Rate);
    assert!(violation.evidence.iter().any(|line| line.contains("at most 3") && line.contains("strict")), "{violation}");
    judged(false, 4).unwrap_or_else(|violation| panic!("one second's burst allows twice the limit: {violation}"));
}

#[test]
fn at_most_once_fires_on_a_second_acceptance() {
    let at = position(&correct(), |o| matches!(o, Observation::Accepted { .. }));
    let again = (31, Observation::Accepted { account: A, destination: "+301", body: "hi", provider_id: "p9" });
    fires(inserted(at + 1, vec![again]), Invariant::AtMostOnce);
}

#[test]
fn isolation_fires_on_a_forbidden_destination_or_another_tenants_answer() {
    let at = position(&correct(), |o| matches!(o, Observation::Received { .. }));
    fires(replaced(at, Observation::Received { account: A, destination: "+300000", body: None }), Invariant::Isolation);
    let probe = |answered| Observation::CrossTenantProbe { request: "GET cmp_1 by globex", answered };
    fires(replaced(at, probe(200)), Invariant::Isolation);
    fires(replaced(at, probe(403)), Invariant::Isolation);
    judge(&replaced(at, probe(404))).1.unwrap();
    judge(&replaced(at, probe(0))).1.unwrap();
}

#[test]
fn forgery_fires_on_an_acknowledged_forgery_or_one_that_changed_a_message() {
    let at = position(&correct(), |o| matches!(o, Observation::ReportAnswered { .. }));
    let forged = |answered| Observation::ReportAnswered {
        account: A,
        provider_id: "p1",
        status: "Failure",
        error_code: None,
        forged: true,
        answered: Some(answered),
    };
    fires(inserted(at, vec![(45, forged(200))]), Invariant::Forgery);
    judge(&inserted(at, vec![(45, forged(401))])).1.unwrap();
    // Refused, yet the message ended as the forger said and no genuine report did.
    let mut history = inserted(at, vec![(45, forged(401))]);
    for (_, observation) in history.iter_mut() {
        if let Observation::ReportAnswered { provider_id: "p1", forged: false, .. } = observation {
            *observation = Observation::Received { account: A, destination: "+301", body: Some("hi") };
        }
        if let Observation::MessageMoved { message: (1, 1), to: "delivered", .. } = observation {
            *observation = moved(1, Some("accepted"), "undelivered", row("+301", None, None));
        }
    }
    history.retain(|(_, o)| !matches!(o, Observation::CampaignRead(_)));
    fires(history, Invariant::Forgery);
}

#[test]
fn liveness_fires_on_a_campaign_still_sending() {
    let mut history = correct();
    let at = position(&history, |o| matches!(o, Observation::CampaignMoved { to: "completed", .. }));
    history.truncate(at);
    fires(history, Invariant::Liveness);
}

#[test]
fn what_an_observer_was_not_shown_is_not_checked() {
    // Live mode's view: no journal, no books.
    let history: History = vec![
        (0, created()),
        (30, Observation::Accepted { account: A, destination: "+301", body: "hi", provider_id: "p1" }),
        (60, reading("completed", 1, 1, 100, None)),
    ];
    let mut judge = Judge::new(Setup { journal: false, ..setup() }, &[]);
    history.iter().try_for_each(|&(at, o)| judge.observe(at, o)).unwrap();
    judge.finish(100).unwrap();
    let verdict = |wanted: Invariant| {
        judge
            .verdicts()
            .into_iter()
            .find(|(invariant, _, _)| *invariant == wanted)
            .map(|(_, _, verdict)| verdict)
            .unwrap()
    };
    assert!(matches!(verdict(Invariant::Money), Verdict::NotChecked(_)), "{}", verdict(Invariant::Money));
    assert!(matches!(verdict(Invariant::Halt), Verdict::NotChecked(_)));
    assert!(matches!(verdict(Invariant::Counters), Verdict::Held(_)));
}

// --- live mode: no journal, the campaign told apart by the driver's marker --------------

/// A live reading: numbers only, as an engine's API shows them.
fn live_reading(
    status: &'static str,
    sent: u64,
    failed: u64,
    progress: i64,
    unknown_outcome: Option<u64>,
) -> Observation<'static> {
    Observation::CampaignRead(CampaignReading {
        campaign: C,
        status,
        counts: None,
        sent,
        failed,
        total: 3,
        progress,
        pause_reason: None,
        unknown_outcome,
        completed_at: None,
    })
}

fn charges(charged: i64) -> Observation<'static> {
    Observation::BooksRead { tenant: T, balance: None, reserved: None, charged, requested_after: None }
}

/// Three messages: two accepted and delivered (one of two segments: 161 GSM-7 characters),
/// one never received and settled as an unknown outcome. Prices: 20 + 10, and the unknown
/// one at most the dearest.
fn live_correct() -> History {
    const LONG: &str = "[c] aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
    vec![
        (
            0,
            Observation::CampaignCreated {
                campaign: C,
                tenant: T,
                account: A,
                marker: Some("[c] "),
                contacts: Some(3),
                template: None,
                starts_at: None,
            },
        ),
        (10, live_reading("sending", 0, 0, 0, Some(0))),
        (20, Observation::Accepted { account: A, destination: "+301", body: LONG, provider_id: "p1" }),
        (20, Observation::Accepted { account: A, destination: "+302", body: "[c] hi", provider_id: "p2" }),
        // Another campaign's message, without the marker: not this campaign's.
        (20, Observation::Accepted { account: A, destination: "+309", body: "[d] hi", provider_id: "p9" }),
        (30, live_reading("sending", 2, 0, 66, Some(0))),
        (90, live_reading("completed", 2, 1, 100, Some(1))),
        (90, charges(40)),
    ]
}

/// Live mode imports valid, opted-in contacts only: nothing is forbidden, nothing skipped.
fn live_setup() -> Setup {
    Setup { forbidden_destinations: Default::default(), journal: false, ..setup() }
}

fn live_judge(history: &History) -> Result<(), Violation> {
    let mut judge = Judge::new(live_setup(), &[]);
    for &(at, observation) in history {
        judge.observe(at, observation)?;
    }
    judge.finish(100)
}

#[track_caller]
fn live_fires(history: History, invariant: Invariant) {
    match live_judge(&history) {
        Err(violation) => assert_eq!(violation.invariant, invariant, "{violation}"),
        Ok(()) => panic!("`{invariant}` did not fire"),
    }
}

fn live_replaced(index: usize, with: Observation<'static>) -> History {
    let mut history = live_correct();
    history[index].1 = with;
    history
}

#[test]
fn a_correct_live_history_holds_and_its_charges_may_cover_the_unknown_one() {
    live_judge(&live_correct()).unwrap();
    // 30 for what was accepted; up to 20 more for the unknown one (the dearest).
    live_judge(&live_replaced(7, charges(30))).unwrap();
    live_judge(&live_replaced(7, charges(50))).unwrap();
}

#[test]
fn live_money_fires_on_charges_outside_the_judges_price_of_the_acceptances() {
    live_fires(live_replaced(7, charges(29)), Invariant::Money);
    live_fires(live_replaced(7, charges(51)), Invariant::Money);
    // More than the driver ever funded (1 000), even mid-run.
    live_fires(live_replaced(1, charges(1_001)), Invariant::Money);
}

#[test]
fn live_counters_fire_on_sent_beyond_the_acceptances_or_acceptances_uncounted() {
    // The engine says 3 sent; the provider took 2 of its messages.
    live_fires(live_replaced(5, live_reading("sending", 3, 0, 100, Some(0))), Invariant::Counters);
    // At the end, 2 accepted but 1 sent and no unknown outcome.
    live_fires(live_replaced(6, live_reading("completed", 1, 2, 100, Some(0))), Invariant::Counters);
    // More messages than contacts.
    let mut history = live_correct();
    history[6].1 = Observation::CampaignRead(CampaignReading {
        campaign: C,
        status: "completed",
        counts: None,
        sent: 2,
        failed: 2,
        total: 4,
        progress: 100,
        pause_reason: None,
        unknown_outcome: Some(2),
        completed_at: None,
    });
    live_fires(history, Invariant::Counters);
}

#[test]
fn live_completion_fires_on_a_completed_reading_with_work_left_or_an_acceptance_after_it() {
    live_fires(live_replaced(6, live_reading("completed", 2, 0, 100, Some(0))), Invariant::Completion);
    live_fires(live_replaced(6, live_reading("completed", 2, 1, 66, Some(1))), Invariant::Completion);
    let mut history = live_correct();
    history
        .insert(7, (95, Observation::Accepted { account: A, destination: "+303", body: "[c] hi", provider_id: "p3" }));
    live_fires(history, Invariant::Completion);
}

#[test]
fn live_mode_leaves_what_needs_the_messages_not_checked() {
    let mut judge = Judge::new(live_setup(), &[]);
    for &(at, observation) in &live_correct() {
        judge.observe(at, observation).unwrap();
    }
    judge.finish(100).unwrap();
    for (invariant, _, verdict) in judge.verdicts() {
        let checked = matches!(verdict, Verdict::Held(_));
        match invariant {
            Invariant::Attribution | Invariant::Rate | Invariant::Operator | Invariant::Forgery => {
                assert!(!checked, "{invariant}: {verdict}")
            }
            // Halt is judged at acceptances where claims are not seen.
            Invariant::Counters | Invariant::Money | Invariant::Completion | Invariant::Progress | Invariant::Halt => {
                assert!(checked, "{invariant}: {verdict}")
            }
            _ => {}
        }
    }
}

/// Live `halt`, from acceptance times: once the engine shows a campaign paused (here by
/// itself, as for want of credits), nothing of it is accepted past the grace — unless an
/// action was sent since that may set it going again (a top-up, a resume).
#[test]
fn live_halt_fires_on_an_acceptance_long_after_the_engine_showed_the_campaign_paused() {
    let paused_then_accepted = |accepted_at: u64, between: Option<Observation<'static>>| -> History {
        let mut history = live_correct();
        history.truncate(2);
        history.push((12, live_reading("paused", 0, 0, 0, Some(0))));
        if let Some(between) = between {
            history.push((14, between));
        }
        history.push((
            accepted_at,
            Observation::Accepted { account: A, destination: "+301", body: "[c] hi", provider_id: "p1" },
        ));
        history
    };
    // Judged as the acceptance is seen (the run goes on; the campaign is not finished).
    let observe = |history: History| -> Result<(), Violation> {
        let mut judge = Judge::new(live_setup(), &[]);
        history.into_iter().try_for_each(|(at, observation)| judge.observe(at, observation))
    };
    // 1 000 ms of grace (one lease and the reaper's slack) after the reading.
    let violation = observe(paused_then_accepted(1_013, None)).expect_err("an acceptance past the grace");
    assert_eq!(violation.invariant, Invariant::Halt, "{violation}");
    observe(paused_then_accepted(1_012, None)).unwrap_or_else(|violation| panic!("within the grace: {violation}"));
    let top_up = Observation::ActionSent { id: 7, campaign: None, tenant: Some(T), act: Act::Credits(500) };
    observe(paused_then_accepted(5_000, Some(top_up))).unwrap_or_else(|violation| panic!("{violation}"));
    let resume = Observation::ActionSent { id: 8, campaign: Some(C), tenant: None, act: Act::Resume };
    observe(paused_then_accepted(5_000, Some(resume))).unwrap_or_else(|violation| panic!("{violation}"));
    // A later reading of it sending again lifts it too.
    let sending = live_reading("sending", 0, 0, 0, Some(0));
    observe(paused_then_accepted(5_000, Some(sending))).unwrap_or_else(|violation| panic!("{violation}"));
}

/// Live `isolation`, from acceptances: a campaign told apart by its marker goes only to
/// its own tenant's contacts.
#[test]
fn live_isolation_fires_on_an_acceptance_to_another_tenants_contact() {
    let to = |destination: &'static str| {
        let mut history = live_correct();
        history.truncate(2);
        history.push((20, Observation::Accepted { account: A, destination, body: "[c] hi", provider_id: "p1" }));
        history
    };
    live_fires(to("+399"), Invariant::Isolation);
    let mut judge = Judge::new(live_setup(), &[]);
    for (at, observation) in to("+301") {
        judge.observe(at, observation).unwrap_or_else(|violation| panic!("its own contact: {violation}"));
    }
    // A body without any campaign's marker is not the engine's to answer for here.
    let mut unmarked = to("+399");
    unmarked[2].1 = Observation::Accepted { account: A, destination: "+399", body: "[d] hi", provider_id: "p1" };
    let mut judge = Judge::new(live_setup(), &[]);
    for (at, observation) in unmarked {
        judge.observe(at, observation).unwrap_or_else(|violation| panic!("another campaign's body: {violation}"));
    }
}

/// Live mode's false alarm: a pause and a resume in flight at once; the engine refused the
/// resume (409: still sending) and then applied the pause. The campaign ends paused by the
/// operator — not stuck — and the judge must say so; a resume that was acknowledged and
/// left it paused is still a violation.
#[test]
fn a_refused_resume_leaves_the_operators_pause_in_force() {
    let history = |resume_answer: u16| -> History {
        vec![
            (0, created()),
            (10, moved(1, None, "queued", row("+301", None, None))),
            (10, Observation::CampaignMoved { campaign: C, from: "draft", to: "sending" }),
            (11, Observation::ActionSent { id: 1, campaign: Some(C), tenant: None, act: Act::Pause }),
            (13, Observation::ActionSent { id: 2, campaign: Some(C), tenant: None, act: Act::Resume }),
            (14, Observation::ActionAnswered { id: 1, status: 200 }),
            (14, Observation::CampaignMoved { campaign: C, from: "sending", to: "paused" }),
            (15, Observation::ActionAnswered { id: 2, status: resume_answer }),
            (20, reading("paused", 0, 1, 0, Some(&[("queued", 1)]))),
        ]
    };
    judge(&history(409)).1.unwrap();
    fires(history(200), Invariant::Operator);
}

/// Skipped means opted out or invalid: a valid, opted-in number skipped never got its
/// message (an engine that reads every contact as opted out sends nothing and "completes").
#[test]
fn isolation_fires_on_a_valid_number_skipped() {
    let at = position(&correct(), |o| matches!(o, Observation::MessageMoved { message: (1, 2), from: None, .. }));
    fires(replaced(at, moved(2, None, "skipped", row("+302", None, None))), Invariant::Isolation);
    // The forbidden number skipped is right.
    let history: History = vec![(0, created()), (10, moved(1, None, "skipped", row("+300000", None, None)))];
    judge(&history).1.unwrap();
}

/// The customer gets the text the operator wrote: the judge renders the campaign's
/// template for each contact with its own renderer and compares.
#[test]
fn content_fires_on_a_body_that_is_not_the_rendered_template() {
    let mut with_contacts = setup();
    with_contacts.contacts.insert("+301".into(), [("first_name".to_owned(), "Maria".to_owned())].into());
    let created = Observation::CampaignCreated {
        campaign: C,
        tenant: T,
        account: A,
        marker: None,
        contacts: None,
        template: Some("Hi {{first_name|there}}"),
        starts_at: None,
    };
    let run = |body: &'static str| {
        let mut judge = Judge::new(with_contacts.clone(), &[]);
        judge.observe(0, created)?;
        let row = MessageRow { destination: "+301", body, provider_id: None, error_code: None, attempts: None };
        judge.observe(
            10,
            Observation::MessageMoved {
                message: (1, 1),
                campaign: C,
                from: None,
                to: "queued",
                mover: Mover::Engine,
                row,
            },
        )
    };
    run("Hi Maria").unwrap();
    assert_eq!(run("Hi there").unwrap_err().invariant, Invariant::Content);
    assert_eq!(run("").unwrap_err().invariant, Invariant::Content);
}

/// A campaign of `T` on `A` scheduled to start at `starts_at` ms, with one message.
fn scheduled(starts_at: u64, claimed_at: u64) -> History {
    vec![
        (0, created_starting(Some(starts_at))),
        (10, moved(1, None, "queued", row("+301", None, None))),
        (claimed_at, Observation::CampaignMoved { campaign: C, from: "draft", to: "sending" }),
        (claimed_at, moved(1, Some("queued"), "submitting", row("+301", None, None))),
        (claimed_at + 5, Observation::Accepted { account: A, destination: "+301", body: "hi", provider_id: "p1" }),
    ]
}

/// The operator scheduled the campaign: nothing of it is claimed, nor accepted, before.
#[test]
fn operator_fires_on_a_scheduled_campaign_sent_before_its_start() {
    let run = |history: &History| {
        let mut judge = Judge::new(setup(), &[Invariant::Operator]);
        history.iter().try_for_each(|&(at, o)| judge.observe(at, o))
    };
    run(&scheduled(1_000, 1_000)).unwrap();
    assert_eq!(run(&scheduled(1_000, 999)).unwrap_err().invariant, Invariant::Operator);
    // Seen at the provider alone (live mode, no claims shown): the acceptance fires.
    let mut accepted_only = scheduled(1_000, 900);
    accepted_only.remove(3);
    assert_eq!(run(&accepted_only).unwrap_err().invariant, Invariant::Operator);
}

/// A message of the tenant's campaign goes to one of the tenant's contacts.
#[test]
fn isolation_fires_on_a_message_to_a_number_that_is_not_the_tenants() {
    let at = position(&correct(), |o| matches!(o, Observation::MessageMoved { message: (1, 2), from: None, .. }));
    fires(replaced(at, moved(2, None, "queued", row("+399", None, None))), Invariant::Isolation);
    // A setup that names no numbers holds nothing to them.
    let mut open = setup();
    open.tenants[0].numbers.clear();
    let mut judge = Judge::new(open, &[Invariant::Isolation]);
    judge.observe(0, created()).unwrap();
    judge.observe(10, moved(2, None, "queued", row("+399", None, None))).unwrap();
}

/// A tenant may not create a campaign on another tenant's private account: any 2xx is a
/// breach, any refusal or no answer is not.
#[test]
fn isolation_fires_on_a_campaign_created_on_another_tenants_private_account() {
    let at = position(&correct(), |o| matches!(o, Observation::Received { .. }));
    let probe = |answered| Observation::ForeignAccountProbe { request: "POST /v1/campaigns on ta_2 by acme", answered };
    fires(replaced(at, probe(201)), Invariant::Isolation);
    for refused in [403, 404, 422, 0] {
        judge(&replaced(at, probe(refused))).1.unwrap();
    }
}

/// One message refused as a whole request with `status` at 30 ms (Retry-After
/// `retry_after_ms`), then received again at `again_ms`.
fn refused_then_again(status: u16, retry_after_ms: Option<u64>, again_ms: u64) -> History {
    vec![
        (0, created()),
        (10, moved(1, None, "queued", row("+301", None, None))),
        (10, Observation::CampaignMoved { campaign: C, from: "draft", to: "sending" }),
        (20, moved(1, Some("queued"), "submitting", row("+301", None, None))),
        (30, Observation::Refused { account: A, destination: "+301", body: "hi", status, retry_after_ms }),
        (40, moved(1, Some("submitting"), "queued", row("+301", None, None))),
        (again_ms, Observation::Received { account: A, destination: "+301", body: Some("hi") }),
    ]
}

fn retries_judged(history: &History) -> Result<(), Violation> {
    let mut judge = Judge::new(setup(), &[Invariant::Retries]);
    history.iter().try_for_each(|&(at, o)| judge.observe(at, o))
}

/// After a retryable refusal the message comes back no sooner than the first backoff less
/// its jitter (3 s − 20 %), nor before the provider's Retry-After.
#[test]
fn retries_fire_on_a_resubmission_inside_the_backoff_or_the_retry_after() {
    retries_judged(&refused_then_again(503, None, 30 + 2_400)).unwrap();
    let early = retries_judged(&refused_then_again(503, None, 30 + 2_399)).unwrap_err();
    assert_eq!(early.invariant, Invariant::Retries, "{early}");
    retries_judged(&refused_then_again(429, Some(5_000), 30 + 5_000)).unwrap();
    let early = retries_judged(&refused_then_again(429, Some(5_000), 30 + 4_999)).unwrap_err();
    assert_eq!(early.invariant, Invariant::Retries, "{early}");
    // A permanent refusal is not a retry the backoff governs.
    retries_judged(&refused_then_again(400, None, 31)).unwrap();
    // No policy given: nothing to hold it to.
    let mut judge = Judge::new(Setup { retry: None, ..setup() }, &[Invariant::Retries]);
    refused_then_again(503, None, 31).iter().try_for_each(|&(at, o)| judge.observe(at, o)).unwrap();
    assert!(matches!(judge.verdicts()[0].2, Verdict::NotChecked(_) | Verdict::Held(_)));
}

/// A retryable refusal fails the message only once its attempts are spent.
#[test]
fn retries_fire_on_a_message_failed_on_a_retryable_refusal_with_attempts_left() {
    let failed = |status: u16, attempts: u32| -> History {
        let mut history = refused_then_again(status, None, 0);
        history.truncate(5);
        let row = MessageRow { attempts: Some(attempts), ..row("+301", None, Some("PROVIDER_ERROR")) };
        history.push((40, moved(1, Some("submitting"), "failed", row)));
        history
    };
    let early = retries_judged(&failed(503, 1)).unwrap_err();
    assert_eq!(early.invariant, Invariant::Retries, "{early}");
    retries_judged(&failed(503, 5)).unwrap();
    retries_judged(&failed(422, 1)).unwrap();
}

/// An acknowledged retry-failed requeues every failure that was failed when it was sent
/// (judged at the end, as its answer may arrive before the moves it made).
#[test]
fn retries_fire_on_an_acknowledged_retry_failed_that_left_a_failure() {
    let history = |requeued: bool| -> History {
        let mut history = vec![
            (0, created()),
            (10, moved(1, None, "queued", row("+301", None, None))),
            (10, Observation::CampaignMoved { campaign: C, from: "draft", to: "sending" }),
            (20, moved(1, Some("queued"), "submitting", row("+301", None, None))),
            (30, moved(1, Some("submitting"), "failed", row("+301", None, Some("INVALID_NUMBER")))),
            (50, Observation::ActionSent { id: 1, campaign: Some(C), tenant: None, act: Act::RetryFailed }),
            (60, Observation::ActionAnswered { id: 1, status: 200 }),
        ];
        if requeued {
            let retried = Observation::MessageMoved {
                message: (1, 1),
                campaign: C,
                from: Some("failed"),
                to: "queued",
                mover: Mover::OperatorRetry,
                row: row("+301", None, None),
            };
            history.push((60, retried));
        }
        history
    };
    let end = |history: &History| {
        let mut judge = Judge::new(setup(), &[Invariant::Retries]);
        history.iter().try_for_each(|&(at, o)| judge.observe(at, o))?;
        judge.finish(100)
    };
    end(&history(true)).unwrap();
    assert_eq!(end(&history(false)).unwrap_err().invariant, Invariant::Retries);
}

/// Where the journal shows a campaign's moves, a reading shows the status the journal
/// last moved it to (a backend that reads its status column back wrong shows another).
#[test]
fn transitions_fire_on_a_reading_that_disagrees_with_the_journal() {
    let at = position(&correct(), |o| matches!(o, Observation::CampaignRead(_)));
    fires(replaced(at, reading("sending", 2, 2, 100, Some(counts(2)))), Invariant::Transitions);
    // A campaign the journal never moved is a draft, whatever a reading says.
    let never_moved: History = vec![
        (0, created()),
        (10, moved(1, None, "queued", row("+301", None, None))),
        (20, reading("scheduled", 0, 1, 0, None)),
    ];
    fires(never_moved.clone(), Invariant::Transitions);
    // Without the journal (live mode), a reading is all there is.
    let mut judge = Judge::new(Setup { journal: false, ..setup() }, &[Invariant::Transitions]);
    for (at, observation) in never_moved {
        judge.observe(at, observation).unwrap();
    }
}

/// A credit change is refused for want of credits only when the tenant could not afford
/// it while it was in flight: never a top-up, and never a debit of at most what was
/// available (funded, less held and spent, by the judge's ledger) throughout.
#[test]
fn money_fires_on_an_affordable_credit_change_refused_for_credits() {
    let change = |amount: i64, answer: u16| -> History {
        let mut history = correct();
        // After the campaign: 1 000 funded, 20 charged, nothing held — 980 available.
        history
            .push((70, Observation::ActionSent { id: 9, campaign: None, tenant: Some(T), act: Act::Credits(amount) }));
        history.push((75, Observation::ActionAnswered { id: 9, status: answer }));
        history
    };
    fires(change(-980, 402), Invariant::Money);
    fires(change(500, 402), Invariant::Money);
    judge(&change(-981, 402)).1.unwrap();
    judge(&change(-980, 200)).1.unwrap();
    // Two changes in doubt at once: either may have gone first, so neither refusal is judged.
    let mut overlapping = change(-980, 402);
    overlapping.insert(
        overlapping.len() - 1,
        (71, Observation::ActionSent { id: 10, campaign: None, tenant: Some(T), act: Act::Credits(-500) }),
    );
    judge(&overlapping).1.unwrap();
}

/// Only a completed campaign shows a completion time, no earlier than its last
/// message's settlement.
#[test]
fn completion_fires_on_a_completion_time_that_is_not_the_completions() {
    let at = position(&correct(), |o| matches!(o, Observation::CampaignRead(_)));
    let shown = |status: &'static str, completed_at: Option<u64>| {
        Observation::CampaignRead(CampaignReading {
            campaign: C,
            status,
            counts: Some(counts(2)),
            sent: 2,
            failed: 0,
            total: 2,
            progress: 100,
            pause_reason: None,
            unknown_outcome: None,
            completed_at,
        })
    };
    judge(&replaced(at, shown("completed", Some(50)))).1.unwrap();
    fires(replaced(at, shown("completed", Some(10))), Invariant::Completion);
    let sending_at = position(&correct(), |o| matches!(o, Observation::MessageMoved { to: "submitting", .. }));
    let early = Observation::CampaignRead(CampaignReading {
        status: "sending",
        counts: Some(&[("queued", 2)]),
        sent: 0,
        progress: 0,
        completed_at: Some(10),
        ..match shown("sending", None) {
            Observation::CampaignRead(reading) => reading,
            _ => unreachable!(),
        }
    });
    fires(inserted(sending_at, vec![(15, early)]), Invariant::Completion);
}

/// Where the claims are not shown (live mode), `rate` counts arrivals at the provider: an
/// account limited to 2/s may receive 2 × 2, plus what a 500 ms latency spread brings
/// together (1), plus one, in any one second.
#[test]
fn rate_fires_at_the_provider_above_twice_the_limit_and_the_spread() {
    let mut at_provider = Setup { rate_at_provider: Some(500), journal: false, ..setup() };
    at_provider.accounts[0].rate_limit_per_s = Some(2);
    let arrivals = |count: u64| {
        let mut judge = Judge::new(at_provider.clone(), &[Invariant::Rate]);
        (0..count).try_for_each(|n| {
            judge.observe(1_000 + n * 10, Observation::Received { account: A, destination: "+301", body: None })
        })
    };
    arrivals(6).unwrap();
    assert_eq!(arrivals(7).unwrap_err().invariant, Invariant::Rate);
    // Without a limit there is nothing to count against.
    let mut judge = Judge::new(Setup { rate_at_provider: Some(500), ..setup() }, &[Invariant::Rate]);
    for n in 0..50 {
        judge.observe(1_000 + n, Observation::Received { account: A, destination: "+301", body: None }).unwrap();
    }
}

/// An engine may put text of its own around the body it was given; its messages are still
/// told apart by the marker inside, and priced as the provider received them.
#[test]
fn live_acceptances_are_told_apart_by_a_marker_inside_the_body() {
    let mut history = live_correct();
    for (_, observation) in history.iter_mut() {
        if let Observation::Accepted { body, .. } = observation {
            if *body == "[c] hi" {
                *body = "ACME: [c] hi";
            }
        }
    }
    // Still this campaign's second acceptance: without it, 2 sent would be more than the
    // judge saw accepted.
    live_judge(&history).unwrap();
    for (_, observation) in history.iter_mut() {
        if let Observation::Accepted { body, .. } = observation {
            if *body == "ACME: [c] hi" {
                *body = "ACME: hi";
            }
        }
    }
    live_fires(history, Invariant::Counters);
}

/// An answer to bad input, as the engine's JSON reads.
fn refusal(status: u16, code: &'static str, field: &'static str, message: &'static str) -> InputAnswer<'static> {
    InputAnswer { status, code: Some(code), field: Some(field), message: Some(message), import: None }
}

fn template(template: &'static str, answer: InputAnswer<'static>) -> Observation<'static> {
    Observation::InputSent { tenant: "mallory", input: Input::Campaign { template }, answer }
}

#[test]
fn input_fires_on_a_template_at_fault_accepted_or_refused_without_saying_where() {
    let right = refusal(400, "VALIDATION", "body_template", "unclosed placeholder starting at byte 3");
    let at = position(&correct(), |o| matches!(o, Observation::Received { .. }));
    judge(&inserted(at, vec![(25, template("Hi {{first_name", right))])).1.unwrap();
    let accepted = InputAnswer { status: 201, code: None, field: None, message: None, import: None };
    fires(inserted(at, vec![(25, template("Hi {{first_name", accepted))]), Invariant::Input);
    let elsewhere = refusal(400, "VALIDATION", "body_template", "unclosed placeholder starting at byte 0");
    fires(inserted(at, vec![(25, template("Hi {{first_name", elsewhere))]), Invariant::Input);
    let other_field = refusal(400, "VALIDATION", "name", "unclosed placeholder starting at byte 3");
    fires(inserted(at, vec![(25, template("Hi {{first_name", other_field))]), Invariant::Input);
    // A valid template refused is as wrong as a bad one accepted.
    let refused = refusal(400, "VALIDATION", "body_template", "bad placeholder name `a` at byte 0");
    fires(inserted(at, vec![(25, template("{{a}}", refused))]), Invariant::Input);
    // No answer: nothing to judge.
    let lost = InputAnswer { status: 0, code: None, field: None, message: None, import: None };
    judge(&inserted(at, vec![(25, template("Hi {{first_name", lost))])).1.unwrap();
}

#[test]
fn input_fires_on_an_import_miscounted_or_a_listing_its_imports_did_not_leave() {
    let rows: &'static [ContactRow] = Box::leak(Box::new(vec![
        ContactRow { phone: "+306912300001".into(), attributes: Default::default(), opted_out: false },
        ContactRow { phone: "555-1234".into(), attributes: Default::default(), opted_out: false },
        ContactRow { phone: "+306912300001".into(), attributes: Default::default(), opted_out: true },
    ]));
    let counts = |created, updated, errors: &[(usize, &str)]| -> &'static ImportCounts {
        Box::leak(Box::new(ImportCounts {
            created,
            updated,
            unchanged: 0,
            errors: errors.iter().map(|(row, field)| (*row, field.to_string())).collect(),
        }))
    };
    let import = |answer: &'static ImportCounts| Observation::InputSent {
        tenant: "mallory",
        input: Input::Import { rows },
        answer: InputAnswer { status: 200, code: None, field: None, message: None, import: Some(answer) },
    };
    let listed: &'static [ContactRow] = Box::leak(Box::new(vec![ContactRow {
        phone: "+306912300001".into(),
        attributes: Default::default(),
        opted_out: true,
    }]));
    let read = |contacts: &'static [ContactRow], campaigns| Observation::InputTenantRead {
        tenant: "mallory",
        contacts,
        campaigns,
    };
    let at = position(&correct(), |o| matches!(o, Observation::Received { .. }));
    let right = counts(1, 1, &[(1, "phone")]);
    judge(&inserted(at, vec![(25, import(right)), (26, read(listed, 0))])).1.unwrap();
    fires(inserted(at, vec![(25, import(counts(2, 0, &[(1, "phone")])))]), Invariant::Input);
    fires(inserted(at, vec![(25, import(counts(1, 1, &[])))]), Invariant::Input);
    fires(inserted(at, vec![(25, import(counts(1, 1, &[(1, "attributes")])))]), Invariant::Input);
    // The answer was right, but the tenant lists what the import did not leave.
    fires(inserted(at, vec![(25, import(right)), (26, read(&[], 0))]), Invariant::Input);
    fires(inserted(at, vec![(25, import(right)), (26, read(listed, 1))]), Invariant::Input);
}

#[test]
fn input_fires_on_an_import_of_more_rows_than_allowed_taken_or_one_of_exactly_the_limit_refused() {
    let row =
        |n: usize| ContactRow { phone: format!("+3069124{n:05}"), attributes: Default::default(), opted_out: false };
    let at_limit: &'static [ContactRow] = Box::leak((0..10_000).map(row).collect::<Vec<_>>().into_boxed_slice());
    let over: &'static [ContactRow] = Box::leak((0..10_001).map(row).collect::<Vec<_>>().into_boxed_slice());
    let import = |rows, answer| Observation::InputSent { tenant: "mallory", input: Input::Import { rows }, answer };
    let too_large = refusal(413, "PAYLOAD_TOO_LARGE", "", "at most 10000 contacts per import, got 10001");
    let taken: &'static ImportCounts = Box::leak(Box::new(ImportCounts { created: 10_000, ..ImportCounts::default() }));
    let counted = InputAnswer { status: 200, code: None, field: None, message: None, import: Some(taken) };
    let at = position(&correct(), |o| matches!(o, Observation::Received { .. }));
    judge(&inserted(at, vec![(25, import(over, too_large)), (26, import(at_limit, counted))])).1.unwrap();
    // One row too many, taken; or refused as a field at fault rather than whole.
    let over_taken = InputAnswer { status: 200, ..counted };
    fires(inserted(at, vec![(25, import(over, over_taken))]), Invariant::Input);
    let as_a_field = refusal(400, "VALIDATION", "rows", "at most 10000 contacts per import, got 10001");
    fires(inserted(at, vec![(25, import(over, as_a_field))]), Invariant::Input);
    // Exactly the limit, refused.
    let at_limit_refused = refusal(413, "PAYLOAD_TOO_LARGE", "", "at most 10000 contacts per import, got 10000");
    fires(inserted(at, vec![(25, import(at_limit, at_limit_refused))]), Invariant::Input);
}

#[test]
fn input_fires_on_a_credit_change_answered_otherwise_than_its_balance_owes() {
    let change = |field: &'static str, amount, answer| Observation::InputSent {
        tenant: T,
        input: Input::Credits { field, amount },
        answer,
    };
    let ok = InputAnswer { status: 200, code: None, field: None, message: None, import: None };
    let short = refusal(402, "INSUFFICIENT_CREDITS", "", "insufficient credits: 1001 needed, 1000 available");
    let zero = refusal(400, "VALIDATION", "top_up", "expected a top-up of 1 to 10^15 credits, got 0");
    let at = position(&correct(), |o| matches!(o, Observation::Received { .. }));
    let right = vec![
        (25, change("top_up", 0, zero)),
        (25, change("adjust", -1_001, short)),
        (25, change("top_up", 1, ok)),
        (25, change("adjust", -1_001, ok)),
    ];
    judge(&inserted(at, right)).1.unwrap();
    // A valid top-up refused; an overdraft accepted; a refusal that names other amounts.
    fires(inserted(at, vec![(25, change("top_up", 1, zero))]), Invariant::Input);
    fires(inserted(at, vec![(25, change("adjust", -1_001, ok))]), Invariant::Input);
    let wrong = refusal(402, "INSUFFICIENT_CREDITS", "", "insufficient credits: -1001 needed, 1000 available");
    fires(inserted(at, vec![(25, change("adjust", -1_001, wrong))]), Invariant::Input);
    fires(inserted(at, vec![(25, change("top_up", 0, ok))]), Invariant::Input);
}
