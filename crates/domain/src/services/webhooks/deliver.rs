//! The delivery worker: every replica runs one. Each round claims due deliveries from the
//! shared outbox (`FOR UPDATE SKIP LOCKED`, each claim moving the row past a visibility
//! deadline, so replicas never send one attempt twice at once and a crashed worker's claims
//! come due again), signs each per Standard Webhooks (`webhook-id` the event id, stable
//! across retries; `webhook-timestamp`; `webhook-signature: v1,<base64 HMAC-SHA256 of
//! "{id}.{timestamp}.{body}">`), POSTs it with a timeout, not following redirects, through
//! the [`super::ssrf`] resolver, and reads only the status (never the body). A 2xx answer
//! delivers; anything else is retried with exponential backoff and jitter. An endpoint that
//! fails continuously for `disable_after` is disabled, its pending deliveries given up, and
//! a `webhook.disabled` event written for the workspace's other endpoints — in the same
//! transaction. Delivered events past the retention are pruned (idempotent: every replica
//! may prune). At shutdown the attempts in flight are abandoned, not awaited: their claims
//! come due again after the visibility deadline.

use std::sync::Arc;
use std::time::Duration;

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use chrono::{DateTime, Utc};
use pgfleet_api_types::webhook::WebhookEventType;
use pgfleet_storage::webhooks::{self, Attempt, ClaimedDelivery};
use pgfleet_storage::StorageError;
use tokio::sync::watch;

use super::super::Ctx;
use super::{emit, seal_key, ssrf, WebhookSettings};
use crate::{DomainError, Result};

/// Deliveries claimed per query.
const BATCH: i64 = 16;
/// Time between two prunes by this replica.
const PRUNE_EVERY: Duration = Duration::from_secs(300);
/// Time between two counts of the outbox for `/metrics`, by this replica.
const BACKLOG_EVERY: Duration = Duration::from_secs(15);
/// Longest error text kept on a delivery.
const MAX_ERROR: usize = 300;

/// The Standard Webhooks signature header value of `body` sent as `id` at `timestamp`.
pub fn sign(secret: &[u8], id: &str, timestamp: i64, body: &str) -> String {
    let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, secret);
    let tag = ring::hmac::sign(&key, format!("{id}.{timestamp}.{body}").as_bytes());
    format!("v1,{}", STANDARD.encode(tag.as_ref()))
}

/// Delay before retry number `attempts` (1 after the first failure): `base · 2^(attempts-1)`
/// capped at `max`, then scaled into `[½, 1]` of itself by `unit` (0..1, the jitter), so
/// endpoints that failed together do not all retry at once.
pub fn backoff(attempts: i32, base: Duration, max: Duration, unit: f64) -> Duration {
    let shift = u32::try_from(attempts.saturating_sub(1).clamp(0, 30)).unwrap_or(30);
    let full = base.saturating_mul(1u32 << shift).min(max);
    full.mul_f64(0.5 + 0.5 * unit.clamp(0.0, 1.0))
}

pub(super) fn spawn(
    ctx: Arc<Ctx>,
    mut shutdown: watch::Receiver<bool>,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let settings = ctx.config().webhooks.clone();
        let client = match client(&settings) {
            Ok(c) => c,
            Err(e) => {
                tracing::error!(error = %e, "webhook delivery cannot start: no HTTP client");
                return;
            }
        };
        let mut ticker = tokio::time::interval(settings.poll_every.max(Duration::from_millis(50)));
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut pruned_at: Option<std::time::Instant> = None;
        let mut counted_at: Option<std::time::Instant> = None;
        loop {
            tokio::select! {
                _ = ticker.tick() => {}
                _ = shutdown.changed() => return,
            }
            if *shutdown.borrow() {
                return;
            }
            // A shutdown abandons the attempts in flight: their claims come due again after
            // the visibility deadline, on whichever replica is up then (at least once).
            tokio::select! {
                r = round(&ctx, &client) => if let Err(e) = r {
                    tracing::warn!(error = %e, "webhook delivery round failed; retrying next tick");
                },
                _ = shutdown.changed() => return,
            }
            if counted_at.is_none_or(|t| t.elapsed() >= BACKLOG_EVERY) {
                counted_at = Some(std::time::Instant::now());
                match webhooks::backlog(ctx.store().pool(), ctx.clock().now()).await {
                    Ok((pending, oldest)) => {
                        crate::metrics::record_webhook_backlog(pending, oldest)
                    }
                    Err(e) => tracing::debug!(error = %e, "could not count the webhook outbox"),
                }
            }
            if pruned_at.is_none_or(|t| t.elapsed() >= PRUNE_EVERY) {
                pruned_at = Some(std::time::Instant::now());
                let before = ctx.clock().now()
                    - chrono::Duration::from_std(settings.retention)
                        .unwrap_or(chrono::Duration::days(7));
                match webhooks::prune(ctx.store().pool(), before).await {
                    Ok(n) if n > 0 => tracing::info!(events = n, "pruned old webhook events"),
                    Ok(_) => {}
                    Err(e) => tracing::warn!(error = %e, "could not prune webhook events"),
                }
            }
        }
    })
}

