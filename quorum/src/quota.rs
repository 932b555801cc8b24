//! Per-agent and per-tenant quotas on decisions and redemptions
//! (the constitution's `[quotas]`, docs/PROTOCOL.md 10.4).
//!
//! The leader counts, for each subject (one agent, one tenant) and each
//! kind of call, how many calls it admitted in the subject's current
//! window. A window opens at the subject's first admitted call and lasts
//! `window_ms`; the next call after it opens a new one. A call is admitted
//! only if neither its agent nor its tenant has reached its limit, and then
//! counts against both; a refused call counts against neither, so a
//! subject over its quota is admitted again as soon as its window ends.
//! These are fixed windows: a subject may get up to twice its limit in
//! `window_ms` that straddles the end of one window and the start of the
//! next, never more.
//!
//! Memory is bounded: at most [`QUOTA_KEYS_MAX`] (kind, subject) windows
//! are tracked. A window that has ended counts nothing and is evicted when
//! room is needed; when every tracked window is still live, a call that
//! needs a new one is refused ([`QuotaError::TableFull`]) rather than
//! admitted uncounted (I12: a bound never fails open).
//!
//! Pure: time is the caller's `now_ms`; nothing here reads a clock. A clock
//! that steps back keeps the current windows open (they end no earlier than
//! they would have).

use std::collections::HashMap;

use senatus_genesis::policy::QuotaRules;

/// Most (kind, subject) windows one [`Quotas`] tracks. The sealed registry
/// holds at most 4,096 identities, so a validator counting its registered
/// agents and their tenants for two kinds of call needs at most 16,384;
/// the bound is what keeps memory fixed whatever calls arrive.
pub const QUOTA_KEYS_MAX: usize = 65_536;

/// What kind of call a quota counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum QuotaKind {
    /// `Decide` requests admitted to the leader's queue.
    Decisions,
    /// Token redemptions.
    Redemptions,
}

/// Whose calls a window counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Scope {
    Agent,
    Tenant,
}

impl QuotaKind {
    /// The constitution key of the per-agent limit, e.g.
    /// `"agent_decisions_max"`.
    pub fn agent_quota(self) -> &'static str {
        match self {
            QuotaKind::Decisions => "agent_decisions_max",
            QuotaKind::Redemptions => "agent_redemptions_max",
        }
    }

    /// The constitution key of the per-tenant limit, e.g.
    /// `"tenant_decisions_max"`.
    pub fn tenant_quota(self) -> &'static str {
        match self {
            QuotaKind::Decisions => "tenant_decisions_max",
            QuotaKind::Redemptions => "tenant_redemptions_max",
        }
    }

    /// The (agent, tenant) limits of this kind in `limits`.
    fn limits(self, limits: &QuotaRules) -> (u64, u64) {
        match self {
            QuotaKind::Decisions => (limits.agent_decisions_max, limits.tenant_decisions_max),
            QuotaKind::Redemptions => (limits.agent_redemptions_max, limits.tenant_redemptions_max),
        }
    }
}

/// Why [`Quotas::admit`] refused a call. Both variants name the call's
/// tenant and agent; neither counted the call.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum QuotaError {
    /// The agent, or its tenant, has had `limit` calls of this kind
    /// admitted in its current window.
    #[error(
        "{} {:?} has reached its quota {quota} = {limit} per {window_ms} ms (agent {agent:?} of tenant {tenant:?}); retry after the window",
        if quota.starts_with("tenant") { "tenant" } else { "agent" },
        if quota.starts_with("tenant") { tenant } else { agent }
    )]
    Exceeded {
        /// The constitution key of the quota reached, e.g.
        /// `"agent_decisions_max"`.
        quota: &'static str,
        /// Its value.
        limit: u64,
        /// The window, in ms.
        window_ms: u64,
        /// The call's tenant.
        tenant: String,
        /// The call's agent.
        agent: String,
    },
    /// Every tracked window is still live and the call needs a new one:
    /// refused, not admitted uncounted.
    #[error(
        "quota table full: {keys_max} windows of {window_ms} ms are live, none free for agent {agent:?} of tenant {tenant:?}; retry later"
    )]
    TableFull {
        /// The bound ([`QUOTA_KEYS_MAX`] unless built smaller).
        keys_max: usize,
        /// The window, in ms.
        window_ms: u64,
        /// The call's tenant.
        tenant: String,
        /// The call's agent.
        agent: String,
    },
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct Key {
    kind: QuotaKind,
    scope: Scope,
    /// The agent's name for [`Scope::Agent`], the tenant's for
    /// [`Scope::Tenant`].
    subject: String,
}

