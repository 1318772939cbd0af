//! How a TARS server is started: the `tars_start.sh` script (`CommandStart::prepareScript`),
//! the php `tars_stop.sh` (`CommandStop.cpp`), and what a spawner needs to run the script
//! (argv, working directory, environment, stdout file), as `CommandStart::startNormal` and
//! `Activator.cpp`.
//!
//! Nothing here spawns a process or writes a file; [`probe`] is the only IO (it looks at the
//! server's `bin/` directory), kept apart so the script text is a pure function of
//! [`ServerPaths`], [`ServerKeys`] and a [`Probe`].
//!
//! # `tars_start.sh`
//!
//! ```text
//! #!/bin/sh
//! . /etc/profile                                  (not in container mode)
//! export K=V                                      (one per `env` entry)
//! export LD_LIBRARY_PATH=$LD_LIBRARY_PATH:<exePath>:<libPath>
//! trap 'exit' TERM INT                          (signal names without `SIG`: dash rejects those)
//! pid=0
//!
//! <launch line> & pid=$!                          (` & pid=$!` not in container mode)
//! echo $pid > <exePath>tars_start.sh.pid          (not in container mode)
//! ```
//!
//! The launch line is the executable, a space, and each argument followed by a space (the
//! trailing space is upstream's):
//! - cpp/go: `<exe> --config=<conf>`;
//! - java: `<exe> -Dconfig=<conf> <jvmparams...> -cp <classpath>/* <mainclass>` (no `-cp`
//!   when `packageFormat` is `jar`);
//! - nodejs: `<node> <exePath>tars_nodejs/node-agent/bin/node-agent <package dir> -c <conf>`;
//! - php: `<php> <entrance> --config=<conf>` (in container mode followed by an endless
//!   `sleep` loop).
//!
//! # Quoting
//!
//! `/bin/sh` runs the script and its values come from the database (profile `env`,
//! `jvmparams`, paths), so every value is quoted by [`sh_quote`]: a word made only of
//! characters sh gives no meaning to is written as is (so ordinary scripts read exactly as
//! upstream's), anything else is single-quoted. Upstream writes the values raw, which lets a
//! profile run arbitrary commands. What upstream's semantics do need is kept:
//! - `env` values may refer to variables as `$NAME` or `${NAME}` (the node's `EnvVal` expands
//!   those too); such a reference is written as `"${NAME}"` and the rest quoted, so there is no
//!   command substitution, globbing or word splitting.
//! - `jvmparams` (and `mainclass`, as upstream splits the whole option string) is a list of
//!   words: it is split on spaces and tabs and each word quoted.
//! - Paths are one word each even if they contain spaces; the java `<classpath>/*` is quoted
//!   so that java, not sh, expands the `*`.
//!
//! # Where this differs from upstream
//!
//! - The quoting above.
//! - php: upstream ends the php launch line before ` & pid=$!`, leaving a line sh rejects; here
//!   ` & pid=$!` goes on the launch line as for the other types.
//! - The script always ends with a newline.
//! - The php stop script uses the start interpreter when the profile has no `php` key
//!   (upstream writes an empty command), and the log directory is `<logpath>/<App>/<Server>/`
//!   with a separator after `logpath`.
//! - An `env` entry whose name is not a shell variable name is an error (upstream writes it
//!   and sh fails on the `export`).
//! - C++/Go executables that were renamed are not searched for (`CommandStart::searchServer`);
//!   the caller may set [`ServerPaths::exe`] before building the script.

use std::borrow::Cow;
use std::collections::HashMap;
use std::fs;
use std::path::Path;

use crate::confgen::{dir_slash, is_absolute, simplify, EnvVar, ServerKeys, ServerPaths, ServerType};

/// File name of the start script, in exePath.
pub const START_SCRIPT: &str = "tars_start.sh";

/// File name of the php stop script, in exePath.
pub const STOP_SCRIPT: &str = "tars_stop.sh";

/// How deep [`probe`] looks for a nodejs `package.json` below exePath.
const MAX_PACKAGE_DEPTH: usize = 8;

