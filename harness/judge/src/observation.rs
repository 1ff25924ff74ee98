//! What the judge is told: the run's setup, and observations an outside observer can make.
//!
//! Three sources feed it, and nothing else does:
//!
//! * **the driver** — what it asked the engine and what the engine answered (campaigns it
//!   created, operator actions and credit changes, with their acknowledgements);
//! * **the provider's ground truth** — every message it received and accepted, with the
//!   body it received and the id it gave, and every report it sent and how the engine
//!   answered it;
//! * **the engine's reads** — its API (campaign status, counts, progress, books), and in
//!   the simulator its store's journal and rows, read as data.
//!
//! Every name here is a string or a number: the judge links no engine type, so it cannot
//! borrow one of the engine's rules by accident.

use crate::input::{ContactRow, ImportCounts};
use crate::lattice::Mover;
use std::collections::{BTreeMap, BTreeSet};

/// A provider's wire format, which fixes how its report statuses read.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Wire {
    /// Mitto-style bulk.
    Mitto,
    /// Twilio-style single.
    Twilio,
    /// Infobip-style bulk.
    Infobip,
}

/// A tenant, as the operator set it up.
#[derive(Clone, Debug)]
pub struct TenantSetup {
    /// How observations name it.
    pub tenant: String,
    /// Its opening balance.
    pub opening_credits: i64,
    /// Submissions per second across its campaigns, if limited.
    pub rate_limit_per_s: Option<u32>,
    /// The numbers of its contacts, as the driver imported them: its campaigns may send
    /// to these and no other (`isolation`). Empty: not checked.
    pub numbers: BTreeSet<String>,
}

/// A traffic account, as the operator set it up.
#[derive(Clone, Debug)]
pub struct AccountSetup {
    /// How observations name it (the provider's records name it the same way).
    pub account: String,
    /// Its provider's wire format.
    pub wire: Wire,
    /// What one segment costs.
    pub price_per_segment: i64,
    /// Submissions per second, if limited.
    pub rate_limit_per_s: Option<u32>,
}

/// The engine's retry policy as the operator configured it (DESIGN.md, "Retries":
/// exponential backoff from a base delay, a factor per attempt, seeded jitter of ± a
/// percentage, a cap on one delay, and a number of attempts in all).
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RetrySetup {
    /// Delay before the second attempt, ms.
    pub base_delay_ms: u64,
    /// Factor per further attempt.
    pub multiplier: u32,
    /// Attempts in all, the first included.
    pub max_attempts: u32,
    /// Cap on one delay, ms.
    pub max_delay_ms: u64,
    /// Jitter, ± this percentage of a delay.
    pub jitter_percent: u32,
}

/// What the operator configured: known to any observer before the run starts.
#[derive(Clone, Debug, Default)]
pub struct Setup {
    /// The tenants.
    pub tenants: Vec<TenantSetup>,
    /// The traffic accounts.
    pub accounts: Vec<AccountSetup>,
    /// How long after a cancel or pause is acknowledged an acceptance may still come: a
    /// submission claimed just before it may take one lease, and its request one provider
    /// timeout on the wire.
    pub halt_grace_ms: u64,
    /// Destinations that must never receive a message (opted out, or invalid).
    pub forbidden_destinations: BTreeSet<String>,
    /// Each contact's attributes, by number, as the driver imported them: what the
    /// judge renders templates with (`content`). Empty: content is not checked.
    pub contacts: BTreeMap<String, BTreeMap<String, String>>,
    /// The engine's retry policy, when the operator knows it (`retries`). `None`: the
    /// retries are not checked.
    pub retry: Option<RetrySetup>,
    /// Whether the engine's journal is shown (the simulator): every campaign move is then
    /// observed, and a reading must show the status the journal last moved it to.
    pub journal: bool,
    /// Whether `rate` is measured at the provider, as messages arrive, and how far apart
    /// the network may bring two requests sent a second apart (the spread of its latency,
    /// ms). `None`: it is measured at the engine's claims (the simulator, whose held links
    /// and partitions release bursts the engine did not send).
    pub rate_at_provider: Option<u64>,
    /// Whether the engine's rate-limit buckets are strict (one token: at most the limit
    /// plus one in any second) rather than one second's burst (twice the limit).
    pub rate_strict: bool,
}

