//! Account-wide rate budgets. Stripe's and Brevo's limits are per account,
//! shared by every process that uses the account's key, so each process
//! paces itself at its share of the budget configured for the whole
//! connector. The one place the shares are computed.
//!
//! Design: static shares, no coordination at run time. The processes that
//! can run at once are known from the deployment — the poller (reserved
//! concurrency 1 and a lease: [`POLLER_INSTANCES`]) and up to
//! `CONSUMER_MAX_CONCURRENCY` consumers (the event source mapping's
//! `MaximumConcurrency`, passed by the template from the same parameter);
//! the webhook calls neither vendor. Each process takes its part of the
//! budget, paced with a burst of one request (requests are at least
//! `1/rate` apart), so together they never send more than the budget in any
//! second, give or take one request per process where a second begins or
//! ends:
//!
//! - Stripe: the connector's budget (`STRIPE_ACCOUNT_REQUESTS_PER_SECOND`):
//!   the poller takes a fixed tenth ([`POLLER_PART`]) — it lists 100 objects
//!   per request where a consumer makes about 3 per customer, so a tenth
//!   keeps it far ahead of the consumers — and the consumers share the rest
//!   equally ([`StripeBudget`]). An equal split would leave a third of the
//!   budget idle behind a poller that needs a few percent of it;
//! - Brevo: `connectors.brevo.rate_limits` — the connector's budget on the
//!   Brevo account, 80 % of the General plan by default, the rest being the
//!   headroom — split among the consumers, the only Brevo callers
//!   ([`brevo_limits`]).
//!
//! A share is conservative: an idle process's part is not lent to a busy
//! one (a DynamoDB-coordinated budget could, at a write per request).
//! Alone (the CLI: no `CONSUMER_MAX_CONCURRENCY`) a process takes it all.

use crate::adapters::brevo::{BrevoLimits, Rate};
use crate::adapters::stripe::{DEFAULT_LIVE_RPS, DEFAULT_TEST_RPS};
use crate::config::{self, ConfigError, EnvSource};
use crate::settings::RateLimits;

/// Poller instances that can run at once: the template reserves a
/// concurrency of 1 for it, and a run holds a lease.
pub const POLLER_INSTANCES: u32 = 1;

/// The poller's part of the Stripe budget when it shares it with consumers
/// (the consumers share the rest). At the template's 20 r/s: 2 r/s, 200
/// objects listed per second; each of 2 consumers gets 9 r/s.
pub const POLLER_PART: f64 = 0.1;

/// Which function this process is, for its part of the Stripe budget.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    Poller,
    /// The consumer, and the CLI (which runs alone: the role does not matter).
    Consumer,
}

/// Which processes share the vendors' per-account limits with this one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Instances {
    /// One process does everything (the CLI).
    #[default]
    Alone,
    /// Deployed: the poller and up to `consumers` consumer instances at once.
    Deployed { consumers: u32 },
}

impl Instances {
    /// `CONSUMER_MAX_CONCURRENCY` (a whole number ≥ 1); unset: [`Instances::Alone`].
    pub fn from_env(env: &dyn EnvSource) -> Result<Self, ConfigError> {
        let consumers = config::positive_integer(env, config::CONSUMER_MAX_CONCURRENCY)?;
        Ok(consumers.map_or(Self::Alone, |consumers| Self::Deployed { consumers }))
    }

    /// Processes sharing the Stripe budget: the poller and every consumer.
    pub fn stripe_processes(self) -> u32 {
        match self {
            Self::Alone => 1,
            Self::Deployed { consumers } => consumers.saturating_add(POLLER_INSTANCES),
        }
    }

    /// The part (0..=1) of the Stripe budget a process in `role` takes:
    /// everything alone; deployed, [`POLLER_PART`] for the poller and an
    /// equal part of the rest for each consumer.
    pub fn stripe_part(self, role: Role) -> f64 {
        match (self, role) {
            (Self::Alone, _) => 1.0,
            (Self::Deployed { .. }, Role::Poller) => POLLER_PART,
            (Self::Deployed { consumers }, Role::Consumer) => {
                (1.0 - POLLER_PART * f64::from(POLLER_INSTANCES)) / f64::from(consumers.max(1))
            }
        }
    }

    /// Processes sharing the Brevo budget: the consumers only.
    pub fn brevo_shares(self) -> u32 {
        match self {
            Self::Alone => 1,
            Self::Deployed { consumers } => consumers.max(1),
        }
    }
}

/// One process's part of `budget` (per second, or any unit) among `shares`.
pub fn share(budget: f64, shares: u32) -> f64 {
    budget / f64::from(shares.max(1))
}