fn client(settings: &WebhookSettings) -> reqwest::Result<reqwest::Client> {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(settings.attempt_timeout)
        .connect_timeout(settings.attempt_timeout)
        .dns_resolver(Arc::new(ssrf::GuardedResolver {
            allow_private: settings.allow_private_destinations,
        }))
        .user_agent(concat!("pgfleet-webhooks/", env!("CARGO_PKG_VERSION")))
        .build()
}

/// Claims and attempts due deliveries until none is left due.
pub(crate) async fn round(ctx: &Arc<Ctx>, client: &reqwest::Client) -> Result<()> {
    let settings = &ctx.config().webhooks;
    // Long enough for the attempt and its bookkeeping; a worker gone longer is presumed dead.
    let visibility =
        chrono::Duration::from_std(settings.attempt_timeout * 2 + Duration::from_secs(10))
            .unwrap_or(chrono::Duration::seconds(60));
    loop {
        let now = ctx.clock().now();
        let batch = webhooks::claim_due(ctx.store().pool(), now, now + visibility, BATCH).await?;
        let n = batch.len();
        let results =
            futures::future::join_all(batch.iter().map(|d| attempt(ctx, client, d))).await;
        for r in results {
            r?;
        }
        if i64::try_from(n).unwrap_or(0) < BATCH {
            return Ok(());
        }
    }
}

/// What one attempt came to: the status it got, or why it got none.
struct Outcome {
    status: Option<i32>,
    error: Option<String>,
}

impl Outcome {
    fn delivered(&self) -> bool {
        self.status.is_some_and(|s| (200..300).contains(&s))
    }
}

async fn send(ctx: &Ctx, client: &reqwest::Client, d: &ClaimedDelivery) -> Outcome {
    let fail = |e: String| Outcome {
        status: None,
        error: Some(e.chars().take(MAX_ERROR).collect()),
    };
    let settings = &ctx.config().webhooks;
    let secret = match seal_key(ctx).and_then(|key| {
        pgfleet_auth::sealed::unseal(
            &key,
            d.endpoint_id.as_bytes(),
            &pgfleet_auth::sealed::Sealed {
                salt: d.seal_salt.clone(),
                blob: d.sealed_secret.clone(),
            },
        )
        .map_err(DomainError::internal)
    }) {
        Ok(s) => s,
        Err(_) => {
            return fail(
                "the endpoint's secret does not open with this server's key-encryption key".into(),
            )
        }
    };
    let Ok(url) = url::Url::parse(&d.url) else {
        return fail("invalid url".into());
    };
    // A name is checked by the client's resolver as it connects; an address literal here.
    if matches!(url.host(), Some(url::Host::Ipv4(_) | url::Host::Ipv6(_))) {
        if let Err(e) = ssrf::check_destination(&url, settings.allow_private_destinations).await {
            return fail(e.to_string());
        }
    }
    let timestamp = ctx.clock().now().timestamp();
    let signature = sign(&secret, &d.event_id, timestamp, &d.body);
    let sent = client
        .post(url)
        .header(reqwest::header::CONTENT_TYPE, "application/json")
        .header("webhook-id", &d.event_id)
        .header("webhook-timestamp", timestamp.to_string())
        .header("webhook-signature", signature)
        .body(d.body.clone())
        .send()
        .await;
    match sent {
        // The body is never read: the status is the answer, and an endpoint cannot make
        // this replica hold or buffer anything.
        Ok(r) => {
            let status = i32::from(r.status().as_u16());
            Outcome {
                status: Some(status),
                error: (!r.status().is_success()).then(|| format!("HTTP {status}")),
            }
        }
        Err(e) => {
            let e = e.without_url();
            let mut msg = e.to_string();
            let mut source = std::error::Error::source(&e);
            while let Some(s) = source {
                msg.push_str(": ");
                msg.push_str(&s.to_string());
                source = s.source();
            }
            fail(msg)
        }
    }
}

