//! `weir token`: create, list and delete access tokens in a data directory.
//! A running server sees the changes within a second.

use std::path::PathBuf;

use anyhow::{Context, Result};
use server::tokens::{Scope, Tokens, ALL_DATABASES};

/// Create and manage access tokens.
#[derive(Debug, clap::Args)]
pub(crate) struct TokenArgs {
    #[command(subcommand)]
    command: TokenCommand,
}

#[derive(Debug, clap::Subcommand)]
enum TokenCommand {
    /// Make a token; it is printed once, alone on the last line.
    Create(CreateArgs),
    /// List tokens (ids, scopes, databases; never the tokens themselves).
    List(DirArg),
    /// Delete a token by id; a running server stops accepting it within a second.
    Delete(DeleteArgs),
}

#[derive(Debug, clap::Args)]
struct DirArg {
    /// Data directory of the server.
    #[arg(long, value_name = "DIR", default_value = "./weir-data")]
    data_dir: PathBuf,
}

#[derive(Debug, clap::Args)]
#[command(group(clap::ArgGroup::new("target").required(true).args(["db", "all_databases"])))]
#[command(group(clap::ArgGroup::new("scope").required(true).args(["write", "read", "admin"])))]
struct CreateArgs {
    #[command(flatten)]
    dir: DirArg,
    /// The database the token is for.
    #[arg(long, value_name = "NAME")]
    db: Option<String>,
    /// The token is for every database.
    #[arg(long)]
    all_databases: bool,
    /// May write points.
    #[arg(long)]
    write: bool,
    /// May query.
    #[arg(long)]
    read: bool,
    /// May read, write and manage tokens.
    #[arg(long)]
    admin: bool,
    /// A note on who or what uses the token.
    #[arg(long, value_name = "TEXT", default_value = "")]
    description: String,
}

#[derive(Debug, clap::Args)]
struct DeleteArgs {
    #[command(flatten)]
    dir: DirArg,
    /// The token's id, as `weir token list` shows it.
    id: String,
}

/// Runs `weir token …`.
pub(crate) fn run(args: TokenArgs) -> Result<()> {
    match args.command {
        TokenCommand::Create(a) => {
            let scope = if a.admin {
                Scope::Admin
            } else if a.read {
                Scope::Read
            } else {
                Scope::Write
            };
            let new = Tokens::new(&a.dir.data_dir)
                .create(scope, a.db.as_deref(), &a.description)
                .context("creating the token")?;
            let on = match &a.db {
                Some(db) => format!("database {db:?}"),
                None => "all databases".to_owned(),
            };
            println!(
                "created {scope} token {} for {on}; it is shown only now:",
                new.info.id
            );
            println!("{}", new.secret);
        }
        TokenCommand::List(a) => {
            let tokens = Tokens::new(&a.data_dir)
                .list()
                .context("reading the tokens")?;
            println!(
                "{:<16}  {:<5}  {:<20}  {:<20}  DESCRIPTION",
                "ID", "SCOPE", "DATABASE", "CREATED"
            );
            for t in tokens {
                let db = if t.db == ALL_DATABASES {
                    "* (all)"
                } else {
                    &t.db
                };
                println!(
                    "{:<16}  {:<5}  {:<20}  {:<20}  {}",
                    t.id, t.scope, db, t.created, t.description
                );
            }
        }
        TokenCommand::Delete(a) => {
            let gone = Tokens::new(&a.dir.data_dir).delete(&a.id)?;
            println!("deleted {} token {}", gone.scope, gone.id);
        }
    }
    Ok(())
}
