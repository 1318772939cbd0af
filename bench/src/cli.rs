//! A small `--key value` / `--key=value` / `--flag` parser shared by the binaries.

use std::str::FromStr;

use anyhow::{anyhow, bail, Context as _, Result};

/// A bench binary's `main`: runs `body`; an error is printed as `name: error` (with its
/// causes) and the process exits with 2.
pub fn main(name: &str, body: impl FnOnce() -> Result<()>) {
    if let Err(e) = body() {
        eprintln!("{name}: {e:#}");
        std::process::exit(2);
    }
}

/// The command line as given, for a result's provenance: words quoted where a shell would
/// need it, the password of any URL masked.
pub fn command_line() -> String {
    let words: Vec<String> = std::env::args()
        .map(|a| {
            let a = tars_sql::redact(&a);
            if a.is_empty() || a.contains(|c: char| c.is_whitespace() || "'\"$&;|<>()*?".contains(c)) {
                format!("'{}'", a.replace('\'', r"'\''"))
            } else {
                a
            }
        })
        .collect();
    words.join(" ")
}

/// Parsed command-line options. Every option must be consumed by a getter; [`Args::finish`]
/// reports the ones nobody asked for.
#[derive(Debug)]
pub struct Args {
    items: Vec<(String, Option<String>, bool)>,
}

impl Args {
    /// Parses `argv` (without the program name). Names in `flags` take no value.
    pub fn parse(argv: impl IntoIterator<Item = String>, flags: &[&str]) -> Result<Args> {
        let mut items = Vec::new();
        let mut it = argv.into_iter();
        while let Some(arg) = it.next() {
            let Some(name) = arg.strip_prefix("--") else { bail!("unexpected argument {arg:?}") };
            if let Some((k, v)) = name.split_once('=') {
                items.push((k.to_owned(), Some(v.to_owned()), false));
            } else if flags.contains(&name) {
                items.push((name.to_owned(), None, false));
            } else {
                let v = it.next().ok_or_else(|| anyhow!("--{name} needs a value"))?;
                items.push((name.to_owned(), Some(v), false));
            }
        }
        Ok(Args { items })
    }

    /// Whether `--name` was given.
    pub fn flag(&mut self, name: &str) -> bool {
        let mut found = false;
        for (k, _, used) in &mut self.items {
            if k == name {
                *used = true;
                found = true;
            }
        }
        found
    }

    /// The last value of `--name`, parsed.
    pub fn get<T: FromStr>(&mut self, name: &str) -> Result<Option<T>>
    where
        T::Err: std::fmt::Display,
    {
        let mut value = None;
        for (k, v, used) in &mut self.items {
            if k == name {
                *used = true;
                value = v.clone();
            }
        }
        match value {
            None => Ok(None),
            Some(v) => v.parse().map(Some).map_err(|e| anyhow!("--{name} {v:?}: {e}")),
        }
    }

    /// `--name`, or `default` when absent.
    pub fn get_or<T: FromStr>(&mut self, name: &str, default: T) -> Result<T>
    where
        T::Err: std::fmt::Display,
    {
        Ok(self.get(name)?.unwrap_or(default))
    }

    /// A comma-separated list.
    pub fn list<T: FromStr>(&mut self, name: &str) -> Result<Option<Vec<T>>>
    where
        T::Err: std::fmt::Display,
    {
        let Some(s) = self.get::<String>(name)? else { return Ok(None) };
        s.split(',')
            .filter(|p| !p.trim().is_empty())
            .map(|p| p.trim().parse::<T>().map_err(|e| anyhow!("--{name} {p:?}: {e}")))
            .collect::<Result<Vec<_>>>()
            .map(Some)
    }

    /// Fails on options nobody consumed.
    pub fn finish(self) -> Result<()> {
        let unknown: Vec<String> = self.items.iter().filter(|(_, _, u)| !u).map(|(k, _, _)| format!("--{k}")).collect();
        if unknown.is_empty() {
            Ok(())
        } else {
            Err(anyhow!("unknown option(s): {}", unknown.join(" "))).context("see --help")
        }
    }
}

/// Seconds as a [`std::time::Duration`], accepting fractions (`0.5`).
pub fn secs(s: f64) -> Result<std::time::Duration> {
    std::time::Duration::try_from_secs_f64(s).map_err(|e| anyhow!("bad duration {s}: {e}"))
}