#[derive(Debug, Clone, Copy)]
struct Window {
    start_ms: u64,
    count: u64,
}

impl Window {
    /// Calls admitted in this window as of `now_ms`: zero once it ended.
    fn live_count(&self, now_ms: u64, window_ms: u64) -> u64 {
        if self.is_live(now_ms, window_ms) {
            self.count
        } else {
            0
        }
    }

    fn is_live(&self, now_ms: u64, window_ms: u64) -> bool {
        now_ms.saturating_sub(self.start_ms) < window_ms
    }
}

/// The quota counters of one leader: bounded, pure, fed the time.
#[derive(Debug, Clone)]
pub struct Quotas {
    windows: HashMap<Key, Window>,
    keys_max: usize,
}

impl Default for Quotas {
    fn default() -> Self {
        Quotas::new()
    }
}

impl Quotas {
    /// Counters tracking at most [`QUOTA_KEYS_MAX`] windows.
    pub fn new() -> Quotas {
        Quotas::with_keys_max(QUOTA_KEYS_MAX)
    }

    /// Counters tracking at most `keys_max` windows (at least 2: one call
    /// needs its agent's and its tenant's).
    pub fn with_keys_max(keys_max: usize) -> Quotas {
        assert!(keys_max >= 2, "a quota table needs room for one call");
        Quotas {
            windows: HashMap::new(),
            keys_max,
        }
    }

    /// Windows tracked now, live or ended but not yet evicted.
    pub fn len(&self) -> usize {
        self.windows.len()
    }

    /// True when nothing is tracked.
    pub fn is_empty(&self) -> bool {
        self.windows.is_empty()
    }