/// Why a script could not be built.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LaunchError {
    /// An `env` entry whose name sh cannot export.
    #[error("env entry `{0}`: not a shell variable name")]
    BadEnvName(String),
    /// A value with a NUL byte, which no shell script or environment can hold.
    #[error("{what} contains a NUL byte")]
    Nul {
        /// Which value (`"env"`, `"jvmparams"`, a path...).
        what: &'static str,
    },
}

/// What [`probe`] found on disk.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Probe {
    /// [`ServerPaths::exe`] exists (java/php fall back to `java`/`php` on `PATH` when an
    /// absolute executable is missing).
    pub exe_exists: bool,
    /// `<exePath>tars_nodejs/node` exists (else `node` from `PATH`).
    pub bundled_node: bool,
    /// The first directory below exePath holding a `package.json` (nodejs), without trailing
    /// `/`.
    pub package_dir: Option<String>,
}

/// Looks at the server's files the way `CommandStart.cpp` does before writing the script.
pub fn probe(paths: &ServerPaths) -> Probe {
    let is_node = paths.server_type == ServerType::NodeJs;
    Probe {
        exe_exists: Path::new(&paths.exe).exists(),
        bundled_node: is_node && Path::new(&bundled_node(paths)).exists(),
        package_dir: if is_node { find_package_dir(Path::new(&paths.exe_path), 0) } else { None },
    }
}

/// Depth-first search for `package.json`, files of a directory before its sub-directories,
/// names in sorted order, skipping `node_modules`, `tars_nodejs` and symlinked directories.
fn find_package_dir(dir: &Path, depth: usize) -> Option<String> {
    if depth > MAX_PACKAGE_DEPTH {
        return None;
    }
    let mut entries: Vec<_> = fs::read_dir(dir).ok()?.filter_map(Result::ok).collect();
    entries.sort_by_key(|e| e.file_name());
    let mut dirs = Vec::new();
    for e in entries {
        let name = e.file_name();
        if name == "node_modules" || name == "tars_nodejs" {
            continue;
        }
        match e.file_type() {
            Ok(t) if t.is_dir() => dirs.push(e.path()),
            Ok(t) if t.is_file() && name == "package.json" => return Some(simplify(&dir.to_string_lossy())),
            _ => {}
        }
    }
    dirs.iter().find_map(|d| find_package_dir(d, depth + 1))
}

fn bundled_node(paths: &ServerPaths) -> String {
    simplify(&format!("{}tars_nodejs/node", paths.exe_path))
}

/// `<exePath>tars_start.sh`.
pub fn start_script_path(paths: &ServerPaths) -> String {
    simplify(&format!("{}{START_SCRIPT}", paths.exe_path))
}

/// `<exePath>tars_stop.sh`.
pub fn stop_script_path(paths: &ServerPaths) -> String {
    simplify(&format!("{}{STOP_SCRIPT}", paths.exe_path))
}

/// The text of `tars_start.sh`.
pub fn start_script(paths: &ServerPaths, keys: &ServerKeys, probe: &Probe) -> Result<String, LaunchError> {
    let mut s = String::from("#!/bin/sh\n");
    if !paths.container {
        s.push_str(". /etc/profile\n");
    }
    for var in &keys.env {
        s.push_str(&export_line(var)?);
    }
    s.push_str(&format!(
        "export LD_LIBRARY_PATH=$LD_LIBRARY_PATH:{}:{}\n",
        quote("exePath", &paths.exe_path)?,
        quote("lib path", &paths.lib_path)?
    ));
    // POSIX `trap` takes signal names without the `SIG` prefix; dash refuses `SIGTERM`.
    s.push_str("trap 'exit' TERM INT\npid=0\n\n");
    s.push_str(&launch_line(paths, keys, probe)?);
    if paths.container {
        s.push('\n');
        if paths.server_type == ServerType::Php {
            // Keeps the container alive after the php master process returns.
            s.push_str("while true; do sleep 1; done\n");
        }
    } else {
        let pid_file = format!("{}.pid", start_script_path(paths));
        let pid_file = quote("pid file", &pid_file)?;
        s.push_str(&format!(" & pid=$!\necho $pid > {pid_file}\n\n"));
    }
    Ok(s)
}

