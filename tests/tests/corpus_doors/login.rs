//! Corpus connections that log in as another user, so one `.slt` file can show what each user
//! sees. A record whose SQL is psql's meta-command `\connect USER PASSWORD` replaces the
//! connection it runs on with a new one of that user, through the same door:
//!
//! ```text
//! connection ana
//! statement ok
//! \connect corpus_ana corpus-password-1
//!
//! connection ana
//! query I
//! SELECT count(*) FROM t
//! ```
//!
//! Every other record goes to the door's session as it is.

use futures::future::BoxFuture;
use sqllogictest::{AsyncDB, DBOutput, DefaultColumnType};
use std::sync::Arc;
use std::time::Duration;

/// Opens a door's session for a user and password.
pub type LoginFn<D> = Arc<
    dyn Fn(String, String) -> BoxFuture<'static, Result<D, <D as AsyncDB>::Error>> + Send + Sync,
>;

/// A door's session that `\connect` replaces with another user's.
pub struct Login<D: AsyncDB> {
    session: D,
    login: LoginFn<D>,
}

impl<D: AsyncDB> Login<D> {
    /// A connection that starts as `session` and logs in anew with `login`.
    pub fn new(session: D, login: LoginFn<D>) -> Self {
        Self { session, login }
    }

    /// Opens the first session (the corpus's admin) with `login` itself.
    pub async fn open(login: LoginFn<D>, user: &str, password: &str) -> Result<Self, D::Error> {
        let session = login(user.to_string(), password.to_string()).await?;
        Ok(Self::new(session, login))
    }
}

#[async_trait::async_trait]
impl<D: AsyncDB<ColumnType = DefaultColumnType> + Send> AsyncDB for Login<D>
where
    D::Error: Send,
{
    type Error = D::Error;
    type ColumnType = DefaultColumnType;

    async fn run(&mut self, sql: &str) -> Result<DBOutput<DefaultColumnType>, D::Error> {
        if let Some(rest) = sql.trim().strip_prefix("\\connect ") {
            let mut words = rest.split_whitespace();
            let user = words.next().unwrap_or_default().to_string();
            let password = words.next().unwrap_or_default().to_string();
            let mut old = std::mem::replace(&mut self.session, (self.login)(user, password).await?);
            old.shutdown().await;
            return Ok(DBOutput::StatementComplete(0));
        }
        self.session.run(sql).await
    }

    async fn shutdown(&mut self) {
        self.session.shutdown().await;
    }

    fn engine_name(&self) -> &str {
        "osprey"
    }

    async fn sleep(dur: Duration) {
        tokio::time::sleep(dur).await;
    }
}
