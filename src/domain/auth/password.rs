//! Password hashing: argon2id with OWASP's parameters, off the async runtime, bounded.

use std::sync::{
    Arc, OnceLock,
    atomic::{AtomicU64, Ordering},
};

use argon2::{
    Algorithm, Argon2, Params, Version,
    password_hash::{
        PasswordHash, PasswordHasher as _, PasswordVerifier, SaltString, rand_core::OsRng,
    },
};
use tokio::sync::Semaphore;

use crate::error::{AppError, AppResult};

/// Shortest and longest accepted passwords (NIST SP 800-63B: at least 8; a cap keeps hashing bounded).
pub const MIN_PASSWORD_LEN: usize = 8;
/// See [`MIN_PASSWORD_LEN`].
pub const MAX_PASSWORD_LEN: usize = 256;

/// argon2id, m = 19 MiB, t = 2, p = 1 (OWASP Password Storage Cheat Sheet).
fn argon2() -> Argon2<'static> {
    // The parameters are constants within argon2's documented bounds.
    let params = Params::new(19 * 1024, 2, 1, None).unwrap_or_default();
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
}

/// A hash of a password nobody knows: verifying an unknown account's login against it costs the
/// same time as a real verification, so response timing does not reveal which emails exist.
fn dummy_hash() -> &'static str {
    static DUMMY: OnceLock<String> = OnceLock::new();
    DUMMY.get_or_init(|| {
        let salt = SaltString::generate(&mut OsRng);
        argon2()
            .hash_password(b"finvision-dummy-password", &salt)
            .map(|h| h.to_string())
            .unwrap_or_default()
    })
}

/// Hashes and verifies on blocking threads, at most `permits` at a time: each hash takes 19 MiB
/// and a core for tens of milliseconds, so an unbounded burst of logins could exhaust the machine.
/// Counts every argon2 run (`hashes` and `verifications`): the work an attacker can make the
/// server do is what the abuse limits bound, so it is measured rather than assumed.
#[derive(Clone)]
pub struct PasswordHasher {
    permits: Arc<Semaphore>,
    /// Hashes and verifications waiting for a permit (`fv_argon2_queue_depth`).
    waiting: Arc<AtomicU64>,
    hashes: Arc<AtomicU64>,
    verifications: Arc<AtomicU64>,
}

/// One caller waiting for a permit; counted until it has one or gives up (a dropped request).
struct Waiting<'a>(&'a AtomicU64);

impl<'a> Waiting<'a> {
    fn new(waiting: &'a AtomicU64) -> Self {
        waiting.fetch_add(1, Ordering::Relaxed);
        Self(waiting)
    }
}

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

impl PasswordHasher {
    /// A hasher allowing `permits` concurrent hashes.
    pub fn new(permits: usize) -> Self {
        Self {
            permits: Arc::new(Semaphore::new(permits.max(1))),
            waiting: Arc::default(),
            hashes: Arc::default(),
            verifications: Arc::default(),
        }
    }

    /// Hashes and verifications waiting for a permit now: the queue that sign-in bursts build
    /// (each waits behind `permits` running ones).
    pub fn queue_depth(&self) -> u64 {
        self.waiting.load(Ordering::Relaxed)
    }

    /// A permit to run argon2, waited for in the queue.
    async fn permit(&self) -> AppResult<tokio::sync::SemaphorePermit<'_>> {
        let _waiting = Waiting::new(&self.waiting);
        self.permits.acquire().await.map_err(AppError::internal)
    }

    /// Passwords hashed since start (new accounts, password changes).
    pub fn hashes(&self) -> u64 {
        self.hashes.load(Ordering::Relaxed)
    }

    /// Passwords verified since start (sign-ins, password changes; dummy verifications too).
    pub fn verifications(&self) -> u64 {
        self.verifications.load(Ordering::Relaxed)
    }

    /// Check a new password's length rules; `field` names the input.
    pub fn validate_new(password: &str, field: &str) -> AppResult<()> {
        crate::domain::limits::text(password, field, MAX_PASSWORD_LEN)?;
        let len = password.chars().count();
        if len < MIN_PASSWORD_LEN {
            return Err(AppError::bad_input(
                field,
                format!("the password must have at least {MIN_PASSWORD_LEN} characters"),
            ));
        }
        if len > MAX_PASSWORD_LEN {
            return Err(AppError::bad_input(
                field,
                format!("the password must have at most {MAX_PASSWORD_LEN} characters"),
            ));
        }
        Ok(())
    }

    /// The PHC string of `password`.
    #[tracing::instrument(skip_all)]
    pub async fn hash(&self, password: &str) -> AppResult<String> {
        let _permit = self.permit().await?;
        self.hashes.fetch_add(1, Ordering::Relaxed);
        let password = password.to_owned();
        tokio::task::spawn_blocking(move || {
            let salt = SaltString::generate(&mut OsRng);
            argon2()
                .hash_password(password.as_bytes(), &salt)
                .map(|h| h.to_string())
                .map_err(|e| AppError::internal(anyhow::anyhow!("argon2: {e}")))
        })
        .await
        .map_err(AppError::internal)?
    }

    /// Whether `password` matches `phc`; with `None` (unknown account) it verifies against a
    /// dummy hash and returns false, taking the same time.
    #[tracing::instrument(skip_all)]
    pub async fn verify(&self, password: &str, phc: Option<&str>) -> AppResult<bool> {
        let _permit = self.permit().await?;
        self.verifications.fetch_add(1, Ordering::Relaxed);
        let known = phc.is_some();
        let phc = phc.map_or_else(|| dummy_hash().to_owned(), str::to_owned);
        let password = password.to_owned();
        tokio::task::spawn_blocking(move || {
            let Ok(parsed) = PasswordHash::new(&phc) else {
                return false;
            };
            argon2()
                .verify_password(password.as_bytes(), &parsed)
                .is_ok()
                && known
        })
        .await
        .map_err(AppError::internal)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn hashes_are_argon2id_with_owasp_parameters_and_verify() {
        let hasher = PasswordHasher::new(1);
        let phc = hasher.hash("correct horse").await.unwrap();
        assert!(phc.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{phc}");
        assert!(hasher.verify("correct horse", Some(&phc)).await.unwrap());
        assert!(!hasher.verify("wrong horse", Some(&phc)).await.unwrap());
        assert!(!hasher.verify("correct horse", None).await.unwrap());
    }

    #[tokio::test]
    async fn the_queue_depth_counts_who_waits_for_a_permit() {
        let hasher = PasswordHasher::new(1);
        let held = hasher.permit().await.unwrap();
        let waiting: Vec<_> = (0..3)
            .map(|_| {
                let hasher = hasher.clone();
                tokio::spawn(async move { hasher.hash("correct horse").await })
            })
            .collect();
        while hasher.queue_depth() < 3 {
            tokio::task::yield_now().await;
        }
        assert_eq!(hasher.queue_depth(), 3);
        drop(held);
        for task in waiting {
            task.await.unwrap().unwrap();
        }
        assert_eq!(hasher.queue_depth(), 0);
    }

    #[test]
    fn length_rules_name_the_field() {
        let err = PasswordHasher::validate_new("short", "input.password").unwrap_err();
        assert!(
            matches!(err, AppError::BadUserInput { field: Some(f), .. } if f == "input.password")
        );
        assert!(PasswordHasher::validate_new("long enough", "p").is_ok());
    }
}