/// The executable and arguments of the launch line, unquoted.
pub fn launch_words(paths: &ServerPaths, keys: &ServerKeys, probe: &Probe) -> Vec<String> {
    let conf = &paths.conf_file;
    let mut words = vec![exe(paths, probe)];
    match paths.server_type {
        ServerType::Java => {
            words.push(format!("-Dconfig={conf}"));
            words.extend(split_words(&keys.jvm_params));
            if keys.package_format != "jar" {
                words.push("-cp".to_owned());
                words.push(format!("{}/*", keys.class_path));
            }
            words.extend(split_words(&keys.main_class));
        }
        ServerType::NodeJs => {
            words.push(simplify(&format!("{}tars_nodejs/node-agent/bin/node-agent", paths.exe_path)));
            words.push(probe.package_dir.clone().unwrap_or_else(|| simplify(&paths.exe_path)));
            words.push("-c".to_owned());
            words.push(conf.clone());
        }
        ServerType::Php => {
            words.push(php_entrance(paths, keys));
            words.push(format!("--config={conf}"));
        }
        ServerType::Cpp | ServerType::Go | ServerType::Other(_) => words.push(format!("--config={conf}")),
    }
    words
}

/// The launch line: the quoted executable, a space, and each quoted argument plus a space.
fn launch_line(paths: &ServerPaths, keys: &ServerKeys, probe: &Probe) -> Result<String, LaunchError> {
    let words = launch_words(paths, keys, probe);
    let mut line = String::new();
    for (i, w) in words.iter().enumerate() {
        if w.contains('\0') {
            return Err(LaunchError::Nul { what: "launch argument" });
        }
        // The first word must not read as a `NAME=value` assignment, so `=` is quoted there.
        line.push_str(&if i == 0 { quote_command(w) } else { sh_quote(w) });
        line.push(' ');
    }
    Ok(line)
}

/// The executable a launch line starts with, with `CommandStart::canExecute`'s fallbacks.
fn exe(paths: &ServerPaths, probe: &Probe) -> String {
    match paths.server_type {
        ServerType::NodeJs if probe.bundled_node => bundled_node(paths),
        ServerType::NodeJs => "node".to_owned(),
        ServerType::Java if is_absolute(&paths.exe) && !probe.exe_exists => "java".to_owned(),
        ServerType::Php if is_absolute(&paths.exe) && !probe.exe_exists => "php".to_owned(),
        _ => paths.exe.clone(),
    }
}

fn php_entrance(paths: &ServerPaths, keys: &ServerKeys) -> String {
    match &keys.entrance {
        Some(e) if !e.is_empty() => e.clone(),
        _ => simplify(&format!("{}/bin/src/index.php", paths.server_dir)),
    }
}

/// The text of the php `tars_stop.sh`: runs the entrance with `stop`, logging to the roll log.
pub fn php_stop_script(paths: &ServerPaths, keys: &ServerKeys, probe: &Probe) -> Result<String, LaunchError> {
    let log_dir = dir_slash(&format!("{}/{}/{}", keys.log_path, paths.app, paths.server));
    let log_file = format!("{log_dir}{}.log", paths.server_id());
    let php = match &keys.php {
        Some(p) if !p.is_empty() => p.clone(),
        _ => exe(paths, probe),
    };
    let log_dir = quote("log dir", &log_dir)?;
    Ok(format!(
        "#!/bin/sh\nif [ ! -d {log_dir} ];then mkdir -p {log_dir}; fi\n{} {} {} stop  >> {} 2>&1 \necho \"end-tars_stop.sh\"\n",
        quote_command(&php),
        quote("entrance", &php_entrance(paths, keys))?,
        quote("config file", &format!("--config={}", paths.conf_file))?,
        quote("log file", &log_file)?,
    ))
}

/// `export NAME=value` for one `env` entry (`export NAME` for a bare name).
fn export_line(var: &EnvVar) -> Result<String, LaunchError> {
    check_env_name(&var.name)?;
    Ok(match &var.value {
        None => format!("export {}\n", var.name),
        Some(v) => {
            if v.contains('\0') {
                return Err(LaunchError::Nul { what: "env" });
            }
            format!("export {}={}\n", var.name, sh_env_value(v))
        }
    })
}