    /// Admits one call of `kind` by `agent` (a registered identity's name)
    /// of `tenant` at `now_ms` under `limits`, counting it against both;
    /// or refuses it, counting nothing. The agent's quota is checked first.
    pub fn admit(
        &mut self,
        kind: QuotaKind,
        tenant: &str,
        agent: &str,
        now_ms: u64,
        limits: &QuotaRules,
    ) -> Result<(), QuotaError> {
        let window_ms = limits.window_ms;
        let (agent_max, tenant_max) = kind.limits(limits);
        let agent_key = Key {
            kind,
            scope: Scope::Agent,
            subject: agent.to_string(),
        };
        let tenant_key = Key {
            kind,
            scope: Scope::Tenant,
            subject: tenant.to_string(),
        };
        let exceeded = |quota: &'static str, limit: u64| QuotaError::Exceeded {
            quota,
            limit,
            window_ms,
            tenant: tenant.to_string(),
            agent: agent.to_string(),
        };
        let count = |key: &Key| {
            self.windows
                .get(key)
                .map_or(0, |w| w.live_count(now_ms, window_ms))
        };
        if count(&agent_key) >= agent_max {
            return Err(exceeded(kind.agent_quota(), agent_max));
        }
        if count(&tenant_key) >= tenant_max {
            return Err(exceeded(kind.tenant_quota(), tenant_max));
        }
        if !self.has_room(&agent_key, &tenant_key) {
            // Only ended windows go: each counts nothing any more.
            self.windows.retain(|_, w| w.is_live(now_ms, window_ms));
            if !self.has_room(&agent_key, &tenant_key) {
                return Err(QuotaError::TableFull {
                    keys_max: self.keys_max,
                    window_ms,
                    tenant: tenant.to_string(),
                    agent: agent.to_string(),
                });
            }
        }
        for key in [agent_key, tenant_key] {
            let w = self.windows.entry(key).or_insert(Window {
                start_ms: now_ms,
                count: 0,
            });
            if !w.is_live(now_ms, window_ms) {
                *w = Window {
                    start_ms: now_ms,
                    count: 0,
                };
            }
            w.count += 1;
        }
        debug_assert!(self.windows.len() <= self.keys_max);
        Ok(())
    }

    /// Whether the table can hold both keys (tracked ones need no room).
    fn has_room(&self, a: &Key, b: &Key) -> bool {
        let new = [a, b]
            .into_iter()
            .filter(|k| !self.windows.contains_key(*k))
            .count();
        self.windows.len() + new <= self.keys_max
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits(window_ms: u64, agent: u64, tenant: u64) -> QuotaRules {
        QuotaRules {
            window_ms,
            agent_decisions_max: agent,
            tenant_decisions_max: tenant,
            agent_redemptions_max: agent,
            tenant_redemptions_max: tenant,
        }
    }

    /// One decision by `agent` of acme at `now_ms`.
    fn acme(q: &mut Quotas, agent: &str, now_ms: u64, l: &QuotaRules) -> Result<(), QuotaError> {
        q.admit(QuotaKind::Decisions, "acme", agent, now_ms, l)
    }

    fn exceeded(quota: &'static str, limit: u64, tenant: &str, agent: &str) -> QuotaError {
        QuotaError::Exceeded {
            quota,
            limit,
            window_ms: 1000,
            tenant: tenant.into(),
            agent: agent.into(),
        }
    }

    #[test]
    fn admits_up_to_the_limit_refuses_the_next_and_admits_again_in_the_next_window() {
        let l = limits(1000, 3, 100);
        let mut q = Quotas::new();
        for t in [5_000, 5_001, 5_999] {
            assert_eq!(acme(&mut q, "agent-1", t, &l), Ok(()));
        }
        let refused = acme(&mut q, "agent-1", 5_999, &l);
        assert_eq!(
            refused,
            Err(exceeded("agent_decisions_max", 3, "acme", "agent-1"))
        );
        assert_eq!(
            refused.expect_err("refused").to_string(),
            "agent \"agent-1\" has reached its quota agent_decisions_max = 3 per 1000 ms (agent \"agent-1\" of tenant \"acme\"); retry after the window"
        );
        // Refusals count nothing: still refused, not pushed further out.
        assert!(acme(&mut q, "agent-1", 5_999, &l).is_err());
        // The window opened at 5,000 ends at 6,000: a new one opens there.
        for t in [6_000, 6_500, 6_999] {
            assert_eq!(acme(&mut q, "agent-1", t, &l), Ok(()));
        }
        assert_eq!(
            acme(&mut q, "agent-1", 6_999, &l),
            Err(exceeded("agent_decisions_max", 3, "acme", "agent-1"))
        );
    }

    #[test]
    fn a_tenant_counts_all_its_agents_and_one_agent_over_its_quota_does_not_affect_another() {
        let l = limits(1000, 2, 3);
        let mut q = Quotas::new();
        let admit = |q: &mut Quotas, agent: &str| acme(q, agent, 0, &l);
        assert_eq!(admit(&mut q, "agent-1"), Ok(()));
        assert_eq!(admit(&mut q, "agent-1"), Ok(()));
        assert_eq!(
            admit(&mut q, "agent-1"),
            Err(exceeded("agent_decisions_max", 2, "acme", "agent-1"))
        );
        // agent-2 is under its own quota; the tenant has one call left.
        assert_eq!(admit(&mut q, "agent-2"), Ok(()));
        let refused = admit(&mut q, "agent-3");
        assert_eq!(
            refused,
            Err(exceeded("tenant_decisions_max", 3, "acme", "agent-3"))
        );
        assert_eq!(
            refused.expect_err("refused").to_string(),
            "tenant \"acme\" has reached its quota tenant_decisions_max = 3 per 1000 ms (agent \"agent-3\" of tenant \"acme\"); retry after the window"
        );
        // A refused call counted against neither: agent-3 has no window.
        assert_eq!(q.len(), 3, "agent-1, agent-2, acme");
        // Another tenant's agents are not affected, nor are redemptions.
        assert_eq!(
            q.admit(QuotaKind::Decisions, "globex", "agent-9", 0, &l),
            Ok(())
        );
        assert_eq!(
            q.admit(QuotaKind::Redemptions, "acme", "agent-1", 0, &l),
            Ok(())
        );
    }

    #[test]
    fn redemptions_have_their_own_limits_and_names() {
        let l = QuotaRules {
            agent_redemptions_max: 1,
            tenant_redemptions_max: 5,
            ..QuotaRules::default()
        };
        let mut q = Quotas::new();
        assert_eq!(
            q.admit(QuotaKind::Redemptions, "acme", "agent-1", 0, &l),
            Ok(())
        );
        assert_eq!(
            q.admit(QuotaKind::Redemptions, "acme", "agent-1", 999, &l),
            Err(exceeded("agent_redemptions_max", 1, "acme", "agent-1"))
        );
        let l = QuotaRules {
            tenant_redemptions_max: 1,
            ..QuotaRules::default()
        };
        assert_eq!(
            q.admit(QuotaKind::Redemptions, "acme", "agent-2", 999, &l),
            Err(exceeded("tenant_redemptions_max", 1, "acme", "agent-2"))
        );
        // Decisions of the same subjects are counted apart.
        assert_eq!(acme(&mut q, "agent-1", 999, &l), Ok(()));
    }

    #[test]
    fn a_clock_that_steps_back_keeps_the_window_open() {
        let l = limits(1000, 1, 100);
        let mut q = Quotas::new();
        assert_eq!(acme(&mut q, "agent-1", 10_000, &l), Ok(()));
        assert!(acme(&mut q, "agent-1", 3, &l).is_err());
        assert_eq!(acme(&mut q, "agent-1", 11_000, &l), Ok(()));
    }

    #[test]
    fn a_full_table_of_live_windows_refuses_and_ended_windows_make_room() {
        let l = limits(1000, 10, 1000);
        // Room for agent-1, agent-2 and their tenant.
        let mut q = Quotas::with_keys_max(3);
        assert_eq!(acme(&mut q, "agent-1", 0, &l), Ok(()));
        assert_eq!(acme(&mut q, "agent-2", 0, &l), Ok(()));
        let full = QuotaError::TableFull {
            keys_max: 3,
            window_ms: 1000,
            tenant: "acme".into(),
            agent: "agent-3".into(),
        };
        assert_eq!(acme(&mut q, "agent-3", 999, &l), Err(full.clone()));
        assert_eq!(
            full.to_string(),
            "quota table full: 3 windows of 1000 ms are live, none free for agent \"agent-3\" of tenant \"acme\"; retry later"
        );
        // Subjects already tracked still count, within the bound.
        assert_eq!(acme(&mut q, "agent-1", 999, &l), Ok(()));
        assert_eq!(q.len(), 3);
        // Once the windows end they are evicted to make room.
        assert_eq!(acme(&mut q, "agent-3", 1_000, &l), Ok(()));
        assert_eq!(q.len(), 2, "agent-3 and acme");
    }

    #[test]
    fn the_table_never_tracks_more_than_quota_keys_max() {
        let l = limits(1000, 1, u64::MAX);
        let mut q = Quotas::new();
        // One tenant window and QUOTA_KEYS_MAX - 1 agent windows.
        for i in 0..QUOTA_KEYS_MAX - 1 {
            let agent = format!("agent-{i}");
            assert_eq!(acme(&mut q, &agent, 0, &l), Ok(()));
        }
        assert_eq!(q.len(), QUOTA_KEYS_MAX);
        assert!(matches!(
            acme(&mut q, "one-more", 1, &l),
            Err(QuotaError::TableFull {
                keys_max: QUOTA_KEYS_MAX,
                ..
            })
        ));
        assert_eq!(q.len(), QUOTA_KEYS_MAX);
        assert_eq!(acme(&mut q, "one-more", 1_000, &l), Ok(()));
        assert_eq!(q.len(), 2);
    }
}
