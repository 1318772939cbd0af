//! The command line every framework server binary takes, as upstream's do:
//! `--config=FILE`, plus ours `--io=MODE` and `--shards=N`.

use std::path::PathBuf;

use crate::rt::IoMode;

/// What a server binary was started with.
#[derive(Debug, Clone, PartialEq)]
pub struct ServerArgs {
    /// `--config=FILE` (required).
    pub config: PathBuf,
    /// `--io=uring|epoll-et|epoll-lt`.
    pub io: Option<IoMode>,
    /// `--shards=N`.
    pub shards: Option<usize>,
}

impl ServerArgs {
    /// Parses `args` (without the program name); the error ends with `usage`.
    pub fn parse(args: impl IntoIterator<Item = String>, usage: &str) -> Result<ServerArgs, String> {
        let (mut config, mut io, mut shards) = (None, None, None);
        for a in args {
            let Some((k, v)) = a.strip_prefix("--").and_then(|f| f.split_once('=')) else {
                return Err(format!("unexpected argument {a:?}\n{usage}"));
            };
            match k {
                "config" => config = Some(PathBuf::from(v)),
                "io" => io = Some(v.parse::<IoMode>().map_err(|e| format!("--io: {e}\n{usage}"))?),
                "shards" => shards = Some(v.parse().map_err(|_| format!("--shards={v:?}: not a number\n{usage}"))?),
                _ => return Err(format!("unknown flag --{k}\n{usage}")),
            }
        }
        let config = config.ok_or_else(|| format!("--config=FILE is required\n{usage}"))?;
        Ok(ServerArgs { config, io, shards })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Result<ServerArgs, String> {
        ServerArgs::parse(args.iter().map(|a| (*a).to_owned()), "usage: x")
    }

    #[test]
    fn flags_are_read_and_mistakes_named() {
        let a = parse(&["--config=/c.conf", "--io=epoll-lt", "--shards=2"]).expect("valid");
        assert_eq!(a, ServerArgs { config: "/c.conf".into(), io: Some(IoMode::EpollLt), shards: Some(2) });
        assert!(parse(&[]).expect_err("rejected").contains("--config=FILE is required"));
        assert!(parse(&["--config=c", "--shards=two"]).expect_err("rejected").contains("--shards"));
        assert!(parse(&["--config=c", "--color=red"]).expect_err("rejected").contains("unknown flag --color"));
        assert!(parse(&["config=c"]).expect_err("rejected").ends_with("usage: x"));
    }
}