fn check_env_name(name: &str) -> Result<(), LaunchError> {
    if is_var_name(name) {
        Ok(())
    } else {
        Err(LaunchError::BadEnvName(name.to_owned()))
    }
}

fn is_var_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// One piece of an `env` value: literal text or a `$NAME` / `${NAME}` reference.
#[derive(Debug, PartialEq, Eq)]
enum Piece<'a> {
    Text(&'a str),
    Var(&'a str),
}

/// Splits an `env` value into text and variable references. A `$` not starting a reference
/// (`$(`, `$1`, `${` without a valid name and `}`) is text.
fn pieces(v: &str) -> Vec<Piece<'_>> {
    let mut out = Vec::new();
    let mut text_start = 0;
    let mut i = 0;
    let bytes = v.as_bytes();
    while i < bytes.len() {
        if bytes[i] != b'$' {
            i += 1;
            continue;
        }
        let (name, end) = match var_ref(&v[i + 1..]) {
            Some(r) => r,
            None => {
                i += 1;
                continue;
            }
        };
        if text_start < i {
            out.push(Piece::Text(&v[text_start..i]));
        }
        out.push(Piece::Var(name));
        i += 1 + end;
        text_start = i;
    }
    if text_start < v.len() {
        out.push(Piece::Text(&v[text_start..]));
    }
    out
}

/// The variable name right after a `$` and how many bytes the reference takes after the `$`.
fn var_ref(after: &str) -> Option<(&str, usize)> {
    if let Some(inner) = after.strip_prefix('{') {
        let close = inner.find('}')?;
        let name = &inner[..close];
        return is_var_name(name).then_some((name, close + 2));
    }
    let len = after.find(|c: char| !(c.is_ascii_alphanumeric() || c == '_')).unwrap_or(after.len());
    let name = &after[..len];
    is_var_name(name).then_some((name, len))
}

/// An `env` value as one sh word: references become `"${NAME}"`, the rest is [`sh_quote`]d.
fn sh_env_value(v: &str) -> String {
    if v.is_empty() {
        return "''".to_owned();
    }
    pieces(v)
        .into_iter()
        .map(|p| match p {
            Piece::Text(t) => sh_quote(t).into_owned(),
            Piece::Var(n) => format!("\"${{{n}}}\""),
        })
        .collect()
}

/// Expands `$NAME` / `${NAME}` in an `env` value with `lookup` (unset is empty), as the
/// node's `EnvVal` does before exec.
pub fn expand_env_value(v: &str, lookup: impl Fn(&str) -> Option<String>) -> String {
    pieces(v)
        .into_iter()
        .map(|p| match p {
            Piece::Text(t) => t.to_owned(),
            Piece::Var(n) => lookup(n).unwrap_or_default(),
        })
        .collect()
}

/// Whether sh gives `c` no special meaning anywhere in a word.
fn is_plain(c: char) -> bool {
    c.is_ascii_alphanumeric() || "_-./:,+@%=".contains(c)
}

/// `s` as one sh word: unchanged if every character is plain, else in single quotes (a `'`
/// inside becomes `'\''`). The empty string is `''`.
pub fn sh_quote(s: &str) -> Cow<'_, str> {
    if !s.is_empty() && s.chars().all(is_plain) {
        Cow::Borrowed(s)
    } else {
        Cow::Owned(format!("'{}'", s.replace('\'', "'\\''")))
    }
}

/// [`sh_quote`] for a command word, which sh would read as an assignment if it held `=`.
fn quote_command(s: &str) -> Cow<'_, str> {
    if s.contains('=') {
        Cow::Owned(format!("'{}'", s.replace('\'', "'\\''")))
    } else {
        sh_quote(s)
    }
}

fn quote<'a>(what: &'static str, s: &'a str) -> Result<Cow<'a, str>, LaunchError> {
    if s.contains('\0') {
        return Err(LaunchError::Nul { what });
    }
    Ok(sh_quote(s))
}