/// How this process paces its Stripe requests.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum StripeBudget {
    /// `STRIPE_REQUESTS_PER_SECOND`: this process's own budget, not divided,
    /// one second's worth of burst (what the variable always meant).
    Own(f64),
    /// `part` (0..=1) of the connector's account budget (`None`: the
    /// client's default for the key's mode, 80 live / 20 test), burst 1.
    Share { account: Option<f64>, part: f64 },
    /// Nothing configured and alone: the client's default, unchanged.
    Default,
}

/// A request rate and the burst of its token bucket (`None`: one second's worth).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Pace {
    pub per_second: f64,
    pub burst: Option<u32>,
}

impl StripeBudget {
    /// From `STRIPE_REQUESTS_PER_SECOND`, `STRIPE_ACCOUNT_REQUESTS_PER_SECOND`
    /// and `instances`, for a process in `role` (the first variable wins, as
    /// before; then the role's part of the account budget).
    pub fn from_env(env: &dyn EnvSource, instances: Instances, role: Role) -> Result<Self, ConfigError> {
        let own = config::positive_number(env, config::STRIPE_REQUESTS_PER_SECOND)?;
        let account = config::positive_number(env, config::STRIPE_ACCOUNT_REQUESTS_PER_SECOND)?;
        Ok(match (own, account, instances) {
            (Some(own), _, _) => Self::Own(own),
            (None, None, Instances::Alone) => Self::Default,
            (None, account, instances) => Self::Share { account, part: instances.stripe_part(role) },
        })
    }

    /// The pace for a key of this mode (`live`); `None` leaves the client's default.
    pub fn pace(&self, live: bool) -> Option<Pace> {
        match *self {
            Self::Own(per_second) => Some(Pace { per_second, burst: None }),
            Self::Share { account, part } => {
                let account = account.unwrap_or(if live { DEFAULT_LIVE_RPS } else { DEFAULT_TEST_RPS });
                Some(Pace { per_second: account * part, burst: Some(1) })
            }
            Self::Default => None,
        }
    }
}