/// A message of the engine, in the simulator: its campaign id and contact id, opaque.
pub type MessageRef = (u64, u64);

/// An operator action or a credit change the driver sent.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Act {
    /// Pause a campaign.
    Pause,
    /// Resume it.
    Resume,
    /// Cancel it.
    Cancel,
    /// Put its failed messages back in the queue.
    RetryFailed,
    /// Add (or, negative, take away) credits of a tenant.
    Credits(i64),
}

/// Input the API documents rules for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Input<'a> {
    /// A campaign created with this body template on a usable account.
    Campaign {
        /// The template.
        template: &'a str,
    },
    /// A contact import of these rows.
    Import {
        /// The rows, in request order.
        rows: &'a [ContactRow],
    },
    /// A credit change of the tenant, on the admin route.
    Credits {
        /// `top_up` or `adjust`.
        field: &'a str,
        /// The amount.
        amount: i64,
    },
}

/// What the engine answered a request of [`Input`], read from its JSON.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct InputAnswer<'a> {
    /// The HTTP status (0: no answer came).
    pub status: u16,
    /// The error's `code`, if it answered an error.
    pub code: Option<&'a str>,
    /// The error's `field`, if it named one.
    pub field: Option<&'a str>,
    /// The error's `message`.
    pub message: Option<&'a str>,
    /// An import's counts and refused rows, if it answered them.
    pub import: Option<&'a ImportCounts>,
}

/// What a message row says, read as data (the simulator reads the store's row after the
/// step that moved it).
#[derive(Clone, Copy, Debug, Default)]
pub struct MessageRow<'a> {
    /// The destination it is (to be) sent to.
    pub destination: &'a str,
    /// Its rendered body.
    pub body: &'a str,
    /// The provider's id for it, once recorded.
    pub provider_id: Option<&'a str>,
    /// Its last error code.
    pub error_code: Option<&'a str>,
    /// Submission attempts made for it, when the row shows them.
    pub attempts: Option<u32>,
}

/// A campaign as the engine's API (or store) shows it at one moment.
#[derive(Clone, Copy, Debug)]
pub struct CampaignReading<'a> {
    /// The campaign.
    pub campaign: &'a str,
    /// Its status name.
    pub status: &'a str,
    /// Its messages by status name, when the engine shows them all.
    pub counts: Option<&'a [(&'a str, u64)]>,
    /// Sent (accepted by the provider, whatever became of it).
    pub sent: u64,
    /// Failed.
    pub failed: u64,
    /// Its messages in all.
    pub total: u64,
    /// Progress, percent.
    pub progress: i64,
    /// Why it is paused, if the engine paused it.
    pub pause_reason: Option<&'a str>,
    /// Failed as an unknown outcome (charged, whether or not the provider took it), when
    /// the engine shows it.
    pub unknown_outcome: Option<u64>,
    /// When it completed (ms on the run's clock), when the engine shows it.
    pub completed_at: Option<u64>,
}