async fn attempt(ctx: &Arc<Ctx>, client: &reqwest::Client, d: &ClaimedDelivery) -> Result<()> {
    let outcome = send(ctx, client, d).await;
    let settings = &ctx.config().webhooks;
    let now = ctx.clock().now();
    let retry_at = (!outcome.delivered()).then(|| {
        let unit = ctx.rng().with(|r| rand::Rng::gen::<f64>(r));
        let delay = backoff(
            d.attempts,
            settings.base_backoff,
            settings.max_backoff,
            unit,
        );
        now + chrono::Duration::from_std(delay).unwrap_or(chrono::Duration::hours(1))
    });
    let mut tx = ctx.store().begin().await?;
    let failing_since = webhooks::record_attempt(
        &mut tx,
        &Attempt {
            seq: d.seq,
            endpoint_id: &d.endpoint_id,
            at: now,
            status: outcome.status,
            error: outcome.error.as_deref(),
            retry_at,
        },
    )
    .await?;
    if let Some(since) = failing_since {
        if failing_too_long(since, now, settings.disable_after)
            && webhooks::disable(&mut tx, &d.endpoint_id, now).await?
        {
            tracing::warn!(webhook = %d.endpoint_id, since = %since, "webhook endpoint disabled after failing continuously");
            let data = serde_json::json!({
                "id": d.endpoint_id,
                "type": "webhook",
                "url": d.url,
                "state": "disabled",
                "failingSince": pgfleet_api_types::ts(&since),
            });
            emit(
                ctx,
                &mut tx,
                &d.workspace_id,
                WebhookEventType::WebhookDisabled,
                &data,
            )
            .await?;
        }
    }
    tx.commit().await.map_err(StorageError::from)?;
    let result = if outcome.delivered() {
        "delivered"
    } else {
        "failed"
    };
    crate::metrics::record_webhook_attempt(result);
    tracing::debug!(event = %d.event_id, webhook = %d.endpoint_id, attempts = d.attempts, status = ?outcome.status, result, "webhook attempt");
    Ok(())
}

fn failing_too_long(since: DateTime<Utc>, now: DateTime<Utc>, limit: Duration) -> bool {
    (now - since).to_std().is_ok_and(|d| d >= limit)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signature_matches_the_standard_webhooks_example() {
        // The example of the Standard Webhooks specification's reference libraries.
        let secret = STANDARD.decode("MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").unwrap();
        let body = r#"{"test": 2432232314}"#;
        assert_eq!(
            sign(&secret, "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, body),
            "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
        );
    }

    #[test]
    fn backoff_doubles_with_jitter_up_to_the_cap() {
        let base = Duration::from_secs(5);
        let max = Duration::from_secs(3600);
        assert_eq!(backoff(1, base, max, 1.0), Duration::from_secs(5));
        assert_eq!(backoff(2, base, max, 1.0), Duration::from_secs(10));
        assert_eq!(backoff(4, base, max, 1.0), Duration::from_secs(40));
        assert_eq!(backoff(4, base, max, 0.0), Duration::from_secs(20));
        assert_eq!(backoff(40, base, max, 1.0), max);
        assert_eq!(backoff(0, base, max, 1.0), base);
    }

    #[test]
    fn disabling_waits_for_the_whole_period() {
        let t0 = DateTime::<Utc>::from_timestamp(1_000_000, 0).unwrap();
        let limit = Duration::from_secs(60);
        assert!(!failing_too_long(
            t0,
            t0 + chrono::Duration::seconds(59),
            limit
        ));
        assert!(failing_too_long(
            t0,
            t0 + chrono::Duration::seconds(60),
            limit
        ));
    }
}