/// Splits on spaces and tabs, dropping empty words (`TC_Common::sepstr` with `" \t"`).
fn split_words(s: &str) -> impl Iterator<Item = String> + '_ {
    s.split([' ', '\t']).filter(|w| !w.is_empty()).map(str::to_owned)
}

/// Everything needed to start a server natively.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Launch {
    /// Where the script goes (`<exePath>tars_start.sh`, executable).
    pub script_path: String,
    /// The script text.
    pub script: String,
    /// Where the script writes the server's pid; remove it before spawning.
    pub pid_file: String,
    /// The command to exec: the script alone.
    pub argv: Vec<String>,
    /// The working directory: the config's log path, or the server dir without one (so core
    /// files land next to the logs).
    pub cwd: String,
    /// Variables to set in the child, in order: the `env` entries with a value, expanded, and
    /// `LD_LIBRARY_PATH`.
    pub env: Vec<(String, String)>,
    /// Where stdout and stderr are appended: `redirectpath`, else
    /// `<logpath>/<App>/<Server>/<App>.<Server>.log`, else nowhere.
    pub stdout_log: Option<String>,
}

/// The script and spawn parameters. `lookup` reads the node's own environment for `$NAME`
/// references; earlier entries are visible to later ones, as `EnvVal` sets them one by one.
pub fn plan(
    paths: &ServerPaths,
    keys: &ServerKeys,
    probe: &Probe,
    lookup: impl Fn(&str) -> Option<String>,
) -> Result<Launch, LaunchError> {
    let script = start_script(paths, keys, probe)?;
    let script_path = start_script_path(paths);
    let mut set: HashMap<String, String> = HashMap::new();
    let mut env = Vec::new();
    let ld = format!("$LD_LIBRARY_PATH:{}:{}", paths.exe_path, paths.lib_path);
    let entries = keys.env.iter().filter_map(|v| v.value.as_deref().map(|val| (v.name.as_str(), val)));
    for (name, value) in entries.chain([("LD_LIBRARY_PATH", ld.as_str())]) {
        // `EnvVal` leaves an empty value unset.
        if value.is_empty() {
            continue;
        }
        let expanded = expand_env_value(value, |n| set.get(n).cloned().or_else(|| lookup(n)));
        set.insert(name.to_owned(), expanded.clone());
        env.push((name.to_owned(), expanded));
    }
    let stdout_log = if !keys.redirect_path.is_empty() {
        Some(keys.redirect_path.clone())
    } else if !keys.log_path.is_empty() {
        Some(simplify(&format!("{}/{}/{}/{}.log", keys.log_path, paths.app, paths.server, paths.server_id())))
    } else {
        None
    };
    Ok(Launch {
        pid_file: format!("{script_path}.pid"),
        argv: vec![script_path.clone()],
        script_path,
        script,
        cwd: if keys.log_path.is_empty() { paths.server_dir.clone() } else { keys.log_path.clone() },
        env,
        stdout_log,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_words_stay_unquoted() {
        assert_eq!(sh_quote("/usr/local/app/tars/bin/"), "/usr/local/app/tars/bin/");
        assert_eq!(sh_quote(""), "''");
        assert_eq!(sh_quote("a b"), "'a b'");
        assert_eq!(sh_quote("it's"), "'it'\\''s'");
        assert_eq!(quote_command("A=b"), "'A=b'");
    }

    #[test]
    fn env_references_are_recognised() {
        assert_eq!(
            pieces("x$HOME/${USER}:$(id)$1"),
            vec![Piece::Text("x"), Piece::Var("HOME"), Piece::Text("/"), Piece::Var("USER"), Piece::Text(":$(id)$1")]
        );
        assert_eq!(sh_env_value("$PATH:/opt bin"), "\"${PATH}\"':/opt bin'");
        let lookup = |n: &str| (n == "HOME").then(|| "/root".to_owned());
        assert_eq!(expand_env_value("${HOME}/x$NOPE", lookup), "/root/x");
    }

    #[test]
    fn bad_env_names_are_refused() {
        let var = EnvVar { name: "1x;id".into(), value: Some("v".into()) };
        assert_eq!(export_line(&var), Err(LaunchError::BadEnvName("1x;id".into())));
    }
}