/// One observation.
#[derive(Clone, Copy, Debug)]
pub enum Observation<'a> {
    /// The driver created (and enqueued) a campaign of `tenant` on `account`.
    CampaignCreated {
        /// The engine's campaign id.
        campaign: &'a str,
        /// Its tenant.
        tenant: &'a str,
        /// Its account.
        account: &'a str,
        /// A prefix the driver put at the head of its template, so every body of it carries
        /// it, at its head or (if the engine adds text of its own) inside it (live mode: the
        /// provider's acceptances are told apart by it, as no journal names their messages).
        marker: Option<&'a str>,
        /// Contacts the driver gave it, when the driver knows.
        contacts: Option<u64>,
        /// The body template the driver gave it, when the judge is to hold its messages
        /// to it (with [`Setup::contacts`]).
        template: Option<&'a str>,
        /// When the driver scheduled it to start (ms on the run's clock): nothing of it
        /// may be claimed or accepted before.
        starts_at: Option<u64>,
    },

    /// The driver sent an action; `id` pairs it with its answer.
    ActionSent {
        /// Unique per run.
        id: u64,
        /// The campaign acted on, for campaign actions.
        campaign: Option<&'a str>,
        /// The tenant, for credit changes.
        tenant: Option<&'a str>,
        /// What.
        act: Act,
    },
    /// The engine answered action `id` with HTTP `status` (0: no answer came).
    ActionAnswered {
        /// The action.
        id: u64,
        /// The HTTP status.
        status: u16,
    },
    /// The driver, as one tenant, asked for another tenant's campaign.
    CrossTenantProbe {
        /// Method and path, and whose key it used.
        request: &'a str,
        /// The engine's HTTP answer (0: none came).
        answered: u16,
    },
    /// The driver, as one tenant, tried to create a campaign on another tenant's private
    /// traffic account.
    ForeignAccountProbe {
        /// Method and path, and whose key and account it used.
        request: &'a str,
        /// The engine's HTTP answer (0: none came).
        answered: u16,
    },
    /// The driver sent input the API documents rules for — bad on purpose, or valid beside
    /// it — as `tenant`, and what the engine answered (`input`).
    InputSent {
        /// The tenant.
        tenant: &'a str,
        /// What it sent.
        input: Input<'a>,
        /// What the engine answered.
        answer: InputAnswer<'a>,
    },
    /// The engine listed the contacts and campaigns of a tenant the driver sends bad input
    /// as (`input`: what bad input left behind).
    InputTenantRead {
        /// The tenant.
        tenant: &'a str,
        /// Its contacts, as listed (their numbers in canonical form).
        contacts: &'a [ContactRow],
        /// How many campaigns it lists.
        campaigns: u32,
    },
    /// The provider received a message in a submit request.
    Received {
        /// Through which account.
        account: &'a str,
        /// To whom.
        destination: &'a str,
        /// The body it received, when the provider tells it.
        body: Option<&'a str>,
    },
    /// The provider refused a whole submit request, and so every message in it, with an
    /// HTTP error (a 429 or a 5xx is retryable, DESIGN.md "Retries").
    Refused {
        /// Through which account.
        account: &'a str,
        /// To whom.
        destination: &'a str,
        /// The body the request carried.
        body: &'a str,
        /// The HTTP status it answered.
        status: u16,
        /// The `Retry-After` it gave, ms.
        retry_after_ms: Option<u64>,
    },
    /// The provider accepted a message.
    Accepted {
        /// Through which account.
        account: &'a str,
        /// To whom.
        destination: &'a str,
        /// The body it received.
        body: &'a str,
        /// The id it gave.
        provider_id: &'a str,
    },
    /// The engine answered a delivery report the provider sent (one observation per
    /// attempt; `answered` is `None` when no answer came).
    ReportAnswered {
        /// The account it was for.
        account: &'a str,
        /// The provider id it named.
        provider_id: &'a str,
        /// The provider's status string.
        status: &'a str,
        /// The error code the report carried, as its wire format writes it (Twilio's
        /// `ErrorCode`, Infobip's error `name`, Mitto's `errorCode`), if it carried one.
        error_code: Option<&'a str>,
        /// Deliberately forged (the provider knows).
        forged: bool,
        /// The engine's HTTP answer.
        answered: Option<u16>,
    },
    /// The engine moved a message (its journal, read as data).
    MessageMoved {
        /// The message.
        message: MessageRef,
        /// Its campaign.
        campaign: &'a str,
        /// From (`None`: created).
        from: Option<&'a str>,
        /// To.
        to: &'a str,
        /// Whose move it says it was.
        mover: Mover,
        /// The row as read after the step.
        row: MessageRow<'a>,
    },
    /// The engine moved a campaign (its journal).
    CampaignMoved {
        /// The campaign.
        campaign: &'a str,
        /// From.
        from: &'a str,
        /// To.
        to: &'a str,
    },
    /// The engine showed a campaign.
    CampaignRead(CampaignReading<'a>),
    /// The engine showed a tenant's books.
    BooksRead {
        /// The tenant.
        tenant: &'a str,
        /// Credits owned and not yet charged, reservations included, when the engine shows
        /// it.
        balance: Option<i64>,
        /// Held for messages in flight, when the engine shows it.
        reserved: Option<i64>,
        /// Spent.
        charged: i64,
        /// How many credit changes the judge had been told were acknowledged
        /// ([`Judge::credit_changes_acknowledged`]) when the reading was asked for. Changes
        /// acknowledged since may or may not show in it: live mode reads beside its
        /// actions, and a reading asked for before a top-up's answer may be answered after
        /// it. `None`: the reading shows every change acknowledged before it (the
        /// simulator reads between steps).
        requested_after: Option<u64>,
    },
}