/// The Brevo client's limits for one consumer: each family's budget from
/// `connectors.brevo.rate_limits` (the whole connector's, per second)
/// divided among `instances.brevo_shares()`, burst 1 (a per-second limit
/// leaves no room to save requests up); the other endpoints' hourly budget
/// (Brevo's 100 per hour, 80 kept) divided likewise, its burst too.
pub fn brevo_limits(budget: &RateLimits, instances: Instances) -> BrevoLimits {
    let n = instances.brevo_shares();
    let per_second = |rps: u32| Rate::per_second(share(f64::from(rps), n), 1);
    let other = BrevoLimits::default().other;
    BrevoLimits {
        contacts: per_second(budget.contacts_rps),
        events: per_second(budget.events_rps),
        orders: per_second(budget.orders_rps),
        other: Rate::per_second(share(other.per_second, n), (other.burst / n).max(1)),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use std::collections::HashMap;

    use super::*;
    use crate::config::{CONSUMER_MAX_CONCURRENCY, STRIPE_ACCOUNT_REQUESTS_PER_SECOND, STRIPE_REQUESTS_PER_SECOND};

    fn env(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    const TWO_CONSUMERS: Instances = Instances::Deployed { consumers: 2 };

    #[test]
    fn the_poller_and_every_consumer_share_stripe_and_only_the_consumers_share_brevo() {
        assert_eq!(Instances::from_env(&env(&[])).unwrap(), Instances::Alone);
        let deployed = Instances::from_env(&env(&[(CONSUMER_MAX_CONCURRENCY, "2")])).unwrap();
        assert_eq!(deployed, TWO_CONSUMERS);
        assert_eq!((deployed.stripe_processes(), deployed.brevo_shares()), (3, 2));
        assert_eq!((Instances::Alone.stripe_processes(), Instances::Alone.brevo_shares()), (1, 1));
        let e = Instances::from_env(&env(&[(CONSUMER_MAX_CONCURRENCY, "0")])).unwrap_err().to_string();
        assert!(e.contains(CONSUMER_MAX_CONCURRENCY), "{e}");
    }

    #[test]
    fn the_shares_of_a_budget_add_up_to_it() {
        for (budget, n) in [(20.0, 3), (25.0, 3), (100.0, 7), (8.0, 2), (0.5, 4)] {
            let total = share(budget, n) * f64::from(n);
            assert!((total - budget).abs() < 1e-9, "{budget} among {n}: {total}");
        }
        assert_eq!(share(20.0, 0), 20.0, "no process is read as one");
    }

    #[test]
    fn the_parts_of_the_stripe_budget_add_up_to_it_the_poller_taking_a_tenth() {
        for consumers in [1, 2, 3, 10, 1000] {
            let i = Instances::Deployed { consumers };
            let total = i.stripe_part(Role::Poller) * f64::from(POLLER_INSTANCES)
                + i.stripe_part(Role::Consumer) * f64::from(consumers);
            assert!((total - 1.0).abs() < 1e-9, "{consumers} consumers: {total}");
        }
        assert_eq!(TWO_CONSUMERS.stripe_part(Role::Poller), 0.1);
        assert_eq!(Instances::Alone.stripe_part(Role::Poller), 1.0, "alone a process takes it all");
        assert_eq!(Instances::Alone.stripe_part(Role::Consumer), 1.0);
    }

    #[test]
    fn the_template_budget_gives_the_poller_2_and_each_consumer_9_requests_per_second_with_a_burst_of_one() {
        let vars = [(STRIPE_ACCOUNT_REQUESTS_PER_SECOND, "20"), (CONSUMER_MAX_CONCURRENCY, "2")];
        let instances = Instances::from_env(&env(&vars)).unwrap();
        let poller = StripeBudget::from_env(&env(&vars), instances, Role::Poller).unwrap();
        let consumer = StripeBudget::from_env(&env(&vars), instances, Role::Consumer).unwrap();
        assert_eq!(poller, StripeBudget::Share { account: Some(20.0), part: 0.1 });
        let (p, c) = (poller.pace(false).unwrap(), consumer.pace(false).unwrap());
        assert!((p.per_second - 2.0).abs() < 1e-9 && (c.per_second - 9.0).abs() < 1e-9, "{p:?} {c:?}");
        assert_eq!((p.burst, c.burst), (Some(1), Some(1)));
        assert_eq!(consumer.pace(true), consumer.pace(false), "an account figure does not depend on the key's mode");
    }

    #[test]
    fn the_process_budget_variable_keeps_its_meaning_and_wins() {
        let vars = [(STRIPE_REQUESTS_PER_SECOND, "12"), (STRIPE_ACCOUNT_REQUESTS_PER_SECOND, "20")];
        let b = StripeBudget::from_env(&env(&vars), TWO_CONSUMERS, Role::Poller).unwrap();
        assert_eq!(b, StripeBudget::Own(12.0));
        assert_eq!(b.pace(true), Some(Pace { per_second: 12.0, burst: None }), "not divided, burst as before");
        let e =
            StripeBudget::from_env(&env(&[(STRIPE_ACCOUNT_REQUESTS_PER_SECOND, "-1")]), Instances::Alone, Role::Poller)
                .unwrap_err()
                .to_string();
        assert!(e.contains(STRIPE_ACCOUNT_REQUESTS_PER_SECOND), "{e}");
    }

    #[test]
    fn alone_without_a_figure_the_client_default_stays_and_deployed_it_is_divided() {
        assert_eq!(StripeBudget::from_env(&env(&[]), Instances::Alone, Role::Consumer).unwrap(), StripeBudget::Default);
        assert_eq!(StripeBudget::Default.pace(true), None);
        let b = StripeBudget::from_env(&env(&[]), TWO_CONSUMERS, Role::Poller).unwrap();
        assert!((b.pace(true).unwrap().per_second - DEFAULT_LIVE_RPS * 0.1).abs() < 1e-9);
        assert!((b.pace(false).unwrap().per_second - DEFAULT_TEST_RPS * 0.1).abs() < 1e-9);
        let vars = [(STRIPE_ACCOUNT_REQUESTS_PER_SECOND, "20")];
        let alone = StripeBudget::from_env(&env(&vars), Instances::Alone, Role::Consumer);
        assert_eq!(alone.unwrap().pace(true), Some(Pace { per_second: 20.0, burst: Some(1) }), "the CLI takes it all");
    }

    #[test]
    fn each_consumer_takes_its_share_of_the_brevo_budget_and_the_shares_stay_within_the_plan() {
        let budget = RateLimits::default();
        let l = brevo_limits(&budget, TWO_CONSUMERS);
        assert_eq!(l.contacts, Rate::per_second(4.0, 1));
        assert_eq!(l.events, Rate::per_second(4.0, 1));
        assert_eq!(l.orders, Rate::per_second(2.0, 1));
        let other = BrevoLimits::default().other;
        assert_eq!(l.other.burst, other.burst / 2);
        assert!((l.other.per_second * 2.0 - other.per_second).abs() < 1e-12);
        // Burst 1: one instance sends at most ⌈rate⌉ requests in any second,
        // so two stay within the General plan's 10 / 10 / 5.
        for (rate, plan) in [(l.contacts, 10.0), (l.events, 10.0), (l.orders, 5.0)] {
            assert!(2.0 * rate.per_second.ceil() <= plan, "{rate:?} vs {plan}");
        }
        let alone = brevo_limits(&budget, Instances::Alone);
        assert_eq!(alone.contacts, Rate::per_second(8.0, 1), "alone: the whole budget");
        assert_eq!(alone.other, other);
    }
}
